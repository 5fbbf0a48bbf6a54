// NatsMedium: the journal's segments in a NATS JetStream stream
// (task_master --store nats://...), so the master's state lives on the NATS
// servers (replicated over three of them in a cluster), not on the master's
// machine: another master started on the same servers carries on with every
// acknowledged put and accepted result (docs/STORE-NATS.md).
//
// Stream TASKQ_NAME (NAME: --store-name, "default"; Limits retention, file
// storage, the replicas asked for), subjects taskq.NAME.*:
//  - taskq.NAME.seg.N: segment N, the concatenation of its messages' payloads
//    after their first byte. Each append is a group of messages (one unless
//    it is over 1 MB): first byte 'M' (more of this group follows) or 'E'
//    (the group's last). A reader drops a group whose 'E' is missing, so an
//    append cut short by a crash counts for nothing.
//  - taskq.NAME.ctl: a master's takeover, its beats while alive and its release
//    when it stops.
//  - taskq.NAME.aside.N: a damaged segment's bytes, kept when it is retired.
//
// One writer at a time, fenced: every message is published with
// ExpectLastSeq = the stream's last sequence as this master wrote it, so
// once another master has taken over (written anything) this master's next
// write is refused and it stops. A master starts by taking over: at once if
// the stream is empty or its last message is a release; otherwise it waits,
// as a standby, until the stream has been silent for takeover_after (the
// writer beats every beat), then publishes its takeover fenced on the last
// sequence it saw. Two standbys racing: one takeover is refused, and that
// one waits on.
//
// Thread: the journal's thread calls everything; a beat thread inside
// publishes beats; both publish under one mutex.
#ifndef TASKQ_MASTER_NATS_MEDIUM_H_
#define TASKQ_MASTER_NATS_MEDIUM_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/clock.h"
#include "master/journal_medium.h"
#include "master/nats_handle.h"

namespace taskq {

struct NatsMediumOptions {
  std::string urls;  // "nats://HOST:PORT[,nats://HOST:PORT...]"
  // Names the stream: several sets of masters, each with its own queues,
  // may share the servers. 1 to 32 letters, digits, '-' or '_'.
  std::string name = "default";
  NatsConnectOptions connect;
  int replicas = 1;  // of TQ_LOG: 1 for one server, 3 for a cluster of three
  // The writer publishes a beat when it wrote nothing for this long.
  std::chrono::milliseconds beat{1000};
  // A standby takes over once the stream has been silent this long. Longer
  // than a NATS leader election (about 7 s, STORE-NATS.md F10), so a
  // writer stalled by one does not lose its place.
  std::chrono::milliseconds takeover_after{10000};
  // A write is tried again (same MsgId: stored once) while the servers do
  // not answer, for at most this long; then the master stops.
  std::chrono::milliseconds stall_limit{60000};
  // Most bytes of journal in one message (nats-server's max_payload is
  // 1 MiB by default; headers and the flag byte need room).
  std::size_t max_message = 1000000;
  // Told what a standby waits for, and when it takes over.
  std::function<void(const std::string&)> log;
  // Asked while waiting: true ends the wait (a stop signal).
  std::function<bool()> stop;
};

// 1 to 32 letters, digits, '-' or '_': a stream name and a subject token.
bool ValidStoreName(const std::string& name);

class NatsMedium : public JournalMedium {
 public:
  // Connects and makes sure TQ_LOG exists; does not take over yet (Lock).
  static Result<std::unique_ptr<JournalMedium>> Open(const NatsMediumOptions& options);
  ~NatsMedium() override;  // stops beating and publishes a release (when it wrote)

  const std::string& where() const override { return where_; }
  Status Lock() override;
  Status List(std::vector<MediumSegment>* segments, std::vector<std::string>* set_aside) override;
  Status Read(const MediumSegment& seg, std::string* data) override;
  Status CutTail(const MediumSegment&, uint64_t) override { return Status::Ok(); }
  Result<MediumSegment> Start(uint64_t seq, const std::string& header) override;
  Status Append(const std::string& bytes) override;
  Status Sync() override;
  Status Health() override;
  std::chrono::milliseconds health_every() const override { return options_.beat; }
  bool Shared() const override { return true; }
  Status Retire(const MediumSegment& seg, bool damaged) override;

 private:
  // The first byte of each message of a group: more to come, or the end
  // (a group cut short by a crash has no end and counts for nothing).
  static constexpr char kMore = 'M', kEnd = 'E';

  explicit NatsMedium(const NatsMediumOptions& options);
  // Publishes a group (data cut into messages) on subject, fenced; under mu_.
  Status PublishGroup(const std::string& subject, const std::string& data);
  // Publishes payload on subject, expecting the stream's last sequence to be
  // last_seq_, asking again while the servers do not answer, for at most
  // limit; under mu_. A failure is final (Fail): the master stops.
  Status PublishFenced(const std::string& subject, std::string_view payload,
                       std::chrono::milliseconds limit);
  // One js_Publish; *seq is the stored message's sequence (0 if none).
  natsStatus Publish(const std::string& subject, std::string_view payload, jsPubOptions* po,
                     jsErrCode* code, uint64_t* seq);
  // Records the first failure: every later write and Health report it.
  Status Fail(Code code, const std::string& message);
  Status Failure();
  Status TryTakeOver(uint64_t last_seq, bool* won);
  Status Retried(const std::function<Status()>& read);
  Status ListOnce(std::vector<MediumSegment>* segments, std::vector<std::string>* set_aside);
  Status ReadOnce(const MediumSegment& seg, std::string* data);
  Status StreamState(uint64_t* last_seq, const char* filter,
                     std::map<std::string, uint64_t>* subjects);
  Status Purge(const std::string& subject, uint64_t keep);
  void BeatLoop();
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  NatsMediumOptions options_;
  std::string shown_urls_, where_;
  std::string writer_;  // random: names this master's messages (MsgId)
  NatsPtr<natsConnection> nc_;
  NatsPtr<jsCtx> js_;
  const std::string stream_, subjects_, ctl_, seg_prefix_, aside_prefix_;
  std::map<uint64_t, uint64_t> counts_;  // List's: messages per segment
  std::string head_;                     // subject of the head segment

  std::mutex mu_;          // held for every publish: the fence, and the two below
  uint64_t last_seq_ = 0;  // the stream's last sequence, as this master wrote it (0: not writer)
  std::chrono::steady_clock::time_point last_write_;

  std::mutex failed_mu_;
  Status failed_;  // once the fence is lost or a write gave up, every write fails
  std::atomic<bool> failed_flag_{false};
  // When the loop last asked Health or appended (steady clock ticks; 0:
  // not yet): a wedged loop stops the beat.
  std::atomic<int64_t> loop_alive_{0};

  std::mutex beat_mu_;  // stop_beat_, and the waits of the beat and of Lock
  bool stop_beat_ = false;
  std::condition_variable beat_cv_;
  std::thread beat_thread_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_MEDIUM_H_
