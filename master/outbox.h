// Outbox: the Broker's messages on their way out, in the order they were
// queued, and the result_ok replies it holds back (result.lazy_ack) until
// something else goes to the same peer or their time is up. It sends nothing
// itself: its owner takes a batch (TakeBatch), sends it, and settles each
// message (Broker::Settle), which may queue more for the next batch.
//
// Why lazy acks: in lock-step (one task at a time) a worker's result_ok
// and its next task each woke the worker (two context switches on each
// side); sent together they cost one. Under load they ride with the next
// items reply for free. Held acks cost nothing else: a worker needs them
// only to stop, or to know what to send again after a reconnect.
//
// Thread: owned by the master's loop thread (through its Broker).
#ifndef TASKQ_MASTER_OUTBOX_H_
#define TASKQ_MASTER_OUTBOX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/clock.h"
#include "proto/message.h"

namespace taskq {

// What an items reply handed out, so that it can be undone if the reply
// cannot be sent. Empty for every other message.
struct Delivery {
  struct Made {
    uint32_t lease;  // its lease (held lease for an outcome); LeaseTable::kNone for a take
    uint32_t generation;
    bool outcome;
  };
  std::vector<uint64_t> ids;
  // Per id: the lease it made. An undelivered reply undoes only that
  // lease, not a later one.
  std::vector<Made> leases;
};

// One message for one connection. peer is the sender's cell in the Broker's
// peer table, or kNoPeer for a connection that has none (no hello yet).
struct OutMsg {
  static constexpr uint32_t kNoPeer = UINT32_MAX;
  uint32_t peer = kNoPeer;
  std::string routing_id;
  std::string bytes;  // encoded
  Delivery delivery;
};

class Outbox {
 public:
  // Encodes m and queues it behind what is queued already.
  void Push(uint32_t peer, std::string_view routing_id, const Message& m, Delivery delivery = {});
  // Holds an ack for peer (a cell, not kNoPeer). A peer's first held ack
  // sets when its acks are due; later ones wait with it.
  void HoldAck(uint32_t peer, std::string_view routing_id, const ResultOk& m, TimePoint due);
  // Queues held acks: a peer's when a queued message goes to it or its acks
  // are due at now; every peer's when all is true.
  void ReleaseAcks(TimePoint now, bool all);
  // Moves every queued message into *batch (cleared first; its capacity is
  // reused). What is queued after this comes with the next call.
  void TakeBatch(std::vector<OutMsg>* batch);
  // Drops peer's held acks: it left, and its cell may go to another peer.
  void ForgetPeer(uint32_t peer);
  // Counts the messages queued for one routing id from now on (task_master's
  // own job: ServerLoop::ReadRouter hands it its outcome before reading on).
  void CountFor(std::string_view routing_id) { counted_id_ = routing_id; }
  uint64_t counted() const { return counted_; }
  // Drops every queued message and held ack (a master whose journal failed
  // must not acknowledge what it could not write down).
  void Clear();

  // When the soonest held ack is due; TimePoint::max() when none is held.
  TimePoint NextAckDue() const;
  bool empty() const { return queued_.empty(); }
  std::size_t queued() const { return queued_.size(); }
  std::size_t held() const;

 private:
  struct Held {
    std::string routing_id;
    std::vector<std::string> acks;  // encoded
    TimePoint due;
    uint64_t stamp = 0;  // the ReleaseAcks that saw a queued message to this peer
  };

  std::vector<OutMsg> queued_;
  std::vector<Held> held_;         // per peer cell, grown on demand
  std::vector<uint32_t> holders_;  // peers with held acks, each once
  uint64_t stamp_ = 0;
  std::string counted_id_;
  uint64_t counted_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_OUTBOX_H_
