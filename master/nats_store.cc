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

std::vector<std::string> SplitUrls(const std::string& urls) {
  std::vector<std::string> list;
  std::istringstream in(urls);
  for (std::string url; std::getline(in, url, ',');)
    if (!url.empty()) list.push_back(url);
  return list;
}

// "nats://user:pass@h:p" shown as "nats://h:p": messages never carry credentials.
std::string ShownUrls(const std::vector<std::string>& list) {
  std::string shown;
  for (const std::string& url : list) {
    const std::size_t scheme = url.find("://");
    const std::size_t from = scheme == std::string::npos ? 0 : scheme + 3;
    // The last '@' of the authority: a password may hold '@' itself.
    const std::size_t end = url.find('/', from);
    const std::size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end - 1);
    const bool credentials = at != std::string::npos && at >= from;
    if (!shown.empty()) shown += ',';
    shown += credentials ? url.substr(0, from) + url.substr(at + 1) : url;
  }
  return shown;
}

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
  const std::vector<std::string> list = SplitUrls(urls);
  if (list.empty())
    return Status::Error(Code::kInvalid, "no NATS server given: name one as nats://HOST:PORT");
  std::unique_ptr<NatsStore> store(new NatsStore(options, ShownUrls(list)));
  TASKQ_TRY(store->Connect(urls));
  TASKQ_TRY(store->EnsureStreams());
  return store;
}

Status NatsStore::Connect(const std::string& urls) {
  natsStatus s = NATS_OK;
  NatsPtr<natsOptions> opts = NatsServerOptions(urls, options_.connect_timeout, &s);
  if (s == NATS_OK && !options_.token.empty())
    s = natsOptions_SetToken(opts.get(), options_.token.c_str());
  if (s == NATS_OK && !options_.user.empty())
    s = natsOptions_SetUserInfo(opts.get(), options_.user.c_str(), options_.password.c_str());
  if (s != NATS_OK) return Failed("cannot set up a NATS connection", s);
  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, opts.get());
  nc_.reset(nc);
  if (s != NATS_OK)
    return Status::Error(Code::kUnavailable,
                         "no NATS server answered at " + shown_urls_ + ": " + NatsError(s) +
                             " (is nats-server running there, reachable, with JetStream on?)");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.request_timeout.count();
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc_.get(), &jo);
  js_.reset(js);
  return s == NATS_OK ? Status::Ok() : Failed("cannot use JetStream", s);
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

// js_AddStream is idempotent: the same configuration again is accepted, and
// another one is refused with JSStreamNameExistErr.
// A cluster just started may have its metadata leader before it knows its
// peers: "no suitable peers" (10005) is asked again until request_timeout.
Status NatsStore::EnsureStream(jsStreamConfig* cfg) {
  const auto end = std::chrono::steady_clock::now() + options_.request_timeout;
  natsStatus s = NATS_OK;
  jsErrCode code = static_cast<jsErrCode>(0);
  do {
    jsStreamInfo* si = nullptr;
    code = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, js_.get(), cfg, nullptr, &code);
    NatsPtr<jsStreamInfo> info(si);
    if (s == NATS_OK) return Status::Ok();
    if (code != JSClusterNoPeersErr) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < end);
  if (code == JSStreamNameExistErr)
    return Status::Error(Code::kInvalid, std::string("stream ") + cfg->Name + " exists at " +
                                             shown_urls_ +
                                             " with another configuration than this taskq's "
                                             "(another version, or another replica count?): "
                                             "remove it or use other servers");
  if (code == JSClusterNoPeersErr)
    return Status::Error(Code::kUnavailable,
                         std::string("cannot create stream ") + cfg->Name + " at " + shown_urls_ +
                             " with " + std::to_string(cfg->Replicas) +
                             " replicas: not as many JetStream servers answer (ask for fewer "
                             "replicas, or start the missing servers)");
  return Failed(std::string("cannot create stream ") + cfg->Name, s, code);
}

Status NatsStore::Failed(const std::string& what, natsStatus s, jsErrCode code) const {
  std::string text = what + " at " + shown_urls_ + ": " + NatsError(s);
  if (code != 0) text += " (JetStream error " + std::to_string(code) + ")";
  const Code c = s == NATS_TIMEOUT ? Code::kTimeout
                 : (s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED || s == NATS_NO_SERVER)
                     ? Code::kUnavailable
                     : Code::kIo;
  return Status::Error(c, text);
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
