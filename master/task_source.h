// Where task_master's tasks come from: the tutorial's random squares, a
// list of URLs (--download), or a task list (--tasks). Each is read as the
// job goes, a line at a time, so a list of millions is never all in memory.
#ifndef TASKQ_MASTER_TASK_SOURCE_H_
#define TASKQ_MASTER_TASK_SOURCE_H_

#include <cstdint>
#include <fstream>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"

namespace taskq {

class TaskSource {
 public:
  virtual ~TaskSource() = default;
  // The next task; false at the end. A line that is not a task is reported
  // to the error callback (with its file and line number) and skipped.
  virtual bool Next(TaskSpec* task) = 0;
  // Lines skipped because they were not tasks.
  uint64_t skipped() const { return skipped_; }
  // How many tasks it gives in all, when known before reading them; 0 if not.
  virtual uint64_t size_hint() const { return 0; }

 protected:
  uint64_t skipped_ = 0;
};

using LineError = std::function<void(const std::string& where, const std::string& what)>;

// count random integers 0..10000 as "square" tasks; announce is told each.
std::unique_ptr<TaskSource> SquareSource(uint64_t count, std::function<void(int64_t)> announce);

// One "download" task per URL: those given, then one per line of each file
// ("-": standard input). Blank lines and lines starting with '#' are skipped.
Result<std::unique_ptr<TaskSource>> UrlSource(std::vector<std::string> urls,
                                              std::vector<std::string> files, LineError on_error);

// Task lists, one task per line, in either form:
//   {"kind": "square", "arg": 12, "timeout": 30}     JSON ("arg" default null;
//                                                   "timeout" in seconds, optional)
//   square 12                                       KIND ARG: ARG is JSON if it parses
//                                                   as JSON, else the text as a string
Result<std::unique_ptr<TaskSource>> TaskFileSource(const std::string& file, LineError on_error);

// A job's tasks as its command line gives them (task_master and taskq
// submit take the same flags): URLs and --download files, else --tasks,
// else square random numbers.
struct JobTasks {
  uint64_t square = 10;
  std::vector<std::string> download;
  std::vector<std::string> urls;
  std::string tasks;
};

// The source of those tasks. Lines that are not tasks are told on err as
// "PROGRAM: FILE:LINE: why (skipped)"; announce_squares prints the
// tutorial's "Put task 9541..." on out for each square task.
Result<std::unique_ptr<TaskSource>> MakeTaskSource(const JobTasks& tasks, const std::string& program,
                                                   bool announce_squares, std::ostream& out,
                                                   std::ostream& err);

// No tasks (a job that only collects: taskq results).
std::unique_ptr<TaskSource> NoTaskSource();

// Parses one line of a task list (exposed for tests): false with *error
// set when it is not a task; empty and comment lines give false with no error.
bool ParseTaskLine(std::string_view line, TaskSpec* task, std::string* error);

}  // namespace taskq

#endif  // TASKQ_MASTER_TASK_SOURCE_H_
