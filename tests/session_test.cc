// The client's and the worker's session (client/session.h), message by
// message: no socket, a clock the test moves.
#include "client/session.h"

#include <gtest/gtest.h>

#include "proto/rid.h"

namespace taskq {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kInstance = 7, kEpoch = 70;

class SessionTest : public ::testing::Test {
 protected:
  // Starts request m; returns its rid.
  uint64_t Begin(Message m) { return session_.Start(&m); }
  uint64_t BeginPut() {
    Put p;
    p.queue = "tasks";
    return Begin(p);
  }
  uint64_t BeginGet() { return Begin(Get{0, "results", 10, 250, true, {}}); }
  uint64_t BeginResult() {
    ResultMsg r;
    r.results.push_back(TaskResult{5, true, "", "", 1, true});
    return Begin(r);
  }
  uint64_t BeginAck() { return Begin(Ack{0, {5, 6}}); }
  uint64_t BeginStats() { return Begin(Stats{0, ""}); }

  Session::Received Receive(const Message& m) {
    todo_ = SessionActions();
    return session_.OnMessage(m, now_, &todo_);
  }
  Session::Received Welcome(uint64_t instance = kInstance, uint64_t epoch = kEpoch) {
    return Receive(taskq::Welcome{1, "taskq-master", instance, epoch, 1000, 65536});
  }
  Session::Received HelloRequired(uint64_t rid) {
    return Receive(ErrorMsg{rid, kErrHelloRequired, "say hello first"});
  }
  void Disconnect() {
    todo_ = SessionActions();
    session_.OnDisconnect(now_, &todo_);
  }
  // The rid the encoded request rid carries.
  uint64_t RidSent(uint64_t rid) {
    Result<Message> m = Decode(session_.Encoded(rid));
    return m.ok() ? RidOf(*m) : 0;
  }
  // The rids given up on, and the code of the first.
  std::vector<uint64_t> Ended() {
    std::vector<uint64_t> rids;
    for (const auto& [rid, why] : todo_.ended) rids.push_back(rid);
    return rids;
  }

  Session session_{kInstance, kEpoch};
  SessionActions todo_;
  TimePoint now_{};
};

TEST_F(SessionTest, RidsAreNewAndARequestIsSentWithItsOwn) {
  const uint64_t a = BeginPut(), b = BeginGet();
  EXPECT_NE(a, 0u);
  EXPECT_GT(b, a);
  EXPECT_EQ(RidSent(a), a);
  EXPECT_EQ(RidSent(b), b);
  EXPECT_EQ(session_.in_flight(), 2u);
}

TEST_F(SessionTest, AReplyIsMatchedOnceByItsRid) {
  const uint64_t put = BeginPut(), get = BeginGet();
  Session::Received r = Receive(Items{get, "results", {}});
  EXPECT_EQ(r.kind, Session::Kind::kReply);
  EXPECT_EQ(r.rid, get);
  EXPECT_FALSE(session_.InFlight(get));
  EXPECT_TRUE(session_.InFlight(put));
  // Again, or for a rid nobody waits for: stale.
  EXPECT_EQ(Receive(Items{get, "results", {}}).kind, Session::Kind::kStale);
  EXPECT_EQ(Receive(PutOk{999, 1, 1}).kind, Session::Kind::kStale);
  EXPECT_EQ(Receive(PutOk{put, 1, 0}).kind, Session::Kind::kReply);
  EXPECT_TRUE(todo_.empty());
}

TEST_F(SessionTest, PingsShutdownsAndErrorsAboutNothingAreTheOwners) {
  EXPECT_EQ(Receive(Ping{}).kind, Session::Kind::kNotice);
  EXPECT_EQ(Receive(Shutdown{"master exit"}).kind, Session::Kind::kNotice);
  EXPECT_EQ(Receive(ErrorMsg{0, kErrBadMessage, "?"}).kind, Session::Kind::kNotice);
  EXPECT_TRUE(session_.welcomed());
  EXPECT_TRUE(todo_.empty());
}

TEST_F(SessionTest, AnErrorWithNoRidAnswersTheOnlyRequestOut) {
  const uint64_t put = BeginPut();
  Session::Received r = Receive(ErrorMsg{0, kErrBadMessage, "truncated"});
  EXPECT_EQ(r.kind, Session::Kind::kReply);
  EXPECT_EQ(r.rid, put);
  // With two out, it could be about either: the owner's.
  BeginPut();
  BeginGet();
  EXPECT_EQ(Receive(ErrorMsg{0, kErrBadMessage, "truncated"}).kind, Session::Kind::kNotice);
  EXPECT_EQ(session_.in_flight(), 2u);
}

TEST_F(SessionTest, AnAbandonedRequestsReplyIsStale) {
  const uint64_t stats = BeginStats();
  session_.Abandon(stats);
  EXPECT_EQ(Receive(StatsOk{stats, {}, {}, {}}).kind, Session::Kind::kStale);
}

// The master did not act on a request it answered hello_required: even a
// put goes again, once the hello is welcomed, as it was (same rid).
TEST_F(SessionTest, HelloRequiredSaysHelloThenSendsTheRequestAgain) {
  const uint64_t put = BeginPut();
  EXPECT_EQ(HelloRequired(put).kind, Session::Kind::kHandled);
  EXPECT_TRUE(todo_.hello);
  EXPECT_TRUE(todo_.resend.empty());
  EXPECT_FALSE(session_.welcomed());
  Session::Received w = Welcome();
  EXPECT_EQ(w.kind, Session::Kind::kWelcome);
  EXPECT_TRUE(w.rejoined);
  EXPECT_FALSE(w.restarted);
  EXPECT_FALSE(w.new_epoch);
  EXPECT_TRUE(session_.welcomed());
  EXPECT_FALSE(todo_.hello);
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{put});
  EXPECT_EQ(RidSent(put), put);
  EXPECT_EQ(Receive(PutOk{put, 1, 0}).kind, Session::Kind::kReply);
}

