#include "worker/executor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <exception>

namespace taskq {

Executor::Executor(int threads, std::chrono::milliseconds delay, OnStart on_start)
    : delay_(delay),
      on_start_(std::move(on_start)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Executor::Submit(Item task, Handler* handler, uint64_t tag) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(PendingTask{std::move(task), handler, tag});
  }
  cv_.notify_one();
}

std::vector<FinishedTask> Executor::TakeFinished() {
  uint64_t n;
  [[maybe_unused]] ssize_t r = read(wake_fd_, &n, sizeof n);
  std::vector<FinishedTask> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(finished_);
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> Executor::DropPending() {
  std::vector<std::pair<uint64_t, uint64_t>> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  for (const PendingTask& j : pending_) dropped.emplace_back(j.task.id, j.tag);
  pending_.clear();
  return dropped;
}

std::vector<std::pair<uint64_t, uint64_t>> Executor::Cancel() {
  cancel_.store(true);
  std::vector<std::pair<uint64_t, uint64_t>> dropped = DropPending();
  cv_.notify_all();  // a --delay pause ends too
  return dropped;
}

FinishedTask Executor::RunNow(const Item& task, Handler* handler, const CancelToken& cancel) {
  const auto start = std::chrono::steady_clock::now();
  RunOutcome o;
  try {
    o = handler->Run(task, cancel);
  } catch (const std::exception& e) {  // a handler bug must not take the worker down
    o = RunOutcome::Error(std::string("the handler failed: ") + e.what());
  } catch (...) {
    o = RunOutcome::Error("the handler failed with an unknown exception");
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  FinishedTask done{task.id, std::move(o), static_cast<uint64_t>(us.count())};
  done.attempt = task.attempt;
  return done;
}

void Executor::Loop() {
  const CancelToken cancel(&cancel_);
  for (;;) {
    PendingTask job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping
      job = std::move(pending_.front());
      pending_.pop_front();
    }
    if (on_start_) on_start_(job.task, job.handler);
    FinishedTask done = RunNow(job.task, job.handler, cancel);
    done.tag = job.tag;
    if (delay_.count() > 0) {  // part of the task's time: the window sizing must see it
      const auto start = std::chrono::steady_clock::now();
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, delay_, [this] { return stop_ || cancel_.load(); });
      done.elapsed_us += std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    }
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake = finished_.empty();
      finished_.push_back(std::move(done));
    }
    if (wake) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t w = write(wake_fd_, &one, sizeof one);
    }
  }
}

}  // namespace taskq
