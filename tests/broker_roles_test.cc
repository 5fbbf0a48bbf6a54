// What each key's role may do (master/roles.h, docs/PROTOCOL.md 2.5), driven
// message by message through the Broker with a fake transport, as
// broker_test.cc does: every refusal is a forbidden error naming the
// operation and the role, and the connection goes on being served.
#include <gtest/gtest.h>

#include <deque>

#include "master/broker.h"
#include "master/roles.h"
#include "proto/value.h"

namespace taskq {
namespace {

class Outbox : public Transport {
 public:
  SendResult Send(std::string_view peer, std::string_view bytes) override {
    sent.emplace_back(std::string(peer), std::string(bytes));
    return SendResult::kSent;
  }
  std::deque<std::pair<std::string, std::string>> sent;
};

class BrokerRolesTest : public ::testing::Test {
 protected:
  BrokerRolesTest()
      : broker_(BrokerOptions(), [this](const std::string& line) { log_.push_back(line); }) {}

  // Sends m from peer, whose connection holds a key of role.
  void Send(const std::string& peer, Role role, const Message& m) {
    broker_.Handle(peer, Encode(m), now_, role);
    broker_.Flush(out_, now_);
  }
  // The next message to peer, pings skipped; a ping when there is none.
  Message Next(const std::string& peer) {
    for (auto it = out_.sent.begin(); it != out_.sent.end();) {
      if (it->first != peer) {
        ++it;
        continue;
      }
      kept_.push_back(std::move(it->second));
      it = out_.sent.erase(it);
      Result<Message> m = Decode(kept_.back());
      EXPECT_TRUE(m.ok());
      if (m.ok() && !std::holds_alternative<Ping>(*m)) return *m;
    }
    return Ping{};
  }
  void Hello(const std::string& peer, Role role, std::string_view as, uint64_t session = 0) {
    taskq::Hello h;
    h.role = as;
    h.name = peer;
    h.session = session;
    Send(peer, role, h);
    ASSERT_TRUE(std::holds_alternative<Welcome>(Next(peer))) << peer;
  }
  // The forbidden error peer got next (its rid and message), or a failure.
  ErrorMsg Refused(const std::string& peer) {
    Message m = Next(peer);
    const auto* e = std::get_if<ErrorMsg>(&m);
    EXPECT_TRUE(e && e->code == kErrForbidden) << peer << " got " << OpName(m);
    return e ? *e : ErrorMsg{};
  }
  void ExpectRefused(const std::string& peer, Role role, const Message& m, uint64_t rid,
                     const std::string& says) {
    Send(peer, role, m);
    const ErrorMsg e = Refused(peer);
    EXPECT_EQ(e.rid, rid) << OpName(m);
    EXPECT_EQ(std::string(e.message).find(says), 0u) << e.message;
  }
  // Puts n square tasks into queue, outcomes to reply_to; their first id.
  uint64_t PutTasks(const std::string& peer, Role role, std::string_view queue,
                    std::string_view reply_to, int n = 1) {
    Put p;
    p.rid = 1;
    p.queue = queue;
    p.reply_to = reply_to;
    for (int i = 0; i < n; ++i) p.items.push_back(NewTask{"square", arg_, 0});
    Send(peer, role, p);
    Message m = Next(peer);
    const auto* ok = std::get_if<PutOk>(&m);
    EXPECT_TRUE(ok) << peer << " got " << OpName(m);
    return ok ? ok->first_id : 0;
  }
  Get GetOf(std::string_view queue, bool lease, uint64_t rid = 2) {
    Get g;
    g.rid = rid;
    g.queue = queue;
    g.max = 100;
    g.lease = lease;
    return g;
  }
  std::vector<Entry> Take(const std::string& peer, Role role, std::string_view queue, bool lease) {
    Send(peer, role, GetOf(queue, lease));
    Message m = Next(peer);
    const auto* items = std::get_if<Items>(&m);
    EXPECT_TRUE(items) << peer << " got " << OpName(m);
    return items ? items->items : std::vector<Entry>{};
  }
  void Report(const std::string& peer, Role role, uint64_t id) {
    ResultMsg r;
    r.rid = 3;
    r.results.push_back(TaskResult{id, true, arg_, {}, 10, true});
    Send(peer, role, r);
    EXPECT_TRUE(std::holds_alternative<ResultOk>(Next(peer))) << peer;
  }
  std::vector<std::string> QueuesInStats(const std::string& peer, Role role,
                                         std::string_view named = {}) {
    Send(peer, role, Stats{5, named});
    Message m = Next(peer);
    std::vector<std::string> names;
    if (const auto* s = std::get_if<StatsOk>(&m))
      for (const QueueStats& q : s->queues) names.emplace_back(q.name);
    else
      ADD_FAILURE() << peer << " got " << OpName(m);
    return names;
  }

