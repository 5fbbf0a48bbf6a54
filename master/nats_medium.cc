#include "master/nats_medium.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>

namespace taskq {
namespace {

constexpr std::string_view kRelease = "release";
// The ctl subject keeps its last messages only: beats would grow it for ever.
constexpr int kBeatsBetweenPurges = 60;

std::string RandomWriter() {
  std::random_device rd;
  std::ostringstream out;
  out << std::hex << ((uint64_t{rd()} << 32) ^ rd());
  return out.str();
}

// Failures worth trying again: the servers are electing a leader, a
// connection is being re-made, an answer was lost (the MsgId makes a resend
// of a stored message a duplicate, not a second copy).
bool Transient(natsStatus s, jsErrCode code) {
  if (s == NATS_ERR)  // a JetStream error: only those of a cluster electing or placing
    return code == 0 || code == JSClusterNotAvailErr || code == JSClusterNoPeersErr;
  return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
         s == NATS_NOT_YET_CONNECTED || s == NATS_NO_SERVER;
}

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", ms.count() / 1000.0);
  return buf;
}

}  // namespace

bool ValidStoreName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

NatsMedium::NatsMedium(const NatsMediumOptions& options)
    : options_(options),
      shown_urls_(ShownNatsUrls(options.urls)),
      where_("the NATS store at " + shown_urls_),
      writer_(RandomWriter()),
      stream_("TASKQ_" + options.name),
      subjects_("taskq." + options.name + ".>"),
      ctl_("taskq." + options.name + ".ctl"),
      seg_prefix_("taskq." + options.name + ".seg."),
      aside_prefix_("taskq." + options.name + ".aside.") {}

Result<std::unique_ptr<JournalMedium>> NatsMedium::Open(const NatsMediumOptions& options) {
  if (!ValidStoreName(options.name))
    return Status::Error(Code::kInvalid, "store name '" + options.name +
                                             "': use 1 to 32 letters, digits, '-' or '_'");
  std::unique_ptr<NatsMedium> m(new NatsMedium(options));
  // Beats often enough that a live writer is never silent for takeover_after.
  m->options_.beat = std::min(options.beat, options.takeover_after / 4);
  TASKQ_TRY(NatsConnect(options.urls, options.connect, &m->nc_, &m->js_));
  // A message must fit the servers' max_payload, with room for its headers.
  const int64_t payload = natsConnection_GetMaxPayload(m->nc_.get());
  if (payload > 8192)
    m->options_.max_message =
        std::min<std::size_t>(options.max_message, static_cast<std::size_t>(payload - 4096));
  const char* subjects[] = {m->subjects_.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = m->stream_.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_LimitsPolicy;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = options.replicas;
  cfg.Duplicates = int64_t{120} * 1000000000;  // a resend's MsgId is remembered 2 minutes
  TASKQ_TRY(NatsEnsureStream(m->js_.get(), &cfg, options.connect.request_timeout, m->shown_urls_));
  return std::unique_ptr<JournalMedium>(std::move(m));
}

NatsMedium::~NatsMedium() {
  {
    std::lock_guard<std::mutex> lock(beat_mu_);
    stop_beat_ = true;
  }
  beat_cv_.notify_all();
  if (beat_thread_.joinable()) beat_thread_.join();
  {
    // The next master takes over at once instead of waiting out the silence.
    std::unique_lock<std::mutex> lock(mu_);
    if (last_seq_ != 0 && !failed_flag_)
      (void)PublishFenced(ctl_, kRelease, std::chrono::milliseconds(2000));
  }
  js_.reset();
  nc_.reset();
}

Status NatsMedium::Fail(Code code, const std::string& message) {
  std::lock_guard<std::mutex> lock(failed_mu_);
  if (failed_.ok()) failed_ = Status::Error(code, message);
  failed_flag_ = true;
  return failed_;
}

Status NatsMedium::Failure() {
  if (!failed_flag_) return Status::Ok();
  std::lock_guard<std::mutex> lock(failed_mu_);
  return failed_;
}

Status NatsMedium::StreamState(uint64_t* last_seq, const char* filter,
                               std::map<std::string, uint64_t>* subjects) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter;
  jsStreamInfo* raw = nullptr;
  jsErrCode code = jsErrCode{};
  const natsStatus s = js_GetStreamInfo(&raw, js_.get(), stream_.c_str(), &o, &code);
  NatsPtr<jsStreamInfo> info(raw);
  if (s != NATS_OK)
    return NatsFailed("cannot read the state of stream " + stream_, shown_urls_, s, code);
  *last_seq = info->State.LastSeq;
  if (subjects && info->State.Subjects) {
    for (int i = 0; i < info->State.Subjects->Count; ++i)
      (*subjects)[info->State.Subjects->List[i].Subject] = info->State.Subjects->List[i].Msgs;
  }
  return Status::Ok();
}

