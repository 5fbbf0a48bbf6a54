#include <chrono>
#include <thread>

#include "worker/handler.h"

namespace taskq {
namespace {

// The largest n whose square fits in int64.
constexpr int64_t kMaxSquareArg = 3037000499;
// A sleep task longer than this is refused (a typo, not a plan).
constexpr int64_t kMaxSleepMs = 24LL * 3600 * 1000;

class SquareHandler : public Handler {
 public:
  RunOutcome Run(const Item& task, const CancelToken&) override {
    std::optional<int64_t> n = task.arg.AsInt();
    if (!n)
      // Bad input fails the same way every time: no retry.
      return RunOutcome::Error("square needs an integer, got " + PackedToJson(task.arg.packed()),
                               /*retry=*/false);
    if (*n > kMaxSquareArg || *n < -kMaxSquareArg)
      return RunOutcome::Error("square of " + std::to_string(*n) + " does not fit in 64 bits",
                               /*retry=*/false);
    return RunOutcome::Ok(Value::Int(*n * *n));
  }
  std::string Describe(const Item& task) const override {
    const std::string n = task.arg.AsInt() ? task.arg.ToText() : PackedToJson(task.arg.packed());
    return n + " * " + n;
  }
  bool Instant() const override { return true; }
};

// Waits arg milliseconds and returns arg: simulated work, for demos and
// tests of what happens to tasks in flight.
class SleepHandler : public Handler {
 public:
  RunOutcome Run(const Item& task, const CancelToken& cancel) override {
    std::optional<int64_t> ms = task.arg.AsInt();
    if (!ms || *ms < 0 || *ms > kMaxSleepMs)
      return RunOutcome::Error(
          "sleep needs milliseconds from 0 to 86400000, got " + PackedToJson(task.arg.packed()),
          /*retry=*/false);
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(*ms);
    while (std::chrono::steady_clock::now() < end) {
      if (cancel.cancelled()) return RunOutcome::Error("the worker stopped before the sleep ended");
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          end - std::chrono::steady_clock::now(), std::chrono::milliseconds(20)));
    }
    return RunOutcome::Ok(task.arg);
  }
  std::string Describe(const Item& task) const override {
    return "sleep " + task.arg.ToText() + " ms";
  }
};

}  // namespace

std::string Handler::Describe(const Item& task) const {
  return task.kind + " " + PackedToJson(task.arg.packed());
}

HandlerSet HandlerSet::BuiltIn() {
  HandlerSet set;
  set.Add("square", std::make_unique<SquareHandler>());
  set.Add("sleep", std::make_unique<SleepHandler>());
  return set;
}

void HandlerSet::Add(std::string kind, std::unique_ptr<Handler> h) {
  handlers_[std::move(kind)] = std::move(h);
}

Handler* HandlerSet::Find(const std::string& kind) const {
  auto it = handlers_.find(kind);
  return it == handlers_.end() ? nullptr : it->second.get();
}

std::vector<std::string> HandlerSet::Kinds() const {
  std::vector<std::string> out;
  for (const auto& [k, h] : handlers_) out.push_back(k);
  return out;
}

}  // namespace taskq
