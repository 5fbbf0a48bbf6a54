#include "master/job_report.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "proto/json.h"
#include "proto/msgpack_reader.h"
#include "proto/text.h"

namespace taskq {
namespace {

// How much of a task's argument and value a Result: line shows.
constexpr std::size_t kArgShown = 120, kValueShown = 400;

std::string Duration(double seconds) {
  char buf[32];
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%.0f ms", seconds * 1000);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else {
    const long s = static_cast<long>(seconds);
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  }
  return buf;
}

// A field of a map value (a download's result), rendered as JSON.
std::string Field(const Value& v, std::string_view name) {
  MsgpackReader r(v.packed());
  uint32_t n;
  if (!r.ReadMapHeader(&n)) return "";
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key, raw;
    if (!r.ReadStr(&key) || !r.Skip(&raw)) return "";
    if (key == name) return Value::FromTrusted(raw).ToText();
  }
  return "";
}

// The q-quantile (0..1) of sorted times, in microseconds (nearest rank).
double QuantileUs(const std::vector<std::chrono::nanoseconds>& sorted, double q) {
  if (sorted.empty()) return 0;
  const std::size_t i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[i].count()) / 1e3;
}

// This process's peak resident memory (VmHWM), for benchmarks.
long PeakRssKb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

// "  (worker NAME)" after a Result: line; nothing for an outcome with no
// worker (put into "results" by a client).
std::string ByWorker(const TaskOutcome& o) {
  return o.worker.empty() ? "" : "  (worker " + o.worker + ")";
}

}  // namespace

std::string OutcomeJson(const Item& item) {
  JsonObject line;
  line.Uint("id", item.id).Str("kind", item.kind).Packed("arg", item.arg.packed());
  if (!item.outcome) return line.Close();
  const TaskOutcome& o = *item.outcome;
  line.Bool("ok", o.ok);
  if (o.ok)
    line.Packed("value", o.value.packed());
  else
    line.Str("error", o.error);
  return line.Str("worker", o.worker)
      .Fixed("elapsed_ms", static_cast<double>(o.elapsed.count()) / 1000.0, 3)
      .Uint("attempt", item.attempt)
      .Close();
}

void StatusLine::Show(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_) {
    err_ << "\r\033[K" << text << std::flush;
    shown_ = text;
  } else {
    err_ << "progress: " << text << std::endl;
  }
}

void StatusLine::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!shown_.empty()) err_ << "\r\033[K" << std::flush;
  shown_.clear();
}

void StatusLine::Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!shown_.empty()) err_ << "\r\033[K";
  err_ << line;
  if (!shown_.empty()) err_ << shown_;
  err_ << std::flush;
}

JobReport::JobReport(ReportOptions options, std::ostream& out, std::ostream& err,
                     StatusLine& status)
    : o_(std::move(options)),
      out_(out),
      text_(o_.results_stdout ? err : out),
      status_(status),
      results_(o_.results_stdout ? &out : nullptr),
      start_(std::chrono::steady_clock::now()) {}

JobReport::~JobReport() = default;

void JobReport::Begin(uint64_t total) {
  per_task_ = !o_.quiet && !o_.json && total <= kPerTaskLines;
  progress_ = !per_task_ && !o_.json && !o_.quiet;
  last_print_ = std::chrono::steady_clock::now();
}

void JobReport::Outcome(const Item& item) {
  if (!item.outcome) return;  // something a client put into "results" by hand
  const TaskOutcome& o = *item.outcome;
  PerWorker& w = workers_[o.worker.empty() ? "(master)" : o.worker];
  ++w.tasks;
  w.failed += o.ok ? 0 : 1;
  w.busy += o.elapsed;
  if (results_) *results_ << OutcomeJson(item) << "\n";
  if (o_.json) return;
  if (!o.ok) {  // failures show, whatever the size of the job
    ClearProgress();
    text_ << "Result: task " << item.id << " (" << item.kind << " "
          << Clip(item.arg.ToText(), kArgShown) << ") failed: " << o.error << ByWorker(o) << "\n";
  } else if (per_task_) {
    Line(item);
  }
}

