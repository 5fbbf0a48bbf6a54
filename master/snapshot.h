// Snapshot: what the master's web pages show, copied out of the broker a few
// times a second (SnapshotPublisher, on the loop thread) and handed to the
// HTTP threads through a SnapshotBoard. A published snapshot never changes,
// so readers need no lock but the one that hands them the pointer, and the
// loop never waits on a reader.
#ifndef TASKQ_MASTER_SNAPSHOT_H_
#define TASKQ_MASTER_SNAPSHOT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/clock.h"

namespace taskq {

class Broker;
class Journal;

struct Snapshot {
  struct Queue {
    std::string name;
    uint64_t ready = 0, leased = 0, failed = 0;
  };
  struct Worker {
    std::string name, host;  // host: the name without its "-PID" (workers' default name)
    uint64_t in_flight = 0, capacity = 0, done = 0, idle_ms = 0, benched_ms = 0;
    double rate = 0;  // outcomes per second, over the last few seconds
  };
  struct Event {  // FlowLog's, with names
    uint64_t seq = 0;
    std::string what;  // FlowKindName
    uint64_t task = 0;
    std::string task_kind, worker;
    uint32_t attempt = 0;
    uint64_t elapsed_us = 0;
    double ago_s = 0;  // before this snapshot
  };
  struct Point {                                 // one a second, for the chart
    double t = 0;                                // seconds since the master started
    uint64_t ready = 0, leased = 0, failed = 0;  // summed over the queues
    double put_rate = 0, done_rate = 0, failed_rate = 0;
  };

  uint64_t seq = 0;  // 1, 2, ... per publication
  double uptime_s = 0;
  int64_t unix_ms = 0;
  std::vector<Queue> queues;
  std::vector<Worker> workers;
  std::vector<std::pair<std::string, uint64_t>> counters;  // as in a stats reply
  std::vector<Event> flow;                                 // oldest first
  std::vector<Point> history;                              // oldest first
  double put_rate = 0, done_rate = 0, failed_rate = 0;     // per second, lately
  bool journal = false;
  uint64_t journal_bytes = 0, journal_segments = 0;
  uint64_t rss_bytes = 0;

  uint64_t Counter(std::string_view name) const;
};

// Where the loop leaves the latest snapshot for the HTTP threads.
// Thread: any.
class SnapshotBoard {
 public:
  void Publish(std::shared_ptr<const Snapshot> s);
  // The latest snapshot; null before the first.
  std::shared_ptr<const Snapshot> Latest() const;
  // The first snapshot newer than seq, waiting up to timeout for it; null on
  // timeout or once closed.
  std::shared_ptr<const Snapshot> WaitNewer(uint64_t seq, std::chrono::milliseconds timeout);
  // Wakes every waiter for good (the server stops).
  void Close();

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::shared_ptr<const Snapshot> latest_;
  bool closed_ = false;
};

// Builds snapshots from the broker, keeps the chart's history and the rates.
// Thread: the master's loop thread.
class SnapshotPublisher {
 public:
  static constexpr std::size_t kFlowEvents = 120;     // the newest, per snapshot
  static constexpr std::size_t kHistoryPoints = 300;  // five minutes, one a second
  static constexpr std::size_t kMaxWorkers = 1000;    // shown, most recently heard first

  explicit SnapshotPublisher(SnapshotBoard* board);
  // journal may be null.
  void Publish(const Broker& broker, const Journal* journal, TimePoint now);

 private:
  struct Sample {
    TimePoint at;
    uint64_t put = 0, done = 0, failed = 0;
    std::unordered_map<std::string, uint64_t> worker_done;
  };
  void Rates(Snapshot* s, TimePoint now);
  void AddHistory(Snapshot* s, TimePoint now);

  SnapshotBoard* board_;
  TimePoint start_;
  uint64_t seq_ = 0;
  std::vector<uint64_t> peaks_;  // per counter, the highest value published
  std::deque<Sample> samples_;   // the last few seconds, for rates
  std::deque<Snapshot::Point> history_;
  TimePoint next_point_;
};

// The resident set of this process in bytes (/proc/self/statm); 0 if unknown.
uint64_t ResidentBytes();

}  // namespace taskq

#endif  // TASKQ_MASTER_SNAPSHOT_H_
