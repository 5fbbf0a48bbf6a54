#include "master/job.h"

#include <algorithm>
#include <iostream>
#include <thread>

#include "client/exit_codes.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Failures listed one by one at the end; past this, only counted.
constexpr std::size_t kFailuresListed = 20;
// The longest single wait, so progress keeps moving while outcomes are slow.
constexpr std::chrono::milliseconds kTick{250};

}  // namespace

int Job::Run(TaskSource& source) {
  uint64_t left = 0;
  if (o_.resume) {
    Result<uint64_t> r = LeftByEarlierRun();
    if (!r.ok()) return Stopped(r.status());
    left = *r;
  }
  size_hint_ = source.size_hint();
  if (Status s = WaitForWorkers(); !s.ok()) return Stopped(s);
  report_.Start();  // the job's time runs from here: benchmarks time the work, not the waiting
  if (left > 0) {
    out_ << "Resuming the job in the data dir: " << left << " outcome(s) still to collect" << std::endl;
    expected_ = left;
  } else if (Status s = PutAll(source); !s.ok()) {
    return Stopped(s);
  }
  if (int code = Collect(); code != kExitOk) return code;
  return Finish(source.skipped());
}

// One message carries many tasks: a put per batch, not per task.
Status Job::PutAll(TaskSource& source) {
  std::vector<TaskSpec> batch;
  TaskSpec t;
  const std::size_t most =
      std::clamp<uint64_t>(o_.in_flight ? std::min(o_.batch, o_.in_flight) : o_.batch, 1, kMaxBatch);
  // The first puts are small and each is twice the last: workers start on
  // the first tasks while the next batch is still being made, instead of
  // waiting for 65536 to be read, encoded and decoded.
  std::size_t per_put = std::min<std::size_t>(most, 1024);
  for (bool more = source.Next(&t); more || !batch.empty();) {
    if (more) {
      batch.push_back(std::move(t));
      more = source.Next(&t);
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
    Result<IdRange> r = client_.Put("tasks", batch);
    if (r.ok()) {
      expected_ += r->count;
      if (o_.in_flight)
        for (uint64_t i = 0; i < r->count; ++i) put_at_.emplace(r->first + i, sent);
      return Status::Ok();
    }
    if (r.status().code() != Code::kFull) return r.status();
    Status s = Take(std::chrono::milliseconds(100));
    if (!s.ok() && s.code() != Code::kEmpty) return s;
  }
}

// A batch is never larger than --in-flight (PutAll), so n <= in_flight.
Status Job::MakeRoom(uint64_t n) {
  return o_.in_flight == 0 ? Status::Ok() : CollectUntil(o_.in_flight - n);
}

// Tasks still queued or leased, and outcomes not collected, in the queues
// the journal brought back.
Result<uint64_t> Job::LeftByEarlierRun() {
  Result<StatsOk> st = client_.Stats();
  if (!st.ok()) return st.status();
  uint64_t left = 0;
  for (const QueueStats& q : st->queues) {
    if (q.name == "tasks") left += q.ready + q.leased;
    if (q.name == "results") left += q.ready;
  }
  return left;
}

Status Job::WaitForWorkers() {
  if (o_.wait_workers <= 0) return Status::Ok();
  out_ << "Waiting for " << o_.wait_workers << " worker(s)..." << std::endl;
  for (;;) {
    Result<StatsOk> st = client_.Stats();
    if (!st.ok()) return st.status();
    if (st->workers.size() >= static_cast<std::size_t>(o_.wait_workers)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a signal ends the next Stats
  }
}

void Job::TryGetResults() {
  if (collecting_) return;
  collecting_ = true;
  // Outcomes may come in before every task is put (--in-flight, a full
  // queue): the report's kind follows the whole job where it is known.
  report_.Begin(std::max(expected_, size_hint_));
  out_ << "Try get results..." << std::endl;
}

Status Job::Take(std::chrono::milliseconds wait) {
  TryGetResults();
  const uint32_t want =
      static_cast<uint32_t>(std::clamp<uint64_t>(expected_ - received_, 1, kMaxBatch));
  Result<std::vector<Item>> got = client_.Get("results", want, wait);
  if (!got.ok()) return got.status();
  const auto now = std::chrono::steady_clock::now();
  for (const Item& item : *got) {
    ++received_;
    if (auto it = put_at_.find(item.id); it != put_at_.end()) {
      report_.Latency(now - it->second);
      put_at_.erase(it);
    }
    if (item.outcome && !item.outcome->ok) {
      ++failed_;
      if (failures_.size() < kFailuresListed)
        failures_.push_back(
            Failure{item.id, item.kind + " " + item.arg.ToText(), item.outcome->error});
    }
    report_.Outcome(item);
  }
  out_.flush();
  report_.Progress(received_, expected_, failed_);
  return Status::Ok();
}

int Job::Collect() {
  TryGetResults();
  Status s = CollectUntil(0);
  return s.ok() ? kExitOk : Stopped(s);
}

Status Job::CollectUntil(uint64_t outstanding) {
  auto last_outcome = std::chrono::steady_clock::now();
  while (expected_ - received_ > outstanding) {
    const uint64_t before = received_;
    Status s = Take(std::min(o_.timeout, kTick));
    const auto now = std::chrono::steady_clock::now();
    if (received_ > before) last_outcome = now;
    if (!s.ok() && s.code() != Code::kEmpty) return s;
    report_.Progress(received_, expected_, failed_);
    if (now - last_outcome >= o_.timeout) return Status::Error(Code::kEmpty, "no outcome");
  }
  return Status::Ok();
}

int Job::Finish(uint64_t skipped_lines) {
  report_.Summary(received_, expected_, failed_, skipped_lines);
  if (failed_ > 0) {
    err_ << "task_master: " << failed_ << " of " << expected_ << " task(s) failed:\n";
    for (const Failure& f : failures_)
      err_ << "  task " << f.id << " (" << f.what << "): " << f.error << "\n";
    if (failed_ > failures_.size())
      err_ << "  ... and " << failed_ - failures_.size()
           << " more (all are in the queue 'failed')\n";
    return kExitTasksFailed;
  }
  if (skipped_lines > 0) {
    err_ << "task_master: " << skipped_lines
         << " input line(s) were not tasks (see above); the others ran\n";
    return kExitUsage;
  }
  return kExitOk;
}

int Job::Stopped(const Status& s) {
  report_.Summary(received_, expected_, failed_, 0);
  switch (s.code()) {
    case Code::kEmpty:
      err_ << "task_master: no result for " << o_.timeout.count() / 1000.0 << " s (" << received_
           << " of " << expected_ << " received); are workers connected?\n";
      return kExitTimeout;
    case Code::kInterrupted:
      err_ << "task_master: interrupted (" << received_ << " of " << expected_
           << " results received)\n";
      return kExitInterrupted;
    default:
      err_ << "task_master: " << s.message() << "\n";
      return kExitError;
  }
}

}  // namespace taskq
