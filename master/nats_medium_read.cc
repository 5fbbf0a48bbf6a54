// NatsMedium (master/nats_medium.h), the reading side: the journal's
// segments listed and read back from the stream, each read checked against
// the stream's own counts, and asked again while the servers do not answer.
#include <algorithm>
#include <string>
#include <vector>

#include "master/nats_medium.h"

namespace taskq {

// Reads wait out what a write waits out (a leader election, a reconnect):
// tried again until stall_limit.
Status NatsMedium::Retried(const std::function<Status()>& read) {
  const Clock::time_point give_up = Clock::now() + options_.stall_limit;
  bool told = false;
  for (;;) {
    Status s = read();
    if (s.ok()) return s;
    if (Clock::now() >= give_up) return Status::Error(Code::kUnavailable, s.message());
    if (!told) Log(s.message() + "; trying again");
    told = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Status NatsMedium::List(std::vector<MediumSegment>* segments, std::vector<std::string>* set_aside) {
  return Retried([&] {
    segments->clear();
    set_aside->clear();
    return ListOnce(segments, set_aside);
  });
}

Status NatsMedium::ListOnce(std::vector<MediumSegment>* segments,
                            std::vector<std::string>* set_aside) {
  uint64_t last = 0;
  std::map<std::string, uint64_t> subjects;
  TASKQ_TRY(StreamState(&last, subjects_.c_str(), &subjects));
  const std::string& seg_prefix = seg_prefix_;
  const std::string& aside_prefix = aside_prefix_;
  for (const auto& [subject, msgs] : subjects) {
    if (msgs == 0) continue;
    if (subject.rfind(aside_prefix, 0) == 0) set_aside->push_back(subject);
    unsigned long long seq = 0;
    if (subject.rfind(seg_prefix, 0) != 0 ||
        std::sscanf(subject.c_str() + seg_prefix.size(), "%llu", &seq) != 1)
      continue;
    segments->push_back(MediumSegment{seq, subject});
    counts_[seq] = msgs;
  }
  std::sort(segments->begin(), segments->end(),
            [](const MediumSegment& a, const MediumSegment& b) { return a.seq < b.seq; });
  return Status::Ok();
}

// An ordered consumer streams the segment's messages in stream order; the
// last has no message pending after it.
Status NatsMedium::Read(const MediumSegment& seg, std::string* data) {
  return Retried([&] { return ReadOnce(seg, data); });
}

Status NatsMedium::ReadOnce(const MediumSegment& seg, std::string* data) {
  data->clear();
  if (counts_[seg.seq] == 0) return Status::Ok();
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Ordered = true;
  so.Stream = stream_.c_str();
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* raw = nullptr;
  jsErrCode code = jsErrCode{};
  natsStatus s = js_SubscribeSync(&raw, js_.get(), seg.name.c_str(), nullptr, &so, &code);
  NatsPtr<natsSubscription> sub(raw);
  if (s != NATS_OK) return NatsFailed("cannot read " + seg.name, shown_urls_, s, code);
  std::string group;
  uint64_t got = 0;
  for (;;) {
    natsMsg* m = nullptr;
    s = natsSubscription_NextMsg(&m, sub.get(), options_.connect.request_timeout.count());
    NatsPtr<natsMsg> msg(m);
    if (s != NATS_OK) return NatsFailed("cannot read " + seg.name, shown_urls_, s);
    ++got;
    const char* bytes = natsMsg_GetData(msg.get());
    const int len = natsMsg_GetDataLength(msg.get());
    if (len > 0) {
      group.append(bytes + 1, static_cast<std::size_t>(len - 1));
      if (bytes[0] == kEnd) {
        data->append(group);
        group.clear();
      }
    }
    jsMsgMetaData* meta_raw = nullptr;
    s = natsMsg_GetMetaData(&meta_raw, msg.get());
    NatsPtr<jsMsgMetaData> meta(meta_raw);
    if (s != NATS_OK) return NatsFailed("cannot read " + seg.name, shown_urls_, s);
    if (meta->NumPending == 0) break;
  }
  natsSubscription_Unsubscribe(sub.get());  // removes its consumer from the servers
  // Only this master writes now, so the segment is what List counted; a
  // difference is a segment cut while read (a writer gone astray): loud.
  if (got != counts_[seg.seq])
    return Status::Error(Code::kUnavailable,
                         seg.name + " changed while read: " + std::to_string(got) +
                             " message(s) of " + std::to_string(counts_[seg.seq]));
  // A group without its last message: an append a crash cut short; it
  // counted for nothing (the master never answered on it).
  return Status::Ok();
}

}  // namespace taskq
