// Job: put tasks into a queue ("tasks"), collect one outcome per task from
// their reply queue ("results", or a job's own "job.ID": docs/PROTOCOL.md
// 7.10), report. It is an ordinary client of the master's queues: task_master
// runs its built-in job with it over inproc, in the same process, and taskq
// submit / taskq results over TCP, from anywhere.
//
// With a record (--data-dir), no outcome is ever lost: the job takes
// outcomes leased, writes them to the record and syncs it, and only then
// acknowledges them, so the master forgets an outcome only once it is in
// the file. A resumed job (the same command after a kill) first collects
// what is ready, then counts the tasks it put before: those whose outcome
// is in the record plus those still in the master (a put is all or none in
// the journal, so this count is exact), skips that many of its source and
// puts the rest. Outcomes already in the record are acknowledged, not
// written again.
#ifndef TASKQ_MASTER_JOB_H_
#define TASKQ_MASTER_JOB_H_

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/client.h"
#include "master/job_report.h"
#include "master/task_source.h"

namespace taskq {

class OutcomeFile;

struct JobOptions {
  // Waits between polls of the master (for workers to come); null: sleeps.
  // task_master's own job runs the server loop meanwhile (master.cc), and
  // is called with 0 now and then during long work to let the loop run
  // what is ready.
  std::function<void(std::chrono::milliseconds)> pause;
  std::string queue = "tasks";       // where the tasks go (workers take from it)
  std::string reply_to = "results";  // where their outcomes come
  std::string program = "task_master";  // the first word of its messages
  // Said when the job stops before it is over (interrupted, no progress):
  // how to collect the rest ("taskq results ID ..."). Empty: resumable says.
  std::string resume_hint;
  // Only collect (taskq results): the job's tasks were put by someone else,
  // and every outcome in reply_to is the job's. Implies resume.
  bool collect_only = false;
  std::string name;  // the job, as the collect-only line names it ("job k3f9")
  // Put the tasks and return (taskq submit --detach): someone collects
  // the outcomes later.
  bool put_only = false;
  // Give up when nothing moved for this long: no outcome came and no worker
  // held a task of the job. A slow task on a live worker is not a timeout.
  std::chrono::milliseconds timeout{10000};
  bool resume = false;  // an earlier run of this job may have left tasks and outcomes
  // Where outcomes are written (--results FILE, or the data dir's): not
  // owned; null for none. With lease, outcomes are taken leased and
  // acknowledged after the file is synced (fsync: to the disk).
  OutcomeFile* record = nullptr;
  bool lease = false;
  bool fsync = false;
  uint64_t batch = 65536;  // tasks per put (at most --max-queue)
  int wait_workers = 0;    // --workers N: wait for N workers before the first put
  // The tutorial job: with no --workers, wait for a first worker however long
  // it takes (saying once how to start one: connect_hint), then gather more
  // for this long, so that the tasks spread over every worker started.
  bool wait_first_worker = false;
  std::chrono::milliseconds gather{0};
  std::chrono::milliseconds first_worker_timeout{0};  // 0: wait for ever
  std::string connect_hint;  // "task_worker --server HOST:PORT (and the same authkey)"
  bool resumable = false;    // --data-dir: an interrupted job resumes with the same command
  // --in-flight K: at most K tasks out (put, outcome not yet collected), and
  // each task's submit -> outcome time measured. 0: no limit, not measured.
  uint64_t in_flight = 0;
};

// The ids of outcomes a job has kept, as a bitmap from the lowest id seen:
// over TCP an outcome can come twice (a reconnect gives back a lease not
// yet acknowledged: docs/PROTOCOL.md 7.2), and must be counted once. A
// job's ids are close together, so a bit each is enough.
class SeenIds {
 public:
  // False when id was inserted before.
  bool Insert(uint64_t id);

 private:
  uint64_t base_ = 0;  // id of bit 0 of words_[0], a multiple of 64
  std::vector<uint64_t> words_;
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
  // Every task put had its outcome collected (whatever the exit code).
  bool finished() const { return finished_; }
  uint64_t tasks_put() const { return expected_; }

 private:
  // Failures listed one by one at the end; past this, only counted.
  static constexpr std::size_t kFailuresListed = 20;
  // The longest single wait, so progress keeps moving while outcomes are slow.
  static constexpr std::chrono::milliseconds kTick{250};
  // How long a stats request may go unanswered (Client::Stats's default).
  static constexpr std::chrono::milliseconds kStatsWait{30000};
  // Yield after this many tasks read or outcomes written (a power of two, less one).
  static constexpr std::size_t kYieldEvery = 1023;
  struct Failure {
    uint64_t id;
    std::string what;
    std::string error;
  };

  Status PutAll(TaskSource& source);
  Status PutBatch(const std::vector<TaskSpec>& batch);
  // --in-flight: collects outcomes until a batch of n more tasks fits.
  Status MakeRoom(uint64_t n);
  // Resuming: collects what is ready, then returns how many tasks the
  // earlier runs put; skips as many of source.
  Result<uint64_t> PutByEarlierRuns();
  Status SkipPut(TaskSource& source, uint64_t n);
  // Tasks and outcomes of the job the master holds now.
  Result<uint64_t> LeftInMaster();
  // Writes new outcomes to the record, syncs it, acknowledges them all.
  Status Keep(const std::vector<Item>& got);
  // An outcome of a task this job put (this run, or an earlier one resumed).
  bool Mine(uint64_t id) const;
  void NoteMine(IdRange r);
  void Foreign(const Item& item);
  // After a wait with no outcome: did anything else move (a worker holds a
  // task)? Remembers what it saw for the message if the job gives up.
  Status CheckProgress(bool* moved);
  Status WaitForWorkers();
  void Pause(std::chrono::milliseconds d);
  void Yield();
  // Connected workers now (Stats), remembered for the messages.
  Result<std::size_t> CountWorkers();
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
  bool finished_ = false;
  uint64_t workers_seen_ = 0;  // connected workers at the last progress check
  bool waiting_for_workers_ = false;
  uint64_t delivered_seen_ = 0;
  uint64_t held_elsewhere_ = 0;  // outcomes of the reply queue leased, at the last check
  uint64_t elsewhere_ = 0;       // collecting only: outcomes another connection collected
  // --in-flight: when each task still out was put.
  std::unordered_map<uint64_t, std::chrono::steady_clock::time_point> put_at_;
  std::vector<IdRange> mine_;  // the ids this run put, in order, adjacent ones merged
  bool mine_sorted_ = true;    // false once ids went back (Mine then walks mine_)
  SeenIds kept_;               // the outcomes this run counted
  bool left_counted_ = false;  // expected_ counts what the master held (resuming)
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOB_H_
