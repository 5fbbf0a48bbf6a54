// The clock of taskq's deadlines (leases, heartbeats, timeouts), and how a
// deadline becomes a poll's timeout. One definition for the master's broker
// and loop, the client and the worker.
#ifndef TASKQ_CLIENT_CLOCK_H_
#define TASKQ_CLIENT_CLOCK_H_

#include <algorithm>
#include <chrono>

namespace taskq {

// Monotonic: setting the wall clock neither fires nor holds back a deadline.
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Milliseconds from now until deadline for zmq_poll, rounded up (a poll
// that wakes early would spin) and at most longest; -1 for TimePoint::max()
// (wait for ever).
inline int PollTimeout(TimePoint deadline,
                       std::chrono::milliseconds longest = std::chrono::hours(1)) {
  if (deadline == TimePoint::max()) return -1;
  const TimePoint now = Clock::now();
  if (deadline <= now) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<long long>(ms + 1, longest.count()));
}

}  // namespace taskq

#endif  // TASKQ_CLIENT_CLOCK_H_
