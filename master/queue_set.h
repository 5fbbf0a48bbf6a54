// QueueSet: the master's named queues and every entry in them, with no
// sockets and no peers. A queue is created on first use (like
// BaseManager.register). Inside a queue, entries wait in one lane per kind, so
// a get that asks only for some kinds (a worker that runs only "exec" tasks)
// finds them without scanning; across lanes, the oldest id goes first.
//
// Lanes hold ids, and an id whose entry left the ready state by another way
// (its result arrived while it waited for a retry) stays in its lane until a
// pop skips it: each pop checks the entry's state, so no lane is ever
// searched.
//
// Thread: owned by the master's loop thread.
#ifndef TASKQ_MASTER_QUEUE_SET_H_
#define TASKQ_MASTER_QUEUE_SET_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "master/task_table.h"
#include "proto/status.h"

namespace taskq {

// A task's outcome as the master keeps it until someone collects it.
struct StoredOutcome {
  bool ok = true;
  std::string data;  // the raw msgpack value when ok, the error text otherwise
  std::string worker;
  uint64_t elapsed_us = 0;
};

class QueueSet {
 public:
  static constexpr uint32_t kMaxQueues = 65536;
  static constexpr uint32_t kMaxKinds = 65535;

  // Names to small ids, creating on first use; fails past the limits above.
  Result<uint32_t> QueueId(std::string_view name);
  Result<uint16_t> KindId(std::string_view name);
  // The id of an existing queue, or -1.
  int64_t FindQueue(std::string_view name) const;
  std::string_view QueueName(uint32_t q) const { return queues_[q].name; }
  std::string_view KindName(uint16_t k) const { return kinds_[k]; }
  std::size_t queue_count() const { return queues_.size(); }

  // Adds a ready task at the back of queue q and returns its id.
  uint64_t Add(uint32_t q, uint32_t reply_to, uint16_t kind, std::string_view arg);

  // Pops the oldest ready or done entry of q whose kind is in kinds (any
  // kind when kinds is empty); 0 when there is none. The entry is no longer
  // counted as ready; the caller must at once mark it leased or taken, or
  // push it back. *slot, if given, is its slot (valid until tasks are added
  // or freed).
  uint64_t Pop(uint32_t q, const std::vector<uint16_t>& kinds, Slot** slot = nullptr);
  void MarkLeased(uint64_t id, uint32_t lease) { MarkLeased(table_.Find(id), lease); }
  void MarkTaken(uint64_t id) { MarkTaken(table_.Find(id)); }
  // The same, for a slot in hand (Pop's): a task's hand-out finds it once.
  void MarkLeased(Slot* s, uint32_t lease);
  void MarkTaken(Slot* s);
  // A popped outcome (kDone) leased until acked: counted as leased in its
  // reply queue until Free (acked) or PushFront (handed back). The lease
  // index is the caller's; it is kept with the outcome (aux names that).
  void MarkHeld(Slot* s, uint32_t lease);
  uint32_t HeldLease(const Slot& s) const { return outcomes_[s.aux - 1].lease; }
  // Puts a popped, leased, held or taken entry back at the front of its
  // queue, so it goes out next: a task ready again, an outcome done again.
  void PushFront(uint64_t id);
  // A ready or leased task's outcome is in: it moves to its reply queue.
  void MarkDone(uint64_t id, StoredOutcome outcome);
  // Frees an entry in any state for good, keeping the counts right.
  void Free(uint64_t id);
  // Ids of up to max entries waiting in q (ready tasks and done outcomes)
  // above after, lowest first. Walks q's lanes: for admin requests, not the
  // hot path.
  std::vector<uint64_t> WaitingIds(uint32_t q, uint64_t after, std::size_t max);
  // Frees every entry waiting in q (leased ones stay) and returns their ids.
  std::vector<uint64_t> FreeWaiting(uint32_t q);
  // Kinds of the tasks (not outcomes) waiting in q.
  std::vector<std::string_view> WaitingTaskKinds(uint32_t q);
  // Counts a task that was given up on.
  void CountFailed(uint32_t q) { ++queues_[q].failed; }

  Slot* Find(uint64_t id) { return table_.Find(id); }

