// taskq: give a serving master jobs, and look after it, from any machine
// that has its authkey.
//
//   taskq submit --server HOST --square N|--download FILE|--tasks FILE|URLs...
//                                         a job: its tasks put, its outcomes collected
//   taskq results JOB --server HOST       the outcomes of a job, collected later
//   taskq status --server HOST [--json]   one report: queues, jobs, workers, counters
//   taskq watch  --server HOST            the same, redrawn every second
//   taskq failed --server HOST            the tasks that failed for good, and why
//   taskq retry  --server HOST ID...|--all  runs them again
//   taskq purge  --server HOST QUEUE --yes  empties a queue
//   taskq keys   --authkey-file FILE      the worker and submitter keys to hand out
//
// It is an ordinary client (hello role "client") of the protocol: put, get
// and ack for jobs (cli/jobs.h), stats, peek, retry and purge for the rest
// (docs/PROTOCOL.md). With a submitter's key it can submit, collect and
// look; failed, retry and purge take the authkey itself.
#include <poll.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/jobs.h"
#include "cli/keys.h"
#include "cli/server_flags.h"
#include "client/client.h"
#include "client/command_line.h"
#include "client/endpoint.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "master/status_report.h"

namespace taskq {
namespace {

constexpr const char* kAbout =
    "taskq: give a serving taskq master (task_master --serve) jobs from anywhere, collect\n"
    "their outcomes, look at the master, and deal with its failed tasks.";

constexpr const char* kFooter =
    "The authkey comes from --authkey, else --authkey-file, else TASKQ_AUTHKEY; it must be\n"
    "the master's, or a submitter key it issued (taskq keys), which can submit, collect its\n"
    "own jobs and look at the status, but not see other jobs, retry or purge.\n\n"
    "Examples:\n"
    "  taskq status --server 192.168.1.10 --authkey-file key.txt\n"
    "  taskq status --server teacher-laptop:5000 --json | jq '.queues'\n"
    "  TASKQ_AUTHKEY=abc taskq watch --server 127.0.0.1:5000\n"
    "  taskq failed --server 127.0.0.1:5000 && taskq retry --server 127.0.0.1:5000 --all\n\n"
    "Exit codes: 0 done, 1 error, 2 usage, 3 authentication failed (wrong authkey),\n"
    "4 the master could not be reached (or went away), 7 not allowed with this key (a\n"
    "submitter's or a worker's), 130 interrupted.";

nlohmann::ordered_json StatsJson(const StatsOk& s) {
  nlohmann::ordered_json j;
  j["queues"] = nlohmann::ordered_json::array();
  for (const QueueStats& q : s.queues)
    j["queues"].push_back({{"name", q.name},
                           {"ready", q.ready},
                           {"leased", q.leased},
                           {"failed", q.failed},
                           {"owed", q.owed}});
  // Jobs in progress (docs/PROTOCOL.md 7.10): the reply queues job.ID that
  // still hold outcomes or are owed some.
  j["jobs"] = nlohmann::ordered_json::array();
  for (const QueueStats& q : s.queues)
    if (!JobIdOf(q.name).empty() && Outstanding(q) > 0)
      j["jobs"].push_back({{"id", JobIdOf(q.name)},
                           {"waiting_or_running", q.owed},
                           {"to_collect", q.ready + q.leased}});
  j["workers"] = nlohmann::ordered_json::array();
  for (const WorkerStats& w : s.workers)
    j["workers"].push_back({{"name", w.name},
                            {"in_flight", w.in_flight},
                            {"capacity", w.capacity},
                            {"done", w.done},
                            {"idle_ms", w.idle_ms},
                            {"benched_ms", w.benched_ms}});
  j["counters"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : s.counters) j["counters"][std::string(k)] = v;
  return j;
}

int Status_(const ServerFlags& f, bool json) {
  Result<std::unique_ptr<Client>> c = Open(f, "taskq-status");
  if (!c.ok()) return Fail(c.status());
  Result<StatsOk> s = (*c)->Stats();
  if (!s.ok()) return Fail(s.status());
  if (json)
    std::cout << StatsJson(*s).dump() << "\n";
  else
    std::cout << "master " << (*c)->server() << "\n" << StatusReport(*s);
  return kExitOk;
}

// The terminal in a mode where a key press is read at once and not echoed;
// restored when this goes away.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Redraws the report every interval until Ctrl-C, q, or the master's
// shutdown (exit 0). Without a terminal (a pipe, a log) it appends one report
// per interval instead of redrawing.
int Watch(const ServerFlags& f, double interval_s) {
  Result<std::unique_ptr<Client>> c = Open(f, "taskq-watch");
  if (!c.ok()) return Fail(c.status());
  const bool tty = isatty(STDOUT_FILENO);
  RawTerminal term;
  std::optional<uint64_t> last_accepted;
  auto last_at = std::chrono::steady_clock::now();
  // A master that stops answering (killed, its machine gone) is said at
  // once, not after the usual 30 s, and watched for until it is back.
  const auto wait = std::max(std::chrono::milliseconds(2000), 2 * Millis(interval_s));
  std::string silent_since;
  for (;;) {
    Result<StatsOk> s = (*c)->Stats(wait);
    if (!s.ok() && (s.status().code() == Code::kTimeout || s.status().code() == Code::kUnavailable)) {
      if (silent_since.empty()) {
        const std::time_t t = std::time(nullptr);
        char hhmmss[16];
        std::strftime(hhmmss, sizeof hhmmss, "%H:%M:%S", std::localtime(&t));
        silent_since = hhmmss;
      }
      std::cout << (tty ? "\x1b[H\x1b[2K" : "") << "taskq watch: the master at " << (*c)->server()
                << " has not answered since " << silent_since
                << "; still asking (Ctrl-C to quit)" << (tty ? "\x1b[K" : "") << "\n"
                << std::flush;
      pollfd stop{SignalFd(), POLLIN, 0};  // a pause, so a quick failure is no busy loop
      if (poll(&stop, 1, static_cast<int>(interval_s * 1000)) > 0) return kExitOk;
      continue;
    }
    silent_since.clear();
    if (!s.ok()) {
      if (tty) std::cout << "\n";
      if (s.status().code() == Code::kInterrupted) return kExitOk;
      if (s.status().code() == Code::kShutdown) {  // the end of what there was to watch
        std::cout << "the master at " << (*c)->server() << " shut down\n";
        return kExitOk;
      }
      return Fail(s.status());
    }
    const auto now = std::chrono::steady_clock::now();
    const uint64_t accepted = CounterOf(*s, "accepted");
    std::string rate;
    if (last_accepted && accepted < *last_accepted) {
      rate = "the master restarted";  // its counters start again from 0
    } else if (last_accepted) {
      const double secs = std::chrono::duration<double>(now - last_at).count();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.0f tasks/s",
                    secs > 0 ? static_cast<double>(accepted - *last_accepted) / secs : 0.0);
      rate = buf;
    }
    last_accepted = accepted;
    last_at = now;
    const std::time_t wall = std::time(nullptr);
    char clock[16];
    std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&wall));
    std::string screen = "taskq watch: master " + (*c)->server() + " at " + clock +
                         (rate.empty() ? "" : ", " + rate) +
                         (term.active() ? "   (q or Ctrl-C to quit)" : "   (Ctrl-C to quit)") +
                         "\n" + StatusReport(*s);
    if (tty) {
      // Home, the report with each line's rest cleared, then the rest of
      // the screen cleared: no flicker, no leftovers from a longer report.
      std::string drawn = "\x1b[H";
      for (std::size_t at = 0; at < screen.size();) {
        const std::size_t nl = screen.find('\n', at);
        drawn += screen.substr(at, nl - at) + "\x1b[K\n";
        at = nl + 1;
      }
      std::cout << drawn << "\x1b[J" << std::flush;
    } else {
      std::cout << screen << "\n" << std::flush;
    }
    // Wait for the next round, a key or a signal.
    pollfd fds[2] = {{SignalFd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    const int nfds = term.active() ? 2 : 1;
    const auto until = now + std::chrono::milliseconds(static_cast<long long>(interval_s * 1000));
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      if (poll(fds, nfds, static_cast<int>(left.count())) <= 0) continue;
      if (fds[0].revents) return kExitOk;
      if (nfds > 1 && fds[1].revents) {
        char key = 0;
        if (read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) return kExitOk;
        if (fds[1].revents & (POLLHUP | POLLERR)) fds[1].events = 0;
      }
    }
  }
}

