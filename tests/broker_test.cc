// The broker's core, message by message: hello, put and get, results and
// attempts, workers that leave or go silent (tests/broker_fixture.h).
#include "tests/broker_fixture.h"

namespace taskq::broker_testing {
namespace {

TEST_F(BrokerTest, APeerMustSayHelloFirst) {
  Send("A", Stats{5});
  Message m = Next("A");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m));
  EXPECT_EQ(std::get<ErrorMsg>(m).code, kErrHelloRequired);
  EXPECT_EQ(std::get<ErrorMsg>(m).rid, 5u);
}

TEST_F(BrokerTest, WrongVersionIsRefused) {
  taskq::Hello h;
  h.version = 99;
  Send("A", h);
  Message m = Next("A");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m));
  EXPECT_EQ(std::get<ErrorMsg>(m).code, kErrBadVersion);
}

TEST_F(BrokerTest, PutThenGetHandsOutInOrder) {
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], ids[0] + 1);
  SendGet("C", "tasks", 10, 0, false);
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].id, ids[i]);
    EXPECT_EQ(Value::FromTrusted(got[i].arg).AsInt(), i + 1);
    EXPECT_EQ(got[i].attempt, 1u);
  }
  EXPECT_EQ(broker_->queues().table().live(), 0u) << "taken entries are freed once sent";
}

TEST_F(BrokerTest, AParkedGetIsServedByTheNextPut) {
  Hello("W");
  Hello("C", "client");
  SendGet("W", "tasks", 5, 10000, true);
  EXPECT_TRUE(Nothing("W"));
  PutSquares("C", {7});
  std::vector<Entry> got = Items("W");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(QueueInfo("tasks").leased, 1u);
}

TEST_F(BrokerTest, AParkedGetEndsEmptyAtItsTimeout) {
  Hello("W");
  SendGet("W", "tasks", 5, 500, true);
  Advance(milliseconds(499));
  EXPECT_TRUE(Nothing("W"));
  Advance(milliseconds(2));
  EXPECT_TRUE(Items("W").empty());
}

TEST_F(BrokerTest, AResultIsAcceptedOnceAndDeliveredWithItsTask) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {6});
  SendGet("W", "tasks", 1, 0, true);
  ASSERT_EQ(Items("W").size(), 1u);
  ResultOk ok = Report("W", ids[0], true, 36);
  EXPECT_EQ(ok.accepted, 1u);
  EXPECT_EQ(ok.duplicates, 0u);
  ok = Report("W", ids[0], true, 36);  // again: a duplicate
  EXPECT_EQ(ok.accepted, 0u);
  EXPECT_EQ(ok.duplicates, 1u);
  EXPECT_EQ(Counter("duplicates"), 1u);

  SendGet("C", "results", 10, 0, false);
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, ids[0]);
  ASSERT_TRUE(got[0].has_outcome);
  EXPECT_TRUE(got[0].outcome.ok);
  EXPECT_EQ(Value::FromTrusted(got[0].outcome.value).AsInt(), 36);
  EXPECT_EQ(Value::FromTrusted(got[0].arg).AsInt(), 6);
  EXPECT_EQ(got[0].outcome.worker, "W");
}

