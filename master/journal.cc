#include "master/journal.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "master/crc32c.h"
#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

// Record types: the first element of every payload.
enum RecordType : uint64_t {
  kHeader = 0,
  kPut = 1,
  kLease = 2,
  kUnlease = 3,
  kDone = 4,
  kTake = 5,
  kEntry = 6,
  kReserve = 7,
};

// Ids are reserved on disk this many at a time, before any is handed out:
// a crash that loses the last records (power, --fsync interval) must not
// lose which ids were used, or a worker's late result could complete
// another task that got the same id.
constexpr uint64_t kReserveStep = 1u << 20;
// Compaction writes at most this much per loop pass.
constexpr std::size_t kCompactBytesPerPass = 8u << 20;

constexpr std::string_view kMagic = "taskq-journal";
constexpr uint64_t kFormat = 1;
constexpr std::size_t kFrameHeader = 8;
constexpr uint32_t kMaxRecord = 2 * kMaxMessageBytes;  // a put record holds a whole message's items

Status Io(const std::string& what) {
  return Status::Error(Code::kIo, what + ": " + std::strerror(errno));
}

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, arm64): the format says LE
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string SegmentName(uint64_t seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "journal-%016llu.tqj", static_cast<unsigned long long>(seq));
  return buf;
}

void WriteIds(MsgpackWriter& w, const std::vector<uint64_t>& ids) {
  w.Array(static_cast<uint32_t>(ids.size()));
  for (uint64_t id : ids) w.Uint(id);
}

void WriteOutcome(MsgpackWriter& w, const StoredOutcome& o) {
  w.Array(4).Bool(o.ok);
  if (o.ok)
    w.Raw(o.data);
  else
    w.Str(o.data);
  w.Str(o.worker).Uint(o.elapsed_us);
}

bool ReadOutcome(MsgpackReader& r, StoredOutcome* o) {
  uint32_t n;
  std::string_view data, worker;
  if (!r.ReadArrayHeader(&n) || n < 4 || !r.ReadBool(&o->ok)) return false;
  if (!(o->ok ? r.Skip(&data) : r.ReadStr(&data)) || !r.ReadStr(&worker) ||
      !r.ReadUint(&o->elapsed_us))
    return false;
  o->data.assign(data);
  o->worker.assign(worker);
  for (uint32_t i = 4; i < n; ++i)
    if (!r.Skip()) return false;
  return true;
}

// Replays one record's payload into the broker's state.
class Replayer {
 public:
  explicit Replayer(Broker& broker) : broker_(broker), qs_(broker.queues()) {}

  // False when the payload is not a record this version understands.
  bool Apply(std::string_view payload, uint64_t* header_epoch, uint64_t* header_first_id) {
    MsgpackReader r(payload);
    uint32_t n;
    uint64_t type;
    if (!r.ReadArrayHeader(&n) || n < 1 || !r.ReadUint(&type)) return false;
    switch (type) {
      case kHeader:
        return Header(r, header_epoch, header_first_id);
      case kPut:
        return Put(r);
      case kLease:
        return Ids(r, [this](uint64_t id) {
          if (Slot* s = qs_.Find(id); s && s->state == SlotState::kReady && s->attempt < 255)
            ++s->attempt;
        });
      case kUnlease:
        return Ids(r, [this](uint64_t id) {
          if (Slot* s = qs_.Find(id); s && s->state == SlotState::kReady && s->attempt > 0)
            --s->attempt;
        });
      case kDone:
        return Done(r);
      case kTake:
        return Ids(r, [this](uint64_t id) {
          qs_.RecoverFree(id);
          broker_.SetTimeout(id, 0);
        });
      case kEntry:
        return Entry(r);
      case kReserve: {
        uint64_t until;
        if (!r.ReadUint(&until)) return false;
        qs_.mutable_table().AdvanceNextId(until);
        return true;
      }
      default:
        return false;
    }
  }

 private:
  bool Header(MsgpackReader& r, uint64_t* epoch, uint64_t* first_id) {
    std::string_view magic;
    uint64_t format;
    if (!r.ReadStr(&magic) || magic != kMagic || !r.ReadUint(&format) || format != kFormat)
      return false;
    if (!r.ReadUint(epoch) || !r.ReadUint(first_id)) return false;
    qs_.mutable_table().AdvanceNextId(*first_id);
    return true;
  }

