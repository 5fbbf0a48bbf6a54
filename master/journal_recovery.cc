// Recovery: Journal::Open's replay of the segments, and what it reports.
// (The writing side is journal.cc.)
#include <sodium.h>

#include <algorithm>
#include <unordered_set>

#include "master/journal.h"
#include "master/journal_frame.h"
#include "master/journal_records.h"

namespace taskq {
namespace {

std::string IdRange(uint64_t first, uint64_t end) {
  return end - first == 1 ? "id " + std::to_string(first)
                          : "ids " + std::to_string(first) + ".." + std::to_string(end - 1);
}

}  // namespace

std::string Describe(const JournalDamage& d) {
  std::string s = d.file + ", bytes " + std::to_string(d.begin) + ".." + std::to_string(d.end) +
                  " (" + std::to_string(d.end - d.begin) + " bytes): ";
  switch (d.kind) {
    case JournalDamage::Kind::kDamaged:
      s += "damaged, skipped (the file keeps them); ";
      break;
    case JournalDamage::Kind::kUnreadable:
      s += "a record this version cannot read, skipped (the file keeps it); ";
      break;
    case JournalDamage::Kind::kMissing:
      s = d.file + ": records that came after its end (byte " + std::to_string(d.end) +
          ") are missing (the file was cut short, or a segment after it removed); ";
      break;
  }
  if (d.first_id == 0) return s + "the ids made there are counted with the damage before it";
  if (d.end_id == d.first_id)
    return s +
           "no task was made there (a lease, result or take recorded there is lost: a task "
           "may run again, an outcome come twice)";
  if (d.end_id == 0)
    return s + "any task made there is lost (its id is " + std::to_string(d.first_id) +
           " or above)";
  if (!d.exact)
    return s + "any task made there is lost (its id is among " + IdRange(d.first_id, d.end_id) +
           ", not all of which were used)";
  const uint64_t made = d.end_id - d.first_id;
  if (d.lost == made)
    return s + std::to_string(d.lost) +
           " task(s) made there are lost: " + IdRange(d.first_id, d.end_id);
  return s + IdRange(d.first_id, d.end_id) + " were made there; " + std::to_string(d.lost) +
         " of them are lost (the rest came back from later records, or had been collected)";
}

// Replays record payloads into the broker's state, in journal order, and
// works out which ids damaged bytes held: ids are made in increasing order
// (puts, and entries the master makes), so the ids made in damage are those
// between the last made before it and the first made after it.
class Journal::Replayer {
 public:
  Replayer(Broker& broker, RecoveryReport* report)
      : broker_(broker), qs_(broker.queues()), report_(report) {}

  // False when the payload is not a record this version understands.
  bool Apply(std::string_view payload, uint64_t* header_epoch, uint64_t* header_first_id) {
    MsgpackReader r(payload);
    uint32_t n;
    uint64_t type;
    if (!r.ReadArrayHeader(&n) || n < 1 || !r.ReadUint(&type)) return false;
    switch (type) {
      case JournalRecord::kHeader:
        return Header(r, n, header_epoch, header_first_id);
      case JournalRecord::kPut:
        return Put(r);
      case JournalRecord::kLease:
        return Ids(r, [this](uint64_t id) { qs_.RecoverAttempt(id, +1); });
      case JournalRecord::kUnlease:
        return Ids(r, [this](uint64_t id) { qs_.RecoverAttempt(id, -1); });
      case JournalRecord::kDone:
        return Done(r);
      case JournalRecord::kTake:
        return Ids(r, [this](uint64_t id) {
          // An outcome collected whose entry was made in damaged bytes: not lost.
          if (!report_->damage.empty() && !qs_.Find(id)) collected_.insert(id);
          qs_.RecoverFree(id);
          broker_.SetTimeout(id, 0);
        });
      case JournalRecord::kEntry:
        return Entry(r);
      case JournalRecord::kReserve: {
        uint64_t until;
        if (!r.ReadUint(&until)) return false;
        qs_.ReserveIds(until);
        return true;
      }
      default:
        return false;
    }
  }

