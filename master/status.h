// Status reports of a master, from what a stats reply carries: a table for
// SIGUSR1, one line for --status-every.
#ifndef TASKQ_MASTER_STATUS_H_
#define TASKQ_MASTER_STATUS_H_

#include <string>

#include "proto/message.h"

namespace taskq {

// The counter called name in s, or 0.
uint64_t CounterOf(const StatsOk& s, std::string_view name);
// Several lines: queues (ready, leased, failed), workers (in flight, done,
// last heard) and counters.
std::string StatusReport(const StatsOk& s);
// One line: the busy queues, the number of workers and the main counters.
std::string StatusLine(const StatsOk& s);

}  // namespace taskq

#endif  // TASKQ_MASTER_STATUS_H_
