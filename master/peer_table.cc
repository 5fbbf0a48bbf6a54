#include "master/peer_table.h"

#include <algorithm>

#include "master/free_cells.h"

namespace taskq {

bool Peer::Runs(std::string_view kind) const {
  return kinds.empty() || std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

uint32_t PeerTable::Find(std::string_view routing_id) const {
  auto it = ids_.find(std::string(routing_id));
  return it == ids_.end() ? kNone : it->second;
}

uint32_t PeerTable::Add(std::string_view routing_id) {
  const uint32_t idx = TakeCell(peers_, free_);
  ids_.emplace(std::string(routing_id), idx);
  peers_[idx].routing_id = std::string(routing_id);
  peers_[idx].live = true;
  return idx;
}

void PeerTable::Remove(uint32_t peer) {
  ids_.erase(peers_[peer].routing_id);
  peers_[peer] = Peer();
  free_.push_back(peer);
}

void PeerTable::SetIdent(uint32_t peer, uint64_t session, bool is_new) {
  Peer& p = peers_[peer];
  if (session != 0)
    p.ident = session;
  else if (is_new || p.ident == p.session)
    p.ident = (uint64_t{1} << 63) | ++next_ident_;
}

std::vector<uint32_t> PeerTable::EarlierConnections(uint32_t peer) const {
  std::vector<uint32_t> found;
  const Peer& p = peers_[peer];
  if (p.session == 0) return found;
  for (uint32_t other = 0; other < peers_.size(); ++other) {
    const Peer& o = peers_[other];
    if (other != peer && o.live && o.session == p.session && o.role == p.role)
      found.push_back(other);
  }
  return found;
}

void PeerTable::CarryOver(uint32_t from, uint32_t to) {
  const Peer& before = peers_[from];
  Peer& after = peers_[to];
  // A bench follows the process, not the connection.
  after.on_trial = before.on_trial;
  after.benches = before.benches;
  after.benched_until = before.benched_until;
  after.fail_streak = before.fail_streak;
  after.streak_since = before.streak_since;
  after.jobs.insert(after.jobs.end(), before.jobs.begin(), before.jobs.end());
  std::sort(after.jobs.begin(), after.jobs.end());
  after.jobs.erase(std::unique(after.jobs.begin(), after.jobs.end()), after.jobs.end());
}

bool PeerTable::OtherWorkerRuns(uint32_t peer, std::string_view kind, TimePoint now) const {
  for (const Peer& p : peers_) {
    if (!p.live || !p.worker || p.ident == peers_[peer].ident || p.Benched(now)) continue;
    if (p.Runs(kind)) return true;
  }
  return false;
}

PeerTable::Verdict PeerTable::Check(uint32_t peer, TimePoint now, bool holds) const {
  const Peer& p = peers_[peer];
  const auto silent = now - p.last_heard;
  const bool beats = p.heartbeat.count() > 0;
  if (beats && silent > p.heartbeat * liveness_.missed_heartbeats) return Verdict::kDead;
  if (!beats && !holds && silent > liveness_.forget_idle_client) return Verdict::kIdle;
  if ((beats || holds) && now - p.last_sent >= liveness_.ping_every) return Verdict::kPing;
  return Verdict::kFine;
}

}  // namespace taskq
