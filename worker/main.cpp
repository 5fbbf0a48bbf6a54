// task_worker: parses flags and calls RunWorker (worker/worker.h).
#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "client/command_line.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "worker/worker.h"

namespace {

constexpr const char* kAbout =
    "task_worker: connect to a taskq master, take tasks, run them, put the results back.\n"
    "Exits 0 when the master shuts down, or on Ctrl-C once its running tasks are done.";

constexpr const char* kFooter =
    "The authkey comes from --authkey, else --authkey-file, else TASKQ_AUTHKEY; it must be\n"
    "the master's, or the worker key it issued (taskq keys --role worker), which can only\n"
    "run tasks.\n\n"
    "Kinds of task run: square (an integer's square), sleep (wait ARG ms), download (fetch\n"
    "the http(s) URL ARG into --out), and, only with --exec, the command given there.\n"
    "--exec must come last: everything after it is the command and its arguments, run\n"
    "without a shell, with {} replaced by the task's argument (also on its stdin); its\n"
    "stdout is the result.\n\n"
    "Examples:\n"
    "  task_worker --server 192.168.1.10 --authkey abc\n"
    "  task_worker --server teacher-laptop --authkey-file worker.key --name ana\n"
    "  TASKQ_AUTHKEY=abc task_worker --server master.local:6000 -j 4\n"
    "  task_worker --server 10.0.0.5 --out /data/images -j 16     # downloads, 16 at once\n"
    "  task_worker --server 10.0.0.5 --kind sha256 --exec sha256sum {}\n"
    "  task_worker --server lab1,lab2:6000 --authkey-file worker.key   # lab2 if lab1 goes away\n\n"
    "With several masters (--server A,B,C) the worker works for the first that answers,\n"
    "in that order. When it loses it, it tries the others in turn (and that one again),\n"
    "and works for the next that answers. Results of tasks from the master it lost are\n"
    "not given to another: that master runs those tasks again.\n\n";

// --exec takes the rest of the command line as it is, options of the
// command included: split it off before the flags are parsed.
std::vector<std::string> SplitExec(int* argc, char** argv) {
  std::vector<std::string> command;
  for (int i = 1; i < *argc; ++i) {
    if (std::string(argv[i]) != "--exec") continue;
    for (int k = i + 1; k < *argc; ++k) command.emplace_back(argv[k]);
    *argc = i;
    if (command.empty()) command.emplace_back();  // "--exec" with nothing after: reported below
    break;
  }
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  taskq::WorkerOptions o;
  o.exec.argv = SplitExec(&argc, argv);
  std::string server = "127.0.0.1";
  taskq::AuthkeyFlags keys;
  int port = taskq::kDefaultPort;
  int jobs = 0;
  double connect_timeout_s = 0, heartbeat_s = 1, grace_s = 30, delay_s = 0, task_timeout_s = 0;
  double download_timeout_s = 300, download_connect_timeout_s = 10;
  CLI::App app{kAbout};
  app.footer(kFooter + taskq::ExitCodesHelp(/*master=*/false));
  app.add_option("--server", server,
                 "the master's address: HOST, HOST:PORT or tcp://HOST:PORT; several, "
                 "comma-separated: the next when one is lost")
      ->default_val("127.0.0.1");
  app.add_option("--port", port, "the master's port where --server names none")
      ->default_val(taskq::kDefaultPort)
      ->check(CLI::Range(1, 65535));
  keys.AddTo(app);
  app.add_option("-j,--jobs", jobs,
                 "tasks to run at once (default 8; with --exec, one per CPU; with --delay, 1)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--name", o.name, "name shown in the master's log (default HOSTNAME-PID)");
  app.add_option("--queue", o.queue, "queue to take tasks from")->default_val("tasks");
  app.add_option("--connect-timeout", connect_timeout_s,
                 "seconds to wait for a master at start (0: for ever)")
      ->default_val(0)
      ->check(taskq::Seconds(false));
  app.add_option("--heartbeat", heartbeat_s, "seconds between heartbeats to the master")
      ->default_val(1)
      ->check(CLI::Range(0.1, 60.0));
  app.add_option("--grace", grace_s,
                 "on Ctrl-C, seconds to finish running tasks before handing them back")
      ->default_val(30)
      ->check(taskq::Seconds(false));
  app.add_option("--delay", delay_s,
                 "seconds to pause after each task, like the tutorial's time.sleep(1)")
      ->default_val(0)
      ->check(taskq::Seconds(false));
  app.add_flag("-q,--quiet", o.quiet, "no line per task");

  auto* dl = "Downloads";
  app.add_option("--out", o.download.out_dir, "directory for downloaded files (made if missing)")
      ->default_val("downloads")
      ->group(dl);
  app.add_flag("--skip-existing", o.download.skip_existing,
               "do not download again a URL whose file is already in --out")
      ->group(dl);
  app.add_option("--max-bytes", o.download.max_bytes, "largest body to download (suffixes: K M G)")
      ->default_str("1G")
      ->transform(CLI::AsSizeValue(false))
      ->group(dl);
  app.add_option("--download-timeout", download_timeout_s, "seconds a whole download may take")
      ->default_val(300)
      ->check(taskq::Seconds(true))
      ->group(dl);
  app.add_option("--download-connect-timeout", download_connect_timeout_s,
                 "seconds to connect to a web server")
      ->default_val(10)
      ->check(taskq::Seconds(true))
      ->group(dl);
  app.add_option("--max-redirects", o.download.max_redirects, "redirects followed per download")
      ->default_val(5)
      ->check(CLI::Range(0, 50))
      ->group(dl);

  auto* ex = "Commands (opt-in)";
  app.add_option("--kind", o.exec_kind, "kind of task the --exec command runs")
      ->default_val("exec")
      ->group(ex);
  app.add_option("--task-timeout", task_timeout_s,
                 "seconds a command may run before it is killed (0: no limit)")
      ->default_val(0)
      ->check(taskq::Seconds(false))
      ->group(ex);
  app.add_option("--max-output", o.exec.max_output,
                 "most bytes of a command's stdout kept (suffixes: K M G)")
      ->default_str("1M")
      ->transform(CLI::AsSizeValue(false))
      ->group(ex);
  // Shown in --help; the parsing is SplitExec's.
  bool exec_for_help = false;
  app.add_flag("--exec", exec_for_help,
               "CMD [ARGS...]: run this command for each task of --kind (must come last)")
      ->group(ex);
  app.set_version_flag("--version", std::string("task_worker ") + TASKQ_VERSION);
  if (std::optional<int> code = taskq::ParseFlags(app, argc, argv, "task_worker")) return *code;
  o.download.out_dir_given = app.get_option("--out")->count() > 0;
  if (!o.exec.argv.empty() &&
      (o.exec.argv[0].empty() || taskq::FindCommand(o.exec.argv[0]).empty())) {
    std::cerr << "task_worker: --exec: "
              << (o.exec.argv[0].empty() ? "no command after it"
                                         : "no command '" + o.exec.argv[0] + "' on PATH")
              << "\n";
    return taskq::kExitUsage;
  }
  taskq::Result<std::vector<taskq::ServerAddress>> masters = taskq::ParseServerList(server, port);
  if (!masters.ok()) {
    std::cerr << "task_worker: " << masters.status().message() << "\n";
    return taskq::kExitUsage;
  }
  for (const taskq::ServerAddress& a : *masters) {
    if (taskq::Status s = taskq::ResolveHost(a); !s.ok()) {
      std::cerr << "task_worker: --server " << (masters->size() > 1 ? a.Display() : server) << ": "
                << s.message() << "\n";
      return taskq::kExitUsage;
    }
  }
  o.servers = std::move(*masters);
  // Downloads wait on the network: many at once. Commands use CPUs.
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // --delay is the tutorial's worker, whose loop runs one task at a time.
  o.jobs = jobs > 0 ? jobs : delay_s > 0 ? 1 : (o.exec.argv.empty() ? 8 : cpus);
  o.connect_timeout = taskq::Millis(connect_timeout_s);
  o.heartbeat = taskq::Millis(heartbeat_s);
  o.grace = taskq::Millis(grace_s);
  o.delay = taskq::Millis(delay_s);
  o.exec.timeout = taskq::Millis(task_timeout_s);
  o.download.timeout = taskq::Millis(download_timeout_s);
  o.download.connect_timeout = taskq::Millis(download_connect_timeout_s);
  if (std::optional<int> code = keys.Resolve("task_worker", &o.authkey)) return *code;
  taskq::InstallSignalPipe();
  return taskq::RunWorker(o, std::cout, std::cerr);
}
