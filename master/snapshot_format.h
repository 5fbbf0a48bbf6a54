// The two public renderings of a Snapshot: JSON (/api/status and the
// dashboard's event stream) and the Prometheus text exposition (/metrics).
// Pure functions, tested without sockets.
#ifndef TASKQ_MASTER_SNAPSHOT_FORMAT_H_
#define TASKQ_MASTER_SNAPSHOT_FORMAT_H_

#include <cstddef>
#include <string>

#include "master/snapshot.h"

namespace taskq {

// Per-worker series in /metrics: at most this many (the most recently heard),
// so a thousand workers do not make a thousand series each; the count left
// out is taskq_worker_series_dropped.
inline constexpr std::size_t kMaxWorkerSeries = 50;
// Queues in /metrics, likewise (queue names come from clients).
inline constexpr std::size_t kMaxQueueSeries = 100;

// The snapshot as one JSON object (docs/HTTP.md). With flow false, without
// the recent events and the chart's history.
std::string SnapshotJson(const Snapshot& s, bool flow = true);
// Prometheus text exposition format 0.0.4.
std::string SnapshotMetrics(const Snapshot& s);

}  // namespace taskq

#endif  // TASKQ_MASTER_SNAPSHOT_FORMAT_H_
