// JobReport: what task_master shows and writes while a job runs.
//
// - a line per outcome when the job is tutorial-sized ("Result: 9541 * 9541
//   = 91030681  (worker ana-laptop)", "Result: URL -> downloads/a.jpg (5120
//   bytes)  (worker ...)"), unless quiet;
// - otherwise a progress line: on a terminal one line that updates in place
//   (done/total, failed, tasks/s, ETA), elsewhere (CI, pipes) a plain line
//   every 10 s;
// - --results -: every outcome as a JSON line on stdout (a results file is
//   the job's OutcomeFile);
// - at the end, a summary per worker (tasks, failures, busy time) and the
//   totals, or with --json the same as one JSON object on stdout.
#ifndef TASKQ_MASTER_JOB_REPORT_H_
#define TASKQ_MASTER_JOB_REPORT_H_

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "client/client.h"

namespace taskq {

// The line of stderr that a terminal redraws in place (the job's progress),
// shared with the master's log: a log line clears it first and it is drawn
// again after, so the two never run into each other.
// Thread: any (the job's thread draws, the server's thread logs).
class StatusLine {
 public:
  StatusLine(std::ostream& err, bool tty) : err_(err), tty_(tty) {}
  // Draws text in place (a terminal) or as a "progress:" line (elsewhere).
  void Show(const std::string& text);
  // Removes the line from the terminal; the next Log does not redraw it.
  void Clear();
  // Writes one whole line (ending in a newline) under the status line.
  void Log(const std::string& line);
  bool tty() const { return tty_; }

 private:
  std::mutex mu_;
  std::ostream& err_;
  const bool tty_;
  std::string shown_;  // what the terminal shows now; empty: nothing
};

struct ReportOptions {
  bool quiet = false;           // no line per outcome (failures still show)
  bool json = false;            // the summary as JSON on stdout, nothing else there
  bool results_stdout = false;  // --results -: every outcome as a JSON line on stdout
  std::chrono::milliseconds plain_every{10000};  // progress lines off a terminal
};

class JobReport {
 public:
  // JSON (--json, --results -) goes to out; with --results -, the text
  // lines go to err instead, so that out is pure JSON. The progress line is
  // status's; status must outlive the report.
  JobReport(ReportOptions options, std::ostream& out, std::ostream& err, StatusLine& status);
  ~JobReport();

  // A job of at most this many tasks gets a line per outcome; larger ones a
  // progress line.
  static constexpr uint64_t kPerTaskLines = 1000;

  // The job's clock starts (at the first put).
  void Start() { start_ = last_print_ = std::chrono::steady_clock::now(); }
  // Collection begins: total says which kind of output it gets.
  void Begin(uint64_t total);
  // One outcome came in.
  void Outcome(const Item& item);
  // The job knows how many tasks there are (so far) and how many came back;
  // called often, it prints at most every 250 ms. A job that grows past
  // kPerTaskLines switches from lines per outcome to the progress line.
  void Progress(uint64_t done, uint64_t total, uint64_t failed);
  // How long the job waited for workers before its clock started.
  void Waited(std::chrono::nanoseconds d) { waited_ = d; }
  // --in-flight: one task's submit -> outcome time.
  void Latency(std::chrono::nanoseconds d) { latencies_.push_back(d); }
  // At the end: per worker and totals.
  void Summary(uint64_t done, uint64_t total, uint64_t failed, uint64_t skipped_lines);

 private:
  struct PerWorker {
    uint64_t tasks = 0, failed = 0;
    std::chrono::microseconds busy{0};
  };
  void Line(const Item& item);
  void ClearProgress();

  ReportOptions o_;
  std::ostream& out_;   // JSON
  std::ostream& text_;  // Result: lines and the summary
  StatusLine& status_;
  std::ostream* results_ = nullptr;
  std::map<std::string, PerWorker> workers_;
  std::vector<std::chrono::nanoseconds> latencies_;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::chrono::nanoseconds waited_{0};
  bool per_task_ = true, progress_ = false;
};

// One outcome as the JSON line --results writes:
// {"id", "kind", "arg", "ok", "value" or "error", "worker", "elapsed_ms", "attempt"}.
std::string OutcomeJson(const Item& item);

}  // namespace taskq

#endif  // TASKQ_MASTER_JOB_REPORT_H_
