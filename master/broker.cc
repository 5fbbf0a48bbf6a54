#include "master/broker.h"

#include <algorithm>
#include <cstdio>

#include "proto/limits.h"

namespace taskq {
namespace {

constexpr std::size_t kMaxWaitersPerPeer = 64;
constexpr std::string_view kNil = "\xc0";

uint64_t RidOf(const Message& m) {
  return std::visit(
      [](const auto& v) -> uint64_t {
        if constexpr (requires { v.rid; })
          return v.rid;
        else
          return 0;
      },
      m);
}

void AddOnce(std::vector<uint32_t>* v, uint32_t x) {
  if (std::find(v->begin(), v->end(), x) == v->end()) v->push_back(x);
}

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

}  // namespace

Broker::Broker(BrokerOptions options, Logger log)
    : options_(std::move(options)), log_(std::move(log)) {}

void Broker::Log(const std::string& line) const {
  if (log_) log_(line);
}

// --- messages -----------------------------------------------------------------

void Broker::Handle(std::string_view routing_id, std::string_view bytes, TimePoint now) {
  now_ = now;
  Result<Message> m = Decode(bytes);
  uint32_t peer = FindPeer(routing_id);
  if (!m.ok()) {
    ++counters_.bad_messages;
    OutMsg out{peer, std::string(routing_id), {}, {}};
    EncodeTo(
        ErrorMsg{0, IsUnknownOp(m.status()) ? kErrUnknownOp : kErrBadMessage, m.status().message()},
        &out.bytes);
    outbox_.push_back(std::move(out));
    return;
  }
  if (const auto* hello = std::get_if<Hello>(&*m)) return OnHello(routing_id, *hello, now);
  if (peer == kNone) {
    // Also what a worker sees after the master restarted: it says hello again.
    OutMsg out{kNone, std::string(routing_id), {}, {}};
    EncodeTo(ErrorMsg{RidOf(*m), kErrHelloRequired,
                      "say hello first: this master does not know the connection"},
             &out.bytes);
    outbox_.push_back(std::move(out));
    return;
  }
  peers_[peer].last_heard = now;
  if (auto* put = std::get_if<Put>(&*m)) return OnPut(peer, *put);
  if (auto* get = std::get_if<Get>(&*m)) return OnGet(peer, *get, now);
  if (auto* result = std::get_if<ResultMsg>(&*m)) return OnResult(peer, *result);
  if (auto* stats = std::get_if<Stats>(&*m)) return OnStats(peer, *stats, now);
  if (std::holds_alternative<Goodbye>(*m)) return OnGoodbye(peer);
  if (std::holds_alternative<Ping>(*m)) return;
  SendError(peer, RidOf(*m), kErrUnknownOp,
            "'" + std::string(OpName(*m)) + "' is sent by the master, not to it");
}

void Broker::OnHello(std::string_view routing_id, const Hello& m, TimePoint now) {
  uint32_t idx = FindPeer(routing_id);
  auto refuse = [&](std::string_view code, const std::string& why) {
    OutMsg out{idx, std::string(routing_id), {}, {}};
    EncodeTo(ErrorMsg{0, code, why}, &out.bytes);
    outbox_.push_back(std::move(out));
  };
  if (m.version != kProtocolVersion)
    return refuse(kErrBadVersion, "this master speaks protocol version " +
                                      std::to_string(kProtocolVersion) + ", the peer version " +
                                      std::to_string(m.version));
  if (m.role != "worker" && m.role != "client")
    return refuse(kErrBadRequest, "role must be 'worker' or 'client'");
  const bool is_new = idx == kNone;
  if (is_new) {
    if (!free_peers_.empty()) {
      idx = free_peers_.back();
      free_peers_.pop_back();
    } else {
      idx = static_cast<uint32_t>(peers_.size());
      peers_.emplace_back();
    }
    peer_ids_.emplace(std::string(routing_id), idx);
  }
  Peer& p = peers_[idx];
  p.routing_id = std::string(routing_id);
  p.name = m.name.empty() ? "peer-" + std::to_string(idx) : std::string(m.name);
  p.worker = m.role == "worker";
  p.capacity = m.capacity;
  p.session = m.session;
  p.heartbeat = std::chrono::milliseconds(m.heartbeat_ms);
  p.last_heard = p.last_sent = now;
  p.live = true;
  // The same process on a new connection (it lost the old one): its leases
  // follow it, so results it is still computing are not run twice.
  for (uint32_t other = 0; m.session != 0 && other < peers_.size(); ++other) {
    if (other == idx || !peers_[other].live || peers_[other].session != m.session) continue;
    leases_.MovePeer(other, idx);
    PeerGone(other, "reconnected");
  }
  if (is_new && p.worker)
    Log("worker " + p.name + " joined (runs up to " + std::to_string(p.capacity) + " at once)");
  Send(idx, Welcome{kProtocolVersion, options_.name, options_.instance,
                    static_cast<uint32_t>(options_.heartbeat.count()), kMaxBatch});
}

void Broker::OnPut(uint32_t peer, const Put& m) {
  if (m.queue.empty() || m.reply_to.empty())
    return SendError(peer, m.rid, kErrBadRequest, "queue and reply_to must not be empty");
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
  const uint64_t first = queues_.table().next_id();
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    const NewTask& t = m.items[i];
    uint64_t id = queues_.Add(*q, *reply, kinds[i], t.arg.empty() ? kNil : t.arg);
    if (t.timeout_ms) task_timeouts_[id] = t.timeout_ms;
  }
  counters_.put += m.items.size();
  Send(peer, PutOk{m.rid, first, m.items.size()});
  ServeWaiters(*q);
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
  std::vector<uint32_t> touched;
  const uint64_t before_dups = counters_.duplicates;
  for (const TaskResult& r : m.results) AcceptResult(peer, r, &touched);
  const uint64_t dups = counters_.duplicates - before_dups;
  if (m.rid) Send(peer, ResultOk{m.rid, m.results.size() - dups, dups});
  for (uint32_t q : touched) ServeWaiters(q);
}

