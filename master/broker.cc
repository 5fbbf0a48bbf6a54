// The Broker's message handlers and what they do to entries. Peers, parked
// requests, time and output are in broker_peers.cc.
#include "master/broker.h"

#include <algorithm>

#include "master/roles.h"
#include "master/status.h"
#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"
#include "proto/rid.h"

namespace taskq {
namespace {

constexpr std::size_t kMaxWaitersPerPeer = 64;
constexpr int kMaxPendingPutsPerPeer = 4;
// An items reply stops growing at this size; one entry (at most two values
// of kMaxValueBytes) always fits, so a reply never exceeds kMaxMessageBytes.
constexpr std::string_view kNil = "\xc0";
// Most entries one get steps over (retried tasks kept from the worker that
// failed them, Broker::Avoids; entries not for its role, MayTake), so a
// queue full of them cannot make a get walk the whole queue.
constexpr std::size_t kMaxSkips = 1024;

void AddOnce(std::vector<uint32_t>* v, uint32_t x) {
  if (std::find(v->begin(), v->end(), x) == v->end()) v->push_back(x);
}

}  // namespace

Broker::Broker(BrokerOptions options, Logger logger, StateLog* log)
    : options_(std::move(options)), logger_(std::move(logger)), log_(log) {
  if (options_.epoch == 0) options_.epoch = options_.instance;
}

void Broker::AttachLog(StateLog* log, uint64_t epoch) {
  log_ = log;
  options_.epoch = epoch;
  std::vector<uint64_t> used_up;
  queues_.ForEachEntry(
      0, queues_.next_id(), SIZE_MAX, [&](uint64_t id, const Slot& s) {
        if (s.state == SlotState::kReady && s.attempt >= options_.max_attempts)
          used_up.push_back(id);
      });
  std::vector<uint32_t> touched;
  for (uint64_t id : used_up)
    Fail(id, "the master restarted during its last attempt", "", 0, &touched);
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
  const uint32_t peer = FindPeer(routing_id);
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
  uint32_t idx = FindPeer(routing_id);
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
    idx = TakeCell(peers_, free_peers_);
    peer_ids_.emplace(std::string(routing_id), idx);
    peers_[idx].streak_since = ok_seq_;  // others' successes before it joined say nothing of it
  }
  Peer& p = peers_[idx];
  // The session names the process across its connections; without one,
  // each connection is its own.
  if (m.session != 0)
    p.ident = m.session;
  else if (is_new || p.ident == p.session)
    p.ident = (uint64_t{1} << 63) | ++next_ident_;
  p.routing_id = std::string(routing_id);
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
  p.live = true;
  for (uint32_t other = 0; m.session != 0 && other < peers_.size(); ++other) {
    if (other == idx || !peers_[other].live || peers_[other].session != m.session) continue;
    if (peers_[other].role != role) continue;  // a session never crosses keys
    TakeOver(other, idx, m.holding);
  }
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
  if (peers_[peer].role != Role::kAdmin &&
      queues_.queue_count() + 2 > kMaxQueuesOfRestrictedKeys &&
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
    const bool queued_behind = std::any_of(pending_puts_.begin(), pending_puts_.end(),
                                           [&](const PendingPut& p) { return p.queue == *q; });
    if (queued_behind || Occupancy(*q) + n > options_.max_queue) {
      if (m.timeout_ms > 0 && peers_[peer].pending_puts < kMaxPendingPutsPerPeer)
        return ParkPut(peer, *q, m, bytes, now);
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
  for (const Peer& p : peers_) {
    if (!p.live || !p.worker) continue;
    if (p.kinds.empty()) return;
    any_worker = true;
    std::erase_if(kinds, [&](std::string_view k) {
      return std::find(p.kinds.begin(), p.kinds.end(), k) != p.kinds.end();
    });
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
  if (peers_[peer].waiters.size() >= kMaxWaitersPerPeer)
    return SendError(peer, m.rid, kErrBadRequest, "too many gets waiting from one connection");
  Park(peer, m, *q, std::move(kinds), now);
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
      HoldAck(peer, ok);
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
  for (uint64_t id : release) Release(peer, id, &touched);
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
  for (uint32_t w : peers_[peer].waiters) {
    if (waiters_[w].rid != m.rid) continue;
    SendEmpty(peer, m.rid, waiters_[w].queue);
    Unpark(w);
    return;
  }
}

// --- entries ------------------------------------------------------------------

// Hands up to max entries of queue to peer at once: a lone task never waits
// for a batch to fill. False when none matched. With lease, tasks are leased
// until their result and outcomes until an ack; without, both are taken.
bool Broker::Serve(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max, bool lease,
                   const std::vector<uint16_t>& kinds) {
  if (peers_[peer].on_trial) {  // benched, or one task at a time after it
    if (Benched(peers_[peer]) || leases_.CountOf(peer) > 0) return false;
    max = 1;
  }
  const Role role = peers_[peer].role;
  Delivery d;
  std::vector<uint64_t> leased, taken, skipped;
  // Each task's slot is looked up once (by Pop) and used from there: with
  // millions queued, every lookup is a likely cache miss.
  std::vector<const Slot*> slots;
  std::size_t bytes = 0;
  while (d.ids.size() < max && bytes < kMaxReplyBytes) {
    Slot* s = nullptr;
    const uint64_t id = queues_.Pop(queue, kinds, &s);
    if (id == 0) break;
    // Not for this role (a worker's key takes no outcome, a submitter's no
    // task): back in line below, for others.
    if (role != Role::kAdmin && !MayTake(role, queues_.OutcomeOf(*s) != nullptr)) {
      skipped.push_back(id);
      if (skipped.size() == kMaxSkips) break;
      continue;
    }
    if (!avoid_.empty() && s->state == SlotState::kReady && Avoids(peer, id, s->kind)) {
      skipped.push_back(id);  // for another worker; back in line below
      if (skipped.size() == kMaxSkips) break;
      continue;
    }
    const StoredOutcome* o = queues_.OutcomeOf(*s);
    const std::size_t size =
        s->arg.view().size() + (o ? o->data.size() + o->worker.size() : 0) + 32;
    if (!d.ids.empty() && bytes + size > kMaxReplyBytes) {  // for the next get
      queues_.PushFront(id);
      break;
    }
    bytes += size;
    // Marked at once: should the same id stand twice in the lane (its
    // outcome came back to its own queue), the second is seen as stale.
    if (lease && s->state == SlotState::kReady) {
      const uint32_t l = leases_.Add(id, peer, LeaseDeadline(id, now_));
      queues_.MarkLeased(s, l);
      if (peers_[peer].worker)
        flow_.Task(FlowKind::kHanded, id, s->kind, s->attempt, peers_[peer].ident, 0, now_);
      d.leases.push_back({l, leases_.Get(l).generation, false});
      leased.push_back(id);
    } else if (lease) {  // an outcome, kept until acked: nothing to journal yet
      const uint32_t l = held_.Add(id, peer, TimePoint::max());
      queues_.MarkHeld(s, l);
      d.leases.push_back({l, held_.Get(l).generation, true});
    } else {
      queues_.MarkTaken(s);
      d.leases.push_back({LeaseTable::kNone, 0, false});
      taken.push_back(id);
    }
    d.ids.push_back(id);
    slots.push_back(s);
  }
  // In reverse, so they lead their lanes in their old order.
  for (auto it = skipped.rbegin(); it != skipped.rend(); ++it) queues_.PushFront(*it);
  if (d.ids.empty()) return false;
  Items reply;
  reply.rid = rid;
  reply.queue = queues_.QueueName(queue);
  reply.items.resize(d.ids.size());
  for (std::size_t i = 0; i < d.ids.size(); ++i) reply.items[i] = EntryOf(d.ids[i], *slots[i]);
  if (log_) {
    if (!leased.empty()) log_->Lease(leased);
    if (!taken.empty()) log_->Take(taken);
  }
  counters_.delivered += d.ids.size();
  OutMsg out{peer, peers_[peer].routing_id, {}, std::move(d)};
  EncodeTo(reply, &out.bytes);
  outbox_.push_back(std::move(out));
  return true;
}

Entry Broker::EntryOf(uint64_t id, const Slot& s) const {
  Entry e;
  e.id = id;
  e.kind = queues_.KindName(s.kind);
  e.arg = s.arg.view();
  e.attempt = s.attempt;
  if (const StoredOutcome* o = queues_.OutcomeOf(s)) {
    e.has_outcome = true;
    e.outcome =
        Outcome{o->ok, o->ok ? std::string_view(o->data) : std::string_view(),
                o->ok ? std::string_view() : std::string_view(o->data), o->worker, o->elapsed_us};
  }
  return e;
}

// Parked gets are served oldest first, each with a fair share of what is
// ready, so a burst of tasks spreads over every waiting worker instead of
// filling the first one's window.
void Broker::ServeWaiters(uint32_t queue) {
  if (queue >= queue_waiters_.size()) return;
  auto& list = queue_waiters_[queue];
  for (std::size_t left = list.size(); left > 0 && queues_.CountsOf(queue).ready > 0; --left) {
    const WaiterRef ref = list.front();
    list.pop_front();
    Waiter& w = waiters_[ref.index];
    if (w.peer == kNone || w.generation != ref.generation) continue;  // stale
    const uint64_t ready = queues_.CountsOf(queue).ready;
    const uint64_t share =
        std::max<uint64_t>(1, (ready + live_waiters_[queue] - 1) / live_waiters_[queue]);
    if (Serve(w.peer, w.rid, queue, static_cast<uint32_t>(std::min<uint64_t>(w.max, share)),
              w.lease, w.kinds)) {
      Unpark(ref.index);
    } else {
      list.push_back(ref);  // none of its kinds is ready: it keeps waiting
    }
  }
}

void Broker::AcceptResult(uint32_t peer, const TaskResult& r, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(r.id);
  // Only a task that was handed out with a lease and has no outcome yet
  // takes one: a late duplicate (from a worker wrongly declared dead) is
  // counted and dropped.
  if (!s || s->attempt == 0 || (s->state != SlotState::kLeased && s->state != SlotState::kReady)) {
    ++counters_.duplicates;
    return;
  }
  // A worker's key reports only on tasks leased to its own connection: ids
  // are easy to guess, and the key is on every student's laptop. (The
  // authkey's late result for a task whose lease ended is still taken.)
  if (peers_[peer].role != Role::kAdmin &&
      (s->state != SlotState::kLeased || leases_.Get(s->aux).peer != peer)) {
    ++counters_.duplicates;
    return;
  }
  const bool was_leased = s->state == SlotState::kLeased;
  if (was_leased) leases_.Remove(s->aux);
  Peer& p = peers_[peer];
  ++p.done;
  CountResult(peer, r, s->kind);
  const bool retry = !r.ok && (r.worker_fault || (r.retry && s->attempt < options_.max_attempts));
  const FlowKind what = r.ok ? FlowKind::kDone : retry ? FlowKind::kRetried : FlowKind::kFailed;
  flow_.Task(what, r.id, s->kind, s->attempt, p.ident, r.elapsed_us, now_);
  if (!r.ok && r.worker_fault) {
    // About the worker, not the task: as if handed back unstarted.
    ++counters_.retried;
    if (was_leased) {
      if (s->attempt > 0) --s->attempt;
      if (log_) log_->Unlease(r.id);
      queues_.PushFront(r.id);
    }
    AvoidRetry(peer, r.id);
    AddOnce(touched, s->queue);
    return BenchWorker(
        peer, "its last task failed because of the worker itself: " + std::string(r.error));
  }
  if (!r.ok && r.retry && s->attempt < options_.max_attempts) {
    ++counters_.retried;
    if (was_leased) queues_.PushFront(r.id);  // a ready task is already back in line
    AvoidRetry(peer, r.id);
    AddOnce(touched, s->queue);
    return;
  }
  if (!r.ok) return Fail(r.id, std::string(r.error), p.name, r.elapsed_us, touched);
  ++counters_.accepted;
  AddOnce(touched, s->reply_to);
  Forget(r.id);
  StoredOutcome o{true, std::string(r.value.empty() ? kNil : r.value), p.name, r.elapsed_us};
  if (log_) log_->Done(r.id, o);
  queues_.MarkDone(r.id, std::move(o));
}

// The side tables of a task that has left for good (outcome known, or taken).
void Broker::Forget(uint64_t id) {
  task_timeouts_.erase(id);
  if (!avoid_.empty()) avoid_.erase(id);
}

// A task given up on: its failure is its outcome, and a record of it goes to
// the failed queue for whoever looks into failures later.
void Broker::Fail(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
                  std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  ++counters_.failed;
  queues_.CountFailed(s->queue);
  if (options_.log_failures)
    Log("task " + std::to_string(id) + " (" + std::string(queues_.KindName(s->kind)) +
        ") failed after " + std::to_string(s->attempt) + " attempt(s): " + error);
  AddOnce(touched, s->reply_to);
  Forget(id);
  StoredOutcome o{false, std::move(error), std::string(worker), elapsed_us};
  RecordFailure(id, *s, o);
  if (log_) log_->Done(id, o);
  queues_.MarkDone(id, std::move(o));
}

void Broker::RecordFailure(uint64_t id, const Slot& s, const StoredOutcome& o) {
  Result<uint32_t> q = queues_.QueueId(kFailedQueue);
  Result<uint16_t> kind = queues_.KindId(kFailedQueue);
  if (!q.ok() || !kind.ok()) return;  // the name tables are full: the outcome still goes out
  std::string record;
  MsgpackWriter w(&record);
  w.Map(8)
      .Key("task")
      .Uint(id)
      .Key("queue")
      .Str(queues_.QueueName(s.queue))
      .Key("kind")
      .Str(queues_.KindName(s.kind));
  // The record nests the argument one level deeper and adds to its size: one
  // at the limits would make the record undeliverable, so it is named instead.
  MsgpackReader fits(s.arg.view());
  w.Key("arg");
  if (s.arg.view().size() + 4096 < kMaxValueBytes && fits.Skip(nullptr, kMaxDepth - 1)) {
    w.Raw(s.arg.view());
  } else {
    w.Str(std::string(kArgNotCopied) + std::to_string(id) + ")");
  }
  w.Key("error").Str(o.data).Key("attempts").Uint(s.attempt).Key("worker").Str(o.worker);
  w.Key("reply_to").Str(queues_.QueueName(s.reply_to));
  const uint64_t rec = queues_.Add(*q, *q, *kind, record);
  if (log_)
    log_->Entry(rec, kFailedQueue, kFailedQueue, kFailedQueue, *queues_.Find(rec), 0, nullptr);
  ServeWaiters(*q);
}

// A leased task goes back to the front of its queue, or fails if that was
// its last attempt.
void Broker::Requeue(uint64_t id, const char* why, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  if (!s || s->state != SlotState::kLeased) return;
  const Peer& holder = peers_[leases_.Get(s->aux).peer];
  const std::string worker = holder.name;
  const bool last = s->attempt >= options_.max_attempts;
  flow_.Task(last ? FlowKind::kFailed : FlowKind::kRequeued, id, s->kind, s->attempt, holder.ident,
             0, now_);
  leases_.Remove(s->aux);
  ++counters_.requeued;
  if (s->attempt >= options_.max_attempts)
    return Fail(id, std::string(why) + " (worker " + worker + ")", worker, 0, touched);
  queues_.PushFront(id);
  AddOnce(touched, s->queue);
}

// A task the peer hands back without having started it: the delivery does
// not count as an attempt.
void Broker::Release(uint32_t peer, uint64_t id, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  if (s && s->state == SlotState::kHeld) {
    if (held_.Get(queues_.HeldLease(*s)).peer == peer) Unhold(id, touched);
    return;
  }
  if (!s || s->state != SlotState::kLeased || leases_.Get(s->aux).peer != peer) return;
  leases_.Remove(s->aux);
  if (s->attempt > 0) --s->attempt;
  if (log_) log_->Unlease(id);
  queues_.PushFront(id);
  AddOnce(touched, s->queue);
}

// Nothing was journaled for the lease (the outcome's take waits for its
// ack), so nothing is to undo there: the outcome is simply ready again.
void Broker::Unhold(uint64_t id, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  held_.Remove(queues_.HeldLease(*s));
  queues_.PushFront(id);
  AddOnce(touched, s->queue);
}

void Broker::UnholdAll(uint32_t peer, std::vector<uint32_t>* touched) {
  if (held_.CountOf(peer) == 0) return;
  std::vector<uint64_t> ids = held_.TasksOf(peer);
  std::sort(ids.rbegin(), ids.rend());  // highest first: the oldest leads again
  for (uint64_t id : ids) Unhold(id, touched);
}

void Broker::Undeliverable(const OutMsg& m) {
  std::vector<uint32_t> touched;
  // Back in reverse, so the first id ends up first again.
  for (std::size_t k = m.delivery.ids.size(); k-- > 0;) {
    const uint64_t id = m.delivery.ids[k];
    const auto [lease, generation, outcome] = m.delivery.leases[k];
    Slot* s = queues_.Find(id);
    if (!s) continue;
    if (s->state == SlotState::kHeld) {  // unless acked or handed back and out again since
      if (!outcome || queues_.HeldLease(*s) != lease || held_.Get(lease).generation != generation)
        continue;
      --counters_.delivered;
      Unhold(id, &touched);
      continue;
    }
    const bool leased = s->state == SlotState::kLeased;
    // Moved on meanwhile: taken entries stay taken until their send, but a
    // lease may have ended and the task gone to another peer since.
    if (!leased && (s->state != SlotState::kTaken || lease != LeaseTable::kNone)) continue;
    if (leased && (outcome || s->aux != lease || leases_.Get(lease).generation != generation))
      continue;
    const bool task = leased || s->aux == 0;  // not an outcome
    if (leased) leases_.Remove(s->aux);
    if (task && s->attempt > 0) --s->attempt;  // it never reached the peer
    --counters_.delivered;
    queues_.PushFront(id);
    if (log_) {
      if (leased) {
        log_->Unlease(id);
      } else {  // the take was recorded: record the entry again, whole
        const Slot& back = *queues_.Find(id);
        log_->Entry(id, queues_.QueueName(back.queue), queues_.QueueName(back.reply_to),
                    queues_.KindName(back.kind), back, TimeoutOf(id), queues_.OutcomeOf(back));
      }
    }
    AddOnce(&touched, s->queue);
  }
  for (uint32_t q : touched) ServeWaiters(q);
}

TimePoint Broker::LeaseDeadline(uint64_t id, TimePoint now) const {
  std::chrono::milliseconds limit = options_.task_timeout;
  if (uint32_t own = TimeoutOf(id)) limit = std::chrono::milliseconds(own);
  return limit.count() > 0 ? now + limit : TimePoint::max();
}

uint64_t Broker::Occupancy(uint32_t queue) const {
  const QueueSet::Counts c = queues_.CountsOf(queue);
  return c.ready + c.leased;
}

}  // namespace taskq