struct FailureRecord {
  uint64_t id;                   // the record's, which taskq retry takes
  nlohmann::ordered_json fields;  // task, queue, kind, arg, error, ... (PROTOCOL 7.6)
};

// Every failure record waiting in "failed" (of queue, when given), oldest
// first, page by page; entries that are not a record's map are skipped.
Result<std::vector<FailureRecord>> FailureRecords(Client& c, const std::string& queue) {
  std::vector<FailureRecord> out;
  uint64_t after = 0;
  for (;;) {
    Result<std::vector<Item>> page = c.Peek("failed", after, 1000);
    if (!page.ok()) return page.status();
    if (page->empty()) return out;
    after = page->back().id;
    for (const Item& it : *page) {
      auto r = nlohmann::ordered_json::parse(PackedToJson(it.arg.packed()), nullptr, false);
      if (!r.is_object() || (!queue.empty() && r.value("queue", "") != queue)) continue;
      out.push_back(FailureRecord{it.id, std::move(r)});
    }
  }
}

std::string Shorten(std::string s, std::size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

int Failed(const ServerFlags& f, const std::string& queue, bool json) {
  Result<std::unique_ptr<Client>> c = Open(f, "taskq-failed");
  if (!c.ok()) return Fail(c.status());
  Result<std::vector<FailureRecord>> records = FailureRecords(**c, queue);
  if (!records.ok()) return FailAsAdminOnly("taskq failed", records.status());
  for (const auto& [id, r] : *records) {
    if (json) {
      nlohmann::ordered_json line = {{"id", id}};
      line.update(r);
      std::cout << line.dump() << "\n";
      continue;
    }
    std::cout << id << ": task " << r.value("task", uint64_t{0}) << " ("
              << r.value("kind", std::string()) << " "
              << Shorten(r.contains("arg") ? r["arg"].dump() : "", 60) << ") in queue '"
              << r.value("queue", std::string()) << "' failed after "
              << r.value("attempts", uint64_t{0}) << " attempt(s) on "
              << r.value("worker", std::string("?")) << ": "
              << Shorten(r.value("error", std::string()), 200) << "\n";
  }
  if (!json)
    std::cout << records->size() << " failed task(s)"
              << (queue.empty() ? "" : " of queue '" + queue + "'")
              << (records->empty() ? "" : "; run them again with: taskq retry --all") << "\n";
  return kExitOk;
}

int RetryTasks(const ServerFlags& f, std::vector<uint64_t> ids, bool all, const std::string& queue) {
  if (all && !ids.empty()) {
    std::cerr << "taskq: retry: give record ids or --all, not both\n";
    return kExitUsage;
  }
  if (!all && !queue.empty()) {
    std::cerr << "taskq: retry: --queue chooses among all the records: use it with --all\n";
    return kExitUsage;
  }
  if (!all && ids.empty()) {
    std::cerr << "taskq: retry: give the ids of failure records (taskq failed lists them), or --all\n";
    return kExitUsage;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  Result<std::unique_ptr<Client>> c = Open(f, "taskq-retry");
  if (!c.ok()) return Fail(c.status());
  if (all) {
    Result<std::vector<FailureRecord>> records = FailureRecords(**c, queue);
    if (!records.ok()) return FailAsAdminOnly("taskq retry", records.status());
    for (const FailureRecord& r : *records) ids.push_back(r.id);
  }
  Result<std::vector<std::pair<uint64_t, uint64_t>>> done = (*c)->Retry(ids);
  if (!done.ok()) return FailAsAdminOnly("taskq retry", done.status());
  for (const auto& [record, task] : *done)
    std::cout << "record " << record << ": runs again as task " << task << "\n";
  std::cout << "retried " << done->size() << " failed task(s)\n";
  if (done->size() == ids.size()) return kExitOk;
  std::string missing;
  for (uint64_t id : ids) {
    bool found = false;
    for (const auto& d : *done) found |= d.first == id;
    if (!found) missing += (missing.empty() ? "" : ", ") + std::to_string(id);
  }
  std::cerr << "taskq: retry: not a failure record waiting in the master: " << Shorten(missing, 300)
            << " (taskq failed lists them; a record is retried once)\n";
  return kExitUsage;
}

int PurgeQueue(const ServerFlags& f, const std::string& queue, bool yes) {
  Result<std::unique_ptr<Client>> c = Open(f, "taskq-purge");
  if (!c.ok()) return Fail(c.status());
  Result<StatsOk> s = (*c)->Stats();
  if (!s.ok()) return FailAsAdminOnly("taskq purge", s.status());
  const QueueStats* found = QueueOf(*s, queue);
  if (!found) {
    std::cerr << "taskq: purge: the master has no queue '" << queue
              << "' (taskq status lists its queues)\n";
    return kExitUsage;
  }
  if (!yes) {
    std::cerr << "taskq: purge removes the " << found->ready << " entries waiting in queue '"
              << queue << "' for good; add --yes to do it\n";
    return kExitUsage;
  }
  Result<uint64_t> removed = (*c)->Purge(queue);
  if (!removed.ok()) return FailAsAdminOnly("taskq purge", removed.status());
  std::cout << "removed " << *removed << " waiting entries from queue '" << queue << "'\n";
  return kExitOk;
}

}  // namespace
}  // namespace taskq