Status NatsMedium::Lock() {
  bool told = false, told_failure = false;
  uint64_t seen = UINT64_MAX;
  Clock::time_point seen_at = Clock::now();
  for (;;) {
    if (options_.stop && options_.stop())
      return Status::Error(Code::kInterrupted, "stopped while waiting to take over " + where_);
    uint64_t last = 0;
    Status s = StreamState(&last, nullptr, nullptr);
    bool now = false;
    if (s.ok() && last != 0) {
      // The last message a release: its writer stopped on purpose.
      natsMsg* raw = nullptr;
      jsErrCode code = jsErrCode{};
      if (js_GetLastMsg(&raw, js_.get(), stream_.c_str(), ctl_.c_str(), nullptr, &code) ==
          NATS_OK) {
        NatsPtr<natsMsg> msg(raw);
        now = natsMsg_GetSequence(msg.get()) == last &&
              std::string_view(natsMsg_GetData(msg.get()), natsMsg_GetDataLength(msg.get())) ==
                  kRelease;
      }
    }
    if (s.ok() &&
        (last == 0 || now || (last == seen && Clock::now() - seen_at >= options_.takeover_after))) {
      bool won = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        s = TryTakeOver(last, &won);
      }
      if (s.ok() && won) {
        if (told) Log("took over " + where_ + ": serving now");
        beat_thread_ = std::thread([this] { BeatLoop(); });
        return Status::Ok();
      }
      seen = UINT64_MAX;  // another master was quicker: watch it
    } else if (s.ok() && last != seen) {
      seen = last;
      seen_at = Clock::now();
      if (!told)
        Log(where_ +
            " is written by another task_master; standing by, to take over once it "
            "has been silent for " +
            Seconds(options_.takeover_after));
      told = true;
    }
    if (!s.ok() && !told_failure) {
      Log(s.message() + "; trying again");
      told_failure = true;
    }
    // NATS tells nobody when a stream falls silent: look again shortly.
    std::unique_lock<std::mutex> lock(beat_mu_);
    beat_cv_.wait_for(lock, std::chrono::milliseconds(250));
  }
}

