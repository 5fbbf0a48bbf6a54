// Broker: the master as a state machine, with no sockets. It takes a peer's
// message bytes (Handle) and the passing of time (Tick), changes the queues,
// leases and parked gets, and queues replies in an outbox that Flush hands to
// a Transport. The Server wraps it in ZeroMQ; tests drive it directly.
//
// Nothing it sends can block: replies wait in the outbox until the loop
// flushes them, and a send the transport cannot take puts handed-out entries
// back. Every peer must say hello before anything else.
//
// Thread: one thread (the master's loop) calls everything.
#ifndef TASKQ_MASTER_BROKER_H_
#define TASKQ_MASTER_BROKER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "master/lease_table.h"
#include "master/queue_set.h"
#include "proto/message.h"

namespace taskq {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct BrokerOptions {
  std::string name = "taskq-master";
  uint64_t instance = 0;  // random per start (welcome.instance)
  // Both sides send something at least this often; a worker silent for
  // missed_heartbeats intervals is declared dead and its tasks go back.
  std::chrono::milliseconds heartbeat{1000};
  int missed_heartbeats = 3;
  // Deliveries of a task before it is given up on (failed).
  uint32_t max_attempts = 3;
  // A leased task not answered within this goes back; zero: no limit.
  // A task's own timeout_ms overrides it.
  std::chrono::milliseconds task_timeout{0};
  // A client that holds nothing and was silent this long is forgotten.
  std::chrono::milliseconds forget_idle_client{std::chrono::minutes(10)};
};

// Where Flush sends. kGone: the peer is not connected (any more).
enum class SendResult { kSent, kFull, kGone };
class Transport {
 public:
  virtual ~Transport() = default;
  virtual SendResult Send(std::string_view routing_id, std::string_view bytes) = 0;
};

class Broker {
 public:
  using Logger = std::function<void(const std::string&)>;

  Broker(BrokerOptions options, Logger log);

  // One message from the peer with this routing id.
  void Handle(std::string_view routing_id, std::string_view bytes, TimePoint now);
  // Expires parked gets, leases past their deadline and silent peers, and
  // queues heartbeats.
  void Tick(TimePoint now);
  // When Tick next has work; TimePoint::max() when nothing is pending.
  TimePoint NextDeadline();
  // Sends the outbox. An items reply that cannot be sent puts its entries back.
  void Flush(Transport& transport, TimePoint now);
  // Queues a shutdown notice to every peer.
  void Shutdown(std::string_view reason);

  void CountRefusedHandshake() { ++counters_.refused_handshakes; }
  bool has_output() const { return !outbox_.empty(); }
  // A snapshot of what stats replies carry, for the master's own reports.
  StatsOk Snapshot(TimePoint now) const;
  // The live entries and the memory they use (for tests and benchmarks).
  const QueueSet& queues() const { return queues_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Peer {
    std::string routing_id;
    std::string name;
    bool worker = false;
    uint32_t capacity = 0;
    uint64_t session = 0;
    std::chrono::milliseconds heartbeat{0};
    TimePoint last_heard, last_sent;
    uint64_t done = 0;
    std::vector<uint32_t> waiters;
    bool live = false;
  };
  struct Waiter {
    uint32_t peer = kNone;  // kNone when the cell is free
    uint64_t rid = 0;
    uint32_t queue = 0;
    uint32_t max = 1;
    bool lease = false;
    std::vector<uint16_t> kinds;
    TimePoint deadline;
    uint32_t generation = 0;
  };
  struct WaiterRef {
    uint32_t index;
    uint32_t generation;
  };
  struct Due {
    TimePoint deadline;
    uint32_t waiter;
    uint32_t generation;
    bool operator>(const Due& o) const { return deadline > o.deadline; }
  };
  // An items reply in the outbox: what to undo if it cannot be sent.
  struct Delivery {
    bool lease = false;
    std::vector<uint64_t> ids;
  };
  struct OutMsg {
    uint32_t peer;
    std::string routing_id;
    std::string bytes;
    Delivery delivery;
  };
  struct Counters {
    uint64_t put = 0, delivered = 0, accepted = 0, duplicates = 0, retried = 0, requeued = 0,
             failed = 0, timed_out = 0, dead_workers = 0, refused_handshakes = 0, bad_messages = 0;
  };

  // Message handlers, one per op a peer may send.
  void OnHello(std::string_view routing_id, const Hello& m, TimePoint now);
  void OnPut(uint32_t peer, const Put& m);
  void OnGet(uint32_t peer, const Get& m, TimePoint now);
  void OnResult(uint32_t peer, const ResultMsg& m);
  void OnStats(uint32_t peer, const Stats& m, TimePoint now);
  void OnGoodbye(uint32_t peer);

  // Entries.
  bool Serve(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max, bool lease,
             const std::vector<uint16_t>& kinds);
  void ServeWaiters(uint32_t queue);
  void AcceptResult(uint32_t peer, const TaskResult& r, std::vector<uint32_t>* touched);
  void Fail(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
            std::vector<uint32_t>* touched);
  void Requeue(uint64_t id, const char* why, std::vector<uint32_t>* touched);
  void Undeliverable(const OutMsg& m);
  TimePoint LeaseDeadline(uint64_t id, TimePoint now) const;

  // Peers and parked gets.
  uint32_t FindPeer(std::string_view routing_id) const;
  void PeerGone(uint32_t peer, const char* why);
  uint32_t Park(uint32_t peer, const Get& m, uint32_t queue, std::vector<uint16_t> kinds,
                TimePoint now);
  void Unpark(uint32_t waiter);
  void ExpireWaiters(TimePoint now);
  void ExpireLeases(TimePoint now);
  void CheckPeers(TimePoint now);

  // Output.
  void Send(uint32_t peer, const Message& m);
  void SendError(uint32_t peer, uint64_t rid, std::string_view code, const std::string& message);
  void SendEmpty(uint32_t peer, uint64_t rid, uint32_t queue);
  void Log(const std::string& line) const;

  BrokerOptions options_;
  Logger log_;
  QueueSet queues_;
  LeaseTable leases_;
  std::vector<Peer> peers_;
  std::vector<uint32_t> free_peers_;
  std::unordered_map<std::string, uint32_t> peer_ids_;
  std::vector<Waiter> waiters_;
  std::vector<uint32_t> free_waiters_;
  std::vector<std::deque<WaiterRef>> queue_waiters_;  // per queue, oldest first
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> waiter_due_;
  std::unordered_map<uint64_t, uint32_t> task_timeouts_;  // id -> ms, when set per task
  std::vector<OutMsg> outbox_;
  Counters counters_;
  TimePoint next_check_ = TimePoint::min();
  TimePoint now_;  // of the message or tick being handled
  std::string scratch_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_BROKER_H_