  Outbox out_;
  std::vector<std::string> log_;
  Broker broker_;
  TimePoint now_ = TimePoint() + std::chrono::hours(1);
  std::vector<std::string> kept_;
  const std::string arg_ = Value::Int(7).packed();
};

bool Has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(BrokerRolesTest, AWorkerKeyTakesTasksRunsThemAndReportsNothingElse) {
  Hello("W", Role::kWorker, "worker");
  Hello("A", Role::kAdmin, "client");
  const uint64_t id = PutTasks("A", Role::kAdmin, "tasks", "results", 2);

  ExpectRefused("W", Role::kWorker, Put{7, "tasks", "results", 0, {}, {}}, 7,
                "a worker key cannot put tasks");
  ExpectRefused("W", Role::kWorker, GetOf("tasks", /*lease=*/false), 2,
                "a worker key cannot take entries without a lease");
  for (std::string_view q : {"results", "failed", "job.k3f9x2ab7m"})
    ExpectRefused("W", Role::kWorker, GetOf(q, true), 2,
                  "a worker key cannot take from '" + std::string(q) + "'");
  ExpectRefused("W", Role::kWorker, Ack{8, {id}}, 8, "a worker key cannot ack outcomes");
  ExpectRefused("W", Role::kWorker, Stats{9}, 9, "a worker key cannot ask for stats");
  ExpectRefused("W", Role::kWorker, Peek{10, "tasks", 0, 100}, 10,
                "a worker key cannot peek at queues");
  ExpectRefused("W", Role::kWorker, Retry{11, {id}}, 11, "a worker key cannot retry");
  ExpectRefused("W", Role::kWorker, Purge{12, "tasks"}, 12, "a worker key cannot purge queues");

  // Refused requests changed nothing, and the same connection is served.
  std::vector<Entry> got = Take("W", Role::kWorker, "tasks", true);
  ASSERT_EQ(got.size(), 2u);
  Report("W", Role::kWorker, got[0].id);
  Send("W", Role::kWorker, Release{{got[1].id}});
  Send("W", Role::kWorker, Ping{});
  Send("W", Role::kWorker, GetOf("tasks", true, 20));
  Send("W", Role::kWorker, Cancel{20});
  Message m = Next("W");
  ASSERT_TRUE(std::holds_alternative<Items>(m)) << OpName(m);  // the released task
  Send("W", Role::kWorker, Goodbye{});
  EXPECT_EQ(Take("A", Role::kAdmin, "results", false).size(), 1u);
}

TEST_F(BrokerRolesTest, ASubmitterKeyPutsAndCollectsItsJobsAndNothingElse) {
  Hello("S", Role::kSubmitter, "client");
  Hello("W", Role::kWorker, "worker");
  ExpectRefused("S", Role::kSubmitter, Put{7, "tasks", "results", 0, {}, {}}, 7,
                "a submitter key cannot put tasks whose outcomes go to 'results'");
  ExpectRefused("S", Role::kSubmitter, Put{7, "failed", "job.a", 0, {}, {}}, 7,
                "a submitter key cannot put into 'failed'");
  const uint64_t id = PutTasks("S", Role::kSubmitter, "tasks", "job.a", 2);
  for (bool lease : {true, false})
    ExpectRefused("S", Role::kSubmitter, GetOf("tasks", lease), 2,
                  "a submitter key cannot take from 'tasks'");
  ExpectRefused("S", Role::kSubmitter, GetOf("results", false), 2,
                "a submitter key cannot take from 'results'");
  ResultMsg forged;
  forged.rid = 8;
  forged.results.push_back(TaskResult{id, true, arg_, {}, 1, true});
  ExpectRefused("S", Role::kSubmitter, forged, 8, "a submitter key cannot report results");
  ExpectRefused("S", Role::kSubmitter, Peek{10, "failed", 0, 100}, 10,
                "a submitter key cannot peek at queues: that takes the authkey itself");
  ExpectRefused("S", Role::kSubmitter, Retry{11, {id}}, 11, "a submitter key cannot retry");
  ExpectRefused("S", Role::kSubmitter, Purge{12, "tasks"}, 12,
                "a submitter key cannot purge queues");

  // The worker runs both tasks; the submitter collects them, leased, and acks.
  for (const Entry& e : Take("W", Role::kWorker, "tasks", true)) Report("W", Role::kWorker, e.id);
  std::vector<Entry> outcomes = Take("S", Role::kSubmitter, "job.a", true);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcomes[0].has_outcome);
  Send("S", Role::kSubmitter, Ack{13, {outcomes[0].id, outcomes[1].id}});
  Message m = Next("S");
  ASSERT_TRUE(std::holds_alternative<AckOk>(m)) << OpName(m);
  EXPECT_EQ(std::get<AckOk>(m).acked, 2u);
}

// A job's id is its capability: another submitter neither sees the job in
// stats nor reads it, unless it names it; an admin sees everything.
TEST_F(BrokerRolesTest, ASubmitterSeesOnlyTheJobsItPutToOrNames) {
  Hello("S1", Role::kSubmitter, "client");
  Hello("S2", Role::kSubmitter, "client");
  Hello("A", Role::kAdmin, "client");
  Hello("W", Role::kWorker, "worker");
  PutTasks("S1", Role::kSubmitter, "tasks", "job.one");
  PutTasks("S2", Role::kSubmitter, "tasks", "job.two");
  for (const Entry& e : Take("W", Role::kWorker, "tasks", true)) Report("W", Role::kWorker, e.id);

  std::vector<std::string> s1 = QueuesInStats("S1", Role::kSubmitter);
  EXPECT_TRUE(Has(s1, "job.one") && Has(s1, "tasks"));
  EXPECT_FALSE(Has(s1, "job.two"));
  EXPECT_TRUE(Has(QueuesInStats("S1", Role::kSubmitter, "job.two"), "job.two"));
  std::vector<std::string> admin = QueuesInStats("A", Role::kAdmin);
  EXPECT_TRUE(Has(admin, "job.one") && Has(admin, "job.two"));

  // A new connection that never put sees no job, but collects one it names.
  Hello("S3", Role::kSubmitter, "client");
  EXPECT_FALSE(Has(QueuesInStats("S3", Role::kSubmitter), "job.one"));
  std::vector<Entry> got = Take("S3", Role::kSubmitter, "job.one", false);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].has_outcome);
}

