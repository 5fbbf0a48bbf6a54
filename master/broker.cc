// The Broker's message handlers: one per op a peer may send. Entries are
// moved in broker_entries.cc; peers, time and output are in broker_peers.cc.
#include "master/broker.h"

#include <algorithm>

#include "master/roles.h"
#include "master/status_report.h"
#include "proto/limits.h"
#include "proto/rid.h"

namespace taskq {
namespace {

constexpr std::size_t kMaxWaitersPerPeer = 64;
constexpr std::size_t kMaxPendingPutsPerPeer = 4;

}  // namespace

Broker::Broker(BrokerOptions options, Logger logger, StateLog* log)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      log_(log),
      peers_(PeerTable::Liveness{options_.heartbeat, options_.missed_heartbeats,
                                 options_.forget_idle_client}) {
  if (options_.epoch == 0) options_.epoch = options_.instance;
}

void Broker::AttachLog(StateLog* log, uint64_t epoch) {
  log_ = log;
  options_.epoch = epoch;
  std::vector<uint64_t> used_up;
  queues_.ForEachEntry(0, queues_.next_id(), SIZE_MAX, [&](uint64_t id, const Slot& s) {
    if (s.state == SlotState::kReady && s.attempt >= options_.max_attempts) used_up.push_back(id);
  });
  std::vector<uint32_t> touched;
  for (uint64_t id : used_up)
    GiveUp(id, "the master restarted during its last attempt", "", 0, &touched);
}

void Broker::Log(const std::string& line) const {
  if (logger_) logger_(line);
}

uint32_t Broker::TimeoutOf(uint64_t id) const {
  auto it = task_timeouts_.find(id);
  return it == task_timeouts_.end() ? 0 : it->second;
}

void Broker::SetTimeout(uint64_t id, uint32_t ms) {
  if (ms)
    task_timeouts_[id] = ms;
  else
    task_timeouts_.erase(id);
}

// --- messages -----------------------------------------------------------------

void Broker::Handle(std::string_view routing_id, std::string_view bytes, TimePoint now, Role role) {
  now_ = now;
  Result<Message> m = Decode(bytes);
  const uint32_t peer = peers_.Find(routing_id);
  if (!m.ok()) {
    ++counters_.bad_messages;
    SendTo(routing_id, peer,
           ErrorMsg{PeekRid(bytes), IsUnknownOp(m.status()) ? kErrUnknownOp : kErrBadMessage,
                    m.status().message()});
    return;
  }
  if (const auto* hello = std::get_if<Hello>(&*m)) return OnHello(routing_id, *hello, now, role);
  if (peer == kNone) {
    // Also what a worker sees after the master restarted: it says hello again.
    SendTo(routing_id, kNone,
           ErrorMsg{RidOf(*m), kErrHelloRequired,
                    "say hello first: this master does not know the connection"});
    return;
  }
  // A connection keeps the key it said hello with. Another one under the
  // same routing id (a peer may choose its own, and the master remembers a
  // client for 10 minutes after it went) must say hello for itself.
  if (peers_[peer].role != role) {
    PeerGone(peer, "its routing id came back with another key");
    SendTo(routing_id, kNone,
           ErrorMsg{RidOf(*m), kErrHelloRequired,
                    "say hello first: this master does not know the connection"});
    return;
  }
  peers_[peer].last_heard = now;
  if (const std::string why = Refusal(peers_[peer].role, *m); !why.empty())
    return Forbid(peer, RidOf(*m), why);
  if (auto* put = std::get_if<Put>(&*m)) return OnPut(peer, *put, bytes, now);
  if (auto* get = std::get_if<Get>(&*m)) return OnGet(peer, *get, now);
  if (auto* result = std::get_if<ResultMsg>(&*m)) return OnResult(peer, *result);
  if (auto* stats = std::get_if<Stats>(&*m)) return OnStats(peer, *stats, now);
  if (auto* bye = std::get_if<Goodbye>(&*m)) return OnGoodbye(peer, *bye);
  if (auto* release = std::get_if<taskq::Release>(&*m)) return OnRelease(peer, release->ids);
  if (auto* cancel = std::get_if<Cancel>(&*m)) return OnCancel(peer, *cancel);
  if (auto* ack = std::get_if<Ack>(&*m)) return OnAck(peer, *ack);
  if (auto* peek = std::get_if<Peek>(&*m)) return OnPeek(peer, *peek);
  if (auto* retry = std::get_if<Retry>(&*m)) return OnRetry(peer, *retry);
  if (auto* purge = std::get_if<Purge>(&*m)) return OnPurge(peer, *purge);
  if (std::holds_alternative<Ping>(*m)) return;
  SendError(peer, RidOf(*m), kErrUnknownOp,
            "'" + std::string(OpName(*m)) + "' is sent by the master, not to it");
}

void Broker::OnHello(std::string_view routing_id, const Hello& m, TimePoint now, Role role) {
  uint32_t idx = peers_.Find(routing_id);
  if (m.version != kProtocolVersion)
    return SendTo(
        routing_id, idx,
        ErrorMsg{0, kErrBadVersion,
                 "this master speaks protocol version " + std::to_string(kProtocolVersion) +
                     ", the peer version " + std::to_string(m.version)});
  if (m.role != "worker" && m.role != "client")
    return SendTo(routing_id, idx,
                  ErrorMsg{0, kErrBadRequest, "role must be 'worker' or 'client'"});
  // Not logged: the peer is told, and a worker given the wrong key stops.
  if (const std::string why = Refusal(role, m); !why.empty())
    return SendTo(routing_id, idx, ErrorMsg{0, kErrForbidden, why});
  const bool is_new = idx == kNone;
  if (is_new) {
    idx = peers_.Add(routing_id);
    peers_[idx].streak_since = ok_seq_;  // others' successes before it joined say nothing of it
  }
  peers_.SetIdent(idx, m.session, is_new);
  Peer& p = peers_[idx];
  // Shown in logs, stats and outcomes: no control characters (a name is
  // the peer's choice, and may be meant to forge a log line).
  p.name = m.name.empty() ? "peer-" + std::to_string(idx) : Printable(m.name);
  p.worker = m.role == "worker";
  p.role = role;
  p.capacity = m.capacity;
  p.session = m.session;
  p.heartbeat = std::chrono::milliseconds(m.heartbeat_ms);
  p.kinds.assign(m.kinds.begin(), m.kinds.end());
  std::erase_if(warned_kinds_, [&](const std::string& k) {
    return std::find(m.kinds.begin(), m.kinds.end(), k) != m.kinds.end();
  });
  p.last_heard = p.last_sent = now;
  for (uint32_t earlier : peers_.EarlierConnections(idx)) TakeOver(earlier, idx, m.holding);
  if (p.worker) flow_.Name(p.ident, p.name);
  if (is_new && p.worker) {
    flow_.Worker(FlowKind::kJoined, p.ident, now);
    Log("worker " + p.name + " joined (runs up to " + std::to_string(p.capacity) + " at once)");
    for (uint32_t q = 0; q < queues_.queue_count(); ++q)
      WarnIfNobodyRuns(q, queues_.WaitingTaskKinds(q));
  }
  Send(idx, Welcome{kProtocolVersion, options_.name, options_.instance, options_.epoch,
                    static_cast<uint32_t>(options_.heartbeat.count()), kMaxBatch});
}

// The peer is told every time; the master's log says it once per
// connection, so a student's misconfigured program cannot flood it.
void Broker::Forbid(uint32_t peer, uint64_t rid, const std::string& why) {
  SendError(peer, rid, kErrForbidden, why);
  Peer& p = peers_[peer];
  if (p.refused) return;
  p.refused = true;
  Log("refused a request of " + p.name + ": " + why + " (further refusals of it go unlogged)");
}

void Broker::OnPut(uint32_t peer, const Put& m, std::string_view bytes, TimePoint now) {
  if (m.queue.empty() || m.reply_to.empty())
    return SendError(peer, m.rid, kErrBadRequest, "queue and reply_to must not be empty");
  // Queues live as long as the master: a restricted key may not use up the
  // table (the admin may, up to QueueSet::kMaxQueues).
  if (peers_[peer].role != Role::kAdmin && queues_.queue_count() + 2 > kMaxQueuesOfRestrictedKeys &&
      (queues_.FindQueue(m.queue) < 0 || queues_.FindQueue(m.reply_to) < 0))
    return Forbid(peer, m.rid,
                  "a " + std::string(RoleName(peers_[peer].role)) +
                      " key cannot make more queues: the master has " +
                      std::to_string(queues_.queue_count()) +
                      " (new ones take the authkey, or a restart of the master)");
  Result<uint32_t> q = queues_.QueueId(m.queue);
  Result<uint32_t> reply = q.ok() ? queues_.QueueId(m.reply_to) : q;
  if (!reply.ok()) return SendError(peer, m.rid, kErrBadRequest, reply.status().message());
  // Resolve every kind first, so a put is taken whole or not at all.
  std::vector<uint16_t> kinds(m.items.size());
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    if (i > 0 && m.items[i].kind == m.items[i - 1].kind) {  // batches are mostly of one kind
      kinds[i] = kinds[i - 1];
      continue;
    }
    Result<uint16_t> k = queues_.KindId(m.items[i].kind);
    if (!k.ok()) return SendError(peer, m.rid, kErrBadRequest, k.status().message());
    kinds[i] = *k;
  }
  if (options_.max_queue > 0) {
    const uint64_t n = m.items.size();
    if (n > options_.max_queue)
      return SendError(peer, m.rid, kErrBadRequest,
                       "a put of " + std::to_string(n) + " tasks is more than the queue limit of " +
                           std::to_string(options_.max_queue) + " (--max-queue): split it");
    // Puts wait in order: a new one goes behind those already waiting.
    if (waiters_.PutsWaitFor(*q) || Occupancy(*q) + n > options_.max_queue) {
      if (m.timeout_ms > 0 && waiters_.PutsOf(peer) < kMaxPendingPutsPerPeer)
        return waiters_.ParkPut(Waiters::WaitingPut{peer, *q, n, m.rid, std::string(bytes),
                                                    now + std::chrono::milliseconds(m.timeout_ms)});
      ++counters_.full;
      return SendError(peer, m.rid, kErrFull, "queue '" + std::string(m.queue) + "' is full");
    }
  }
  AddTasks(peer, m, *q, *reply, kinds);
}

