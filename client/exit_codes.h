// Exit codes of task_master and task_worker. kExitCodes is the one table of
// what each means: --help prints it (ExitCodesHelp) and a test checks that
// README.md's "Exit codes" table says the same (tests/e2e_messages_test.cc).
#ifndef TASKQ_CLIENT_EXIT_CODES_H_
#define TASKQ_CLIENT_EXIT_CODES_H_

#include <string>

#include "proto/status.h"

namespace taskq {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;          // a runtime error, explained on stderr
constexpr int kExitUsage = 2;          // bad flags, bad input files, no authkey
constexpr int kExitAuthFailed = 3;     // the authkey does not match the master's
constexpr int kExitUnavailable = 4;    // cannot listen, or gave up reaching the master
constexpr int kExitTimeout = 5;        // task_master: results stopped arriving (--timeout)
constexpr int kExitTasksFailed = 6;    // task_master: some tasks failed for good
constexpr int kExitForbidden = 7;      // the key's role may not do that (a worker's, a submitter's)
constexpr int kExitInterrupted = 130;  // stopped by a signal before the job was done

struct ExitCode {
  int code;
  const char* master;  // what it means for task_master; "" if it never exits so
  const char* worker;  // for task_worker
};

// Short forms, one line each in --help; the README's table says the same at
// more length, and starts each cell with these words.
inline constexpr ExitCode kExitCodes[] = {
    {kExitOk, "done", "done"},
    {kExitError, "a runtime error", "a runtime error"},
    {kExitUsage, "bad usage: flags, input files, input lines that were not tasks",
     "bad usage: a flag, --server, --exec or --out"},
    {kExitAuthFailed, "", "authentication failed"},
    {kExitUnavailable, "cannot listen", "gave up waiting for the master"},
    {kExitTimeout, "no progress for --timeout seconds", ""},
    {kExitTasksFailed, "some tasks failed (wins over 2 when both apply)", ""},
    {kExitForbidden, "", "not allowed with this key"},
    {kExitInterrupted, "interrupted", "interrupted twice"},
};

// "Exit codes:\n  0  done\n ..." for program "task_master" or "task_worker".
inline std::string ExitCodesHelp(bool master) {
  std::string s = "Exit codes:\n";
  for (const ExitCode& e : kExitCodes) {
    const char* what = master ? e.master : e.worker;
    if (*what == '\0') continue;
    std::string code = std::to_string(e.code);
    s += "  " + code + std::string(5 - code.size(), ' ') + what + "\n";
  }
  return s;
}

// The exit code of a program whose call to the master failed with s (taskq,
// and a job: master/job.h): 3 wrong key, 4 the master not reached or gone,
// 2 bad input, 7 not allowed with this key, 130 interrupted, else 1.
inline int ClientExitCode(const Status& s) {
  switch (s.code()) {
    case Code::kAuthFailed:
      return kExitAuthFailed;
    case Code::kTimeout:
    case Code::kUnavailable:
    case Code::kShutdown:
      return kExitUnavailable;
    case Code::kInterrupted:
      return kExitInterrupted;
    case Code::kInvalid:
      return kExitUsage;
    case Code::kForbidden:
      return kExitForbidden;
    default:
      return kExitError;
  }
}

}  // namespace taskq

#endif  // TASKQ_CLIENT_EXIT_CODES_H_
