#include "master/nats_records.h"

#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

constexpr uint64_t kFormat = 1;

Status Bad(const char* what, const std::string& why) {
  return Status::Error(Code::kProtocol, std::string("a ") + what +
                                            " in the NATS store cannot be read (" + why +
                                            "): was it written by another version of taskq?");
}

// Reads the array header of n_fields and the format version.
Status ReadHead(MsgpackReader* r, const char* what, uint32_t n_fields) {
  uint32_t n = 0;
  uint64_t format = 0;
  if (!r->ReadArrayHeader(&n) || n != n_fields) return Bad(what, "not an array of the fields");
  if (!r->ReadUint(&format) || format != kFormat)
    return Bad(what, "format " + std::to_string(format) + ", not 1");
  return Status::Ok();
}

Status ReadEnd(const MsgpackReader& r, const char* what) {
  return r.at_end() ? Status::Ok() : Bad(what, "bytes after its end");
}

}  // namespace

std::string EncodeBatchPayload(const TaskBatch& batch) {
  std::string out;
  MsgpackWriter w(&out);
  w.Array(3).Uint(kFormat).Uint(batch.first_id).Array(static_cast<uint32_t>(batch.items.size()));
  for (const std::string& item : batch.items) w.Bin(item);
  return out;
}

Status DecodeBatchPayload(std::string_view payload, TaskBatch* batch) {
  constexpr const char* kWhat = "task batch";
  MsgpackReader r(payload);
  TASKQ_TRY(ReadHead(&r, kWhat, 3));
  uint32_t n = 0;
  if (!r.ReadUint(&batch->first_id) || !r.ReadArrayHeader(&n, kBatchTasks))
    return Bad(kWhat, "no first id or item list");
  const uint64_t offset = batch->first_id & (kBatchTasks - 1);
  if (n == 0 || offset + n > kBatchTasks) return Bad(kWhat, "its ids leave their block");
  batch->items.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view item;
    if (!r.ReadBin(&item)) return Bad(kWhat, "item " + std::to_string(i) + " is not bytes");
    batch->items.emplace_back(item);
  }
  return ReadEnd(r, kWhat);
}

bool OutcomeChunk::IsDone(uint64_t id) const {
  const uint64_t i = id & (kBatchTasks - 1);
  return (done[i / 64] >> (i % 64)) & 1;
}

void OutcomeChunk::SetDone(uint64_t id) {
  const uint64_t i = id & (kBatchTasks - 1);
  done[i / 64] |= uint64_t{1} << (i % 64);
}

std::string EncodeChunkPayload(const OutcomeChunk& chunk) {
  std::string bits;
  for (const uint64_t word : chunk.done)
    for (int b = 0; b < 8; ++b) bits += static_cast<char>(word >> (8 * b) & 0xFF);
  std::string out;
  MsgpackWriter w(&out);
  w.Array(5).Uint(kFormat).Uint(chunk.batch).Bin(bits);
  w.Array(static_cast<uint32_t>(chunk.attempts.size()));
  for (const uint32_t a : chunk.attempts) w.Uint(a);
  w.Array(static_cast<uint32_t>(chunk.outcomes.size()));
  for (const OutcomeChunk::Outcome& o : chunk.outcomes) w.Array(2).Uint(o.id).Bin(o.bytes);
  return out;
}

Status DecodeChunkPayload(std::string_view payload, OutcomeChunk* chunk) {
  constexpr const char* kWhat = "outcome chunk";
  MsgpackReader r(payload);
  TASKQ_TRY(ReadHead(&r, kWhat, 5));
  std::string_view bits;
  uint32_t n = 0;
  if (!r.ReadUint(&chunk->batch) || !r.ReadBin(&bits) || bits.size() != kBatchTasks / 8)
    return Bad(kWhat, "no batch or no 32-byte map of the tasks done");
  for (std::size_t i = 0; i < chunk->done.size(); ++i) {
    chunk->done[i] = 0;
    for (int b = 0; b < 8; ++b)
      chunk->done[i] |= uint64_t{static_cast<unsigned char>(bits[8 * i + b])} << (8 * b);
  }
  if (!r.ReadArrayHeader(&n, kBatchTasks)) return Bad(kWhat, "no list of attempts");
  chunk->attempts.assign(n, 0);
  for (uint32_t& a : chunk->attempts) {
    uint64_t v = 0;
    if (!r.ReadUint(&v) || v > UINT32_MAX) return Bad(kWhat, "an attempt count is not a count");
    a = static_cast<uint32_t>(v);
  }
  if (!r.ReadArrayHeader(&n, kBatchTasks)) return Bad(kWhat, "no list of outcomes");
  chunk->outcomes.assign(n, {});
  for (OutcomeChunk::Outcome& o : chunk->outcomes) {
    uint32_t pair = 0;
    std::string_view bytes;
    if (!r.ReadArrayHeader(&pair) || pair != 2 || !r.ReadUint(&o.id) || !r.ReadBin(&bytes) ||
        BatchOf(o.id) != chunk->batch)
      return Bad(kWhat, "an outcome is not [id of the batch, bytes]");
    o.bytes = bytes;
  }
  return ReadEnd(r, kWhat);
}

std::string EncodeCounterPayload(uint64_t next_block) {
  std::string out;
  MsgpackWriter(&out).Array(2).Uint(kFormat).Uint(next_block);
  return out;
}

Status DecodeCounterPayload(std::string_view payload, uint64_t* next_block) {
  constexpr const char* kWhat = "id counter";
  MsgpackReader r(payload);
  TASKQ_TRY(ReadHead(&r, kWhat, 2));
  if (!r.ReadUint(next_block)) return Bad(kWhat, "no next block");
  return ReadEnd(r, kWhat);
}

}  // namespace taskq
