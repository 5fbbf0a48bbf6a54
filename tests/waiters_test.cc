// Parked gets and waiting puts on their own: fair shares, order, deadlines.
#include "master/waiters.h"

#include <gtest/gtest.h>

#include <chrono>

namespace taskq {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kA = 0, kB = 1, kC = 4;
constexpr uint32_t kTasks = 0, kOtherQueue = 3;
const TimePoint t0 = TimePoint() + std::chrono::hours(1);

Waiters::ParkedGet Get(uint32_t peer, uint64_t rid, uint32_t queue, uint32_t max,
                       TimePoint deadline) {
  return Waiters::ParkedGet{peer, rid, queue, max, true, {}, deadline};
}

Waiters::WaitingPut Put(uint32_t peer, uint32_t queue, uint64_t count, uint64_t rid,
                        TimePoint deadline) {
  return Waiters::WaitingPut{peer, queue, count, rid, "bytes", deadline};
}

// Offers ready entries of queue; returns "rid:max" per get served, in order.
std::vector<std::string> Offer(Waiters& w, uint32_t queue, uint64_t* ready,
                               std::vector<uint64_t> refuse = {}) {
  std::vector<std::string> served;
  w.Offer(
      queue, [&] { return *ready; },
      [&](const Waiters::ParkedGet& g, uint32_t max) {
        if (std::find(refuse.begin(), refuse.end(), g.rid) != refuse.end()) return false;
        const uint64_t n = std::min<uint64_t>(max, *ready);
        *ready -= n;
        served.push_back(std::to_string(g.rid) + ":" + std::to_string(max));
        return true;
      });
  return served;
}

TEST(Waiters, ABurstIsSharedFairlyOldestFirst) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 100, t0 + milliseconds(100)));
  w.Park(Get(kB, 2, kTasks, 100, t0 + milliseconds(100)));
  w.Park(Get(kC, 3, kTasks, 100, t0 + milliseconds(100)));
  uint64_t ready = 10;
  // 10 over 3: the first asks for ceil(10/3) = 4; then 6 over the 2 left,
  // then 3 over the last one.
  EXPECT_EQ(Offer(w, kTasks, &ready), (std::vector<std::string>{"1:4", "2:3", "3:3"}));
  EXPECT_EQ(w.GetsOf(kA), 0u) << "a get served leaves";
  EXPECT_TRUE(w.BusyQueues().empty());
}

TEST(Waiters, AGetAsksForNoMoreThanItsMax) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 2, t0 + milliseconds(100)));
  uint64_t ready = 10;
  EXPECT_EQ(Offer(w, kTasks, &ready), (std::vector<std::string>{"1:2"}));
  EXPECT_EQ(ready, 8u);
}

TEST(Waiters, AGetNotServedKeepsWaitingBehindTheOthers) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(100)));
  w.Park(Get(kB, 2, kTasks, 1, t0 + milliseconds(100)));
  uint64_t ready = 1;
  EXPECT_EQ(Offer(w, kTasks, &ready, /*refuse=*/{1}), (std::vector<std::string>{"2:1"}));
  EXPECT_EQ(w.GetsOf(kA), 1u);
  ready = 1;
  EXPECT_EQ(Offer(w, kTasks, &ready), (std::vector<std::string>{"1:1"}));
}

TEST(Waiters, NothingReadyServesNobodyAndOtherQueuesAreNotAsked) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(100)));
  uint64_t ready = 0;
  EXPECT_TRUE(Offer(w, kTasks, &ready).empty());
  ready = 5;
  EXPECT_TRUE(Offer(w, kOtherQueue, &ready).empty()) << "nobody waits on it";
  EXPECT_TRUE(Offer(w, 99, &ready).empty()) << "a queue never seen";
  EXPECT_EQ(w.BusyQueues(), (std::vector<uint32_t>{kTasks}));
}

TEST(Waiters, GetsExpireInDeadlineOrderAndOnlyOnce) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(200)));
  w.Park(Get(kB, 2, kOtherQueue, 1, t0 + milliseconds(100)));
  EXPECT_EQ(w.NextDeadline(), t0 + milliseconds(100));
  EXPECT_FALSE(w.PopExpired(t0 + milliseconds(99)));
  std::optional<Waiters::ParkedGet> g = w.PopExpired(t0 + milliseconds(200));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->rid, 2u);
  EXPECT_EQ(g->queue, kOtherQueue);
  g = w.PopExpired(t0 + milliseconds(200));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->rid, 1u);
  EXPECT_FALSE(w.PopExpired(t0 + milliseconds(300)));
  EXPECT_EQ(w.NextDeadline(), TimePoint::max());
}

