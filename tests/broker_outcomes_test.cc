// Leased outcomes and ack: an outcome stays the master's until its holder
// acks it, goes back when the holder is lost, and survives a restart
// (tests/broker_fixture.h).
#include "tests/broker_fixture.h"

namespace taskq::broker_testing {
namespace {

TEST_F(BrokerTest, ALeasedOutcomeStaysInTheMasterUntilAcked) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({2, 3});
  SendGet("C", "results", 10, 0, /*lease=*/true);
  std::vector<Entry> got = Items("C");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(Value::FromTrusted(got[0].outcome.value).AsInt(), 4);
  EXPECT_EQ(QueueInfo("results").leased, 2u);
  EXPECT_EQ(QueueInfo("results").ready, 0u);
  EXPECT_EQ(broker_->queues().table().live(), 2u) << "sent, and still kept";
  SendGet("C", "results", 10, 0, true);
  EXPECT_TRUE(Items("C").empty()) << "a leased outcome is handed out once";

  AckOk ok = AckIds("C", {ids[0], 424242});
  EXPECT_EQ(ok.rid, 7u);
  EXPECT_EQ(ok.acked, 1u);
  EXPECT_EQ(ok.unknown, 1u);
  EXPECT_EQ(QueueInfo("results").leased, 1u);
  EXPECT_EQ(AckIds("C", {ids[0]}).unknown, 1u) << "acked already";
  Send("C", Ack{0, {ids[1]}});  // rid 0: no answer
  EXPECT_TRUE(Nothing("C"));
  EXPECT_EQ(QueueInfo("results").leased, 0u);
  EXPECT_EQ(broker_->queues().table().live(), 0u);
}

TEST_F(BrokerTest, OnlyTheConnectionHoldingAnOutcomeCanAckIt) {
  Hello("W");
  Hello("C", "client");
  Hello("D", "client");
  std::vector<uint64_t> ids = Finished({2});
  SendGet("C", "results", 10, 0, true);
  ASSERT_EQ(Items("C").size(), 1u);
  EXPECT_EQ(AckIds("D", ids).unknown, 1u);
  EXPECT_EQ(Report("W", ids[0], true, 4).duplicates, 1u) << "no result for a held outcome";
  EXPECT_EQ(QueueInfo("results").leased, 1u);
  EXPECT_EQ(AckIds("C", ids).acked, 1u);
}

TEST_F(BrokerTest, ALeasedOutcomeGoesBackToTheFrontWhenItsHolderSaysGoodbye) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({1, 2, 3});
  SendGet("C", "results", 2, 0, true);
  ASSERT_EQ(Items("C").size(), 2u);
  Send("C", Goodbye{});
  EXPECT_EQ(QueueInfo("results").ready, 3u);
  EXPECT_EQ(QueueInfo("results").leased, 0u);
  EXPECT_EQ(Counter("requeued"), 0u) << "outcomes have no attempts";
  Hello("D", "client");
  SendGet("D", "results", 10, 0, false);
  std::vector<Entry> got = Items("D");
  EXPECT_EQ(IdsOf(got), ids) << "the handed-back ones lead, oldest first";
  EXPECT_EQ(got[0].attempt, 1u);
}

TEST_F(BrokerTest, ReleaseHandsBackALeasedOutcome) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({1, 2});
  SendGet("C", "results", 2, 0, true);
  ASSERT_EQ(Items("C").size(), 2u);
  Send("C", Release{{ids[1], ids[0]}});
  EXPECT_TRUE(Nothing("C"));
  EXPECT_EQ(QueueInfo("results").ready, 2u);
  SendGet("C", "results", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("C")), ids);
}

TEST_F(BrokerTest, ALeasedOutcomeOfADeadOrVanishedPeerGoesBack) {
  Hello("W");
  Hello("H", "client", /*heartbeat_ms=*/100);
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({1, 2});
  SendGet("H", "results", 1, 0, true);  // H will go silent
  ASSERT_EQ(Items("H").size(), 1u);
  SendGet("C", "results", 1, 0, true);  // C's connection will be found gone
  ASSERT_EQ(Items("C").size(), 1u);
  EXPECT_EQ(QueueInfo("results").leased, 2u);
  transport_.gone.insert("C");
  for (int i = 0; i < 5; ++i) {
    Advance(milliseconds(80));
    Send("W", Ping{});
  }
  EXPECT_EQ(Counter("dead_peers"), 1u);
  EXPECT_EQ(QueueInfo("results").leased, 0u) << "C holds an outcome: it is pinged, and found gone";
  EXPECT_EQ(QueueInfo("results").ready, 2u);
  Hello("D", "client");
  SendGet("D", "results", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("D")), ids);
}

TEST_F(BrokerTest, ASessionTakeoverKeepsOnlyTheOutcomesItSaysItHolds) {
  Hello("W");
  Hello("C", "client", 0, /*session=*/77);
  std::vector<uint64_t> ids = Finished({1, 2});
  SendGet("C", "results", 2, 0, true);
  ASSERT_EQ(Items("C").size(), 2u);
  Hello("C2", "client", 0, /*session=*/77, /*holding=*/{ids[1]});
  EXPECT_EQ(QueueInfo("results").leased, 1u);
  EXPECT_EQ(QueueInfo("results").ready, 1u);
  AckOk ok = AckIds("C2", ids);
  EXPECT_EQ(ok.acked, 1u);
  EXPECT_EQ(ok.unknown, 1u);
  SendGet("C2", "results", 10, 0, false);
  EXPECT_EQ(IdsOf(Items("C2")), std::vector<uint64_t>{ids[0]});
}