// result.lazy_ack: the result_ok waits for the next message to the same
// peer, or kLazyAckMs, or a shutdown; it is never lost.
TEST_F(BrokerTest, ALazyAckRidesWithTheNextMessageOrGoesAtItsTime) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3});
  SendGet("W", "tasks", 1, 0, true);
  ASSERT_EQ(Items("W").size(), 1u);
  auto lazy_result = [&](uint64_t rid, uint64_t id) {
    ResultMsg r;
    r.rid = rid;
    r.lazy_ack = true;
    const std::string v = Value::Int(1).packed();
    r.results.push_back(TaskResult{id, true, v, "", 10, true});
    Send("W", r);
  };
  lazy_result(11, ids[0]);
  EXPECT_TRUE(Nothing("W"));          // held
  SendGet("W", "tasks", 1, 0, true);  // the next task goes: the ack with it
  Message first = NextReal("W"), second = NextReal("W");
  const ResultOk* ok = std::get_if<ResultOk>(&first);
  if (!ok) ok = std::get_if<ResultOk>(&second);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->rid, 11u);
  EXPECT_EQ(ok->accepted, 1u);
  EXPECT_TRUE(std::holds_alternative<taskq::Items>(first) ||
              std::holds_alternative<taskq::Items>(second));

  lazy_result(12, ids[1]);
  EXPECT_TRUE(Nothing("W"));
  EXPECT_LE(broker_->NextDeadline(), now_ + milliseconds(kLazyAckMs));
  Advance(milliseconds(kLazyAckMs - 1));
  EXPECT_TRUE(Nothing("W"));
  Advance(milliseconds(1));  // its time is up
  Message m = NextReal("W");
  ASSERT_TRUE(std::holds_alternative<ResultOk>(m)) << OpName(m);
  EXPECT_EQ(std::get<ResultOk>(m).rid, 12u);

  SendGet("W", "tasks", 1, 0, true);
  ASSERT_EQ(Items("W").size(), 1u);
  lazy_result(13, ids[2]);
  broker_->Shutdown("master exit");  // held acks leave before the notice
  broker_->Flush(transport_, now_);
  m = NextReal("W");
  ASSERT_TRUE(std::holds_alternative<ResultOk>(m)) << OpName(m);
  EXPECT_EQ(std::get<ResultOk>(m).rid, 13u);
  EXPECT_TRUE(std::holds_alternative<taskq::Shutdown>(NextReal("W")));
}

TEST_F(BrokerTest, AResultForATaskNeverHandedOutIsNotAccepted) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {6});
  EXPECT_EQ(Report("W", ids[0], true).duplicates, 1u);
  EXPECT_EQ(Report("W", 424242, true).duplicates, 1u);
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);
}

TEST_F(BrokerTest, AFailedAttemptIsRetriedUpToMaxAttemptsThenFails) {
  BrokerOptions o;
  o.max_attempts = 2;
  Reset(o);
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1});
  SendGet("W", "tasks", 1, 0, true);
  ASSERT_EQ(Items("W")[0].attempt, 1u);
  Report("W", ids[0], false);
  SendGet("W", "tasks", 1, 0, true);
  std::vector<Entry> again = Items("W");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2u);
  Report("W", ids[0], false);
  EXPECT_EQ(QueueInfo("tasks").failed, 1u);
  EXPECT_EQ(Counter("failed"), 1u);
  SendGet("C", "results", 10, 0, false);
  std::vector<Entry> out = Items("C");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].outcome.ok);
  EXPECT_EQ(out[0].outcome.error, "boom");
}

// A worker that sends a failed result again (after a reconnect) once its
// task was handed out anew: the result names its delivery, and the new
// delivery keeps its attempts (docs/PROTOCOL.md 7.5).
TEST_F(BrokerTest, AFailureSentAgainForAnEarlierDeliveryIsADuplicate) {
  BrokerOptions o;
  o.max_attempts = 2;
  Reset(o);
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1});
  SendGet("A", "tasks", 1, 0, true);
  ASSERT_EQ(Items("A")[0].attempt, 1u);
  TaskResult failed{ids[0], false, {}, "boom", 10, true};
  failed.attempt = 1;
  Send("A", ResultMsg{9, {failed}});
  ASSERT_TRUE(std::holds_alternative<ResultOk>(NextReal("A")));
  SendGet("B", "tasks", 1, 0, true);  // a retry goes to another worker
  ASSERT_EQ(Items("B")[0].attempt, 2u);
  const uint64_t duplicates = Counter("duplicates");
  Send("A", ResultMsg{10, {failed}});  // the same failure, sent again
  ASSERT_TRUE(std::holds_alternative<ResultOk>(NextReal("A")));
  EXPECT_EQ(Counter("duplicates"), duplicates + 1);
  EXPECT_EQ(QueueInfo("tasks").leased, 1u) << "B's delivery goes on";
  EXPECT_EQ(QueueInfo("tasks").failed, 0u) << "B's delivery is the last attempt, not used up";
  Report("B", ids[0], true, 1);
  SendGet("C", "results", 10, 0, false);
  std::vector<Entry> out = Items("C");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].outcome.ok);
  EXPECT_EQ(out[0].attempt, 2u);
}

