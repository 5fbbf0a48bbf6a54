#include "master/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "master/journal_frame.h"
#include "master/journal_records.h"
#include "proto/limits.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

// Compaction writes at most this much per loop pass.
constexpr std::size_t kCompactBytesPerPass = 8u << 20;

void WriteIds(MsgpackWriter& w, const std::vector<uint64_t>& ids) {
  w.Array(static_cast<uint32_t>(ids.size()));
  for (uint64_t id : ids) w.Uint(id);
}

}  // namespace

Journal::Journal(JournalOptions options, Broker& broker)
    : options_(std::move(options)), broker_(broker) {}

Journal::~Journal() {
  (void)Commit();
  if (sync_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(fd_mu_);
      stop_sync_ = true;
    }
    sync_cv_.notify_all();
    sync_thread_.join();
  }
  if (fd_ >= 0) {
    if (options_.fsync != FsyncMode::kNever) fdatasync(fd_);
    close(fd_);
  }
  if (lock_fd_ >= 0) close(lock_fd_);
}

Result<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options, Broker& broker,
                                               RecoveryReport* report) {
  RecoveryReport ignored;
  if (!report) report = &ignored;
  std::unique_ptr<Journal> j(new Journal(options, broker));
  // Task arguments and results are the user's data: a data dir the master
  // makes is 0700 and its files 0600 (README, "Security"). One that exists
  // keeps the mode its owner gave it; its parents follow the umask.
  std::error_code ec;
  if (!fs::is_directory(options.dir, ec)) {
    fs::path dir(options.dir);
    if (!dir.has_filename()) dir = dir.parent_path();  // "state/" is "state"
    const fs::path parent = dir.parent_path();
    ec.clear();  // is_directory's "no such file" is the case handled here
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec || (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST))
      return Status::Error(Code::kIo, "cannot create the data dir " + options.dir + ": " +
                                          (ec ? ec.message() : std::strerror(errno)));
  }
  TASKQ_TRY(j->Lock());
  TASKQ_TRY(j->Replay(report));
  broker.queues().FinishRecovery();
  QueueSet& qs = broker.queues();
  qs.ForEachEntry(0, qs.next_id(), SIZE_MAX, [report](uint64_t, const Slot& s) {
    ++(s.state == SlotState::kDone ? report->outcomes : report->ready);
  });
  TASKQ_TRY(j->StartSegment());
  j->made_end_ = qs.next_id();  // made before, or skipped by this start
  if (options.fsync == FsyncMode::kInterval)
    j->sync_thread_ = std::thread([raw = j.get()] { raw->SyncLoop(); });
  return j;
}

// One master per data dir: a second one would interleave its records.
Status Journal::Lock() {
  const std::string path = options_.dir + "/LOCK";
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return JournalIo("cannot open " + path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Error(Code::kIo, "another task_master is using the data dir " + options_.dir);
    return JournalIo("cannot lock " + path);
  }
  return Status::Ok();
}

// The header is written and on disk before the segment gets its name, so a
// segment file always says which ids it follows (a crash in between leaves
// a ".new" file, removed at the next start).
Status Journal::StartSegment() {
  const uint64_t seq = segments_.empty() ? 1 : segments_.back().seq + 1;
  const std::string path = options_.dir + "/" + SegmentName("journal", seq);
  const std::string temp = path + ".new";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return JournalIo("cannot create " + temp);
  const uint64_t first_id = broker_.queues().next_id();
  std::string header, frame;
  MsgpackWriter(&header)
      .Array(6)
      .Uint(JournalRecord::kHeader)
      .Str(kJournalMagic)
      .Uint(kJournalFormat)
      .Uint(epoch_)
      .Uint(first_id)
      .Uint(prior_end_);
  AppendFrame(&frame, 0, header);
  if (write(fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size()) ||
      fdatasync(fd) != 0 || rename(temp.c_str(), path.c_str()) != 0) {
    const Status s = JournalIo("cannot start the journal segment " + path);
    close(fd);
    unlink(temp.c_str());
    return s;
  }
  SyncDir();
  int old = -1;
  {
    std::lock_guard<std::mutex> lock(fd_mu_);
    old = fd_;
    fd_ = fd;
  }
  if (old >= 0) {
    // Everything in the old segment reaches the disk before it is left.
    const bool synced = options_.fsync == FsyncMode::kNever || fdatasync(old) == 0;
    close(old);
    if (!synced) return Fatal(JournalIo("cannot sync the journal in " + options_.dir));
  }
  segments_.push_back(Segment{seq, path, frame.size(), first_id});
  return Status::Ok();
}

