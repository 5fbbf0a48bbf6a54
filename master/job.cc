#include "master/job.h"

#include <algorithm>
#include <iostream>
#include <sstream>
#include <thread>

#include "client/exit_codes.h"
#include "master/outcome_file.h"
#include "master/status_report.h"
#include "proto/limits.h"

namespace taskq {
bool SeenIds::Insert(uint64_t id) {
  const uint64_t word_base = id & ~uint64_t{63};
  if (words_.empty()) {
    base_ = word_base;
  } else if (word_base < base_) {  // below the lowest so far: grow at the front
    words_.insert(words_.begin(), (base_ - word_base) / 64, 0);
    base_ = word_base;
  }
  const uint64_t w = (word_base - base_) / 64;
  if (w >= words_.size()) words_.resize(w + 1, 0);
  const uint64_t bit = uint64_t{1} << (id & 63);
  if (words_[w] & bit) return false;
  words_[w] |= bit;
  return true;
}

int Job::Run(TaskSource& source) {
  size_hint_ = source.size_hint();
  uint64_t before = 0;
  if (o_.collect_only) {
    report_.Start();  // collecting is the whole job: its time runs from here
    // What is to come, so that the report picks lines or a progress bar
    // before the first outcome.
    Result<uint64_t> left = LeftInMaster();
    if (!left.ok()) return Stopped(left.status());
    size_hint_ = *left;
    out_ << "Collecting " << o_.name << ": " << *left << " outcome(s) to come";
    if (o_.record && o_.record->count() > 0)
      out_ << ", " << o_.record->count() << " in " << o_.record->path() << " already ("
           << o_.record->failed() << " failed)";
    out_ << std::endl;
    TryGetResults();
  }
  if (o_.resume) {
    Result<uint64_t> r = PutByEarlierRuns();
    if (!r.ok()) return Stopped(r.status());
    before = *r;
  }
  const auto began = std::chrono::steady_clock::now();
  if (Status s = WaitForWorkers(); !s.ok()) return Stopped(s);
  // The job's time runs from here: benchmarks time the work, not the waiting.
  if (!o_.collect_only) report_.Start();
  report_.Waited(std::chrono::steady_clock::now() - began);
  if (before > 0 && !o_.collect_only) {
    out_ << "Resuming the job in the data dir: " << received_ << " of " << before
         << " outcome(s) collected before";
    if (o_.record) out_ << " (in " << o_.record->path() << ")";
    out_ << std::endl;
    if (Status s = SkipPut(source, before); !s.ok()) return Stopped(s);
  }
  if (Status s = PutAll(source); !s.ok()) return Stopped(s);
  if (o_.put_only) return kExitOk;
  if (int code = Collect(); code != kExitOk) return code;
  finished_ = true;
  return Finish(source.skipped());
}

// One message carries many tasks: a put per batch, not per task.
Status Job::PutAll(TaskSource& source) {
  std::vector<TaskSpec> batch;
  TaskSpec t;
  const std::size_t most = std::clamp<uint64_t>(
      o_.in_flight ? std::min(o_.batch, o_.in_flight) : o_.batch, 1, kMaxBatch);
  // The first puts are small and each is twice the last: workers start on
  // the first tasks while the next batch is still being made, instead of
  // waiting for 65536 to be read, encoded and decoded.
  std::size_t per_put = std::min<std::size_t>(most, 1024);
  for (bool more = source.Next(&t); more || !batch.empty();) {
    if (more) {
      batch.push_back(std::move(t));
      more = source.Next(&t);
      if ((batch.size() & kYieldEvery) == 0) Yield();
    }
    if (batch.size() < per_put && more) continue;
    TASKQ_TRY(MakeRoom(batch.size()));
    TASKQ_TRY(PutBatch(batch));
    batch.clear();
    per_put = std::min(most, 2 * per_put);
  }
  out_.flush();
  return Status::Ok();
}

// A queue at its limit (--max-queue) answers "full": collecting outcomes
// meanwhile keeps the results queue from growing while the tasks drain.
Status Job::PutBatch(const std::vector<TaskSpec>& batch) {
  for (;;) {
    const auto sent = std::chrono::steady_clock::now();
    // Putting only, nothing is collected meanwhile: the put itself waits
    // for room, up to --timeout.
    Result<IdRange> r = client_.Put(o_.queue, batch, o_.reply_to,
                                    o_.put_only ? o_.timeout : std::chrono::milliseconds(0));
    if (r.ok()) {
      expected_ += r->count;
      NoteMine(*r);
      if (o_.in_flight)
        for (uint64_t i = 0; i < r->count; ++i) put_at_.emplace(r->first + i, sent);
      return Status::Ok();
    }
    if (r.status().code() != Code::kFull) return r.status();
    if (o_.put_only) {
      std::ostringstream why;
      why << "the queue '" << o_.queue << "' stayed full (task_master --max-queue) for "
          << o_.timeout.count() / 1000.0 << " s; " << expected_ << " task(s) were put, the rest not";
      return Status::Error(Code::kFull, why.str());
    }
    Status s = Take(std::chrono::milliseconds(100));
    if (!s.ok() && s.code() != Code::kEmpty) return s;
  }
}

// A batch is never larger than --in-flight (PutAll), so n <= in_flight.
Status Job::MakeRoom(uint64_t n) {
  return o_.in_flight == 0 ? Status::Ok() : CollectUntil(o_.in_flight - n);
}

// Tasks whose outcome is still to come into the reply queue (waiting or
// running, in whatever queue), and outcomes there not yet collected.
Result<uint64_t> Job::LeftInMaster() {
  // Named, so that a submitter's key, which sees no job queue it did not
  // put to on this connection, sees this one (taskq results, a reconnect).
  Result<StatsOk> st = client_.Stats(kStatsWait, o_.reply_to);
  if (!st.ok()) return st.status();
  const QueueStats* q = QueueOf(*st, o_.reply_to);
  return q ? Outstanding(*q) : 0;
}

// Every task an earlier run put is now exactly once in one of: the record
// (its outcome was written), the master's task queue (waiting or running:
// owed to the reply queue) or the reply queue (an outcome not yet
// acknowledged). Outcomes in both the record and the master (written, then
// the kill came before the ack) are acknowledged first, so that the count
// below sees each task once.
Result<uint64_t> Job::PutByEarlierRuns() {
  // Collecting only, the summary and exit code are about what this run
  // collects: the file's earlier lines were reported by the run that wrote
  // them (and a failure there may have been retried since).
  const bool count_record = o_.record && !o_.collect_only;
  received_ = count_record ? o_.record->count() : 0;
  failed_ = count_record ? o_.record->failed() : 0;
  for (;;) {
    Result<std::vector<Item>> got = client_.Get(o_.reply_to, kMaxBatch, {}, o_.lease);
    if (!got.ok() && got.status().code() == Code::kEmpty) break;
    if (!got.ok()) return got.status();
    if (got->empty()) break;
    TASKQ_TRY(Keep(*got));
  }
  Result<uint64_t> left = LeftInMaster();
  if (!left.ok()) return left.status();
  expected_ = received_ + *left;
  left_counted_ = true;
  return expected_;
}

// The source gives its tasks in the same order every run (the tutorial's
// random numbers aside, whose count is what matters): the first n were put.
Status Job::SkipPut(TaskSource& source, uint64_t n) {
  TaskSpec t;
  uint64_t skipped = 0;
  while (skipped < n && source.Next(&t))
    if ((++skipped & kYieldEvery) == 0) Yield();
  if (skipped < n)
    err_ << o_.program << ": the job's input now has " << skipped << " task(s), but " << n
         << " were put before; collecting those\n";
  return Status::Ok();
}

Result<std::size_t> Job::CountWorkers() {
  Result<StatsOk> st = client_.Stats();
  if (!st.ok()) return st.status();
  workers_seen_ = st->workers.size();
  return st->workers.size();
}

// --workers N waits for N. The tutorial job waits for one, for ever, as
// BaseManager's does (a teacher may start the worker minutes later), then
// a moment more so that workers started together all get tasks.
void Job::Pause(std::chrono::milliseconds d) {
  if (o_.pause)
    o_.pause(d);
  else
    std::this_thread::sleep_for(d);
}

// Reading a large batch of tasks or writing one of outcomes takes tens of
// milliseconds: a loop that runs only while the job waits (JobOptions::pause)
// gets a turn meanwhile, so workers are not kept waiting for their next
// tasks.
void Job::Yield() {
  if (o_.pause) o_.pause(std::chrono::milliseconds(0));
}

Status Job::WaitForWorkers() {
  const std::size_t want =
      o_.wait_workers > 0 ? static_cast<std::size_t>(o_.wait_workers) : o_.wait_first_worker;
  if (want == 0) return Status::Ok();
  waiting_for_workers_ = true;
  Result<std::size_t> n = CountWorkers();
  if (!n.ok()) return n.status();
  if (*n < want) {
    if (o_.wait_workers > 0)
      out_ << "Waiting for " << o_.wait_workers << " worker(s)..." << std::endl;
    else
      out_ << "Waiting for a worker: " << o_.connect_hint << "..." << std::endl;
  }
  // Polled: a signal ends the next Stats.
  const auto start = std::chrono::steady_clock::now();
  while (*n < want) {
    if (o_.wait_workers == 0 && o_.first_worker_timeout.count() > 0 &&
        std::chrono::steady_clock::now() - start >= o_.first_worker_timeout)
      return Status::Error(Code::kEmpty, "no worker came");
    Pause(std::chrono::milliseconds(20));
    const std::size_t before = *n;
    n = CountWorkers();
    if (!n.ok()) return n.status();
    // A class watches its workers arrive.
    if (o_.wait_workers > 0 && *n != before && *n < want)
      out_ << "Workers connected: " << *n << " of " << want << std::endl;
  }
  if (o_.wait_workers == 0) {
    const auto until = std::chrono::steady_clock::now() + o_.gather;
    while (std::chrono::steady_clock::now() < until) {
      Pause(std::chrono::milliseconds(20));
      if (Result<std::size_t> m = CountWorkers(); !m.ok()) return m.status();
    }
  }
  waiting_for_workers_ = false;
  return Status::Ok();
}

int Job::Finish(uint64_t skipped_lines) {
  report_.Summary(received_, expected_, failed_, skipped_lines);
  if (elsewhere_ > 0)
    err_ << o_.program << ": " << elsewhere_
         << " outcome(s) of the job were collected by another connection meanwhile\n";
  if (o_.collect_only && received_ == 0)  // the report has nothing to sum up
    out_ << "Nothing new to collect"
         << (o_.record ? ": the outcomes left were in " + o_.record->path() + " already" : "")
         << std::endl;
  if (failed_ > 0) {
    err_ << o_.program << ": " << failed_ << " of " << expected_ << " task(s) failed:\n";
    for (const Failure& f : failures_)
      err_ << "  task " << f.id << " (" << f.what << "): " << f.error << "\n";
    if (failed_ > failures_.size())
      err_ << "  ... and " << failed_ - failures_.size()
           << " more (all are in the queue 'failed')\n";
    return kExitTasksFailed;
  }
  if (skipped_lines > 0) {
    err_ << o_.program << ": " << skipped_lines
         << " input line(s) were not tasks (see above); the others ran\n";
    return kExitUsage;
  }
  return kExitOk;
}

int Job::Stopped(const Status& s) {
  report_.Summary(received_, expected_, failed_, 0);
  // How to collect the rest later, when this job can be taken up again.
  // Nothing to collect later when nothing was put.
  const bool any = expected_ > 0 || o_.collect_only;
  const std::string later = !o_.resume_hint.empty() ? (any ? "; " + o_.resume_hint : "")
                            : o_.resumable          ? "; run the same command to resume"
                                                    : "";
  switch (s.code()) {
    case Code::kEmpty:
      err_ << o_.program << ": no progress for " << o_.timeout.count() / 1000.0 << " s ("
           << received_ << " of " << std::max(expected_, size_hint_) << " received): ";
      if (held_elsewhere_ > 0)
        err_ << held_elsewhere_ << " outcome(s) of the job are held by another connection (another "
             << "collector, or one stopped a moment ago: the master hands them back once it finds "
             << "it gone)";
      else if (workers_seen_ == 0)
        err_ << "no worker is connected. Start one with task_worker --server HOST:PORT, give "
                "--timeout more seconds, or --workers N to wait for N workers first";
      else
        err_ << workers_seen_ << " worker(s) connected, but none took a task (do they run "
             << "these kinds of task?); --timeout sets how long to wait";
      err_ << (o_.resume_hint.empty() ? "" : later) << "\n";
      return kExitTimeout;
    case Code::kInterrupted:
      if (waiting_for_workers_)
        err_ << o_.program << ": interrupted while waiting for workers (" << workers_seen_
             << " of " << std::max<int>(o_.wait_workers, 1) << " connected)";
      else
        err_ << o_.program << ": interrupted (" << received_ << " of " << expected_
             << " results received)";
      err_ << later << "\n";
      return kExitInterrupted;
    default:
      err_ << o_.program << ": " << s.message() << later << "\n";
      return ClientExitCode(s);
  }
}

}  // namespace taskq
