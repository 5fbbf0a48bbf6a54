// SingleFlight: one run per key at a time. A caller that comes for a key
// while its run is under way waits for that run and gets the same outcome,
// instead of doing the work twice (as Go's x/sync/singleflight does). The
// download kind uses it with --skip-existing, so that the same URL twice in
// a task list is fetched once by a worker, even when both tasks run at once.
//
// Thread: Do from any thread at once.
#ifndef TASKQ_WORKER_SINGLE_FLIGHT_H_
#define TASKQ_WORKER_SINGLE_FLIGHT_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "worker/handler.h"

namespace taskq {

class SingleFlight {
 public:
  // Runs run for key, or waits for the run of key already under way; both
  // callers get its outcome.
  RunOutcome Do(const std::string& key, const std::function<RunOutcome()>& run) {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = runs_.find(key); it != runs_.end()) {
      std::shared_ptr<Run> r = it->second;
      done_.wait(lock, [&] { return r->done; });
      return r->outcome;
    }
    auto r = std::make_shared<Run>();
    runs_.emplace(key, r);
    lock.unlock();
    RunOutcome outcome;
    try {
      outcome = run();
    } catch (...) {  // the waiters must not wait for ever: they get a failure
      outcome = RunOutcome::Error("the download failed unexpectedly");
    }
    lock.lock();
    r->outcome = outcome;
    r->done = true;
    runs_.erase(key);
    done_.notify_all();
    return outcome;
  }

 private:
  struct Run {
    bool done = false;
    RunOutcome outcome;
  };
  std::mutex mu_;
  std::condition_variable done_;
  std::map<std::string, std::shared_ptr<Run>> runs_;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_SINGLE_FLIGHT_H_
