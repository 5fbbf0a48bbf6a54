// task_master: parses flags and calls RunMaster (master/master.h).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "client/command_line.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "master/master.h"
#ifdef TASKQ_WITH_NATS
#include "master/nats_medium.h"
#endif

namespace {

#ifdef TASKQ_WITH_NATS
// --store-credentials FILE: its first line, "user:password" or a token.
// TASKQ_NATS_TOKEN: a token. Neither is ever printed.
std::optional<std::string> ReadStoreCredentials(const std::string& file,
                                                taskq::NatsConnectOptions* co) {
  if (const char* token = std::getenv("TASKQ_NATS_TOKEN"); token && *token) co->token = token;
  if (file.empty()) return std::nullopt;
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line))
    return "cannot read the NATS credentials file " + file +
           " (its first line: a token, or user:password)";
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return "the NATS credentials file " + file + " has an empty first line";
  if (const std::size_t colon = line.find(':'); colon != std::string::npos) {
    co->user = line.substr(0, colon);
    co->password = line.substr(colon + 1);
    co->token.clear();
  } else {
    co->token = line;
  }
  return std::nullopt;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  taskq::MasterOptions o;
  taskq::AuthkeyFlags keys;
  double timeout_s = 10, task_timeout_s = 0, heartbeat_s = 1, status_every_s = 0;
  std::string fsync = "interval";
  uint64_t segment_mb = 64;
  std::string store, store_credentials, store_name = "default";
  int store_replicas = 0;
  double takeover_s = 10;
  CLI::App app{
      "task_master: serve a task queue and a result queue to taskq workers over an\n"
      "authenticated, encrypted port. With no job flag it runs the classic tutorial:\n"
      "wait for a worker, put 10 square tasks, wait for their results, print them, tell\n"
      "the workers to exit."};
  app.footer(
      "The authkey comes from --authkey, else --authkey-file, else TASKQ_AUTHKEY. It never\n"
      "crosses the network and is never printed. The master also admits the worker key and\n"
      "the submitter key it issues (taskq keys), each allowed only its own part: hand those\n"
      "out, not the authkey.\n\n"
      "Examples:\n"
      "  task_master --port 5000 --authkey abc        # the tutorial: 10 square tasks\n"
      "  TASKQ_AUTHKEY=abc task_master --square 1000  # 1000 tasks, key from the environment\n"
      "  task_master --serve --authkey-file key.txt   # only serve queues, for client programs\n"
      "  task_master --port 0 --authkey abc           # any free port (printed at start)\n"
      "  task_master --serve --data-dir /var/lib/taskq --max-queue 100000\n"
      "                                               # queues that survive a crash, bounded\n"
      "  task_master --serve --store nats://n1:4222,nats://n2:4222,nats://n3:4222\n"
      "                                               # queues in NATS: the same on a second\n"
      "                                               # machine waits, and takes over if this\n"
      "                                               # one is lost\n"
      "  task_master --download urls.txt --authkey abc   # workers fetch each URL\n"
      "  task_master --tasks jobs.jsonl --results out.jsonl --authkey abc\n"
      "  task_master --tasks jobs.jsonl --results out.jsonl --data-dir state --authkey abc\n"
      "                                               # killed? the same command resumes it\n\n" +
      taskq::ExitCodesHelp(/*master=*/true));
  app.add_option("--port", o.port, "TCP port to listen on (0: any free port)")
      ->default_val(5000)
      ->check(CLI::Range(0, 65535));
  app.add_option("--bind", o.bind, "address of the interface to listen on (* for all)")
      ->default_val("*");
  keys.AddTo(app);
  auto* serve =
      app.add_flag("--serve", o.serve, "serve the queues with no built-in job until Ctrl-C");
  auto* square = app.add_option("--square", o.square, "the tutorial job: how many square tasks")
                     ->default_val(10)
                     ->check(CLI::Range(0, 100000000))
                     ->excludes(serve);
  auto* download =
      app.add_option("--download", o.download,
                     "a download job: one task per URL line of FILE (- for stdin); URLs may "
                     "also be given as arguments")
          ->excludes(square);
  app.add_option("--tasks", o.tasks,
                 "a job from FILE (- for stdin): a task per line, {\"kind\": ..., \"arg\": ...} or "
                 "KIND ARG")
      ->excludes(square)
      ->excludes(download);
  app.add_option("--results", o.results,
                 "write every outcome to FILE as a JSON line (- for stdout)");
  app.add_option("--workers", o.wait_workers,
                 "wait for N workers to connect before the job starts (the tutorial waits for one "
                 "in any case)")
      ->default_val(0)
      ->check(CLI::Range(0, 100000));
  app.add_option("--in-flight", o.in_flight,
                 "at most K tasks out at once, and report the submit -> result latency (p50, p99); "
                 "--in-flight 1 runs the tasks one by one")
      ->check(CLI::Range(1, 100000000));
  app.add_flag("--json", o.json,
               "no line per task or progress; the job's summary as one JSON line on stdout");
  app.add_option("urls", o.urls, "URLs to download (a download job, as with --download)")
      ->excludes(square);
  app.add_option("--timeout", timeout_s,
                 "give up after this many seconds without progress: no result came and no worker "
                 "held a task (a slow task on a live worker never times out the job; "
                 "--task-timeout limits tasks)")
      ->default_val(10)
      ->check(taskq::Seconds(true));
  app.add_flag("-q,--quiet", o.quiet, "no line per task or progress, only failures and totals");
  app.add_option("--max-attempts", o.broker.max_attempts,
                 "deliveries of a task before it fails for good")
      ->default_val(3)
      ->check(CLI::Range(1, 100));
  app.add_option("--task-timeout", task_timeout_s,
                 "seconds a worker may take over a task before it goes to another (0: no limit)")
      ->default_val(0)
      ->check(taskq::Seconds(false));
  app.add_option("--heartbeat", heartbeat_s,
                 "seconds between heartbeats; a worker silent for 3 is dead")
      ->default_val(1)
      ->check(CLI::Range(0.1, 60.0));
  CLI::Option* data_dir_opt = app.add_option(
      "--data-dir", o.data_dir,
      "keep the queues in a journal in DIR: a restarted master resumes where it stopped");
