// NatsStore (master/nats_store.h) against a real nats-server on 127.0.0.1
// (tests/nats_cluster.h): opening, the id counter, batches on their lanes and
// the outcome chain, with two stores standing for two masters. One server
// each (the store asks nothing of JetStream that depends on replicas, which
// tests/nats_facts_test.cc checks on three); AckWait is 400 ms so a batch
// left unacked comes back quickly. Every wait is bounded.
#include "master/nats_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "master/nats_subject.h"
#include "tests/nats_cluster.h"

namespace taskq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStart{20000};
constexpr milliseconds kAckWait{400};

class NatsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    cluster_ = NatsCluster::Start(1, kStart, &error);
    ASSERT_TRUE(cluster_) << error;
  }

  static NatsStoreOptions Options() {
    NatsStoreOptions o;
    o.ack_wait = kAckWait;
    o.connect_timeout = milliseconds(2000);
    return o;
  }

  // A store on the cluster (a "master"); fails the test if it cannot open.
  std::unique_ptr<NatsStore> OpenStore(const NatsStoreOptions& options = Options()) {
    Result<std::unique_ptr<NatsStore>> store = NatsStore::Open(cluster_->Urls(), options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static TaskBatch Batch(uint64_t block, std::vector<std::string> items,
                         const std::string& queue = "tasks") {
    TaskBatch b;
    b.queue = queue;
    b.kind = "render";
    b.first_id = block << kBatchShift;
    b.items = std::move(items);
    return b;
  }

  static FetchedBatch MustFetch(NatsStore* store, const std::string& queue,
                                milliseconds wait = milliseconds(5000)) {
    Result<std::optional<FetchedBatch>> got = store->FetchBatch(queue, "render", wait);
    EXPECT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(got.ok() && got->has_value()) << "no batch within " << wait.count() << " ms";
    return got.ok() && got->has_value() ? **got : FetchedBatch{};
  }

  static bool NothingToFetch(NatsStore* store, const std::string& queue) {
    Result<std::optional<FetchedBatch>> got = store->FetchBatch(queue, "render", kAckWait * 2);
    EXPECT_TRUE(got.ok()) << got.status().message();
    return got.ok() && !got->has_value();
  }

  static OutcomeChunk Chunk(uint64_t batch, uint64_t task, const std::string& outcome) {
    OutcomeChunk c;
    c.batch = batch;
    c.SetDone(task);
    c.outcomes.push_back({task, outcome});
    return c;
  }

  std::unique_ptr<NatsCluster> cluster_;
};

TEST(NatsStoreOpenTest, RefusesClearlyWhenNoServerListens) {
  int fd = -1;
  const std::string url = "nats://127.0.0.1:" + std::to_string(ReserveLoopbackPort(&fd));
  const auto start = Clock::now();
  Result<std::unique_ptr<NatsStore>> store = NatsStore::Open(url, NatsStoreOptions{});
  EXPECT_LT(Clock::now() - start, milliseconds(1500)) << "refused at once";
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(Code::kUnavailable, store.status().code());
  EXPECT_EQ(0u, store.status().message().find("no NATS server answered at " + url + ": "))
      << store.status().message();

  NatsStoreOptions with_password;
  with_password.user = "bob";
  with_password.password = "s3cret@x";
  const std::string secret_url = "nats://bob:s3cret@x@" + url.substr(7);  // an '@' in it too
  store = NatsStore::Open(secret_url + "," + url, with_password);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(std::string::npos, store.status().message().find("s3cret")) << store.status().message();
  EXPECT_EQ(std::string::npos, store.status().message().find("x@")) << store.status().message();
  EXPECT_NE(std::string::npos, store.status().message().find(url + "," + url))
      << store.status().message();
  close(fd);
}

TEST_F(NatsStoreTest, StreamsAreCreatedOnceAndASecondOpenSucceeds) {
  std::unique_ptr<NatsStore> first = OpenStore();
  std::unique_ptr<NatsStore> second = OpenStore();
  ASSERT_TRUE(first && second);

  std::string error;
  NatsPtr<natsConnection> nc = NatsConnect(cluster_->Urls(), milliseconds(2000), &error);
  ASSERT_TRUE(nc) << error;
  jsCtx* raw = nullptr;
  ASSERT_EQ(NATS_OK, natsConnection_JetStream(&raw, nc.get(), nullptr));
  NatsPtr<jsCtx> js(raw);
  const auto config = [&](const char* stream) {
    jsStreamInfo* si = nullptr;
    EXPECT_EQ(NATS_OK, js_GetStreamInfo(&si, js.get(), stream, nullptr, nullptr)) << stream;
    return NatsPtr<jsStreamInfo>(si);
  };
  EXPECT_EQ(js_WorkQueuePolicy, config(kTasksStream)->Config->Retention);
  EXPECT_EQ(js_LimitsPolicy, config(kOutStream)->Config->Retention);
  EXPECT_EQ(1, config(kMetaStream)->Config->MaxMsgsPerSubject);

  NatsStoreOptions other = Options();
  other.duplicate_window = milliseconds(60000);
  Result<std::unique_ptr<NatsStore>> differs = NatsStore::Open(cluster_->Urls(), other);
  ASSERT_FALSE(differs.ok());
  EXPECT_EQ(Code::kInvalid, differs.status().code());
  EXPECT_NE(std::string::npos, differs.status().message().find("another configuration"))
      << differs.status().message();

  other = Options();
  other.replicas = 3;  // on one server
  differs = NatsStore::Open(cluster_->Urls(), other);
  ASSERT_FALSE(differs.ok());
  EXPECT_NE(std::string::npos, differs.status().message().find("stream TQ_TASKS"))
      << differs.status().message();  // "replicas > 1 not supported in non-clustered mode"
}

// The one test on three servers: streams of three replicas, two stores on
// different servers sharing a lane and the counter.
TEST(NatsStoreClusterTest, TwoStoresOnDifferentServersOfThreeShareALane) {
  std::string error;
  std::unique_ptr<NatsCluster> cluster = NatsCluster::Start(3, kStart, &error);
  ASSERT_TRUE(cluster) << error;
  NatsStoreOptions o;
  o.replicas = 3;
  Result<std::unique_ptr<NatsStore>> a = NatsStore::Open(cluster->Url(0), o);
  Result<std::unique_ptr<NatsStore>> b = NatsStore::Open(cluster->Url(2), o);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  Result<IdBlocks> ids_a = (*a)->ReserveIds(4096), ids_b = (*b)->ReserveIds(4096);
  ASSERT_TRUE(ids_a.ok() && ids_b.ok());
  EXPECT_EQ(ids_a->first_block + 4096, ids_b->first_block);

  TaskBatch batch;
  batch.queue = "tasks";
  batch.kind = "k";
  batch.first_id = ids_b->first_id();
  batch.items = {"t"};
  Result<PublishedBatch> put = (*a)->PublishBatch(batch);
  ASSERT_TRUE(put.ok()) << put.status().message();
  Result<std::optional<FetchedBatch>> got = (*b)->FetchBatch("tasks", "k", milliseconds(5000));
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().message();
  EXPECT_EQ(batch.first_id, (*got)->batch.first_id);
  EXPECT_TRUE((*a)->Ack((*got)->ack_subject).ok()) << "acked by the other store";
}

TEST_F(NatsStoreTest, IdBlocksFromTwoStoresNeverOverlap) {
  constexpr int kRounds = 60;
  std::vector<IdBlocks> got[2];
  std::string failures[2];
  const auto reserve = [&](int m) {
    std::unique_ptr<NatsStore> store = OpenStore();
    if (!store) return;
    for (int i = 0; i < kRounds; ++i) {
      Result<IdBlocks> blocks = store->ReserveIds(1 + i % 4);
      if (!blocks.ok()) {
        failures[m] = blocks.status().message();
        return;
      }
      got[m].push_back(*blocks);
    }
  };
  std::thread a(reserve, 0), b(reserve, 1);
  a.join();
  b.join();
  ASSERT_EQ("", failures[0] + failures[1]);
  ASSERT_EQ(kRounds, static_cast<int>(got[0].size()));
  ASSERT_EQ(kRounds, static_cast<int>(got[1].size()));
  std::vector<IdBlocks> all = got[0];
  all.insert(all.end(), got[1].begin(), got[1].end());
  std::sort(all.begin(), all.end(),
            [](const IdBlocks& x, const IdBlocks& y) { return x.first_block < y.first_block; });
  uint64_t next = 1;  // block 0 is never handed out
  for (const IdBlocks& blocks : all) {
    EXPECT_EQ(next, blocks.first_block) << "a gap or an overlap";
    next = blocks.first_block + blocks.count;
  }
  EXPECT_EQ(all.front().first_id(), kBatchTasks);
}

TEST_F(NatsStoreTest, BatchIsPublishedFetchedAndAcked) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  Result<PublishedBatch> put = store->PublishBatch(Batch(3, {"a", "b", "c"}, "job.7"));
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_FALSE(put->duplicate);

  const FetchedBatch got = MustFetch(store.get(), "job.7");
  EXPECT_EQ(3u * kBatchTasks, got.batch.first_id);
  EXPECT_EQ((std::vector<std::string>{"a", "b", "c"}), got.batch.items);
  EXPECT_EQ("job.7", got.batch.queue);
  EXPECT_EQ(1u, got.delivered);
  EXPECT_EQ(put->sequence, got.sequence);
  ASSERT_TRUE(store->InProgress(got.ack_subject).ok());
  ASSERT_TRUE(store->Ack(got.ack_subject).ok());
  EXPECT_TRUE(NothingToFetch(store.get(), "job.7")) << "acked: not delivered again";
  EXPECT_EQ(Code::kInvalid, store->PublishBatch(Batch(5, {"a"}, "")).status().code())
      << "an empty queue name makes no subject";
}