// The first write of a master: fenced on the last sequence it saw (or, on
// an empty stream, on the ctl subject being empty: ExpectLastSeq 0 means
// "no check" to libnats). Refused: another master wrote first.
Status NatsMedium::TryTakeOver(uint64_t last, bool* won) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (last == 0)
    po.ExpectNoMessage = true;
  else
    po.ExpectLastSeq = last;
  const std::string id = writer_ + ".t." + std::to_string(last);
  po.MsgId = id.c_str();
  po.MaxWait = options_.connect.request_timeout.count();
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  const std::string payload = "takeover by " + std::string(host) + " pid " +
                              std::to_string(getpid()) + " (" + writer_ + ")";
  jsErrCode code = jsErrCode{};
  uint64_t seq = 0;
  natsStatus s = NATS_OK;
  // A lost answer, or sequence 0 (a resend answered before its first copy
  // was stored, PublishFenced): ask again, the MsgId keeps it one message.
  for (int tries = 0; tries < 10; ++tries) {
    code = jsErrCode{};
    s = Publish(ctl_, payload, &po, &code, &seq);
    if ((s == NATS_OK && seq > last) || code == JSStreamWrongLastSequenceErr ||
        (s != NATS_OK && !Transient(s, code)))
      break;
    if (s != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *won = s == NATS_OK && seq > last;
  if (*won) {
    last_seq_ = seq;
    last_write_ = Clock::now();
  }
  if (s == NATS_OK || code == JSStreamWrongLastSequenceErr) return Status::Ok();
  return NatsFailed("cannot take over the journal (stream " + stream_ + ")", shown_urls_, s, code);
}

natsStatus NatsMedium::Publish(const std::string& subject, std::string_view payload,
                               jsPubOptions* po, jsErrCode* code, uint64_t* seq) {
  jsPubAck* raw = nullptr;
  const natsStatus s = js_Publish(&raw, js_.get(), subject.c_str(), payload.data(),
                                  static_cast<int>(payload.size()), po, code);
  NatsPtr<jsPubAck> ack(raw);
  *seq = s == NATS_OK ? ack->Sequence : 0;
  return s;
}

Status NatsMedium::PublishFenced(const std::string& subject, std::string_view payload,
                                 std::chrono::milliseconds limit) {
  TASKQ_TRY(Failure());
  if (last_seq_ == 0)  // ExpectLastSeq 0 is "no check": only a writer that took over writes
    return Status::Error(Code::kInvalid, "the journal in " + where_ + " is written before Lock");
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.ExpectLastSeq = last_seq_;
  const std::string id = writer_ + "." + std::to_string(last_seq_);
  po.MsgId = id.c_str();
  po.MaxWait = options_.connect.request_timeout.count();
  const Clock::time_point give_up = Clock::now() + limit;
  for (;;) {
    jsErrCode code = jsErrCode{};
    uint64_t seq = 0;
    const natsStatus s = Publish(subject, payload, &po, &code, &seq);
    // Stored, now or by an earlier try whose answer was lost (a duplicate
    // with the first copy's sequence). nats-server 2.9 answers a resend that
    // overtakes its first copy, still being stored, with sequence 0: not an
    // answer yet, ask again. last_seq_ never goes back or to 0 ("no check").
    if (s == NATS_OK && seq > last_seq_) {
      last_seq_ = seq;
      last_write_ = Clock::now();
      return Status::Ok();
    }
    if (code == JSStreamWrongLastSequenceErr)
      return Fail(Code::kTakenOver,
                  "another task_master took over " + where_ + " (workers given both move to it)");
    if ((s != NATS_OK && !Transient(s, code)) || Clock::now() >= give_up)
      return Fail(Code::kUnavailable,
                  NatsFailed("cannot write the journal (stream " + stream_ + ")" +
                                 (s == NATS_OK ? "" : " for " + Seconds(limit)),
                             shown_urls_, s == NATS_OK ? NATS_TIMEOUT : s, code)
                      .message());
    // No leader this moment (an election takes seconds): ask again shortly.
    // Still holding mu_: the beat must not publish in between, as its
    // message would carry this one's MsgId (and a resend of this one would
    // then be taken for a duplicate of the beat).
    if (s != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status NatsMedium::PublishGroup(const std::string& subject, const std::string& data) {
  std::unique_lock<std::mutex> lock(mu_);
  std::string msg;
  std::size_t at = 0;
  do {
    const std::size_t n = std::min(options_.max_message, data.size() - at);
    msg.assign(1, at + n < data.size() ? kMore : kEnd);
    msg.append(data, at, n);
    TASKQ_TRY(PublishFenced(subject, msg, options_.stall_limit));
    at += n;
  } while (at < data.size());
  return Status::Ok();
}

Result<MediumSegment> NatsMedium::Start(uint64_t seq, const std::string& header) {
  head_ = seg_prefix_ + std::to_string(seq);
  TASKQ_TRY(PublishGroup(head_, header));
  return MediumSegment{seq, head_};
}

Status NatsMedium::Append(const std::string& bytes) {
  loop_alive_ = Clock::now().time_since_epoch().count();
  return PublishGroup(head_, bytes);
}

// A publish is acknowledged once the stream's replicas have it: nothing
// more to wait for. Reports a lost fence found by the beat.
Status NatsMedium::Sync() { return Failure(); }

// The loop asks every pass: its stamp tells the beat that it still runs.
Status NatsMedium::Health() {
  loop_alive_ = Clock::now().time_since_epoch().count();
  return Failure();
}

Status NatsMedium::Retire(const MediumSegment& seg, bool damaged) {
  if (damaged) {
    std::string data;
    TASKQ_TRY(Read(seg, &data));
    TASKQ_TRY(PublishGroup(aside_prefix_ + std::to_string(seg.seq), data));
  }
  // A purge cannot be fenced in JetStream, and a master that lost the fence
  // must remove nothing a new writer may be replaying. So each purge comes
  // right after a fenced write that took under takeover_after/2: a standby
  // takes over only after takeover_after of silence since that write, so
  // the purge, sent at once, lands before any takeover can.
  std::unique_lock<std::mutex> lock(mu_);
  const Clock::time_point give_up = Clock::now() + options_.stall_limit;
  Status s;
  for (;;) {
    const Clock::time_point proof = Clock::now();
    TASKQ_TRY(PublishFenced(ctl_, "beat", options_.stall_limit));
    if (Clock::now() - proof < options_.takeover_after / 2) {
      s = Purge(seg.name, 0);
      if (s.ok()) return s;
    }
    if (Clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail(Code::kUnavailable, s.ok() ? "cannot retire " + seg.name + " at " + shown_urls_ +
                                               ": the servers answered too slowly for " +
                                               Seconds(options_.stall_limit)
                                         : s.message());
}

Status NatsMedium::Purge(const std::string& subject, uint64_t keep) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Purge.Subject = subject.c_str();
  o.Stream.Purge.Keep = keep;
  jsErrCode code = jsErrCode{};
  const natsStatus s = js_PurgeStream(js_.get(), stream_.c_str(), &o, &code);
  if (s != NATS_OK) return NatsFailed("cannot remove " + subject, shown_urls_, s, code);
  return Status::Ok();
}

void NatsMedium::BeatLoop() {
  std::unique_lock<std::mutex> wait(beat_mu_);
  int beats = 0;
  while (!stop_beat_) {
    beat_cv_.wait_for(wait, options_.beat / 4);
    const Clock::time_point now = Clock::now();
    if (stop_beat_ || failed_flag_) continue;
    // A loop that stopped asking (wedged) must not keep the store: no beat,
    // and a standby takes over.
    // (From its first pass on: the replay before it may take longer.)
    const int64_t alive = loop_alive_.load();
    if (alive != 0 && now - Clock::time_point(Clock::duration(alive)) > options_.takeover_after / 2)
      continue;
    // The loop writing now is proof of life enough.
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock() || now - last_write_ < options_.beat) continue;
    wait.unlock();
    // Given up after takeover_after: a standby may have the store by then.
    if (PublishFenced(ctl_, "beat", options_.takeover_after).ok() &&
        ++beats % kBeatsBetweenPurges == 0)
      (void)Purge(ctl_, 1);
    lock.unlock();
    wait.lock();
  }
}

}  // namespace taskq
