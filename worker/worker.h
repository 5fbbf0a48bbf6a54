// task_worker's behaviour, as a library so tests can run it in-process.
#ifndef TASKQ_WORKER_WORKER_H_
#define TASKQ_WORKER_WORKER_H_

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "client/endpoint.h"
#include "worker/download_handler.h"
#include "worker/exec_handler.h"

namespace taskq {

struct WorkerOptions {
  // The masters, in the order given (--server A,B): the worker works for
  // the first that answers, and moves to another when it loses it
  // (worker/master_list.h). Not empty; the same authkey for each.
  std::vector<ServerAddress> servers;
  std::string authkey;  // already resolved (flag, file or environment)
  std::string name;     // default: HOSTNAME-PID
  int jobs = 1;         // tasks run at once (-j)
  std::string queue = "tasks";
  std::chrono::milliseconds connect_timeout{0};  // 0: wait for a master for ever
  bool quiet = false;                            // no "run task" line per task
  std::chrono::milliseconds heartbeat{1000};     // send something at least this often
  std::chrono::milliseconds grace{30000};        // on Ctrl-C: time to finish the tasks running
  // A pause after each task, like the tutorial worker's time.sleep(1): for
  // demos, so tasks visibly spread over several workers.
  std::chrono::milliseconds delay{0};
  DownloadOptions download;  // the "download" kind
  // --exec: the command run for tasks of exec_kind; empty argv: no commands.
  ExecOptions exec;
  std::string exec_kind = "exec";
};

// Runs the worker until the master shuts down or a signal stops it; returns
// the exit code (client/exit_codes.h). Output goes to out, errors to err.
int RunWorker(const WorkerOptions& options, std::ostream& out, std::ostream& err);

}  // namespace taskq

#endif  // TASKQ_WORKER_WORKER_H_
