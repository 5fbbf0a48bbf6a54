#include "master/snapshot_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

namespace taskq {
namespace {

using nlohmann::json;

json QueuesJson(const Snapshot& s) {
  json out = json::array();
  for (const Snapshot::Queue& q : s.queues)
    out.push_back(
        {{"name", q.name}, {"ready", q.ready}, {"leased", q.leased}, {"failed", q.failed}});
  return out;
}

json WorkersJson(const Snapshot& s) {
  json out = json::array();
  for (const Snapshot::Worker& w : s.workers)
    out.push_back({{"name", w.name},
                   {"host", w.host},
                   {"capacity", w.capacity},
                   {"in_flight", w.in_flight},
                   {"done", w.done},
                   {"rate", w.rate},
                   {"idle_ms", w.idle_ms},
                   {"benched_ms", w.benched_ms}});
  return out;
}

json FlowJson(const Snapshot& s) {
  json out = json::array();
  for (const Snapshot::Event& e : s.flow) {
    json j = {{"seq", e.seq}, {"what", e.what}, {"worker", e.worker}, {"ago_s", e.ago_s}};
    if (e.task) {
      j["task"] = e.task;
      j["kind"] = e.task_kind;
      j["attempt"] = e.attempt;
      j["elapsed_us"] = e.elapsed_us;
    }
    out.push_back(std::move(j));
  }
  return out;
}

json HistoryJson(const Snapshot& s) {
  // Columns, not rows: a third of the bytes for the chart's 300 points.
  json t = json::array(), ready = json::array(), leased = json::array(), failed = json::array(),
       put = json::array(), done = json::array(), fail_rate = json::array();
  for (const Snapshot::Point& p : s.history) {
    t.push_back(std::round(p.t * 10) / 10);
    ready.push_back(p.ready);
    leased.push_back(p.leased);
    failed.push_back(p.failed);
    put.push_back(std::round(p.put_rate * 10) / 10);
    done.push_back(std::round(p.done_rate * 10) / 10);
    fail_rate.push_back(std::round(p.failed_rate * 10) / 10);
  }
  return {{"t", t},          {"ready", ready},    {"leased", leased},        {"failed", failed},
          {"put_rate", put}, {"done_rate", done}, {"failed_rate", fail_rate}};
}

// Prometheus label values escape backslash, double quote and newline.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
            std::string(name) + " " + std::string(type) + "\n";
  }
  void Sample(std::string_view name, std::string_view labels, double v) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v);
    out_ += std::string(name);
    if (!labels.empty()) out_ += "{" + std::string(labels) + "}";
    out_ += " " + std::string(num) + "\n";
  }
  void One(std::string_view name, std::string_view type, std::string_view help, double v) {
    Family(name, type, help);
    Sample(name, "", v);
  }
  std::string& text() { return out_; }

 private:
  std::string out_;
};

struct CounterDoc {
  const char* counter;  // as in a stats reply
  const char* metric;
  const char* help;
};
constexpr CounterDoc kCounters[] = {
    {"put", "taskq_tasks_put_total", "Tasks put into any queue."},
    {"delivered", "taskq_tasks_delivered_total", "Entries handed to workers and clients."},
    {"accepted", "taskq_tasks_accepted_total", "Results accepted (the task is done)."},
    {"failed", "taskq_tasks_failed_total", "Tasks failed for good (after their last attempt)."},
    {"retried", "taskq_tasks_retried_total", "Failed attempts that go to another attempt."},
    {"requeued", "taskq_tasks_requeued_total",
     "Leased tasks put back (their worker went away or their lease ran out)."},
    {"duplicates", "taskq_tasks_duplicates_total",
     "Results for tasks already answered or unknown, dropped."},
    {"timed_out", "taskq_tasks_timed_out_total", "Leases that ran past their task timeout."},
    {"refused_handshakes", "taskq_refused_handshakes_total",
     "Connections refused during the handshake (wrong authkey)."},
    {"dead_peers", "taskq_dead_peers_total", "Peers presumed dead after missed heartbeats."},
    {"bad_messages", "taskq_bad_messages_total", "Messages that did not decode."},
    {"full", "taskq_puts_full_total", "Puts refused because the queue was full."},
    {"benched", "taskq_workers_benched_total", "Times a failing worker was benched."},
};

