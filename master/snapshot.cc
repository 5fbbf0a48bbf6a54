#include "master/snapshot.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "master/broker.h"
#include "master/journal.h"
#include "master/status_report.h"

namespace taskq {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Workers are named HOSTNAME-PID unless told otherwise (worker/worker.h).
std::string HostOf(const std::string& name) {
  const std::size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) return name;
  for (std::size_t i = dash + 1; i < name.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return name;
  return name.substr(0, dash);
}

double PerSecond(uint64_t now, uint64_t then, double seconds) {
  return seconds > 0 && now >= then ? static_cast<double>(now - then) / seconds : 0;
}

}  // namespace

uint64_t Snapshot::Counter(std::string_view name) const {
  for (const auto& [k, v] : counters)
    if (k == name) return v;
  return 0;
}

void SnapshotBoard::Publish(std::shared_ptr<const Snapshot> s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest_ = std::move(s);
  }
  changed_.notify_all();
}

std::shared_ptr<const Snapshot> SnapshotBoard::Latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

std::shared_ptr<const Snapshot> SnapshotBoard::WaitNewer(uint64_t seq,
                                                         std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool newer =
      changed_.wait_for(lock, timeout, [&] { return closed_ || (latest_ && latest_->seq > seq); });
  return newer && !closed_ ? latest_ : nullptr;
}

void SnapshotBoard::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  changed_.notify_all();
}

SnapshotPublisher::SnapshotPublisher(SnapshotBoard* board)
    : board_(board), start_(Clock::now()), next_point_(start_) {}

void SnapshotPublisher::Publish(const Broker& broker, const Journal* journal, TimePoint now) {
  auto s = std::make_shared<Snapshot>();
  s->seq = ++seq_;
  s->uptime_s = Seconds(now - start_);
  s->unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  const StatsOk stats = broker.Snapshot(now);
  // A job's reply queue is named by its id, which is what lets a submitter's
  // key read it (docs/PROTOCOL.md 2.5, 7.10): the page (projected in a
  // class, open to anyone on this machine) and /metrics leave those out.
  for (const QueueStats& q : stats.queues)
    if (q.name.rfind(kJobQueuePrefix, 0) != 0)
      s->queues.push_back({Printable(q.name), q.ready, q.leased, q.failed});
  for (const WorkerStats& w : stats.workers)
    s->workers.push_back({std::string(w.name), HostOf(std::string(w.name)), w.in_flight, w.capacity,
                          w.done, w.idle_ms, w.benched_ms, 0});
  std::sort(s->workers.begin(), s->workers.end(),
            [](const Snapshot::Worker& a, const Snapshot::Worker& b) { return a.name < b.name; });
  // A delivery that could not be sent is taken back from the broker's count;
  // a counter shown to Prometheus must never go down, so it holds its peak.
  peaks_.resize(stats.counters.size());
  for (std::size_t i = 0; i < stats.counters.size(); ++i) {
    peaks_[i] = std::max(peaks_[i], stats.counters[i].second);
    s->counters.emplace_back(std::string(stats.counters[i].first), peaks_[i]);
  }
  const FlowLog& flow = broker.flow();
  for (const FlowEvent& e : flow.Since(0, kFlowEvents)) {
    const bool task = e.task != 0;
    s->flow.push_back({e.seq, std::string(FlowKindName(e.kind)), e.task,
                       task ? std::string(broker.queues().KindName(e.task_kind)) : std::string(),
                       std::string(flow.NameOf(e.worker)), e.attempt, e.elapsed_us,
                       Seconds(now - e.at)});
  }
  if (journal) {
    s->journal = true;
    s->journal_bytes = journal->bytes_on_disk();
    s->journal_segments = journal->segments();
  }
  s->rss_bytes = ResidentBytes();
  Rates(s.get(), now);
  AddHistory(s.get(), now);
  if (s->workers.size() > kMaxWorkers) {  // a page of a thousand rows is enough to see
    std::partial_sort(
        s->workers.begin(), s->workers.begin() + kMaxWorkers, s->workers.end(),
        [](const Snapshot::Worker& a, const Snapshot::Worker& b) { return a.idle_ms < b.idle_ms; });
    s->workers.resize(kMaxWorkers);
  }
  board_->Publish(std::move(s));
}

// Rates over the last ~3 s of samples: smooth enough to read, quick to follow.
void SnapshotPublisher::Rates(Snapshot* s, TimePoint now) {
  Sample cur{now, s->Counter("put"), s->Counter("accepted"), s->Counter("failed"), {}};
  for (const Snapshot::Worker& w : s->workers) cur.worker_done[w.name] = w.done;
  while (samples_.size() > 1 && now - samples_[1].at >= std::chrono::seconds(3))
    samples_.pop_front();
  if (!samples_.empty()) {
    const Sample& old = samples_.front();
    const double dt = Seconds(now - old.at);
    s->put_rate = PerSecond(cur.put, old.put, dt);
    s->done_rate = PerSecond(cur.done, old.done, dt);
    s->failed_rate = PerSecond(cur.failed, old.failed, dt);
    for (Snapshot::Worker& w : s->workers) {
      auto it = old.worker_done.find(w.name);
      w.rate = PerSecond(w.done, it == old.worker_done.end() ? 0 : it->second, dt);
    }
  }
  samples_.push_back(std::move(cur));
}

void SnapshotPublisher::AddHistory(Snapshot* s, TimePoint now) {
  if (now >= next_point_) {
    Snapshot::Point p{s->uptime_s, 0, 0, 0, s->put_rate, s->done_rate, s->failed_rate};
    for (const Snapshot::Queue& q : s->queues) {
      p.ready += q.ready;
      p.leased += q.leased;
      p.failed += q.failed;
    }
    history_.push_back(p);
    if (history_.size() > kHistoryPoints) history_.pop_front();
    next_point_ = now + std::chrono::seconds(1);
  }
  s->history.assign(history_.begin(), history_.end());
}

uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace taskq