// Requests queued behind the one refused are refused too; one hello serves them all.
TEST_F(SessionTest, OneHelloWhileItsWelcomeIsAwaited) {
  const uint64_t a = BeginPut(), b = BeginAck();
  HelloRequired(a);
  EXPECT_TRUE(todo_.hello);
  HelloRequired(b);
  EXPECT_FALSE(todo_.hello);
  Welcome();
  EXPECT_EQ(todo_.resend, (std::vector<uint64_t>{a, b}));
}

// A hello_required for a message with no rid (a worker's ping): the master
// forgot the session, so whatever is in flight may be lost with it.
TEST_F(SessionTest, HelloRequiredForAPingDoubtsWhatIsInFlight) {
  const uint64_t get = BeginGet(), put = BeginPut();
  HelloRequired(0);
  EXPECT_TRUE(todo_.hello);
  Welcome();
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{get});
  EXPECT_EQ(Ended(), std::vector<uint64_t>{put});
  EXPECT_FALSE(session_.InFlight(put));
}

// After a dropped connection nothing says what the master did: what can be
// asked twice is; a put is given up on, with words that say why.
TEST_F(SessionTest, ADropSendsAgainOnlyWhatIsSafeToSendTwice) {
  const uint64_t put = BeginPut(), get = BeginGet(), stats = BeginStats(), ack = BeginAck(),
                 result = BeginResult();
  const uint64_t retry = Begin(Retry{0, {3}}), purge = Begin(Purge{0, "tasks"}),
                 peek = Begin(Peek{0, "tasks", 0, 10});
  Disconnect();
  EXPECT_TRUE(todo_.hello);
  EXPECT_FALSE(session_.welcomed());
  Welcome();
  EXPECT_EQ(todo_.resend, (std::vector<uint64_t>{get, stats, ack, result, peek}));
  EXPECT_EQ(Ended(), (std::vector<uint64_t>{put, retry, purge}));
  const Status& why = todo_.ended.front().second;
  EXPECT_EQ(why.code(), Code::kUnavailable);
  EXPECT_NE(why.message().find("while a put was on its way"), std::string::npos) << why.message();
}

// A put queued while the connection was down reaches the new master before
// the hello, which refuses it: not acted on, so sent again.
TEST_F(SessionTest, APutRefusedAfterADropIsSentAgain) {
  const uint64_t put = BeginPut();
  Disconnect();
  HelloRequired(put);
  EXPECT_FALSE(todo_.hello);  // the drop's hello is on its way
  Welcome(kInstance + 1, kEpoch);
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{put});
  EXPECT_TRUE(todo_.ended.empty());
}

