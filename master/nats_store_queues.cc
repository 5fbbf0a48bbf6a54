// NatsStore: a queue as a whole, seen without a consumer (Peek) and emptied
// (Purge).
#include "master/nats_store.h"
#include "master/nats_subject.h"

namespace taskq {

// Direct get, not a consumer: a WorkQueue stream takes one consumer per
// subject (the lane's), so a second one to look with is refused.
Result<std::vector<PeekedBatch>> NatsStore::Peek(const std::string& queue, uint64_t after,
                                                 int max) {
  TASKQ_TRY(CheckName("a queue name", queue));
  const std::string filter = TaskFilter(queue);
  std::vector<PeekedBatch> seen;
  while (static_cast<int>(seen.size()) < max) {
    jsDirectGetMsgOptions dg;
    jsDirectGetMsgOptions_Init(&dg);
    dg.Sequence = after + 1;
    dg.NextBySubject = filter.c_str();
    natsMsg* raw = nullptr;
    const natsStatus s = js_DirectGetMsg(&raw, js_.get(), kTasksStream, nullptr, &dg);
    NatsPtr<natsMsg> msg(raw);
    if (s == NATS_NOT_FOUND) break;
    if (s != NATS_OK) return Failed("cannot look at queue '" + queue + "'", s);
    const auto lane = ParseTaskSubject(natsMsg_GetSubject(msg.get()));
    if (!lane)
      return Status::Error(Code::kProtocol, std::string("a batch in ") + kTasksStream +
                                                " has a subject no queue encodes to: " +
                                                natsMsg_GetSubject(msg.get()));
    PeekedBatch batch;
    batch.sequence = after = natsMsg_GetSequence(msg.get());
    batch.batch.queue = lane->first;
    batch.batch.kind = lane->second;
    TASKQ_TRY(DecodeBatchPayload(
        std::string_view(natsMsg_GetData(msg.get()), natsMsg_GetDataLength(msg.get())),
        &batch.batch));
    seen.push_back(std::move(batch));
  }
  return seen;
}

Status NatsStore::Purge(const std::string& queue) {
  TASKQ_TRY(CheckName("a queue name", queue));
  const std::pair<const char*, std::string> targets[] = {{kTasksStream, TaskFilter(queue)},
                                                         {kOutStream, OutFilter(queue)}};
  for (const auto& [stream, filter] : targets) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = filter.c_str();
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_PurgeStream(js_.get(), stream, &o, &code);
    if (s != NATS_OK) return Failed("cannot purge queue '" + queue + "' from " + stream, s, code);
  }
  return Status::Ok();
}

}  // namespace taskq