// Whatever a queue holds, a worker's get is handed only tasks and a
// submitter's only outcomes: the others stay, in order, for whoever may.
TEST_F(BrokerRolesTest, AGetStepsOverEntriesItsRoleMayNotTake) {
  Hello("A", Role::kAdmin, "client");
  Hello("W", Role::kWorker, "worker");
  Hello("S", Role::kSubmitter, "client");
  // An admin's outcome lands in "mixed", a queue workers also serve.
  const uint64_t first = PutTasks("A", Role::kAdmin, "mixed", "mixed");
  Report("A", Role::kAdmin, Take("A", Role::kAdmin, "mixed", true).at(0).id);
  const uint64_t task = PutTasks("A", Role::kAdmin, "mixed", "mixed");
  std::vector<Entry> w = Take("W", Role::kWorker, "mixed", true);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].id, task);
  EXPECT_FALSE(w[0].has_outcome);
  // A task put into a job's queue is not the submitter's to take.
  PutTasks("A", Role::kAdmin, "job.x", "job.x");
  EXPECT_TRUE(Take("S", Role::kSubmitter, "job.x", false).empty());
  std::vector<Entry> a = Take("A", Role::kAdmin, "mixed", false);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].id, first);
  EXPECT_TRUE(a[0].has_outcome);
}

