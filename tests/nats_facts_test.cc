// What the NATS store (docs/STORE-NATS.md) relies on JetStream to do, checked
// against the nats-server and libnats this machine has (Debian 12: 2.9.10 and
// 3.4.1) with real servers on 127.0.0.1 (tests/nats_cluster.h). Each test pins
// one fact the design names in its "Verified facts"; when an upgrade changes
// one, the test that fails says which part of the design to look at again.
//
// Every wait is bounded; the AckWaits are short (300 ms) so the file stays fast.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e_util.h"
#include "tests/nats_cluster.h"

namespace taskq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStart{20000};  // a cluster up, or a server back
constexpr int64_t kAckWaitMs = 300;

int64_t Nanos(milliseconds ms) { return ms.count() * 1000000; }

class NatsFactsTest : public ::testing::Test {
 protected:
  // Starts n servers and connects to all of them (js_ is that connection's context).
  void StartCluster(int n) {
    std::string error;
    cluster_ = NatsCluster::Start(n, kStart, &error);
    ASSERT_TRUE(cluster_) << error;
    nc_ = Connect(cluster_->Urls());
    ASSERT_TRUE(nc_);
    js_ = JetStream(nc_.get());
    ASSERT_TRUE(js_);
  }

  NatsPtr<natsConnection> Connect(const std::string& urls) {
    std::string error;
    NatsPtr<natsConnection> nc = NatsConnect(urls, milliseconds(2000), &error);
    EXPECT_TRUE(nc) << error;
    return nc;
  }

