// The admin's requests: peek, retry and purge, and that retry and purge
// survive a restart (tests/broker_fixture.h).
#include "tests/broker_fixture.h"

namespace taskq::broker_testing {
namespace {

TEST_F(BrokerTest, PeekCopiesWaitingEntriesWithoutTakingThem) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3, 4, 5});
  const uint64_t delivered = Counter("delivered");
  Send("C", Peek{3, "tasks", 0, 3});
  EXPECT_EQ(IdsOf(Items("C")), (std::vector<uint64_t>{ids[0], ids[1], ids[2]}));
  Send("C", Peek{4, "tasks", ids[2], 100});
  EXPECT_EQ(IdsOf(Items("C")), (std::vector<uint64_t>{ids[3], ids[4]}));
  SendGet("W", "tasks", 1, 0, true);
  ASSERT_EQ(Items("W").size(), 1u);
  Send("C", Peek{5, "tasks", 0, 100});
  std::vector<Entry> left = Items("C");
  EXPECT_EQ(IdsOf(left), (std::vector<uint64_t>{ids[1], ids[2], ids[3], ids[4]}))
      << "a leased task is not waiting";
  EXPECT_EQ(left[0].attempt, 0u) << "a peek is no delivery";
  EXPECT_EQ(QueueInfo("tasks").ready, 4u);
  EXPECT_EQ(Counter("delivered"), delivered + 1) << "only the get delivered";
  Send("C", Peek{6, "no-such-queue", 0, 10});
  EXPECT_TRUE(Items("C").empty());
  Send("C", Peek{7, "tasks", 0, 0});
  Message m = NextReal("C");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m)) << OpName(m);
  EXPECT_EQ(std::get<ErrorMsg>(m).code, kErrBadRequest);
  EXPECT_EQ(std::get<ErrorMsg>(m).rid, 7u);
}

TEST_F(BrokerTest, RetryRunsAFailedTaskAgainAndItsOutcomeGoesWhereTheFirstWould) {
  Hello("W");
  Hello("C", "client");
  Put p;
  p.rid = 1;
  p.queue = "tasks";
  p.reply_to = "mine";
  const std::string six = Value::Int(6).packed();
  p.items = {NewTask{kSquare, six, 0}};
  Send("C", p);
  const uint64_t id = std::get<PutOk>(NextReal("C")).first_id;
  SendGet("W", "tasks", 1, 0, true);
  Items("W");
  Report("W", id, false, 0, /*retry=*/false);
  SendGet("C", "mine", 1, 0, false);
  ASSERT_FALSE(Items("C")[0].outcome.ok) << "the failure's outcome went out";

  Send("C", Peek{3, "failed", 0, 10});
  std::vector<Entry> records = Items("C");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_NE(PackedToJson(records[0].arg).find("\"reply_to\": \"mine\""), std::string::npos)
      << PackedToJson(records[0].arg);
  const uint64_t record = records[0].id;
  Send("C", Retry{4, {record, id, 999999}});
  Message m = NextReal("C");
  ASSERT_TRUE(std::holds_alternative<RetryOk>(m)) << OpName(m);
  const RetryOk ok = std::get<RetryOk>(m);
  ASSERT_EQ(ok.retried.size(), 1u);
  EXPECT_EQ(ok.retried[0].first, record);
  EXPECT_EQ(ok.skipped, 2u) << "a task id and an unknown id are no failure records";
  EXPECT_EQ(QueueInfo("failed").ready, 0u) << "the record went";

  SendGet("W", "tasks", 1, 0, true);
  std::vector<Entry> again = Items("W");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, ok.retried[0].second);
  EXPECT_EQ(again[0].attempt, 1u) << "a new task: attempts from 1";
  EXPECT_EQ(again[0].arg, six);
  Report("W", again[0].id, true, 36);
  SendGet("C", "mine", 1, 0, false);
  std::vector<Entry> outcome = Items("C");
  ASSERT_EQ(outcome.size(), 1u);
  EXPECT_EQ(Value::FromTrusted(outcome[0].outcome.value).AsInt(), 36);

  Send("C", Retry{5, {record}});
  EXPECT_TRUE(std::get<RetryOk>(NextReal("C")).retried.empty()) << "a record is retried once";
}

TEST_F(BrokerTest, PurgeRemovesWaitingEntriesAndLeavesLeasedOnes) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = PutSquares("C", {1, 2, 3, 4, 5});
  SendGet("W", "tasks", 2, 0, true);
  std::vector<Entry> leased = Items("W");
  ASSERT_EQ(leased.size(), 2u);
  Send("C", Purge{3, "tasks"});
  Message m = NextReal("C");
  ASSERT_TRUE(std::holds_alternative<PurgeOk>(m)) << OpName(m);
  EXPECT_EQ(std::get<PurgeOk>(m).removed, 3u);
  EXPECT_EQ(QueueInfo("tasks").ready, 0u);
  EXPECT_EQ(QueueInfo("tasks").leased, 2u);
  EXPECT_EQ(Report("W", leased[0].id, true, 1).accepted, 1u) << "leased tasks still finish";
  SendGet("W", "tasks", 10, 10000, false);
  EXPECT_TRUE(Nothing("W")) << "nothing left to hand out: the get parks";
  PutSquares("C", {9});
  EXPECT_EQ(Items("W").size(), 1u) << "the queue works on after a purge";
  Send("C", Purge{4, "no-such-queue"});
  EXPECT_EQ(std::get<PurgeOk>(NextReal("C")).removed, 0u);
}

TEST_F(BrokerJournalTest, RetryAndPurgeSurviveARestart) {
  Restart();
  std::vector<uint64_t> ids = PutSquares("C", {3, 4});
  SendGet("W", "tasks", 1, 0, true);
  const uint64_t failing = Items("W")[0].id;
  Report("W", failing, false, 0, /*retry=*/false);
  Send("C", Peek{3, "failed", 0, 10});
  const uint64_t record = Items("C").at(0).id;
  Send("C", Retry{4, {record}});
  const uint64_t task = std::get<RetryOk>(NextReal("C")).retried.at(0).second;
  PutSquares("C", {7, 8, 9});
  Send("C", Purge{5, "tasks"});  // the retried task, the other one and 7, 8, 9
  EXPECT_EQ(std::get<PurgeOk>(NextReal("C")).removed, 5u);
  PutSquares("C", {10});
  Commit();

  Restart();
  EXPECT_EQ(QueueInfo("failed").ready, 0u) << "the retried record stays gone";
  EXPECT_EQ(QueueInfo("tasks").ready, 1u) << "only what came after the purge";
  SendGet("W", "tasks", 10, 0, true);
  std::vector<Entry> got = Items("W");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Value::FromTrusted(got[0].arg).AsInt(), 10);
  EXPECT_NE(got[0].id, task);
  EXPECT_NE(got[0].id, ids[1]);
}

}  // namespace
}  // namespace taskq::broker_testing
