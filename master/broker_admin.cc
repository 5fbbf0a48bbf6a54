// The Broker's admin requests: peek at a queue, retry failed tasks, purge a
// queue. Rare and small beside the task traffic, so they favour plainness
// over speed (a peek walks its queue).
#include <algorithm>

#include "master/broker.h"
#include "proto/msgpack_reader.h"

namespace taskq {
namespace {

// What a failure record (Broker::RecordFailure) says of the task to rerun.
struct FailedTask {
  std::string_view queue, kind, arg, reply_to = "results";
};

// False if the record is not one the master made, or its arg was too large
// to copy (it is named instead: there is nothing to rerun).
bool ParseRecord(std::string_view record, FailedTask* t) {
  MsgpackReader r(record);
  uint32_t n;
  if (!r.ReadMapHeader(&n)) return false;
  bool has_arg = false, has_queue = false, has_kind = false;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.ReadStr(&key)) return false;
    if (key == "queue") {
      if (!r.ReadStr(&t->queue)) return false;
      has_queue = true;
    } else if (key == "kind") {
      if (!r.ReadStr(&t->kind)) return false;
      has_kind = true;
    } else if (key == "reply_to") {
      if (!r.ReadStr(&t->reply_to)) return false;
    } else if (key == "arg") {
      if (!r.Skip(&t->arg)) return false;
      has_arg = true;
    } else if (!r.Skip()) {
      return false;
    }
  }
  if (!has_arg || !has_queue || !has_kind || t->queue.empty()) return false;
  // An argument too large or too deep to copy was named instead (see
  // RecordFailure): there is nothing to run again.
  std::string_view named;
  MsgpackReader a(t->arg);
  return !(a.ReadStr(&named) && named.starts_with(kArgNotCopied));
}

}  // namespace

void Broker::OnPeek(uint32_t peer, const Peek& m) {
  if (m.max == 0 || m.max > kMaxBatch)
    return SendError(peer, m.rid, kErrBadRequest,
                     "peek.max must be 1 to " + std::to_string(kMaxBatch) + ", not " +
                         std::to_string(m.max));
  Items reply;
  reply.rid = m.rid;
  reply.queue = m.queue;
  const int64_t q = queues_.FindQueue(m.queue);
  if (q >= 0) {
    std::size_t bytes = 0;
    for (uint64_t id : queues_.WaitingIds(static_cast<uint32_t>(q), m.after, m.max)) {
      Entry e = EntryOf(id, *queues_.Find(id));
      const std::size_t size =
          e.arg.size() + e.outcome.value.size() + e.outcome.error.size() + e.kind.size() + 32;
      if (!reply.items.empty() && bytes + size > kMaxReplyBytes) break;  // the next peek's
      bytes += size;
      reply.items.push_back(e);
    }
  }
  Send(peer, reply);
}

// Each record's task goes back to its queue as a new task (new id, attempts
// from 1, the master's default time limit), its outcome to the reply queue
// it had; then the record goes. Both changes are journaled.
void Broker::OnRetry(uint32_t peer, const Retry& m) {
  RetryOk reply;
  reply.rid = m.rid;
  const int64_t failed = queues_.FindQueue(kFailedQueue);
  std::vector<uint64_t> removed;
  std::vector<uint32_t> touched;
  for (uint64_t rec : m.ids) {
    const Slot* s = queues_.Find(rec);
    FailedTask t;
    if (failed < 0 || !s || s->queue != static_cast<uint32_t>(failed) ||
        s->state != SlotState::kReady || !ParseRecord(s->arg.view(), &t)) {
      ++reply.skipped;
      continue;
    }
    Result<uint32_t> q = queues_.QueueId(t.queue);
    Result<uint32_t> reply_to = queues_.QueueId(t.reply_to);
    Result<uint16_t> kind = queues_.KindId(t.kind);
    if (!q.ok() || !reply_to.ok() || !kind.ok()) {  // the name tables are full
      ++reply.skipped;
      continue;
    }
    // Copies: t views the record's slot, which adding a task may move.
    const std::string arg(t.arg), queue(t.queue), reply_queue(t.reply_to), kind_name(t.kind);
    const uint64_t id = queues_.Add(*q, *reply_to, *kind, arg);
    if (log_) log_->Rewrite(id, queue, reply_queue, kind_name, *queues_.Find(id), 0, nullptr);
    queues_.Free(rec);
    removed.push_back(rec);
    reply.retried.emplace_back(rec, id);
    if (std::find(touched.begin(), touched.end(), *q) == touched.end()) touched.push_back(*q);
    ++counters_.put;
  }
  if (log_ && !removed.empty()) log_->Take(removed);
  if (!reply.retried.empty())
    Log("retried " + std::to_string(reply.retried.size()) + " failed task(s)");
  for (uint32_t q : touched) ServeWaiters(q);
  Send(peer, reply);
}

void Broker::OnPurge(uint32_t peer, const Purge& m) {
  PurgeOk reply;
  reply.rid = m.rid;
  const int64_t q = queues_.FindQueue(m.queue);
  if (q >= 0) {
    const std::vector<uint64_t> ids = queues_.FreeWaiting(static_cast<uint32_t>(q));
    for (uint64_t id : ids) Forget(id);
    if (log_ && !ids.empty()) log_->Take(ids);
    reply.removed = ids.size();
    if (!ids.empty())
      Log("purged " + std::to_string(ids.size()) + " waiting entries of queue '" +
          std::string(m.queue) + "'");
  }
  Send(peer, reply);
}

}  // namespace taskq
