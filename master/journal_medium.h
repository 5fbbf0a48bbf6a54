// JournalMedium: where the journal's segments live. The Journal (journal.h)
// decides what is written, frames it, replays it and compacts it; a medium
// only keeps numbered segments of bytes, appends to the newest (the head),
// reads them back whole and removes the oldest. Two media:
//  - files in a data dir (FileMedium, below: task_master --data-dir), with
//    the --fsync modes;
//  - a NATS JetStream stream (NatsMedium, master/nats_medium.h:
//    task_master --store), replicated by the NATS servers, fenced so that
//    only one master writes at a time (docs/STORE-NATS.md).
//
// Thread: the journal's (the master's loop thread); a medium may run a
// thread of its own inside (FileMedium's fsync thread, NatsMedium's beat).
#ifndef TASKQ_MASTER_JOURNAL_MEDIUM_H_
#define TASKQ_MASTER_JOURNAL_MEDIUM_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/status.h"

namespace taskq {

struct MediumSegment {
  uint64_t seq = 0;
  std::string name;  // for messages: a file's path, a stream's subject
};

class JournalMedium {
 public:
  virtual ~JournalMedium() = default;
  // For messages: "the data dir D", "the NATS store at URLS".
  virtual const std::string& where() const = 0;
  // Makes this journal the medium's only writer: another master's records
  // interleaved with ours would replay as nonsense. May wait (NatsMedium
  // waits while another master is alive).
  virtual Status Lock() = 0;
  // The segments, oldest first; set_aside: names of damaged segments kept
  // aside, for the report.
  virtual Status List(std::vector<MediumSegment>* segments,
                      std::vector<std::string>* set_aside) = 0;
  virtual Status Read(const MediumSegment& seg, std::string* data) = 0;
  // Cuts the newest segment at byte at: the start of a record a crash cut
  // short (a medium whose appends are whole may have nothing to cut).
  virtual Status CutTail(const MediumSegment& seg, uint64_t at) = 0;
  // Makes segment seq, whose first bytes are header, the head; the old
  // head's bytes are durable first, and the new one counts only once its
  // header is durable.
  virtual Result<MediumSegment> Start(uint64_t seq, const std::string& header) = 0;
  // Appends bytes (whole records) to the head. Once it returns ok they
  // survive the master process being killed (what more depends on the
  // medium: --fsync for files, replication for NATS); on failure none of
  // them counts.
  virtual Status Append(const std::string& bytes) = 0;
  // Everything appended is durable now, whatever the mode.
  virtual Status Sync() = 0;
  // A failure found outside a call (NatsMedium: its fence lost while the
  // master was idle); the journal asks every pass.
  virtual Status Health() { return Status::Ok(); }
  // How often the master's loop must ask Health, idle or not.
  virtual std::chrono::milliseconds health_every() const { return std::chrono::minutes(1); }
  // Other masters may carry on from this medium once this one stops
  // (NatsMedium: standbys on the same store).
  virtual bool Shared() const { return false; }
  // Removes seg, the oldest (its live entries are durable in newer ones),
  // or keeps it aside under another name when it holds damage.
  virtual Status Retire(const MediumSegment& seg, bool damaged) = 0;
};

enum class FsyncMode { kAlways, kInterval, kNever };

// Segment files DIR/journal-NNNNNNNNNNNNNNNN.tqj, locked against a second
// master by DIR/LOCK; damaged ones retired become DIR/damaged-N.tqj.
class FileMedium : public JournalMedium {
 public:
  FileMedium(std::string dir, FsyncMode fsync, std::chrono::milliseconds fsync_interval);
  ~FileMedium() override;  // syncs the head (but with FsyncMode::kNever)

  const std::string& where() const override { return where_; }
  // Makes DIR (0700) if needed and locks it.
  Status Lock() override;
  Status List(std::vector<MediumSegment>* segments, std::vector<std::string>* set_aside) override;
  Status Read(const MediumSegment& seg, std::string* data) override;
  Status CutTail(const MediumSegment& seg, uint64_t at) override;
  Result<MediumSegment> Start(uint64_t seq, const std::string& header) override;
  Status Append(const std::string& bytes) override;
  Status Sync() override;
  Status Retire(const MediumSegment& seg, bool damaged) override;
  // The sync thread's failure, if it had one.
  Status Health() override;

 private:
  void SyncDir();
  Status SetAside(const MediumSegment& seg);
  void SyncLoop();

  std::string dir_, where_;
  FsyncMode fsync_;
  std::chrono::milliseconds fsync_interval_;
  int lock_fd_ = -1;
  uint64_t head_bytes_ = 0;  // of the head file, as written

  // The head segment's fd, shared with the sync thread.
  std::mutex fd_mu_;
  int fd_ = -1;
  std::atomic<uint64_t> written_{0}, synced_{0};
  std::condition_variable sync_cv_;
  bool stop_sync_ = false;
  std::thread sync_thread_;
  std::atomic<int> sync_errno_{0};  // the sync thread's failure, for Append to report
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOURNAL_MEDIUM_H_
