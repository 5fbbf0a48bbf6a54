// taskq submit and taskq results against a real --serve master on
// 127.0.0.1: two jobs at once each get exactly their own outcomes; a job
// collected later, after its submitter was killed, or after the master was
// killed and restarted from its data dir; a submitter carrying on across
// that restart; a failure retried and collected;
// bad input and a wrong key.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "client/exit_codes.h"
#include "master/outcome_file.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;

class SubmitTest : public E2eTest {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("taskq-submit");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Process> StartTaskq(std::vector<std::string> args, int port) {
    return Process::Start(Taskq(std::move(args), port), Env());
  }

  // A task file of "KIND ARG" lines, ARG from first to first + n - 1.
  std::string TaskFile(const std::string& name, const std::string& kind, int first, int n) {
    const std::string path = dir_ + "/" + name;
    std::ofstream f(path);
    for (int i = first; i < first + n; ++i) f << kind << " " << i << "\n";
    return path;
  }

  // The args of the outcomes in a results file, each with how often it is there.
  std::map<std::string, int> ArgsIn(const std::string& results) {
    std::map<std::string, int> args;
    for (const std::string& line : Lines(results)) ++args[Field(line, "arg")];
    return args;
  }
  static std::map<std::string, int> Range(int first, int n) {
    std::map<std::string, int> m;
    for (int i = first; i < first + n; ++i) m[std::to_string(i)] = 1;
    return m;
  }

  // The master's count of q (ready + leased + owed), or -1 if it has no such queue.
  int64_t Left(Client& c, const std::string& q) {
    Result<StatsOk> s = c.Stats();
    if (!s.ok()) return -1;
    for (const QueueStats& x : s->queues)
      if (x.name == q) return static_cast<int64_t>(x.ready + x.leased + x.owed);
    return -1;
  }

  std::string dir_;
};

// Two submitters, one master, one task queue: the tasks of both are put
// before any worker is there, so they interleave in the queue; each job's
// results file has exactly its own 200 outcomes.
TEST_F(SubmitTest, TwoJobsAtOnceEachGetExactlyTheirOwnOutcomes) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto a = StartTaskq({"submit", "--job", "a", "--tasks", TaskFile("a.txt", "square", 1, 200),
                       "--results", dir_ + "/a.jsonl", "--quiet", "--timeout", "30"},
                      port);
  auto b = StartTaskq({"submit", "--job", "b", "--tasks", TaskFile("b.txt", "square", 1001, 200),
                       "--results", dir_ + "/b.jsonl", "--quiet", "--timeout", "30"},
                      port);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitUntil([&] { return Left(*client, "job.a") == 200 && Left(*client, "job.b") == 200; }))
      << a->err() << b->err();

  // Both are jobs in progress, in status, before anything ran.
  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"status", "--json"}, port), &out, &err, Env()), kExitOk) << err;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["jobs"].size(), 2u) << out;
  EXPECT_EQ(j["jobs"][0]["id"], "a");
  EXPECT_EQ(j["jobs"][0]["waiting_or_running"], 200);
  ASSERT_EQ(RunToEnd(Taskq({"status"}, port), &out, &err, Env()), kExitOk) << err;
  EXPECT_NE(out.find("jobs: 2 in progress"), std::string::npos) << out;
  EXPECT_NE(out.find("b: 200 task(s) waiting or running, 0 outcome(s) to collect"),
            std::string::npos)
      << out;

  auto worker = StartWorker(port, {"-j", "4"});
  ASSERT_EQ(a->Wait(kSlow), kExitOk) << a->err();
  ASSERT_EQ(b->Wait(kSlow), kExitOk) << b->err();
  EXPECT_EQ(ArgsIn(dir_ + "/a.jsonl"), Range(1, 200));
  EXPECT_EQ(ArgsIn(dir_ + "/b.jsonl"), Range(1001, 200));
  // A finished job's name can be used again.
  ASSERT_EQ(RunToEnd(Taskq({"submit", "--job", "a", "--square", "2"}, port), &out, &err, Env()),
            kExitOk)
      << err;
  EXPECT_NE(out.find("Job a on"), std::string::npos) << out;
  EXPECT_NE(a->out().find("Done: 200 of 200 tasks"), std::string::npos) << a->out();
  EXPECT_EQ(Left(*client, "job.a"), 0);
  // The job's id is told first, with what to run if the submitter stops.
  EXPECT_NE(a->out().find("Job a on 127.0.0.1:" + std::to_string(port) +
                          ": tasks into queue 'tasks', outcomes into 'job.a' (if this stops: "
                          "taskq results a --server 127.0.0.1:" +
                          std::to_string(port) + " --results " + dir_ + "/a.jsonl)"),
            std::string::npos)
      << a->out();
}

