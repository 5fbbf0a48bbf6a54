// Vectors of cells reused through a free list (peers, parked gets, leases):
// indexes stay small and stable, and nothing is allocated per use once the
// vector has grown.
#ifndef TASKQ_MASTER_FREE_CELLS_H_
#define TASKQ_MASTER_FREE_CELLS_H_

#include <cstdint>
#include <vector>

namespace taskq {

// The index of a cell to use: the last one freed (as its user left it), else
// a new default one at the end.
template <typename T>
uint32_t TakeCell(std::vector<T>& cells, std::vector<uint32_t>& free) {
  if (!free.empty()) {
    const uint32_t i = free.back();
    free.pop_back();
    return i;
  }
  cells.emplace_back();
  return static_cast<uint32_t>(cells.size() - 1);
}

}  // namespace taskq

#endif  // TASKQ_MASTER_FREE_CELLS_H_
