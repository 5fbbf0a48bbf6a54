// The dashboard's data without sockets: FlowLog's ring, and a Snapshot as
// JSON and as Prometheus text.
#include <gtest/gtest.h>

#include "master/flow_log.h"
#include "master/snapshot_format.h"

namespace taskq {
namespace {

TEST(FlowLogTest, KeepsTheNewestEventsInOrder) {
  FlowLog log;
  log.Name(7, "ana-laptop");
  for (uint64_t id = 1; id <= FlowLog::kCapacity + 10; ++id)
    log.Task(FlowKind::kDone, id, 0, 1, 7, 0, {});
  std::vector<FlowEvent> last = log.Since(0, 3);
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(last[0].task, FlowLog::kCapacity + 8);
  EXPECT_EQ(last[2].task, FlowLog::kCapacity + 10);
  EXPECT_EQ(log.Since(0, 10000).size(), FlowLog::kCapacity);
  EXPECT_TRUE(log.Since(log.last_seq(), 10).empty());
  EXPECT_EQ(log.NameOf(7), "ana-laptop");
  EXPECT_EQ(log.NameOf(8), "?");
}

TEST(FlowLogTest, ForgetsTheOldestNamesBeyondItsLimit) {
  FlowLog log;
  for (uint64_t i = 1; i <= FlowLog::kMaxNames + 1; ++i) log.Name(i, "w" + std::to_string(i));
  EXPECT_EQ(log.NameOf(1), "?");
  EXPECT_EQ(log.NameOf(FlowLog::kMaxNames + 1), "w" + std::to_string(FlowLog::kMaxNames + 1));
}

Snapshot Sample() {
  Snapshot s;
  s.seq = 3;
  s.queues = {{"tasks", 5, 2, 0}, {"we\"ird\\q", 1, 0, 0}};
  s.workers = {{"ana-laptop-12", "ana-laptop", 2, 4, 10, 5, 0, 1.5}};
  s.counters = {{"put", 20}, {"accepted", 10}, {"failed", 1}};
  s.done_rate = 2;
  return s;
}

TEST(SnapshotFormatTest, MetricsNameEveryCounterAndEscapeLabels) {
  const std::string m = SnapshotMetrics(Sample());
  EXPECT_NE(m.find("# TYPE taskq_tasks_put_total counter\ntaskq_tasks_put_total 20\n"),
            std::string::npos);
  EXPECT_NE(m.find("taskq_tasks_requeued_total 0\n"), std::string::npos);
  EXPECT_NE(m.find("taskq_queue_ready{queue=\"tasks\"} 5\n"), std::string::npos);
  EXPECT_NE(m.find("taskq_queue_ready{queue=\"we\\\"ird\\\\q\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("taskq_worker_in_flight{worker=\"ana-laptop-12\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("taskq_workers_connected 1\n"), std::string::npos);
  EXPECT_EQ(m.find("journal"), std::string::npos);  // no journal, no journal series
}

TEST(SnapshotFormatTest, PerWorkerSeriesAreCapped) {
  Snapshot s = Sample();
  for (int i = 0; i < 200; ++i)
    s.workers.push_back({"w" + std::to_string(i), "h", 0, 1, 0, 0, 0, 0});
  const std::string m = SnapshotMetrics(s);
  std::size_t series = 0;
  for (std::size_t at = 0; (at = m.find("\ntaskq_worker_in_flight{", at + 1)) != std::string::npos;)
    ++series;
  EXPECT_EQ(series, kMaxWorkerSeries);
  EXPECT_NE(m.find("taskq_worker_series_dropped 151\n"), std::string::npos);
}

TEST(SnapshotFormatTest, JsonCarriesTheJobsProgress) {
  const std::string j = SnapshotJson(Sample(), /*flow=*/false);
  EXPECT_NE(j.find("\"job\":{\"eta_s\":4.5,\"finished\":11,\"put\":20,\"remaining\":9}"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"host\":\"ana-laptop\""), std::string::npos);
  EXPECT_EQ(j.find("\"flow\""), std::string::npos);
}

}  // namespace
}  // namespace taskq