TEST(Waiters, AWithdrawnGetNeitherExpiresNorIsServed) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(100)));
  w.Park(Get(kA, 2, kOtherQueue, 1, t0 + milliseconds(100)));
  EXPECT_EQ(w.QueuesOf(kA), (std::vector<uint32_t>{kTasks, kOtherQueue}));
  EXPECT_EQ(w.Withdraw(kA, 1), kTasks);
  EXPECT_EQ(w.Withdraw(kA, 1), std::nullopt) << "withdrawn already";
  EXPECT_EQ(w.Withdraw(kB, 2), std::nullopt) << "another peer's rid";
  uint64_t ready = 5;
  EXPECT_TRUE(Offer(w, kTasks, &ready).empty());
  std::optional<Waiters::ParkedGet> g = w.PopExpired(t0 + milliseconds(100));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->rid, 2u);
  EXPECT_FALSE(w.PopExpired(t0 + milliseconds(100)));
}

TEST(Waiters, AReusedCellIsNotTakenForTheGetBefore) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(100)));
  ASSERT_TRUE(w.Withdraw(kA, 1));
  w.Park(Get(kB, 2, kTasks, 5, t0 + milliseconds(500)));  // the same cell
  EXPECT_FALSE(w.PopExpired(t0 + milliseconds(100))) << "the old deadline is stale";
  EXPECT_EQ(w.NextDeadline(), t0 + milliseconds(500));
  uint64_t ready = 2;
  EXPECT_EQ(Offer(w, kTasks, &ready), (std::vector<std::string>{"2:2"}))
      << "the old ref in the queue's list is skipped";
}

TEST(Waiters, DropPeerTakesItsGetsAndPutsOnly) {
  Waiters w;
  w.Park(Get(kA, 1, kTasks, 1, t0 + milliseconds(100)));
  w.Park(Get(kB, 2, kTasks, 1, t0 + milliseconds(100)));
  w.ParkPut(Put(kA, kTasks, 3, 7, t0 + milliseconds(100)));
  EXPECT_TRUE(w.Holds(kA));
  w.DropPeer(kA);
  EXPECT_FALSE(w.Holds(kA));
  EXPECT_TRUE(w.Holds(kB));
  EXPECT_FALSE(w.AnyPuts());
  uint64_t ready = 5;
  EXPECT_EQ(Offer(w, kTasks, &ready), (std::vector<std::string>{"2:1"}));
}

TEST(Waiters, PutsGoInOldestFirstPerQueueWhenTheyFit) {
  Waiters w;
  w.ParkPut(Put(kA, kTasks, 5, 1, t0 + milliseconds(100)));
  w.ParkPut(Put(kB, kTasks, 1, 2, t0 + milliseconds(100)));
  w.ParkPut(Put(kC, kOtherQueue, 1, 3, t0 + milliseconds(100)));
  EXPECT_TRUE(w.PutsWaitFor(kTasks));
  EXPECT_EQ(w.PutsOf(kA), 1u);
  uint64_t room = 2;  // in each queue
  std::vector<uint64_t> in;
  auto fits = [&](const Waiters::WaitingPut& p) { return p.count <= room; };
  auto act = [&](Waiters::WaitingPut p, bool expired) {
    EXPECT_FALSE(expired);
    in.push_back(p.rid);
  };
  w.RetryPuts(t0, fits, act);
  EXPECT_EQ(in, (std::vector<uint64_t>{3})) << "the small put waits behind the big one";
  room = 10;
  w.RetryPuts(t0, fits, act);
  EXPECT_EQ(in, (std::vector<uint64_t>{3, 1, 2}));
  EXPECT_FALSE(w.AnyPuts());
  EXPECT_EQ(w.PutsOf(kA), 0u);
}

TEST(Waiters, APutWhoseTimeIsUpLeavesExpired) {
  Waiters w;
  w.ParkPut(Put(kA, kTasks, 5, 1, t0 + milliseconds(100)));
  w.Park(Get(kB, 2, kTasks, 1, t0 + milliseconds(300)));
  EXPECT_EQ(w.NextDeadline(), t0 + milliseconds(100));
  std::vector<std::pair<uint64_t, bool>> left;
  auto never = [](const Waiters::WaitingPut&) { return false; };
  auto act = [&](Waiters::WaitingPut p, bool expired) { left.emplace_back(p.rid, expired); };
  w.RetryPuts(t0 + milliseconds(99), never, act);
  EXPECT_TRUE(left.empty());
  w.RetryPuts(t0 + milliseconds(100), never, act);
  EXPECT_EQ(left, (std::vector<std::pair<uint64_t, bool>>{{1, true}}));
  EXPECT_EQ(w.NextDeadline(), t0 + milliseconds(300));
}

}  // namespace
}  // namespace taskq