// Replies that came on the old connection before the drop are read after it.
TEST_F(SessionTest, AReplyReadAfterADropIsStillTheReply) {
  const uint64_t put = BeginPut();
  Disconnect();
  EXPECT_EQ(Receive(PutOk{put, 1, 0}).kind, Session::Kind::kReply);
  Welcome();
  EXPECT_TRUE(todo_.resend.empty());
  EXPECT_TRUE(todo_.ended.empty());
}

// A master restarted without its journal: ids name other tasks now.
TEST_F(SessionTest, ANewEpochGivesUpOnResultsAndAcks) {
  const uint64_t result = BeginResult(), ack = BeginAck(), get = BeginGet();
  HelloRequired(result);
  Session::Received w = Welcome(kInstance + 1, kInstance + 1);
  EXPECT_TRUE(w.restarted);
  EXPECT_TRUE(w.new_epoch);
  EXPECT_EQ(session_.epoch(), kInstance + 1);
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{get});
  EXPECT_EQ(Ended(), (std::vector<uint64_t>{result, ack}));
  EXPECT_NE(todo_.ended[0].second.message().find("restarted without its journal"),
            std::string::npos);
}

// A restart with the journal keeps the epoch: results go again (the master
// takes one per task).
TEST_F(SessionTest, TheSameEpochSendsResultsAgain) {
  const uint64_t result = BeginResult();
  Disconnect();
  Session::Received w = Welcome(kInstance + 1, kEpoch);
  EXPECT_TRUE(w.restarted);
  EXPECT_FALSE(w.new_epoch);
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{result});
}

TEST_F(SessionTest, AnEpochOfZeroIsTheInstance) {
  Session s(5, 0);
  EXPECT_EQ(s.epoch(), 5u);
  Welcome(kInstance, 0);
  EXPECT_EQ(session_.epoch(), kInstance);
}

// A request made before the welcome is not sent: the master would refuse
// it; it goes with the welcome, under that welcome's epoch rules.
TEST_F(SessionTest, ARequestMadeWhileNoWelcomeGoesWithIt) {
  Disconnect();
  const uint64_t put = BeginPut(), result = BeginResult();
  Welcome(kInstance + 1, kInstance + 1);
  EXPECT_EQ(todo_.resend, std::vector<uint64_t>{put});
  EXPECT_EQ(Ended(), std::vector<uint64_t>{result});
}

// Requests sent after the hello reach the master after it: not in doubt.
TEST_F(SessionTest, ASecondWelcomeSendsNothingAgain) {
  const uint64_t get = BeginGet();
  Welcome();
  EXPECT_FALSE(Welcome().rejoined);
  EXPECT_TRUE(todo_.empty());
  EXPECT_TRUE(session_.InFlight(get));
}

TEST_F(SessionTest, HelloAgainWhileNoWelcomeComes) {
  SessionActions todo;
  session_.Tick(now_ + std::chrono::hours(1), &todo);
  EXPECT_FALSE(todo.hello);  // welcomed: nothing to do
  EXPECT_EQ(session_.NextTick(), TimePoint::max());
  Disconnect();
  EXPECT_EQ(session_.NextTick(), now_ + Session::kHelloAgain);
  session_.Tick(now_ + Session::kHelloAgain - milliseconds(1), &todo);
  EXPECT_FALSE(todo.hello);
  session_.Tick(now_ + Session::kHelloAgain, &todo);
  EXPECT_TRUE(todo.hello);
  EXPECT_EQ(session_.NextTick(), now_ + 2 * Session::kHelloAgain);
}

// A second drop before the welcome: the hello may be gone with it.
TEST_F(SessionTest, EveryDropSaysHello) {
  Disconnect();
  Disconnect();
  EXPECT_TRUE(todo_.hello);
}

TEST_F(SessionTest, AMasterThatForgetsAtOnceEachTimeIsGivenUpOn) {
  const uint64_t stats = BeginStats();
  for (int i = 0; i < Session::kMaxForgotten; ++i) {
    HelloRequired(stats);
    Welcome();
    ASSERT_EQ(todo_.resend, std::vector<uint64_t>{stats}) << i;
  }
  HelloRequired(stats);
  EXPECT_EQ(Ended(), std::vector<uint64_t>{stats});
  EXPECT_EQ(todo_.ended[0].second.code(), Code::kProtocol);
  EXPECT_FALSE(session_.InFlight(stats));
}

}  // namespace
}  // namespace taskq
