// Status reports of a master, from what a stats reply carries: a table for
// SIGUSR1, one line for --status-every.
#ifndef TASKQ_MASTER_STATUS_REPORT_H_
#define TASKQ_MASTER_STATUS_REPORT_H_

#include <string>
#include <string_view>

#include "proto/message.h"

namespace taskq {

// A job's outcomes go to the queue "job.ID" (docs/PROTOCOL.md 7.10).
inline constexpr std::string_view kJobQueuePrefix = "job.";
// A job id: 1 to 64 of A-Z a-z 0-9 _ -, not starting with '-' (it would
// read as a flag on a command line).
bool ValidJobId(std::string_view id);
// The ID of a job's reply queue "job.ID"; empty for any other queue (and
// for "job." followed by anything that is not a job id).
std::string_view JobIdOf(std::string_view queue);

// s with each control character (below 32, and 127) as '?': for names a
// peer chooses (its own, its queues'), before they reach a terminal or a log.
std::string Printable(std::string_view s);

// The queue called name in s, or null.
const QueueStats* QueueOf(const StatsOk& s, std::string_view name);
// What a reply queue still holds of its tasks' outcomes: waiting, being
// collected, or still to come (owed). A job is over when this is 0
// (docs/PROTOCOL.md 7.10).
inline uint64_t Outstanding(const QueueStats& q) { return q.ready + q.leased + q.owed; }

// The counter called name in s, or 0.
uint64_t CounterOf(const StatsOk& s, std::string_view name);
// Several lines: queues (ready, leased, failed), jobs in progress (tasks
// still to run, outcomes to collect), workers (in flight, done, last heard)
// and counters.
std::string StatusReport(const StatsOk& s);
// One line: the busy queues, the number of workers and the main counters.
std::string StatusSummary(const StatsOk& s);

}  // namespace taskq

#endif  // TASKQ_MASTER_STATUS_REPORT_H_