  static NatsPtr<jsCtx> JetStream(natsConnection* nc) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 5000;
    jsCtx* js = nullptr;
    const natsStatus s = natsConnection_JetStream(&js, nc, &o);
    EXPECT_EQ(NATS_OK, s) << NatsError(s);
    return NatsPtr<jsCtx>(js);
  }

  // A file stream of 3 replicas (as many as servers, up to 3) on subjects.
  jsErrCode AddStream(const std::string& name, std::vector<const char*> subjects,
                      jsRetentionPolicy retention, jsStreamConfig* extra = nullptr) {
    jsStreamConfig cfg;
    if (extra != nullptr)
      cfg = *extra;
    else
      jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    cfg.Subjects = subjects.data();
    cfg.SubjectsLen = static_cast<int>(subjects.size());
    cfg.Retention = retention;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = std::min(3, cluster_->size());
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&si, js_.get(), &cfg, nullptr, &code);
    NatsPtr<jsStreamInfo> info(si);
    EXPECT_EQ(NATS_OK, s) << "add stream " << name << ": " << NatsError(s) << " code " << code;
    return code;
  }

  // A durable pull consumer, explicit acks; the status of its creation.
  natsStatus AddConsumer(const std::string& stream, const std::string& durable,
                         const std::string& filter, int64_t max_deliver = -1,
                         jsErrCode* code = nullptr) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.FilterSubject = filter.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = Nanos(milliseconds(kAckWaitMs));
    cc.MaxDeliver = max_deliver;
    jsConsumerInfo* ci = nullptr;
    jsErrCode ignored;
    const natsStatus s =
        js_AddConsumer(&ci, js_.get(), stream.c_str(), &cc, nullptr, code ? code : &ignored);
    NatsPtr<jsConsumerInfo> info(ci);
    return s;
  }

  // A subscription bound to the existing durable consumer of stream.
  static NatsPtr<natsSubscription> Bind(jsCtx* js, const std::string& stream,
                                        const std::string& durable, const std::string& filter) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = durable.c_str();
    natsSubscription* sub = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_PullSubscribe(&sub, js, filter.c_str(), durable.c_str(), nullptr, &so, &code);
    EXPECT_EQ(NATS_OK, s) << "bind " << durable << ": " << NatsError(s) << " code " << code;
    return NatsPtr<natsSubscription>(sub);
  }

  // Up to n messages, waiting at most timeout; none on a timeout.
  static std::vector<NatsPtr<natsMsg>> Fetch(natsSubscription* sub, int n, milliseconds timeout) {
    natsMsgList list{nullptr, 0};
    const natsStatus s = natsSubscription_Fetch(&list, sub, n, timeout.count(), nullptr);
    EXPECT_TRUE(s == NATS_OK || s == NATS_TIMEOUT) << NatsError(s);
    std::vector<NatsPtr<natsMsg>> msgs;
    for (int i = 0; i < list.Count; ++i) {
      msgs.emplace_back(list.Msgs[i]);
      list.Msgs[i] = nullptr;
    }
    natsMsgList_Destroy(&list);
    return msgs;
  }

  static NatsPtr<jsMsgMetaData> Meta(natsMsg* m) {
    jsMsgMetaData* meta = nullptr;
    const natsStatus s = natsMsg_GetMetaData(&meta, m);
    EXPECT_EQ(NATS_OK, s) << NatsError(s);
    return NatsPtr<jsMsgMetaData>(meta);
  }

  static std::string Data(natsMsg* m) {
    return std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  }

  // Publishes and waits for the stream's ack; its status, *code and *ack.
  natsStatus Publish(const std::string& subject, const std::string& data,
                     jsPubOptions* opts = nullptr, jsErrCode* code = nullptr,
                     NatsPtr<jsPubAck>* ack = nullptr) {
    jsPubAck* pa = nullptr;
    jsErrCode ignored;
    const natsStatus s = js_Publish(&pa, js_.get(), subject.c_str(), data.data(),
                                    static_cast<int>(data.size()), opts, code ? code : &ignored);
    NatsPtr<jsPubAck> owned(pa);
    if (ack != nullptr) *ack = std::move(owned);
    return s;
  }

  NatsPtr<jsStreamInfo> StreamInfo(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetStreamInfo(&si, js_.get(), stream.c_str(), nullptr, &code);
    EXPECT_EQ(NATS_OK, s) << NatsError(s) << " code " << code;
    return NatsPtr<jsStreamInfo>(si);
  }

  uint64_t StreamMsgs(const std::string& stream) {
    NatsPtr<jsStreamInfo> si = StreamInfo(stream);
    return si ? si->State.Msgs : ~uint64_t{0};
  }

  // True once the stream holds n messages (by 5 s): a WorkQueue stream
  // removes an acknowledged message a moment after the ack is confirmed (the
  // consumer's leader confirms it; the stream applies it as it replicates).
  bool StreamMsgsBecome(const std::string& stream, uint64_t n) {
    return WaitUntil([&] { return StreamMsgs(stream) == n; }, milliseconds(5000));
  }

  int64_t AckPending(const std::string& stream, const std::string& durable) {
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetConsumerInfo(&ci, js_.get(), stream.c_str(), durable.c_str(), nullptr, &code);
    NatsPtr<jsConsumerInfo> info(ci);
    EXPECT_EQ(NATS_OK, s) << NatsError(s) << " code " << code;
    return info ? info->NumAckPending : -1;
  }

  // Acknowledges m from nc by publishing "+ACK" to its reply subject as a
  // request; true once the server confirmed it (as natsMsg_AckSync waits).
  static bool AckFrom(natsConnection* nc, const std::string& reply) {
    const natsStatus s = AckStatus(nc, reply);
    EXPECT_EQ(NATS_OK, s) << "ack from another connection: " << NatsError(s);
    return s == NATS_OK;
  }
  static natsStatus AckStatus(natsConnection* nc, const std::string& reply) {
    natsMsg* raw = nullptr;
    const natsStatus s = natsConnection_RequestString(&raw, nc, reply.c_str(), "+ACK", 1000);
    NatsPtr<natsMsg> confirm(raw);
    return s;
  }

  std::unique_ptr<NatsCluster> cluster_;
  NatsPtr<natsConnection> nc_;
  NatsPtr<jsCtx> js_;
};

