// Job: what task_master does when it is not only serving: put tasks into
// "tasks", collect one outcome per task from "results", report. It is an
// ordinary client of the master's queues (over inproc, in the same process).
//
// With --data-dir, a master that finds tasks or outcomes left by an earlier
// run resumes that job instead of starting a new one: it collects what is
// left and puts nothing.
#ifndef TASKQ_MASTER_JOB_H_
#define TASKQ_MASTER_JOB_H_

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "client/client.h"

namespace taskq {

struct JobOptions {
  std::chrono::milliseconds timeout{10000};  // each wait for the next outcome
  bool resume = false;                       // a data dir: collect what an earlier run left
  uint64_t batch = 65536;                    // tasks per put (at most --max-queue)
};

class Job {
 public:
  // Gives the next task to put, false when there are no more.
  using Source = std::function<bool(TaskSpec* task)>;
  // Called with each outcome as it comes.
  using Sink = std::function<void(const Item& outcome)>;

  Job(Client& client, JobOptions options, std::ostream& out, std::ostream& err)
      : client_(client), o_(std::move(options)), out_(out), err_(err) {}

  // Puts what source gives (or, resuming, nothing), prints "Try get
  // results...", collects the outcomes, lists failures. Returns the exit code.
  int Run(const Source& source, const Sink& sink);

 private:
  struct Failure {
    uint64_t id;
    std::string what;
    std::string error;
  };

  Status PutAll(const Source& source, const Sink& sink);
  Status PutBatch(const std::vector<TaskSpec>& batch, const Sink& sink);
  Result<uint64_t> LeftByEarlierRun();
  // Takes what outcomes are there, waiting up to wait for the first.
  Status Take(const Sink& sink, std::chrono::milliseconds wait);
  void Accept(const std::vector<Item>& outcomes, const Sink& sink);
  int Collect(const Sink& sink);
  void TryGetResults();
  int Finish();
  int Stopped(const Status& s);

  Client& client_;
  JobOptions o_;
  std::ostream& out_;
  std::ostream& err_;
  uint64_t expected_ = 0;
  uint64_t received_ = 0;
  std::vector<Failure> failures_;
  uint64_t failed_ = 0;
  bool collecting_ = false;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOB_H_
