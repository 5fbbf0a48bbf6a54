// taskq submit and taskq results: a job given to a serving master from
// anywhere, and its outcomes collected, now or later (docs/PROTOCOL.md 7.10).
// Both run task_master's own Job (master/job.h) over a TCP connection: the
// same puts, collection, output, summary and exit codes.
#ifndef TASKQ_CLI_JOBS_H_
#define TASKQ_CLI_JOBS_H_

#include <string>
#include <string_view>
#include <vector>

#include "cli/server_flags.h"

namespace taskq {

struct SubmitFlags {
  ServerFlags server;
  std::string job;  // --job ID; empty: a random one
  bool job_given = false;
  uint64_t square = 0;
  std::vector<std::string> download;
  std::vector<std::string> urls;
  std::string tasks;
  std::string results;  // --results FILE ("-": JSON lines on stdout)
  std::string queue = "tasks";
  bool detach = false;
  double timeout_s = 10;
  int workers = 0;
  bool quiet = false;
  bool json = false;
};

struct ResultsFlags {
  ServerFlags server;
  std::string job;
  std::string results;
  double timeout_s = 10;
  bool quiet = false;
  bool json = false;
};

// The subcommands, their flags bound to f.
CLI::App* AddSubmit(CLI::App& app, SubmitFlags& f);
CLI::App* AddResults(CLI::App& app, ResultsFlags& f);

int Submit(const SubmitFlags& f);
int Results(const ResultsFlags& f);

}  // namespace taskq

#endif  // TASKQ_CLI_JOBS_H_
