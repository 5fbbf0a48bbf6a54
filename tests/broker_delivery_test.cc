// The broker handing work out: pings, fairness, kinds, time limits,
// replies that cannot be sent, bad requests, failure records, full queues,
// message limits, shutdown and stats (tests/broker_fixture.h).
#include "tests/broker_fixture.h"

namespace taskq::broker_testing {
namespace {

TEST_F(BrokerTest, TheMasterPingsQuietWorkers) {
  Hello("A", "worker", 100);
  Advance(milliseconds(150));
  EXPECT_TRUE(std::holds_alternative<Ping>(Next("A")));
}

TEST_F(BrokerTest, ParkedWorkersShareABurstFairly) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  SendGet("A", "tasks", 100, 10000, true);
  SendGet("B", "tasks", 100, 10000, true);
  PutSquares("C", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_EQ(Items("A").size(), 5u);
  EXPECT_EQ(Items("B").size(), 5u);
}

TEST_F(BrokerTest, KindFiltersLeaveOtherKindsForOthers) {
  Hello("X");
  Hello("C", "client");
  SendGet("X", "tasks", 10, 10000, true, {"exec"});
  PutSquares("C", {1});
  EXPECT_TRUE(Nothing("X"));
  Put p;
  p.queue = "tasks";
  const std::string arg = Value::Str("hello").packed();
  p.items.push_back(NewTask{"exec", arg, 0});
  Send("C", p);
  std::vector<Entry> got = Items("X");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, "exec");
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);  // the square still waits
}

TEST_F(BrokerTest, ATaskPastItsTimeLimitGoesBack) {
  BrokerOptions o;
  o.task_timeout = milliseconds(1000);
  Reset(o);
  Hello("W");
  Hello("C", "client");
  PutSquares("C", {1});
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  Advance(milliseconds(999));
  EXPECT_EQ(QueueInfo("tasks").leased, 1u);
  Advance(milliseconds(2));
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);
  EXPECT_EQ(Counter("timed_out"), 1u);
}

TEST_F(BrokerTest, ATasksOwnTimeLimitWins) {
  Hello("W");
  Hello("C", "client");
  Put p;
  p.queue = "tasks";
  const std::string arg = Value::Int(1).packed();
  p.items.push_back(NewTask{kSquare, arg, 50});
  Send("C", p);
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  Advance(milliseconds(51));
  EXPECT_EQ(Counter("timed_out"), 1u);
}

TEST_F(BrokerTest, AnItemsReplyThatCannotBeSentPutsItsTasksBack) {
  Hello("W");
  Hello("C", "client");
  PutSquares("C", {1, 2});
  transport_.gone.insert("W");
  SendGet("W", "tasks", 2, 0, true);
  EXPECT_EQ(QueueInfo("tasks").ready, 2u);
  EXPECT_EQ(QueueInfo("tasks").leased, 0u);
  // And the peer that is gone is forgotten.
  transport_.gone.clear();
  Send("W", Stats{3});
  EXPECT_EQ(std::get<ErrorMsg>(Next("W")).code, kErrHelloRequired);
}

TEST_F(BrokerTest, ANonLeasedGetThatCannotBeSentLosesNothing) {
  Hello("C", "client");
  Hello("D", "client");
  PutSquares("C", {1, 2});
  transport_.full = true;
  SendGet("D", "tasks", 2, 0, false);
  transport_.full = false;
  EXPECT_EQ(QueueInfo("tasks").ready, 2u);
  SendGet("D", "tasks", 2, 0, false);
  std::vector<Entry> got = Items("D");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].attempt, 1u);
}

TEST_F(BrokerTest, AWorkerThatReconnectsKeepsTheLeasesItHoldsAndTheRestGoBack) {
  Hello("A", "worker", 0, /*session=*/42);
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2});
  SendGet("A", "tasks", 2, 0, true);
  Items("A");
  // Same process, new connection; the reply with ids[1] was lost on the way.
  Hello("A2", "worker", 0, /*session=*/42, /*holding=*/{ids[0]});
  EXPECT_EQ(QueueInfo("tasks").leased, 1u);
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);
  EXPECT_EQ(Report("A2", ids[0], true, 1).accepted, 1u);
  SendGet("A2", "tasks", 1, 0, true);
  std::vector<Entry> again = Items("A2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, ids[1]);
  EXPECT_EQ(again[0].attempt, 1u) << "it never reached the worker: no attempt used";
}

TEST_F(BrokerTest, AnUndeliverableReplyDoesNotUndoALeaseMadeSince) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  SendGet("A", "tasks", 1, 10000, true);
  SendGet("B", "tasks", 1, 10000, true);
  // In one pass: a put serves A, A leaves (its task goes to B), then the
  // reply to A cannot be sent.
  Put p;
  p.queue = "tasks";
  const std::string arg = Value::Int(3).packed();
  p.items = {NewTask{kSquare, arg, 0}};
  broker_->Handle("C", Encode(p), now_);
  broker_->Handle("A", Encode(Goodbye{}), now_);
  transport_.gone.insert("A");
  broker_->Flush(transport_, now_);
  ASSERT_EQ(Items("B").size(), 1u);
  EXPECT_EQ(QueueInfo("tasks").leased, 1u) << "B's lease stands";
  EXPECT_EQ(QueueInfo("tasks").ready, 0u) << "so nobody else gets the task";
}

