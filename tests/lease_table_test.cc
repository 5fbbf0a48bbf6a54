#include "master/lease_table.h"

#include <gtest/gtest.h>

#include <chrono>

namespace taskq {
namespace {

using std::chrono::seconds;

constexpr uint32_t kWorker = 0, kOther = 3;
const TimePoint t0 = TimePoint() + std::chrono::hours(1);

TEST(LeaseTable, KnowsWhoHoldsWhat) {
  LeaseTable t;
  const uint32_t a = t.Add(10, kWorker, t0 + seconds(5));
  const uint32_t b = t.Add(11, kWorker, TimePoint::max());
  const uint32_t c = t.Add(12, kOther, t0 + seconds(5));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.Get(a).task, 10u);
  EXPECT_EQ(t.Get(b).peer, kWorker);
  EXPECT_EQ(t.Get(c).peer, kOther);
  EXPECT_EQ(t.TasksOf(kWorker), (std::vector<uint64_t>{11, 10})) << "oldest lease last";
  EXPECT_EQ(t.CountOf(kWorker), 2u);
  EXPECT_EQ(t.CountOf(kOther), 1u);
  EXPECT_EQ(t.CountOf(7), 0u) << "a peer never seen holds nothing";
  EXPECT_TRUE(t.TasksOf(7).empty());
}

TEST(LeaseTable, RemovingALeaseFreesItsCellForTheNext) {
  LeaseTable t;
  const uint32_t a = t.Add(10, kWorker, t0);
  const uint32_t b = t.Add(11, kWorker, t0);
  t.Remove(a);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.Get(a).peer, LeaseTable::kNone);
  EXPECT_EQ(t.TasksOf(kWorker), (std::vector<uint64_t>{11}));
  EXPECT_EQ(t.Add(12, kOther, t0), a) << "the freed cell is used again";
  EXPECT_EQ(t.TasksOf(kOther), (std::vector<uint64_t>{12}));
  t.Remove(b);
  EXPECT_EQ(t.CountOf(kWorker), 0u);
}

TEST(LeaseTable, MoveHandsALeaseToAnotherPeer) {
  LeaseTable t;
  const uint32_t a = t.Add(10, kWorker, t0);
  t.Add(11, kWorker, t0);
  t.Move(a, kOther);
  EXPECT_EQ(t.Get(a).peer, kOther);
  EXPECT_EQ(t.TasksOf(kWorker), (std::vector<uint64_t>{11}));
  EXPECT_EQ(t.TasksOf(kOther), (std::vector<uint64_t>{10}));
  EXPECT_EQ(t.Get(a).deadline, t0) << "the deadline goes with it";
}

TEST(LeaseTable, LeasesExpireInDeadlineOrder) {
  LeaseTable t;
  const uint32_t late = t.Add(10, kWorker, t0 + seconds(9));
  const uint32_t early = t.Add(11, kWorker, t0 + seconds(1));
  t.Add(12, kWorker, TimePoint::max());  // no deadline: never expires
  EXPECT_EQ(t.NextDeadline(), t0 + seconds(1));
  EXPECT_EQ(t.Expired(t0), LeaseTable::kNone) << "nothing is due yet";
  EXPECT_EQ(t.Expired(t0 + seconds(1)), early) << "due at its deadline";
  t.Remove(early);
  EXPECT_EQ(t.Expired(t0 + seconds(5)), LeaseTable::kNone);
  EXPECT_EQ(t.NextDeadline(), t0 + seconds(9));
  EXPECT_EQ(t.Expired(t0 + seconds(60)), late);
  t.Remove(late);
  EXPECT_EQ(t.Expired(TimePoint::max() - seconds(1)), LeaseTable::kNone);
  EXPECT_EQ(t.NextDeadline(), TimePoint::max());
}

// A removed lease's deadline stays in the heap until it reaches the top: it
// must not fire for the lease that took its cell.
TEST(LeaseTable, ARemovedLeasesDeadlineDoesNotFireForTheCellsNextLease) {
  LeaseTable t;
  const uint32_t a = t.Add(10, kWorker, t0 + seconds(1));
  t.Remove(a);
  const uint32_t b = t.Add(11, kOther, t0 + seconds(30));
  ASSERT_EQ(a, b);
  EXPECT_EQ(t.NextDeadline(), t0 + seconds(30));
  EXPECT_EQ(t.Expired(t0 + seconds(2)), LeaseTable::kNone);
  EXPECT_EQ(t.Expired(t0 + seconds(30)), b);
}

}  // namespace
}  // namespace taskq