// --detach puts the tasks and prints the job id alone on stdout; taskq
// results collects them later, and a second time finds nothing left.
TEST_F(SubmitTest, DetachPrintsTheIdAndResultsCollectsLater) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::string id, err;
  ASSERT_EQ(RunToEnd(Taskq({"submit", "--detach", "--tasks", TaskFile("t.txt", "square", 1, 50)},
                           port),
                     &id, &err, Env()),
            kExitOk)
      << err;
  ASSERT_FALSE(id.empty());
  id.pop_back();  // the newline
  EXPECT_EQ(id.size(), 10u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdefghjkmnpqrstvwxyz"), std::string::npos) << id;
  EXPECT_NE(err.find("Submitted job " + id + ": 50 task(s). Collect the outcomes with: taskq "
                     "results " + id),
            std::string::npos)
      << err;

  auto worker = StartWorker(port);
  std::string out;
  ASSERT_EQ(RunToEnd(Taskq({"results", id, "--results", dir_ + "/r.jsonl"}, port), &out, &err,
                     Env()),
            kExitOk)
      << err;
  EXPECT_NE(out.find("Collecting job " + id), std::string::npos) << out;
  EXPECT_NE(out.find("Done: 50 of 50 tasks"), std::string::npos) << out;
  EXPECT_EQ(ArgsIn(dir_ + "/r.jsonl"), Range(1, 50));
  ASSERT_EQ(RunToEnd(Taskq({"results", id, "--results", dir_ + "/r.jsonl"}, port), &out, &err,
                     Env()),
            kExitOk)
      << err;
  EXPECT_NE(out.find("nothing left to collect"), std::string::npos) << out;
  EXPECT_EQ(ArgsIn(dir_ + "/r.jsonl"), Range(1, 50)) << "nothing written twice";
}

// A submitter killed while it collects loses nothing: taskq results, with
// the same results file, writes what is missing, each outcome once.
TEST_F(SubmitTest, ResultsFinishesTheJobOfAKilledSubmitter) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"-j", "2"});
  const std::string results = dir_ + "/r.jsonl";
  auto submitter = StartTaskq({"submit", "--tasks", TaskFile("t.txt", "sleep", 20, 120), "--results",
                               results, "--job", "long"},
                              port);
  ASSERT_TRUE(submitter->WaitForLine("^Job long on", kQuick)) << submitter->err();
  ASSERT_TRUE(WaitUntil([&] { return Lines(results).size() >= 10; }, kSlow)) << submitter->err();
  submitter->Signal(SIGKILL);
  ASSERT_EQ(submitter->Wait(kQuick), 128 + SIGKILL);
  EXPECT_LT(Lines(results).size(), 120u) << "killed before the end";

  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"results", "long", "--results", results}, port), &out, &err, Env()),
            kExitOk)
      << err;
  EXPECT_EQ(ArgsIn(results), Range(20, 120));
}

