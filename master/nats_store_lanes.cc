// NatsStore: task batches on their lanes (TQ_TASKS) and outcome chunks
// chained per batch (TQ_OUT).
#include "master/nats_store.h"
#include "master/nats_subject.h"

namespace taskq {
namespace {

int64_t Nanos(std::chrono::milliseconds ms) { return ms.count() * 1000000; }

std::string_view Data(natsMsg* m) {
  return std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
}

}  // namespace

Result<PublishedBatch> NatsStore::PublishBatch(const TaskBatch& batch) {
  TASKQ_TRY(CheckName("a queue name", batch.queue));
  TASKQ_TRY(CheckName("a kind", batch.kind));
  jsPubOptions po;
  jsPubOptions_Init(&po);
  const std::string msg_id = "b." + std::to_string(batch.batch());
  po.MsgId = msg_id.c_str();
  const Published p = Publish(TaskSubject(batch.queue, batch.kind), EncodeBatchPayload(batch), &po);
  if (p.status != NATS_OK)
    return Failed(
        "cannot store batch " + std::to_string(batch.batch()) + " of queue '" + batch.queue + "'",
        p.status, p.code);
  return PublishedBatch{p.sequence, p.duplicate};
}

// A durable pull consumer, created by whichever master comes first (
// js_AddConsumer takes the same configuration again, so every master
// creates), and this store's subscription bound to it, kept by filter.
Result<natsSubscription*> NatsStore::Bind(const char* stream, const std::string& filter,
                                          const std::string& durable, const std::string& what) {
  if (auto it = lanes_.find(filter); it != lanes_.end()) return it->second.get();
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.FilterSubject = filter.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = Nanos(options_.ack_wait);
  cc.MaxDeliver = -1;  // attempts are counted per task by taskq, not per message
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(&ci, js_.get(), stream, &cc, nullptr, &code);
  NatsPtr<jsConsumerInfo> info(ci);
  if (s != NATS_OK) return Failed("cannot create the consumer of " + what, s, code);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream;
  so.Consumer = durable.c_str();
  natsSubscription* sub = nullptr;
  s = js_PullSubscribe(&sub, js_.get(), filter.c_str(), durable.c_str(), nullptr, &so, &code);
  if (s != NATS_OK) return Failed("cannot bind to the consumer of " + what, s, code);
  lanes_[filter].reset(sub);
  return sub;
}

// The next message of sub, with its NumDelivered and reply subject in
// *delivery; a null message if none came within wait.
Result<NatsPtr<natsMsg>> NatsStore::FetchOne(natsSubscription* sub, std::chrono::milliseconds wait,
                                             const std::string& what, Delivery* delivery) {
  natsMsgList list{nullptr, 0};
  const natsStatus s = natsSubscription_Fetch(&list, sub, 1, wait.count(), nullptr);
  if (s == NATS_TIMEOUT) return NatsPtr<natsMsg>();
  if (s != NATS_OK) return Failed("cannot fetch from " + what, s);
  NatsPtr<natsMsg> msg(list.Msgs[0]);
  list.Msgs[0] = nullptr;
  natsMsgList_Destroy(&list);
  jsMsgMetaData* raw = nullptr;
  const natsStatus ms = natsMsg_GetMetaData(&raw, msg.get());
  NatsPtr<jsMsgMetaData> meta(raw);
  if (ms != NATS_OK) return Failed("a message of " + what + " came without metadata", ms);
  delivery->delivered = meta->NumDelivered;
  delivery->sequence = meta->Sequence.Stream;
  delivery->ack_subject = natsMsg_GetReply(msg.get());
  return msg;
}

Result<std::optional<FetchedBatch>> NatsStore::FetchBatch(const std::string& queue,
                                                          const std::string& kind,
                                                          std::chrono::milliseconds wait) {
  TASKQ_TRY(CheckName("a queue name", queue));
  TASKQ_TRY(CheckName("a kind", kind));
  const std::string what = "queue '" + queue + "', kind '" + kind + "'";
  Result<natsSubscription*> sub =
      Bind(kTasksStream, TaskSubject(queue, kind), LaneConsumer(queue, kind), what);
  if (!sub.ok()) return sub.status();
  FetchedBatch got;
  Result<NatsPtr<natsMsg>> msg = FetchOne(*sub, wait, what, &got);
  if (!msg.ok()) return msg.status();
  if (!*msg) return std::optional<FetchedBatch>();
  got.batch.queue = queue;
  got.batch.kind = kind;
  TASKQ_TRY(DecodeBatchPayload(Data(msg->get()), &got.batch));
  return std::optional<FetchedBatch>(std::move(got));
}

Status NatsStore::InProgress(const std::string& ack_subject) {
  const natsStatus s = natsConnection_PublishString(nc_.get(), ack_subject.c_str(), "+WPI");
  return s == NATS_OK ? Status::Ok() : Failed("cannot keep a batch (in progress)", s);
}

// "+ACK" as a request, so the server's confirmation comes back (what
// natsMsg_AckSync does, from the reply subject alone: any store may ack).
Status NatsStore::Ack(const std::string& ack_subject) {
  natsMsg* raw = nullptr;
  const natsStatus s = natsConnection_RequestString(&raw, nc_.get(), ack_subject.c_str(), "+ACK",
                                                    options_.request_timeout.count());
  NatsPtr<natsMsg> confirm(raw);
  return s == NATS_OK ? Status::Ok() : Failed("cannot acknowledge a batch", s);
}

Result<ChunkWrite> NatsStore::AppendChunk(std::string_view reply, const OutcomeChunk& chunk,
                                          uint64_t previous) {
  TASKQ_TRY(CheckName("a reply queue name", reply));
  const Published p = PublishAfter(OutSubject(reply, chunk.batch), EncodeChunkPayload(chunk),
                                   previous, "c." + std::to_string(chunk.batch));
  if (p.status == NATS_OK) return ChunkWrite{true, p.sequence};
  if (p.code == JSStreamWrongLastSequenceErr) return ChunkWrite{false, 0};
  return Failed("cannot record outcomes of batch " + std::to_string(chunk.batch), p.status, p.code);
}

Result<std::optional<StoredChunk>> NatsStore::LastChunk(std::string_view reply, uint64_t batch) {
  TASKQ_TRY(CheckName("a reply queue name", reply));
  NatsPtr<natsMsg> last;
  TASKQ_TRY(LastMsg(kOutStream, OutSubject(reply, batch), &last));
  if (!last) return std::optional<StoredChunk>();
  StoredChunk stored;
  stored.sequence = natsMsg_GetSequence(last.get());
  TASKQ_TRY(DecodeChunkPayload(Data(last.get()), &stored.chunk));
  return std::optional<StoredChunk>(std::move(stored));
}

Result<std::optional<FetchedChunk>> NatsStore::FetchChunk(const std::string& reply,
                                                          std::chrono::milliseconds wait) {
  TASKQ_TRY(CheckName("a reply queue name", reply));
  const std::string what = "reply queue '" + reply + "'";
  Result<natsSubscription*> sub = Bind(kOutStream, OutFilter(reply), OutConsumer(reply), what);
  if (!sub.ok()) return sub.status();
  FetchedChunk got;
  Result<NatsPtr<natsMsg>> msg = FetchOne(*sub, wait, what, &got);
  if (!msg.ok()) return msg.status();
  if (!*msg) return std::optional<FetchedChunk>();
  TASKQ_TRY(DecodeChunkPayload(Data(msg->get()), &got.chunk));
  return std::optional<FetchedChunk>(std::move(got));
}

}  // namespace taskq