// (a) A stream for every queue's tasks, a subject per queue, replicated on
// three servers, messages removed once acknowledged (WorkQueue). A WorkQueue
// stream takes one consumer per subject: a second whose filter overlaps is
// refused, so two masters share a queue by sharing its one durable consumer.
TEST_F(NatsFactsTest, ThreeServersHoldAnR3WorkQueueStreamWithASubjectPerQueue) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  NatsPtr<jsStreamInfo> si = StreamInfo("TASKS");
  ASSERT_TRUE(si && si->Cluster);
  EXPECT_EQ(3, si->Config->Replicas);
  EXPECT_EQ(js_WorkQueuePolicy, si->Config->Retention);
  EXPECT_NE(-1, cluster_->IndexOf(si->Cluster->Leader)) << si->Cluster->Leader;
  EXPECT_EQ(2, si->Cluster->ReplicasLen);

  ASSERT_EQ(NATS_OK, Publish("tq.task.q1", "a"));
  ASSERT_EQ(NATS_OK, Publish("tq.task.q2", "b"));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q1", "tq.task.q1"));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q2", "tq.task.q2"));
  jsErrCode code = static_cast<jsErrCode>(0);
  EXPECT_NE(NATS_OK, AddConsumer("TASKS", "all", "tq.task.>", -1, &code));
  EXPECT_EQ(JSConsumerWQConsumerNotUniqueErr, code);

  NatsPtr<natsSubscription> q1 = Bind(js_.get(), "TASKS", "q1", "tq.task.q1");
  std::vector<NatsPtr<natsMsg>> got = Fetch(q1.get(), 10, milliseconds(2000));
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ("a", Data(got[0].get()));
  EXPECT_EQ(NATS_OK, natsMsg_AckSync(got[0].get(), nullptr, nullptr));
  EXPECT_TRUE(StreamMsgsBecome("TASKS", 1));  // q2's task only: the acknowledged one is gone
}

// (b) Two connections (two masters) bound to one durable pull consumer: every
// message goes to one of them, once.
TEST_F(NatsFactsTest, TwoConnectionsOnOneDurableConsumerShareItsMessagesOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  constexpr int kTasks = 100;
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(NATS_OK, Publish("tq.task.q", std::to_string(i)));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q", "tq.task.q"));

  NatsPtr<natsConnection> other = Connect(cluster_->Urls());
  ASSERT_TRUE(other);
  NatsPtr<jsCtx> other_js = JetStream(other.get());
  NatsPtr<natsSubscription> a = Bind(js_.get(), "TASKS", "q", "tq.task.q");
  NatsPtr<natsSubscription> b = Bind(other_js.get(), "TASKS", "q", "tq.task.q");
  std::map<std::string, int> seen;
  int by_a = 0, by_b = 0;
  const auto end = Clock::now() + milliseconds(10000);
  while (static_cast<int>(seen.size()) < kTasks && Clock::now() < end) {
    for (natsSubscription* sub : {a.get(), b.get()}) {
      for (NatsPtr<natsMsg>& m : Fetch(sub, 7, milliseconds(500))) {
        ++seen[Data(m.get())];
        ++(sub == a.get() ? by_a : by_b);
        ASSERT_EQ(NATS_OK, natsMsg_Ack(m.get(), nullptr));
      }
    }
  }
  EXPECT_EQ(kTasks, static_cast<int>(seen.size()));
  for (const auto& [task, times] : seen) EXPECT_EQ(1, times) << task;
  EXPECT_GT(by_a, 0);
  EXPECT_GT(by_b, 0);
  EXPECT_TRUE(Fetch(b.get(), 1, milliseconds(kAckWaitMs * 3)).empty()) << "nothing delivered twice";
}

// (c) A message not acknowledged comes back after AckWait, with
// NumDelivered one higher; after MaxDeliver deliveries it is not delivered
// again but stays in the WorkQueue stream (only an ack, or a delete, removes it).
TEST_F(NatsFactsTest, UnacknowledgedMessageComesBackAfterAckWaitCountingDeliveries) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  ASSERT_EQ(NATS_OK, Publish("tq.task.q", "t"));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q", "tq.task.q", /*max_deliver=*/2));
  NatsPtr<natsSubscription> sub = Bind(js_.get(), "TASKS", "q", "tq.task.q");

  std::vector<NatsPtr<natsMsg>> first = Fetch(sub.get(), 1, milliseconds(2000));
  ASSERT_EQ(1u, first.size());
  const auto taken = Clock::now();
  NatsPtr<jsMsgMetaData> m1 = Meta(first[0].get());
  ASSERT_TRUE(m1);
  EXPECT_EQ(1u, m1->NumDelivered);

  std::vector<NatsPtr<natsMsg>> second = Fetch(sub.get(), 1, milliseconds(5000));
  ASSERT_EQ(1u, second.size());
  EXPECT_GE(Clock::now() - taken, milliseconds(kAckWaitMs - 50));
  NatsPtr<jsMsgMetaData> m2 = Meta(second[0].get());
  ASSERT_TRUE(m2);
  EXPECT_EQ(2u, m2->NumDelivered);
  EXPECT_EQ(m1->Sequence.Stream, m2->Sequence.Stream);
  EXPECT_NE(std::string(natsMsg_GetReply(first[0].get())), natsMsg_GetReply(second[0].get()))
      << "each delivery has its own reply subject";

  EXPECT_TRUE(Fetch(sub.get(), 1, milliseconds(kAckWaitMs * 4)).empty()) << "MaxDeliver 2";
  EXPECT_EQ(1u, StreamMsgs("TASKS")) << "kept, not delivered again";
}

