// The worker's thread pool on its own: handlers that block until the test
// lets them go show what runs at once, what is dropped and what is cancelled.
#include "worker/executor.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace taskq {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kPatience{5000};  // for what must happen (a failure, not a hang)

bool Readable(int fd, milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(within.count())) == 1;
}

Item Task(uint64_t id, int64_t arg = 0) {
  Item t;
  t.id = id;
  t.kind = "test";
  t.arg = Value::Int(arg);
  return t;
}

// Doubles its argument, once the test opens the gate (or the run is
// cancelled); counts the runs going on.
class GatedHandler : public Handler {
 public:
  RunOutcome Run(const Item& task, const CancelToken& cancel) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++running_;
    changed_.notify_all();
    // The token is a flag, not a wake-up: look at it every few ms.
    const auto give_up = std::chrono::steady_clock::now() + kPatience;
    while (!open_ && !cancel.cancelled() && std::chrono::steady_clock::now() < give_up)
      changed_.wait_for(lock, milliseconds(5));
    --running_;
    changed_.notify_all();
    if (open_) return RunOutcome::Ok(Value::Int(*task.arg.AsInt() * 2));
    return RunOutcome::Error(cancel.cancelled() ? "cancelled" : "the gate never opened");
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits until n runs are going on at once.
  bool WaitRunning(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kPatience, [&] { return running_ == n; });
  }
  int running() {
    std::lock_guard<std::mutex> lock(mu_);
    return running_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int running_ = 0;
  bool open_ = false;
};

// What finished, until n tasks have, each wait bounded.
std::vector<FinishedTask> Collect(Executor& e, std::size_t n) {
  std::vector<FinishedTask> all;
  while (all.size() < n && Readable(e.wake_fd(), kPatience))
    for (FinishedTask& t : e.TakeFinished()) all.push_back(std::move(t));
  EXPECT_EQ(all.size(), n) << "tasks finished";
  return all;
}

TEST(ExecutorTest, RunsAsManyTasksAtOnceAsItHasThreads) {
  GatedHandler h;
  std::atomic<int> started{0};
  Executor e(3, milliseconds(0), [&](const Item&, Handler*) { ++started; });
  for (uint64_t id = 1; id <= 5; ++id) e.Submit(Task(id, static_cast<int64_t>(id)), &h, 100 + id);
  ASSERT_TRUE(h.WaitRunning(3));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(h.running(), 3) << "three threads, three tasks at a time";
  EXPECT_FALSE(Readable(e.wake_fd(), milliseconds(0))) << "nothing finished yet";
  h.Open();
  std::set<uint64_t> ids;
  for (const FinishedTask& t : Collect(e, 5)) {
    ids.insert(t.id);
    EXPECT_EQ(t.tag, 100 + t.id) << "the tag given to Submit comes back";
    ASSERT_TRUE(t.outcome.ok) << t.outcome.error;
    EXPECT_EQ(t.outcome.value.AsInt(), static_cast<int64_t>(2 * t.id));
  }
  EXPECT_EQ(ids, (std::set<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(started.load(), 5) << "on_start for each task";
  EXPECT_FALSE(Readable(e.wake_fd(), milliseconds(0))) << "TakeFinished drained the wake-up";
}

TEST(ExecutorTest, DropPendingHandsBackWhatHasNotStarted) {
  GatedHandler h;
  Executor e(1, milliseconds(0), nullptr);
  e.Submit(Task(1), &h, 7);
  e.Submit(Task(2), &h, 8);
  e.Submit(Task(3), &h, 9);
  ASSERT_TRUE(h.WaitRunning(1));
  const auto dropped = e.DropPending();
  EXPECT_EQ(dropped, (std::vector<std::pair<uint64_t, uint64_t>>{{2, 8}, {3, 9}}));
  h.Open();
  const std::vector<FinishedTask> done = Collect(e, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, 1u) << "the running task finishes";
  EXPECT_FALSE(Readable(e.wake_fd(), milliseconds(100))) << "the dropped ones never run";
}

TEST(ExecutorTest, CancelStopsRunningHandlersAndDropsTheRest) {
  GatedHandler h;
  Executor e(1, milliseconds(0), nullptr);
  e.Submit(Task(1), &h, 0);
  e.Submit(Task(2), &h, 0);
  ASSERT_TRUE(h.WaitRunning(1));
  const auto dropped = e.Cancel();
  EXPECT_EQ(dropped, (std::vector<std::pair<uint64_t, uint64_t>>{{2, 0}}));
  const std::vector<FinishedTask> done = Collect(e, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_FALSE(done[0].outcome.ok);
  EXPECT_EQ(done[0].outcome.error, "cancelled") << "the handler saw the cancel token";
}

TEST(ExecutorTest, DestroyingItWaitsOnlyForHandlersThatHeedTheCancel) {
  GatedHandler h;
  const auto start = std::chrono::steady_clock::now();
  {
    Executor e(2, milliseconds(0), nullptr);
    e.Submit(Task(1), &h, 0);
    e.Submit(Task(2), &h, 0);
    ASSERT_TRUE(h.WaitRunning(2));
  }
  EXPECT_EQ(h.running(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kPatience) << "the gate never opened";
}

class ThrowingHandler : public Handler {
 public:
  RunOutcome Run(const Item& task, const CancelToken&) override {
    if (task.id == 1) throw std::runtime_error("boom");
    throw 42;
  }
};

TEST(ExecutorTest, AHandlerThatThrowsFailsItsTaskNotTheWorker) {
  ThrowingHandler h;
  std::atomic<bool> never{false};
  const CancelToken cancel(&never);
  FinishedTask t = Executor::RunNow(Task(1), &h, cancel);
  EXPECT_FALSE(t.outcome.ok);
  EXPECT_EQ(t.outcome.error, "the handler failed: boom");
  t = Executor::RunNow(Task(2), &h, cancel);
  EXPECT_EQ(t.outcome.error, "the handler failed with an unknown exception");
  Executor e(1, milliseconds(0), nullptr);
  e.Submit(Task(1), &h, 0);
  const std::vector<FinishedTask> done = Collect(e, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].outcome.error, "the handler failed: boom") << "on a pool thread too";
}

class SleepingHandler : public Handler {
 public:
  RunOutcome Run(const Item&, const CancelToken&) override {
    std::this_thread::sleep_for(milliseconds(20));
    return RunOutcome::Ok(Value());
  }
};

TEST(ExecutorTest, ATasksTimeIncludesItsRunAndTheDelayAfterIt) {
  SleepingHandler h;
  std::atomic<bool> never{false};
  EXPECT_GE(Executor::RunNow(Task(1), &h, CancelToken(&never)).elapsed_us, 20000u);
  Executor e(1, milliseconds(60), nullptr);  // task_worker --delay 0.06
  e.Submit(Task(2), &h, 0);
  const std::vector<FinishedTask> done = Collect(e, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_GE(done[0].elapsed_us, 80000u);
}

}  // namespace
}  // namespace taskq