TEST_F(BrokerTest, AnUndeliverableReplyUndoesItsOutcomeLeases) {
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({1, 2});
  transport_.full = true;
  SendGet("C", "results", 2, 0, true);
  transport_.full = false;
  EXPECT_EQ(QueueInfo("results").leased, 0u);
  EXPECT_EQ(QueueInfo("results").ready, 2u);
  EXPECT_EQ(Counter("delivered"), 2u) << "only W's two tasks";
  EXPECT_EQ(AckIds("C", ids).unknown, 2u);
  SendGet("C", "results", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("C")), ids);
}

TEST_F(BrokerTest, ALeaseFalseGetOnOutcomesStillTakesThem) {
  Hello("W");
  Hello("C", "client");
  Finished({1});
  SendGet("C", "results", 10, 0, false);
  ASSERT_EQ(Items("C").size(), 1u);
  EXPECT_EQ(QueueInfo("results").leased, 0u);
  EXPECT_EQ(broker_->queues().table().live(), 0u);
}

// What the journal is told: an outcome's take when it is acked, not when
// it is leased; nothing when a lease of it ends.
class RecordingLog : public StateLog {
 public:
  void Put(uint64_t, std::string_view, std::string_view, std::string_view) override {}
  void Lease(const std::vector<uint64_t>&) override {}
  void Unlease(uint64_t id) override { events.push_back("unlease " + std::to_string(id)); }
  void Done(uint64_t id, const StoredOutcome&) override {
    events.push_back("done " + std::to_string(id));
  }
  void Take(const std::vector<uint64_t>& ids) override {
    for (uint64_t id : ids) events.push_back("take " + std::to_string(id));
  }
  void Rewrite(uint64_t id, std::string_view, std::string_view, std::string_view, const Slot&,
             uint32_t, const StoredOutcome*) override {
    events.push_back("entry " + std::to_string(id));
  }
  std::vector<std::string> events;
};

TEST_F(BrokerTest, AnOutcomesTakeIsJournaledWhenItIsAcked) {
  RecordingLog journal;
  broker_->AttachLog(&journal, 1);
  Hello("W");
  Hello("C", "client");
  std::vector<uint64_t> ids = Finished({1, 2});
  const std::string a = std::to_string(ids[0]), b = std::to_string(ids[1]);
  EXPECT_EQ(journal.events, (std::vector<std::string>{"done " + a, "done " + b}));
  journal.events.clear();
  SendGet("C", "results", 2, 0, true);
  Items("C");
  Send("C", Release{{ids[1]}});
  EXPECT_TRUE(journal.events.empty()) << "a lease of an outcome is not journaled";
  EXPECT_EQ(AckIds("C", {ids[0]}).acked, 1u);
  EXPECT_EQ(journal.events, std::vector<std::string>{"take " + a});
}

TEST_F(BrokerJournalTest, ALeasedOutcomeNotAckedIsReadyAgainAfterARestart) {
  Restart();
  std::vector<uint64_t> ids = Finished({1, 2, 3});
  SendGet("C", "results", 3, 0, true);
  ASSERT_EQ(Items("C").size(), 3u);
  EXPECT_EQ(AckIds("C", {ids[0]}).acked, 1u);
  Commit();

  RecoveryReport r = Restart();
  EXPECT_EQ(r.outcomes, 2u) << "the acked one is gone, the other two were never taken";
  EXPECT_EQ(QueueInfo("results").ready, 2u);
  SendGet("C", "results", 10, 0, true);
  std::vector<Entry> got = Items("C");
  EXPECT_EQ(IdsOf(got), (std::vector<uint64_t>{ids[1], ids[2]}));
  EXPECT_EQ(Value::FromTrusted(got[0].outcome.value).AsInt(), 4);
}

TEST_F(BrokerJournalTest, CompactionKeepsLeasedOutcomesAsReadyOnes) {
  Restart(/*segment_bytes=*/8192);
  std::vector<uint64_t> held = Finished({5, 6});
  SendGet("C", "results", 2, 0, true);  // leased, never acked
  ASSERT_EQ(Items("C").size(), 2u);
  for (int round = 0; round < 60; ++round) {
    std::vector<int> ns(20, 7);
    Finished(ns);
    SendGet("C", "results", 100, 0, true);
    EXPECT_EQ(AckIds("C", IdsOf(Items("C"))).acked, 20u);
    Commit();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(journal_->Compact(64).ok());
  }
  std::size_t segments = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    segments += e.path().extension() == ".tqj";
  EXPECT_LE(segments, 4u) << "compaction ran: the first files are gone";
  RecoveryReport r = Restart(8192);
  EXPECT_EQ(r.outcomes, 2u);
  EXPECT_EQ(r.ready, 0u);
  SendGet("C", "results", 10, 0, true);
  EXPECT_EQ(IdsOf(Items("C")), held);
}

}  // namespace
}  // namespace taskq::broker_testing