#ifdef TASKQ_WITH_NATS
  CLI::Option* store_opt =
      app.add_option("--store", store,
                     "keep the queues in NATS JetStream instead (nats://HOST:PORT,...; README, "
                     "\"Beyond one machine\"): a master started on the same servers carries on "
                     "when this one or its machine is lost");
  store_opt->excludes("--data-dir");
  // Each --store-* flag needs --store: one given alone is a mistake to say.
  app.add_option("--store-replicas", store_replicas,
                 "with --store, copies of the journal the NATS servers keep (default: 3 when "
                 "--store names several servers, else 1)")
      ->check(CLI::Range(1, 5))
      ->needs(store_opt);
  app.add_option("--store-name", store_name,
                 "with --store, which queues on those servers: masters with the same name share "
                 "them, others have their own (letters, digits, '-', '_')")
      ->default_val("default")
      ->check([](const std::string& name) -> std::string {
        if (taskq::ValidStoreName(name)) return "";
        return "'" + name + "' is not a store name: use 1 to 32 letters, digits, '-' or '_'";
      })
      ->needs(store_opt);
  app.add_option("--store-credentials", store_credentials,
                 "with --store, a file whose first line is the NATS token or user:password "
                 "(default: TASKQ_NATS_TOKEN, if set)")
      ->needs(store_opt);
  app.add_option("--takeover-after", takeover_s,
                 "with --store, seconds the store must be silent before this master takes over "
                 "from another (it waits as a standby until then)")
      ->default_val(10)
      // At most 100: a resend must come within the stream's 2-minute
      // duplicate window to be known as one.
      ->check(CLI::Range(1.0, 100.0))
      ->needs(store_opt);