// (d) An ack published to a message's reply subject from another connection
// than the one that fetched it is accepted, also once that connection is
// closed: a master can finish a lease another master took. An ack sent with
// the reply subject of an earlier delivery, after the message was delivered
// again, is accepted too: the server acks the stream sequence, whichever
// delivery the subject names, so a late ack ends the newer lease as well.
TEST_F(NatsFactsTest, AckFromAnotherConnectionOrAnEarlierDeliveryIsAccepted) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  for (const char* t : {"t1", "t2", "t3"}) ASSERT_EQ(NATS_OK, Publish("tq.task.q", t));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q", "tq.task.q"));

  NatsPtr<natsConnection> first = Connect(cluster_->Urls());
  ASSERT_TRUE(first);
  NatsPtr<jsCtx> first_js = JetStream(first.get());
  NatsPtr<natsSubscription> sub = Bind(first_js.get(), "TASKS", "q", "tq.task.q");
  std::vector<NatsPtr<natsMsg>> got = Fetch(sub.get(), 2, milliseconds(2000));
  ASSERT_EQ(2u, got.size());
  const std::string reply1 = natsMsg_GetReply(got[0].get());
  const std::string reply2 = natsMsg_GetReply(got[1].get());
  EXPECT_EQ(0u, reply1.rfind("$JS.ACK.TASKS.q.", 0)) << reply1;

  EXPECT_TRUE(AckFrom(nc_.get(), reply1));  // the fetching connection still open
  got.clear();
  sub.reset();
  first_js.reset();
  first.reset();  // the first "master" is gone
  EXPECT_TRUE(AckFrom(nc_.get(), reply2));
  EXPECT_TRUE(StreamMsgsBecome("TASKS", 1));
  EXPECT_EQ(0, AckPending("TASKS", "q"));

  // t3: delivered, its lease let expire, delivered again, then acked with
  // the first delivery's reply subject.
  NatsPtr<natsSubscription> again = Bind(js_.get(), "TASKS", "q", "tq.task.q");
  std::vector<NatsPtr<natsMsg>> d1 = Fetch(again.get(), 1, milliseconds(2000));
  ASSERT_EQ(1u, d1.size());
  std::vector<NatsPtr<natsMsg>> d2 = Fetch(again.get(), 1, milliseconds(5000));
  ASSERT_EQ(1u, d2.size());
  EXPECT_EQ(2u, Meta(d2[0].get())->NumDelivered);
  EXPECT_TRUE(AckFrom(nc_.get(), natsMsg_GetReply(d1[0].get())));
  EXPECT_TRUE(StreamMsgsBecome("TASKS", 0)) << "the stale ack removed the message";
  EXPECT_EQ(0, AckPending("TASKS", "q"));
  EXPECT_TRUE(Fetch(again.get(), 1, milliseconds(kAckWaitMs * 3)).empty());
}