  // Bytes [begin, end) of file held no record this version could replay.
  void Damaged(const std::string& file, uint64_t begin, uint64_t end, JournalDamage::Kind kind) {
    JournalDamage d{file, begin, end, kind};
    if (open_.empty()) open_first_ = created_end_;
    d.first_id = open_.empty() ? open_first_ : 0;  // one id range per run of damage
    // A segment's header says where its ids start; without it the range
    // may span ids a restart skipped.
    if (begin == 0) open_exact_ = false;
    open_.push_back(report_->damage.size());
    report_->damage.push_back(std::move(d));
  }

  // After the last record: counts what the damage lost.
  void Finish() {
    for (JournalDamage& d : report_->damage) {
      if (!d.exact) continue;
      for (uint64_t id = d.first_id; id < d.end_id; ++id)
        if (!qs_.Find(id) && !collected_.count(id)) ++d.lost;
      report_->lost += d.lost;
    }
  }

  // Around the records of each segment: records missing after the end of
  // one are reported there.
  void BeginSegment(const Segment& seg) { seq_ = seg.seq; }
  void EndSegment(const Segment& seg) {
    last_file_ = seg.path;
    last_bytes_ = seg.bytes;
    last_seq_ = seg.seq;
  }

  // One past the highest id made by a record replayed (or skipped by a restart).
  uint64_t created_end() const { return created_end_; }

 private:
  bool Header(MsgpackReader& r, uint32_t n, uint64_t* epoch, uint64_t* first_id) {
    std::string_view magic;
    uint64_t format, prior_end = 0;
    if (!r.ReadStr(&magic) || magic != kJournalMagic || !r.ReadUint(&format) || format < 1 ||
        format > kJournalFormat)
      return false;
    if (!r.ReadUint(epoch) || !r.ReadUint(first_id)) return false;
    if (n >= 6 && !r.ReadUint(&prior_end)) return false;
    qs_.ReserveIds(*first_id);
    // prior_end: ids below it were made (or skipped by a restart) before
    // this segment; first_id: the same, and ids this segment's own start
    // skipped. Either above what the records made, or a segment missing
    // (they are numbered one after another), means records are gone with
    // no trace of damage: a file cut at a record boundary, or removed.
    const bool successor = seq_ == last_seq_ + 1;
    if (open_.empty() && !last_file_.empty() && (!successor || prior_end > created_end_))
      Damaged(last_file_, last_bytes_, last_bytes_, JournalDamage::Kind::kMissing);
    // Exact only when no segment is missing: one would hide a restart's skip.
    Made(prior_end ? prior_end : *first_id, prior_end != 0 && successor);
    created_end_ = std::max(created_end_, *first_id);
    return true;
  }

  // Ids from first on are being made: the damage met since the last ids
  // were made held those below first.
  void Made(uint64_t first, bool exact = true) {
    if (open_.empty() || first < open_first_) return;
    JournalDamage& d = report_->damage[open_.front()];
    d.end_id = first;
    d.exact = exact && open_exact_;
    open_.clear();
    open_exact_ = true;
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
    Made(first);
    for (std::size_t i = 0; i < items.size(); ++i) {
      Result<uint16_t> kind = qs_.KindId(items[i].kind);
      if (!kind.ok()) return false;
      qs_.RecoverEntry(first + i, *q, *reply, *kind, items[i].arg.empty() ? "\xc0" : items[i].arg,
                       0, nullptr);
      broker_.SetTimeout(first + i, items[i].timeout_ms);
    }
    created_end_ = std::max(created_end_, first + items.size());
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
    if (id >= created_end_) {  // an entry the master made (a failure record), not a rewrite
      Made(id);
      created_end_ = id + 1;
    }
    qs_.RecoverEntry(id, *q, *reply, *k, arg,
                     static_cast<uint8_t>(std::min<uint64_t>(attempt, 255)), done ? &o : nullptr);
    broker_.SetTimeout(id, static_cast<uint32_t>(std::min<uint64_t>(timeout, UINT32_MAX)));
    return true;
  }