  bool Put(MsgpackReader& r) {
    uint64_t first;
    std::string_view queue, reply_to, raw_items;
    if (!r.ReadUint(&first) || !r.ReadStr(&queue) || !r.ReadStr(&reply_to) || !r.Skip(&raw_items))
      return false;
    std::vector<NewTask> items;
    if (!DecodePutItems(raw_items, &items).ok()) return false;
    Result<uint32_t> q = qs_.QueueId(queue), reply = qs_.QueueId(reply_to);
    if (!q.ok() || !reply.ok()) return false;
    for (std::size_t i = 0; i < items.size(); ++i) {
      Result<uint16_t> kind = qs_.KindId(items[i].kind);
      if (!kind.ok()) return false;
      qs_.RecoverEntry(first + i, *q, *reply, *kind, items[i].arg.empty() ? "\xc0" : items[i].arg,
                       0, nullptr);
      broker_.SetTimeout(first + i, items[i].timeout_ms);
    }
    return true;
  }

  template <typename Fn>
  bool Ids(MsgpackReader& r, Fn fn) {
    uint32_t n;
    if (!r.ReadArrayHeader(&n)) return false;
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t id;
      if (!r.ReadUint(&id)) return false;
      fn(id);
    }
    return true;
  }

  bool Done(MsgpackReader& r) {
    uint64_t id;
    StoredOutcome o;
    if (!r.ReadUint(&id) || !ReadOutcome(r, &o)) return false;
    broker_.SetTimeout(id, 0);
    qs_.RecoverDone(id, std::move(o));
    return true;
  }

  bool Entry(MsgpackReader& r) {
    uint64_t id, attempt, timeout;
    std::string_view queue, reply_to, kind, arg;
    if (!r.ReadUint(&id) || !r.ReadStr(&queue) || !r.ReadStr(&reply_to) || !r.ReadStr(&kind) ||
        !r.Skip(&arg) || !r.ReadUint(&attempt) || !r.ReadUint(&timeout))
      return false;
    StoredOutcome o;
    const bool done = !r.ReadNil();
    if (done && !ReadOutcome(r, &o)) return false;
    Result<uint32_t> q = qs_.QueueId(queue), reply = qs_.QueueId(reply_to);
    Result<uint16_t> k = qs_.KindId(kind);
    if (!q.ok() || !reply.ok() || !k.ok()) return false;
    qs_.RecoverEntry(id, *q, *reply, *k, arg,
                     static_cast<uint8_t>(std::min<uint64_t>(attempt, 255)), done ? &o : nullptr);
    broker_.SetTimeout(id, static_cast<uint32_t>(std::min<uint64_t>(timeout, UINT32_MAX)));
    return true;
  }

  Broker& broker_;
  QueueSet& qs_;
};

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
  std::unique_ptr<Journal> j(new Journal(options, broker));
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec)
    return Status::Error(Code::kIo,
                         "cannot create the data dir " + options.dir + ": " + ec.message());
  TASKQ_TRY(j->Lock());
  TASKQ_TRY(j->Replay(report));
  broker.queues().FinishRecovery();
  if (report) {
    QueueSet& qs = broker.queues();
    qs.mutable_table().ForEachLive(0, qs.table().next_id(), SIZE_MAX, [report](uint64_t, Slot& s) {
      ++(s.state == SlotState::kDone ? report->outcomes : report->ready);
    });
  }
  TASKQ_TRY(j->StartSegment());
  if (options.fsync == FsyncMode::kInterval)
    j->sync_thread_ = std::thread([raw = j.get()] { raw->SyncLoop(); });
  return j;
}

// One master per data dir: a second one would interleave its records.
Status Journal::Lock() {
  const std::string path = options_.dir + "/LOCK";
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Io("cannot open " + path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Error(Code::kIo, "another task_master is using the data dir " + options_.dir);
    return Io("cannot lock " + path);
  }
  return Status::Ok();
}

