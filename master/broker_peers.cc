// The Broker's peers, parked requests, timers and output.
#include <algorithm>
#include <cstdio>

#include "master/broker.h"
#include "proto/limits.h"

namespace taskq {
namespace {

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// "30 s", or "1.5 s" when not whole.
std::string BenchTime(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return Seconds(d);
}

}  // namespace

uint32_t Broker::FindPeer(std::string_view routing_id) const {
  auto it = peer_ids_.find(std::string(routing_id));
  return it == peer_ids_.end() ? kNone : it->second;
}

// The same process on a new connection (it lost the old one). The leases of
// tasks it says it holds follow it, so results it is still computing are not
// run twice; the others were on their way when the connection broke: they
// never reached it, and go back without using up an attempt.
void Broker::TakeOver(uint32_t from, uint32_t to, const std::vector<uint64_t>& holding) {
  std::vector<uint64_t> ids = leases_.TasksOf(from);
  std::sort(ids.rbegin(), ids.rend());  // released highest first: the oldest leads again
  std::vector<uint64_t> held = holding;
  std::sort(held.begin(), held.end());
  std::vector<uint32_t> touched;
  for (uint64_t id : ids) {
    const Slot* s = queues_.Find(id);
    if (std::binary_search(held.begin(), held.end(), id)) {
      leases_.Move(s->aux, to);
    } else {
      Release(from, id, &touched);
    }
  }
  // Leased outcomes the same way: those it says it holds stay its own.
  ids = held_.TasksOf(from);
  std::sort(ids.rbegin(), ids.rend());
  for (uint64_t id : ids) {
    if (std::binary_search(held.begin(), held.end(), id))
      held_.Move(queues_.HeldLease(*queues_.Find(id)), to);
    else
      Unhold(id, &touched);
  }
  // A bench follows the process, not the connection.
  const Peer& before = peers_[from];
  Peer& after = peers_[to];
  after.on_trial = before.on_trial;
  after.benches = before.benches;
  after.benched_until = before.benched_until;
  after.fail_streak = before.fail_streak;
  after.streak_since = before.streak_since;
  // So do the job queues it put to, which its stats list.
  after.jobs.insert(after.jobs.end(), before.jobs.begin(), before.jobs.end());
  std::sort(after.jobs.begin(), after.jobs.end());
  after.jobs.erase(std::unique(after.jobs.begin(), after.jobs.end()), after.jobs.end());
  PeerGone(from, "reconnected");
  for (uint32_t q : touched) ServeWaiters(q);
}

void Broker::PeerGone(uint32_t peer, const char* why, bool dead) {
  Peer& p = peers_[peer];
  if (p.worker) flow_.Worker(dead ? FlowKind::kDead : FlowKind::kLeft, p.ident, now_);
  std::vector<uint64_t> ids = leases_.TasksOf(peer);
  // Highest id first, so after the front-pushes the oldest task leads.
  std::sort(ids.rbegin(), ids.rend());
  std::vector<uint32_t> touched;
  for (uint64_t id : ids) Requeue(id, "its worker went away", &touched);
  UnholdAll(peer, &touched);
  if (p.worker) {
    std::string line = "worker " + p.name + " left (" + why + ")";
    if (!ids.empty())
      line += "; " + std::to_string(ids.size()) + " of its task(s) go back to their queue";
    Log(line);
  }
  for (uint32_t w : std::vector<uint32_t>(p.waiters)) Unpark(w);
  std::erase_if(pending_puts_, [peer](const PendingPut& put) { return put.peer == peer; });
  peer_ids_.erase(p.routing_id);
  if (!p.held_acks.empty()) std::erase(ack_holders_, peer);
  p = Peer();
  free_peers_.push_back(peer);
  for (uint32_t q : touched) ServeWaiters(q);
}

void Broker::Park(uint32_t peer, const Get& m, uint32_t queue, std::vector<uint16_t> kinds,
                  TimePoint now) {
  const uint32_t idx = TakeCell(waiters_, free_waiters_);
  Waiter& w = waiters_[idx];
  w.peer = peer;
  w.rid = m.rid;
  w.queue = queue;
  w.max = std::clamp<uint32_t>(m.max, 1, kMaxBatch);
  w.lease = m.lease;
  w.kinds = std::move(kinds);
  w.deadline = now + std::chrono::milliseconds(m.timeout_ms);
  peers_[peer].waiters.push_back(idx);
  if (queue >= queue_waiters_.size()) {
    queue_waiters_.resize(queues_.queue_count());
    live_waiters_.resize(queues_.queue_count(), 0);
  }
  auto& list = queue_waiters_[queue];
  // Stale refs pile up where gets time out and nothing is put: sweep them
  // when the list has grown well past the gets really waiting.
  if (list.size() >= 64 && list.size() >= 2 * live_waiters_[queue]) {
    std::erase_if(list, [this](const WaiterRef& r) {
      return waiters_[r.index].peer == kNone || waiters_[r.index].generation != r.generation;
    });
  }
  list.push_back(WaiterRef{idx, w.generation});
  ++live_waiters_[queue];
  waiter_due_.Push(w.deadline, idx, w.generation);
}

void Broker::Unpark(uint32_t waiter) {
  Waiter& w = waiters_[waiter];
  auto& mine = peers_[w.peer].waiters;
  mine.erase(std::find(mine.begin(), mine.end(), waiter));
  --live_waiters_[w.queue];
  w.peer = kNone;
  w.kinds.clear();
  ++w.generation;
  free_waiters_.push_back(waiter);
}

void Broker::ParkPut(uint32_t peer, uint32_t queue, const Put& m, std::string_view bytes,
                     TimePoint now) {
  ++peers_[peer].pending_puts;
  pending_puts_.push_back(PendingPut{peer, queue, m.items.size(), m.rid, std::string(bytes),
                                     now + std::chrono::milliseconds(m.timeout_ms)});
}

// Puts waiting for room, oldest first per queue: each goes in when it fits,
// or gets "full" when its time is up.
void Broker::RetryPendingPuts(TimePoint now) {
  std::vector<uint32_t> blocked;  // queues whose oldest waiting put does not fit yet
  for (auto it = pending_puts_.begin(); it != pending_puts_.end();) {
    const bool expired = it->deadline <= now;
    const bool behind = std::find(blocked.begin(), blocked.end(), it->queue) != blocked.end();
    if (!expired && (behind || Occupancy(it->queue) + it->count > options_.max_queue)) {
      blocked.push_back(it->queue);
      ++it;
      continue;
    }
    PendingPut p = std::move(*it);
    pending_puts_.erase(it);
    --peers_[p.peer].pending_puts;
    if (expired) {
      ++counters_.full;
      SendError(p.peer, p.rid, kErrFull,
                "queue '" + std::string(queues_.QueueName(p.queue)) + "' stayed full");
    } else {
      Result<Message> m = Decode(p.bytes);  // it decoded once: it decodes again
      const Put& put = std::get<Put>(*m);
      std::vector<uint16_t> kinds;
      for (const NewTask& t : put.items) kinds.push_back(*queues_.KindId(t.kind));
      AddTasks(p.peer, put, p.queue, *queues_.QueueId(put.reply_to), kinds);
    }
    it = pending_puts_.begin();  // what changed may let an earlier one in: look again
    blocked.clear();
  }
}

bool Broker::WaiterCurrent(uint32_t waiter, uint32_t generation) const {
  return waiters_[waiter].peer != kNone && waiters_[waiter].generation == generation;
}

void Broker::ExpireWaiters(TimePoint now) {
  auto current = [this](uint32_t w, uint32_t g) { return WaiterCurrent(w, g); };
  while (std::optional<DeadlineHeap::Due> d = waiter_due_.PopDue(now, current)) {
    const Waiter& w = waiters_[d->cell];
    SendEmpty(w.peer, w.rid, w.queue);
    Unpark(d->cell);
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

// Peers that promised heartbeats and went silent are dead. Peers are pinged
// when the master has not written to them for a heartbeat: those that
// promised heartbeats (so they know the master lives), and those that hold
// something (leases, parked gets), so that a vanished one is found: the send
// fails once libzmq has dropped its connection.
void Broker::CheckPeers(TimePoint now) {
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    if (!p.live) continue;
    const auto silent = now - p.last_heard;
    const bool holds =
        !p.waiters.empty() || leases_.CountOf(i) > 0 || held_.CountOf(i) > 0 || p.pending_puts > 0;
    if (p.heartbeat.count() > 0 && silent > p.heartbeat * options_.missed_heartbeats) {
      ++counters_.dead_peers;
      PeerGone(i, ("silent for " + Seconds(silent) + ", presumed dead").c_str(), /*dead=*/true);
      continue;
    }
    if (p.heartbeat.count() == 0 && !holds && silent > options_.forget_idle_client) {
      PeerGone(i, "idle");
      continue;
    }
    if ((p.heartbeat.count() > 0 || holds) && now - p.last_sent >= options_.heartbeat)
      Send(i, Ping{});
  }
}

void Broker::Tick(TimePoint now) {
  now_ = now;
  ExpireWaiters(now);
  ExpireLeases(now);
  if (now >= wake_at_) Wake();
  if (now >= next_check_) {
    CheckPeers(now);
    next_check_ =
        now + std::min<Clock::duration>(options_.heartbeat / 4, std::chrono::milliseconds(250));
  }
}

TimePoint Broker::NextDeadline() {
  TimePoint next = leases_.NextDeadline();
  if (std::optional<DeadlineHeap::Due> d = waiter_due_.Next(
          [this](uint32_t w, uint32_t g) { return WaiterCurrent(w, g); }))
    next = std::min(next, d->deadline);
  for (const PendingPut& p : pending_puts_) next = std::min(next, p.deadline);
  if (!peer_ids_.empty()) next = std::min(next, next_check_);
  for (uint32_t i : ack_holders_) next = std::min(next, peers_[i].acks_due);
  return std::min(next, wake_at_);
}

// --- failing workers ----------------------------------------------------------

// A retried task is not handed back to the worker that failed it while
// another one could run it: a worker that fails fast (broken, not the task)
// would otherwise take every retry and use up every attempt.
bool Broker::Avoids(uint32_t peer, uint64_t id, uint16_t kind) {
  auto it = avoid_.find(id);
  if (it == avoid_.end()) return false;
  if (now_ >= it->second.until) {
    avoid_.erase(it);
    return false;
  }
  if (it->second.ident != peers_[peer].ident || !OtherWorkerRuns(peer, kind)) return false;
  WakeAt(it->second.until);  // if nobody else takes it by then, this peer may
  return true;
}

// A connected worker, other than this process and not benched, that runs
// kind (one that did not say what it runs might).
bool Broker::OtherWorkerRuns(uint32_t peer, uint16_t kind) const {
  const std::string_view name = queues_.KindName(kind);
  for (const Peer& p : peers_) {
    if (!p.live || !p.worker || p.ident == peers_[peer].ident || Benched(p)) continue;
    if (p.kinds.empty() || std::find(p.kinds.begin(), p.kinds.end(), name) != p.kinds.end())
      return true;
  }
  return false;
}

void Broker::AvoidRetry(uint32_t peer, uint64_t id) {
  if (options_.retry_elsewhere.count() > 0)
    avoid_[id] = Avoid{peers_[peer].ident, now_ + options_.retry_elsewhere};
}

// Watches for a worker whose failures are its own though it does not say
// so: bench_after_failures retryable failures in a row (one, on trial)
// while some other worker succeeded at the same kind (since the row began:
// the worker's last success, bench or hello). A failure with retry false
// blames the task, by the worker's own word: it does not count.
void Broker::CountResult(uint32_t peer, const TaskResult& r, uint16_t kind) {
  Peer& p = peers_[peer];
  if (r.ok) {
    if (kind >= last_ok_.size()) last_ok_.resize(kind + 1, 0);
    last_ok_[kind] = ++ok_seq_;
    p.fail_streak = 0;
    p.streak_since = ok_seq_;
    // It works again; a task it began before its bench says less.
    if (p.on_trial && !Benched(p)) {
      p.on_trial = false;
      p.benches = 0;
    }
    return;
  }
  if (!r.retry || r.worker_fault) return;
  ++p.fail_streak;
  const uint32_t limit = p.on_trial ? 1 : options_.bench_after_failures;
  const bool others_succeed = kind < last_ok_.size() && last_ok_[kind] > p.streak_since;
  if (limit == 0 || p.fail_streak < limit || !others_succeed) return;
  BenchWorker(peer, "its last " + std::to_string(p.fail_streak) + " task(s) failed while other " +
                        "workers succeeded at kind '" + std::string(queues_.KindName(kind)) +
                        "': " + std::string(r.error));
}

// The worker gets no entries for a while (its parked gets wait), then one
// task at a time until one succeeds. Its running tasks carry on.
void Broker::BenchWorker(uint32_t peer, const std::string& why) {
  Peer& p = peers_[peer];
  if (Benched(p)) return;
  auto d = options_.bench;
  for (uint32_t i = 0; i < p.benches && d < options_.max_bench; ++i) d *= 2;
  d = std::min(d, options_.max_bench);
  p.on_trial = true;
  ++p.benches;
  p.benched_until = now_ + d;
  p.fail_streak = 0;
  p.streak_since = ok_seq_;
  ++counters_.benched;
  WakeAt(p.benched_until);
  Log("worker " + p.name + " benched for " + BenchTime(d) + ": " + why);
}

// A bench or an avoidance ended: parked gets may now be served.
void Broker::Wake() {
  wake_at_ = TimePoint::max();
  for (const Peer& p : peers_)
    if (p.live && Benched(p)) WakeAt(p.benched_until);
  for (uint32_t q = 0; q < queue_waiters_.size(); ++q)
    if (live_waiters_[q] > 0) ServeWaiters(q);
}

void Broker::ServePeerWaiters(uint32_t peer) {
  std::vector<uint32_t> queues;
  for (uint32_t w : peers_[peer].waiters)
    if (std::find(queues.begin(), queues.end(), waiters_[w].queue) == queues.end())
      queues.push_back(waiters_[w].queue);
  for (uint32_t q : queues) ServeWaiters(q);
}

// --- output -------------------------------------------------------------------

void Broker::SendTo(std::string_view routing_id, uint32_t peer, const Message& m) {
  OutMsg out{peer, std::string(routing_id), {}, {}};
  EncodeTo(m, &out.bytes);
  outbox_.push_back(std::move(out));
}

void Broker::Send(uint32_t peer, const Message& m) { SendTo(peers_[peer].routing_id, peer, m); }

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

// Why lazy acks: in lock-step (one task at a time) a worker's result_ok
// and its next task each woke the worker (two context switches on each
// side); sent together they cost one. Under load they ride with the next
// items reply for free. Held acks cost nothing else: a worker needs them
// only to stop, or to know what to send again after a reconnect.
void Broker::HoldAck(uint32_t peer, const ResultOk& m) {
  Peer& p = peers_[peer];
  if (p.held_acks.empty()) {
    p.acks_due = now_ + std::chrono::milliseconds(kLazyAckMs);
    ack_holders_.push_back(peer);
  }
  std::string bytes;
  EncodeTo(m, &bytes);
  p.held_acks.push_back(std::move(bytes));
}

void Broker::ReleaseAcks(TimePoint now, bool all) {
  if (ack_holders_.empty()) return;
  ++flush_stamp_;
  for (const OutMsg& m : outbox_)
    if (m.peer != kNone) peers_[m.peer].flush_stamp = flush_stamp_;
  std::erase_if(ack_holders_, [&](uint32_t i) {
    Peer& p = peers_[i];
    if (!(all || now >= p.acks_due || p.flush_stamp == flush_stamp_)) return false;
    for (std::string& bytes : p.held_acks)
      outbox_.push_back(OutMsg{i, p.routing_id, std::move(bytes), {}});
    p.held_acks.clear();
    return true;
  });
}

void Broker::Flush(Transport& transport, TimePoint now) {
  now_ = now;
  // Room may have been made since the puts parked (results, takes).
  if (!pending_puts_.empty()) RetryPendingPuts(now);
  ReleaseAcks(now, /*all=*/false);
  // Undeliverable and PeerGone may queue more while this runs: index, not iterators.
  for (std::size_t i = 0; i < outbox_.size(); ++i) {
    OutMsg m = std::move(outbox_[i]);
    const SendResult r = transport.Send(m.routing_id, m.bytes);
    const bool same_peer =
        m.peer != kNone && peers_[m.peer].live && peers_[m.peer].routing_id == m.routing_id;
    if (r == SendResult::kSent) {
      if (same_peer) peers_[m.peer].last_sent = now;
      for (uint64_t id : m.delivery.ids) {  // taken entries are gone for good once sent
        if (Slot* s = queues_.Find(id); s && s->state == SlotState::kTaken) {
          queues_.Free(id);
          Forget(id);
        }
      }
      continue;
    }
    if (!m.delivery.ids.empty()) Undeliverable(m);
    if (r == SendResult::kGone && same_peer) PeerGone(m.peer, "disconnected");
  }
  outbox_.clear();
}

void Broker::Shutdown(std::string_view reason) {
  ReleaseAcks(now_, /*all=*/true);
  for (uint32_t i = 0; i < peers_.size(); ++i)
    if (peers_[i].live) Send(i, taskq::Shutdown{reason});
}

StatsOk Broker::Snapshot(TimePoint now) const {
  StatsOk s;
  for (uint32_t q = 0; q < queues_.queue_count(); ++q) {
    const QueueSet::Counts c = queues_.CountsOf(q);
    s.queues.push_back(QueueStats{queues_.QueueName(q), c.ready, c.leased, c.failed, c.owed});
  }
  std::sort(s.queues.begin(), s.queues.end(),
            [](const QueueStats& a, const QueueStats& b) { return a.name < b.name; });
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    if (!p.live || !p.worker) continue;
    const auto idle =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard).count();
    const auto benched =
        p.on_trial && now < p.benched_until
            ? std::chrono::duration_cast<std::chrono::milliseconds>(p.benched_until - now).count()
            : 0;
    s.workers.push_back(WorkerStats{p.name, leases_.CountOf(i), p.capacity, p.done,
                                    static_cast<uint64_t>(std::max<int64_t>(0, idle)),
                                    static_cast<uint64_t>(std::max<int64_t>(0, benched))});
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
                {"dead_peers", c.dead_peers},
                {"full", c.full},
                {"refused_handshakes", c.refused_handshakes},
                {"bad_messages", c.bad_messages},
                {"benched", c.benched}};
  return s;
}

}  // namespace taskq
