// The collecting half of the job (master/job.h): taking outcomes from the
// reply queue, telling the job's own from others', writing them down before
// acknowledging them, and seeing whether the job still moves. job.cc has the
// putting half, the start and the end.
#include <algorithm>
#include <iostream>

#include "client/exit_codes.h"
#include "master/job.h"
#include "master/outcome_file.h"
#include "master/status_report.h"
#include "proto/limits.h"

namespace taskq {

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
  Result<std::vector<Item>> got = client_.Get(o_.reply_to, want, wait, o_.lease);
  if (!got.ok()) return got.status();
  TASKQ_TRY(Keep(*got));
  report_.Progress(received_, expected_, failed_);
  return Status::Ok();
}

// Ids grow: an earlier run's tasks have ids below this run's first put.
// The master hands out ids in increasing order, so a put's range usually
// follows the last one (merged into it) and the list stays short and
// sorted: a lookup is a binary search, not a walk over every put (a job of
// a million tasks with --in-flight 1 makes a million puts).
void Job::NoteMine(IdRange r) {
  if (r.count == 0) return;
  if (!mine_.empty() && r.first < mine_.back().first + mine_.back().count) {
    mine_sorted_ = false;  // ids went back: a master that restarted without its journal
  } else if (!mine_.empty() && mine_.back().first + mine_.back().count == r.first) {
    mine_.back().count += r.count;
    return;
  }
  mine_.push_back(r);
}

bool Job::Mine(uint64_t id) const {
  if (mine_sorted_) {
    auto at = std::upper_bound(mine_.begin(), mine_.end(), id,
                               [](uint64_t v, const IdRange& m) { return v < m.first; });
    if (at != mine_.begin() && id - std::prev(at)->first < std::prev(at)->count) return true;
  } else {
    for (const IdRange& m : mine_)
      if (id - m.first < m.count) return true;
  }
  return o_.collect_only || (o_.resume && (mine_.empty() || id < mine_.front().first));
}

// An outcome in the reply queue that this job did not put: a task another
// client put with the same reply queue, or one retried with taskq retry (the
// job counted its failure already). Not counted, not written: leased, it
// stays the master's and goes back to the queue when the job ends; taken, it
// is shown here so it is not lost without a word.
void Job::Foreign(const Item& item) {
  err_ << o_.program << ": the outcome of task " << item.id << " (" << item.kind << " "
       << item.arg.ToText() << ") is not of this job (retried with taskq retry, or put by another "
       << "client): not counted"
       << (o_.lease ? ", left in the queue '" + o_.reply_to + "'"
                    : std::string(", ") +
                          (item.outcome && item.outcome->ok ? "value " + item.outcome->value.ToText()
                                                            : "error: " + (item.outcome ? item.outcome->error : std::string())))
       << "\n";
}

Status Job::Keep(const std::vector<Item>& got) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<uint64_t> ids;
  ids.reserve(got.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const Item& item = got[i];
    if ((i & kYieldEvery) == kYieldEvery) Yield();
    if (!Mine(item.id)) {
      Foreign(item);
      continue;
    }
    ids.push_back(item.id);
    if (o_.record && o_.record->Has(item.id)) {  // written by an earlier run
      // Counted in what was left in the master too: leased then by a
      // collector that wrote it and was killed before its ack, the master
      // not yet knowing it gone. It comes now; it is not to come again.
      if (left_counted_ && expected_ > received_) --expected_;
      continue;
    }
    if (!kept_.Insert(item.id)) continue;  // again, after a reconnect: acknowledged once more
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
    if (o_.record) o_.record->Add(item);
  }
  out_.flush();
  if (o_.record) TASKQ_TRY(o_.record->Sync(o_.fsync));
  // Only now may the master forget them: they are in the file.
  if (o_.lease && !ids.empty()) {
    Result<uint64_t> acked = client_.Ack(ids);
    if (!acked.ok()) return acked.status();
  }
  return Status::Ok();
}

int Job::Collect() {
  TryGetResults();
  for (;;) {
    if (Status s = CollectUntil(0); !s.ok()) return Stopped(s);
    if (!o_.collect_only) return kExitOk;
    // Collecting a job is over when the master holds nothing of it any more
    // (docs/PROTOCOL.md 7.10): outcomes put or retried since the start come
    // too.
    Result<uint64_t> left = LeftInMaster();
    if (!left.ok()) return Stopped(left.status());
    if (*left == 0) return kExitOk;
    expected_ += *left;
  }
}

Status Job::CollectUntil(uint64_t outstanding) {
  auto last_move = std::chrono::steady_clock::now();
  while (expected_ - received_ > outstanding) {
    const uint64_t before = received_;
    Status s = Take(std::min(o_.timeout, kTick));
    if (!s.ok() && s.code() != Code::kEmpty) return s;
    bool moved = received_ > before;
    if (!moved) TASKQ_TRY(CheckProgress(&moved));
    const auto now = std::chrono::steady_clock::now();
    if (moved) last_move = now;
    report_.Progress(received_, expected_, failed_);
    if (now - last_move >= o_.timeout) return Status::Error(Code::kEmpty, "no progress");
  }
  return Status::Ok();
}

// A worker that holds a task of the job is working on it, however long it
// takes (--task-timeout bounds that); so is one that was just handed some,
// and one benched for a while. Connected workers that take nothing while
// tasks wait are not progress: the job says so after --timeout rather than
// wait for ever (they may not run these kinds; the master logs that too).
Status Job::CheckProgress(bool* moved) {
  Result<StatsOk> st = client_.Stats(kStatsWait, o_.reply_to);  // named: see LeftInMaster
  if (!st.ok()) return st.status();
  uint64_t leased = 0;
  if (const QueueStats* q = QueueOf(*st, o_.queue)) leased = q->leased;
  const QueueStats* reply = QueueOf(*st, o_.reply_to);
  held_elsewhere_ = reply ? reply->leased : 0;  // this job holds none between takes
  const uint64_t reply_left = reply ? Outstanding(*reply) : 0;
  // Collecting a job, what is to come is what the master holds of it: less
  // when another collector took some, more when outcomes were added.
  bool recounted = false;
  if (o_.collect_only && received_ + reply_left != expected_) {
    if (received_ + reply_left < expected_) elsewhere_ += expected_ - received_ - reply_left;
    expected_ = received_ + reply_left;
    recounted = true;
  }
  // Collecting only, the tasks' queue is not known: any task running counts.
  if (o_.collect_only)
    for (const WorkerStats& w : st->workers) leased += w.in_flight;
  const uint64_t delivered = CounterOf(*st, "delivered");
  workers_seen_ = st->workers.size();
  // A benched worker comes back (docs/PROTOCOL.md, benching): its tasks wait
  // for it or another worker, so the job waits too.
  bool benched = false;
  for (const WorkerStats& w : st->workers) benched = benched || w.benched_ms > 0;
  *moved = recounted || leased > 0 || benched || delivered != delivered_seen_;
  delivered_seen_ = delivered;
  return Status::Ok();
}

}  // namespace taskq