void Broker::OnStats(uint32_t peer, const Stats& m, TimePoint now) {
  StatsOk s = Snapshot(now);
  s.rid = m.rid;
  Send(peer, s);
}

void Broker::OnGoodbye(uint32_t peer) { PeerGone(peer, "said goodbye"); }

// --- entries ------------------------------------------------------------------

// Hands up to max entries of queue to peer at once: a lone task never waits
// for a batch to fill. False when none matched.
bool Broker::Serve(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max, bool lease,
                   const std::vector<uint16_t>& kinds) {
  Delivery d;
  d.lease = lease;
  while (d.ids.size() < max) {
    uint64_t id = queues_.Pop(queue, kinds);
    if (id == 0) break;
    d.ids.push_back(id);
  }
  if (d.ids.empty()) return false;
  Items reply;
  reply.rid = rid;
  reply.queue = queues_.QueueName(queue);
  reply.items.resize(d.ids.size());
  for (std::size_t i = 0; i < d.ids.size(); ++i) {
    const uint64_t id = d.ids[i];
    Slot* s = queues_.Find(id);
    if (lease && s->state == SlotState::kReady) {
      queues_.MarkLeased(id, leases_.Add(id, peer, LeaseDeadline(id, now_)));
    } else {
      queues_.MarkTaken(id);  // outcomes are handed out once, never leased
    }
    Entry& e = reply.items[i];
    e.id = id;
    e.kind = queues_.KindName(s->kind);
    e.arg = s->arg.view();
    e.attempt = s->attempt;
    if (const StoredOutcome* o = queues_.OutcomeOf(*s); o && s->state == SlotState::kTaken) {
      e.has_outcome = true;
      e.outcome =
          Outcome{o->ok, o->ok ? std::string_view(o->data) : std::string_view(),
                  o->ok ? std::string_view() : std::string_view(o->data), o->worker, o->elapsed_us};
    }
  }
  counters_.delivered += d.ids.size();
  OutMsg out{peer, peers_[peer].routing_id, {}, std::move(d)};
  EncodeTo(reply, &out.bytes);
  outbox_.push_back(std::move(out));
  return true;
}