// A collector that wrote outcomes to the file and was stopped before its
// ack, while the master still counts them as its: the next collector counts
// them in what is left, and when they come back, finds them in the file and
// expects them no more (it used to wait for them until --timeout).
TEST_F(SubmitTest, ResultsDoesNotWaitForOutcomesAnotherCollectorWroteButHeld) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> five;
  for (int i = 1; i <= 5; ++i) five.push_back(TaskSpec{"square", Value::Int(i), {}});
  ASSERT_TRUE(client->Put("tasks", five, "job.held").ok());
  auto worker = StartWorker(port);
  ASSERT_TRUE(WaitUntil([&] { return Left(*client, "job.held") == 5 && Left(*client, "tasks") == 0; }));
  // The other collector: takes two, writes them, holds them unacknowledged.
  Result<std::vector<Item>> two = client->Get("job.held", 2, kQuick, /*lease=*/true);
  ASSERT_TRUE(two.ok() && two->size() == 2u);
  const std::string results = dir_ + "/r.jsonl";
  {
    OutcomeFile f;
    ASSERT_TRUE(f.Open(results, false).ok());
    for (const Item& it : *two) f.Add(it);
    ASSERT_TRUE(f.Sync(false).ok());
  }
  auto collector = StartTaskq({"results", "held", "--results", results, "--timeout", "20"}, port);
  ASSERT_TRUE(collector->WaitForLine("^Collecting job held: 5 outcome\\(s\\) to come", kQuick))
      << collector->out() << collector->err();
  ASSERT_TRUE(WaitUntil([&] { return Lines(results).size() == 5u; }, kQuick));
  client.reset();  // goodbye: the two held outcomes go back, and reach the collector
  ASSERT_EQ(collector->Wait(kSlow), kExitOk) << collector->out() << collector->err();
  EXPECT_EQ(ArgsIn(results), Range(1, 5));
}

// taskq results ends when the master holds nothing of the job (PROTOCOL
// 7.10), not at the count it saw when it started: outcomes added meanwhile
// (a retry, another put to the job) are collected too.
TEST_F(SubmitTest, ResultsCollectsOutcomesAddedWhileItRuns) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Put("tasks", {TaskSpec{"sleep", Value::Int(1500), {}}}, "job.grow").ok());
  auto worker = StartWorker(port);
  auto collector = StartTaskq({"results", "grow", "--results", dir_ + "/r.jsonl"}, port);
  ASSERT_TRUE(collector->WaitForLine("^Collecting job grow: 1 outcome", kQuick)) << collector->err();
  std::vector<TaskSpec> more;
  for (int i = 1; i <= 3; ++i) more.push_back(TaskSpec{"square", Value::Int(i), {}});
  ASSERT_TRUE(client->Put("tasks", more, "job.grow").ok());
  ASSERT_EQ(collector->Wait(kSlow), kExitOk) << collector->err();
  EXPECT_EQ(Lines(dir_ + "/r.jsonl").size(), 4u);
  EXPECT_EQ(Left(*client, "job.grow"), 0);
}