TEST_F(BrokerTest, AnOutcomeWhoseReplyQueueIsItsOwnQueueIsHandedOutOnce) {
  Hello("W");
  Hello("C", "client");
  Put p;
  p.queue = "q";
  p.reply_to = "q";
  const std::string arg = Value::Int(3).packed(), other = Value::Str("x").packed();
  p.items = {NewTask{kSquare, arg, 0}, NewTask{"other", other, 0}};
  Send("C", p);
  ASSERT_TRUE(std::holds_alternative<PutOk>(NextReal("C")));
  SendGet("W", "q", 1, 0, true, {kSquare});
  const uint64_t id = Items("W")[0].id;
  Send("W", Goodbye{});  // the task goes back to q...
  Hello("W2");
  Report("W2", id, true, 9);  // ...and its late result comes: its outcome joins q too
  SendGet("C", "q", 10, 0, false);
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].id, got[1].id) << "the same entry twice";
  EXPECT_EQ(QueueInfo("q").ready, 0u);
}

TEST_F(BrokerTest, AParkedGetCanBeCancelledAndReleasedTasksKeepTheirAttempt) {
  Hello("W");
  Hello("C", "client");
  SendGet("W", "tasks", 5, 10000, true);
  Send("W", Cancel{2});
  EXPECT_TRUE(Items("W").empty());
  PutSquares("C", {1, 2});
  EXPECT_TRUE(Nothing("W")) << "a cancelled get gets nothing";
  SendGet("W", "tasks", 2, 0, true);
  std::vector<Entry> got = Items("W");
  ASSERT_EQ(got.size(), 2u);
  Send("W", Release{{got[0].id, got[1].id}});
  EXPECT_EQ(QueueInfo("tasks").ready, 2u);
  SendGet("W", "tasks", 2, 0, true);
  got = Items("W");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].attempt, 1u);
  EXPECT_LT(got[0].id, got[1].id) << "the oldest first again";
}

TEST_F(BrokerTest, BadMessagesGetAnErrorAndChangeNothing) {
  broker_->Handle("Z", "\xc1garbage", now_);
  broker_->Flush(transport_, now_);
  EXPECT_EQ(std::get<ErrorMsg>(Next("Z")).code, kErrBadMessage);
  Hello("A");
  Send("A", Welcome{});
  EXPECT_EQ(std::get<ErrorMsg>(Next("A")).code, kErrUnknownOp);
  EXPECT_EQ(Counter("bad_messages"), 1u);
  const StatsOk s = broker_->Snapshot(now_);
  EXPECT_TRUE(s.queues.empty()) << "no queue was made";
  EXPECT_EQ(Counter("put"), 0u);
}

TEST_F(BrokerTest, TasksHandedBackUnstartedKeepTheirAttempt) {
  Hello("A");
  Hello("B");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2});
  SendGet("A", "tasks", 2, 0, true);
  ASSERT_EQ(Items("A").size(), 2u);
  Goodbye bye;
  bye.release = {ids[1]};  // started ids[0], never started ids[1]
  Send("A", bye);
  SendGet("B", "tasks", 2, 0, true);
  std::vector<Entry> got = Items("B");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].attempt, 2u);
  EXPECT_EQ(got[1].attempt, 1u);
}

TEST_F(BrokerTest, ATaskThatFailsForGoodLeavesARecordInTheFailedQueue) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {5});
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  Report("W", ids[0], false, 0, /*retry=*/false);
  SendGet("C", "failed", 10, 0, false);
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, "failed");
  const std::string record = PackedToJson(got[0].arg);
  EXPECT_NE(record.find("\"task\": " + std::to_string(ids[0])), std::string::npos) << record;
  EXPECT_NE(record.find("\"error\": \"boom\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"arg\": 5"), std::string::npos) << record;
}

TEST_F(BrokerTest, AFailureRecordOfAnArgumentAtTheLimitsNamesItInstead) {
  Hello("W");
  Hello("C", "client");
  std::string deep(kMaxDepth, '\x91');  // 32 levels: fine as an argument...
  deep.push_back('\x01');
  Put p;
  p.queue = "tasks";
  p.items = {NewTask{"square", deep, 0}};
  Send("C", p);
  ASSERT_TRUE(std::holds_alternative<PutOk>(NextReal("C")));
  SendGet("W", "tasks", 1, 0, true);
  const uint64_t id = Items("W")[0].id;
  Report("W", id, false, 0, /*retry=*/false);
  Send("C", Peek{3, "failed", 0, 10});  // ...but not one level deeper in a record
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(PackedToJson(got[0].arg)
                .find("too large or too deep to copy here: see task " + std::to_string(id)),
            std::string::npos);
  // Such a record cannot be retried: the task would run on the placeholder.
  Send("C", Retry{4, {got[0].id}});
  const RetryOk ok = std::get<RetryOk>(NextReal("C"));
  EXPECT_TRUE(ok.retried.empty());
  EXPECT_EQ(ok.skipped, 1u);
  EXPECT_EQ(QueueInfo("failed").ready, 1u) << "the record stays";
}

