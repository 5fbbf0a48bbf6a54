#include "master/journal.h"

#include <algorithm>

#include "master/journal_frame.h"
#include "master/journal_records.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Compaction writes at most this much per loop pass.
constexpr std::size_t kCompactBytesPerPass = 8u << 20;

void WriteIds(MsgpackWriter& w, const std::vector<uint64_t>& ids) {
  w.Array(static_cast<uint32_t>(ids.size()));
  for (uint64_t id : ids) w.Uint(id);
}

}  // namespace

Journal::Journal(JournalOptions options, Broker& broker, std::unique_ptr<JournalMedium> medium)
    : options_(std::move(options)), broker_(broker), medium_(std::move(medium)) {}

Journal::~Journal() { (void)Commit(); }

Result<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options, Broker& broker,
                                               RecoveryReport* report) {
  RecoveryReport ignored;
  if (!report) report = &ignored;
  std::unique_ptr<JournalMedium> medium;
  if (options.open_medium) {
    Result<std::unique_ptr<JournalMedium>> m = options.open_medium();
    if (!m.ok()) return m.status();
    medium = std::move(*m);
  } else {
    medium = std::make_unique<FileMedium>(options.dir, options.fsync, options.fsync_interval);
  }
  std::unique_ptr<Journal> j(new Journal(options, broker, std::move(medium)));
  TASKQ_TRY(j->medium_->Lock());
  TASKQ_TRY(j->Replay(report));
  broker.queues().FinishRecovery();
  QueueSet& qs = broker.queues();
  qs.ForEachEntry(0, qs.next_id(), SIZE_MAX, [report](uint64_t, const Slot& s) {
    ++(s.state == SlotState::kDone ? report->outcomes : report->ready);
  });
  TASKQ_TRY(j->StartSegment());
  j->made_end_ = qs.next_id();  // made before, or skipped by this start
  return j;
}

// A segment always says which ids it follows: the medium makes it the head
// only once its header is durable.
Status Journal::StartSegment() {
  const uint64_t seq = segments_.empty() ? 1 : segments_.back().seq + 1;
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
  Result<MediumSegment> seg = medium_->Start(seq, frame);
  if (!seg.ok()) return Fatal(seg.status());
  segments_.push_back(Segment{seq, seg->name, frame.size(), first_id});
  return Status::Ok();
}

// Ids up to end must be reserved on disk before they are handed out.
Status Journal::Reserve(uint64_t end) {
  if (end <= reserved_) return Status::Ok();
  reserved_ = end + kJournalReserveStep;
  scratch_.clear();
  MsgpackWriter(&scratch_).Array(2).Uint(JournalRecord::kReserve).Uint(reserved_);
  Frame(scratch_);
  TASKQ_TRY(Commit());
  if (Status s = medium_->Sync(); !s.ok()) return Fatal(s);
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

Status Journal::Commit() {
  if (!failed_.ok()) return failed_;
  if (pending_.empty()) {
    if (Status s = medium_->Health(); !s.ok()) return Fatal(s);
    return Status::Ok();
  }
  if (Status s = medium_->Append(pending_); !s.ok()) return Fatal(s);
  segments_.back().bytes += pending_.size();
  pending_.clear();
  if (segments_.back().bytes >= options_.segment_bytes) {
    // Not next_id: a put whose ids are made may be on its way to the new
    // segment (its id reservation commits first).
    prior_end_ = made_end_;
    if (Status s = StartSegment(); !s.ok()) return Fatal(s);
  }
  return Status::Ok();
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
  if (Status s = medium_->Sync(); !s.ok()) return Fatal(s);
  const Segment& old = segments_.front();
  if (Status s = medium_->Retire(MediumSegment{old.seq, old.path}, old.damaged); !s.ok())
    return Fatal(s);
  segments_.pop_front();
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
