// LeaseTable: which worker holds which task, and until when. A lease is made
// when a task is handed out with lease=true and ends when its result comes,
// when the worker goes away (its leases are listed per peer, so they can all
// be handed back at once) or when its deadline passes. The broker keeps a
// second table for outcomes leased until acked: those have no deadline.
//
// Thread: owned by the master's loop thread.
#ifndef TASKQ_MASTER_LEASE_TABLE_H_
#define TASKQ_MASTER_LEASE_TABLE_H_

#include <chrono>
#include <cstdint>
#include <vector>

#include "client/clock.h"
#include "master/deadline_heap.h"
#include "master/free_cells.h"

namespace taskq {

class LeaseTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Lease {
    uint64_t task = 0;
    uint32_t peer = kNone;  // kNone when the cell is free
    TimePoint deadline = TimePoint::max();
    uint32_t prev = kNone, next = kNone;  // the peer's list
    uint32_t generation = 0;
  };

  // Leases task to peer until deadline (TimePoint::max(): no deadline).
  uint32_t Add(uint64_t task, uint32_t peer, TimePoint deadline);
  void Remove(uint32_t lease);
  const Lease& Get(uint32_t lease) const { return leases_[lease]; }

  // The tasks peer holds, oldest lease last.
  std::vector<uint64_t> TasksOf(uint32_t peer) const;
  uint64_t CountOf(uint32_t peer) const { return peer < counts_.size() ? counts_[peer] : 0; }
  // Hands a lease over to another peer (a worker that reconnected).
  void Move(uint32_t lease, uint32_t to);

  // A lease whose deadline is at or before now, or kNone.
  uint32_t Expired(TimePoint now);
  TimePoint NextDeadline();
  std::size_t size() const { return live_; }

 private:
  bool Current(uint32_t lease, uint32_t generation) const {
    return leases_[lease].peer != kNone && leases_[lease].generation == generation;
  }
  void Link(uint32_t lease, uint32_t peer);
  void Unlink(uint32_t lease);
  void GrowPeers(uint32_t peer);

  std::vector<Lease> leases_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> heads_;   // per peer: its newest lease
  std::vector<uint64_t> counts_;  // per peer
  DeadlineHeap due_;
  std::size_t live_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_LEASE_TABLE_H_
