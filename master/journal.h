// Journal: the master's state on disk (task_master --data-dir DIR), so that
// a master killed at any moment comes back with every acknowledged put and
// every accepted result.
//
// An append-only log in segment files (DIR/journal-NNNNNNNNNNNNNNNN.tqj).
// Each record is framed as [u32 length][u32 CRC-32C][msgpack payload], so
// recovery can tell a torn or damaged record from a whole one; it replays
// every whole record and reports (and cuts off) what is not.
//
// Group commit: the Broker's changes of a loop pass pile up in memory and
// go to the file in one write() before any reply that depends on them is
// sent (the Server calls Commit first). --fsync chooses when they reach the
// disk: always (fdatasync before those replies), interval (a thread syncs
// every few ms), never (the kernel decides). A write() survives a kill -9 of
// the process whatever the mode; only a crash of the machine needs fsync.
//
// Compaction, as it goes: the master always appends to a fresh segment.
// When the segments hold well more than the live entries need, the oldest
// is retired: every live entry with an id below the next segment's first id
// is written again, whole, to the head (a few thousand per loop pass), and
// then the old file is deleted. So the size on disk follows the live data,
// and an entry that lives for ever cannot pin old files (beanstalkd's
// binlog's best-known flaw).
//
// Thread: the master's loop thread, but for the fsync thread inside.
#ifndef TASKQ_MASTER_JOURNAL_H_
#define TASKQ_MASTER_JOURNAL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "master/broker.h"
#include "master/state_log.h"
#include "proto/status.h"

namespace taskq {

enum class FsyncMode { kAlways, kInterval, kNever };

struct JournalOptions {
  std::string dir;
  FsyncMode fsync = FsyncMode::kInterval;
  std::chrono::milliseconds fsync_interval{5};
  uint64_t segment_bytes = 64u << 20;  // a new segment after this many bytes
};

// What Open found on disk.
struct RecoveryReport {
  int segments = 0;
  uint64_t records = 0;
  uint64_t ready = 0;       // tasks back in their queues (leased ones included)
  uint64_t outcomes = 0;    // outcomes waiting to be collected
  uint64_t torn_bytes = 0;  // cut off the end of a segment: a record the crash interrupted
  std::vector<std::string> problems;  // one sentence each: damaged records skipped
};

class Journal : public StateLog {
 public:
  // Opens DIR (creating it), locks it against a second master, replays it
  // into broker (which must be fresh) and starts a new segment.
  static Result<std::unique_ptr<Journal>> Open(const JournalOptions& options, Broker& broker,
                                               RecoveryReport* report);
  ~Journal() override;  // commits and syncs what is pending

  // Names the task ids of this data dir (welcome.epoch): random when the
  // directory was first used, the same ever after.
  uint64_t epoch() const { return epoch_; }

  // Writes what is pending, in one write(); with FsyncMode::kAlways also
  // waits for the disk. Must precede every send that depends on it.
  bool pending() const { return !pending_.empty(); }
  Status Commit();
  // One step of compaction, when one is due: rewrites up to budget live
  // entries, deletes a segment when its entries are all safe elsewhere.
  // Call between passes (no entry is half-delivered then).
  Status Compact(std::size_t budget = 20000);

  uint64_t bytes_on_disk() const;
  std::size_t segments() const { return segments_.size(); }

  // StateLog.
  void Put(uint64_t first_id, std::string_view queue, std::string_view reply_to,
           std::string_view items) override;
  void Lease(const std::vector<uint64_t>& ids) override;
  void Unlease(uint64_t id) override;
  void Done(uint64_t id, const StoredOutcome& outcome) override;
  void Take(const std::vector<uint64_t>& ids) override;
  void Entry(uint64_t id, std::string_view queue, std::string_view reply_to, std::string_view kind,
             const Slot& slot, uint32_t timeout_ms, const StoredOutcome* outcome) override;

 private:
  struct Segment {
    uint64_t seq;
    std::string path;
    uint64_t bytes;
    uint64_t first_id;  // next_id when it was started: ids below were made before
  };

  Journal(JournalOptions options, Broker& broker);
  Status Lock();
  Status Replay(RecoveryReport* report);
  Status ReplaySegment(Segment& seg, bool last, RecoveryReport* report);
  Status StartSegment();
  Status RetireOldest();
  Status Reserve(uint64_t end);
  Status Fatal(Status s);
  void SyncDir();
  Status WriteAll(const std::string& bytes);
  void Frame(const std::string& payload);
  void IdsRecord(uint64_t op, const std::vector<uint64_t>& ids);
  void SyncLoop();

  JournalOptions options_;
  Broker& broker_;
  int lock_fd_ = -1;
  uint64_t epoch_ = 0;
  std::deque<Segment> segments_;  // oldest first; the last is written to
  std::string pending_;
  std::string scratch_;

  // The head segment's fd, shared with the sync thread.
  std::mutex fd_mu_;
  int fd_ = -1;
  std::atomic<uint64_t> written_{0}, synced_{0};
  std::condition_variable sync_cv_;
  bool stop_sync_ = false;
  std::thread sync_thread_;

  uint64_t reserved_ = 0;           // ids below are reserved on disk (kReserve records)
  Status failed_;                   // once a write or sync failed, every Commit fails
  std::atomic<int> sync_errno_{0};  // the sync thread's failure, for Commit to report

  // Compaction of segments_.front(): rewrite live ids below the next
  // segment's first id, from cursor_ on.
  bool compacting_ = false;
  uint64_t cursor_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOURNAL_H_
