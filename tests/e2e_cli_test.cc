// The taskq command against a real master on 127.0.0.1: status (text and
// JSON, agreeing with the protocol's stats), watch under a pseudo-terminal,
// and its exit codes.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/exit_codes.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;

class CliTest : public E2eTest {};

TEST_F(CliTest, StatusShowsQueuesAndWorkersAndItsJsonIsTheProtocolsStats) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "ana", "-j", "3"});
  ASSERT_TRUE(master->WaitForLine("worker ana joined", kQuick, true));
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> five(5, TaskSpec{"square", Value::Int(2), {}});
  ASSERT_TRUE(client->Put("later", five).ok());  // nobody serves "later": they wait

  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"status"}, port), &out, &err, Env()), kExitOk) << err;
  EXPECT_NE(out.find("ana: 0 in flight (runs 3 at once)"), std::string::npos) << out;
  EXPECT_NE(out.find("later"), std::string::npos) << out;

  ASSERT_EQ(RunToEnd(Taskq({"status", "--json"}, port), &out, &err, Env()), kExitOk) << err;
  const nlohmann::json j = nlohmann::json::parse(out);  // pure JSON: throws otherwise
  Result<StatsOk> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_EQ(j["queues"].size(), stats->queues.size()) << out;
  for (std::size_t i = 0; i < stats->queues.size(); ++i) {
    EXPECT_EQ(j["queues"][i]["name"], std::string(stats->queues[i].name));
    EXPECT_EQ(j["queues"][i]["ready"], stats->queues[i].ready);
  }
  bool later = false;
  for (const auto& q : j["queues"]) later |= q["name"] == "later" && q["ready"] == 5;
  EXPECT_TRUE(later) << out;
  ASSERT_EQ(j["workers"].size(), 1u) << out;
  EXPECT_EQ(j["workers"][0]["name"], "ana");
  EXPECT_EQ(j["workers"][0]["capacity"], 3);
  EXPECT_EQ(j["counters"]["put"], 5) << out;
}

