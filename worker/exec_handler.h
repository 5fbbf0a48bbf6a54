// ExecHandler: runs a command the worker was started with (task_worker
// --exec CMD ARGS...) for each task of its kind. Only a worker's own command
// line can make it run commands: a task supplies data, never code.
//
// The command runs with an argument vector, never through a shell: "{}" in
// ARGS is replaced by the task's argument (a string as it is, anything else
// as JSON), which also goes to its standard input. Its standard output
// (trailing newlines removed, at most max_output bytes) is the result
// value. A non-zero exit is a failed attempt carrying the tail of its
// standard error; past the time limit its process group is killed.
#ifndef TASKQ_WORKER_EXEC_HANDLER_H_
#define TASKQ_WORKER_EXEC_HANDLER_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "worker/handler.h"

namespace taskq {

struct ExecOptions {
  std::vector<std::string> argv;  // the command and its arguments, "{}" for the task's argument
  std::chrono::milliseconds timeout{0};  // per task; 0: none
  std::size_t max_output = 1u << 20;     // bytes of standard output kept
};

class ExecHandler : public Handler {
 public:
  explicit ExecHandler(ExecOptions options) : options_(std::move(options)) {}
  RunOutcome Run(const Item& task, const CancelToken& cancel) override;
  std::string Describe(const Item& task) const override;

 private:
  ExecOptions options_;
};

// The argument as the command sees it: a string as it is, else JSON.
std::string ExecInput(const Value& arg);

// Finds cmd on PATH (or as a path); empty when it is not there.
std::string FindCommand(const std::string& cmd);

}  // namespace taskq

#endif  // TASKQ_WORKER_EXEC_HANDLER_H_