// (e) One outcome per task, whoever publishes it: the first publish to
// tq.outcome.<task> with jsPubOptions.ExpectNoMessage (the header
// Nats-Expected-Last-Subject-Sequence: 0) is stored, a second is refused
// (10071). ExpectLastSubjectSeq = 0 means "not set" to libnats and guards
// nothing. The guard holds only while the first outcome stays in the stream:
// once it is deleted, a second is taken. A Nats-Msg-Id does not refuse the
// second, it drops it and says Duplicate, and within its window only.
TEST_F(NatsFactsTest, OnlyTheFirstOutcomePerTaskIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Duplicates = Nanos(milliseconds(500));
  AddStream("OUTCOMES", {"tq.outcome.>"}, js_LimitsPolicy, &cfg);
  ASSERT_EQ(NATS_OK, Publish("tq.outcome.q.0", "another task's outcome"));

  jsPubOptions first;
  jsPubOptions_Init(&first);
  first.ExpectNoMessage = true;
  jsErrCode code = static_cast<jsErrCode>(0);
  NatsPtr<jsPubAck> ack;
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.1", "ok from m1", &first, &code, &ack));
  EXPECT_NE(NATS_OK, Publish("tq.outcome.q.1", "ok from m2", &first, &code));
  EXPECT_EQ(JSStreamWrongLastSequenceErr, code);

  jsPubOptions zero;
  jsPubOptions_Init(&zero);
  zero.ExpectLastSubjectSeq = 0;
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.2", "one", &zero));
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.2", "two", &zero)) << "0 is not a guard";

  // Deleted, the first outcome guards nothing any more.
  ASSERT_TRUE(ack);
  ASSERT_EQ(NATS_OK, js_DeleteMsg(js_.get(), "OUTCOMES", ack->Sequence, nullptr, &code));
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.1", "ok from m3", &first, &code)) << "guard gone";

  // Nats-Msg-Id: the second is acknowledged as a duplicate and not stored.
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = "q.4";
  ASSERT_EQ(NATS_OK, Publish("tq.outcome.q.4", "first", &po, &code, &ack));
  EXPECT_FALSE(ack->Duplicate);
  ASSERT_TRUE(StreamMsgsBecome("OUTCOMES", 5));  // q.0, q.2 twice, q.1 again, q.4
  const uint64_t before = StreamMsgs("OUTCOMES");
  ASSERT_EQ(NATS_OK, Publish("tq.outcome.q.4", "second", &po, &code, &ack));
  EXPECT_TRUE(ack->Duplicate);
  EXPECT_EQ(before, StreamMsgs("OUTCOMES"));
  // ... within its window (500 ms here) only: asked again until one is stored.
  const auto end = Clock::now() + milliseconds(5000);
  while (ack->Duplicate && Clock::now() < end) {
    ASSERT_EQ(NATS_OK, Publish("tq.outcome.q.4", "late", &po, &code, &ack));
    if (ack->Duplicate) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_FALSE(ack->Duplicate) << "a duplicate after the window is stored";
}

// (e') The same guard set by the stream instead of each publisher:
// DiscardNewPerSubject with one message per subject refuses a second.
TEST_F(NatsFactsTest, StreamWithOneMessagePerSubjectRefusesASecondOutcome) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.MaxMsgsPerSubject = 1;
  cfg.Discard = js_DiscardNew;
  cfg.DiscardNewPerSubject = true;
  AddStream("OUTCOMES", {"tq.outcome.>"}, js_LimitsPolicy, &cfg);
  jsErrCode code = static_cast<jsErrCode>(0);
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.1", "first", nullptr, &code));
  EXPECT_NE(NATS_OK, Publish("tq.outcome.q.1", "second", nullptr, &code));
  EXPECT_NE(0, code) << "refused with a JetStream error code";
  EXPECT_EQ(NATS_OK, Publish("tq.outcome.q.2", "other task", nullptr, &code));
  EXPECT_TRUE(StreamMsgsBecome("OUTCOMES", 2));
}

// (e'') A counter kept as the one message of its subject (MaxMsgsPerSubject
// 1) moves by compare-and-set: a publish with ExpectLastSubjectSeq = the
// sequence its writer read is stored only if that message is still the
// last; a writer that read before another's update is refused (10071) and
// succeeds once it reads again. The old value's removal (one message per
// subject) does not weaken the guard: the last message is the one compared.
// One server: the check is the stream leader's, whatever the replicas.
TEST_F(NatsFactsTest, CompareAndSetOnTheLastSequenceRefusesAStaleWriter) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.MaxMsgsPerSubject = 1;
  AddStream("META", {"tq.ids"}, js_LimitsPolicy, &cfg);
  NatsPtr<jsPubAck> ack;
  ASSERT_EQ(NATS_OK, Publish("tq.ids", "1", nullptr, nullptr, &ack));
  const uint64_t read_by_both = ack->Sequence;

  jsPubOptions cas;
  jsPubOptions_Init(&cas);
  cas.ExpectLastSubjectSeq = read_by_both;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(NATS_OK, Publish("tq.ids", "5 (first writer)", &cas, &code, &ack));
  const uint64_t updated = ack->Sequence;
  EXPECT_NE(NATS_OK, Publish("tq.ids", "9 (stale writer)", &cas, &code));
  EXPECT_EQ(JSStreamWrongLastSequenceErr, code);

  natsMsg* raw = nullptr;
  ASSERT_EQ(NATS_OK, js_GetLastMsg(&raw, js_.get(), "META", "tq.ids", nullptr, &code));
  NatsPtr<natsMsg> last(raw);
  EXPECT_EQ("5 (first writer)", Data(last.get()));
  EXPECT_EQ(updated, natsMsg_GetSequence(last.get()));
  EXPECT_EQ(1u, StreamMsgs("META")) << "the old value is gone, one message per subject";

  cas.ExpectLastSubjectSeq = updated;  // the stale writer read again
  EXPECT_EQ(NATS_OK, Publish("tq.ids", "9 (read again)", &cas, &code));
}

