// The peer table on its own: cells by routing id, sessions, liveness.
#include "master/peer_table.h"

#include <gtest/gtest.h>

#include <chrono>

namespace taskq {
namespace {

using std::chrono::milliseconds;

const TimePoint t0 = TimePoint() + std::chrono::hours(1);

PeerTable Table() {
  return PeerTable(PeerTable::Liveness{milliseconds(100), 3, milliseconds(1000)});
}

TEST(PeerTable, FindsPeersByRoutingIdAndReusesCells) {
  PeerTable t = Table();
  EXPECT_TRUE(t.empty());
  const uint32_t a = t.Add("a");
  const uint32_t b = t.Add("b");
  EXPECT_EQ(t.Find("a"), a);
  EXPECT_EQ(t.Find("b"), b);
  EXPECT_EQ(t.Find("c"), PeerTable::kNone);
  EXPECT_TRUE(t[a].live);
  EXPECT_EQ(t[a].routing_id, "a");
  t[a].name = "worker-a";
  t.Remove(a);
  EXPECT_EQ(t.Find("a"), PeerTable::kNone);
  EXPECT_FALSE(t[a].live);
  EXPECT_EQ(t.Add("c"), a) << "the freed cell is used again";
  EXPECT_EQ(t[a].name, "") << "and starts clean";
  EXPECT_EQ(t.size(), 2u);
}

TEST(PeerTable, ASessionNamesTheProcessAcrossConnections) {
  PeerTable t = Table();
  const uint32_t old = t.Add("old");
  t.SetIdent(old, 42, true);
  t[old].session = 42;
  const uint32_t lone = t.Add("lone");
  t.SetIdent(lone, 0, true);
  const uint32_t other_lone = t.Add("other");
  t.SetIdent(other_lone, 0, true);
  EXPECT_EQ(t[old].ident, 42u);
  EXPECT_NE(t[lone].ident, t[other_lone].ident) << "without a session, each connection is its own";
  const uint64_t before = t[lone].ident;
  t.SetIdent(lone, 0, false);
  EXPECT_EQ(t[lone].ident, before) << "hello again on the same connection keeps it";

  const uint32_t again = t.Add("again");
  t.SetIdent(again, 42, true);
  t[again].session = 42;
  EXPECT_EQ(t[again].ident, 42u);
  EXPECT_EQ(t.EarlierConnections(again), (std::vector<uint32_t>{old}));
  t[again].role = Role::kWorker;
  EXPECT_TRUE(t.EarlierConnections(again).empty()) << "a session never crosses keys";
  EXPECT_TRUE(t.EarlierConnections(lone).empty()) << "no session, no earlier connection";
}

TEST(PeerTable, ABenchAndJobsFollowTheProcess) {
  PeerTable t = Table();
  const uint32_t from = t.Add("from");
  const uint32_t to = t.Add("to");
  t[from].on_trial = true;
  t[from].benches = 2;
  t[from].benched_until = t0 + milliseconds(500);
  t[from].jobs = {3, 5};
  t[to].jobs = {1, 5};
  t.CarryOver(from, to);
  EXPECT_TRUE(t[to].Benched(t0));
  EXPECT_FALSE(t[to].Benched(t0 + milliseconds(500)));
  EXPECT_EQ(t[to].benches, 2u);
  EXPECT_EQ(t[to].jobs, (std::vector<uint32_t>{1, 3, 5}));
}

TEST(PeerTable, OtherWorkerRunsSkipsTheSameProcessAndBenchedOnes) {
  PeerTable t = Table();
  const uint32_t me = t.Add("me");
  t[me].worker = true;
  t[me].ident = 1;
  EXPECT_FALSE(t.OtherWorkerRuns(me, "square", t0)) << "alone";
  const uint32_t other = t.Add("other");
  t[other].worker = true;
  t[other].ident = 2;
  t[other].kinds = {"exec"};
  EXPECT_FALSE(t.OtherWorkerRuns(me, "square", t0)) << "it runs only exec";
  EXPECT_TRUE(t.OtherWorkerRuns(me, "exec", t0));
  t[other].on_trial = true;
  t[other].benched_until = t0 + milliseconds(10);
  EXPECT_FALSE(t.OtherWorkerRuns(me, "exec", t0)) << "benched";
  EXPECT_TRUE(t.OtherWorkerRuns(me, "exec", t0 + milliseconds(10)));
  t[other].kinds.clear();
  t[other].ident = 1;
  EXPECT_FALSE(t.OtherWorkerRuns(me, "square", t0 + milliseconds(10))) << "the same process";
}

TEST(PeerTable, CheckSaysWhoIsDeadIdleOrDueAPing) {
  PeerTable t = Table();
  const uint32_t beats = t.Add("beats");
  t[beats].heartbeat = milliseconds(50);
  t[beats].last_heard = t[beats].last_sent = t0;
  EXPECT_EQ(t.Check(beats, t0 + milliseconds(99), false), PeerTable::Verdict::kFine);
  EXPECT_EQ(t.Check(beats, t0 + milliseconds(100), false), PeerTable::Verdict::kPing);
  EXPECT_EQ(t.Check(beats, t0 + milliseconds(150), false), PeerTable::Verdict::kPing)
      << "three missed heartbeats are not yet more than three";
  EXPECT_EQ(t.Check(beats, t0 + milliseconds(151), false), PeerTable::Verdict::kDead);

  const uint32_t quiet = t.Add("quiet");  // promised no heartbeats
  t[quiet].last_heard = t[quiet].last_sent = t0;
  EXPECT_EQ(t.Check(quiet, t0 + milliseconds(500), false), PeerTable::Verdict::kFine)
      << "holds nothing: no ping";
  EXPECT_EQ(t.Check(quiet, t0 + milliseconds(500), true), PeerTable::Verdict::kPing)
      << "holds something: pinged, so a vanished one is found";
  EXPECT_EQ(t.Check(quiet, t0 + milliseconds(1001), false), PeerTable::Verdict::kIdle);
  EXPECT_EQ(t.Check(quiet, t0 + milliseconds(1001), true), PeerTable::Verdict::kPing)
      << "never forgotten while it holds something";
}

}  // namespace
}  // namespace taskq
