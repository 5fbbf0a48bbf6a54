#include "master/status_report.h"

#include <cctype>
#include <cstdio>

namespace taskq {
namespace {

std::string Padded(std::string_view text, std::size_t width) {
  std::string out(text);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

}  // namespace

std::string Printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 32 || c == 127) c = '?';
  return out;
}

bool ValidJobId(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '-') return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string_view JobIdOf(std::string_view queue) {
  if (queue.rfind(kJobQueuePrefix, 0) != 0) return {};
  const std::string_view id = queue.substr(kJobQueuePrefix.size());
  return ValidJobId(id) ? id : std::string_view();
}

const QueueStats* QueueOf(const StatsOk& s, std::string_view name) {
  for (const QueueStats& q : s.queues)
    if (q.name == name) return &q;
  return nullptr;
}

uint64_t CounterOf(const StatsOk& s, std::string_view name) {
  for (const auto& [k, v] : s.counters)
    if (k == name) return v;
  return 0;
}

std::string StatusReport(const StatsOk& s) {
  std::string out = "status:\n";
  std::size_t width = 5;
  for (const QueueStats& q : s.queues)
    if (JobIdOf(q.name).empty()) width = std::max(width, std::min<std::size_t>(q.name.size(), 64));
  char line[512];
  std::snprintf(line, sizeof line, "  %s %12s %12s %12s\n", Padded("queue", width).c_str(), "ready",
                "leased", "failed");
  out += line;
  std::string jobs;
  std::size_t running = 0, finished = 0;
  for (const QueueStats& q : s.queues) {
    if (std::string_view id = JobIdOf(q.name); !id.empty()) {  // a job's reply queue
      if (Outstanding(q) == 0) {
        ++finished;
        continue;
      }
      ++running;
      std::snprintf(line, sizeof line,
                    "    %s: %llu task(s) waiting or running, %llu outcome(s) to collect%s\n",
                    std::string(id).c_str(), static_cast<unsigned long long>(q.owed),
                    static_cast<unsigned long long>(q.ready + q.leased),
                    q.leased ? (" (" + std::to_string(q.leased) + " being collected)").c_str()
                             : "");
      jobs += line;
      continue;
    }
    std::snprintf(line, sizeof line, "  %s %12llu %12llu %12llu\n",
                  Padded(Printable(q.name), width).c_str(),
                  static_cast<unsigned long long>(q.ready),
                  static_cast<unsigned long long>(q.leased),
                  static_cast<unsigned long long>(q.failed));
    out += line;
  }
  if (running + finished > 0)
    out += "  jobs: " + std::to_string(running) + " in progress" +
           (finished ? ", " + std::to_string(finished) + " finished" : "") + "\n" + jobs;
  out += "  workers: " + std::to_string(s.workers.size()) + "\n";
  for (const WorkerStats& w : s.workers) {
    std::snprintf(line, sizeof line,
                  "    %s: %llu in flight (runs %llu at once), %llu done, heard %.1f s ago\n",
                  Printable(w.name).c_str(), static_cast<unsigned long long>(w.in_flight),
                  static_cast<unsigned long long>(w.capacity),
                  static_cast<unsigned long long>(w.done), static_cast<double>(w.idle_ms) / 1000.0);
    out += line;
    if (w.benched_ms) {  // the newline above is replaced by the bench
      out.pop_back();
      std::snprintf(line, sizeof line, ", benched for %.1f s more\n",
                    static_cast<double>(w.benched_ms) / 1000.0);
      out += line;
    }
  }
  out += "  counters:";
  for (const auto& [k, v] : s.counters) out += " " + std::string(k) + " " + std::to_string(v);
  out += "\n";
  return out;
}

std::string StatusSummary(const StatsOk& s) {
  std::string out = "status:";
  for (const QueueStats& q : s.queues) {
    if (q.ready + q.leased + q.failed == 0) continue;
    out += " " + Printable(q.name) + " " + std::to_string(q.ready) + " ready";
    if (q.leased) out += " " + std::to_string(q.leased) + " leased";
    if (q.failed) out += " " + std::to_string(q.failed) + " failed";
    out += ";";
  }
  out += " " + std::to_string(s.workers.size()) + " worker(s); accepted " +
         std::to_string(CounterOf(s, "accepted")) + ", failed " +
         std::to_string(CounterOf(s, "failed")) + ", requeued " +
         std::to_string(CounterOf(s, "requeued")) + ", duplicates " +
         std::to_string(CounterOf(s, "duplicates")) + ", refused " +
         std::to_string(CounterOf(s, "refused_handshakes"));
  return out;
}

}  // namespace taskq
