#include "master/task_table.h"

#include <algorithm>
#include <cassert>

namespace taskq {

TaskTable::TaskTable() = default;
TaskTable::~TaskTable() = default;

void TaskTable::AdvanceNextId(uint64_t n) {
  if (n > next_id_) next_id_ = n;
}

TaskTable::Chunk* TaskTable::ChunkFor(uint64_t id, bool create) {
  const uint64_t index = id >> kChunkBits;
  if (chunks_.empty()) {
    if (!create) return nullptr;
    base_chunk_ = index;
  }
  if (index < base_chunk_) {
    if (!create) return nullptr;
    while (base_chunk_ > index) {  // recovery of an old id: grow downwards
      chunks_.emplace_front();
      --base_chunk_;
    }
  }
  while (index - base_chunk_ >= chunks_.size()) {
    if (!create) return nullptr;
    chunks_.emplace_back();
  }
  std::unique_ptr<Chunk>& c = chunks_[index - base_chunk_];
  if (!c && create) {
    c = std::make_unique<Chunk>();
    ++chunk_count_;
  }
  return c.get();
}

uint64_t TaskTable::Append(Slot&& s) {
  const uint64_t id = next_id_++;
  Insert(id, std::move(s));
  return id;
}

void TaskTable::Insert(uint64_t id, Slot&& s) {
  assert(s.state != SlotState::kFree);
  AdvanceNextId(id + 1);
  heap_bytes_ += s.arg.heap_bytes();
  ++live_;
  Chunk* c = ChunkFor(id, /*create=*/true);
  Slot& dst = c->slots[id & (kChunkSize - 1)];
  assert(dst.state == SlotState::kFree);
  dst = std::move(s);
  ++c->live;
}

Slot* TaskTable::Find(uint64_t id) {
  if (Chunk* c = ChunkFor(id, false)) {
    Slot& s = c->slots[id & (kChunkSize - 1)];
    if (s.state != SlotState::kFree) return &s;
  }
  if (overflow_.empty()) return nullptr;
  auto it = overflow_.find(id);
  return it == overflow_.end() ? nullptr : &it->second;
}

void TaskTable::Free(uint64_t id) {
  --live_;
  if (Chunk* c = ChunkFor(id, false)) {
    Slot& s = c->slots[id & (kChunkSize - 1)];
    if (s.state != SlotState::kFree) {
      heap_bytes_ -= s.arg.heap_bytes();
      s = Slot();
      const uint64_t index = id >> kChunkBits;
      // The chunk next ids go into stays, however empty.
      const bool behind = index < (next_id_ >> kChunkBits);
      if (--c->live == 0 && behind)
        ReleaseChunk(index);
      else if (c->live == kEvacuateAt && behind)
        Evacuate(index);
      return;
    }
  }
  auto it = overflow_.find(id);
  assert(it != overflow_.end());
  heap_bytes_ -= it->second.arg.heap_bytes();
  overflow_.erase(it);
}

uint64_t TaskTable::FirstLive() const {
  uint64_t first = next_id_;
  for (const auto& [id, slot] : overflow_) first = std::min(first, id);
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    const Chunk* c = chunks_[i].get();
    if (!c || c->live == 0) continue;
    for (uint64_t k = 0; k < kChunkSize; ++k)
      if (c->slots[k].state != SlotState::kFree)
        return std::min(first, ((base_chunk_ + i) << kChunkBits) | k);
  }
  return first;
}

void TaskTable::EvacuateSparse() {
  const uint64_t tail = next_id_ >> kChunkBits;
  // Absolute chunk indices: releasing the front chunk moves base_chunk_.
  for (uint64_t index = base_chunk_; index < std::min(tail, base_chunk_ + chunks_.size());
       ++index) {
    if (index < base_chunk_) continue;
    Chunk* c = chunks_[index - base_chunk_].get();
    if (!c || c->live > kEvacuateAt) continue;
    if (c->live == 0)
      ReleaseChunk(index);
    else
      Evacuate(index);
  }
}

void TaskTable::Evacuate(uint64_t chunk_index) {
  Chunk* c = chunks_[chunk_index - base_chunk_].get();
  for (uint64_t i = 0; i < kChunkSize; ++i) {
    Slot& s = c->slots[i];
    if (s.state != SlotState::kFree)
      overflow_.emplace((chunk_index << kChunkBits) | i, std::move(s));
  }
  ReleaseChunk(chunk_index);
}

void TaskTable::ReleaseChunk(uint64_t chunk_index) {
  chunks_[chunk_index - base_chunk_].reset();
  --chunk_count_;
  while (!chunks_.empty() && !chunks_.front()) {
    chunks_.pop_front();
    ++base_chunk_;
  }
}

}  // namespace taskq