TEST_F(BrokerTest, AFullQueueMakesAPutWaitThenSayFull) {
  BrokerOptions o;
  o.max_queue = 2;
  Reset(o);
  Hello("C", "client");
  Hello("W");
  PutSquares("C", {1, 2});
  Put p;
  p.rid = 5;
  p.queue = "tasks";
  p.timeout_ms = 100;
  const std::string arg = Value::Int(3).packed();
  p.items = {NewTask{kSquare, arg, 0}};
  Send("C", p);
  EXPECT_TRUE(Nothing("C"));
  Advance(milliseconds(101));
  Message m = NextReal("C");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m));
  EXPECT_EQ(std::get<ErrorMsg>(m).code, kErrFull);
  EXPECT_EQ(std::get<ErrorMsg>(m).rid, 5u);
  // Room made while a put waits lets it in.
  p.timeout_ms = 10000;
  Send("C", p);
  EXPECT_TRUE(Nothing("C"));
  SendGet("W", "tasks", 1, 0, true);
  std::vector<Entry> got = Items("W");
  Report("W", got[0].id, true, 1);
  EXPECT_TRUE(std::holds_alternative<PutOk>(NextReal("C")));
  EXPECT_EQ(QueueInfo("tasks").ready + QueueInfo("tasks").leased, 2u);
  // Without a timeout: full at once; larger than the limit: refused.
  p.timeout_ms = 0;
  Send("C", p);
  EXPECT_EQ(std::get<ErrorMsg>(NextReal("C")).code, kErrFull);
  p.items.assign(3, NewTask{kSquare, arg, 0});
  Send("C", p);
  EXPECT_EQ(std::get<ErrorMsg>(NextReal("C")).code, kErrBadRequest);
}

TEST_F(BrokerTest, AnItemsReplyStaysUnderTheMessageLimit) {
  Hello("C", "client");
  const std::string big = Value::Bin(std::string(10u << 20, 'x')).packed();  // 10 MiB each
  Put p;
  p.queue = "tasks";
  p.items.assign(5, NewTask{"blob", big, 0});
  Send("C", p);
  ASSERT_TRUE(std::holds_alternative<PutOk>(NextReal("C")));
  SendGet("C", "tasks", 5, 0, false);
  const std::vector<Entry> first = Items("C");
  EXPECT_GE(first.size(), 1u);
  EXPECT_LT(first.size(), 5u);
  EXPECT_LT(kept_.back().size(), kMaxMessageBytes);
  EXPECT_EQ(QueueInfo("tasks").ready, 5u - first.size());
}

TEST_F(BrokerTest, ErrorsForBadRequestsCarryTheirRid) {
  Hello("A");
  std::string b = Encode(Stats{41});
  b[0] = '\x83';  // claim a third field...
  b += "\xa1x";   // ...whose value is missing
  broker_->Handle("A", b, now_);
  broker_->Flush(transport_, now_);
  Message m = Next("A");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m));
  EXPECT_EQ(std::get<ErrorMsg>(m).rid, 41u);  // truncated after the rid: the rid still reads
  b = Encode(Stats{41});
  b[1] = '\xc1';  // the first key, before the rid, is no string
  broker_->Handle("A", b, now_);
  broker_->Flush(transport_, now_);
  EXPECT_EQ(std::get<ErrorMsg>(Next("A")).rid, 0u);
  Get g;
  g.rid = 42;  // a get without a queue: decodes as a map, fails as a get
  std::string bad = Encode(g);
  broker_->Handle("A", bad, now_);
  broker_->Flush(transport_, now_);
  EXPECT_EQ(std::get<ErrorMsg>(Next("A")).rid, 42u);
}

TEST_F(BrokerTest, ShutdownReachesEveryPeer) {
  Hello("A");
  Hello("C", "client");
  broker_->Shutdown("master exit");
  broker_->Flush(transport_, now_);
  EXPECT_EQ(std::get<taskq::Shutdown>(Next("A")).reason, "master exit");
  EXPECT_TRUE(std::holds_alternative<taskq::Shutdown>(Next("C")));
}

TEST_F(BrokerTest, StatsReportQueuesWorkersAndCounters) {
  Hello("W");
  Hello("C", "client");
  PutSquares("C", {1, 2});
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  StatsOk s = broker_->Snapshot(now_);
  ASSERT_EQ(s.workers.size(), 1u);
  EXPECT_EQ(s.workers[0].name, "W");
  EXPECT_EQ(s.workers[0].in_flight, 1u);
  EXPECT_EQ(QueueInfo("tasks").ready, 1u);
  EXPECT_EQ(QueueInfo("tasks").leased, 1u);
  EXPECT_EQ(Counter("put"), 2u);
}

}  // namespace
}  // namespace taskq::broker_testing