void Broker::AddTasks(uint32_t peer, const Put& m, uint32_t queue, uint32_t reply,
                      const std::vector<uint16_t>& kinds) {
  const uint64_t first = queues_.next_id();
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    const NewTask& t = m.items[i];
    const uint64_t id = queues_.Add(queue, reply, kinds[i], t.arg.empty() ? kNil : t.arg);
    if (t.timeout_ms) task_timeouts_[id] = t.timeout_ms;
  }
  if (log_ && !m.items.empty()) log_->Put(first, m.queue, m.reply_to, m.raw_items);
  if (std::vector<uint32_t>& jobs = peers_[peer].jobs;
      peers_[peer].role == Role::kSubmitter && !std::binary_search(jobs.begin(), jobs.end(), reply))
    jobs.insert(std::upper_bound(jobs.begin(), jobs.end(), reply), reply);
  counters_.put += m.items.size();
  // Waiting workers first: their items leave before the put_ok, so the
  // tasks are on their way before the putter wakes up to compete for a CPU.
  // (Measured: no difference above the noise on 2 cores; kept for the order.)
  ServeWaiters(queue);
  Send(peer, PutOk{m.rid, first, m.items.size()});
  std::vector<std::string_view> put_kinds;
  for (const NewTask& t : m.items)
    if (std::find(put_kinds.begin(), put_kinds.end(), t.kind) == put_kinds.end())
      put_kinds.push_back(t.kind);
  WarnIfNobodyRuns(queue, std::move(put_kinds));
}

