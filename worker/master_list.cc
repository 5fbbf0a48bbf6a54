#include "worker/master_list.h"

#include <cassert>

namespace taskq {

MasterList::MasterList(std::vector<ServerAddress> masters) : masters_(std::move(masters)) {
  assert(!masters_.empty());
}

void MasterList::Start(std::size_t i) {
  current_ = serving_ = i;
  trying_ = false;
}

bool MasterList::Welcomed() {
  trying_ = false;
  const bool moved = current_ != serving_;
  serving_ = current_;
  return moved;
}

void MasterList::Lost(TimePoint now, std::chrono::milliseconds window) {
  trying_ = true;
  window_ = window;
  Try((serving_ + 1) % masters_.size(), now);
}

bool MasterList::Advance(TimePoint now) {
  if (!trying_ || now < try_end_) return false;
  Try((current_ + 1) % masters_.size(), now);
  return true;
}

void MasterList::Try(std::size_t i, TimePoint now) {
  current_ = i;
  try_end_ = now + window_ + (i == serving_ ? kRoundPause : std::chrono::milliseconds(0));
}

std::string MasterList::Describe() const {
  std::string out;
  for (const ServerAddress& a : masters_) out += (out.empty() ? "" : ", ") + a.Display();
  return out;
}

}  // namespace taskq
