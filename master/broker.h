// Broker: the master as a state machine, with no sockets. It takes a peer's
// message bytes (Handle) and the passing of time (Tick), changes the queues,
// leases and parked requests, and queues replies in an outbox that Flush
// hands to a Transport. The Server wraps it in ZeroMQ; tests drive it directly.
//
// Nothing it sends can block: replies wait in the outbox until the loop
// flushes them, and a send the transport cannot take puts handed-out entries
// back. Every peer must say hello before anything else, and may do only what
// the role of its connection's key allows (master/roles.h). Each change of
// durable state is told to a StateLog (the journal), if there is one.
//
// Thread: one thread (the master's loop) calls everything.
#ifndef TASKQ_MASTER_BROKER_H_
#define TASKQ_MASTER_BROKER_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/clock.h"
#include "master/deadline_heap.h"
#include "master/flow_log.h"
#include "master/free_cells.h"
#include "master/lease_table.h"
#include "master/queue_set.h"
#include "master/state_log.h"
#include "proto/limits.h"
#include "proto/message.h"
#include "proto/role.h"

namespace taskq {

struct BrokerOptions {
  std::string name = "taskq-master";
  uint64_t instance = 0;  // random per start (welcome.instance)
  uint64_t epoch = 0;     // names the task ids (welcome.epoch); the journal's, or instance
  // The master pings peers about this often; a peer that promised heartbeats
  // and is silent for missed_heartbeats of its own intervals is declared dead
  // and its tasks go back.
  std::chrono::milliseconds heartbeat{1000};
  int missed_heartbeats = 3;
  // Deliveries of a task before it is given up on (failed).
  uint32_t max_attempts = 3;
  // A leased task not answered within this goes back; zero: no limit.
  // A task's own timeout_ms overrides it.
  std::chrono::milliseconds task_timeout{0};
  // Most tasks waiting or running per queue; a put that does not fit waits
  // up to its timeout_ms for room, then gets "full". Zero: no limit.
  uint64_t max_queue = 0;
  // A client that holds nothing and was silent this long is forgotten.
  std::chrono::milliseconds forget_idle_client{std::chrono::minutes(10)};
  // A task that failed and is retried is not handed to the worker that
  // failed it for this long, while another worker that could run it is
  // connected. Zero: retries go to whoever asks first.
  std::chrono::milliseconds retry_elsewhere{10000};
  // A worker whose failure is its own (result.worker_fault), or that failed
  // bench_after_failures results in a row while others succeeded at the
  // same kind, gets no entries for bench; each bench in a row doubles it, up
  // to max_bench. bench_after_failures 0: only worker_fault benches.
  std::chrono::milliseconds bench{30000};
  std::chrono::milliseconds max_bench{std::chrono::minutes(5)};
  uint32_t bench_after_failures = 5;
  // Log each task that fails for good (off when task_master's own job lists
  // them: once is enough).
  bool log_failures = true;
};

// Where Flush sends. kGone: the peer is not connected (any more).
enum class SendResult { kSent, kFull, kGone };
class Transport {
 public:
  virtual ~Transport() = default;
  virtual SendResult Send(std::string_view routing_id, std::string_view bytes) = 0;
};

// The queue that keeps a record of every task that failed for good.
inline constexpr std::string_view kFailedQueue = "failed";
// A failure record's arg when the task's was too large or deep to copy; the
// task's id and ")" follow.
inline constexpr std::string_view kArgNotCopied = "(too large or too deep to copy here: see task ";
// Most bytes of entries in one items reply: half a message, so the envelope
// and the largest entry always fit.
inline constexpr std::size_t kMaxReplyBytes = kMaxMessageBytes / 2;

// Of QueueSet::kMaxQueues, how many may exist before a worker's or
// submitter's key may make no more (docs/PROTOCOL.md 2.5).
inline constexpr std::size_t kMaxQueuesOfRestrictedKeys = 32768;

class Broker {
 public:
  using Logger = std::function<void(const std::string&)>;

  // log may be null (no journal); it must outlive the broker.
  Broker(BrokerOptions options, Logger logger, StateLog* log = nullptr);
  // For a journal opened after the broker (it replays into it first): its
  // log and the epoch of its task ids. Tasks whose last attempt the restart
  // cut short fail then: a crash loop must not run a task without bound.
  void AttachLog(StateLog* log, uint64_t epoch);
  // Drops every reply not sent yet (a master whose journal failed must not
  // acknowledge what it could not write down).
  void DropOutbox() {
    outbox_.clear();
    for (uint32_t i : ack_holders_) peers_[i].held_acks.clear();
    ack_holders_.clear();
  }

  // One message from the peer with this routing id, whose connection holds
  // a key of this role (the Server learns it from ZAP).
  void Handle(std::string_view routing_id, std::string_view bytes, TimePoint now,
              Role role = Role::kAdmin);
  // Expires parked requests, leases past their deadline and silent peers,
  // and queues heartbeats.
  void Tick(TimePoint now);
  // When Tick next has work; TimePoint::max() when nothing is pending.
  TimePoint NextDeadline();
  // Sends the outbox. An items reply that cannot be sent puts its entries back.
  void Flush(Transport& transport, TimePoint now);
  // Queues a shutdown notice to every peer.
  void Shutdown(std::string_view reason);

