#include "master/queue_set.h"

#include <algorithm>
#include <cassert>

namespace taskq {

Result<uint32_t> QueueSet::QueueId(std::string_view name) {
  auto it = queue_ids_.find(std::string(name));
  if (it != queue_ids_.end()) return it->second;
  if (queues_.size() >= kMaxQueues)
    return Status::Error(Code::kInvalid,
                         "the master already has " + std::to_string(kMaxQueues) + " queues");
  uint32_t id = static_cast<uint32_t>(queues_.size());
  queues_.push_back(QueueState{std::string(name), {}, 0, 0, 0, 0});
  queue_ids_.emplace(std::string(name), id);
  if (name == record_queue_name_) record_queue_ = id;
  return id;
}

Result<uint16_t> QueueSet::KindId(std::string_view name) {
  auto it = kind_ids_.find(std::string(name));
  if (it != kind_ids_.end()) return it->second;
  if (kinds_.size() >= kMaxKinds)
    return Status::Error(Code::kInvalid,
                         "the master already knows " + std::to_string(kMaxKinds) + " kinds");
  uint16_t id = static_cast<uint16_t>(kinds_.size());
  kinds_.emplace_back(name);
  kind_ids_.emplace(std::string(name), id);
  return id;
}

int64_t QueueSet::FindQueue(std::string_view name) const {
  auto it = queue_ids_.find(std::string(name));
  return it == queue_ids_.end() ? -1 : static_cast<int64_t>(it->second);
}

QueueSet::Lane& QueueSet::LaneOf(QueueState& q, uint16_t kind) {
  for (Lane& l : q.lanes)
    if (l.kind == kind) return l;
  q.lanes.push_back(Lane{kind, {}});
  return q.lanes.back();
}

uint64_t QueueSet::Add(uint32_t q, uint32_t reply_to, uint16_t kind, std::string_view arg) {
  Slot s;
  s.arg = Blob(arg);
  s.queue = q;
  s.reply_to = reply_to;
  s.kind = kind;
  s.state = SlotState::kReady;
  uint64_t id = table_.Append(std::move(s));
  QueueState& qq = queues_[q];
  LaneOf(qq, kind).ids.push_back(id);
  ++qq.ready;
  if (reply_to != record_queue_) ++queues_[reply_to].owed;
  return id;
}

uint64_t QueueSet::Pop(uint32_t q, const std::vector<uint16_t>& kinds, Slot** slot) {
  QueueState& qq = queues_[q];
  while (qq.ready > 0) {
    // The matching lane whose front is oldest; requeued entries sit at the
    // front of their lane, so they win.
    Lane* best = nullptr;
    for (Lane& l : qq.lanes) {
      if (l.ids.empty()) continue;
      if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), l.kind) == kinds.end()) continue;
      if (!best || l.ids.front() < best->ids.front()) best = &l;
    }
    if (!best) return 0;
    uint64_t id = best->ids.front();
    best->ids.pop_front();
    Slot* s = table_.Find(id);
    // A stale id: the entry moved on while its id waited here.
    if (!s || s->queue != q || (s->state != SlotState::kReady && s->state != SlotState::kDone))
      continue;
    --qq.ready;
    if (slot) *slot = s;
    return id;
  }
  return 0;
}

void QueueSet::MarkLeased(Slot* s, uint32_t lease) {
  assert(s && s->state == SlotState::kReady);
  s->state = SlotState::kLeased;
  s->aux = lease;
  if (s->attempt < 255) ++s->attempt;
  ++queues_[s->queue].leased;
}

void QueueSet::MarkTaken(Slot* s) {
  assert(s && (s->state == SlotState::kReady || s->state == SlotState::kDone));
  if (s->state == SlotState::kReady) {
    s->aux = 0;
    if (s->attempt < 255) ++s->attempt;
  }
  s->state = SlotState::kTaken;
}

void QueueSet::MarkHeld(Slot* s, uint32_t lease) {
  assert(s && s->state == SlotState::kDone);
  s->state = SlotState::kHeld;
  outcomes_[s->aux - 1].lease = lease;
  ++queues_[s->queue].leased;
}

void QueueSet::PushFront(uint64_t id) {
  Slot* s = table_.Find(id);
  assert(s);
  QueueState& qq = queues_[s->queue];
  if (s->state == SlotState::kLeased) {
    --qq.leased;
    s->aux = 0;
  } else if (s->state == SlotState::kHeld) {
    --qq.leased;  // aux keeps its outcome
  }
  s->state = s->aux != 0 ? SlotState::kDone : SlotState::kReady;
  LaneOf(qq, s->kind).ids.push_front(id);
  ++qq.ready;
}

void QueueSet::MarkDone(uint64_t id, StoredOutcome outcome) {
  Slot* s = table_.Find(id);
  assert(s && (s->state == SlotState::kReady || s->state == SlotState::kLeased));
  QueueState& from = queues_[s->queue];
  if (s->state == SlotState::kLeased)
    --from.leased;
  else
    --from.ready;  // its id stays in the lane, stale
  Settle(*s);
  s->state = SlotState::kDone;
  s->aux = StoreOutcome(std::move(outcome)) + 1;
  s->queue = s->reply_to;
  QueueState& to = queues_[s->reply_to];
  LaneOf(to, s->kind).ids.push_back(id);
  ++to.ready;
}

