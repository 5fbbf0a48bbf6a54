#include "master/lease_table.h"

#include <cassert>

namespace taskq {

void LeaseTable::GrowPeers(uint32_t peer) {
  if (peer >= heads_.size()) {
    heads_.resize(peer + 1, kNone);
    counts_.resize(peer + 1, 0);
  }
}

uint32_t LeaseTable::Add(uint64_t task, uint32_t peer, TimePoint deadline) {
  const uint32_t id = TakeCell(leases_, free_);
  Lease& l = leases_[id];
  l.task = task;
  l.deadline = deadline;
  Link(id, peer);
  ++live_;
  if (deadline != TimePoint::max()) due_.Push(deadline, id, l.generation);
  return id;
}

void LeaseTable::Remove(uint32_t lease) {
  Lease& l = leases_[lease];
  assert(l.peer != kNone);
  Unlink(lease);
  ++l.generation;  // any Due entry for it is now stale
  l.task = 0;
  free_.push_back(lease);
  --live_;
}

void LeaseTable::Link(uint32_t lease, uint32_t peer) {
  GrowPeers(peer);
  Lease& l = leases_[lease];
  l.peer = peer;
  l.prev = kNone;
  l.next = heads_[peer];
  if (l.next != kNone) leases_[l.next].prev = lease;
  heads_[peer] = lease;
  ++counts_[peer];
}

void LeaseTable::Unlink(uint32_t lease) {
  Lease& l = leases_[lease];
  if (l.prev != kNone)
    leases_[l.prev].next = l.next;
  else
    heads_[l.peer] = l.next;
  if (l.next != kNone) leases_[l.next].prev = l.prev;
  --counts_[l.peer];
  l.peer = kNone;
  l.prev = l.next = kNone;
}

std::vector<uint64_t> LeaseTable::TasksOf(uint32_t peer) const {
  std::vector<uint64_t> out;
  if (peer >= heads_.size()) return out;
  for (uint32_t i = heads_[peer]; i != kNone; i = leases_[i].next) out.push_back(leases_[i].task);
  return out;
}

void LeaseTable::Move(uint32_t lease, uint32_t to) {
  Unlink(lease);
  Link(lease, to);
}

uint32_t LeaseTable::Expired(TimePoint now) {
  std::optional<DeadlineHeap::Due> d =
      due_.PopDue(now, [this](uint32_t l, uint32_t g) { return Current(l, g); });
  return d ? d->cell : kNone;
}

TimePoint LeaseTable::NextDeadline() {
  std::optional<DeadlineHeap::Due> d =
      due_.Next([this](uint32_t l, uint32_t g) { return Current(l, g); });
  return d ? d->deadline : TimePoint::max();
}

}  // namespace taskq
