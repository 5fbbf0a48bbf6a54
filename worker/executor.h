// Executor: a fixed pool of threads that run tasks (task_worker -j N).
// Finished tasks are collected under a lock and announced through an
// eventfd, so the worker's loop wakes for them in the same poll as its
// socket. The eventfd is written only when the finished list goes from empty
// to not empty: one wake-up per batch, not per task.
//
// Thread: Submit, TakeFinished, Cancel and wake_fd are for the owner (the
// worker's loop thread); handlers run on the pool's threads.
#ifndef TASKQ_WORKER_EXECUTOR_H_
#define TASKQ_WORKER_EXECUTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/handler.h"

namespace taskq {

struct FinishedTask {
  uint64_t id = 0;
  RunOutcome outcome;
  uint64_t elapsed_us = 0;
  uint64_t tag = 0;      // as given to Submit
  uint32_t attempt = 0;  // the task's (Item::attempt): the delivery it ran for
};

class Executor {
 public:
  // Called on a pool thread as each task starts.
  using OnStart = std::function<void(const Item& task, Handler* handler)>;

  // delay: a pause after each task (task_worker --delay).
  Executor(int threads, std::chrono::milliseconds delay, OnStart on_start);
  ~Executor();  // cancels, then waits for the tasks running now

  // Queues task to run with handler (which must outlive the executor); tag
  // comes back in its FinishedTask.
  void Submit(Item task, Handler* handler, uint64_t tag);
  // Tasks finished since the last call.
  std::vector<FinishedTask> TakeFinished();
  // Drops the tasks not started yet and returns them, as (id, tag).
  std::vector<std::pair<uint64_t, uint64_t>> DropPending();
  // DropPending, and asks running handlers to stop early too.
  std::vector<std::pair<uint64_t, uint64_t>> Cancel();
  int wake_fd() const { return wake_fd_; }

  // Runs one task on the calling thread, timing it (for Instant handlers).
  static FinishedTask RunNow(const Item& task, Handler* handler, const CancelToken& cancel);

 private:
  struct PendingTask {
    Item task;
    Handler* handler;
    uint64_t tag;
  };
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingTask> pending_;
  std::vector<FinishedTask> finished_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};
  std::chrono::milliseconds delay_;
  OnStart on_start_;
  int wake_fd_ = -1;
  std::vector<std::thread> threads_;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_EXECUTOR_H_