// Tasks of a kind that no connected worker runs wait for one that does
// (typically: command tasks and no worker started with --exec). Say so once,
// in the master's log, rather than leave the producer guessing: when such
// tasks are put, and when a worker joins while they wait. Workers that did
// not say what they run might run anything; with no worker connected yet,
// there is nothing to say.
void Broker::WarnIfNobodyRuns(uint32_t queue, std::vector<std::string_view> kinds) {
  // Failure records are for people (taskq failed), not for workers.
  if (queues_.QueueName(queue) == kFailedQueue) return;
  bool any_worker = false;
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    if (!p.live || !p.worker) continue;
    if (p.kinds.empty()) return;
    any_worker = true;
    std::erase_if(kinds, [&](std::string_view k) { return p.Runs(k); });
  }
  if (!any_worker) return;
  for (std::string_view k : kinds) {
    if (std::find(warned_kinds_.begin(), warned_kinds_.end(), k) != warned_kinds_.end()) continue;
    warned_kinds_.emplace_back(k);
    Log("tasks of kind '" + std::string(k) + "' wait in queue '" +
        std::string(queues_.QueueName(queue)) + "': no connected worker runs them" +
        (k == "exec" ? " (a worker runs commands only when started with --exec)" : ""));
  }
}

void Broker::OnGet(uint32_t peer, const Get& m, TimePoint now) {
  if (m.queue.empty()) return SendError(peer, m.rid, kErrBadRequest, "queue must not be empty");
  Result<uint32_t> q = queues_.QueueId(m.queue);
  if (!q.ok()) return SendError(peer, m.rid, kErrBadRequest, q.status().message());
  std::vector<uint16_t> kinds;
  for (std::string_view k : m.kinds) {
    Result<uint16_t> id = queues_.KindId(k);
    if (!id.ok()) return SendError(peer, m.rid, kErrBadRequest, id.status().message());
    kinds.push_back(*id);
  }
  const uint32_t max = std::clamp<uint32_t>(m.max, 1, kMaxBatch);
  if (Serve(peer, m.rid, *q, max, m.lease, kinds)) return;
  if (m.timeout_ms == 0) return SendEmpty(peer, m.rid, *q);
  if (waiters_.GetsOf(peer) >= kMaxWaitersPerPeer)
    return SendError(peer, m.rid, kErrBadRequest, "too many gets waiting from one connection");
  waiters_.Park(Waiters::ParkedGet{peer, m.rid, *q, max, m.lease, std::move(kinds),
                                   now + std::chrono::milliseconds(m.timeout_ms)});
}

