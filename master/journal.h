// Journal: the master's state on disk (task_master --data-dir DIR), so that
// a master killed at any moment comes back with every acknowledged put and
// every accepted result.
//
// An append-only log in segment files (DIR/journal-NNNNNNNNNNNNNNNN.tqj).
// Each record is framed with a magic, its length and two CRC-32Cs
// (journal_frame.h; docs/JOURNAL.md has the format), so recovery can tell a
// whole record from a torn or damaged one, and find the next whole record
// after damage.
//
// Group commit: the Broker's changes of a loop pass pile up in memory and
// go to the file in one write() before any reply that depends on them is
// sent (ServerLoop::SendReplies in master/server_loop.cc calls Commit as its
// durability barrier before each batch of replies). --fsync chooses when
// they reach the disk: always (fdatasync before those replies), interval (a
// thread syncs every few ms), never (the kernel decides). A write()
// survives a kill -9 of the process whatever the mode; only a crash of the
// machine needs fsync.
//
// Compaction, as it goes: the master always appends to a fresh segment.
// When the segments hold well more than the live entries need, the oldest
// is retired: every live entry with an id below the next segment's first id
// is written again, whole, to the head (a few thousand per loop pass), and
// then the old file is deleted. So the size on disk follows the live data,
// and an entry that lives for ever cannot pin old files (beanstalkd's
// binlog's best-known flaw).
//
// Recovery (journal_recovery.cc) replays every whole record of every
// segment, oldest first, and tells apart:
//  - a torn tail: the newest segment ends in the start of a record that a
//    crash cut short while it was written. That write never finished, so
//    nothing waiting on it was acknowledged (except after a power cut with
//    --fsync interval or never, which the README's table allows for). It is
//    cut off, so the next start does not meet it again (torn_bytes).
//  - damage: any other bytes that hold no whole record, in any segment (a
//    flipped bit, a zeroed block, an older segment cut short), a whole
//    record this version cannot read, or records missing after the end of a
//    segment (the next segment's header names ids that no record made).
//    Reading resumes at the next whole record, so exactly the damaged
//    records are lost. Each stretch is reported with its file, its bytes,
//    and which ids it made: ids are made in increasing order, so they are
//    those between the last made before it and the first made after it
//    (RecoveryReport::damage).
//
// Decision: after damage the master starts, serves everything intact, and
// reports the damage on stderr at every start while the files hold it. It
// does not refuse to start: that would keep every intact task waiting for
// someone to come by, who could decide nothing the master cannot (no version
// reads the damaged bytes) and would start it anyway. A file with damage is
// never truncated or deleted: the master writes only to a new segment, and
// when compaction retires a damaged segment (its live entries are safe in
// newer ones) it renames it DIR/damaged-N.tqj instead of deleting it. No
// start reads or removes those again; each lists them (set_aside) until
// someone removes them by hand. New ids after damage start far enough ahead
// (the damaged bytes' length plus a reservation) that an id the damaged
// records may have used is never given to another task.
//
// Format: a data dir written before the framing had its magic (format 1) is
// still read, and compaction moves its live entries to framed segments.
// Damage in a format-1 file cannot be resynchronised (there is no magic to
// look for): the rest of that file is skipped, reported, and kept.
//
// Thread: the master's loop thread (a medium may have a thread inside).
#ifndef TASKQ_MASTER_JOURNAL_H_
#define TASKQ_MASTER_JOURNAL_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "master/broker.h"
#include "master/journal_medium.h"
#include "master/state_log.h"
#include "proto/status.h"

