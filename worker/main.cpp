// task_worker: parses flags and calls RunWorker (worker/worker.h).
#include <CLI/CLI.hpp>
#include <iostream>

#include "client/authkey.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "worker/worker.h"

namespace {

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

int main(int argc, char** argv) {
  taskq::WorkerOptions o;
  std::string server = "127.0.0.1", authkey, authkey_file;
  int port = taskq::kDefaultPort;
  double connect_timeout_s = 0, heartbeat_s = 1, grace_s = 30, delay_s = 0;
  CLI::App app{
      "task_worker: connect to a taskq master, take tasks, run them, put the results back.\n"
      "Exits 0 when the master shuts down, or on Ctrl-C once its running tasks are done."};
  app.footer(
      "The authkey comes from --authkey, else --authkey-file, else TASKQ_AUTHKEY; it must be\n"
      "the master's. Kinds of task run: square (an integer's square), sleep (wait ARG ms).\n\n"
      "Examples:\n"
      "  task_worker --server 192.168.1.10 --authkey abc\n"
      "  TASKQ_AUTHKEY=abc task_worker --server master.local:6000 -j 4\n"
      "  task_worker --server 10.0.0.5 --authkey-file key.txt --connect-timeout 30\n\n"
      "Exit codes: 0 done, 1 error, 2 usage, 3 authentication failed (wrong authkey),\n"
      "4 gave up waiting for the master (--connect-timeout), 130 interrupted twice.");
  app.add_option("--server", server, "the master's address, HOST or HOST:PORT")
      ->default_val("127.0.0.1");
  app.add_option("--port", port, "the master's port when --server names none")
      ->default_val(taskq::kDefaultPort)
      ->check(CLI::Range(1, 65535));
  app.add_option(
      "--authkey", authkey,
      "shared secret (prefer TASKQ_AUTHKEY or --authkey-file: other users can see command lines)");
  app.add_option("--authkey-file", authkey_file, "read the authkey from the first line of FILE");
  app.add_option("-j,--jobs", o.jobs, "tasks to run at once")
      ->default_val(1)
      ->check(CLI::Range(1, 1024));
  app.add_option("--name", o.name, "name shown in the master's log (default HOSTNAME-PID)");
  app.add_option("--queue", o.queue, "queue to take tasks from")->default_val("tasks");
  app.add_option("--connect-timeout", connect_timeout_s,
                 "seconds to wait for the master at start (0: for ever)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--heartbeat", heartbeat_s, "seconds between heartbeats to the master")
      ->default_val(1)
      ->check(CLI::Range(0.1, 60.0));
  app.add_option("--grace", grace_s,
                 "on Ctrl-C, seconds to finish running tasks before handing them back")
      ->default_val(30)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--delay", delay_s,
                 "seconds to pause after each task, like the tutorial's time.sleep(1)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", o.quiet, "no line per task");
  app.set_version_flag("--version", std::string("task_worker ") + TASKQ_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "task_worker: " << e.what() << " (see --help)\n";
    return taskq::kExitUsage;
  }
  taskq::Result<taskq::ServerAddress> addr = taskq::ParseServerAddress(server, port);
  if (!addr.ok()) {
    std::cerr << "task_worker: " << addr.status().message() << "\n";
    return taskq::kExitUsage;
  }
  o.server = *addr;
  o.connect_timeout = Millis(connect_timeout_s);
  o.heartbeat = Millis(heartbeat_s);
  o.grace = Millis(grace_s);
  o.delay = Millis(delay_s);
  taskq::Result<std::string> key = taskq::ResolveAuthkey(authkey, authkey_file);
  if (!key.ok()) {
    std::cerr << "task_worker: " << key.status().message() << "\n";
    return taskq::kExitUsage;
  }
  o.authkey = *key;
  taskq::InstallSignalPipe();
  return taskq::RunWorker(o, std::cout, std::cerr);
}