TEST_F(BrokerTest, AFailureMarkedNotRetryableFailsAtOnce) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1});
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  Report("W", ids[0], false, 0, /*retry=*/false);
  EXPECT_EQ(QueueInfo("tasks").failed, 1u);
  EXPECT_EQ(QueueInfo("results").ready, 1u);
}

TEST_F(BrokerTest, ATaskOfAWorkerThatLeavesGoesToTheFrontForTheNext) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3});
  SendGet("A", "tasks", 2, 0, true);
  ASSERT_EQ(Items("A").size(), 2u);
  Send("A", Goodbye{});
  EXPECT_EQ(QueueInfo("tasks").ready, 3u);
  SendGet("B", "tasks", 3, 0, true);
  std::vector<Entry> got = Items("B");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, ids[0]);
  EXPECT_EQ(got[0].attempt, 2u);
  EXPECT_EQ(got[1].id, ids[1]);
  EXPECT_EQ(got[2].id, ids[2]);
  EXPECT_EQ(got[2].attempt, 1u);
  EXPECT_EQ(Counter("requeued"), 2u);
}

TEST_F(BrokerTest, ASilentWorkerIsDeclaredDeadAndItsLateResultIsADuplicate) {
  Hello("A", "worker", /*heartbeat_ms=*/100);
  Hello("B", "worker", 100);
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {4});
  SendGet("A", "tasks", 1, 0, true);
  ASSERT_EQ(Items("A").size(), 1u);
  for (int i = 0; i < 5; ++i) {  // B keeps talking, A is frozen
    Advance(milliseconds(80));
    Send("B", Ping{});
  }
  EXPECT_EQ(Counter("dead_peers"), 1u);
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);
  SendGet("B", "tasks", 1, 0, true);
  ASSERT_EQ(Items("B").size(), 1u);
  EXPECT_EQ(Report("B", ids[0], true, 16).accepted, 1u);
  // A wakes up: the master forgot it, so it says hello again and resends.
  Send("A", ResultMsg{9, {TaskResult{ids[0], true, Value::Int(16).packed(), {}, 1, true}}});
  EXPECT_EQ(std::get<ErrorMsg>(NextReal("A")).code, kErrHelloRequired);
  Hello("A", "worker", 100);
  EXPECT_EQ(Report("A", ids[0], true, 16).duplicates, 1u);
  EXPECT_EQ(QueueInfo("results").ready, 1u);
}

// The dashboard's flow (master/flow_log.h): who took which task, what came
// back, who joined and who was presumed dead, in order.
TEST_F(BrokerTest, TheFlowTellsWhoTookWhatAndWhatCameBack) {
  Hello("A", "worker", /*heartbeat_ms=*/100);
  Hello("B", "worker", 100);
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {4, 5});
  SendGet("A", "tasks", 1, 0, true);
  ASSERT_EQ(Items("A").size(), 1u);
  SendGet("B", "tasks", 1, 0, true);
  ASSERT_EQ(Items("B").size(), 1u);
  EXPECT_EQ(Report("B", ids[1], true, 25).accepted, 1u);
  for (int i = 0; i < 5; ++i) {  // A freezes
    Advance(milliseconds(80));
    Send("B", Ping{});
  }
  std::vector<std::string> seen;
  const FlowLog& flow = broker_->flow();
  for (const FlowEvent& e : flow.Since(0, FlowLog::kCapacity))
    seen.push_back(std::string(FlowKindName(e.kind)) + " " + std::string(flow.NameOf(e.worker)) +
                   (e.task ? " " + std::to_string(e.task) + "/" + std::to_string(e.attempt) : ""));
  const std::string a = std::to_string(ids[0]), b = std::to_string(ids[1]);
  EXPECT_EQ(seen, (std::vector<std::string>{"joined A", "joined B", "handed A " + a + "/1",
                                            "handed B " + b + "/1", "done B " + b + "/1", "dead A",
                                            "requeued A " + a + "/1"}));
}

}  // namespace
}  // namespace taskq::broker_testing
