// Broker: the master as a state machine, with no sockets. It takes a peer's
// message bytes (Handle) and the passing of time (Tick), changes the queues,
// leases and parked requests, and queues replies in an outbox that Flush
// hands to a Transport. The Server wraps it in ZeroMQ; tests drive it directly.
//
// It coordinates: the state is in pieces with their own contracts. QueueSet
// holds the entries, LeaseTable the leases, PeerTable the connections,
// Waiters the parked gets and waiting puts, Outbox the replies and held acks.
// The Broker handles each message (broker.cc), moves entries between states
// (broker_entries.cc), answers to peers coming and going and to time
// (broker_peers.cc), and serves the admin's requests (broker_admin.cc).
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
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/clock.h"
#include "master/flow_log.h"
#include "master/lease_table.h"
#include "master/outbox.h"
#include "master/peer_table.h"
#include "master/queue_set.h"
#include "master/state_log.h"
#include "master/waiters.h"
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
  void DropOutbox() { outbox_.Clear(); }

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
  // The same as ReadyOutbox, then TakeOutbox and Settle each message sent
  // through transport, until the outbox stays empty.
  void Flush(Transport& transport, TimePoint now);
  // Flush in its steps, for a caller that must do something between taking
  // messages and sending them (the server's durability barrier):
  // ReadyOutbox lets in the puts that fit now and adds held acks that are
  // due or can ride with another message; TakeOutbox moves what is queued
  // into *batch (empty: nothing to send); Settle is told how sending each
  // message went, and may queue more (take again until empty).
  void ReadyOutbox(TimePoint now);
  void TakeOutbox(std::vector<OutMsg>* batch) { outbox_.TakeBatch(batch); }
  // How many replies were queued for routing_id since it was named here
  // (one id at a time; Outbox::CountFor).
  void CountRepliesTo(std::string_view routing_id) { outbox_.CountFor(routing_id); }
  uint64_t replies_counted() const { return outbox_.counted(); }
  void Settle(const OutMsg& m, SendResult result, TimePoint now);
  // Queues a shutdown notice to every peer.
  void Shutdown(std::string_view reason, bool handover = false);

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
  static constexpr uint32_t kNone = PeerTable::kNone;
  static_assert(PeerTable::kNone == OutMsg::kNoPeer);
  // msgpack's nil: the arg or value of an entry that came with none.
  static constexpr std::string_view kNil = "\xc0";

  // A retried task, kept from the worker that failed it until then.
  struct Avoid {
    uint64_t ident;
    TimePoint until;
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
  void ServePutsWaiting(TimePoint now);
  // The entry a reply carries for slot s (borrows from it).
  Entry EntryOf(uint64_t id, const Slot& s) const;
  void AcceptResult(uint32_t peer, const TaskResult& r, std::vector<uint32_t>* touched);
  void GiveUp(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
              std::vector<uint32_t>* touched);
  void RecordFailure(uint64_t id, const Slot& s, const StoredOutcome& o);
  void Requeue(uint64_t id, const char* why, std::vector<uint32_t>* touched);
  void GiveBack(uint32_t peer, uint64_t id, std::vector<uint32_t>* touched);
  // A leased outcome goes back to the front of its reply queue.
  void Unhold(uint64_t id, std::vector<uint32_t>* touched);
  void UnholdAll(uint32_t peer, std::vector<uint32_t>* touched);
  void Undeliverable(const Delivery& d);
  void Forget(uint64_t id);  // a task's side entries, once it has left for good
  TimePoint LeaseDeadline(uint64_t id, TimePoint now) const;
  uint64_t Occupancy(uint32_t queue) const;
  // Adds queue to the queues whose parked gets are served after a change.
  static void Touch(std::vector<uint32_t>* touched, uint32_t queue);

  // Peers and time (broker_peers.cc).
  void TakeOver(uint32_t from, uint32_t to, const std::vector<uint64_t>& holding);
  void PeerGone(uint32_t peer, const char* why, bool dead = false);
  // Something of it waits in the master (leases, held outcomes, parked requests).
  bool Holds(uint32_t peer) const;
  void ExpireWaiters(TimePoint now);
  void ExpireLeases(TimePoint now);
  void CheckPeers(TimePoint now);

  // Failing workers (broker_peers.cc).
  bool Avoids(uint32_t peer, uint64_t id, uint16_t kind);
  void AvoidRetry(uint32_t peer, uint64_t id);
  void CountResult(uint32_t peer, const TaskResult& r, uint16_t kind);
  void BenchWorker(uint32_t peer, const std::string& why);
  void WakeAt(TimePoint t) { wake_at_ = std::min(wake_at_, t); }
  void Wake();
  void ServePeerWaiters(uint32_t peer);

  // Output.
  void Send(uint32_t peer, const Message& m);
  void SendTo(std::string_view routing_id, uint32_t peer, const Message& m);
  void SendError(uint32_t peer, uint64_t rid, std::string_view code, const std::string& message);
  void SendEmpty(uint32_t peer, uint64_t rid, uint32_t queue);
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
  TimePoint wake_at_ = TimePoint::max();       // a bench or an avoidance ends: serve the waiters
  PeerTable peers_;
  Waiters waiters_;
  std::unordered_map<uint64_t, uint32_t> task_timeouts_;  // id -> ms, when set per task
  std::vector<std::string> warned_kinds_;  // kinds said to have no worker, until one joins
  Outbox outbox_;
  std::vector<OutMsg> batch_;  // Flush's, kept for its capacity
  Counters counters_;
  FlowLog flow_;
  TimePoint next_check_ = TimePoint::min();
  TimePoint now_;  // of the message or tick being handled
};

}  // namespace taskq

#endif  // TASKQ_MASTER_BROKER_H_