// Parked gets are served oldest first, each with a fair share of what is
// ready, so a burst of tasks spreads over every waiting worker instead of
// filling the first one's window.
void Broker::ServeWaiters(uint32_t queue) {
  if (queue >= queue_waiters_.size()) return;
  auto& list = queue_waiters_[queue];
  for (std::size_t left = list.size(); left > 0 && queues_.CountsOf(queue).ready > 0; --left) {
    WaiterRef ref = list.front();
    list.pop_front();
    Waiter& w = waiters_[ref.index];
    if (w.peer == kNone || w.generation != ref.generation) continue;  // stale
    const uint64_t ready = queues_.CountsOf(queue).ready;
    const uint64_t share = std::max<uint64_t>(1, (ready + left - 1) / left);
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
  // Only a task that was handed out and has no outcome yet takes one: a late
  // duplicate (from a worker wrongly declared dead) is counted and dropped.
  if (!s || s->attempt == 0 || (s->state != SlotState::kLeased && s->state != SlotState::kReady)) {
    ++counters_.duplicates;
    return;
  }
  const bool was_leased = s->state == SlotState::kLeased;
  if (was_leased) leases_.Remove(s->aux);
  Peer& p = peers_[peer];
  if (!r.ok && r.retry && s->attempt < options_.max_attempts) {
    ++counters_.retried;
    if (was_leased) queues_.PushFront(r.id);  // a ready task is already back in line
    AddOnce(touched, s->queue);
    return;
  }
  if (!r.ok) return Fail(r.id, std::string(r.error), p.name, r.elapsed_us, touched);
  ++counters_.accepted;
  ++p.done;
  AddOnce(touched, s->reply_to);
  task_timeouts_.erase(r.id);
  queues_.MarkDone(r.id, StoredOutcome{true, std::string(r.value.empty() ? kNil : r.value), p.name,
                                       r.elapsed_us});
}

void Broker::Fail(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
                  std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  ++counters_.failed;
  queues_.CountFailed(s->queue);
  Log("task " + std::to_string(id) + " (" + std::string(queues_.KindName(s->kind)) +
      ") failed after " + std::to_string(s->attempt) + " attempt(s): " + error);
  AddOnce(touched, s->reply_to);
  task_timeouts_.erase(id);
  queues_.MarkDone(id, StoredOutcome{false, std::move(error), std::string(worker), elapsed_us});
}

// A leased task goes back to the front of its queue, or fails if that was
// its last attempt.
void Broker::Requeue(uint64_t id, const char* why, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  if (!s || s->state != SlotState::kLeased) return;
  const std::string worker = peers_[leases_.Get(s->aux).peer].name;
  leases_.Remove(s->aux);
  ++counters_.requeued;
  if (s->attempt >= options_.max_attempts)
    return Fail(id, std::string(why) + " (worker " + worker + ")", worker, 0, touched);
  queues_.PushFront(id);
  AddOnce(touched, s->queue);
}

void Broker::Undeliverable(const OutMsg& m) {
  std::vector<uint32_t> touched;
  // Back in reverse, so the first id ends up first again.
  for (auto it = m.delivery.ids.rbegin(); it != m.delivery.ids.rend(); ++it) {
    Slot* s = queues_.Find(*it);
    if (!s) continue;
    const bool leased = s->state == SlotState::kLeased;
    if (!leased && s->state != SlotState::kTaken) continue;  // moved on meanwhile
    const bool task = leased || s->aux == 0;                 // not an outcome
    if (leased) leases_.Remove(s->aux);
    if (task && s->attempt > 0) --s->attempt;  // it never reached the peer
    queues_.PushFront(*it);
    AddOnce(&touched, s->queue);
  }
  for (uint32_t q : touched) ServeWaiters(q);
}

TimePoint Broker::LeaseDeadline(uint64_t id, TimePoint now) const {
  std::chrono::milliseconds limit = options_.task_timeout;
  if (auto it = task_timeouts_.find(id); it != task_timeouts_.end())
    limit = std::chrono::milliseconds(it->second);
  return limit.count() > 0 ? now + limit : TimePoint::max();
}

// --- peers and time -----------------------------------------------------------

uint32_t Broker::FindPeer(std::string_view routing_id) const {
  auto it = peer_ids_.find(std::string(routing_id));
  return it == peer_ids_.end() ? kNone : it->second;
}

void Broker::PeerGone(uint32_t peer, const char* why) {
  Peer& p = peers_[peer];
  std::vector<uint64_t> ids = leases_.TasksOf(peer);
  // Highest id first, so after the front-pushes the oldest task leads.
  std::sort(ids.rbegin(), ids.rend());
  std::vector<uint32_t> touched;
  for (uint64_t id : ids) Requeue(id, "its worker went away", &touched);
  if (p.worker) {
    std::string line = "worker " + p.name + " left (" + why + ")";
    if (!ids.empty())
      line += "; " + std::to_string(ids.size()) + " of its task(s) go back to their queue";
    Log(line);
  }
  for (uint32_t w : std::vector<uint32_t>(p.waiters)) Unpark(w);
  peer_ids_.erase(p.routing_id);
  p = Peer();
  free_peers_.push_back(peer);
  for (uint32_t q : touched) ServeWaiters(q);
}

uint32_t Broker::Park(uint32_t peer, const Get& m, uint32_t queue, std::vector<uint16_t> kinds,
                      TimePoint now) {
  uint32_t idx;
  if (!free_waiters_.empty()) {
    idx = free_waiters_.back();
    free_waiters_.pop_back();
  } else {
    idx = static_cast<uint32_t>(waiters_.size());
    waiters_.emplace_back();
  }
  Waiter& w = waiters_[idx];
  w.peer = peer;
  w.rid = m.rid;
  w.queue = queue;
  w.max = std::clamp<uint32_t>(m.max, 1, kMaxBatch);
  w.lease = m.lease;
  w.kinds = std::move(kinds);
  w.deadline = now + std::chrono::milliseconds(m.timeout_ms);
  peers_[peer].waiters.push_back(idx);
  if (queue >= queue_waiters_.size()) queue_waiters_.resize(queues_.queue_count());
  auto& list = queue_waiters_[queue];
  // Stale refs pile up where gets time out and nothing is put: sweep them
  // when the list has grown well past the gets really waiting.
  if (list.size() >= 64 && list.size() >= 2 * peers_.size()) {
    std::erase_if(list, [this](const WaiterRef& r) {
      return waiters_[r.index].peer == kNone || waiters_[r.index].generation != r.generation;
    });
  }
  list.push_back(WaiterRef{idx, w.generation});
  waiter_due_.push(Due{w.deadline, idx, w.generation});
  return idx;
}

void Broker::Unpark(uint32_t waiter) {
  Waiter& w = waiters_[waiter];
  auto& mine = peers_[w.peer].waiters;
  mine.erase(std::find(mine.begin(), mine.end(), waiter));
  w.peer = kNone;
  w.kinds.clear();
  ++w.generation;
  free_waiters_.push_back(waiter);
}

void Broker::ExpireWaiters(TimePoint now) {
  while (!waiter_due_.empty()) {
    const Due d = waiter_due_.top();
    const Waiter& w = waiters_[d.waiter];
    if (w.peer != kNone && w.generation == d.generation) {
      if (d.deadline > now) return;
      SendEmpty(w.peer, w.rid, w.queue);
      Unpark(d.waiter);
    }
    waiter_due_.pop();
  }
}

void Broker::ExpireLeases(TimePoint now) {
  std::vector<uint32_t> touched;
  for (uint32_t l; (l = leases_.Expired(now)) != LeaseTable::kNone;) {
    const uint64_t id = leases_.Get(l).task;
    ++counters_.timed_out;
    Log("task " + std::to_string(id) + " passed its time limit on worker " +
        peers_[leases_.Get(l).peer].name);
    Requeue(id, "it passed its time limit", &touched);
  }
  for (uint32_t q : touched) ServeWaiters(q);
}

void Broker::CheckPeers(TimePoint now) {
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    if (!p.live) continue;
    const auto silent = now - p.last_heard;
    if (p.heartbeat.count() > 0) {
      if (silent > p.heartbeat * options_.missed_heartbeats) {
        ++counters_.dead_workers;
        PeerGone(i, ("silent for " +
                     Seconds(std::chrono::duration_cast<std::chrono::milliseconds>(silent)) +
                     ", presumed dead")
                        .c_str());
        continue;
      }
      if (now - p.last_sent >= options_.heartbeat) Send(i, Ping{});
    } else if (silent > options_.forget_idle_client && p.waiters.empty() &&
               leases_.CountOf(i) == 0) {
      PeerGone(i, "idle");
    }
  }
}

