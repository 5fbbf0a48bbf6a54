#include "master/outbox.h"

#include <algorithm>

namespace taskq {

void Outbox::Push(uint32_t peer, std::string_view routing_id, const Message& m, Delivery delivery) {
  if (routing_id == counted_id_) ++counted_;
  OutMsg out{peer, std::string(routing_id), {}, std::move(delivery)};
  EncodeTo(m, &out.bytes);
  queued_.push_back(std::move(out));
}

void Outbox::HoldAck(uint32_t peer, std::string_view routing_id, const ResultOk& m, TimePoint due) {
  if (peer >= held_.size()) held_.resize(peer + 1);
  Held& h = held_[peer];
  if (h.acks.empty()) {
    h.routing_id = routing_id;
    h.due = due;
    holders_.push_back(peer);
  }
  std::string bytes;
  EncodeTo(m, &bytes);
  h.acks.push_back(std::move(bytes));
}

void Outbox::ReleaseAcks(TimePoint now, bool all) {
  if (holders_.empty()) return;
  ++stamp_;
  for (const OutMsg& m : queued_)
    if (m.peer < held_.size()) held_[m.peer].stamp = stamp_;
  std::erase_if(holders_, [&](uint32_t peer) {
    Held& h = held_[peer];
    if (!(all || now >= h.due || h.stamp == stamp_)) return false;
    for (std::string& bytes : h.acks)
      queued_.push_back(OutMsg{peer, h.routing_id, std::move(bytes), {}});
    h.acks.clear();
    return true;
  });
}

void Outbox::TakeBatch(std::vector<OutMsg>* batch) {
  batch->clear();
  batch->swap(queued_);
}

void Outbox::ForgetPeer(uint32_t peer) {
  if (peer >= held_.size() || held_[peer].acks.empty()) return;
  held_[peer].acks.clear();
  std::erase(holders_, peer);
}

void Outbox::Clear() {
  queued_.clear();
  for (uint32_t peer : holders_) held_[peer].acks.clear();
  holders_.clear();
}

TimePoint Outbox::NextAckDue() const {
  TimePoint next = TimePoint::max();
  for (uint32_t peer : holders_) next = std::min(next, held_[peer].due);
  return next;
}

std::size_t Outbox::held() const {
  std::size_t n = 0;
  for (uint32_t peer : holders_) n += held_[peer].acks.size();
  return n;
}

}  // namespace taskq