namespace taskq {

struct JournalOptions {
  std::string dir;
  FsyncMode fsync = FsyncMode::kInterval;
  std::chrono::milliseconds fsync_interval{5};
  uint64_t segment_bytes = 64u << 20;  // a new segment after this many bytes
  // Another medium than files in dir (task_master --store: a NATS stream).
  // Called once, by Open; dir and the fsync options are then unused.
  std::function<Result<std::unique_ptr<JournalMedium>>()> open_medium;
};

// A stretch of a segment file that recovery skipped; the file keeps it.
struct JournalDamage {
  enum class Kind {
    kDamaged,     // bytes that hold no whole record
    kUnreadable,  // a whole record (its CRCs check out) this version cannot replay
    kMissing,     // records that came after the end of file are gone: the next segment's header
                  // names ids made before it that no record made (begin == end: the file's size)
  };
  std::string file;
  uint64_t begin = 0, end = 0;  // the bytes skipped: [begin, end)
  Kind kind = Kind::kDamaged;
  // Ids of the entries made in these bytes, [first_id, end_id), as the
  // records around them tell. exact: those and no others; else some of them
  // may never have been used. end_id 0: unknown (nothing after the damage
  // says where its ids stopped). first_id 0: this stretch follows another
  // with no record making ids in between; that one holds the range.
  uint64_t first_id = 0, end_id = 0;
  bool exact = false;
  uint64_t lost = 0;  // exact only: how many of those ids did not come back
};

// One sentence for a person: the file, the bytes, what was lost.
std::string Describe(const JournalDamage& d);

// What Open found on disk.
struct RecoveryReport {
  int segments = 0;
  uint64_t records = 0;
  uint64_t ready = 0;       // tasks back in their queues (leased ones included)
  uint64_t outcomes = 0;    // outcomes waiting to be collected
  uint64_t torn_bytes = 0;  // cut off the end of the newest segment: a record a crash cut short
  std::string torn_file;    // the segment they were cut from
  std::vector<JournalDamage> damage;   // skipped, in the order met; the files are kept
  uint64_t lost = 0;                   // entries known lost: the sum of damage[].lost
  std::vector<std::string> set_aside;  // DIR/damaged-*.tqj: damaged segments compaction retired
};

class Journal : public StateLog {
 public:
  // Opens DIR (creating it), or the medium options.open_medium makes, locks
  // it against a second master, replays it into broker (which must be
  // fresh) and starts a new segment. Damage is
  // not a failure: it goes in report (may be null), and Open succeeds.
  static Result<std::unique_ptr<Journal>> Open(const JournalOptions& options, Broker& broker,
                                               RecoveryReport* report);
  ~Journal() override;  // commits and syncs what is pending

  // Where the segments are, for messages: the data dir, the NATS store.
  const std::string& where() const { return medium_->where(); }
  // The loop commits at least this often, idle or not (a medium's failure
  // found outside a write is reported by the next Commit).
  std::chrono::milliseconds commit_every() const { return medium_->health_every(); }
  // Another master may carry on from this journal once this one stops.
  bool shared() const { return medium_->Shared(); }

  // Names the task ids of this data dir (welcome.epoch): random when the
  // directory was first used, the same ever after.
  uint64_t epoch() const { return epoch_; }

  // Writes what is pending, in one write(); with FsyncMode::kAlways also
  // waits for the disk. Must precede every send that depends on it.
  bool pending() const { return !pending_.empty(); }
  Status Commit();
  // One step of compaction, when one is due: rewrites up to budget live
  // entries, retires a segment when its entries are all safe elsewhere
  // (deletes it, or renames it damaged-N.tqj if it had damage).
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
  void Rewrite(uint64_t id, std::string_view queue, std::string_view reply_to,
               std::string_view kind, const Slot& slot, uint32_t timeout_ms,
               const StoredOutcome* outcome) override;

 private:
  class Replayer;  // applies records to the broker, and keeps track of damage
  struct Segment {
    uint64_t seq;
    std::string path;  // its name in the medium
    uint64_t bytes;
    uint64_t first_id;     // next_id when it was started: ids below were made before
    bool damaged = false;  // kept (set aside) when retired, never deleted
  };

  Journal(JournalOptions options, Broker& broker, std::unique_ptr<JournalMedium> medium);
  Status Replay(RecoveryReport* report);
  Status ListSegments(RecoveryReport* report);
  Status ReplaySegment(Segment& seg, bool newest, Replayer& replay, RecoveryReport* report);
  Status CutTornTail(Segment& seg, uint64_t at, RecoveryReport* report);
  Status StartSegment();
  Status RetireOldest();
  Status Reserve(uint64_t end);
  Status Fatal(Status s);
  void Frame(const std::string& payload);
  void IdsRecord(uint64_t op, const std::vector<uint64_t>& ids);

  JournalOptions options_;
  Broker& broker_;
  std::unique_ptr<JournalMedium> medium_;
  uint64_t epoch_ = 0;
  std::deque<Segment> segments_;  // oldest first; the last is written to
  std::string pending_;
  std::string scratch_;

  uint64_t reserved_ = 0;   // ids below are reserved on disk (kReserve records)
  uint64_t prior_end_ = 0;  // for the next segment's header: ids below were made before it
                            // (0: not known, after damage)
  uint64_t made_end_ = 0;   // one past the highest id whose put or entry record is framed
  Status failed_;           // once a write or sync failed, every Commit fails

  // Compaction of segments_.front(): rewrite live ids below the next
  // segment's first id, from cursor_ on.
  bool compacting_ = false;
  uint64_t cursor_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOURNAL_H_