// The fence of task_master --store (F15): a publish with ExpectLastSeq =
// the stream's last sequence is stored only while no other message came
// after it, whatever its subject; a resend of a stored publish, with the
// same MsgId and expectation (its ack was lost), is answered as a duplicate
// with the first one's sequence, not refused: the server checks the MsgId
// before the expected sequence. A purge does not move the last sequence.
TEST_F(NatsFactsTest, ExpectLastSeqFencesEverySubjectAndAResendIsADuplicate) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  AddStream("LOG", {"log.>"}, js_LimitsPolicy);
  NatsPtr<jsPubAck> ack;
  ASSERT_EQ(NATS_OK, Publish("log.ctl", "takeover", nullptr, nullptr, &ack));
  const uint64_t mine = ack->Sequence;

  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.ExpectLastSeq = mine;
  po.MsgId = "w1.1";
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(NATS_OK, Publish("log.seg.1", "records", &po, &code, &ack));
  const uint64_t stored = ack->Sequence;
  ASSERT_EQ(NATS_OK, Publish("log.seg.1", "records", &po, &code, &ack)) << "a resend";
  EXPECT_TRUE(ack->Duplicate);
  EXPECT_EQ(stored, ack->Sequence);

  // Another writer takes over (on another subject): the first is fenced out.
  jsPubOptions other;
  jsPubOptions_Init(&other);
  other.ExpectLastSeq = stored;
  ASSERT_EQ(NATS_OK, Publish("log.ctl", "takeover by w2", &other, &code, &ack));
  const uint64_t theirs = ack->Sequence;
  jsPubOptions stale;
  jsPubOptions_Init(&stale);
  stale.ExpectLastSeq = stored;
  stale.MsgId = "w1.2";
  EXPECT_NE(NATS_OK, Publish("log.seg.1", "late records", &stale, &code));
  EXPECT_EQ(JSStreamWrongLastSequenceErr, code);

  // A purge leaves the last sequence where it was: the fence still holds.
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Purge.Subject = "log.seg.1";
  ASSERT_EQ(NATS_OK, js_PurgeStream(js_.get(), "LOG", &o, &code));
  EXPECT_NE(NATS_OK, Publish("log.seg.1", "late records", &stale, &code));
  jsPubOptions next;
  jsPubOptions_Init(&next);
  next.ExpectLastSeq = theirs;
  EXPECT_EQ(NATS_OK, Publish("log.seg.2", "w2's records", &next, &code));
}