Status Journal::Replay(RecoveryReport* report) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = e.path().filename().string();
    unsigned long long seq;
    if (std::sscanf(name.c_str(), "journal-%16llu.", &seq) != 1) continue;
    if (name == SegmentName(seq) + ".new") {  // a segment whose header never got written
      std::error_code ignored;
      fs::remove(e.path(), ignored);
      continue;
    }
    if (name != SegmentName(seq)) continue;
    segments_.push_back(Segment{seq, e.path().string(), 0, 0});
  }
  if (ec)
    return Status::Error(Code::kIo,
                         "cannot read the data dir " + options_.dir + ": " + ec.message());
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  for (std::size_t i = 0; i < segments_.size(); ++i)
    TASKQ_TRY(ReplaySegment(segments_[i], i + 1 == segments_.size(), report));
  // A segment whose header did not replay (damaged) says nothing about
  // which ids are older than it: take the next one's, so compaction never
  // retires it on a made-up boundary.
  uint64_t next = broker_.queues().table().next_id();
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (it->first_id == 0) it->first_id = next;
    next = it->first_id;
  }
  reserved_ = broker_.queues().table().next_id();
  if (report) report->segments = static_cast<int>(segments_.size());
  if (epoch_ == 0) {
    randombytes_buf(&epoch_, sizeof epoch_);
    epoch_ |= 1;  // never 0
  }
  return Status::Ok();
}

Status Journal::ReplaySegment(Segment& seg, bool last, RecoveryReport* report) {
  std::ifstream in(seg.path, std::ios::binary);
  if (!in) return Io("cannot read " + seg.path);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Replayer replay(broker_);
  std::size_t off = 0;
  uint64_t records = 0;
  while (off < data.size()) {
    const std::size_t left = data.size() - off;
    const uint32_t len = left >= kFrameHeader ? GetU32(data.data() + off) : 0;
    const bool whole =
        left >= kFrameHeader && len <= kMaxRecord && len <= left - kFrameHeader &&
        GetU32(data.data() + off + 4) == Crc32c(data.data() + off + kFrameHeader, len);
    uint64_t epoch = 0, first_id = 0;
    if (!whole ||
        !replay.Apply(std::string_view(data).substr(off + kFrameHeader, len), &epoch, &first_id)) {
      if (last && whole == false) {
        // The record a crash interrupted: cut it off, so the next start
        // does not meet it again.
        if (report) report->torn_bytes += left;
        if (truncate(seg.path.c_str(), static_cast<off_t>(off)) != 0)
          return Io("cannot truncate " + seg.path);
      } else if (report) {
        report->problems.push_back(seg.path + ": the record at byte " + std::to_string(off) +
                                   " is damaged; the " + std::to_string(left) +
                                   " bytes from there on were skipped");
      }
      break;
    }
    if (first_id) seg.first_id = first_id;
    if (epoch && !epoch_) epoch_ = epoch;
    off += kFrameHeader + len;
    ++records;
  }
  seg.bytes = off;
  if (report) report->records += records;
  return Status::Ok();
}