// As the tutorial prints them, and which worker ran the task: the outcome
// carries its name (PROTOCOL.md, outcome).
void JobReport::Line(const Item& item) {
  const TaskOutcome& o = *item.outcome;
  if (item.kind == "square") {
    const std::string n = item.arg.ToText();
    text_ << "Result: " << n << " * " << n << " = " << o.value.ToText() << ByWorker(o) << "\n";
  } else if (item.kind == "download") {
    text_ << "Result: " << item.arg.ToText() << " -> " << Field(o.value, "path") << " ("
          << Field(o.value, "bytes") << " bytes"
          << (Field(o.value, "skipped") == "true" ? ", already there" : "") << ")" << ByWorker(o)
          << "\n";
  } else {
    text_ << "Result: task " << item.id << " (" << item.kind << " "
          << Clip(item.arg.ToText(), kArgShown) << "): " << Clip(o.value.ToText(), kValueShown)
          << ByWorker(o) << "\n";
  }
}

void JobReport::ClearProgress() { status_.Clear(); }

void JobReport::Progress(uint64_t done, uint64_t total, uint64_t failed) {
  if (per_task_ && total > kPerTaskLines) Begin(total);
  if (!progress_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto every = status_.tty() ? std::chrono::milliseconds(250) : o_.plain_every;
  if (now - last_print_ < every && done < total) return;
  last_print_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? done / secs : 0;
  char line[200];
  std::snprintf(line, sizeof line, "%llu/%llu done, %llu failed, %.0f tasks/s",
                static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(failed), rate);
  std::string text = line;
  if (rate > 0 && done < total) text += ", ETA " + Duration((total - done) / rate);
  status_.Show(text);
}

void JobReport::Summary(uint64_t done, uint64_t total, uint64_t failed, uint64_t skipped_lines) {
  ClearProgress();
  if (results_) results_->flush();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? done / secs : 0;
  std::sort(latencies_.begin(), latencies_.end());
  const double p50 = QuantileUs(latencies_, 0.5), p99 = QuantileUs(latencies_, 0.99);
  if (o_.json) {
    std::vector<std::string> workers;
    for (const auto& [name, w] : workers_)
      workers.push_back(JsonObject()
                            .Str("name", name)
                            .Uint("tasks", w.tasks)
                            .Uint("failed", w.failed)
                            .Fixed("busy_s", static_cast<double>(w.busy.count()) / 1e6, 3)
                            .Close());
    JsonObject j;
    j.Uint("tasks", total).Uint("done", done).Uint("failed", failed);
    j.Uint("skipped_lines", skipped_lines).Fixed("seconds", secs, 3).Fixed("tasks_per_s", rate, 1);
    j.Int("peak_rss_kb", PeakRssKb()).Raw("workers", JsonList(workers));
    if (!latencies_.empty())
      j.Raw("latency_us", JsonObject().Fixed("p50", p50, 1).Fixed("p99", p99, 1).Close());
    out_ << j.Close() << std::endl;
    return;
  }
  if (workers_.empty()) return;
  text_ << "Workers:\n";
  for (const auto& [name, w] : workers_) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-24s %8llu tasks, %llu failed, %s busy\n", name.c_str(),
                  static_cast<unsigned long long>(w.tasks),
                  static_cast<unsigned long long>(w.failed),
                  Duration(static_cast<double>(w.busy.count()) / 1e6).c_str());
    text_ << line;
  }
  if (waited_ >= std::chrono::milliseconds(50))
    text_ << "Waited " << Duration(std::chrono::duration<double>(waited_).count())
          << " for workers; the time below runs from the first task." << std::endl;
  char line[200];
  std::snprintf(line, sizeof line, "Done: %llu of %llu tasks in %s (%.0f tasks/s), %llu failed",
                static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                Duration(secs).c_str(), rate, static_cast<unsigned long long>(failed));
  text_ << line;
  if (skipped_lines) text_ << "; " << skipped_lines << " input line(s) skipped";
  text_ << std::endl;
  if (!latencies_.empty()) {
    std::snprintf(line, sizeof line, "Latency (put -> result): p50 %.0f us, p99 %.0f us", p50, p99);
    text_ << line << std::endl;
  }
}

}  // namespace taskq
