#include "master/job.h"

#include <algorithm>
#include <iostream>

#include "client/exit_codes.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Failures listed one by one at the end; past this, only counted.
constexpr std::size_t kFailuresListed = 20;

}  // namespace

int Job::Run(const Source& source, const Sink& sink) {
  uint64_t left = 0;
  if (o_.resume) {
    Result<uint64_t> r = LeftByEarlierRun();
    if (!r.ok()) return Stopped(r.status());
    left = *r;
  }
  if (left > 0) {
    out_ << "Resuming the job in the data dir: " << left << " outcome(s) still to collect"
         << std::endl;
    expected_ = left;
  } else if (Status s = PutAll(source, sink); !s.ok()) {
    return Stopped(s);
  }
  if (int code = Collect(sink); code != kExitOk) return code;
  return Finish();
}

// One message carries many tasks: a put per batch, not per task.
Status Job::PutAll(const Source& source, const Sink& sink) {
  std::vector<TaskSpec> batch;
  TaskSpec t;
  const std::size_t per_put = std::clamp<uint64_t>(o_.batch, 1, kMaxBatch);
  for (bool more = source(&t); more || !batch.empty();) {
    if (more) {
      batch.push_back(std::move(t));
      more = source(&t);
    }
    if (batch.size() < per_put && more) continue;
    TASKQ_TRY(PutBatch(batch, sink));
    batch.clear();
  }
  out_.flush();
  return Status::Ok();
}

// A queue at its limit (--max-queue) answers "full": collecting outcomes
// meanwhile keeps the results queue from growing while the tasks drain.
Status Job::PutBatch(const std::vector<TaskSpec>& batch, const Sink& sink) {
  for (;;) {
    Result<IdRange> r = client_.Put("tasks", batch);
    if (r.ok()) {
      expected_ += r->count;
      return Status::Ok();
    }
    if (r.status().code() != Code::kFull) return r.status();
    TASKQ_TRY(Take(sink, std::chrono::milliseconds(100)));
  }
}

void Job::TryGetResults() {
  if (collecting_) return;
  collecting_ = true;
  out_ << "Try get results..." << std::endl;
}

Status Job::Take(const Sink& sink, std::chrono::milliseconds wait) {
  TryGetResults();
  const uint32_t want =
      static_cast<uint32_t>(std::clamp<uint64_t>(expected_ - received_, 1, kMaxBatch));
  Result<std::vector<Item>> got = client_.Get("results", want, wait);
  if (!got.ok()) return got.status().code() == Code::kEmpty ? Status::Ok() : got.status();
  Accept(*got, sink);
  return Status::Ok();
}

void Job::Accept(const std::vector<Item>& outcomes, const Sink& sink) {
  for (const Item& item : outcomes) {
    ++received_;
    if (item.outcome && !item.outcome->ok) {
      ++failed_;
      if (failures_.size() < kFailuresListed)
        failures_.push_back(Failure{item.id, item.kind + " " + PackedToJson(item.arg.packed()),
                                    item.outcome->error});
    }
    sink(item);
  }
  out_.flush();
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

int Job::Collect(const Sink& sink) {
  TryGetResults();
  while (received_ < expected_) {
    const uint32_t want =
        static_cast<uint32_t>(std::min<uint64_t>(expected_ - received_, kMaxBatch));
    Result<std::vector<Item>> got = client_.Get("results", want, o_.timeout);
    if (!got.ok()) return Stopped(got.status());
    Accept(*got, sink);
  }
  return kExitOk;
}

int Job::Finish() {
  if (failed_ == 0) return kExitOk;
  err_ << "task_master: " << failed_ << " of " << expected_ << " task(s) failed:\n";
  for (const Failure& f : failures_)
    err_ << "  task " << f.id << " (" << f.what << "): " << f.error << "\n";
  if (failed_ > failures_.size())
    err_ << "  ... and " << failed_ - failures_.size() << " more (all are in the queue 'failed')\n";
  return kExitTasksFailed;
}

int Job::Stopped(const Status& s) {
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