// (f) One server of three killed (the stream's leader) and started again:
// the R3 stream elects another leader, takes acks and publishes again within
// a bounded time, the server comes back current, and nothing whose publish
// was acknowledged is lost. Publishes carry a Nats-Msg-Id, so one retried
// after a timeout whose first try was in fact stored is not stored twice.
TEST_F(NatsFactsTest, R3StreamLosesNothingAcknowledgedWhenItsLeaderIsKilled) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "q", "tq.task.q"));
  const auto publish = [&](int i) {  // retried until acknowledged, or 15 s
    jsPubOptions po;
    jsPubOptions_Init(&po);
    const std::string id = "t" + std::to_string(i);
    po.MsgId = id.c_str();
    po.MaxWait = 1000;
    return WaitUntil([&] { return Publish("tq.task.q", id, &po) == NATS_OK; }, milliseconds(15000));
  };
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(publish(i));
  NatsPtr<natsSubscription> sub = Bind(js_.get(), "TASKS", "q", "tq.task.q");
  std::vector<NatsPtr<natsMsg>> leased = Fetch(sub.get(), 10, milliseconds(2000));
  ASSERT_EQ(10u, leased.size());

  const int leader = cluster_->IndexOf(StreamInfo("TASKS")->Cluster->Leader);
  ASSERT_NE(-1, leader);
  // The test's own connection goes to the two that stay.
  std::string survivors;
  for (int i = 0; i < 3; ++i)
    if (i != leader) survivors += (survivors.empty() ? "" : ",") + cluster_->Url(i);
  nc_ = Connect(survivors);
  ASSERT_TRUE(nc_);
  js_ = JetStream(nc_.get());
  sub = Bind(js_.get(), "TASKS", "q", "tq.task.q");
  ASSERT_TRUE(cluster_->Kill(leader, milliseconds(5000)));
  const auto killed = Clock::now();

  // Acked through the survivors; "no responders" until the consumer has a
  // leader again, when it was on the server killed.
  for (NatsPtr<natsMsg>& m : leased) {
    natsStatus s = NATS_OK;
    const auto acked = [&] {
      return (s = AckStatus(nc_.get(), natsMsg_GetReply(m.get()))) == NATS_OK;
    };
    ASSERT_TRUE(WaitUntil(acked, milliseconds(15000))) << NatsError(s);
  }
  const auto acks_back = Clock::now() - killed;
  for (int i = 50; i < 100; ++i) ASSERT_TRUE(publish(i));
  const auto publishes_back = Clock::now() - killed;
  std::string error;
  ASSERT_TRUE(cluster_->Restart(leader, milliseconds(15000), &error)) << error;
  EXPECT_TRUE(WaitUntil(
      [&] {
        NatsPtr<jsStreamInfo> si = StreamInfo("TASKS");
        if (!si || !si->Cluster || si->Cluster->ReplicasLen != 2) return false;
        for (int i = 0; i < 2; ++i)
          if (!si->Cluster->Replicas[i]->Current || si->Cluster->Replicas[i]->Offline) return false;
        return true;
      },
      milliseconds(15000)))
      << "the restarted server is a current replica again";

  std::set<std::string> rest;
  const auto end = Clock::now() + milliseconds(15000);
  while (rest.size() < 90 && Clock::now() < end)
    for (NatsPtr<natsMsg>& m : Fetch(sub.get(), 50, milliseconds(1000))) {
      rest.insert(Data(m.get()));
      EXPECT_EQ(NATS_OK, natsMsg_AckSync(m.get(), nullptr, nullptr));
    }
  EXPECT_EQ(90u, rest.size()) << "the 100 published less the 10 acked";
  EXPECT_TRUE(StreamMsgsBecome("TASKS", 0));
  const auto ms = [](Clock::duration d) {
    return static_cast<int>(std::chrono::duration_cast<milliseconds>(d).count());
  };
  RecordProperty("acks_back_ms", ms(acks_back));  // in the XML report, with --gtest_output
  RecordProperty("publishes_back_ms", ms(publishes_back));
}

// (g) Where nothing listens, a connection is refused and libnats fails at
// once with NATS_NO_SERVER ("No server available for connection"), whatever
// the timeout; a server that accepts but never speaks costs the connect
// timeout (natsOptions_SetTimeout, 2 s by default) for each URL.
TEST_F(NatsFactsTest, ConnectingWhereNoServerIsFailsWithNoServer) {
  int fds[3];
  std::string urls;
  for (int& fd : fds)
    urls += (urls.empty() ? "" : ",") + std::string("nats://127.0.0.1:") +
            std::to_string(ReserveLoopbackPort(&fd));
  std::string error;
  natsStatus status = NATS_OK;
  auto start = Clock::now();
  EXPECT_FALSE(NatsConnect(urls, milliseconds(2000), &error, &status));
  EXPECT_LT(Clock::now() - start, milliseconds(500)) << "refused at once";
  EXPECT_EQ(NATS_NO_SERVER, status);
  EXPECT_NE(std::string::npos, error.find("No server available for connection")) << error;

  ASSERT_EQ(0, listen(fds[0], 8));  // accepts (the kernel does), never writes INFO
  const std::string silent = urls.substr(0, urls.find(','));
  start = Clock::now();
  EXPECT_FALSE(NatsConnect(silent, milliseconds(300), &error, &status));
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(2000));
  EXPECT_EQ(NATS_TIMEOUT, status) << error;
  for (int fd : fds) close(fd);
}

