// The master's state machine, driven message by message with a fake
// transport and a clock the test moves: no sockets, no sleeps.
#include "master/broker.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <set>

#include "master/journal.h"
#include "proto/limits.h"
#include "proto/value.h"
#include "tests/temp_dir.h"

namespace taskq {
namespace {

using std::chrono::milliseconds;

class FakeTransport : public Transport {
 public:
  SendResult Send(std::string_view peer, std::string_view bytes) override {
    if (gone.count(std::string(peer))) return SendResult::kGone;
    if (full) return SendResult::kFull;
    sent.emplace_back(std::string(peer), std::string(bytes));
    return SendResult::kSent;
  }
  std::deque<std::pair<std::string, std::string>> sent;
  std::set<std::string> gone;
  bool full = false;
};

const std::string kSquare = "square";

class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() { Reset(BrokerOptions()); }

  void Reset(BrokerOptions o) {
    o.heartbeat = milliseconds(100);
    options_ = o;
    broker_ =
        std::make_unique<Broker>(o, [this](const std::string& line) { log_.push_back(line); });
  }

  void Send(const std::string& peer, const Message& m) {
    broker_->Handle(peer, Encode(m), now_);
    broker_->Flush(transport_, now_);
  }
  void Advance(milliseconds d) {
    now_ += d;
    broker_->Tick(now_);
    broker_->Flush(transport_, now_);
  }
  void Hello(const std::string& peer, std::string_view role = "worker", uint32_t heartbeat_ms = 0,
             uint64_t session = 0, std::vector<uint64_t> holding = {}) {
    taskq::Hello h;
    h.role = role;
    h.name = peer;
    h.capacity = 1;
    h.session = session;
    h.heartbeat_ms = heartbeat_ms;
    h.holding = holding;
    Send(peer, h);
    ASSERT_TRUE(std::holds_alternative<Welcome>(Next(peer)));
  }

  // The next message sent to peer (decoded; it borrows from kept bytes).
  Message Next(const std::string& peer) {
    for (auto it = transport_.sent.begin(); it != transport_.sent.end(); ++it) {
      if (it->first != peer) continue;
      kept_.push_back(std::move(it->second));
      transport_.sent.erase(it);
      Result<Message> m = Decode(kept_.back());
      EXPECT_TRUE(m.ok()) << m.status().message();
      return m.ok() ? *m : Message(Goodbye{});
    }
    return Message(Ping{});  // nothing: tests compare against a real reply type
  }
  // Skips pings (heartbeats) to reach the next real message.
  Message NextReal(const std::string& peer) {
    for (;;) {
      if (std::none_of(transport_.sent.begin(), transport_.sent.end(),
                       [&](auto& s) { return s.first == peer; }))
        return Message(Ping{});
      Message m = Next(peer);
      if (!std::holds_alternative<Ping>(m)) return m;
    }
  }
  bool Nothing(const std::string& peer) {
    for (const auto& s : transport_.sent)
      if (s.first == peer && !std::holds_alternative<Ping>(*Decode(s.second))) return false;
    return true;
  }

