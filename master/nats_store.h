// NatsStore: the master's queue state in NATS JetStream (docs/STORE-NATS.md).
// It owns one libnats connection and its JetStream context, makes sure the
// store's three streams exist, and offers the operations the design builds
// on: id blocks from a shared counter, task batches through a WorkQueue
// stream and one durable pull consumer per (queue, kind) lane, and outcome
// chunks chained per batch with a compare-and-set that is the fence between
// masters. It holds no queue state of its own beyond the lanes it has bound.
//
// Every failure is a Status whose message says what failed, where, and what
// to do; no message holds a token or password (URLs are shown without their
// user part).
//
// Thread: one thread at a time per store (the lanes it has bound are not
// locked); several stores, on as many threads, may share the servers.
#ifndef TASKQ_MASTER_NATS_STORE_H_
#define TASKQ_MASTER_NATS_STORE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "master/nats_handle.h"
#include "master/nats_records.h"
#include "proto/status.h"

namespace taskq {

struct NatsStoreOptions {
  // Replicas of each stream: 1 for one server, 3 for a cluster of three.
  int replicas = 1;
  // Credentials, if the servers ask for them: a token, or a user and password.
  std::string token;
  std::string user, password;
  // How long to wait for a server's greeting, per URL.
  std::chrono::milliseconds connect_timeout{2000};
  // How long to wait for a JetStream answer (an API call, a publish's ack).
  std::chrono::milliseconds request_timeout{5000};
  // A publish not acked within request_timeout is sent again (same MsgId, so
  // a resend after a lost ack is not stored twice), tries times in all.
  int publish_tries = 3;
  // A fetched batch not acked (or kept alive by InProgress) for this long
  // goes to another master (the lanes' consumers' AckWait).
  std::chrono::milliseconds ack_wait{30000};
  // How long the streams remember a MsgId to drop a resend (Duplicates).
  std::chrono::milliseconds duplicate_window{120000};
};

// Blocks [first_block, first_block + count) of kBatchTasks ids each.
struct IdBlocks {
  uint64_t first_block = 0, count = 0;
  uint64_t first_id() const { return first_block << kBatchShift; }
  uint64_t end_id() const { return (first_block + count) << kBatchShift; }
};

struct PublishedBatch {
  uint64_t sequence = 0;   // in TQ_TASKS
  bool duplicate = false;  // the stream had it already (a resend of batch K)
};

// One delivery of a message fetched from a durable consumer.
struct Delivery {
  uint64_t delivered = 0;   // NumDelivered: 1 on the first delivery
  uint64_t sequence = 0;    // in its stream, the same on every delivery
  std::string ack_subject;  // this delivery's reply subject, for Ack / InProgress
};

struct FetchedBatch : Delivery {
  TaskBatch batch;
};

struct FetchedChunk : Delivery {
  OutcomeChunk chunk;
};

// A batch seen by Peek: in TQ_TASKS at sequence, leased or not.
struct PeekedBatch {
  uint64_t sequence = 0;
  TaskBatch batch;
};

// What AppendChunk did: appended, or not because the chain's last chunk is
// not the one the caller named: another master wrote K's chain, it owns K now.
struct ChunkWrite {
  bool appended = false;
  uint64_t sequence = 0;  // the new chunk's sequence in TQ_OUT, when appended
};

struct StoredChunk {
  uint64_t sequence = 0;
  OutcomeChunk chunk;
};

class NatsStore {
 public:
  // Connects to urls ("nats://HOST:PORT[,nats://HOST:PORT...]") and creates
  // the streams TQ_TASKS, TQ_OUT and TQ_META, or checks that they exist with
  // the same configuration. kUnavailable when no server answers; kInvalid
  // when a stream exists with another configuration, or urls is empty.
  static Result<std::unique_ptr<NatsStore>> Open(const std::string& urls,
                                                 const NatsStoreOptions& options);
  ~NatsStore();
  NatsStore(const NatsStore&) = delete;
  NatsStore& operator=(const NatsStore&) = delete;

  // Reserves count consecutive id blocks from the counter tq.ids, shared by
  // every master of the servers: no two reservations overlap. Block 0 is
  // never handed out (task ids start above 0). kInvalid for 0 blocks.
  Result<IdBlocks> ReserveIds(uint64_t count);