TEST_F(CliTest, ExitCodesSayWhatWentWrong) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::string out, err;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunToEnd(Taskq({"status", "--authkey", "not-the-key"}, port), &out, &err),
            kExitAuthFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(err.find("the authkey does not match"), std::string::npos) << err;

  const int nobody = ReservePort();  // nothing listens there
  ASSERT_NE(nobody, 0);
  EXPECT_EQ(RunToEnd(Taskq({"status", "--connect-timeout", "1"}, nobody), &out, &err, Env()),
            kExitUnavailable);
  EXPECT_NE(err.find("no master answered at 127.0.0.1:" + std::to_string(nobody)),
            std::string::npos)
      << err;

  EXPECT_EQ(RunToEnd(Taskq({"status", "--server", "bad host!"}, 0), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("bad host!"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({"status", "--server", "no-such-host.invalid"}, 0), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("cannot resolve no-such-host.invalid"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({}, 0), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("subcommand"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({"status"}, port), &out, &err, {"TASKQ_AUTHKEY="}), kExitUsage);
  EXPECT_NE(err.find("authkey"), std::string::npos) << err;
}

// taskq watch in a terminal (a pseudo-terminal here): draws the report in
// place, redraws it, and exits 0 on q.
TEST_F(CliTest, WatchRedrawsInATerminalAndQuitsOnQ) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "ana"});
  ASSERT_TRUE(master->WaitForLine("worker ana joined", kQuick, true));

  std::vector<std::string> args = Taskq({"watch", "--interval", "0.2"}, port);
  int pty = -1;
  const pid_t pid = forkpty(&pty, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("TASKQ_AUTHKEY", key_.c_str(), 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::string screen;
  // Reads what watch draws until pred holds or the deadline passes.
  auto read_until = [&](auto pred) {
    const auto until = std::chrono::steady_clock::now() + kQuick;
    while (!pred() && std::chrono::steady_clock::now() < until) {
      pollfd p{pty, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(pty, buf, sizeof buf);
      if (n <= 0) break;
      screen.append(buf, n);
    }
    return pred();
  };
  auto count = [&](const std::string& s) {
    std::size_t n = 0;
    for (std::size_t at = screen.find(s); at != std::string::npos; at = screen.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_TRUE(read_until([&] { return count("ana:") >= 2; })) << screen;
  EXPECT_GE(count("\x1b[H"), 2u) << "redrawn in place";
  EXPECT_NE(screen.find("q or Ctrl-C to quit"), std::string::npos) << screen;
  ASSERT_EQ(write(pty, "q", 1), 1);
  int status = -1;
  const bool ended = WaitUntil(
      [&] { return waitpid(pid, &status, WNOHANG) == pid; }, kQuick);
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  close(pty);
  ASSERT_TRUE(ended) << "watch did not exit on q";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// The classroom's failure drill: tasks fail on a broken worker, taskq failed
// says why, the worker is fixed, taskq retry runs them again, and their new
// outcomes reach the producer's reply queue.
TEST_F(CliTest, FailedTasksAreListedRetriedAndThenSucceed) {
  int port = 0;
  auto master = StartMaster({"--serve", "--max-attempts", "1"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> two = {TaskSpec{"flaky", Value::Str("a"), {}},
                               TaskSpec{"flaky", Value::Str("b"), {}}};
  ASSERT_TRUE(client->Put("tasks", two, "mine").ok());
  auto broken = StartWorker(port, {"--kind", "flaky", "--exec", "sh", "-c", "echo nope >&2; exit 3"});
  auto failed_count = [&] {
    Result<StatsOk> s = client->Stats();
    if (!s.ok()) return uint64_t{0};
    for (const QueueStats& q : s->queues)
      if (q.name == "failed") return q.ready;
    return uint64_t{0};
  };
  ASSERT_TRUE(WaitUntil([&] { return failed_count() == 2; }, kQuick));
  broken->Signal(SIGTERM);
  ASSERT_TRUE(broken->Wait(kQuick));

  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"failed"}, port), &out, &err, Env()), kExitOk) << err;
  EXPECT_NE(out.find("(flaky \"a\") in queue 'tasks' failed after 1 attempt(s)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("the command exited with code 3: nope"), std::string::npos) << out;
  EXPECT_NE(out.find("2 failed task(s)"), std::string::npos) << out;
  ASSERT_EQ(RunToEnd(Taskq({"failed", "--json"}, port), &out, &err, Env()), kExitOk) << err;
  std::vector<uint64_t> records;
  for (std::size_t at = 0, nl; (nl = out.find('\n', at)) != std::string::npos; at = nl + 1) {
    const nlohmann::json r = nlohmann::json::parse(out.substr(at, nl - at));
    EXPECT_EQ(r["reply_to"], "mine");
    records.push_back(r["id"]);
  }
  ASSERT_EQ(records.size(), 2u) << out;
  ASSERT_EQ(RunToEnd(Taskq({"failed", "--queue", "other"}, port), &out, &err, Env()), kExitOk);
  EXPECT_NE(out.find("0 failed task(s) of queue 'other'"), std::string::npos) << out;

  auto fixed = StartWorker(port, {"--kind", "flaky", "--exec", "echo", "fixed {}"});
  ASSERT_EQ(RunToEnd(Taskq({"retry", "--all"}, port), &out, &err, Env()), kExitOk) << err;
  EXPECT_NE(out.find("retried 2 failed task(s)"), std::string::npos) << out;
  std::map<std::string, int> fixed_values;
  int failures = 0;
  for (int got = 0; got < 4;) {
    Result<std::vector<Item>> items = client->Get("mine", 4, kQuick);
    ASSERT_TRUE(items.ok()) << items.status().message();
    for (const Item& it : *items) {
      ++got;
      if (!it.outcome->ok) {
        ++failures;
        continue;
      }
      ++fixed_values[std::string(it.outcome->value.AsStr().value_or(""))];
    }
  }
  EXPECT_EQ(failures, 2) << "the first outcomes stay what they were";
  EXPECT_EQ(fixed_values, (std::map<std::string, int>{{"fixed a", 1}, {"fixed b", 1}}));
  EXPECT_EQ(failed_count(), 0u);
  EXPECT_EQ(RunToEnd(Taskq({"retry", std::to_string(records[0])}, port), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("not a failure record waiting in the master: " + std::to_string(records[0])),
            std::string::npos)
      << err;
  EXPECT_EQ(RunToEnd(Taskq({"retry"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("or --all"), std::string::npos) << err;
}

TEST_F(CliTest, PurgeAsksForYesThenEmptiesTheQueue) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> three(3, TaskSpec{"square", Value::Int(2), {}});
  ASSERT_TRUE(client->Put("later", three).ok());
  std::string out, err;
  EXPECT_EQ(RunToEnd(Taskq({"purge", "later"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("removes the 3 entries waiting in queue 'later' for good; add --yes"),
            std::string::npos)
      << err;
  Result<uint64_t> size = client->GetQueue("later").Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 3u) << "nothing removed without --yes";
  ASSERT_EQ(RunToEnd(Taskq({"purge", "later", "--yes"}, port), &out, &err, Env()), kExitOk) << err;
  EXPECT_NE(out.find("removed 3 waiting entries from queue 'later'"), std::string::npos) << out;
  size = client->GetQueue("later").Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 0u);
  EXPECT_EQ(RunToEnd(Taskq({"purge", "no-such-queue", "--yes"}, port), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("the master has no queue 'no-such-queue'"), std::string::npos) << err;
}

// A task of a running job, failed and retried with taskq retry: the job has
// counted its failure, so the new outcome is not one of its own. It must not
// take the place of a task still running (the job would end early, that
// task's outcome missing from --results).
TEST_F(CliTest, ARetryDuringAJobDoesNotEndItEarly) {
  const std::string dir = MakeTempDir("taskq-cli");
  ASSERT_FALSE(dir.empty());
  std::ofstream(dir + "/tasks.txt") << "flaky a\nsleep 4000\n";
  int port = 0;
  auto master = StartMaster({"--tasks", dir + "/tasks.txt", "--results", dir + "/r.jsonl",
                             "--max-attempts", "1", "--workers", "2"},
                            &port);
  ASSERT_NE(port, 0);
  auto runner = StartWorker(port, {"--name", "runner", "-j", "2"});
  auto broken = StartWorker(port, {"--name", "broken", "--kind", "flaky", "--exec", "sh", "-c", "exit 3"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitUntil(
      [&] {
        Result<std::vector<Item>> r = client->Peek("failed");
        return r.ok() && !r->empty();
      },
      kQuick));
  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"retry", "--all"}, port), &out, &err, Env()), kExitOk) << err;
  ASSERT_TRUE(master->WaitForLine("is not of this job", kQuick, true))
      << "the retried task's outcome reached the job while the sleep ran\n" << master->err();
  ASSERT_EQ(master->Wait(kSlow), kExitTasksFailed) << master->err();
  EXPECT_NE(master->out().find("Done: 2 of 2 tasks"), std::string::npos) << master->out();
  const std::vector<std::string> lines = Lines(dir + "/r.jsonl");
  EXPECT_EQ(lines.size(), 2u);
  bool slept = false;
  for (const std::string& l : lines) slept |= Field(l, "kind") == "sleep";
  EXPECT_TRUE(slept) << "the task still running when the retry came is in --results";
  fs::remove_all(dir);
}

TEST_F(CliTest, RetryTakesIdsOrAllNotBoth) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::string out, err;
  EXPECT_EQ(RunToEnd(Taskq({"retry", "--all", "5"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("not both"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({"retry", "--queue", "tasks"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("use it with --all"), std::string::npos) << err;
}

}  // namespace
}  // namespace taskq::testing
