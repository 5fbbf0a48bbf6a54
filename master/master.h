// task_master's behaviour, as a library so tests can run it in-process.
#ifndef TASKQ_MASTER_MASTER_H_
#define TASKQ_MASTER_MASTER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <iosfwd>
#include <string>
#include <vector>

#include "master/broker.h"
#include "master/journal.h"

namespace taskq {

struct MasterOptions {
  std::string bind = "*";
  int port = 5000;
  std::string authkey;  // already resolved (flag, environment or file)
  bool serve = false;   // serve the queues until a signal (after the job, if there is one)
  int square = 10;      // the tutorial job: this many square tasks (when no other job is given)
  std::vector<std::string> download;         // --download FILE...: one download task per URL line
  std::vector<std::string> urls;             // URLs given as arguments: download tasks too
  std::string tasks;                         // --tasks FILE: a task per line (JSON or KIND ARG)
  std::string results;                       // --results FILE: every outcome as a JSON line
  bool json = false;                  // the summary as JSON on stdout
  uint64_t in_flight = 0;             // --in-flight K: tasks out at once, latency measured
  int wait_workers = 0;               // --workers N: wait for N workers before the job
  std::chrono::milliseconds timeout{10000};  // each wait for a result
  // --timeout was given: it bounds the tutorial's wait for a first worker
  // too (without it, the tutorial waits for one for ever, as BaseManager's).
  bool timeout_given = false;
  bool quiet = false;                        // no line per task
  std::string data_dir;                      // keep the state on disk here (empty: in memory only)
  bool fresh = false;  // --fresh: forget the data dir's queues and job, start the job anew
  FsyncMode fsync = FsyncMode::kInterval;
  uint64_t segment_bytes = 64u << 20;
  // --store: the journal in a NATS stream instead of a data dir (main.cpp
  // makes it; task_master built without libnats has no --store). store_shown
  // names it in messages, without credentials.
  std::function<Result<std::unique_ptr<JournalMedium>>()> open_medium;
  std::string store_shown;
  std::chrono::milliseconds status_every{0};  // a status line this often on stderr
  std::string http;        // --http [ADDR:]PORT: dashboard, /metrics, /api/status (empty: off)
  std::string http_token;  // --http-token or TASKQ_HTTP_TOKEN (docs/HTTP.md)
  BrokerOptions broker;
};

// Runs the master and returns its exit code (client/exit_codes.h). Tutorial
// output goes to out, log lines and errors to err. Call InstallSignalPipe()
// first for Ctrl-C to stop it cleanly.
int RunMaster(const MasterOptions& options, std::ostream& out, std::ostream& err);

}  // namespace taskq

#endif  // TASKQ_MASTER_MASTER_H_