  Broker& broker_;
  QueueSet& qs_;
  RecoveryReport* report_;
  uint64_t created_end_ = 1;  // ids start at 1
  // The run of damage met since ids were last made: indices in
  // report_->damage; the first holds the run's id range.
  std::vector<std::size_t> open_;
  uint64_t open_first_ = 0;
  bool open_exact_ = true;
  std::unordered_set<uint64_t> collected_;
  uint64_t seq_ = 0;  // of the segment being replayed
  std::string last_file_;
  uint64_t last_bytes_ = 0, last_seq_ = 0;
};

Status Journal::Replay(RecoveryReport* report) {
  TASKQ_TRY(ListSegments(report));
  Replayer replay(broker_, report);
  for (std::size_t i = 0; i < segments_.size(); ++i)
    TASKQ_TRY(ReplaySegment(segments_[i], i + 1 == segments_.size(), replay, report));
  replay.Finish();
  // A segment whose header did not replay (damaged) says nothing about
  // which ids are older than it: take the next one's, so compaction never
  // retires it on a made-up boundary.
  QueueSet& qs = broker_.queues();
  uint64_t next = qs.next_id();
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (it->first_id == 0) it->first_id = next;
    next = it->first_id;
  }
  uint64_t damaged_bytes = 0;
  for (const JournalDamage& d : report->damage) damaged_bytes += d.end - d.begin;
  // Damaged bytes may have made ids (each takes at least one byte) and
  // reserved more (a reservation reaches kJournalReserveStep ahead): none of
  // those may be handed out again.
  if (!report->damage.empty())
    qs.ReserveIds(qs.next_id() + damaged_bytes + kJournalReserveStep);
  reserved_ = qs.next_id();
  prior_end_ = report->damage.empty() ? replay.created_end() : 0;
  report->segments = static_cast<int>(segments_.size());
  if (epoch_ == 0) {
    randombytes_buf(&epoch_, sizeof epoch_);
    epoch_ |= 1;  // never 0
  }
  return Status::Ok();
}

Status Journal::ListSegments(RecoveryReport* report) {
  std::vector<MediumSegment> found;
  TASKQ_TRY(medium_->List(&found, &report->set_aside));
  for (const MediumSegment& m : found) segments_.push_back(Segment{m.seq, m.name, 0, 0});
  return Status::Ok();
}

Status Journal::ReplaySegment(Segment& seg, bool newest, Replayer& replay, RecoveryReport* report) {
  std::string data;
  TASKQ_TRY(medium_->Read(MediumSegment{seg.seq, seg.path}, &data));
  seg.bytes = data.size();
  FrameReader reader(data, newest, kJournalMaxRecord);
  replay.BeginSegment(seg);
  for (FrameReader::Piece p = reader.Next(); p.kind != FrameReader::Kind::kEnd; p = reader.Next()) {
    uint64_t epoch = 0, first_id = 0;
    switch (p.kind) {
      case FrameReader::Kind::kRecord:
        if (!replay.Apply(p.payload, &epoch, &first_id)) {
          seg.damaged = true;
          replay.Damaged(seg.path, p.begin, p.end, JournalDamage::Kind::kUnreadable);
          break;
        }
        if (first_id) seg.first_id = first_id;
        if (epoch && !epoch_) epoch_ = epoch;
        ++report->records;
        break;
      case FrameReader::Kind::kDamaged:
        seg.damaged = true;
        replay.Damaged(seg.path, p.begin, p.end, JournalDamage::Kind::kDamaged);
        break;
      case FrameReader::Kind::kTorn:
        TASKQ_TRY(CutTornTail(seg, p.begin, report));
        break;
      case FrameReader::Kind::kEnd:
        break;
    }
  }
  replay.EndSegment(seg);
  return Status::Ok();
}

// The record a crash cut short in the newest segment: cut it off, so the
// next start (when this segment is no longer the newest) does not take it
// for damage.
Status Journal::CutTornTail(Segment& seg, uint64_t at, RecoveryReport* report) {
  TASKQ_TRY(medium_->CutTail(MediumSegment{seg.seq, seg.path}, at));
  report->torn_bytes += seg.bytes - at;
  report->torn_file = seg.path;
  seg.bytes = at;
  return Status::Ok();
}

}  // namespace taskq
