// The payloads of journal records: what Journal (journal.cc) writes and
// recovery (journal_recovery.cc) reads. Each payload is a msgpack array
// whose first element is its type; docs/JOURNAL.md lists every field.
//
// Thread: any (constants and pure functions).
#ifndef TASKQ_MASTER_JOURNAL_RECORDS_H_
#define TASKQ_MASTER_JOURNAL_RECORDS_H_

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "master/queue_set.h"
#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"
#include "proto/status.h"

namespace taskq {

struct JournalRecord {
  enum Type : uint64_t {
    kHeader = 0,   // [0, "taskq-journal", format, epoch, first_id, prior_end]
    kPut = 1,      // [1, first_id, queue, reply_to, items]
    kLease = 2,    // [2, [id...]]
    kUnlease = 3,  // [3, [id...]]
    kDone = 4,     // [4, id, outcome]
    kTake = 5,     // [5, [id...]]
    kEntry = 6,    // [6, id, queue, reply_to, kind, arg, attempt, timeout_ms, outcome or nil]
    kReserve = 7,  // [7, until]
  };
};

inline constexpr std::string_view kJournalMagic = "taskq-journal";
// 1: [u32 length][u32 CRC-32C] frames, no magic; still read.
// 2: journal_frame.h's frames; the header record names prior_end.
inline constexpr uint64_t kJournalFormat = 2;
// A put record holds a whole message's items.
inline constexpr uint32_t kJournalMaxRecord = 2 * kMaxMessageBytes;
// Ids are reserved on disk this many at a time, before any is handed out:
// a crash that loses the last records (power, --fsync interval) must not
// lose which ids were used, or a worker's late result could complete
// another task that got the same id.
inline constexpr uint64_t kJournalReserveStep = 1u << 20;

inline Status JournalIo(const std::string& what) {
  return Status::Error(Code::kIo, what + ": " + std::strerror(errno));
}

// "journal-0000000000000042.tqj"; damaged segments set aside: "damaged-...".
inline std::string SegmentName(const char* prefix, uint64_t seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%016llu.tqj", prefix, static_cast<unsigned long long>(seq));
  return buf;
}

// An outcome: [ok, value or error, worker, elapsed_us].
inline void WriteOutcome(MsgpackWriter& w, const StoredOutcome& o) {
  w.Array(4).Bool(o.ok);
  if (o.ok)
    w.Raw(o.data);
  else
    w.Str(o.data);
  w.Str(o.worker).Uint(o.elapsed_us);
}

inline bool ReadOutcome(MsgpackReader& r, StoredOutcome* o) {
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

}  // namespace taskq

#endif  // TASKQ_MASTER_JOURNAL_RECORDS_H_
