// TaskPrinter: the worker's "run task 9541 * 9541..." lines, as in the
// tutorial, without letting a million fast tasks drown the terminal (and
// the worker's speed) in output: past kLinesPerSecond in one second, lines
// are counted and summed up once a second instead.
//
// Thread: safe to call from the pool's threads and the loop at once.
#ifndef TASKQ_WORKER_TASK_PRINTER_H_
#define TASKQ_WORKER_TASK_PRINTER_H_

#include <chrono>
#include <mutex>
#include <ostream>
#include <string>

namespace taskq {

class TaskPrinter {
 public:
  static constexpr int kLinesPerSecond = 50;

  TaskPrinter(std::ostream& out, bool quiet) : out_(out), quiet_(quiet) {}

  // Nothing is printed (--quiet): callers need not build their lines.
  bool quiet() const { return quiet_; }
  // Prints line (or counts it, past the rate).
  void Line(const std::string& line, std::chrono::steady_clock::time_point now) {
    if (quiet_) return;
    std::lock_guard<std::mutex> lock(mu_);
    Roll(now);
    if (printed_ < kLinesPerSecond) {
      ++printed_;
      out_ << line << "\n";
      out_.flush();  // lines from pool threads must not wait for the loop
    } else {
      ++skipped_;
    }
  }
  // Call when the loop is about to wait: flushes and, once a second, sums up.
  void Flush(std::chrono::steady_clock::time_point now) {
    if (quiet_) return;
    std::lock_guard<std::mutex> lock(mu_);
    Roll(now);
    out_.flush();
  }

 private:
  void Roll(std::chrono::steady_clock::time_point now) {
    if (now - second_ < std::chrono::seconds(1)) return;
    if (skipped_ > 0) out_ << "... and " << skipped_ << " more tasks\n";
    second_ = now;
    printed_ = 0;
    skipped_ = 0;
  }

  std::mutex mu_;
  std::ostream& out_;
  bool quiet_;
  std::chrono::steady_clock::time_point second_{};
  int printed_ = 0;
  long long skipped_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_TASK_PRINTER_H_
