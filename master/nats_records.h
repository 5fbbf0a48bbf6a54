// The payloads the NATS store keeps in its streams (docs/STORE-NATS.md,
// "Payloads"): a batch of tasks in TQ_TASKS, an outcome chunk in TQ_OUT, the
// id counter in TQ_META. Each is one msgpack array whose first element is the
// format version (1); encode and decode here, no server.
//
// Thread: any; nothing here has state.
#ifndef TASKQ_MASTER_NATS_RECORDS_H_
#define TASKQ_MASTER_NATS_RECORDS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace taskq {

// Ids come in aligned blocks: batch K holds ids kBatchTasks*K to
// kBatchTasks*K + kBatchTasks - 1, so a task's batch is id >> kBatchShift.
inline constexpr int kBatchShift = 8;
inline constexpr uint64_t kBatchTasks = uint64_t{1} << kBatchShift;

inline uint64_t BatchOf(uint64_t task_id) { return task_id >> kBatchShift; }

// Up to kBatchTasks tasks of one put, one kind: ids first_id, first_id+1, ...
// all in batch BatchOf(first_id). An item is a task's bytes as the put
// carried them (opaque here).
struct TaskBatch {
  std::string queue, kind;  // not in the payload: the subject says them
  uint64_t first_id = 0;
  std::vector<std::string> items;

  uint64_t batch() const { return BatchOf(first_id); }
};

// Payload: [1, first_id, [bin item, ...]].
std::string EncodeBatchPayload(const TaskBatch& batch);
// Fills first_id and items; an error (kProtocol) names what is wrong,
// including a batch that crosses its block's end or holds no task.
Status DecodeBatchPayload(std::string_view payload, TaskBatch* batch);

// One link of batch K's outcome chain: the outcomes recorded since the
// previous chunk, and the state of every task of K after them.
struct OutcomeChunk {
  struct Outcome {
    uint64_t id = 0;
    std::string bytes;  // the outcome as the master records it (opaque here)
  };
  uint64_t batch = 0;
  std::array<uint64_t, kBatchTasks / 64> done{};  // bit i: task 256*K+i is done
  std::vector<uint32_t> attempts;                 // [i]: task 256*K+i's attempts; short = 0s
  std::vector<Outcome> outcomes;

  bool IsDone(uint64_t id) const;
  void SetDone(uint64_t id);
};

// Payload: [1, K, bin done (32 bytes, little-endian words), [attempts...],
// [[id, bin outcome], ...]].
std::string EncodeChunkPayload(const OutcomeChunk& chunk);
Status DecodeChunkPayload(std::string_view payload, OutcomeChunk* chunk);

// The id counter: the first block not handed out yet. Payload: [1, next_block].
std::string EncodeCounterPayload(uint64_t next_block);
Status DecodeCounterPayload(std::string_view payload, uint64_t* next_block);

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_RECORDS_H_
