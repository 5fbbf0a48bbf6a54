// The Broker's peers coming and going, its timers, failing workers and
// output: what it does with the PeerTable, the Waiters and the Outbox.
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
      GiveBack(from, id, &touched);
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
  peers_.CarryOver(from, to);
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
  waiters_.DropPeer(peer);
  outbox_.ForgetPeer(peer);
  peers_.Remove(peer);
  for (uint32_t q : touched) ServeWaiters(q);
}

bool Broker::Holds(uint32_t peer) const {
  return leases_.CountOf(peer) > 0 || held_.CountOf(peer) > 0 || waiters_.Holds(peer);
}

void Broker::ExpireWaiters(TimePoint now) {
  while (std::optional<Waiters::ParkedGet> g = waiters_.PopExpired(now))
    SendEmpty(g->peer, g->rid, g->queue);
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

// What to do about each live peer is the PeerTable's to say (Check).
void Broker::CheckPeers(TimePoint now) {
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    if (!peers_[i].live) continue;
    switch (peers_.Check(i, now, Holds(i))) {
      case PeerTable::Verdict::kDead:
        ++counters_.dead_peers;
        PeerGone(i,
                 ("silent for " + Seconds(now - peers_[i].last_heard) + ", presumed dead").c_str(),
                 /*dead=*/true);
        break;
      case PeerTable::Verdict::kIdle:
        PeerGone(i, "idle");
        break;
      case PeerTable::Verdict::kPing:
        Send(i, Ping{});
        break;
      case PeerTable::Verdict::kFine:
        break;
    }
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
  TimePoint next =
      std::min({leases_.NextDeadline(), waiters_.NextDeadline(), outbox_.NextAckDue(), wake_at_});
  if (!peers_.empty()) next = std::min(next, next_check_);
  return next;
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
  if (it->second.ident != peers_[peer].ident ||
      !peers_.OtherWorkerRuns(peer, queues_.KindName(kind), now_))
    return false;
  WakeAt(it->second.until);  // if nobody else takes it by then, this peer may
  return true;
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
    if (p.on_trial && !p.Benched(now_)) {
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
  if (p.Benched(now_)) return;
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
  for (uint32_t i = 0; i < peers_.size(); ++i)
    if (peers_[i].live && peers_[i].Benched(now_)) WakeAt(peers_[i].benched_until);
  for (uint32_t q : waiters_.BusyQueues()) ServeWaiters(q);
}

void Broker::ServePeerWaiters(uint32_t peer) {
  for (uint32_t q : waiters_.QueuesOf(peer)) ServeWaiters(q);
}

// --- output -------------------------------------------------------------------

void Broker::SendTo(std::string_view routing_id, uint32_t peer, const Message& m) {
  outbox_.Push(peer, routing_id, m);
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

// Puts waiting for room go in when they fit, or get "full" when their time
// is up.
void Broker::ServePutsWaiting(TimePoint now) {
  auto fits = [this](const Waiters::WaitingPut& p) {
    return Occupancy(p.queue) + p.count <= options_.max_queue;
  };
  waiters_.RetryPuts(now, fits, [this](Waiters::WaitingPut p, bool expired) {
    if (expired) {
      ++counters_.full;
      return SendError(p.peer, p.rid, kErrFull,
                       "queue '" + std::string(queues_.QueueName(p.queue)) + "' stayed full");
    }
    Result<Message> m = Decode(p.bytes);  // it decoded once: it decodes again
    const Put& put = std::get<Put>(*m);
    std::vector<uint16_t> kinds;
    for (const NewTask& t : put.items) kinds.push_back(*queues_.KindId(t.kind));
    AddTasks(p.peer, put, p.queue, *queues_.QueueId(put.reply_to), kinds);
  });
}

void Broker::ReadyOutbox(TimePoint now) {
  now_ = now;
  // Room may have been made since the puts parked (results, takes).
  if (waiters_.AnyPuts()) ServePutsWaiting(now);
  outbox_.ReleaseAcks(now, /*all=*/false);
}

void Broker::Settle(const OutMsg& m, SendResult result, TimePoint now) {
  now_ = now;
  const bool same_peer =
      m.peer != kNone && peers_[m.peer].live && peers_[m.peer].routing_id == m.routing_id;
  if (result == SendResult::kSent) {
    if (same_peer) peers_[m.peer].last_sent = now;
    for (uint64_t id : m.delivery.ids) {  // taken entries are gone for good once sent
      if (Slot* s = queues_.Find(id); s && s->state == SlotState::kTaken) {
        queues_.Free(id);
        Forget(id);
      }
    }
    return;
  }
  if (!m.delivery.ids.empty()) Undeliverable(m.delivery);
  if (result == SendResult::kGone && same_peer) PeerGone(m.peer, "disconnected");
}

void Broker::Flush(Transport& transport, TimePoint now) {
  ReadyOutbox(now);
  // Settle may queue more (entries back to parked gets, a peer gone): those
  // go in the next batch.
  for (TakeOutbox(&batch_); !batch_.empty(); TakeOutbox(&batch_))
    for (const OutMsg& m : batch_) Settle(m, transport.Send(m.routing_id, m.bytes), now);
}

void Broker::Shutdown(std::string_view reason, bool handover) {
  outbox_.ReleaseAcks(now_, /*all=*/true);
  for (uint32_t i = 0; i < peers_.size(); ++i)
    if (peers_[i].live) Send(i, taskq::Shutdown{reason, handover});
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
        p.Benched(now)
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
