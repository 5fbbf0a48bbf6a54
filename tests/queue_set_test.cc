#include "master/queue_set.h"

#include <gtest/gtest.h>

namespace taskq {
namespace {

class QueueSetTest : public ::testing::Test {
 protected:
  QueueSet qs_;
  uint32_t tasks_ = *qs_.QueueId("tasks");
  uint32_t results_ = *qs_.QueueId("results");
  uint16_t square_ = *qs_.KindId("square");
  uint16_t exec_ = *qs_.KindId("exec");

  uint64_t Add(uint16_t kind) { return qs_.Add(tasks_, results_, kind, "\x01"); }
};

TEST_F(QueueSetTest, NamesAreInternedOnce) {
  EXPECT_EQ(*qs_.QueueId("tasks"), tasks_);
  EXPECT_EQ(qs_.QueueName(results_), "results");
  EXPECT_EQ(qs_.FindQueue("nope"), -1);
}

TEST_F(QueueSetTest, PopsInOrderAndFiltersByKind) {
  const uint64_t a = Add(square_), b = Add(exec_), c = Add(square_);
  EXPECT_EQ(qs_.CountsOf(tasks_).ready, 3u);
  EXPECT_EQ(qs_.Pop(tasks_, {exec_}), b);
  qs_.MarkTaken(b);
  EXPECT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkTaken(a);
  EXPECT_EQ(qs_.Pop(tasks_, {exec_}), 0u);
  EXPECT_EQ(qs_.Pop(tasks_, {square_}), c);
  qs_.MarkTaken(c);
  EXPECT_EQ(qs_.CountsOf(tasks_).ready, 0u);
}

TEST_F(QueueSetTest, ARequeuedTaskGoesOutNext) {
  const uint64_t a = Add(square_), b = Add(square_);
  EXPECT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkLeased(a, 0);
  EXPECT_EQ(qs_.CountsOf(tasks_).leased, 1u);
  EXPECT_EQ(qs_.Find(a)->attempt, 1u);
  qs_.PushFront(a);
  EXPECT_EQ(qs_.CountsOf(tasks_).leased, 0u);
  EXPECT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkLeased(a, 0);
  EXPECT_EQ(qs_.Find(a)->attempt, 2u);
  EXPECT_EQ(qs_.Pop(tasks_, {}), b);
}

TEST_F(QueueSetTest, OutcomesMoveToTheReplyQueue) {
  const uint64_t a = Add(square_);
  ASSERT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkLeased(a, 0);
  qs_.MarkDone(a, StoredOutcome{true, "\x31", "w", 5});
  EXPECT_EQ(qs_.CountsOf(tasks_).leased, 0u);
  EXPECT_EQ(qs_.CountsOf(results_).ready, 1u);
  ASSERT_EQ(qs_.Pop(results_, {}), a);
  qs_.MarkTaken(a);
  ASSERT_NE(qs_.OutcomeOf(*qs_.Find(a)), nullptr);
  EXPECT_EQ(qs_.OutcomeOf(*qs_.Find(a))->worker, "w");
  qs_.Free(a);
  EXPECT_EQ(qs_.Find(a), nullptr);
  EXPECT_EQ(qs_.table().live(), 0u);
}

TEST_F(QueueSetTest, AnEntryThatLeftItsLaneIsSkippedNotHandedOutTwice) {
  const uint64_t a = Add(square_), b = Add(square_);
  // a's outcome arrives while it waits in line (its first worker was slow).
  qs_.Find(a)->attempt = 1;
  qs_.MarkDone(a, StoredOutcome{true, "\x01", "w", 1});
  EXPECT_EQ(qs_.CountsOf(tasks_).ready, 1u);
  EXPECT_EQ(qs_.Pop(tasks_, {}), b);
  qs_.MarkTaken(b);
  EXPECT_EQ(qs_.Pop(tasks_, {}), 0u);
}

TEST_F(QueueSetTest, TakenEntriesCanBePutBack) {
  const uint64_t a = Add(square_);
  ASSERT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkTaken(a);
  qs_.PushFront(a);
  EXPECT_EQ(qs_.Find(a)->state, SlotState::kReady);
  EXPECT_EQ(qs_.CountsOf(tasks_).ready, 1u);
}

TEST_F(QueueSetTest, AHeldOutcomeCountsAsLeasedUntilFreedOrPutBack) {
  const uint64_t a = Add(square_);
  ASSERT_EQ(qs_.Pop(tasks_, {}), a);
  qs_.MarkLeased(a, 0);
  qs_.MarkDone(a, StoredOutcome{true, "\x07", "w", 1});
  Slot* s = nullptr;
  ASSERT_EQ(qs_.Pop(results_, {}, &s), a);
  qs_.MarkHeld(s, 42);
  EXPECT_EQ(qs_.HeldLease(*s), 42u);
  ASSERT_NE(qs_.OutcomeOf(*s), nullptr) << "a held entry keeps its outcome";
  EXPECT_EQ(qs_.CountsOf(results_).leased, 1u);
  EXPECT_EQ(qs_.CountsOf(results_).ready, 0u);
  EXPECT_EQ(qs_.Pop(results_, {}), 0u) << "not ready while held";
  qs_.PushFront(a);
  EXPECT_EQ(qs_.Find(a)->state, SlotState::kDone);
  EXPECT_EQ(qs_.OutcomeOf(*qs_.Find(a))->data, "\x07");
  EXPECT_EQ(qs_.CountsOf(results_).leased, 0u);
  EXPECT_EQ(qs_.CountsOf(results_).ready, 1u);
  ASSERT_EQ(qs_.Pop(results_, {}, &s), a);
  qs_.MarkHeld(s, 7);
  qs_.Free(a);
  EXPECT_EQ(qs_.CountsOf(results_).leased, 0u);
  EXPECT_EQ(qs_.Find(a), nullptr);
}

}  // namespace
}  // namespace taskq