  // Stores a batch on its lane, MsgId "b.K", and waits for the stream's ack.
  Result<PublishedBatch> PublishBatch(const TaskBatch& batch);
  // The next batch of the lane (queue, kind), waiting up to wait for one;
  // nullopt if none came. Binds the lane's durable consumer, creating it on
  // first use. The batch stays in the stream until Ack.
  Result<std::optional<FetchedBatch>> FetchBatch(const std::string& queue, const std::string& kind,
                                                 std::chrono::milliseconds wait);
  // Restarts the AckWait of a fetched message (fire and forget).
  Status InProgress(const std::string& ack_subject);
  // Acknowledges a fetched message (a batch leaves TQ_TASKS; a chunk stays in
  // TQ_OUT, collected) and waits for the server's confirmation. Any store may
  // ack any delivery, an earlier one's too.
  Status Ack(const std::string& ack_subject);

  // Appends chunk to the chain of batch chunk.batch of reply queue reply:
  // previous is the sequence of the chain's last chunk as the caller knows
  // it, 0 for "K has no chunk yet". Not appended (a value, not an error) if
  // the chain's last chunk is another.
  Result<ChunkWrite> AppendChunk(std::string_view reply, const OutcomeChunk& chunk,
                                 uint64_t previous);
  // The last chunk of batch K of reply, or nullopt if K has none.
  Result<std::optional<StoredChunk>> LastChunk(std::string_view reply, uint64_t batch);
  // The next chunk of reply queue reply for a collector, from the queue's
  // durable consumer on TQ_OUT (created on first use), waiting up to wait;
  // nullopt if none came.
  Result<std::optional<FetchedChunk>> FetchChunk(const std::string& reply,
                                                 std::chrono::milliseconds wait);

  // Up to max batches of queue, every kind, after stream sequence after, in
  // stream order, leased ones included, without a consumer (direct get: any
  // replica answers, so a batch acked a moment ago may still be seen).
  Result<std::vector<PeekedBatch>> Peek(const std::string& queue, uint64_t after, int max);
  // Removes every batch of queue from TQ_TASKS and every chunk of queue as a
  // reply queue from TQ_OUT. A fetched batch goes too; its later Ack is
  // answered and does nothing.
  Status Purge(const std::string& queue);

 private:
  struct Published {
    natsStatus status = NATS_OK;
    jsErrCode code = static_cast<jsErrCode>(0);
    uint64_t sequence = 0;
    bool duplicate = false;
  };

  NatsStore(const NatsStoreOptions& options, std::string shown_urls);
  Status Connect(const std::string& urls);
  Status EnsureStreams();
  Status EnsureStream(jsStreamConfig* cfg);
  // js_Publish with the options, resent with the same MsgId on a timeout.
  Published Publish(const std::string& subject, std::string_view data, jsPubOptions* po);
  // Publish stored only if last is the sequence of subject's last message
  // (0: subject has none), MsgId "<id_prefix>.<last>.<writer>".
  Published PublishAfter(const std::string& subject, std::string_view data, uint64_t last,
                         const std::string& id_prefix);
  Result<natsSubscription*> Bind(const char* stream, const std::string& filter,
                                 const std::string& durable, const std::string& what);
  Result<NatsPtr<natsMsg>> FetchOne(natsSubscription* sub, std::chrono::milliseconds wait,
                                    const std::string& what, Delivery* delivery);
  // The last message on subject of stream in *msg, left null if there is none.
  Status LastMsg(const char* stream, const std::string& subject, NatsPtr<natsMsg>* msg);
  Status Failed(const std::string& what, natsStatus s, jsErrCode code = jsErrCode{}) const;

  NatsStoreOptions options_;
  std::string shown_urls_;  // without user parts, for messages
  std::string writer_id_;   // random: makes this store's fenced MsgIds its own
  NatsPtr<natsConnection> nc_;
  NatsPtr<jsCtx> js_;
  std::map<std::string, NatsPtr<natsSubscription>> lanes_;  // by filter subject
};

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_STORE_H_