// The header is written and on disk before the segment gets its name, so a
// segment file always says which ids it follows (a crash in between leaves
// a ".new" file, removed at the next start).
Status Journal::StartSegment() {
  const uint64_t seq = segments_.empty() ? 1 : segments_.back().seq + 1;
  const std::string path = options_.dir + "/" + SegmentName(seq);
  const std::string temp = path + ".new";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Io("cannot create " + temp);
  const uint64_t first_id = broker_.queues().table().next_id();
  std::string header;
  MsgpackWriter(&header).Array(5).Uint(kHeader).Str(kMagic).Uint(kFormat).Uint(epoch_).Uint(
      first_id);
  std::string frame;
  PutU32(&frame, static_cast<uint32_t>(header.size()));
  PutU32(&frame, Crc32c(header.data(), header.size()));
  frame += header;
  if (write(fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size()) ||
      fdatasync(fd) != 0 || rename(temp.c_str(), path.c_str()) != 0) {
    const Status s = Io("cannot start the journal segment " + path);
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
    if (!synced) return Fatal(Io("cannot sync the journal in " + options_.dir));
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
  reserved_ = end + kReserveStep;
  scratch_.clear();
  MsgpackWriter(&scratch_).Array(2).Uint(kReserve).Uint(reserved_);
  Frame(scratch_);
  TASKQ_TRY(Commit());
  std::lock_guard<std::mutex> lock(fd_mu_);
  if (fdatasync(fd_) != 0) return Fatal(Io("cannot sync the journal in " + options_.dir));
  return Status::Ok();
}

// A journal that failed to write or sync stays failed: the master stops
// rather than acknowledge what may not be on disk.
Status Journal::Fatal(Status s) {
  if (failed_.ok()) failed_ = s;
  return failed_;
}

void Journal::Frame(const std::string& payload) {
  PutU32(&pending_, static_cast<uint32_t>(payload.size()));
  PutU32(&pending_, Crc32c(payload.data(), payload.size()));
  pending_.append(payload);
}

Status Journal::WriteAll(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Io("cannot write the journal in " + options_.dir);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status Journal::Commit() {
  if (!failed_.ok()) return failed_;
  if (const int e = sync_errno_.load(); e != 0) {
    errno = e;
    return Fatal(Io("cannot sync the journal in " + options_.dir));
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
    if (fdatasync(fd_) != 0) return Fatal(Io("cannot sync the journal in " + options_.dir));
    synced_ = written;
  } else {
    sync_cv_.notify_one();
  }
  if (segments_.back().bytes >= options_.segment_bytes) {
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
    cursor_ = qs.mutable_table().ForEachLive(cursor_, boundary, 256, [&](uint64_t id, Slot& s) {
      if (s.state == SlotState::kTaken) return;  // mid-delivery: its take (or restore) is recorded
      Entry(id, qs.QueueName(s.queue), qs.QueueName(s.reply_to), qs.KindName(s.kind), s,
            broker_.TimeoutOf(id), qs.OutcomeOf(s));
    });
  }
  if (cursor_ < boundary) return Status::Ok();
  compacting_ = false;
  return RetireOldest();
}

// Everything the oldest segment knew is in newer ones: make them durable,
// then delete it.
// (Whatever --fsync says: the copies being lost with the original would lose
// entries of any age.)
Status Journal::RetireOldest() {
  TASKQ_TRY(Commit());
  {
    std::lock_guard<std::mutex> lock(fd_mu_);
    if (fdatasync(fd_) != 0) return Fatal(Io("cannot sync the journal in " + options_.dir));
  }
  if (unlink(segments_.front().path.c_str()) != 0)
    return Fatal(Io("cannot delete " + segments_.front().path));
  segments_.pop_front();
  SyncDir();
  return Status::Ok();
}

// --- StateLog -----------------------------------------------------------------

void Journal::Put(uint64_t first_id, std::string_view queue, std::string_view reply_to,
                  std::string_view items) {
  uint32_t count = 0;
  MsgpackReader(items).ReadArrayHeader(&count, kMaxBatch);
  if (!Reserve(first_id + count).ok()) return;  // failed: the next Commit says so
  scratch_.clear();
  MsgpackWriter(&scratch_).Array(5).Uint(kPut).Uint(first_id).Str(queue).Str(reply_to).Raw(items);
  Frame(scratch_);
}

void Journal::Lease(const std::vector<uint64_t>& ids) { IdsRecord(kLease, ids); }

void Journal::Unlease(uint64_t id) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(2).Uint(kUnlease).Array(1).Uint(id);
  Frame(scratch_);
}

void Journal::Done(uint64_t id, const StoredOutcome& outcome) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(3).Uint(kDone).Uint(id);
  WriteOutcome(w, outcome);
  Frame(scratch_);
}

void Journal::Take(const std::vector<uint64_t>& ids) { IdsRecord(kTake, ids); }

// [op, [id, ...]]
void Journal::IdsRecord(uint64_t op, const std::vector<uint64_t>& ids) {
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(2).Uint(op);
  WriteIds(w, ids);
  Frame(scratch_);
}

void Journal::Entry(uint64_t id, std::string_view queue, std::string_view reply_to,
                    std::string_view kind, const Slot& slot, uint32_t timeout_ms,
                    const StoredOutcome* outcome) {
  if (!Reserve(id + 1).ok()) return;  // a new entry's id (a failure record); old ones are reserved
  scratch_.clear();
  MsgpackWriter w(&scratch_);
  w.Array(9)
      .Uint(kEntry)
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
}

}  // namespace taskq
