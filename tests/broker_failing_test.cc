// Failing workers: a retried task goes to another worker, and a worker
// that keeps failing is benched (tests/broker_fixture.h).
#include "tests/broker_fixture.h"

namespace taskq::broker_testing {
namespace {

TEST_F(BrokerTest, ARetriedTaskGoesToAnotherWorker) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2});
  SendGet("A", "tasks", 1, 0, true);
  ASSERT_EQ(IdsOf(Items("A")), std::vector<uint64_t>{ids[0]});
  Report("A", ids[0], false);  // retryable: back to the front, but not for A
  SendGet("A", "tasks", 1, 0, true);
  EXPECT_EQ(IdsOf(Items("A")), std::vector<uint64_t>{ids[1]}) << "A steps over its failure";
  SendGet("A", "tasks", 1, 0, true);
  EXPECT_TRUE(Items("A").empty());
  SendGet("B", "tasks", 5, 0, true);
  std::vector<Entry> got = Items("B");
  ASSERT_EQ(IdsOf(got), std::vector<uint64_t>{ids[0]});
  EXPECT_EQ(got[0].attempt, 2u);
  EXPECT_EQ(Report("B", ids[0], true, 1).accepted, 1u);
}

TEST_F(BrokerTest, SkippedRetriesKeepTheirOrderForOthers) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3, 4});
  SendGet("A", "tasks", 3, 0, true);
  ASSERT_EQ(Items("A").size(), 3u);
  for (int i = 2; i >= 0; --i) Report("A", ids[i], false);
  SendGet("A", "tasks", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("A")), std::vector<uint64_t>{ids[3]});
  SendGet("B", "tasks", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("B")), (std::vector<uint64_t>{ids[0], ids[1], ids[2]}));
}

TEST_F(BrokerTest, ARetryGoesBackToItsWorkerWhenNoOtherCanTakeIt) {
  BrokerOptions o;
  o.retry_elsewhere = milliseconds(1000);
  Reset(o);
  Hello("A");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1});
  SendGet("A", "tasks", 1, 0, true);
  Items("A");
  Report("A", ids[0], false);
  SendGet("A", "tasks", 1, 0, true);
  EXPECT_EQ(IdsOf(Items("A")), ids) << "the only worker";
  Report("A", ids[0], false);

  // With another worker that never asks, A waits for retry_elsewhere: its
  // parked get is served then.
  Hello("B");
  SendGet("A", "tasks", 1, 10000, true);
  EXPECT_TRUE(Nothing("A"));
  EXPECT_LE(broker_->NextDeadline(), now_ + milliseconds(1000));
  Advance(milliseconds(1000));
  std::vector<Entry> got = Items("A");
  EXPECT_EQ(IdsOf(got), ids);
  EXPECT_EQ(got[0].attempt, 3u);
}

TEST_F(BrokerTest, AWorkerFaultBenchesTheWorkerAndCostsTheTaskNoAttempt) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3});
  SendGet("A", "tasks", 1, 0, true);
  ASSERT_EQ(Items("A").size(), 1u);
  ReportFault("A", ids[0], "cannot write out/x: Not a directory");
  EXPECT_TRUE(
      Logged("worker A benched for 30 s: its last task failed because of the worker "
             "itself: cannot write out/x: Not a directory"))
      << (log_.empty() ? "" : log_.back());
  EXPECT_EQ(Counter("benched"), 1u);
  EXPECT_EQ(WorkerInfo("A").benched_ms, 30000u);
  EXPECT_EQ(WorkerInfo("B").benched_ms, 0u);
  EXPECT_EQ(QueueInfo("tasks").failed, 0u);

  SendGet("A", "tasks", 5, 60000, true);  // parked, not served while benched
  EXPECT_TRUE(Nothing("A"));
  SendGet("B", "tasks", 1, 0, true);
  std::vector<Entry> got = Items("B");
  ASSERT_EQ(IdsOf(got), std::vector<uint64_t>{ids[0]});
  EXPECT_EQ(got[0].attempt, 1u) << "the worker's fault used no attempt of the task";
  Report("B", ids[0], true, 1);
  EXPECT_TRUE(Nothing("A"));

  Advance(milliseconds(29999));
  EXPECT_TRUE(Nothing("A"));
  EXPECT_EQ(WorkerInfo("A").benched_ms, 1u);
  Advance(milliseconds(1));  // the bench is over: one task, on trial
  EXPECT_EQ(IdsOf(Items("A")), std::vector<uint64_t>{ids[1]});
  SendGet("A", "tasks", 5, 0, true);
  EXPECT_TRUE(Items("A").empty()) << "one at a time until it succeeds";
  SendGet("A", "tasks", 5, 60000, true);
  Report("A", ids[1], true, 4);  // it works again: its parked get is served
  EXPECT_EQ(IdsOf(Items("A")), std::vector<uint64_t>{ids[2]});
}

