// MasterList: the order in which a worker given several masters tries them
// after losing its own, and how long each try lasts, on a made-up clock.
#include "worker/master_list.h"

#include <gtest/gtest.h>

namespace taskq {
namespace {

using std::chrono::milliseconds;

MasterList Masters(std::vector<std::string> hosts) {
  std::vector<ServerAddress> list;
  for (std::string& h : hosts) list.push_back(ServerAddress{std::move(h), 5000});
  return MasterList(std::move(list));
}

TEST(MasterList, TriesTheOthersInTurnStartingAfterTheOneLostAndComesBackToIt) {
  MasterList m = Masters({"a", "b", "c"});
  m.Start(1);  // working for b
  const TimePoint t0 = TimePoint() + std::chrono::hours(1);
  const milliseconds window{1000};
  m.Lost(t0, window);
  EXPECT_EQ(m.current().host, "c");
  EXPECT_EQ(m.serving().host, "b") << "its tasks are still b's";
  EXPECT_FALSE(m.Advance(t0 + window - milliseconds(1))) << "c has its whole window";
  ASSERT_TRUE(m.Advance(t0 + window));
  EXPECT_EQ(m.current().host, "a");
  ASSERT_TRUE(m.Advance(t0 + 2 * window));
  EXPECT_EQ(m.current().host, "b") << "the one lost, last";
  EXPECT_TRUE(m.AtServing());
  EXPECT_FALSE(m.Advance(t0 + 3 * window + MasterList::kRoundPause - milliseconds(1)))
      << "the try that ends a round lasts kRoundPause longer";
  ASSERT_TRUE(m.Advance(t0 + 3 * window + MasterList::kRoundPause));
  EXPECT_EQ(m.current().host, "c") << "and the next round";
}

TEST(MasterList, AWelcomeEndsTheTriesAndSaysWhetherTheWorkerMoved) {
  MasterList m = Masters({"a", "b"});
  m.Start(0);
  const TimePoint t0 = TimePoint() + std::chrono::hours(1);
  m.Lost(t0, milliseconds(1000));
  EXPECT_TRUE(m.Welcomed()) << "b welcomed it: another master";
  EXPECT_EQ(m.serving().host, "b");
  EXPECT_FALSE(m.Advance(t0 + std::chrono::hours(1))) << "no tries while working";
  m.Lost(t0, milliseconds(1000));
  ASSERT_TRUE(m.Advance(t0 + milliseconds(1000)));
  EXPECT_EQ(m.current().host, "b");
  EXPECT_FALSE(m.Welcomed()) << "back with b: no move";
}

TEST(MasterList, DescribesItselfInTheOrderGiven) {
  EXPECT_EQ(Masters({"b", "a"}).Describe(), "b:5000, a:5000");
}

}  // namespace
}  // namespace taskq
