// DeadlineHeap: deadlines of cells in a table (leases, parked gets), soonest
// first. A cell is freed or reused without searching the heap: each entry
// carries the cell's generation when it was pushed, and an entry whose cell
// has moved on (is_current says no) is dropped when it reaches the top.
//
// Thread: the owner's (the master's loop thread).
#ifndef TASKQ_MASTER_DEADLINE_HEAP_H_
#define TASKQ_MASTER_DEADLINE_HEAP_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

#include "client/clock.h"

namespace taskq {

class DeadlineHeap {
 public:
  struct Due {
    TimePoint deadline;
    uint32_t cell;
    uint32_t generation;
    bool operator>(const Due& o) const { return deadline > o.deadline; }
  };

  void Push(TimePoint deadline, uint32_t cell, uint32_t generation) {
    due_.push(Due{deadline, cell, generation});
  }

  // The soonest entry whose cell is current (is_current(cell, generation)),
  // after dropping stale ones; nullopt when there is none.
  template <typename IsCurrent>
  std::optional<Due> Next(IsCurrent is_current) {
    while (!due_.empty()) {
      const Due& d = due_.top();
      if (is_current(d.cell, d.generation)) return d;
      due_.pop();
    }
    return std::nullopt;
  }

  // Removes and returns the soonest current entry if its deadline is at or
  // before now.
  template <typename IsCurrent>
  std::optional<Due> PopDue(TimePoint now, IsCurrent is_current) {
    std::optional<Due> d = Next(is_current);
    if (!d || d->deadline > now) return std::nullopt;
    due_.pop();
    return d;
  }

 private:
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_DEADLINE_HEAP_H_