TEST_F(BrokerTest, ASuccessOfATaskBegunBeforeTheBenchDoesNotEndIt) {
  Hello("A");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2});
  SendGet("A", "tasks", 2, 0, true);
  ASSERT_EQ(Items("A").size(), 2u);
  ReportFault("A", ids[0], "disk full");
  Report("A", ids[1], true, 4);
  EXPECT_EQ(WorkerInfo("A").benched_ms, 30000u);
  SendGet("A", "tasks", 1, 0, true);
  EXPECT_TRUE(Items("A").empty());
}

TEST_F(BrokerTest, EachBenchInARowIsTwiceAsLong) {
  BrokerOptions o;
  o.max_bench = milliseconds(100000);
  Reset(o);
  Hello("A");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1});
  for (uint64_t want : {30000u, 60000u, 100000u}) {
    SendGet("A", "tasks", 1, 0, true);
    ASSERT_EQ(Items("A").size(), 1u) << "alone, a benched worker still gets the task afterwards";
    ReportFault("A", ids[0], "no curl");
    EXPECT_EQ(WorkerInfo("A").benched_ms, want);
    SendGet("A", "tasks", 1, 0, true);
    EXPECT_TRUE(Items("A").empty());
    Advance(milliseconds(want));
  }
  EXPECT_EQ(QueueInfo("tasks").ready, 1u) << "the task waits, unharmed";
}

TEST_F(BrokerTest, AWorkerThatKeepsFailingWhileOthersSucceedIsBenched) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<int> ns(12, 3);
  PutSquares("C", ns);
  auto fail_one = [&](bool retry) {
    SendGet("A", "tasks", 1, 0, true);
    Report("A", Items("A")[0].id, false, 0, retry);
  };
  fail_one(true);
  SendGet("B", "tasks", 1, 0, true);  // B succeeds while A's failures go on
  Report("B", Items("B")[0].id, true, 9);
  for (int i = 0; i < 3; ++i) fail_one(true);
  EXPECT_EQ(Counter("benched"), 0u);
  fail_one(/*retry=*/false);  // the task's fault, by the worker's word: does not count
  EXPECT_EQ(Counter("benched"), 0u);
  fail_one(true);
  EXPECT_EQ(Counter("benched"), 1u);
  EXPECT_TRUE(
      Logged("worker A benched for 30 s: its last 5 task(s) failed while other workers "
             "succeeded at kind 'square': boom"));
  SendGet("A", "tasks", 1, 0, true);
  EXPECT_TRUE(Items("A").empty());
  // On trial, one failure while B succeeds is enough: twice as long.
  Advance(milliseconds(30000));
  SendGet("B", "tasks", 1, 0, true);
  Report("B", Items("B")[0].id, true, 9);
  fail_one(true);
  EXPECT_EQ(Counter("benched"), 2u);
  EXPECT_EQ(WorkerInfo("A").benched_ms, 60000u);
}

TEST_F(BrokerTest, FailuresEverywhereBenchNobody) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<int> ns(12, 3);
  PutSquares("C", ns);
  for (int i = 0; i < 6; ++i) {
    for (const char* w : {"A", "B"}) {
      SendGet(w, "tasks", 1, 0, true);
      std::vector<Entry> got = Items(w);
      if (!got.empty()) Report(w, got[0].id, false);
    }
  }
  EXPECT_EQ(Counter("benched"), 0u) << "the tasks fail, not the workers";
}

}  // namespace
}  // namespace taskq::broker_testing