void QueueMetrics(const Snapshot& s, Exposition& e) {
  const std::size_t n = std::min(s.queues.size(), kMaxQueueSeries);
  struct Gauge {
    const char* name;
    const char* help;
    uint64_t Snapshot::Queue::*field;
  };
  const Gauge gauges[] = {
      {"taskq_queue_ready", "Entries waiting in the queue.", &Snapshot::Queue::ready},
      {"taskq_queue_leased", "Entries of the queue handed out, outcome not in yet.",
       &Snapshot::Queue::leased},
      {"taskq_queue_failed", "Tasks of the queue given up on.", &Snapshot::Queue::failed},
  };
  for (const Gauge& g : gauges) {
    e.Family(g.name, "gauge", g.help);
    for (std::size_t i = 0; i < n; ++i)
      e.Sample(g.name, "queue=\"" + Label(s.queues[i].name) + "\"",
               static_cast<double>(s.queues[i].*g.field));
  }
}

void WorkerMetrics(const Snapshot& s, Exposition& e) {
  e.One("taskq_workers_connected", "gauge", "Workers connected now.",
        static_cast<double>(s.workers.size()));
  std::vector<const Snapshot::Worker*> shown;
  for (const Snapshot::Worker& w : s.workers) shown.push_back(&w);
  std::sort(shown.begin(), shown.end(), [](const Snapshot::Worker* a, const Snapshot::Worker* b) {
    return a->idle_ms < b->idle_ms;
  });
  const std::size_t n = std::min(shown.size(), kMaxWorkerSeries);
  std::sort(shown.begin(), shown.begin() + static_cast<std::ptrdiff_t>(n),
            [](const Snapshot::Worker* a, const Snapshot::Worker* b) { return a->name < b->name; });
  e.Family("taskq_worker_in_flight", "gauge", "Tasks leased to the worker now.");
  for (std::size_t i = 0; i < n; ++i)
    e.Sample("taskq_worker_in_flight", "worker=\"" + Label(shown[i]->name) + "\"",
             static_cast<double>(shown[i]->in_flight));
  e.Family("taskq_worker_done_total", "counter", "Outcomes accepted from the worker.");
  for (std::size_t i = 0; i < n; ++i)
    e.Sample("taskq_worker_done_total", "worker=\"" + Label(shown[i]->name) + "\"",
             static_cast<double>(shown[i]->done));
  e.One("taskq_worker_series_dropped", "gauge",
        "Workers left out of the per-worker series (at most 50 are shown).",
        static_cast<double>(shown.size() - n));
}

}  // namespace

std::string SnapshotJson(const Snapshot& s, bool flow) {
  json counters = json::object();
  for (const auto& [k, v] : s.counters) counters[k] = v;
  json j = {{"seq", s.seq},
            {"uptime_s", s.uptime_s},
            {"unix_ms", s.unix_ms},
            {"queues", QueuesJson(s)},
            {"workers", WorkersJson(s)},
            {"counters", counters},
            {"rates", {{"put", s.put_rate}, {"done", s.done_rate}, {"failed", s.failed_rate}}},
            {"rss_bytes", s.rss_bytes}};
  const uint64_t finished = s.Counter("accepted") + s.Counter("failed");
  const uint64_t put = s.Counter("put");
  const uint64_t remaining = put > finished ? put - finished : 0;
  json job = {{"put", put}, {"finished", finished}, {"remaining", remaining}};
  if (remaining > 0 && s.done_rate + s.failed_rate > 0)
    job["eta_s"] = static_cast<double>(remaining) / (s.done_rate + s.failed_rate);
  j["job"] = job;
  if (s.journal) j["journal"] = {{"bytes", s.journal_bytes}, {"segments", s.journal_segments}};
  if (flow) {
    j["flow"] = FlowJson(s);
    j["history"] = HistoryJson(s);
  }
  return j.dump();
}

std::string SnapshotMetrics(const Snapshot& s) {
  Exposition e;
  for (const CounterDoc& c : kCounters)
    e.One(c.metric, "counter", c.help, static_cast<double>(s.Counter(c.counter)));
  QueueMetrics(s, e);
  WorkerMetrics(s, e);
  if (s.journal) {
    e.One("taskq_journal_bytes", "gauge", "Bytes of the journal's segment files.",
          static_cast<double>(s.journal_bytes));
    e.One("taskq_journal_segments", "gauge", "Segment files of the journal.",
          static_cast<double>(s.journal_segments));
  }
  e.One("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
        static_cast<double>(s.rss_bytes));
  e.One("taskq_uptime_seconds", "gauge", "Seconds since the master started.", s.uptime_s);
  return std::move(e.text());
}

}  // namespace taskq