void Broker::Tick(TimePoint now) {
  now_ = now;
  ExpireWaiters(now);
  ExpireLeases(now);
  if (now >= next_check_) {
    CheckPeers(now);
    next_check_ =
        now + std::min<Clock::duration>(options_.heartbeat / 4, std::chrono::milliseconds(250));
  }
}

TimePoint Broker::NextDeadline() {
  TimePoint next = leases_.NextDeadline();
  while (!waiter_due_.empty()) {
    const Due& d = waiter_due_.top();
    const Waiter& w = waiters_[d.waiter];
    if (w.peer != kNone && w.generation == d.generation) {
      next = std::min(next, d.deadline);
      break;
    }
    waiter_due_.pop();
  }
  if (peer_ids_.size() > 0) next = std::min(next, next_check_);
  return next;
}

// --- output -------------------------------------------------------------------

void Broker::Send(uint32_t peer, const Message& m) {
  OutMsg out{peer, peers_[peer].routing_id, {}, {}};
  EncodeTo(m, &out.bytes);
  outbox_.push_back(std::move(out));
}

void Broker::SendError(uint32_t peer, uint64_t rid, std::string_view code,
                       const std::string& message) {
  Send(peer, ErrorMsg{rid, code, message});
}

void Broker::SendEmpty(uint32_t peer, uint64_t rid, uint32_t queue) {
  Items empty;
  empty.rid = rid;
  empty.queue = queues_.QueueName(queue);
  Send(peer, empty);
}