  // Recovery (the journal's replay), before any message: entries are set by
  // id, in whatever order the journal has them; lanes and counts are built
  // once, by FinishRecovery. An outcome makes the entry done, in reply_to.
  void RecoverEntry(uint64_t id, uint32_t q, uint32_t reply_to, uint16_t kind, std::string_view arg,
                    uint8_t attempt, const StoredOutcome* outcome);
  void RecoverDone(uint64_t id, StoredOutcome outcome);
  void RecoverFree(uint64_t id);
  // A lease (delta +1) or a lease undone (-1) of a ready entry: its attempt
  // count, kept within 0..255.
  void RecoverAttempt(uint64_t id, int delta);
  // Ids below n are never handed out again (reserved before a crash, or
  // made in damaged journal bytes).
  void ReserveIds(uint64_t n) { table_.AdvanceNextId(n); }
  void FinishRecovery();

  // The id the next entry gets.
  uint64_t next_id() const { return table_.next_id(); }
  // Calls fn(id, const Slot&) for live entries with ids in [from, to), in id
  // order, at most limit of them; returns the id to continue from (to when
  // done). For the journal's compaction and counts: nothing changes.
  template <typename Fn>
  uint64_t ForEachEntry(uint64_t from, uint64_t to, std::size_t limit, Fn fn) const {
    return table_.ForEachLive(from, to, limit, fn);
  }
  // The outcome of a done or held entry (or of a taken one that was done);
  // null for a task (whose aux may be a lease index).
  const StoredOutcome* OutcomeOf(const Slot& s) const {
    if (s.aux == 0 || s.state == SlotState::kReady || s.state == SlotState::kLeased) return nullptr;
    return &outcomes_[s.aux - 1].outcome;
  }

  // owed: tasks (ready, leased or being sent) whose outcome is to come
  // into q; a job with its own reply queue is over when its queue has
  // nothing ready, leased or owed. Not kept for the failure records' queue,
  // whose entries owe nothing (the constructor's).
  struct Counts {
    uint64_t ready = 0, leased = 0, failed = 0, owed = 0;
  };
  Counts CountsOf(uint32_t q) const {
    const QueueState& qq = queues_[q];
    return Counts{qq.ready, qq.leased, qq.failed, qq.owed};
  }
  // record_queue names the queue whose entries are failure records (the
  // broker's "failed"): they are not tasks, so they owe no outcome.
  explicit QueueSet(std::string record_queue = "failed") : record_queue_name_(std::move(record_queue)) {}
  const TaskTable& table() const { return table_; }

 private:
  struct Lane {
    uint16_t kind;
    std::deque<uint64_t> ids;
  };
  struct QueueState {
    std::string name;
    std::vector<Lane> lanes;
    uint64_t ready = 0;   // entries a get can take now (tasks and outcomes)
    uint64_t leased = 0;  // leased tasks and held outcomes
    uint64_t failed = 0;
    uint64_t owed = 0;  // tasks whose outcome comes here (Counts)
  };
  struct OutcomeCell {
    StoredOutcome outcome;
    uint32_t next_free = 0;
    uint32_t lease = 0;  // while its entry is kHeld
  };

  Lane& LaneOf(QueueState& q, uint16_t kind);
  // A task's outcome stopped being owed to its reply queue (it came, or
  // the task went for good).
  void Settle(const Slot& s) {
    if (s.reply_to != record_queue_) --queues_[s.reply_to].owed;
  }
  uint32_t StoreOutcome(StoredOutcome o);
  void DropOutcome(Slot& s);

  TaskTable table_;
  std::vector<QueueState> queues_;
  std::unordered_map<std::string, uint32_t> queue_ids_;
  std::vector<std::string> kinds_;
  std::unordered_map<std::string, uint16_t> kind_ids_;
  std::string record_queue_name_;
  uint32_t record_queue_ = UINT32_MAX;  // its id, once it exists
  std::vector<OutcomeCell> outcomes_;
  uint32_t free_outcome_ = 0;  // index + 1 of the first free cell, 0: none
};

}  // namespace taskq

#endif  // TASKQ_MASTER_QUEUE_SET_H_