TEST_F(NatsStoreTest, BatchNotAckedGoesToTheOtherStoreAfterAckWait) {
  std::unique_ptr<NatsStore> first = OpenStore(), second = OpenStore();
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->PublishBatch(Batch(4, {"x"})).ok());
  const FetchedBatch taken = MustFetch(first.get(), "tasks");
  const auto at = Clock::now();
  ASSERT_EQ(1u, taken.delivered);

  const FetchedBatch again = MustFetch(second.get(), "tasks");  // first is "dead"
  EXPECT_GE(Clock::now() - at, kAckWait - milliseconds(50));
  EXPECT_EQ(2u, again.delivered);
  EXPECT_EQ(taken.sequence, again.sequence);
  EXPECT_EQ((std::vector<std::string>{"x"}), again.batch.items);
  ASSERT_TRUE(second->Ack(again.ack_subject).ok());
  EXPECT_TRUE(NothingToFetch(first.get(), "tasks"));
}

TEST_F(NatsStoreTest, BatchPublishedTwiceIsStoredOnce) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  Result<PublishedBatch> first = store->PublishBatch(Batch(9, {"once"}));
  Result<PublishedBatch> resent = store->PublishBatch(Batch(9, {"once"}));  // ack "lost"
  ASSERT_TRUE(first.ok() && resent.ok());
  EXPECT_FALSE(first->duplicate);
  EXPECT_TRUE(resent->duplicate);
  EXPECT_EQ(first->sequence, resent->sequence);
  const FetchedBatch got = MustFetch(store.get(), "tasks");
  ASSERT_TRUE(store->Ack(got.ack_subject).ok());
  EXPECT_TRUE(NothingToFetch(store.get(), "tasks")) << "stored once";
}