void Broker::OnResult(uint32_t peer, const ResultMsg& m) {
  // A worker on trial that reports may take its next task (or, after a
  // success, any number again): serve its parked gets below.
  const bool on_trial = peers_[peer].on_trial;
  std::vector<uint32_t> touched;
  const uint64_t before_dups = counters_.duplicates;
  for (const TaskResult& r : m.results) AcceptResult(peer, r, &touched);
  const uint64_t dups = counters_.duplicates - before_dups;
  if (m.rid) {
    const ResultOk ok{m.rid, m.results.size() - dups, dups};
    if (m.lazy_ack)
      outbox_.HoldAck(peer, peers_[peer].routing_id, ok,
                      now_ + std::chrono::milliseconds(kLazyAckMs));
    else
      Send(peer, ok);
  }
  for (uint32_t q : touched) ServeWaiters(q);
  if (on_trial) ServePeerWaiters(peer);
}

void Broker::OnStats(uint32_t peer, const Stats& m, TimePoint now) {
  StatsOk s = Snapshot(now);
  s.rid = m.rid;
  // A job's id is its capability: a submitter sees the job queues it put to,
  // and the one it names, not those of other submitters.
  if (const Peer& p = peers_[peer]; p.role == Role::kSubmitter) {
    std::erase_if(s.queues, [&](const QueueStats& q) {
      if (!IsJobQueue(q.name) || q.name == m.queue) return false;
      const auto id = static_cast<uint32_t>(queues_.FindQueue(q.name));
      return !std::binary_search(p.jobs.begin(), p.jobs.end(), id);
    });
  }
  Send(peer, s);
}

void Broker::OnGoodbye(uint32_t peer, const Goodbye& m) {
  OnRelease(peer, m.release);
  PeerGone(peer, "said goodbye");
}

void Broker::OnRelease(uint32_t peer, const std::vector<uint64_t>& ids) {
  std::vector<uint32_t> touched;
  // Highest id first, so after the front-pushes the oldest task leads.
  std::vector<uint64_t> release = ids;
  std::sort(release.rbegin(), release.rend());
  for (uint64_t id : release) GiveBack(peer, id, &touched);
  for (uint32_t q : touched) ServeWaiters(q);
}

// Leased outcomes the peer has kept safe leave the master now: their take
// is journaled here, and the journal is committed before the ack_ok leaves.
void Broker::OnAck(uint32_t peer, const Ack& m) {
  std::vector<uint64_t> acked;
  for (uint64_t id : m.ids) {
    const Slot* s = queues_.Find(id);
    if (!s || s->state != SlotState::kHeld) continue;
    const uint32_t lease = queues_.HeldLease(*s);
    if (held_.Get(lease).peer != peer) continue;
    held_.Remove(lease);
    queues_.Free(id);
    acked.push_back(id);
  }
  if (log_ && !acked.empty()) log_->Take(acked);
  if (m.rid) Send(peer, AckOk{m.rid, acked.size(), m.ids.size() - acked.size()});
}

// A get withdrawn before it was answered gets its (empty) answer now; one
// already answered needs nothing: that answer is on its way, ahead of this.
void Broker::OnCancel(uint32_t peer, const Cancel& m) {
  if (std::optional<uint32_t> queue = waiters_.Withdraw(peer, m.rid))
    SendEmpty(peer, m.rid, *queue);
}

}  // namespace taskq
