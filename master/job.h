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
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/client.h"
#include "master/job_report.h"
#include "master/task_source.h"

namespace taskq {

struct JobOptions {
  std::chrono::milliseconds timeout{10000};  // the longest wait for the next outcome
  bool resume = false;                       // a data dir: collect what an earlier run left
  uint64_t batch = 65536;                    // tasks per put (at most --max-queue)
  int wait_workers = 0;                      // --workers N: wait for N workers before the first put
  // --in-flight K: at most K tasks out (put, outcome not yet collected), and
  // each task's submit -> outcome time measured. 0: no limit, not measured.
  uint64_t in_flight = 0;
};

class Job {
 public:
  Job(Client& client, JobOptions options, JobReport& report, std::ostream& out, std::ostream& err)
      : client_(client), o_(std::move(options)), report_(report), out_(out), err_(err) {}

  // Puts what source gives (or, resuming, nothing), prints "Try get
  // results...", collects the outcomes, lists failures. Returns the exit
  // code: 6 if tasks failed, 2 if input lines were skipped, 5 if outcomes
  // stopped coming, 130 if interrupted.
  int Run(TaskSource& source);

 private:
  struct Failure {
    uint64_t id;
    std::string what;
    std::string error;
  };

  Status PutAll(TaskSource& source);
  Status PutBatch(const std::vector<TaskSpec>& batch);
  // --in-flight: collects outcomes until a batch of n more tasks fits.
  Status MakeRoom(uint64_t n);
  Result<uint64_t> LeftByEarlierRun();
  Status WaitForWorkers();
  // Takes what outcomes are there, waiting up to wait for the first.
  Status Take(std::chrono::milliseconds wait);
  int Collect();
  // Takes outcomes until at most outstanding are still to come; kEmpty when
  // none came for --timeout.
  Status CollectUntil(uint64_t outstanding);
  int Finish(uint64_t skipped_lines);
  int Stopped(const Status& s);
  void TryGetResults();

  Client& client_;
  JobOptions o_;
  JobReport& report_;
  std::ostream& out_;
  std::ostream& err_;
  uint64_t expected_ = 0;
  uint64_t received_ = 0;
  uint64_t failed_ = 0;
  std::vector<Failure> failures_;
  bool collecting_ = false;
  uint64_t size_hint_ = 0;  // the source's total, when known
  // --in-flight: when each task still out was put.
  std::unordered_map<uint64_t, std::chrono::steady_clock::time_point> put_at_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOB_H_
