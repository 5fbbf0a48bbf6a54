// Handler: what a worker does with one kind of task. Task content is data:
// no built-in handler runs code or commands named by a task; running
// commands needs the worker's own opt-in (--exec).
#ifndef TASKQ_WORKER_HANDLER_H_
#define TASKQ_WORKER_HANDLER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "proto/value.h"

namespace taskq {

// What one run of a task gave.
struct RunOutcome {
  bool ok = true;
  Value value;        // when ok
  std::string error;  // when !ok: one sentence
  bool retry = true;  // when !ok: may another attempt succeed?
  // When !ok: the failure is about this worker, not the task (it cannot
  // write into --out, its command or libcurl is missing): another worker
  // may well succeed, and the master stops giving tasks to this one.
  bool worker_fault = false;

  static RunOutcome Ok(Value v) { return RunOutcome{true, std::move(v), {}, true}; }
  static RunOutcome Error(std::string why, bool retry = true) {
    return RunOutcome{false, Value(), std::move(why), retry};
  }
  static RunOutcome WorkerFault(std::string why) {
    return RunOutcome{false, Value(), std::move(why), true, true};
  }
};

// Lets a long run notice that the worker is stopping.
class CancelToken {
 public:
  bool cancelled() const { return flag_->load(std::memory_order_relaxed); }
  explicit CancelToken(const std::atomic<bool>* flag) : flag_(flag) {}

 private:
  const std::atomic<bool>* flag_;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Runs one task. Never throws: a bad argument is an Error outcome with a
  // sentence saying why. Called from the worker's threads at once.
  virtual RunOutcome Run(const Item& task, const CancelToken& cancel) = 0;
  // How the worker announces the task: "9541 * 9541" for square.
  virtual std::string Describe(const Item& task) const;
  // True for work so small (a multiplication) that handing it to a thread
  // would cost more than doing it: the worker's loop runs it in place.
  virtual bool Instant() const { return false; }
};

// The kinds a worker serves, by name.
class HandlerSet {
 public:
  // square (an integer's square) and sleep (waits arg milliseconds).
  static HandlerSet BuiltIn();

  void Add(std::string kind, std::unique_ptr<Handler> h);
  Handler* Find(const std::string& kind) const;
  std::vector<std::string> Kinds() const;

 private:
  std::map<std::string, std::unique_ptr<Handler>> handlers_;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_HANDLER_H_