// The directory's entries (a new or deleted segment) survive a crash too.
void Journal::SyncDir() {
  const int dir = open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

// Ids up to end must be reserved on disk before they are handed out.
Status Journal::Reserve(uint64_t end) {
  if (end <= reserved_) return Status::Ok();
  reserved_ = end + kJournalReserveStep;
  scratch_.clear();
  MsgpackWriter(&scratch_).Array(2).Uint(JournalRecord::kReserve).Uint(reserved_);
  Frame(scratch_);
  TASKQ_TRY(Commit());
  std::lock_guard<std::mutex> lock(fd_mu_);
  if (fdatasync(fd_) != 0) return Fatal(JournalIo("cannot sync the journal in " + options_.dir));
  return Status::Ok();
}

// A journal that failed to write or sync stays failed: the master stops
// rather than acknowledge what may not be on disk.
Status Journal::Fatal(Status s) {
  if (failed_.ok()) failed_ = s;
  return failed_;
}

// pending_ goes to the end of the head segment: the frame's offset is known.
void Journal::Frame(const std::string& payload) {
  AppendFrame(&pending_, segments_.back().bytes + pending_.size(), payload);
}

Status Journal::WriteAll(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return JournalIo("cannot write the journal in " + options_.dir);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status Journal::Commit() {
  if (!failed_.ok()) return failed_;
  if (const int e = sync_errno_.load(); e != 0) {
    errno = e;
    return Fatal(JournalIo("cannot sync the journal in " + options_.dir));
  }
  if (pending_.empty()) return Status::Ok();
  if (Status s = WriteAll(pending_); !s.ok()) {
    // Cut off what part of the write went through: a later start must not
    // take it for a record a crash interrupted and drop what follows.
    [[maybe_unused]] const int cut = ftruncate(fd_, static_cast<off_t>(segments_.back().bytes));
    return Fatal(s);
  }
  segments_.back().bytes += pending_.size();
  const uint64_t written = written_.fetch_add(pending_.size()) + pending_.size();
  pending_.clear();
  if (options_.fsync == FsyncMode::kAlways) {
    if (fdatasync(fd_) != 0) return Fatal(JournalIo("cannot sync the journal in " + options_.dir));
    synced_ = written;
  } else {
    sync_cv_.notify_one();
  }
  if (segments_.back().bytes >= options_.segment_bytes) {
    // Not next_id: a put whose ids are made may be on its way to the new
    // segment (its id reservation commits first).
    prior_end_ = made_end_;
    if (Status s = StartSegment(); !s.ok()) return Fatal(s);
  }
  return Status::Ok();
}

void Journal::SyncLoop() {
  std::unique_lock<std::mutex> lock(fd_mu_);
  while (!stop_sync_) {
    sync_cv_.wait_for(lock, options_.fsync_interval);
    const uint64_t written = written_.load();
    if (written == synced_.load() || fd_ < 0) continue;
    // Group commit: one fdatasync covers every write since the last one.
    // A failure is kept for the loop: on Linux the pages it could not write
    // are no longer dirty, so a later sync would not report it.
    if (fdatasync(fd_) != 0) sync_errno_ = errno;
    synced_ = written;
    // Wait out the interval: syncing more often than asked only costs.
    sync_cv_.wait_for(lock, options_.fsync_interval, [this] { return stop_sync_; });
  }
}

uint64_t Journal::bytes_on_disk() const {
  uint64_t total = 0;
  for (const Segment& s : segments_) total += s.bytes;
  return total;
}

Status Journal::Compact(std::size_t budget) {
  if (segments_.size() < 2) return Status::Ok();  // the head is written to
  const uint64_t boundary = segments_[1].first_id;
  QueueSet& qs = broker_.queues();
  if (!failed_.ok() || boundary == 0) return failed_;  // never retire on an unknown boundary
  if (!compacting_) {
    // Nothing below the boundary lives: the oldest file has nothing to say.
    if (qs.table().FirstLive() >= boundary) return RetireOldest();
    // Else rewriting costs: do it when the files hold well more than the
    // live entries need.
    const uint64_t live_bytes = qs.table().live() * 48 + qs.table().heap_bytes();
    if (segments_.size() < 3 || bytes_on_disk() < 2 * live_bytes + 2 * options_.segment_bytes)
      return Status::Ok();
    compacting_ = true;
    cursor_ = 0;
  }
  // A few thousand entries, or a few MiB, per pass: the loop stays responsive.
  const std::size_t start = pending_.size();
  for (std::size_t done = 0;
       cursor_ < boundary && done < budget && pending_.size() - start < kCompactBytesPerPass;
       done += 256) {
    cursor_ = qs.ForEachEntry(cursor_, boundary, 256, [&](uint64_t id, const Slot& s) {
      if (s.state == SlotState::kTaken) return;  // mid-delivery: its take (or restore) is recorded
      Rewrite(id, qs.QueueName(s.queue), qs.QueueName(s.reply_to), qs.KindName(s.kind), s,
            broker_.TimeoutOf(id), qs.OutcomeOf(s));
    });
  }
  if (cursor_ < boundary) return Status::Ok();
  compacting_ = false;
  return RetireOldest();
}

// Everything the oldest segment knew is in newer ones: make them durable,
// then delete it (or set it aside, if it had damage).
// (Whatever --fsync says: the copies being lost with the original would lose
// entries of any age.)
Status Journal::RetireOldest() {
  TASKQ_TRY(Commit());
  {
    std::lock_guard<std::mutex> lock(fd_mu_);
    if (fdatasync(fd_) != 0) return Fatal(JournalIo("cannot sync the journal in " + options_.dir));
  }
  const Segment& old = segments_.front();
  if (old.damaged) {
    TASKQ_TRY(SetAside(old));
  } else if (unlink(old.path.c_str()) != 0) {
    return Fatal(JournalIo("cannot delete " + old.path));
  }
  segments_.pop_front();
  SyncDir();
  return Status::Ok();
}

// A damaged segment's bytes are kept for whoever wants to look at them (or
// salvage what this version could not read), under a name no start reads.
Status Journal::SetAside(const Segment& seg) {
  const std::string base = options_.dir + "/" + SegmentName("damaged", seg.seq);
  std::string target = base;
  for (int n = 2; fs::exists(target); ++n)
    target = base.substr(0, base.size() - 4) + "-" + std::to_string(n) + ".tqj";
  if (rename(seg.path.c_str(), target.c_str()) != 0)
    return Fatal(JournalIo("cannot rename " + seg.path + " to " + target));
  return Status::Ok();
}

// --- StateLog -----------------------------------------------------------------

void Journal::Put(uint64_t first_id, std::string_view queue, std::string_view reply_to,
                  std::string_view items) {
  uint32_t count = 0;
  MsgpackReader(items).ReadArrayHeader(&count, kMaxBatch);
  if (!Reserve(first_id + count).ok()) return;  // failed: the next Commit says so
  scratch_.clear();
  MsgpackWriter(&scratch_)
      .Array(5)
      .Uint(JournalRecord::kPut)
      .Uint(first_id)
      .Str(queue)
      .Str(reply_to)
      .Raw(items);
  Frame(scratch_);
  made_end_ = std::max(made_end_, first_id + count);
}

void Journal::Lease(const std::vector<uint64_t>& ids) { IdsRecord(JournalRecord::kLease, ids); }

void Journal::Unlease(uint64_t id) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(2).Uint(JournalRecord::kUnlease).Array(1).Uint(id);
  Frame(scratch_);
}

void Journal::Done(uint64_t id, const StoredOutcome& outcome) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(3).Uint(JournalRecord::kDone).Uint(id);
  WriteOutcome(w, outcome);
  Frame(scratch_);
}

void Journal::Take(const std::vector<uint64_t>& ids) { IdsRecord(JournalRecord::kTake, ids); }

// [op, [id, ...]]
void Journal::IdsRecord(uint64_t op, const std::vector<uint64_t>& ids) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(2).Uint(op);
  WriteIds(w, ids);
  Frame(scratch_);
}

void Journal::Rewrite(uint64_t id, std::string_view queue, std::string_view reply_to,
                    std::string_view kind, const Slot& slot, uint32_t timeout_ms,
                    const StoredOutcome* outcome) {
  if (!Reserve(id + 1).ok()) return;  // a new entry's id (a failure record); old ones are reserved
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(9)
      .Uint(JournalRecord::kEntry)
      .Uint(id)
      .Str(queue)
      .Str(reply_to)
      .Str(kind)
      .Raw(slot.arg.view())
      .Uint(slot.attempt);
  w.Uint(timeout_ms);
  if (outcome)
    WriteOutcome(w, *outcome);
  else
    w.Nil();
  Frame(scratch_);
  made_end_ = std::max(made_end_, id + 1);
}

}  // namespace taskq