#endif
  app.add_flag("--fresh", o.fresh,
               "with --data-dir, forget the queues and the job the data dir holds and start the "
               "job anew (without it, the same command resumes an unfinished job and refuses to "
               "run a finished one again)")
      // Without a data dir there is nothing to forget or to sync: a flag
      // that would do nothing is a mistake to say (with --store, --fresh
      // would otherwise look like it wipes the store).
      ->needs(data_dir_opt);
  app.add_option("--fsync", fsync,
                 "with --data-dir, when the journal reaches the disk: always (before every reply), "
                 "interval (every 5 ms), never (when the kernel likes)")
      ->default_val("interval")
      ->check(CLI::IsMember({"always", "interval", "never"}))
      ->needs(data_dir_opt);
  app.add_option(
         "--max-queue", o.broker.max_queue,
         "most entries waiting or running per queue; a put beyond waits for room (0: no limit)")
      ->default_val(0);
  app.add_option("--status-every", status_every_s,
                 "seconds between status lines on stderr (0: none; SIGUSR1: now)")
      ->default_val(0)
      ->check(taskq::Seconds(false));
  app.add_option(
      "--http", o.http,
      "serve a live dashboard, /metrics (Prometheus) and /api/status on [ADDR:]PORT "
      "(ADDR: 127.0.0.1 unless given; any other address needs a token, printed at start)");
  app.add_option("--http-token", o.http_token,
                 "the token --http requires (default: TASKQ_HTTP_TOKEN, else one derived from the "
                 "authkey on a non-loopback address)")
      ->envname("TASKQ_HTTP_TOKEN");
  app.add_option("--journal-segment-mb", segment_mb, "size of a journal segment file")
      ->default_val(64)
      ->check(CLI::Range(1, 4096))
      ->group("");  // for tests of compaction
  app.set_version_flag("--version", std::string("task_master ") + TASKQ_VERSION);
  if (std::optional<int> code = taskq::ParseFlags(app, argc, argv, "task_master")) return *code;
  // "--download URL URL": the URLs are the job, as if given without it.
  for (auto it = o.download.begin(); it != o.download.end();) {
    if (it->find("://") == std::string::npos) {
      ++it;
      continue;
    }
    o.urls.push_back(*it);
    it = o.download.erase(it);
  }
  for (const std::string& u : o.urls) {
    if (u.find("://") == std::string::npos) {
      std::cerr << "task_master: '" << u
                << "' is not a URL (arguments are URLs to download; see --help)\n";
      return taskq::kExitUsage;
    }
  }
  o.timeout = taskq::Millis(timeout_s);
  o.timeout_given = app.get_option("--timeout")->count() > 0;
  o.broker.task_timeout = taskq::Millis(task_timeout_s);
  o.broker.heartbeat = taskq::Millis(heartbeat_s);
  o.status_every = taskq::Millis(status_every_s);
  o.fsync = fsync == "always"  ? taskq::FsyncMode::kAlways
            : fsync == "never" ? taskq::FsyncMode::kNever
                               : taskq::FsyncMode::kInterval;
  o.segment_bytes = segment_mb << 20;
  if (std::optional<int> code = keys.Resolve("task_master", &o.authkey)) return *code;
#ifdef TASKQ_WITH_NATS
  if (!store.empty()) {
    taskq::NatsMediumOptions mo;
    mo.urls = store;
    mo.name = store_name;
    if (std::optional<std::string> why = ReadStoreCredentials(store_credentials, &mo.connect)) {
      std::cerr << "task_master: " << *why << "\n";
      return taskq::kExitUsage;
    }
    mo.replicas = store_replicas ? store_replicas : (store.find(',') != std::string::npos ? 3 : 1);
    mo.takeover_after = taskq::Millis(takeover_s);
    mo.log = [](const std::string& line) { std::cerr << "task_master: " << line << std::endl; };
    mo.stop = [] { return taskq::SignalCount() > 0; };
    o.store_shown = "the NATS store at " + taskq::ShownNatsUrls(store);
    o.open_medium = [mo] { return taskq::NatsMedium::Open(mo); };
  }
#endif
  // A second Ctrl-C ends the master at once: what it acknowledged is in
  // the journal already.
  taskq::InstallSignalPipe(/*exit_on_second=*/true);
  return taskq::RunMaster(o, std::cout, std::cerr);
}
