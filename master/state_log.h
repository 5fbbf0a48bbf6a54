// StateLog: every change of the master's durable state, as the Broker makes
// it. The journal (journal.h) writes them down so a restarted master can
// rebuild its queues; without a data dir nothing listens.
//
// The calls name what changed, not how: recovery replays them in order.
// Leases are recorded only for their attempt counts: a recovered master
// puts every leased task back in its queue.
//
// Thread: the master's loop thread.
#ifndef TASKQ_MASTER_STATE_LOG_H_
#define TASKQ_MASTER_STATE_LOG_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "master/queue_set.h"

namespace taskq {

class StateLog {
 public:
  virtual ~StateLog() = default;
  // Tasks first_id.. were added to queue, their outcomes to go to reply_to;
  // items is the put's items array as received (msgpack).
  virtual void Put(uint64_t first_id, std::string_view queue, std::string_view reply_to,
                   std::string_view items) = 0;
  // These tasks were handed out with a lease (an attempt each).
  virtual void Lease(const std::vector<uint64_t>& ids) = 0;
  // This delivery did not happen after all (undeliverable, or handed back
  // unstarted): the attempt does not count.
  virtual void Unlease(uint64_t id) = 0;
  // The task's outcome is known: it moved to its reply queue.
  virtual void Done(uint64_t id, const StoredOutcome& outcome) = 0;
  // These entries were handed out without lease: gone for good.
  virtual void Take(const std::vector<uint64_t>& ids) = 0;
  // The whole state of one entry, replacing whatever came before (an entry
  // put back after a failed send, a new entry made by the master, or a
  // compaction rewriting a live entry).
  virtual void Rewrite(uint64_t id, std::string_view queue, std::string_view reply_to,
                     std::string_view kind, const Slot& slot, uint32_t timeout_ms,
                     const StoredOutcome* outcome) = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_STATE_LOG_H_
