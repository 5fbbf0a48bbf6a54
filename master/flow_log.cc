#include "master/flow_log.h"

#include <algorithm>

namespace taskq {

std::string_view FlowKindName(FlowKind k) {
  switch (k) {
    case FlowKind::kHanded:
      return "handed";
    case FlowKind::kDone:
      return "done";
    case FlowKind::kFailed:
      return "failed";
    case FlowKind::kRetried:
      return "retried";
    case FlowKind::kRequeued:
      return "requeued";
    case FlowKind::kJoined:
      return "joined";
    case FlowKind::kLeft:
      return "left";
    case FlowKind::kDead:
      return "dead";
  }
  return "?";
}

void FlowLog::Name(uint64_t ident, std::string_view name) {
  auto [it, added] = names_.try_emplace(ident, name);
  if (!added) {
    it->second = std::string(name);
    return;
  }
  name_order_.push_back(ident);
  if (name_order_.size() <= kMaxNames) return;
  // Forget the oldest half: events still naming them show "?".
  const auto half = name_order_.begin() + static_cast<std::ptrdiff_t>(kMaxNames / 2);
  for (auto i = name_order_.begin(); i != half; ++i) names_.erase(*i);
  name_order_.erase(name_order_.begin(), half);
}

std::string_view FlowLog::NameOf(uint64_t ident) const {
  auto it = names_.find(ident);
  return it == names_.end() ? std::string_view("?") : std::string_view(it->second);
}

std::vector<FlowEvent> FlowLog::Since(uint64_t after, std::size_t max) const {
  const uint64_t last = last_seq();
  uint64_t first = std::max<uint64_t>(after + 1, last >= kCapacity ? last - kCapacity + 1 : 1);
  max = std::min(max, kCapacity);
  if (last >= first && last - first + 1 > max) first = last - max + 1;
  std::vector<FlowEvent> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(ring_[s % kCapacity]);
  return out;
}

}  // namespace taskq
