// PeerTable: the connections that said hello, by routing id, in cells reused
// through a free list (other tables index by cell: leases, parked gets, held
// acks). It keeps who each peer is (name, role, session, what it runs), when
// it was last heard from and written to, and its standing as a worker (the
// bench); it says which peers are dead, idle or due a ping (Check), and what
// follows a process to its new connection (CarryOver). What a peer holds
// (leases, parked requests) is in other tables: the Broker hands those back.
//
// Thread: owned by the master's loop thread (through its Broker).
#ifndef TASKQ_MASTER_PEER_TABLE_H_
#define TASKQ_MASTER_PEER_TABLE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/clock.h"
#include "proto/role.h"

namespace taskq {

struct Peer {
  std::string routing_id;
  std::string name;
  bool worker = false;
  Role role = Role::kAdmin;  // of its connection's key
  bool refused = false;      // a request of it was forbidden (logged once)
  // A submitter's job queues it put tasks to (sorted ids): its stats list
  // these, not other submitters' (master/roles.h).
  std::vector<uint32_t> jobs;
  uint32_t capacity = 0;
  uint64_t session = 0;
  std::vector<std::string> kinds;  // what it said it runs; empty: not said
  std::chrono::milliseconds heartbeat{0};
  TimePoint last_heard, last_sent;
  uint64_t done = 0;
  bool live = false;
  // Who failed a retried task: the session, or one number per connection
  // for a peer without one (PeerTable::SetIdent).
  uint64_t ident = 0;
  // Benching (Broker::BenchWorker). on_trial from the bench until a
  // success: after benched_until it gets one task at a time.
  bool on_trial = false;
  uint32_t benches = 0;  // benched this many times in a row
  TimePoint benched_until;
  uint32_t fail_streak = 0;   // failed results in a row (retryable ones)
  uint64_t streak_since = 0;  // the Broker's count of successes at its last success, bench or hello

  bool Benched(TimePoint now) const { return on_trial && now < benched_until; }
  bool Runs(std::string_view kind) const;  // as far as it said
};

class PeerTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // When a peer is dead, idle or due a ping (Check).
  struct Liveness {
    std::chrono::milliseconds ping_every{1000};  // the master's heartbeat
    int missed_heartbeats = 3;                   // of the peer's own interval
    std::chrono::milliseconds forget_idle_client{std::chrono::minutes(10)};
  };
  enum class Verdict { kFine, kPing, kDead, kIdle };

  explicit PeerTable(Liveness liveness) : liveness_(liveness) {}

  // The cell of the peer with this routing id, or kNone.
  uint32_t Find(std::string_view routing_id) const;
  // A new live cell for a routing id not in the table (reset, but for its
  // routing id).
  uint32_t Add(std::string_view routing_id);
  // The peer left: its routing id is unknown again and its cell free.
  void Remove(uint32_t peer);
  Peer& operator[](uint32_t peer) { return peers_[peer]; }
  const Peer& operator[](uint32_t peer) const { return peers_[peer]; }
  // Cells, live or free: indexes below this are valid (check Peer::live).
  uint32_t size() const { return static_cast<uint32_t>(peers_.size()); }
  bool empty() const { return ids_.empty(); }

  // Sets the peer's ident: its session, which names the process across its
  // connections, or without one a number of its own per connection.
  void SetIdent(uint32_t peer, uint64_t session, bool is_new);
  // The other live connections of peer's session with the same role: the
  // same process, reconnected (a session never crosses keys).
  std::vector<uint32_t> EarlierConnections(uint32_t peer) const;
  // What follows a process to its new connection: its bench, and the job
  // queues it put to (which its stats list).
  void CarryOver(uint32_t from, uint32_t to);
  // A live worker, other than peer's process and not benched at now, that
  // runs kind (one that did not say what it runs might).
  bool OtherWorkerRuns(uint32_t peer, std::string_view kind, TimePoint now) const;

  // What to do about a live peer at now: kDead when it promised heartbeats
  // and missed missed_heartbeats of them; kIdle when it promised none,
  // holds nothing and was silent past forget_idle_client; kPing when the
  // master has not written to it for ping_every and it either promised
  // heartbeats (so it knows the master lives) or holds something (so that
  // a vanished one is found: the send fails once libzmq dropped it).
  Verdict Check(uint32_t peer, TimePoint now, bool holds) const;

 private:
  Liveness liveness_;
  std::vector<Peer> peers_;
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> ids_;
  uint64_t next_ident_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_PEER_TABLE_H_