int main(int argc, char** argv) {
  using namespace taskq;
  CLI::App app{kAbout};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "the help of every subcommand at once");
  app.set_version_flag("--version", std::string("taskq ") + TASKQ_VERSION);

  ServerFlags status_flags, watch_flags;
  bool json = false;
  CLI::App* status = app.add_subcommand(
      "status", "one report of the master: queues, workers and counters");
  status_flags.AddTo(status);
  status->add_flag("--json", json,
                   "one JSON object on stdout: queues, workers and counters as the protocol's "
                   "stats reply has them");
  status->footer(
      "Examples:\n"
      "  taskq status --server 192.168.1.10 --authkey-file key.txt\n"
      "  taskq status --server 127.0.0.1:5000 --json | jq '.workers[].name'");

  double interval_s = 1;
  CLI::App* watch =
      app.add_subcommand("watch", "the same report, redrawn in place every second; q quits");
  watch_flags.AddTo(watch);
  watch->add_option("--interval", interval_s, "seconds between redraws")
      ->default_val(1)
      ->check(CLI::Range(0.1, 3600.0));
  watch->footer(
      "Examples:\n"
      "  taskq watch --server teacher-laptop --authkey-file key.txt\n"
      "  taskq watch --server 127.0.0.1:5000 --interval 0.5 > log.txt   # a report per line group");

  ServerFlags failed_flags, retry_flags, purge_flags;
  std::string failed_queue, retry_queue, purge_queue;
  bool failed_json = false, retry_all = false, purge_yes = false;
  std::vector<uint64_t> retry_ids;
  CLI::App* failed = app.add_subcommand(
      "failed", "the tasks that failed for good: their error, worker and attempts");
  failed_flags.AddTo(failed);
  failed->add_option("--queue", failed_queue, "only the failures of tasks of this queue");
  failed->add_flag("--json", failed_json, "one JSON object per failure record (JSON lines)");
  failed->footer(
      "Each line starts with the record's id, which taskq retry takes. Records stay until\n"
      "retried or purged (taskq purge failed --yes).\n\n"
      "Examples:\n"
      "  taskq failed --server 127.0.0.1:5000\n"
      "  taskq failed --server teacher-laptop --queue tasks --json | jq -r .error");

  CLI::App* retry = app.add_subcommand(
      "retry", "runs failed tasks again: each becomes a new task, its outcome going where the "
               "first one's went");
  retry_flags.AddTo(retry);
  retry->add_option("ids", retry_ids, "ids of failure records (the first column of taskq failed)");
  retry->add_flag("--all", retry_all, "every failure record (of --queue, if given)");
  retry->add_option("--queue", retry_queue, "with --all: only failures of tasks of this queue");
  retry->footer(
      "Exit codes: 0 all retried, 2 some id was not a failure record waiting in the master.\n\n"
      "Examples:\n"
      "  taskq retry --server 127.0.0.1:5000 --all\n"
      "  taskq retry --server teacher-laptop 17 18");

  CLI::App* purge = app.add_subcommand(
      "purge", "removes every entry waiting in a queue (tasks or outcomes); leased ones stay");
  purge_flags.AddTo(purge);
  purge->add_option("queue", purge_queue, "the queue to empty")->required();
  purge->add_flag("--yes", purge_yes, "really remove them (without it, says how many it would)");
  purge->footer(
      "Examples:\n"
      "  taskq purge --server 127.0.0.1:5000 tasks --yes\n"
      "  taskq purge --server 127.0.0.1:5000 failed --yes   # forget every failure record");

  SubmitFlags submit_flags;
  ResultsFlags results_flags;
  CLI::App* submit = AddSubmit(app, submit_flags);
  CLI::App* results = AddResults(app, results_flags);
  KeysFlags keys_flags;
  CLI::App* keys = AddKeys(app, keys_flags);

  if (std::optional<int> code = ParseFlags(app, argc, argv, "taskq")) return *code;
  if (sodium_init() < 0) {
    std::cerr << "taskq: libsodium failed to start\n";
    return kExitError;
  }
  InstallSignalPipe();
  if (*submit) return Submit(submit_flags);
  if (*results) return Results(results_flags);
  if (*status) return Status_(status_flags, json);
  if (*watch) return Watch(watch_flags, interval_s);
  if (*failed) return Failed(failed_flags, failed_queue, failed_json);
  if (*retry) return RetryTasks(retry_flags, retry_ids, retry_all, retry_queue);
  if (*purge) return PurgeQueue(purge_flags, purge_queue, purge_yes);
  if (*keys) return Keys(keys_flags);
  return kExitUsage;
}
