#include "master/task_table.h"

#include <gtest/gtest.h>

namespace taskq {
namespace {

Slot Ready(std::string_view arg = "\x01") {
  Slot s;
  s.arg = Blob(arg);
  s.state = SlotState::kReady;
  return s;
}

TEST(Blob, KeepsSmallBytesInlineAndLargeOnTheHeap) {
  Blob small(std::string_view("0123456789abcde"));  // 15 bytes
  EXPECT_EQ(small.view(), "0123456789abcde");
  EXPECT_EQ(small.heap_bytes(), 0u);
  Blob large(std::string(100, 'x'));
  EXPECT_EQ(large.view(), std::string(100, 'x'));
  EXPECT_EQ(large.heap_bytes(), 100u);
  Blob moved(std::move(large));
  EXPECT_EQ(moved.view().size(), 100u);
  EXPECT_EQ(large.view().size(), 0u);
}

TEST(TaskTable, AppendsFindsAndFrees) {
  TaskTable t;
  const uint64_t a = t.Append(Ready("\x05")), b = t.Append(Ready());
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, 2u);
  ASSERT_NE(t.Find(a), nullptr);
  EXPECT_EQ(t.Find(a)->arg.view(), "\x05");
  t.Free(a);
  EXPECT_EQ(t.Find(a), nullptr);
  EXPECT_NE(t.Find(b), nullptr);
  EXPECT_EQ(t.Find(999), nullptr);
  EXPECT_EQ(t.live(), 1u);
}

TEST(TaskTable, ReleasesChunksThatEmpty) {
  TaskTable t;
  const uint64_t n = 3 * TaskTable::kChunkSize;
  for (uint64_t i = 0; i < n; ++i) t.Append(Ready());
  const std::size_t full = t.memory_bytes();
  for (uint64_t id = 1; id <= 2 * TaskTable::kChunkSize; ++id) t.Free(id);
  EXPECT_LT(t.memory_bytes(), full);
  EXPECT_EQ(t.live(), n - 2 * TaskTable::kChunkSize);
}

TEST(TaskTable, AFewLongLivedEntriesDoNotPinTheirChunk) {
  TaskTable t;
  for (uint64_t i = 0; i < 2 * TaskTable::kChunkSize; ++i) t.Append(Ready());
  const std::size_t full = t.memory_bytes();
  // Free all of the first chunk but three entries.
  for (uint64_t id = 1; id < TaskTable::kChunkSize; ++id)
    if (id != 7 && id != 100 && id != 4000) t.Free(id);
  EXPECT_LT(t.memory_bytes(), full - sizeof(Slot) * TaskTable::kChunkSize / 2);
  for (uint64_t id : {7, 100, 4000}) {
    ASSERT_NE(t.Find(id), nullptr) << id;
    t.Free(id);
    EXPECT_EQ(t.Find(id), nullptr);
  }
}

TEST(TaskTable, SparseEntriesAfterRecoveryDoNotHoldAChunkEach) {
  TaskTable t;
  const uint64_t n = 64;
  for (uint64_t i = 0; i < n; ++i) t.Insert(1 + i * TaskTable::kChunkSize, Ready());
  t.Insert(n * TaskTable::kChunkSize + 5, Ready());  // the tail chunk stays
  EXPECT_GT(t.memory_bytes(), n * sizeof(Slot) * TaskTable::kChunkSize);
  t.EvacuateSparse();
  EXPECT_LT(t.memory_bytes(), 4 * sizeof(Slot) * TaskTable::kChunkSize);
  for (uint64_t i = 0; i < n; ++i) ASSERT_NE(t.Find(1 + i * TaskTable::kChunkSize), nullptr) << i;
  EXPECT_EQ(t.live(), n + 1);
}

TEST(TaskTable, InsertsOldIdsForRecovery) {
  TaskTable t;
  t.Insert(50000, Ready());
  t.Insert(3, Ready());
  EXPECT_NE(t.Find(3), nullptr);
  EXPECT_NE(t.Find(50000), nullptr);
  EXPECT_EQ(t.next_id(), 50001u);
  EXPECT_EQ(t.Append(Ready()), 50001u);
}

}  // namespace
}  // namespace taskq