void QueueSet::Free(uint64_t id) {
  Slot* s = table_.Find(id);
  if (!s) return;
  QueueState& qq = queues_[s->queue];
  switch (s->state) {
    case SlotState::kReady:
      --qq.ready;
      Settle(*s);
      break;
    case SlotState::kLeased:
      --qq.leased;
      s->aux = 0;
      Settle(*s);
      break;
    case SlotState::kTaken:
      if (s->aux == 0) Settle(*s);  // a task handed out without a lease: no outcome comes
      break;
    case SlotState::kHeld:
      --qq.leased;
      break;
    case SlotState::kDone:
      --qq.ready;
      break;
    default:
      break;
  }
  DropOutcome(*s);
  table_.Free(id);
}

std::vector<uint64_t> QueueSet::WaitingIds(uint32_t q, uint64_t after, std::size_t max) {
  std::vector<uint64_t> ids;
  for (const Lane& l : queues_[q].lanes) {
    for (uint64_t id : l.ids) {
      if (id <= after) continue;
      const Slot* s = table_.Find(id);
      // Stale ids (see Pop), and an id standing twice in a lane, are skipped.
      if (s && s->queue == q && (s->state == SlotState::kReady || s->state == SlotState::kDone))
        ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.size() > max) ids.resize(max);
  return ids;
}

std::vector<uint64_t> QueueSet::FreeWaiting(uint32_t q) {
  std::vector<uint64_t> ids = WaitingIds(q, 0, SIZE_MAX);
  for (uint64_t id : ids) Free(id);
  // Every id left in the lanes is stale now: leased entries are not there.
  for (Lane& l : queues_[q].lanes) l.ids.clear();
  return ids;
}

std::vector<std::string_view> QueueSet::WaitingTaskKinds(uint32_t q) {
  std::vector<std::string_view> out;
  for (Lane& l : queues_[q].lanes) {
    // The first id that is still where it was put says what the lane holds.
    while (!l.ids.empty()) {
      const Slot* s = table_.Find(l.ids.front());
      if (s && s->queue == q && (s->state == SlotState::kReady || s->state == SlotState::kDone))
        break;
      l.ids.pop_front();  // stale: nothing waits under this id any more
    }
    if (!l.ids.empty() && table_.Find(l.ids.front())->state == SlotState::kReady)
      out.push_back(kinds_[l.kind]);
  }
  return out;
}

void QueueSet::RecoverEntry(uint64_t id, uint32_t q, uint32_t reply_to, uint16_t kind,
                            std::string_view arg, uint8_t attempt, const StoredOutcome* outcome) {
  RecoverFree(id);
  Slot s;
  s.arg = Blob(arg);
  s.queue = outcome ? reply_to : q;
  s.reply_to = reply_to;
  s.kind = kind;
  s.attempt = attempt;
  s.state = outcome ? SlotState::kDone : SlotState::kReady;
  if (outcome) s.aux = StoreOutcome(*outcome) + 1;
  table_.Insert(id, std::move(s));
}

void QueueSet::RecoverDone(uint64_t id, StoredOutcome outcome) {
  Slot* s = table_.Find(id);
  if (!s || s->state != SlotState::kReady) return;
  s->state = SlotState::kDone;
  s->queue = s->reply_to;
  s->aux = StoreOutcome(std::move(outcome)) + 1;
}

void QueueSet::RecoverFree(uint64_t id) {
  Slot* s = table_.Find(id);
  if (!s) return;
  DropOutcome(*s);
  table_.Free(id);
}

void QueueSet::RecoverAttempt(uint64_t id, int delta) {
  Slot* s = table_.Find(id);
  if (!s || s->state != SlotState::kReady) return;
  if (delta > 0 && s->attempt < 255) ++s->attempt;
  if (delta < 0 && s->attempt > 0) --s->attempt;
}

void QueueSet::FinishRecovery() {
  table_.EvacuateSparse();
  for (QueueState& q : queues_) {
    q.lanes.clear();
    q.ready = q.leased = q.owed = 0;
  }
  table_.ForEachLive(0, table_.next_id(), SIZE_MAX, [this](uint64_t id, Slot& s) {
    QueueState& q = queues_[s.queue];
    LaneOf(q, s.kind).ids.push_back(id);
    ++q.ready;
    if (s.state == SlotState::kReady && s.reply_to != record_queue_) ++queues_[s.reply_to].owed;
  });
}

uint32_t QueueSet::StoreOutcome(StoredOutcome o) {
  uint32_t index;
  if (free_outcome_ != 0) {
    index = free_outcome_ - 1;
    free_outcome_ = outcomes_[index].next_free;
  } else {
    index = static_cast<uint32_t>(outcomes_.size());
    outcomes_.emplace_back();
  }
  outcomes_[index].outcome = std::move(o);
  return index;
}

void QueueSet::DropOutcome(Slot& s) {
  if (s.aux == 0 || s.state == SlotState::kLeased) return;
  uint32_t index = s.aux - 1;
  outcomes_[index].outcome = StoredOutcome();
  outcomes_[index].next_free = free_outcome_;
  free_outcome_ = index + 1;
  s.aux = 0;
}

}  // namespace taskq