TEST_F(BrokerRolesTest, AKeySaysHelloOnlyAsItsRoleAndASessionNeverCrossesKeys) {
  taskq::Hello h;
  h.role = "client";
  Send("W", Role::kWorker, h);
  ErrorMsg e = Refused("W");
  EXPECT_EQ(e.rid, 0u);
  EXPECT_EQ(std::string(e.message).find("a worker key cannot say hello as a 'client'"), 0u)
      << e.message;
  Send("W", Role::kWorker, Stats{4});  // not known: the hello did not count
  Message m = Next("W");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(m));
  EXPECT_EQ(std::get<ErrorMsg>(m).code, kErrHelloRequired);
  h.role = "worker";
  Send("S", Role::kSubmitter, h);
  EXPECT_EQ(
      std::string(Refused("S").message).find("a submitter key cannot say hello as a 'worker'"), 0u);
  // The admin's key may be either, as before.
  Hello("A1", Role::kAdmin, "worker");
  Hello("A2", Role::kAdmin, "client");

  // A submitter that announces a worker's session takes none of its leases.
  Hello("W", Role::kWorker, "worker", /*session=*/77);
  PutTasks("A2", Role::kAdmin, "tasks", "results");
  ASSERT_EQ(Take("W", Role::kWorker, "tasks", true).size(), 1u);
  Hello("S", Role::kSubmitter, "client", /*session=*/77);
  Send("W", Role::kWorker, Ping{});
  Message still = Next("W");
  EXPECT_TRUE(std::holds_alternative<Ping>(still)) << "W is still known: " << OpName(still);
  Send("A2", Role::kAdmin, Stats{6});
  m = Next("A2");
  ASSERT_TRUE(std::holds_alternative<StatsOk>(m));
  for (const QueueStats& q : std::get<StatsOk>(m).queues) {
    if (q.name == "tasks") {
      EXPECT_EQ(q.leased, 1u) << "the lease stayed the worker's";
    }
  }
}

TEST_F(BrokerRolesTest, TheMasterLogsAConnectionsFirstRefusalOnly) {
  Hello("W", Role::kWorker, "worker");
  for (int i = 0; i < 3; ++i)
    ExpectRefused("W", Role::kWorker, Purge{12, "tasks"}, 12, "a worker key cannot purge");
  int lines = 0;
  for (const std::string& l : log_) lines += l.find("refused a request of W") != std::string::npos;
  EXPECT_EQ(lines, 1);
}

// The table itself, without a broker: what each role may send.
TEST(RolesTableTest, RefusalFollowsTheTableOfDocsProtocol) {
  const Message allowed_to_all[] = {Ping{}, Goodbye{}, Release{}, Cancel{1}};
  for (Role r : {Role::kAdmin, Role::kWorker, Role::kSubmitter})
    for (const Message& m : allowed_to_all) EXPECT_EQ(Refusal(r, m), "") << OpName(m);
  Get get;
  get.queue = "tasks";
  get.lease = true;
  EXPECT_EQ(Refusal(Role::kWorker, get), "");
  EXPECT_NE(Refusal(Role::kSubmitter, get), "");
  get.queue = "job.a";
  EXPECT_NE(Refusal(Role::kWorker, get), "");
  EXPECT_EQ(Refusal(Role::kSubmitter, get), "");
  EXPECT_EQ(Refusal(Role::kWorker, ResultMsg{}), "");
  EXPECT_NE(Refusal(Role::kSubmitter, ResultMsg{}), "");
  EXPECT_NE(Refusal(Role::kWorker, Ack{}), "");
  EXPECT_EQ(Refusal(Role::kSubmitter, Ack{}), "");
  EXPECT_NE(Refusal(Role::kWorker, Stats{}), "");
  EXPECT_EQ(Refusal(Role::kSubmitter, Stats{}), "");
  for (const Message& m : {Message(Peek{}), Message(Retry{}), Message(Purge{}), Message(get)})
    EXPECT_EQ(Refusal(Role::kAdmin, m), "") << OpName(m);
  EXPECT_TRUE(MayTake(Role::kWorker, false) && !MayTake(Role::kWorker, true));
  EXPECT_TRUE(MayTake(Role::kSubmitter, true) && !MayTake(Role::kSubmitter, false));
  EXPECT_TRUE(MayTake(Role::kAdmin, true) && MayTake(Role::kAdmin, false));
  EXPECT_TRUE(IsJobQueue("job.a") && !IsJobQueue("job.") && !IsJobQueue("jobs"));
}

}  // namespace
}  // namespace taskq

