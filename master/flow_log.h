// FlowLog: the last few hundred things that happened to tasks and workers (a
// task handed to a worker, its outcome, a requeue, a worker joining or
// leaving), for the dashboard's live view of the flow. A fixed ring: adding
// is a few stores, so the broker records every event at full speed and the
// publisher samples what is left when it looks.
//
// Thread: the master's loop thread (the Broker owns it).
#ifndef TASKQ_MASTER_FLOW_LOG_H_
#define TASKQ_MASTER_FLOW_LOG_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace taskq {

enum class FlowKind : uint8_t {
  kHanded,    // a task leased to a worker
  kDone,      // its outcome came back ok
  kFailed,    // failed for good
  kRetried,   // failed, and goes to another attempt
  kRequeued,  // its worker went away or its lease ran out: back in the queue
  kJoined,    // a worker said hello
  kLeft,      // a worker said goodbye or disconnected
  kDead,      // a worker went silent and was presumed dead
};
std::string_view FlowKindName(FlowKind k);

struct FlowEvent {
  uint64_t seq = 0;  // 1, 2, ... in the order of the events
  FlowKind kind = FlowKind::kHanded;
  uint16_t task_kind = 0;  // the task's kind id (QueueSet::KindName); unused for workers
  uint32_t attempt = 0;
  uint64_t task = 0;    // task id; 0 for worker events
  uint64_t worker = 0;  // the worker's ident (NameOf)
  uint64_t elapsed_us = 0;
  std::chrono::steady_clock::time_point at;
};

class FlowLog {
 public:
  static constexpr std::size_t kCapacity = 512;
  // Names kept for workers that left, before the oldest are forgotten.
  static constexpr std::size_t kMaxNames = 4096;

  void Add(const FlowEvent& e) {
    FlowEvent& slot = ring_[next_seq_ % kCapacity];
    slot = e;
    slot.seq = next_seq_++;
  }
  void Task(FlowKind kind, uint64_t task, uint16_t task_kind, uint32_t attempt, uint64_t worker,
            uint64_t elapsed_us, std::chrono::steady_clock::time_point at) {
    Add({0, kind, task_kind, attempt, task, worker, elapsed_us, at});
  }
  void Worker(FlowKind kind, uint64_t worker, std::chrono::steady_clock::time_point at) {
    Add({0, kind, 0, 0, 0, worker, 0, at});
  }
  // A worker's name, told when it joins (idents name a process across its
  // connections, so a reconnect tells the same name again).
  void Name(uint64_t ident, std::string_view name);
  std::string_view NameOf(uint64_t ident) const;
  // The events after seq `after` that the ring still holds, oldest first,
  // at most max (the newest).
  std::vector<FlowEvent> Since(uint64_t after, std::size_t max) const;
  uint64_t last_seq() const { return next_seq_ - 1; }

 private:
  std::array<FlowEvent, kCapacity> ring_{};
  uint64_t next_seq_ = 1;
  std::unordered_map<uint64_t, std::string> names_;
  std::vector<uint64_t> name_order_;  // idents, oldest named first
};

}  // namespace taskq

#endif  // TASKQ_MASTER_FLOW_LOG_H_
