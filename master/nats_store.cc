// NatsStore: opening (connection, streams) and the id counter. Batches and
// chunks are in nats_store_lanes.cc.
#include "master/nats_store.h"

#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "master/nats_subject.h"

namespace taskq {
namespace {

int64_t Nanos(std::chrono::milliseconds ms) { return ms.count() * 1000000; }

std::string RandomId() {
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  std::ostringstream out;
  out << std::hex << v;
  return out.str();
}

// Blocks a reservation may lose to other masters before it gives up: each
// loss means another master got its blocks, so this only ends a livelock.
constexpr int kMaxIdRounds = 1000;

}  // namespace

NatsStore::NatsStore(const NatsStoreOptions& options, std::string shown_urls)
    : options_(options), shown_urls_(std::move(shown_urls)), writer_id_(RandomId()) {}

NatsStore::~NatsStore() {
  lanes_.clear();  // subscriptions before the context and the connection
  js_.reset();
  nc_.reset();
}

Result<std::unique_ptr<NatsStore>> NatsStore::Open(const std::string& urls,
                                                   const NatsStoreOptions& options) {
  std::unique_ptr<NatsStore> store(new NatsStore(options, ShownNatsUrls(urls)));
  TASKQ_TRY(store->Connect(urls));
  TASKQ_TRY(store->EnsureStreams());
  return store;
}

Status NatsStore::Connect(const std::string& urls) {
  NatsConnectOptions co;
  co.token = options_.token;
  co.user = options_.user;
  co.password = options_.password;
  co.connect_timeout = options_.connect_timeout;
  co.request_timeout = options_.request_timeout;
  return NatsConnect(urls, co, &nc_, &js_);
}

Status NatsStore::EnsureStreams() {
  const char* tasks_subjects[] = {"tq.task.>"};
  const char* out_subjects[] = {"tq.out.>"};
  const char* meta_subjects[] = {kIdsSubject, "tq.queues.>"};
  struct Spec {
    const char* name;
    const char** subjects;
    int n;
    jsRetentionPolicy retention;
    int64_t max_per_subject;
  };
  const Spec specs[] = {{kTasksStream, tasks_subjects, 1, js_WorkQueuePolicy, -1},
                        {kOutStream, out_subjects, 1, js_LimitsPolicy, -1},
                        {kMetaStream, meta_subjects, 2, js_LimitsPolicy, 1}};
  for (const Spec& spec : specs) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = spec.name;
    cfg.Subjects = spec.subjects;
    cfg.SubjectsLen = spec.n;
    cfg.Retention = spec.retention;
    cfg.MaxMsgsPerSubject = spec.max_per_subject;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options_.replicas;
    cfg.Duplicates = Nanos(options_.duplicate_window);
    cfg.AllowDirect = true;  // peek and reads from any replica
    TASKQ_TRY(EnsureStream(&cfg));
  }
  return Status::Ok();
}

Status NatsStore::EnsureStream(jsStreamConfig* cfg) {
  return NatsEnsureStream(js_.get(), cfg, options_.request_timeout, shown_urls_);
}

Status NatsStore::Failed(const std::string& what, natsStatus s, jsErrCode code) const {
  return NatsFailed(what, shown_urls_, s, code);
}

NatsStore::Published NatsStore::Publish(const std::string& subject, std::string_view data,
                                        jsPubOptions* po) {
  Published out;
  po->MaxWait = options_.request_timeout.count();
  for (int i = 0; i < options_.publish_tries; ++i) {
    jsPubAck* pa = nullptr;
    out.code = static_cast<jsErrCode>(0);
    out.status = js_Publish(&pa, js_.get(), subject.c_str(), data.data(),
                            static_cast<int>(data.size()), po, &out.code);
    NatsPtr<jsPubAck> ack(pa);
    if (out.status == NATS_OK) {
      out.sequence = ack->Sequence;
      out.duplicate = ack->Duplicate;
      return out;
    }
    // No responders: the stream has no leader this moment (an election
    // takes seconds); a timeout may have been stored: the MsgId covers both.
    if (out.status == NATS_NO_RESPONDERS)
      std::this_thread::sleep_for(options_.request_timeout / 10);
    else if (out.status != NATS_TIMEOUT)
      return out;
  }
  return out;
}

// ExpectLastSubjectSeq 0 is "no check" to libnats: "nothing yet" needs
// ExpectNoMessage. The MsgId names the writer and the link, so a resend of
// this very message after a lost ack is dropped as a duplicate (reported
// stored, at the first one's sequence: nats-server checks the MsgId first)
// while another writer's message after the same link is refused (10071).
NatsStore::Published NatsStore::PublishAfter(const std::string& subject, std::string_view data,
                                             uint64_t last, const std::string& id_prefix) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (last == 0)
    po.ExpectNoMessage = true;
  else
    po.ExpectLastSubjectSeq = last;
  const std::string msg_id = id_prefix + "." + std::to_string(last) + "." + writer_id_;
  po.MsgId = msg_id.c_str();
  return Publish(subject, data, &po);
}

Status NatsStore::LastMsg(const char* stream, const std::string& subject, NatsPtr<natsMsg>* msg) {
  natsMsg* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetLastMsg(&raw, js_.get(), stream, subject.c_str(), nullptr, &code);
  msg->reset(raw);
  if (s == NATS_OK || code == JSNoMessageFoundErr) return Status::Ok();
  return Failed("cannot read the last message on " + subject + " in " + stream, s, code);
}

Result<IdBlocks> NatsStore::ReserveIds(uint64_t count) {
  if (count == 0 || count > (uint64_t{1} << 40))
    return Status::Error(Code::kInvalid, "cannot reserve " + std::to_string(count) +
                                             " id blocks: ask for 1 to 2^40 at a time");
  for (int round = 0; round < kMaxIdRounds; ++round) {
    NatsPtr<natsMsg> last;
    TASKQ_TRY(LastMsg(kMetaStream, kIdsSubject, &last));
    uint64_t next = 1, seq = 0;
    if (last) {
      TASKQ_TRY(DecodeCounterPayload(
          std::string_view(natsMsg_GetData(last.get()), natsMsg_GetDataLength(last.get())), &next));
      seq = natsMsg_GetSequence(last.get());
    }
    const Published p = PublishAfter(kIdsSubject, EncodeCounterPayload(next + count), seq, "i");
    if (p.status == NATS_OK) return IdBlocks{next, count};
    if (p.code != JSStreamWrongLastSequenceErr)
      return Failed("cannot reserve task ids (counter tq.ids)", p.status, p.code);
  }
  return Status::Error(Code::kUnavailable,
                       "cannot reserve task ids at " + shown_urls_ + ": other masters took " +
                           std::to_string(kMaxIdRounds) + " reservations first, one after another");
}

}  // namespace taskq