// (h) Peek without a consumer (F2 forbids a second one on a WorkQueue
// subject): on a stream with AllowDirect, js_DirectGetMsg with
// NextBySubject, a wildcard filter, walks a queue's messages in stream order
// from a sequence on, each with its subject and sequence, a fetched (leased)
// one included, from any replica. A replica answers from what it has
// applied, so a message just acknowledged may still be seen for a moment:
// the walk is waited for until it shows what the leader has.
TEST_F(NatsFactsTest, DirectGetWalksAQueueWithoutAConsumer) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.AllowDirect = true;
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy, &cfg);
  for (const char* subject : {"tq.task.q.a", "tq.task.r.a", "tq.task.q.b", "tq.task.q.a"})
    ASSERT_EQ(NATS_OK, Publish(subject, subject));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "qa", "tq.task.q.a"));
  NatsPtr<natsSubscription> sub = Bind(js_.get(), "TASKS", "qa", "tq.task.q.a");
  std::vector<NatsPtr<natsMsg>> leased = Fetch(sub.get(), 1, milliseconds(2000));
  ASSERT_EQ(1u, leased.size());

  // "subject@sequence " of every message of queue q, walked from sequence 1.
  const auto walk = [&] {
    std::string seen;
    for (uint64_t from = 1;;) {
      jsDirectGetMsgOptions dg;
      jsDirectGetMsgOptions_Init(&dg);
      dg.Sequence = from;
      dg.NextBySubject = "tq.task.q.>";
      natsMsg* raw = nullptr;
      const natsStatus s = js_DirectGetMsg(&raw, js_.get(), "TASKS", nullptr, &dg);
      NatsPtr<natsMsg> m(raw);
      if (s == NATS_NOT_FOUND) return seen;
      EXPECT_EQ(NATS_OK, s) << NatsError(s);
      if (s != NATS_OK) return seen + "(error)";
      seen += std::string(natsMsg_GetSubject(m.get())) + "@" +
              std::to_string(natsMsg_GetSequence(m.get())) + " ";
      from = natsMsg_GetSequence(m.get()) + 1;
    }
  };
  std::string seen;
  EXPECT_TRUE(
      WaitUntil([&] { return (seen = walk()) == "tq.task.q.a@1 tq.task.q.b@3 tq.task.q.a@4 "; },
                milliseconds(5000)))
      << seen;
  ASSERT_EQ(NATS_OK, natsMsg_AckSync(leased[0].get(), nullptr, nullptr));
  EXPECT_TRUE(WaitUntil([&] { return (seen = walk()) == "tq.task.q.b@3 tq.task.q.a@4 "; },
                        milliseconds(5000)))
      << "the acknowledged one is gone from every replica: " << seen;
}

// (i) js_PurgeStream with a subject filter on an R3 WorkQueue stream removes
// that queue's messages only, a leased one included; the ack of the leased
// one afterwards is answered (nothing left to ack, no error) and the other
// queues' messages are still delivered.
TEST_F(NatsFactsTest, PurgeWithASubjectRemovesOneQueueOnly) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  AddStream("TASKS", {"tq.task.>"}, js_WorkQueuePolicy);
  for (const char* subject : {"tq.task.q.a", "tq.task.q.b", "tq.task.r.a", "tq.task.q.a"})
    ASSERT_EQ(NATS_OK, Publish(subject, subject));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "qa", "tq.task.q.a"));
  ASSERT_EQ(NATS_OK, AddConsumer("TASKS", "ra", "tq.task.r.a"));
  NatsPtr<natsSubscription> qa = Bind(js_.get(), "TASKS", "qa", "tq.task.q.a");
  std::vector<NatsPtr<natsMsg>> leased = Fetch(qa.get(), 1, milliseconds(2000));
  ASSERT_EQ(1u, leased.size());

  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Purge.Subject = "tq.task.q.>";
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_PurgeStream(js_.get(), "TASKS", &o, &code);
  ASSERT_EQ(NATS_OK, s) << NatsError(s) << " code " << code;
  EXPECT_TRUE(StreamMsgsBecome("TASKS", 1)) << "r's message only";
  EXPECT_TRUE(AckFrom(nc_.get(), natsMsg_GetReply(leased[0].get())));
  EXPECT_TRUE(Fetch(qa.get(), 1, milliseconds(kAckWaitMs * 3)).empty()) << "nothing of q again";
  NatsPtr<natsSubscription> ra = Bind(js_.get(), "TASKS", "ra", "tq.task.r.a");
  std::vector<NatsPtr<natsMsg>> other = Fetch(ra.get(), 1, milliseconds(2000));
  ASSERT_EQ(1u, other.size());
  EXPECT_EQ("tq.task.r.a", Data(other[0].get()));
}

}  // namespace
}  // namespace taskq::testing
