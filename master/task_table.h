// TaskTable: every live entry the master holds (queued task, leased task,
// outcome waiting to be collected or leased until acked), found by id in O(1).
//
// Ids are handed out in increasing order, so entries live in chunks of 4096
// consecutive ids: no per-entry allocation and 32 bytes per entry. A chunk is
// freed when its last entry goes. So that a few long-lived entries (a failed
// task nobody collects) cannot pin whole chunks, a chunk whose live count
// falls to kEvacuateAt moves its survivors to a hash map and is freed.
//
// Thread: owned by the master's loop thread.
#ifndef TASKQ_MASTER_TASK_TABLE_H_
#define TASKQ_MASTER_TASK_TABLE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "master/blob.h"

namespace taskq {

enum class SlotState : uint8_t {
  kFree = 0,
  kReady,   // queued, waiting for a get
  kLeased,  // handed to a worker; aux is the lease index
  kDone,    // outcome known, waiting in the reply queue; aux is outcome index + 1
  kTaken,   // handed out without lease, until the send is confirmed; aux as before
  // An outcome leased to a peer until it acks it; aux is outcome index + 1,
  // as for kDone, and the outcome's cell keeps the lease. To the journal it
  // is still done: a restart makes it ready again.
  kHeld,
};

struct Slot {
  Blob arg;               // raw msgpack
  uint32_t queue = 0;     // queue it sits in: its own while ready/leased, reply_to when done
  uint32_t reply_to = 0;  // queue that receives its outcome
  uint32_t aux = 0;
  uint16_t kind = 0;
  SlotState state = SlotState::kFree;
  uint8_t attempt = 0;  // deliveries so far
};
static_assert(sizeof(Slot) == 32, "a slot is most of the master's per-task memory");

class TaskTable {
 public:
  static constexpr int kChunkBits = 12;
  static constexpr uint64_t kChunkSize = uint64_t{1} << kChunkBits;
  static constexpr uint32_t kEvacuateAt = 8;

  TaskTable();
  ~TaskTable();

  // The id the next Append gets. Ids start at 1.
  uint64_t next_id() const { return next_id_; }
  // Recovery only: ids below n are never handed out again.
  void AdvanceNextId(uint64_t n);

  // Stores s under a new id and returns it.
  uint64_t Append(Slot&& s);
  // Recovery only: stores s under id, which must not be live.
  void Insert(uint64_t id, Slot&& s);
  // The live slot with this id, or null.
  Slot* Find(uint64_t id);
  // Frees a live slot.
  void Free(uint64_t id);

  // Calls fn(id, slot) for live slots with ids in [from, to), in id order,
  // at most limit of them; returns the id to continue from (to when done).
  template <typename Fn>
  uint64_t ForEachLive(uint64_t from, uint64_t to, std::size_t limit, Fn fn);
  // The same, read only: fn(id, const Slot&).
  template <typename Fn>
  uint64_t ForEachLive(uint64_t from, uint64_t to, std::size_t limit, Fn fn) const {
    // The walk changes nothing itself; fn sees each slot as const.
    return const_cast<TaskTable*>(this)->ForEachLive(
        from, to, limit, [&fn](uint64_t id, Slot& s) { fn(id, static_cast<const Slot&>(s)); });
  }

  // The lowest live id, or next_id() when none is live.
  uint64_t FirstLive() const;
  // After recovery, which inserts entries one by one wherever their ids
  // fall: moves the survivors of nearly empty chunks aside, as Free would.
  void EvacuateSparse();

  std::size_t live() const { return live_; }
  // Bytes of arguments kept on the heap (those over Blob::kInline).
  std::size_t heap_bytes() const { return heap_bytes_; }
  // Approximate bytes held: chunks, spilled entries and heap arguments.
  std::size_t memory_bytes() const {
    return chunk_count_ * sizeof(Chunk) + overflow_.size() * 64 + heap_bytes_;
  }

 private:
  struct Chunk {
    Slot slots[kChunkSize];
    uint32_t live = 0;
  };

  Chunk* ChunkFor(uint64_t id, bool create);
  void ReleaseChunk(uint64_t chunk_index);
  void Evacuate(uint64_t chunk_index);

  std::deque<std::unique_ptr<Chunk>> chunks_;  // chunks_[i] covers chunk index base_chunk_ + i
  uint64_t base_chunk_ = 0;
  std::unordered_map<uint64_t, Slot> overflow_;
  uint64_t next_id_ = 1;
  std::size_t live_ = 0;
  std::size_t chunk_count_ = 0;
  std::size_t heap_bytes_ = 0;
};

template <typename Fn>
uint64_t TaskTable::ForEachLive(uint64_t from, uint64_t to, std::size_t limit, Fn fn) {
  // Spilled entries are few and unordered: visit them, in id order, along
  // with the chunks.
  std::vector<uint64_t> spilled;
  for (const auto& [id, slot] : overflow_)
    if (id >= from && id < to) spilled.push_back(id);
  std::sort(spilled.begin(), spilled.end());
  auto next_spilled = spilled.begin();
  std::size_t done = 0;
  uint64_t id = std::max<uint64_t>(from, base_chunk_ << kChunkBits);
  for (; id < to; ++id) {
    while (next_spilled != spilled.end() && *next_spilled <= id) {
      if (done == limit) return *next_spilled;
      fn(*next_spilled, overflow_.at(*next_spilled));
      ++done;
      ++next_spilled;
    }
    const uint64_t index = id >> kChunkBits;
    if (index - base_chunk_ >= chunks_.size()) break;
    Chunk* c = chunks_[index - base_chunk_].get();
    if (!c) {  // a freed chunk: skip it whole
      id = ((index + 1) << kChunkBits) - 1;
      continue;
    }
    Slot& s = c->slots[id & (kChunkSize - 1)];
    if (s.state == SlotState::kFree) continue;
    if (done == limit) return id;
    fn(id, s);
    ++done;
  }
  for (; next_spilled != spilled.end(); ++next_spilled) {
    if (done == limit) return *next_spilled;
    fn(*next_spilled, overflow_.at(*next_spilled));
    ++done;
  }
  return to;
}

}  // namespace taskq

#endif  // TASKQ_MASTER_TASK_TABLE_H_