  std::vector<uint64_t> PutSquares(const std::string& peer, std::vector<int> ns) {
    Put p;
    p.rid = 1;
    p.queue = "tasks";
    std::vector<std::string> args;
    for (int n : ns) args.push_back(Value::Int(n).packed());
    for (const std::string& a : args) p.items.push_back(NewTask{kSquare, a, 0});
    Send(peer, p);
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<PutOk>(m));
    std::vector<uint64_t> ids;
    if (const auto* ok = std::get_if<PutOk>(&m))
      for (uint64_t i = 0; i < ok->count; ++i) ids.push_back(ok->first_id + i);
    return ids;
  }
  void SendGet(const std::string& peer, std::string_view queue, uint32_t max, uint32_t timeout_ms,
               bool lease, std::vector<std::string_view> kinds = {}) {
    Get g;
    g.rid = 2;
    g.queue = queue;
    g.max = max;
    g.timeout_ms = timeout_ms;
    g.lease = lease;
    g.kinds = kinds;
    Send(peer, g);
  }
  std::vector<Entry> Items(const std::string& peer) {
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<taskq::Items>(m)) << "got " << OpName(m);
    if (const auto* it = std::get_if<taskq::Items>(&m)) return it->items;
    return {};
  }
  ResultOk Report(const std::string& peer, uint64_t id, bool ok, int value = 0, bool retry = true) {
    ResultMsg r;
    r.rid = 9;
    const std::string v = Value::Int(value).packed();
    r.results.push_back(TaskResult{id, ok, ok ? std::string_view(v) : std::string_view(),
                                   ok ? "" : "boom", 10, retry});
    Send(peer, r);
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<ResultOk>(m)) << OpName(m);
    return std::holds_alternative<ResultOk>(m) ? std::get<ResultOk>(m) : ResultOk{};
  }
  // A failed result that blames the worker itself.
  void ReportFault(const std::string& peer, uint64_t id, std::string_view error) {
    TaskResult r{id, false, {}, error, 10, true};
    r.worker_fault = true;
    Send(peer, ResultMsg{9, {r}});
    EXPECT_TRUE(std::holds_alternative<ResultOk>(NextReal(peer)));
  }
  AckOk AckIds(const std::string& peer, std::vector<uint64_t> ids) {
    Send(peer, Ack{7, std::move(ids)});
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<AckOk>(m)) << OpName(m);
    return std::holds_alternative<AckOk>(m) ? std::get<AckOk>(m) : AckOk{};
  }
  // Puts tasks, has W run them all (value n*n), and leaves their outcomes
  // in "results".
  std::vector<uint64_t> Finished(std::vector<int> ns) {
    std::vector<uint64_t> ids = PutSquares("C", ns);
    SendGet("W", "tasks", static_cast<uint32_t>(ns.size()), 0, true);
    for (const Entry& e : Items("W")) {
      const int64_t n = Value::FromTrusted(e.arg).AsInt().value_or(0);
      Report("W", e.id, true, static_cast<int>(n * n));
    }
    return ids;
  }
  std::vector<uint64_t> IdsOf(const std::vector<Entry>& entries) {
    std::vector<uint64_t> ids;
    for (const Entry& e : entries) ids.push_back(e.id);
    return ids;
  }
  WorkerStats WorkerInfo(std::string_view name) {
    for (const WorkerStats& w : broker_->Snapshot(now_).workers)
      if (w.name == name) return w;
    ADD_FAILURE() << "no worker " << name;
    return WorkerStats{};
  }
  bool Logged(std::string_view text) {
    return std::any_of(log_.begin(), log_.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
  uint64_t Counter(const std::string& name) {
    for (const auto& [k, v] : broker_->Snapshot(now_).counters)
      if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }
  QueueStats QueueInfo(std::string_view name) {
    for (const QueueStats& q : broker_->Snapshot(now_).queues)
      if (q.name == name) return q;
    return QueueStats{};
  }

  TimePoint now_ = TimePoint() + std::chrono::hours(1);
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  FakeTransport transport_;
  std::deque<std::string> kept_;
  std::vector<std::string> log_;
};

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

// --- leased outcomes and ack ----------------------------------------------

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

// --- admin requests: peek, retry, purge ---------------------------------------

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


// The broker with a real journal: what a restarted master gets back.
class BrokerJournalTest : public BrokerTest {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("taskq-broker-journal-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    journal_.reset();
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A master (re)started on the data dir, with W and C connected again.
  RecoveryReport Restart(uint64_t segment_bytes = 64u << 20) {
    journal_.reset();
    Reset(options_);
    JournalOptions o;
    o.dir = dir_;
    o.fsync = FsyncMode::kNever;
    o.segment_bytes = segment_bytes;
    RecoveryReport report;
    Result<std::unique_ptr<Journal>> j = Journal::Open(o, *broker_, &report);
    EXPECT_TRUE(j.ok()) << j.status().message();
    if (j.ok()) {
      journal_ = std::move(*j);
      broker_->AttachLog(journal_.get(), journal_->epoch());
    }
    transport_.sent.clear();
    Hello("W");
    Hello("C", "client");
    return report;
  }
  void Commit() { ASSERT_TRUE(journal_->Commit().ok()); }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
};

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

// --- failing workers --------------------------------------------------------

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
}  // namespace taskq
