// Waiters: requests the Broker cannot answer yet. Gets parked until an entry
// of their queue is ready or their timeout_ms is up, and puts waiting (as the
// bytes they came in) for room in a full queue. It decides who is next and
// when time is up; what to hand out or add is the Broker's, through the
// callbacks of Offer and RetryPuts.
//
// Thread: owned by the master's loop thread (through its Broker).
#ifndef TASKQ_MASTER_WAITERS_H_
#define TASKQ_MASTER_WAITERS_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "client/clock.h"
#include "master/deadline_heap.h"

namespace taskq {

class Waiters {
 public:
  struct ParkedGet {
    uint32_t peer = 0;  // the Broker's peer cell
    uint64_t rid = 0;
    uint32_t queue = 0;
    uint32_t max = 1;
    bool lease = false;
    std::vector<uint16_t> kinds;
    TimePoint deadline;
  };
  struct WaitingPut {
    uint32_t peer;
    uint32_t queue;
    uint64_t count;  // tasks in it
    uint64_t rid;
    std::string bytes;  // the put as it came
    TimePoint deadline;
  };

  // --- parked gets ---
  void Park(ParkedGet get);
  std::size_t GetsOf(uint32_t peer) const {
    return peer < gets_of_.size() ? gets_of_[peer].size() : 0;
  }
  // Unparks peer's get with this rid; its queue, or nullopt if none waits.
  std::optional<uint32_t> Withdraw(uint32_t peer, uint64_t rid);
  // The queues peer's gets wait on, each once.
  std::vector<uint32_t> QueuesOf(uint32_t peer) const;
  // Queues with gets parked on them (for a wake-up that serves them all).
  std::vector<uint32_t> BusyQueues() const;
  // Offers queue's ready entries to its parked gets, oldest first, each a
  // fair share of ready() (so a burst spreads over every waiting worker
  // instead of filling the first one's window). serve(get, max) hands out
  // up to max entries and says whether it handed out any: a get served
  // leaves, one not served keeps its place at the back.
  template <typename Ready, typename Serve>
  void Offer(uint32_t queue, Ready ready, Serve serve);
  // Unparks and returns a get whose deadline is at or before now; nullopt
  // when none is.
  std::optional<ParkedGet> PopExpired(TimePoint now);

  // --- waiting puts ---
  void ParkPut(WaitingPut put);
  std::size_t PutsOf(uint32_t peer) const { return peer < puts_of_.size() ? puts_of_[peer] : 0; }
  bool AnyPuts() const { return !puts_.empty(); }
  // A put already waits for room in queue (a new one goes behind it).
  bool PutsWaitFor(uint32_t queue) const;
  // Oldest first per queue: a put whose time is up leaves with
  // act(put, /*expired=*/true); one that fits(put) now leaves with
  // act(put, false). A put that does not fit holds back the later ones of
  // its queue. act may change what fits: the puts are looked at again.
  template <typename Fits, typename Act>
  void RetryPuts(TimePoint now, Fits fits, Act act);

  // --- both ---
  // The peer left: its gets and puts go, unanswered.
  void DropPeer(uint32_t peer);
  bool Holds(uint32_t peer) const { return GetsOf(peer) > 0 || PutsOf(peer) > 0; }
  // The soonest deadline of a get or put; TimePoint::max() when none waits.
  TimePoint NextDeadline();

 private:
  static constexpr uint32_t kFree = UINT32_MAX;
  struct Cell {
    ParkedGet get;  // get.peer is kFree when the cell is free
    uint32_t generation = 0;
  };
  struct Ref {
    uint32_t cell;
    uint32_t generation;
  };
  bool Current(uint32_t cell, uint32_t generation) const {
    return cells_[cell].get.peer != kFree && cells_[cell].generation == generation;
  }
  void Unpark(uint32_t cell);

  std::vector<Cell> cells_;
  std::vector<uint32_t> free_;
  std::vector<std::vector<uint32_t>> gets_of_;  // per peer: its cells
  // Per queue, oldest first; refs to cells unparked since are skipped.
  std::vector<std::deque<Ref>> by_queue_;
  std::vector<uint32_t> live_;  // per queue: gets parked on it
  DeadlineHeap due_;            // the gets' deadlines
  std::deque<WaitingPut> puts_;
  std::vector<uint32_t> puts_of_;  // per peer
};

template <typename Ready, typename Serve>
void Waiters::Offer(uint32_t queue, Ready ready, Serve serve) {
  if (queue >= by_queue_.size()) return;
  std::deque<Ref>& list = by_queue_[queue];
  for (std::size_t left = list.size(); left > 0 && ready() > 0; --left) {
    const Ref ref = list.front();
    list.pop_front();
    if (!Current(ref.cell, ref.generation)) continue;
    const uint64_t share = std::max<uint64_t>(1, (ready() + live_[queue] - 1) / live_[queue]);
    const ParkedGet& g = cells_[ref.cell].get;
    if (serve(g, static_cast<uint32_t>(std::min<uint64_t>(g.max, share))))
      Unpark(ref.cell);
    else
      list.push_back(ref);  // none of its kinds is ready: it keeps waiting
  }
}

template <typename Fits, typename Act>
void Waiters::RetryPuts(TimePoint now, Fits fits, Act act) {
  std::vector<uint32_t> blocked;  // queues whose oldest waiting put does not fit yet
  for (auto it = puts_.begin(); it != puts_.end();) {
    const bool expired = it->deadline <= now;
    const bool behind = std::find(blocked.begin(), blocked.end(), it->queue) != blocked.end();
    if (!expired && (behind || !fits(*it))) {
      blocked.push_back(it->queue);
      ++it;
      continue;
    }
    WaitingPut p = std::move(*it);
    puts_.erase(it);
    --puts_of_[p.peer];
    act(std::move(p), expired);
    it = puts_.begin();  // what changed may let an earlier one in: look again
    blocked.clear();
  }
}

}  // namespace taskq

#endif  // TASKQ_MASTER_WAITERS_H_
