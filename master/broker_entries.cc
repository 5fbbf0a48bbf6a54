// The Broker's entries: handing them out (Serve), taking results, failing,
// requeueing, releasing and undoing a delivery that could not be sent.
#include <algorithm>

#include "master/broker.h"
#include "master/roles.h"
#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

// Most entries one get steps over (retried tasks kept from the worker that
// failed them, Broker::Avoids; entries not for its role, MayTake), so a
// queue full of them cannot make a get walk the whole queue.
constexpr std::size_t kMaxSkips = 1024;

}  // namespace

// Hands up to max entries of queue to peer at once: a lone task never waits
// for a batch to fill. False when none matched. With lease, tasks are leased
// until their result and outcomes until an ack; without, both are taken.
bool Broker::Serve(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max, bool lease,
                   const std::vector<uint16_t>& kinds) {
  if (peers_[peer].on_trial) {  // benched, or one task at a time after it
    if (peers_[peer].Benched(now_) || leases_.CountOf(peer) > 0) return false;
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
  outbox_.Push(peer, peers_[peer].routing_id, reply, std::move(d));
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

void Broker::ServeWaiters(uint32_t queue) {
  waiters_.Offer(
      queue, [&] { return queues_.CountsOf(queue).ready; },
      [&](const Waiters::ParkedGet& g, uint32_t max) {
        return Serve(g.peer, g.rid, queue, max, g.lease, g.kinds);
      });
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
  // A failure of an earlier delivery (a worker sending it again after a
  // reconnect, once the task was handed out anew) is not this delivery's:
  // taking it would cost the new one an attempt. A success is true
  // whichever delivery made it.
  if (!r.ok && r.attempt != 0 && r.attempt != s->attempt) {
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
    Touch(touched, s->queue);
    return BenchWorker(
        peer, "its last task failed because of the worker itself: " + std::string(r.error));
  }
  if (!r.ok && r.retry && s->attempt < options_.max_attempts) {
    ++counters_.retried;
    if (was_leased) queues_.PushFront(r.id);  // a ready task is already back in line
    AvoidRetry(peer, r.id);
    Touch(touched, s->queue);
    return;
  }
  if (!r.ok) return GiveUp(r.id, std::string(r.error), p.name, r.elapsed_us, touched);
  ++counters_.accepted;
  Touch(touched, s->reply_to);
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
void Broker::GiveUp(uint64_t id, std::string error, std::string_view worker, uint64_t elapsed_us,
                    std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  ++counters_.failed;
  queues_.CountFailed(s->queue);
  if (options_.log_failures)
    Log("task " + std::to_string(id) + " (" + std::string(queues_.KindName(s->kind)) +
        ") failed after " + std::to_string(s->attempt) + " attempt(s): " + error);
  Touch(touched, s->reply_to);
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
    log_->Rewrite(rec, kFailedQueue, kFailedQueue, kFailedQueue, *queues_.Find(rec), 0, nullptr);
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
    return GiveUp(id, std::string(why) + " (worker " + worker + ")", worker, 0, touched);
  queues_.PushFront(id);
  Touch(touched, s->queue);
}

// A task the peer hands back without having started it: the delivery does
// not count as an attempt.
void Broker::GiveBack(uint32_t peer, uint64_t id, std::vector<uint32_t>* touched) {
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
  Touch(touched, s->queue);
}

// Nothing was journaled for the lease (the outcome's take waits for its
// ack), so nothing is to undo there: the outcome is simply ready again.
void Broker::Unhold(uint64_t id, std::vector<uint32_t>* touched) {
  Slot* s = queues_.Find(id);
  held_.Remove(queues_.HeldLease(*s));
  queues_.PushFront(id);
  Touch(touched, s->queue);
}

void Broker::UnholdAll(uint32_t peer, std::vector<uint32_t>* touched) {
  if (held_.CountOf(peer) == 0) return;
  std::vector<uint64_t> ids = held_.TasksOf(peer);
  std::sort(ids.rbegin(), ids.rend());  // highest first: the oldest leads again
  for (uint64_t id : ids) Unhold(id, touched);
}

void Broker::Undeliverable(const Delivery& d) {
  std::vector<uint32_t> touched;
  // Back in reverse, so the first id ends up first again.
  for (std::size_t k = d.ids.size(); k-- > 0;) {
    const uint64_t id = d.ids[k];
    const auto [lease, generation, outcome] = d.leases[k];
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
        log_->Rewrite(id, queues_.QueueName(back.queue), queues_.QueueName(back.reply_to),
                      queues_.KindName(back.kind), back, TimeoutOf(id), queues_.OutcomeOf(back));
      }
    }
    Touch(&touched, s->queue);
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

void Broker::Touch(std::vector<uint32_t>* touched, uint32_t queue) {
  if (std::find(touched->begin(), touched->end(), queue) == touched->end())
    touched->push_back(queue);
}

}  // namespace taskq
