#include "master/waiters.h"

#include "master/free_cells.h"

namespace taskq {

void Waiters::Park(ParkedGet get) {
  const uint32_t idx = TakeCell(cells_, free_);
  Cell& c = cells_[idx];
  const uint32_t peer = get.peer, queue = get.queue;
  c.get = std::move(get);
  if (peer >= gets_of_.size()) gets_of_.resize(peer + 1);
  gets_of_[peer].push_back(idx);
  if (queue >= by_queue_.size()) {
    by_queue_.resize(queue + 1);
    live_.resize(queue + 1, 0);
  }
  std::deque<Ref>& list = by_queue_[queue];
  // Stale refs pile up where gets time out and nothing is put: sweep them
  // when the list has grown well past the gets really waiting.
  if (list.size() >= 64 && list.size() >= 2 * live_[queue])
    std::erase_if(list, [this](const Ref& r) { return !Current(r.cell, r.generation); });
  list.push_back(Ref{idx, c.generation});
  ++live_[queue];
  due_.Push(c.get.deadline, idx, c.generation);
}

void Waiters::Unpark(uint32_t cell) {
  Cell& c = cells_[cell];
  std::vector<uint32_t>& mine = gets_of_[c.get.peer];
  mine.erase(std::find(mine.begin(), mine.end(), cell));
  --live_[c.get.queue];
  c.get.peer = kFree;
  c.get.kinds.clear();
  ++c.generation;
  free_.push_back(cell);
}

std::optional<uint32_t> Waiters::Withdraw(uint32_t peer, uint64_t rid) {
  if (peer >= gets_of_.size()) return std::nullopt;
  for (uint32_t cell : gets_of_[peer]) {
    if (cells_[cell].get.rid != rid) continue;
    const uint32_t queue = cells_[cell].get.queue;
    Unpark(cell);
    return queue;
  }
  return std::nullopt;
}

std::vector<uint32_t> Waiters::QueuesOf(uint32_t peer) const {
  std::vector<uint32_t> queues;
  if (peer >= gets_of_.size()) return queues;
  for (uint32_t cell : gets_of_[peer]) {
    const uint32_t q = cells_[cell].get.queue;
    if (std::find(queues.begin(), queues.end(), q) == queues.end()) queues.push_back(q);
  }
  return queues;
}

std::vector<uint32_t> Waiters::BusyQueues() const {
  std::vector<uint32_t> queues;
  for (uint32_t q = 0; q < live_.size(); ++q)
    if (live_[q] > 0) queues.push_back(q);
  return queues;
}

std::optional<Waiters::ParkedGet> Waiters::PopExpired(TimePoint now) {
  std::optional<DeadlineHeap::Due> d =
      due_.PopDue(now, [this](uint32_t c, uint32_t g) { return Current(c, g); });
  if (!d) return std::nullopt;
  ParkedGet get = cells_[d->cell].get;
  Unpark(d->cell);
  return get;
}

void Waiters::ParkPut(WaitingPut put) {
  if (put.peer >= puts_of_.size()) puts_of_.resize(put.peer + 1, 0);
  ++puts_of_[put.peer];
  puts_.push_back(std::move(put));
}

bool Waiters::PutsWaitFor(uint32_t queue) const {
  return std::any_of(puts_.begin(), puts_.end(),
                     [&](const WaitingPut& p) { return p.queue == queue; });
}

void Waiters::DropPeer(uint32_t peer) {
  if (peer < gets_of_.size())
    for (uint32_t cell : std::vector<uint32_t>(gets_of_[peer])) Unpark(cell);
  if (PutsOf(peer) == 0) return;
  std::erase_if(puts_, [peer](const WaitingPut& p) { return p.peer == peer; });
  puts_of_[peer] = 0;
}

TimePoint Waiters::NextDeadline() {
  TimePoint next = TimePoint::max();
  if (std::optional<DeadlineHeap::Due> d =
          due_.Next([this](uint32_t c, uint32_t g) { return Current(c, g); }))
    next = d->deadline;
  for (const WaitingPut& p : puts_) next = std::min(next, p.deadline);
  return next;
}

}  // namespace taskq