// Two masters append to batch K's chain, each after the link it last saw:
// at every step exactly one wins and the other learns it lost K.
TEST_F(NatsStoreTest, ChainFenceLetsOneStoreWinEachStep) {
  std::unique_ptr<NatsStore> stores[2] = {OpenStore(), OpenStore()};
  ASSERT_TRUE(stores[0] && stores[1]);
  constexpr uint64_t kBatch = 12;
  Result<std::optional<StoredChunk>> none = stores[1]->LastChunk("results", kBatch);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_FALSE(none->has_value());

  uint64_t previous = 0;
  int wins[2] = {0, 0};
  for (int step = 0; step < 8; ++step) {
    ChunkWrite wrote[2];
    std::string failures[2];
    const auto append = [&](int m) {
      const uint64_t task = kBatch * kBatchTasks + step;
      Result<ChunkWrite> w = stores[m]->AppendChunk(
          "results", Chunk(kBatch, task, "by " + std::to_string(m)), previous);
      if (w.ok())
        wrote[m] = *w;
      else
        failures[m] = w.status().message();
    };
    std::thread a(append, 0), b(append, 1);
    a.join();
    b.join();
    ASSERT_EQ("", failures[0] + failures[1]);
    ASSERT_NE(wrote[0].appended, wrote[1].appended) << "step " << step << ": exactly one wins";
    const int winner = wrote[0].appended ? 0 : 1;
    ++wins[winner];
    EXPECT_GT(wrote[winner].sequence, previous);
    previous = wrote[winner].sequence;

    Result<std::optional<StoredChunk>> last = stores[1 - winner]->LastChunk("results", kBatch);
    ASSERT_TRUE(last.ok() && last->has_value());
    EXPECT_EQ(previous, (*last)->sequence);
    ASSERT_EQ(1u, (*last)->chunk.outcomes.size());
    EXPECT_EQ("by " + std::to_string(winner), (*last)->chunk.outcomes[0].bytes);
  }
  RecordProperty("wins_0", wins[0]);
}

// A chunk sent again after its ack was lost (same store, same link) is
// reported appended, at the sequence of the first send, and stored once.
TEST_F(NatsStoreTest, ChunkResentAfterALostAckIsAppendedOnce) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  const OutcomeChunk chunk = Chunk(20, 20 * kBatchTasks + 1, "ok");
  Result<ChunkWrite> first = store->AppendChunk("results", chunk, 0);
  Result<ChunkWrite> resent = store->AppendChunk("results", chunk, 0);
  ASSERT_TRUE(first.ok() && resent.ok()) << first.status().message() << resent.status().message();
  EXPECT_TRUE(first->appended);
  EXPECT_TRUE(resent->appended) << "a resend is not a lost ownership";
  EXPECT_EQ(first->sequence, resent->sequence);
  Result<ChunkWrite> next = store->AppendChunk("results", chunk, first->sequence);
  ASSERT_TRUE(next.ok() && next->appended);
  EXPECT_GT(next->sequence, first->sequence) << "the chain goes on after the resent link";
}

