// MasterList: the masters a worker may work for (task_worker --server
// A,B,C), which one it works for, and which one it tries after losing it.
// No socket: the worker loop connects where current() says
// (Connection::MoveTo); tests/master_list_test.cc drives it with a made-up
// clock.
//
// The worker works for one master at a time. When it loses it (silent for
// SilenceLimit: WorkerLoop::CheckMaster), it tries the others in turn,
// starting after the one it lost and coming back to it last, each for one
// window (SilenceLimit of the lost master's heartbeat) unless a welcome
// comes first; the try that ends a round (on the master it lost) lasts
// kRoundPause longer, the longest wait of the reconnect backoff
// (client/connection.cc), so a round of masters that are all down is not
// started again at once. With one master there is nothing to try: the
// worker reconnects to it, as it always did.
//
// Thread: the worker's main thread.
#ifndef TASKQ_WORKER_MASTER_LIST_H_
#define TASKQ_WORKER_MASTER_LIST_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "client/clock.h"
#include "client/endpoint.h"

namespace taskq {

// How long the worker waits on a silent master before it takes it for gone:
// 3 of its heartbeats (welcome.heartbeat_ms) and half a second for the
// network. Also how long it tries each master of a list.
inline std::chrono::milliseconds SilenceLimit(std::chrono::milliseconds master_heartbeat) {
  return 3 * master_heartbeat + std::chrono::milliseconds(500);
}

class MasterList {
 public:
  // Added to the try that ends a round (see above).
  static constexpr std::chrono::milliseconds kRoundPause{2000};
  // At start, between rounds of masters that all refused the connection:
  // the start's reconnect backoff (four times a second, client/connection.cc).
  static constexpr std::chrono::milliseconds kStartRoundPause{250};
  // At start, how long a master that accepted the connection has to say
  // welcome: SilenceLimit of a master's default heartbeat (1 s).
  static constexpr std::chrono::milliseconds kStartTry{3500};

  // masters: not empty, in the order given.
  explicit MasterList(std::vector<ServerAddress> masters);

  std::size_t size() const { return masters_.size(); }
  const ServerAddress& at(std::size_t i) const { return masters_[i]; }
  // Where the connection points.
  const ServerAddress& current() const { return masters_[current_]; }
  // The master whose tasks the worker holds (its last welcome's).
  const ServerAddress& serving() const { return masters_[serving_]; }
  bool AtServing() const { return current_ == serving_; }

  // The connection was opened to master i and welcomed (at start).
  void Start(std::size_t i);
  // A welcome came from current(): it is the master worked for now; the
  // tries end. True when it is another than the one worked for before.
  bool Welcomed();
  // The master worked for is gone: current() is the first to try now.
  // window: how long each try lasts.
  void Lost(TimePoint now, std::chrono::milliseconds window);
  // While trying: when current()'s try has lasted its window, moves to the
  // next and returns true (connect to current()).
  bool Advance(TimePoint now);
  // A comma-separated list of the masters, for messages.
  std::string Describe() const;

 private:
  void Try(std::size_t i, TimePoint now);

  std::vector<ServerAddress> masters_;
  std::size_t current_ = 0;
  std::size_t serving_ = 0;
  bool trying_ = false;  // between Lost and Welcomed
  std::chrono::milliseconds window_{0};
  TimePoint try_end_;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_MASTER_LIST_H_
