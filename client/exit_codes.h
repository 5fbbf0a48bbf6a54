// Exit codes of task_master and task_worker (README.md, "Exit codes").
#ifndef TASKQ_CLIENT_EXIT_CODES_H_
#define TASKQ_CLIENT_EXIT_CODES_H_

namespace taskq {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;          // a runtime error, explained on stderr
constexpr int kExitUsage = 2;          // bad flags, bad input files, no authkey
constexpr int kExitAuthFailed = 3;     // the authkey does not match the master's
constexpr int kExitUnavailable = 4;    // cannot listen, or gave up reaching the master
constexpr int kExitTimeout = 5;        // task_master: results stopped arriving (--timeout)
constexpr int kExitTasksFailed = 6;    // task_master: some tasks failed for good
constexpr int kExitInterrupted = 130;  // stopped by a signal before the job was done

}  // namespace taskq

#endif  // TASKQ_CLIENT_EXIT_CODES_H_