TEST_F(NatsStoreTest, CollectorFetchesTheChunksOfItsReplyQueueWhichStayForTheFence) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->AppendChunk("job.1", Chunk(30, 30 * kBatchTasks, "a"), 0).ok());
  ASSERT_TRUE(store->AppendChunk("job.2", Chunk(31, 31 * kBatchTasks, "other job"), 0).ok());
  Result<ChunkWrite> second = store->AppendChunk("job.1", Chunk(32, 32 * kBatchTasks, "b"), 0);
  ASSERT_TRUE(second.ok() && second->appended);

  for (const char* expected : {"a", "b"}) {
    Result<std::optional<FetchedChunk>> got = store->FetchChunk("job.1", milliseconds(5000));
    ASSERT_TRUE(got.ok() && got->has_value()) << got.status().message();
    const FetchedChunk& chunk = **got;
    EXPECT_EQ(1u, chunk.delivered);
    ASSERT_EQ(1u, chunk.chunk.outcomes.size());
    EXPECT_EQ(expected, chunk.chunk.outcomes[0].bytes);
    ASSERT_TRUE(store->Ack(chunk.ack_subject).ok());
  }
  Result<std::optional<FetchedChunk>> none = store->FetchChunk("job.1", kAckWait * 2);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "collected: not delivered again";
  Result<std::optional<StoredChunk>> last = store->LastChunk("job.1", 32);
  ASSERT_TRUE(last.ok() && last->has_value()) << "a collected chunk still guards its chain";
  EXPECT_EQ(second->sequence, (*last)->sequence);
}

TEST_F(NatsStoreTest, PeekSeesEveryBatchOfAQueueLeasedOrNot) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  TaskBatch encode = Batch(41, {"e"}, "q");
  encode.kind = "encode";
  for (const TaskBatch& b :
       {Batch(40, {"r1", "r2"}, "q"), Batch(50, {"x"}, "other"), encode, Batch(42, {"r3"}, "q")})
    ASSERT_TRUE(store->PublishBatch(b).ok());
  const FetchedBatch leased = MustFetch(store.get(), "q");
  EXPECT_EQ(40u, leased.batch.batch());

  Result<std::vector<PeekedBatch>> all = store->Peek("q", 0, 10);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(3u, all->size());
  EXPECT_EQ(40u, (*all)[0].batch.batch());
  EXPECT_EQ((std::vector<std::string>{"r1", "r2"}), (*all)[0].batch.items);
  EXPECT_EQ("encode", (*all)[1].batch.kind);
  EXPECT_EQ("q", (*all)[1].batch.queue);
  EXPECT_EQ(42u, (*all)[2].batch.batch());

  Result<std::vector<PeekedBatch>> page = store->Peek("q", (*all)[0].sequence, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(1u, page->size());
  EXPECT_EQ((*all)[1].sequence, (*page)[0].sequence);
}

TEST_F(NatsStoreTest, PurgeEmptiesOneQueueAndItsChunks) {
  std::unique_ptr<NatsStore> store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->PublishBatch(Batch(60, {"gone"}, "q")).ok());
  ASSERT_TRUE(store->PublishBatch(Batch(61, {"stays"}, "r")).ok());
  ASSERT_TRUE(store->AppendChunk("q", Chunk(62, 62 * kBatchTasks, "gone"), 0).ok());
  ASSERT_TRUE(store->AppendChunk("r", Chunk(63, 63 * kBatchTasks, "stays"), 0).ok());
  const FetchedBatch leased = MustFetch(store.get(), "q");

  const Status purged = store->Purge("q");
  ASSERT_TRUE(purged.ok()) << purged.message();
  EXPECT_TRUE(store->Ack(leased.ack_subject).ok()) << "answered, nothing left to ack";
  Result<std::vector<PeekedBatch>> q = store->Peek("q", 0, 10);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->empty());
  Result<std::optional<StoredChunk>> chunk = store->LastChunk("q", 62);
  ASSERT_TRUE(chunk.ok());
  EXPECT_FALSE(chunk->has_value());
  EXPECT_EQ("stays", MustFetch(store.get(), "r").batch.items.at(0));
  chunk = store->LastChunk("r", 63);
  ASSERT_TRUE(chunk.ok());
  EXPECT_TRUE(chunk->has_value());
}

}  // namespace
}  // namespace taskq::testing