  void CountRefusedHandshake() { ++counters_.refused_handshakes; }
  // What stats replies carry.
  StatsOk Snapshot(TimePoint now) const;
  // The latest task and worker events (the dashboard's flow; master/flow_log.h).
  const FlowLog& flow() const { return flow_; }
  // The state, for recovery (before the first message) and for the journal's
  // compaction (between passes).
  QueueSet& queues() { return queues_; }
  const QueueSet& queues() const { return queues_; }
  uint32_t TimeoutOf(uint64_t id) const;
  void SetTimeout(uint64_t id, uint32_t ms);

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Peer {
    std::string routing_id;
    std::string name;
    bool worker = false;
    Role role = Role::kAdmin;  // of its connection's key
    bool refused = false;      // a request of it was forbidden (logged once)
    // A submitter's job queues it put tasks to (sorted ids): its stats list
    // these, not other submitters' (master/roles.h).
    std::vector<uint32_t> jobs;
    uint32_t capacity = 0;
    uint64_t session = 0;
    std::vector<std::string> kinds;  // what it said it runs; empty: not said
    std::chrono::milliseconds heartbeat{0};
    TimePoint last_heard, last_sent;
    uint64_t done = 0;
    std::vector<uint32_t> waiters;
    int pending_puts = 0;
    bool live = false;
    // result_ok replies held back (result.lazy_ack) until something else
    // goes to this peer, or until acks_due.
    std::vector<std::string> held_acks;
    TimePoint acks_due;
    uint64_t flush_stamp = 0;  // the Flush that has a message for this peer
    // Who failed a retried task: the session, or one number per connection
    // for a peer without one.
    uint64_t ident = 0;
    // Benching (broker_peers.cc). on_trial from the bench until a success:
    // after benched_until it gets one task at a time.
    bool on_trial = false;
    uint32_t benches = 0;  // benched this many times in a row
    TimePoint benched_until;
    uint32_t fail_streak = 0;   // failed results in a row (retryable ones)
    uint64_t streak_since = 0;  // ok_seq_ at its last success, bench or hello
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
  // A put waiting for room in a full queue, kept as the bytes it came in.
  struct PendingPut {
    uint32_t peer;
    uint32_t queue;
    uint64_t count;  // tasks in it
    uint64_t rid;
    std::string bytes;
    TimePoint deadline;
  };
  // An items reply in the outbox: what to undo if it cannot be sent.
  struct Delivery {
    struct Made {
      uint32_t lease;  // index in leases_ (held_ for an outcome); kNone for a take
      uint32_t generation;
      bool outcome;
    };
    std::vector<uint64_t> ids;
    // Per id: the lease it made. An undelivered reply undoes only that
    // lease, not a later one.
    std::vector<Made> leases;
  };
  // A retried task, kept from the worker that failed it until then.
  struct Avoid {
    uint64_t ident;
    TimePoint until;
  };
  struct OutMsg {
    uint32_t peer;
    std::string routing_id;
    std::string bytes;
    Delivery delivery;
  };
  struct Counters {
    uint64_t put = 0, delivered = 0, accepted = 0, duplicates = 0, retried = 0, requeued = 0,
             failed = 0, timed_out = 0, dead_peers = 0, refused_handshakes = 0, bad_messages = 0,
             full = 0, benched = 0;
  };

  // Message handlers, one per op a peer may send.
  void OnHello(std::string_view routing_id, const Hello& m, TimePoint now, Role role);
  // Answers forbidden: the peer's role may not do that.
  void Forbid(uint32_t peer, uint64_t rid, const std::string& why);
  void OnPut(uint32_t peer, const Put& m, std::string_view bytes, TimePoint now);
  void OnGet(uint32_t peer, const Get& m, TimePoint now);
  void OnResult(uint32_t peer, const ResultMsg& m);
  void OnStats(uint32_t peer, const Stats& m, TimePoint now);
  void OnGoodbye(uint32_t peer, const Goodbye& m);
  void OnRelease(uint32_t peer, const std::vector<uint64_t>& ids);
  void OnCancel(uint32_t peer, const Cancel& m);
  void OnAck(uint32_t peer, const Ack& m);
  // Admin requests (broker_admin.cc).
  void OnPeek(uint32_t peer, const Peek& m);
  void OnRetry(uint32_t peer, const Retry& m);
  void OnPurge(uint32_t peer, const Purge& m);

  // Entries.
  void AddTasks(uint32_t peer, const Put& m, uint32_t queue, uint32_t reply,
                const std::vector<uint16_t>& kinds);
  void WarnIfNobodyRuns(uint32_t queue, std::vector<std::string_view> kinds);
  bool Serve(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max, bool lease,
             const std::vector<uint16_t>& kinds);
  void ServeWaiters(uint32_t queue);
  // The entry a reply carries for slot s (borrows from it).
  Entry EntryOf(uint64_t id, const Slot& s) const;
  void AcceptResult(uint32_t peer, const TaskResult& r, std::vector<uint32_t>* touched);
  void Fail(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
            std::vector<uint32_t>* touched);
  void RecordFailure(uint64_t id, const Slot& s, const StoredOutcome& o);
  void Requeue(uint64_t id, const char* why, std::vector<uint32_t>* touched);
  void Release(uint32_t peer, uint64_t id, std::vector<uint32_t>* touched);
  // A leased outcome goes back to the front of its reply queue.
  void Unhold(uint64_t id, std::vector<uint32_t>* touched);
  void UnholdAll(uint32_t peer, std::vector<uint32_t>* touched);
  void Undeliverable(const OutMsg& m);
  void Forget(uint64_t id);  // a task's side entries, once it has left for good
  TimePoint LeaseDeadline(uint64_t id, TimePoint now) const;
  uint64_t Occupancy(uint32_t queue) const;

  // Peers and parked requests.
  uint32_t FindPeer(std::string_view routing_id) const;
  void TakeOver(uint32_t from, uint32_t to, const std::vector<uint64_t>& holding);
  void PeerGone(uint32_t peer, const char* why, bool dead = false);
  void Park(uint32_t peer, const Get& m, uint32_t queue, std::vector<uint16_t> kinds,
            TimePoint now);
  void Unpark(uint32_t waiter);
  void ParkPut(uint32_t peer, uint32_t queue, const Put& m, std::string_view bytes, TimePoint now);
  void RetryPendingPuts(TimePoint now);
  void ExpireWaiters(TimePoint now);
  // A parked get's deadline entry still names the get in that cell.
  bool WaiterCurrent(uint32_t waiter, uint32_t generation) const;
  void ExpireLeases(TimePoint now);
  void CheckPeers(TimePoint now);

  // Failing workers (broker_peers.cc).
  bool Avoids(uint32_t peer, uint64_t id, uint16_t kind);
  bool OtherWorkerRuns(uint32_t peer, uint16_t kind) const;
  void AvoidRetry(uint32_t peer, uint64_t id);
  void CountResult(uint32_t peer, const TaskResult& r, uint16_t kind);
  void BenchWorker(uint32_t peer, const std::string& why);
  bool Benched(const Peer& p) const { return p.on_trial && now_ < p.benched_until; }
  void WakeAt(TimePoint t) { wake_at_ = std::min(wake_at_, t); }
  void Wake();
  void ServePeerWaiters(uint32_t peer);

  // Output.
  void Send(uint32_t peer, const Message& m);
  void SendTo(std::string_view routing_id, uint32_t peer, const Message& m);
  void SendError(uint32_t peer, uint64_t rid, std::string_view code, const std::string& message);
  void SendEmpty(uint32_t peer, uint64_t rid, uint32_t queue);
  void HoldAck(uint32_t peer, const ResultOk& m);
  // Moves held acks into the outbox: a peer's when something else goes to
  // it or its time is up; every peer's when all is true.
  void ReleaseAcks(TimePoint now, bool all);
  void Log(const std::string& line) const;

  BrokerOptions options_;
  Logger logger_;
  StateLog* log_;
  QueueSet queues_;
  LeaseTable leases_;
  // Outcomes leased (state kHeld) until acked: no deadline, so their own
  // table keeps them out of the tasks' in-flight counts and expiry. An
  // outcome's lease index is kept with it (QueueSet::HeldLease).
  LeaseTable held_;
  std::unordered_map<uint64_t, Avoid> avoid_;  // retried tasks only
  std::vector<uint64_t> last_ok_;              // per kind: ok_seq_ of its latest success
  uint64_t ok_seq_ = 0;                        // successful results so far
  uint64_t next_ident_ = 0;
  TimePoint wake_at_ = TimePoint::max();  // a bench or an avoidance ends: serve the waiters
  std::vector<Peer> peers_;
  std::vector<uint32_t> free_peers_;
  std::unordered_map<std::string, uint32_t> peer_ids_;
  std::vector<Waiter> waiters_;
  std::vector<uint32_t> free_waiters_;
  std::vector<std::deque<WaiterRef>>
      queue_waiters_;                   // per queue, oldest first (stale refs skipped)
  std::vector<uint32_t> live_waiters_;  // per queue
  DeadlineHeap waiter_due_;  // parked gets' deadlines (cells of waiters_)
  std::deque<PendingPut> pending_puts_;
  std::unordered_map<uint64_t, uint32_t> task_timeouts_;  // id -> ms, when set per task
  std::vector<std::string> warned_kinds_;  // kinds said to have no worker, until one joins
  std::vector<OutMsg> outbox_;
  std::vector<uint32_t> ack_holders_;  // peers with held acks, each once
  uint64_t flush_stamp_ = 0;
  Counters counters_;
  FlowLog flow_;
  TimePoint next_check_ = TimePoint::min();
  TimePoint now_;  // of the message or tick being handled
};

}  // namespace taskq

#endif  // TASKQ_MASTER_BROKER_H_
