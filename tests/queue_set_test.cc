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

// owed: what a job with its own reply queue waits for. Every way a task can
// leave (outcome, taken without a lease, freed) settles it once; going back
// to its queue does not; failure records owe nothing.
TEST_F(QueueSetTest, OwedCountsTasksWhoseOutcomeIsStillToCome) {
  const uint32_t job = *qs_.QueueId("job.a");
  auto owed = [&] { return qs_.CountsOf(job).owed; };
  const uint64_t a = qs_.Add(tasks_, job, square_, "\x01");
  const uint64_t b = qs_.Add(tasks_, job, square_, "\x01");
  const uint64_t c = qs_.Add(tasks_, job, square_, "\x01");
  const uint64_t d = qs_.Add(tasks_, job, square_, "\x01");
  qs_.Add(tasks_, results_, square_, "\x01");
  EXPECT_EQ(owed(), 4u);
  EXPECT_EQ(qs_.CountsOf(results_).owed, 1u);
  EXPECT_EQ(qs_.CountsOf(tasks_).owed, 0u) << "owed counts in the reply queue, not the task's";

  Slot* s = nullptr;
  ASSERT_EQ(qs_.Pop(tasks_, {}, &s), a);
  qs_.MarkLeased(s, 1);
  qs_.PushFront(a);  // the lease ended without a result: still owed
  EXPECT_EQ(owed(), 4u);
  ASSERT_EQ(qs_.Pop(tasks_, {}, &s), a);
  qs_.MarkLeased(s, 1);
  qs_.MarkDone(a, StoredOutcome{true, "\x02", "w", 0});
  EXPECT_EQ(owed(), 3u);
  EXPECT_EQ(qs_.CountsOf(job).ready, 1u);

  ASSERT_EQ(qs_.Pop(tasks_, {}, &s), b);
  qs_.MarkTaken(s);  // handed out without a lease
  EXPECT_EQ(owed(), 3u) << "until the send is confirmed it may come back";
  qs_.Free(b);
  EXPECT_EQ(owed(), 2u);

  qs_.MarkDone(c, StoredOutcome{false, "failed", "w", 0});  // a failure is an outcome too
  qs_.Free(d);                                             // purged
  EXPECT_EQ(owed(), 0u);

  const uint32_t failed = *qs_.QueueId("failed");
  qs_.Add(failed, failed, square_, "\x01");  // a failure record
  EXPECT_EQ(qs_.CountsOf(failed).owed, 0u);
  EXPECT_EQ(qs_.CountsOf(failed).ready, 1u);
}

// After a journal replay the counts are built again from the entries.
TEST_F(QueueSetTest, OwedIsRebuiltByRecovery) {
  const uint32_t job = *qs_.QueueId("job.b");
  const StoredOutcome done{true, "\x02", "w", 0};
  qs_.RecoverEntry(10, tasks_, job, square_, "\x01", 1, nullptr);
  qs_.RecoverEntry(11, tasks_, job, square_, "\x01", 1, nullptr);
  qs_.RecoverEntry(12, tasks_, job, square_, "\x01", 1, &done);
  qs_.RecoverDone(11, done);
  qs_.FinishRecovery();
  EXPECT_EQ(qs_.CountsOf(job).owed, 1u);
  EXPECT_EQ(qs_.CountsOf(job).ready, 2u);
}

}  // namespace
}  // namespace taskq