void Broker::Flush(Transport& transport, TimePoint now) {
  now_ = now;
  // Undeliverable and PeerGone may queue more while this runs: index, not iterators.
  for (std::size_t i = 0; i < outbox_.size(); ++i) {
    OutMsg m = std::move(outbox_[i]);
    const SendResult r = transport.Send(m.routing_id, m.bytes);
    const bool same_peer =
        m.peer != kNone && peers_[m.peer].live && peers_[m.peer].routing_id == m.routing_id;
    if (r == SendResult::kSent) {
      if (same_peer) peers_[m.peer].last_sent = now;
      for (uint64_t id : m.delivery.ids)  // taken entries are gone for good once sent
        if (Slot* s = queues_.Find(id); s && s->state == SlotState::kTaken) queues_.Free(id);
      continue;
    }
    if (!m.delivery.ids.empty()) Undeliverable(m);
    if (r == SendResult::kGone && same_peer) PeerGone(m.peer, "disconnected");
  }
  outbox_.clear();
}

void Broker::Shutdown(std::string_view reason) {
  for (uint32_t i = 0; i < peers_.size(); ++i)
    if (peers_[i].live) Send(i, taskq::Shutdown{reason});
}

StatsOk Broker::Snapshot(TimePoint now) const {
  StatsOk s;
  for (uint32_t q = 0; q < queues_.queue_count(); ++q) {
    QueueSet::Counts c = queues_.CountsOf(q);
    s.queues.push_back(QueueStats{queues_.QueueName(q), c.ready, c.leased, c.failed});
  }
  std::sort(s.queues.begin(), s.queues.end(),
            [](const QueueStats& a, const QueueStats& b) { return a.name < b.name; });
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    if (!p.live || !p.worker) continue;
    const auto idle =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard).count();
    s.workers.push_back(WorkerStats{p.name, leases_.CountOf(i), p.capacity, p.done,
                                    static_cast<uint64_t>(std::max<int64_t>(0, idle))});
  }
  const Counters& c = counters_;
  s.counters = {{"put", c.put},
                {"delivered", c.delivered},
                {"accepted", c.accepted},
                {"duplicates", c.duplicates},
                {"retried", c.retried},
                {"requeued", c.requeued},
                {"failed", c.failed},
                {"timed_out", c.timed_out},
                {"dead_workers", c.dead_workers},
                {"refused_handshakes", c.refused_handshakes},
                {"bad_messages", c.bad_messages}};
  return s;
}

}  // namespace taskq