// The master killed during a detached job and restarted from its data dir:
// the job's tasks and outcomes come back, and taskq results collects them
// all, once.
TEST_F(SubmitTest, ADetachedJobSurvivesAMasterRestartWithItsDataDir) {
  const int port = ReservePort();
  ASSERT_NE(port, 0);
  const std::string data = dir_ + "/data";
  int got = 0;
  auto master = StartMaster({"--serve", "--data-dir", data, "--port", std::to_string(port)}, &got);
  ASSERT_EQ(got, port);
  std::string id, err;
  ASSERT_EQ(RunToEnd(Taskq({"submit", "--detach", "--job", "night", "--tasks",
                            TaskFile("t.txt", "sleep", 30, 80)},
                           port),
                     &id, &err, Env()),
            kExitOk)
      << err;
  auto worker = StartWorker(port, {"-j", "2"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  // Some outcomes wait in job.night, some tasks are still to run.
  ASSERT_TRUE(WaitUntil([&] {
    Result<StatsOk> s = client->Stats();
    if (!s.ok()) return false;
    for (const QueueStats& q : s->queues)
      if (q.name == "job.night") return q.ready >= 10 && q.owed > 0;
    return false;
  }, kSlow));
  client.reset();
  master->Signal(SIGKILL);
  ASSERT_TRUE(master->Wait(kQuick));
  master = StartMaster({"--serve", "--data-dir", data, "--port", std::to_string(port)}, &got);
  ASSERT_EQ(got, port);
  ASSERT_TRUE(master->WaitForLine("Recovered", kQuick)) << master->out() << master->err();

  const std::string results = dir_ + "/r.jsonl";
  std::string out;
  ASSERT_EQ(RunToEnd(Taskq({"results", "night", "--results", results, "--timeout", "20"}, port),
                     &out, &err, Env()),
            kExitOk)
      << out << err;
  EXPECT_EQ(ArgsIn(results), Range(30, 80));
}

// taskq submit goes on across a kill -9 and restart of its master (same
// port, same --data-dir): what the restart lost (a parked get, an ack, a
// stats) is asked again once the new master welcomes it, and the job ends
// with every outcome in the file exactly once.
TEST_F(SubmitTest, ASubmitCarriesOnAcrossAMasterRestart) {
  const int port = ReservePort();
  ASSERT_NE(port, 0);
  const std::string data = dir_ + "/data";
  const std::vector<std::string> args = {"--serve", "--data-dir", data, "--port",
                                         std::to_string(port)};
  int got = 0;
  auto master = StartMaster(args, &got);
  ASSERT_EQ(got, port);
  auto worker = StartWorker(port, {"-j", "2"});
  const std::string results = dir_ + "/r.jsonl";
  auto submit = StartTaskq({"submit", "--job", "across", "--tasks",
                            TaskFile("t.txt", "sleep", 20, 100), "--results", results, "--quiet",
                            "--timeout", "30"},
                           port);
  // Every task is put, and outcomes are being collected.
  ASSERT_TRUE(submit->WaitForLine("Try get results", kSlow)) << submit->err();
  ASSERT_TRUE(WaitUntil([&] { return Lines(results).size() >= 10; }, kSlow)) << submit->err();
  master->Signal(SIGKILL);
  ASSERT_TRUE(master->Wait(kQuick));
  master = StartMaster(args, &got);
  ASSERT_EQ(got, port);
  ASSERT_TRUE(master->WaitForLine("Recovered", kQuick)) << master->out() << master->err();

  ASSERT_EQ(submit->Wait(kSlow), kExitOk) << submit->out() << submit->err();
  EXPECT_EQ(ArgsIn(results), Range(20, 100));
  EXPECT_NE(submit->out().find("Done: 100 of 100 tasks"), std::string::npos) << submit->out();
}

// The classroom's failure drill with jobs: a task fails, the job says so
// (exit 6), the worker is fixed, taskq retry runs it again, and taskq
// results collects its new outcome into the job's file.
TEST_F(SubmitTest, AFailedTaskRetriedIsCollectedByResults) {
  int port = 0;
  auto master = StartMaster({"--serve", "--max-attempts", "1"}, &port);
  ASSERT_NE(port, 0);
  auto squares = StartWorker(port, {"--name", "squares", "--kind", "square"});
  auto broken = StartWorker(port, {"--name", "broken", "--kind", "flaky", "--exec", "sh", "-c",
                                   "echo not yet >&2; exit 3"});
  ASSERT_TRUE(master->WaitForLine("worker broken joined", kQuick, true));
  const std::string tasks = dir_ + "/t.txt";
  std::ofstream(tasks) << "square 3\nflaky x\nsquare 4\n";
  const std::string results = dir_ + "/r.jsonl";
  std::string out, err;
  ASSERT_EQ(RunToEnd(Taskq({"submit", "--job", "drill", "--tasks", tasks, "--results", results},
                           port),
                     &out, &err, Env()),
            kExitTasksFailed)
      << out << err;
  EXPECT_NE(err.find("1 of 3 task(s) failed"), std::string::npos) << err;
  EXPECT_NE(err.find("not yet"), std::string::npos) << err;

  broken->Signal(SIGTERM);
  ASSERT_TRUE(broken->Wait(kQuick));
  auto fixed = StartWorker(port, {"--name", "fixed", "--kind", "flaky", "--exec", "echo", "ok {}"});
  ASSERT_EQ(RunToEnd(Taskq({"retry", "--all"}, port), &out, &err, Env()), kExitOk) << err;
  ASSERT_EQ(RunToEnd(Taskq({"results", "drill", "--results", results}, port), &out, &err, Env()),
            kExitOk)
      << out << err;
  const std::vector<std::string> lines = Lines(results);
  ASSERT_EQ(lines.size(), 4u) << "the failure stays; the retried outcome joins it";
  EXPECT_EQ(Field(lines.back(), "ok"), "true") << lines.back();
  EXPECT_EQ(Field(lines.back(), "value"), "ok x") << lines.back();
}

TEST_F(SubmitTest, BadInputAndAWrongKeyAreToldWithTheirExitCodes) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::string out, err;
  EXPECT_EQ(RunToEnd(Taskq({"submit"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("give the job's tasks: --square N, --download FILE, --tasks FILE or URLs"),
            std::string::npos)
      << err;
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--tasks", dir_ + "/missing.txt"}, port), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find(dir_ + "/missing.txt"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--job", "no spaces"}, port), &out, &err,
                     Env()),
            kExitUsage);
  EXPECT_NE(err.find("--job 'no spaces': a job id is 1 to 64 letters"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--job=-x"}, port), &out, &err, Env()),
            kExitUsage);  // taskq results -x would read as a flag
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--job", ""}, port), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("--job needs an id"), std::string::npos) << err;
  // A new job does not overwrite outcomes already kept in a file.
  std::ofstream(dir_ + "/kept.jsonl") << "{\"id\": 1}\n";
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--results", dir_ + "/kept.jsonl"}, port),
                     &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("already holds outcomes; give a new file"), std::string::npos) << err;
  EXPECT_EQ(Lines(dir_ + "/kept.jsonl").size(), 1u);
  EXPECT_EQ(out.find("Job "), std::string::npos) << "no job was made: " << out;
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--detach", "--results", "r"}, port), &out,
                     &err, Env()),
            kExitUsage);
  EXPECT_EQ(RunToEnd(Taskq({"results", "nosuchjob"}, port), &out, &err, Env()), kExitUsage);
  EXPECT_NE(err.find("has no job nosuchjob (no queue job.nosuchjob)"), std::string::npos) << err;

  // A job id in use is refused: its outcomes would mix.
  ASSERT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--detach", "--job", "mine"}, port), &out,
                     &err, Env()),
            kExitOk)
      << err;
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--job", "mine"}, port), &out, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("job mine is still running on the master"), std::string::npos) << err;

  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "3", "--authkey", "wrong"}, port), &out, &err),
            kExitAuthFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(err.find("the authkey does not match"), std::string::npos) << err;

  // Nothing connected to run them: the job stops after --timeout (exit 5)
  // and says how to collect the rest; its tasks stay in the master.
  EXPECT_EQ(RunToEnd(Taskq({"submit", "--square", "2", "--job", "alone", "--timeout", "0.5"}, port),
                     &out, &err, Env()),
            kExitTimeout);
  EXPECT_NE(err.find("no worker is connected"), std::string::npos) << err;
  EXPECT_NE(err.find("collect their outcomes with: taskq results alone"), std::string::npos) << err;
  auto client = Connect(port);
  ASSERT_TRUE(client);
  EXPECT_EQ(Left(*client, "job.alone"), 2);
}

}  // namespace
}  // namespace taskq::testing