namespace taskq {
namespace {

// A worker's key is on every student's laptop and task ids are easy to
// guess: it may report only on tasks leased to its own connection. (The
// authkey's late result for a task whose lease moved on is still taken.)
TEST_F(BrokerRolesTest, AWorkerKeyReportsOnlyOnTasksLeasedToIt) {
  Hello("A", Role::kAdmin, "client");
  Hello("W1", Role::kWorker, "worker");
  Hello("W2", Role::kWorker, "worker", /*session=*/77);
  const uint64_t first = PutTasks("A", Role::kAdmin, "tasks", "results", 2);
  std::vector<Entry> w1 = Take("W1", Role::kWorker, "tasks", true);
  ASSERT_EQ(w1.size(), 2u);
  ResultMsg forged;
  forged.rid = 4;
  forged.results.push_back(TaskResult{first, true, arg_, {}, 1, true});
  forged.results.push_back(TaskResult{first + 1, false, {}, "killed by W2", 1, false});
  Send("W2", Role::kWorker, forged);
  Message m = Next("W2");
  ASSERT_TRUE(std::holds_alternative<ResultOk>(m)) << OpName(m);
  EXPECT_EQ(std::get<ResultOk>(m).accepted, 0u);
  EXPECT_EQ(std::get<ResultOk>(m).duplicates, 2u);
  Report("W1", Role::kWorker, first);  // the holder's result counts
  Send("A", Role::kAdmin, GetOf("results", false));
  m = Next("A");
  ASSERT_TRUE(std::holds_alternative<Items>(m)) << OpName(m);
  ASSERT_EQ(std::get<Items>(m).items.size(), 1u);
  EXPECT_EQ(std::get<Items>(m).items[0].id, first);
}

// A submitter puts tasks for workers: not into queues that hold outcomes,
// where a get would take its tasks as someone's outcomes.
TEST_F(BrokerRolesTest, ASubmitterKeyPutsNoTasksWhereOutcomesAre) {
  Hello("S", Role::kSubmitter, "client");
  for (std::string_view q : {"results", "job.victim", "job.a"})
    ExpectRefused("S", Role::kSubmitter, Put{7, q, "job.a", 0, {}, {}}, 7,
                  "a submitter key cannot put into '" + std::string(q) + "'");
  // Not a job queue: "job." and something that is not a job id.
  ExpectRefused("S", Role::kSubmitter, Put{7, "tasks", "job.\x1b[31m", 0, {}, {}}, 7,
                "a submitter key cannot put tasks whose outcomes go to");
}

// Queues live as long as the master: restricted keys may not fill its table.
TEST_F(BrokerRolesTest, RestrictedKeysMakeNoQueuesPastTheirShare) {
  Hello("A", Role::kAdmin, "client");
  Hello("S", Role::kSubmitter, "client");
  for (std::size_t i = broker_.queues().queue_count(); i + 2 <= kMaxQueuesOfRestrictedKeys; ++i)
    ASSERT_TRUE(broker_.queues().QueueId("q" + std::to_string(i)).ok());
  ExpectRefused("S", Role::kSubmitter, Put{7, "tasks", "job.new", 0, {}, {}}, 7,
                "a submitter key cannot make more queues");
  PutTasks("A", Role::kAdmin, "tasks", "job.admins", 1);  // the authkey still can
  PutTasks("S", Role::kSubmitter, "tasks", "job.admins", 1);  // and existing ones serve
}

// A routing id that comes back with another key is not the old connection:
// it says hello for itself, and gets nothing of the old one's.
TEST_F(BrokerRolesTest, ARoutingIdBackWithAnotherKeyMustSayHello) {
  Hello("X", Role::kAdmin, "client");
  Send("X", Role::kWorker, Stats{9});
  Message m = Next("X");
  const auto* e = std::get_if<ErrorMsg>(&m);
  ASSERT_TRUE(e) << OpName(m);
  EXPECT_EQ(e->code, kErrHelloRequired);
  Send("X", Role::kWorker, Purge{10, "tasks"});  // as a worker now: hello first
  m = Next("X");
  e = std::get_if<ErrorMsg>(&m);
  ASSERT_TRUE(e) << OpName(m);
  EXPECT_EQ(e->code, kErrHelloRequired);
}

// Names a peer chooses reach logs and terminals without control characters.
TEST_F(BrokerRolesTest, APeersNameCannotForgeALogLine) {
  Hello("evil\nsub: 0 in flight\x1b[31m", Role::kSubmitter, "client");
  Send("evil\nsub: 0 in flight\x1b[31m", Role::kSubmitter, Purge{10, "tasks"});
  ASSERT_FALSE(log_.empty());
  for (const std::string& line : log_)
    EXPECT_EQ(line.find_first_of("\n\x1b"), std::string::npos) << line;
}

}  // namespace
}  // namespace taskq
