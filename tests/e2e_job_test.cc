// task_master's own job, as users run it: killed (SIGKILL, SIGTERM) and run
// again with the same command, finished and run again, slow tasks, no
// workers. Real binaries on 127.0.0.1, ports chosen by the OS.
//
// TASKQ_FAULT_ROUNDS (environment) makes the kill-and-resume runs longer:
// `make test-faults` sets it; `make test` runs a short version.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "client/exit_codes.h"
#include "proto/json.h"
#include "proto/msgpack_reader.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;

// The "id" and "arg" (an integer) of a results line.
bool IdAndArg(const std::string& line, uint64_t* id, int64_t* arg) {
  Result<Value> v = ParseJson(line);
  if (!v.ok()) return false;
  MsgpackReader r(v->packed());
  uint32_t n;
  if (!r.ReadMapHeader(&n)) return false;
  int found = 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.ReadStr(&key)) return false;
    if (key == "id" && r.ReadUint(id)) {
      ++found;
    } else if (key == "arg" && r.ReadInt(arg)) {
      ++found;
    } else if (key != "id" && key != "arg" && !r.Skip(nullptr)) {
      return false;
    }
  }
  return found == 2;
}

int Rounds(int fallback) {
  const char* v = std::getenv("TASKQ_FAULT_ROUNDS");
  return v ? std::max(1, std::atoi(v)) : fallback;
}

class JobTest : public E2eTest {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("taskq-job");
    ASSERT_FALSE(dir_.empty());
    data_ = dir_ + "/state";
    results_ = dir_ + "/out.jsonl";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // n tasks "square i", i = 0..n-1.
  std::string SquareList(int n) {
    const std::string path = dir_ + "/tasks.txt";
    std::ofstream f(path);
    for (int i = 0; i < n; ++i) f << "square " << i << "\n";
    return path;
  }

  std::vector<std::string> JobArgs(const std::string& tasks, const std::string& fsync) {
    return {"--tasks", tasks,     "--data-dir", data_,       "--results", results_,
            "-q",      "--fsync", fsync,        "--timeout", "30"};
  }

  // Every task's outcome is in the results file exactly once.
  void ExpectEveryOutcomeOnce(int n) {
    std::set<uint64_t> ids;
    std::map<int64_t, int> args;
    for (const std::string& line : Lines(results_)) {
      uint64_t id;
      int64_t arg;
      ASSERT_TRUE(IdAndArg(line, &id, &arg)) << "not an outcome line: " << line;
      EXPECT_TRUE(ids.insert(id).second) << "task " << id << " appears twice";
      ++args[arg];
    }
    EXPECT_EQ(args.size(), static_cast<std::size_t>(n));
    for (const auto& [arg, count] : args) EXPECT_EQ(count, 1) << "square " << arg;
  }

  // Runs the job, stopping the master with sig once the results file has
  // grown by a random number of outcomes, rounds times; then lets it finish.
  void KillAndResume(int n, const std::string& fsync, int sig, int rounds) {
    const std::string tasks = SquareList(n);
    std::mt19937 rng(std::random_device{}());
    for (int round = 0; round <= rounds; ++round) {
      int port = 0;
      auto master = StartMaster(JobArgs(tasks, fsync), &port);
      ASSERT_NE(port, 0);
      std::vector<std::unique_ptr<Process>> workers;
      for (int i = 0; i < 2; ++i)
        workers.push_back(StartWorker(port, {"-q", "-j", "2", "--delay", "0.002"}));
      if (round == rounds) {
        std::optional<int> code = master->Wait(milliseconds(120000));
        ASSERT_TRUE(code) << "the last run did not end";
        EXPECT_EQ(*code, kExitOk) << master->err();
        break;
      }
      const std::size_t before = Lines(results_).size();
      const std::size_t target =
          before + 1 + rng() % std::max<std::size_t>(1, (n - before) / (rounds + 1));
      ASSERT_TRUE(
          WaitUntil([&] { return Lines(results_).size() >= target || !master->Running(); }, kSlow))
          << "the results file did not grow; master stderr:\n"
          << master->err();
      if (!master->Running()) break;  // it finished first: nothing left to kill
      master->Signal(sig);
      std::optional<int> code = master->Wait(kSlow);
      ASSERT_TRUE(code);
      // (0 only if the job ended in the moment between the check and the signal.)
      if (sig == SIGTERM && *code != kExitOk) {
        EXPECT_EQ(*code, kExitInterrupted) << master->err();
      }
      for (auto& w : workers) w->Signal(SIGKILL);
    }
    ExpectEveryOutcomeOnce(n);
  }

  std::string dir_, data_, results_;
};

class JobKillTest : public JobTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(JobKillTest, KilledAndResumedTheJobWritesEveryOutcomeOnce) {
  KillAndResume(Rounds(1) * 1500, GetParam(), SIGKILL, Rounds(1) * 3);
}

TEST_P(JobKillTest, StoppedWithSigtermAndResumedTheJobWritesEveryOutcomeOnce) {
  KillAndResume(Rounds(1) * 1000, GetParam(), SIGTERM, Rounds(1) * 2);
}

INSTANTIATE_TEST_SUITE_P(Fsync, JobKillTest, ::testing::Values("always", "interval", "never"));

TEST_F(JobTest, AFinishedJobIsNotRunAgainUnlessFresh) {
  const std::string tasks = SquareList(20);
  int port = 0;
  auto master = StartMaster(JobArgs(tasks, "interval"), &port);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->err();
  ExpectEveryOutcomeOnce(20);

  auto again = StartMaster(JobArgs(tasks, "interval"), &port);
  ASSERT_EQ(again->Wait(kSlow), kExitOk) << again->err();
  EXPECT_NE(again->out().find("This job already finished"), std::string::npos) << again->out();
  EXPECT_EQ(Lines(results_).size(), 20u);

  std::vector<std::string> fresh = JobArgs(tasks, "interval");
  fresh.push_back("--fresh");
  auto third = StartMaster(fresh, &port);
  auto worker3 = StartWorker(port, {"-q"});
  ASSERT_EQ(third->Wait(kSlow), kExitOk) << third->err();
  ExpectEveryOutcomeOnce(20);  // the file starts anew: 20 lines, not 40
}

// A kill after the last outcome was written, before the job noted that it
// finished: the same command puts nothing again.
TEST_F(JobTest, AJobKilledAfterCollectingEverythingPutsNothingAgain) {
  const std::string tasks = SquareList(30);
  int port = 0;
  auto master = StartMaster(JobArgs(tasks, "interval"), &port);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->err();
  worker->Signal(SIGKILL);
  {  // what the record says when the kill comes just before the job ends
    std::ifstream in(data_ + "/job");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    text.replace(text.find("state: finished"), 15, "state: running");
    std::ofstream(data_ + "/job") << text;
  }
  auto again = StartMaster(JobArgs(tasks, "interval"), &port);  // no worker: nothing to run
  ASSERT_EQ(again->Wait(kSlow), kExitOk) << again->err();
  ExpectEveryOutcomeOnce(30);
}

TEST_F(JobTest, AnUnfinishedJobIsNotMixedWithAnother) {
  const std::string tasks = SquareList(10);
  int port = 0;
  auto master = StartMaster(JobArgs(tasks, "interval"), &port);  // no worker
  ASSERT_TRUE(master->WaitForLine("Try get results", kQuick));
  master->Signal(SIGKILL);
  master->Wait(kQuick);
  std::string err;
  const int code = RunToEnd({MasterBin(), "--bind", "127.0.0.1", "--port", "0", "--square", "5",
                             "--data-dir", data_, "--authkey", key_},
                            nullptr, &err);
  EXPECT_EQ(code, kExitUsage);
  EXPECT_NE(err.find("holds an unfinished job (--tasks " + tasks + ")"), std::string::npos) << err;
  EXPECT_NE(err.find("--fresh"), std::string::npos) << err;
}

// --fresh and --fsync act on the data dir: without one they would do
// nothing (and --fresh with --store would look like it wipes the store).
TEST_F(JobTest, FreshAndFsyncWithoutADataDirAreRefused) {
  for (const std::vector<std::string>& flag :
       {std::vector<std::string>{"--fresh"}, std::vector<std::string>{"--fsync", "always"}}) {
    std::vector<std::string> args = {MasterBin(), "--bind", "127.0.0.1", "--port", "0",
                                     "--square",  "5",      "--authkey", key_};
    args.insert(args.end(), flag.begin(), flag.end());
    std::string err;
    EXPECT_EQ(RunToEnd(args, nullptr, &err), kExitUsage) << flag[0];
    EXPECT_NE(err.find(flag[0] + " requires --data-dir"), std::string::npos) << err;
  }
}

// --timeout is about progress: a task longer than it, on a live worker, is
// waited for.
TEST_F(JobTest, ATaskLongerThanTimeoutOnALiveWorkerCompletes) {
  std::ofstream(dir_ + "/slow.txt") << "sleep 2500\n";
  int port = 0;
  // --workers 1: the clock of --timeout starts once the worker is there, so a
  // worker slow to start on a loaded machine is not taken for no progress.
  auto master =
      StartMaster({"--tasks", dir_ + "/slow.txt", "--timeout", "1", "--workers", "1"}, &port);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->err();
  EXPECT_NE(master->out().find("Done: 1 of 1"), std::string::npos) << master->out();
}

TEST_F(JobTest, ADownloadLongerThanTimeoutCompletes) {
  std::string base;
  auto web = StartWebFixture(&base);
  ASSERT_TRUE(web);
  int port = 0;
  auto master =
      StartMaster({"--timeout", "1", "--workers", "1", base + "/slow/2500/big-file"}, &port);
  auto worker = StartWorker(port, {"-q", "--out", dir_ + "/out"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->err();
  EXPECT_TRUE(fs::exists(dir_ + "/out/big-file"));
}

// Tasks from a pipe may keep the job waiting on its writer for as long as it
// likes: the master must go on serving meanwhile (its loop keeps a thread of
// its own for such a job; one run only while the job waits on the master
// would answer nobody, not even a handshake).
TEST_F(JobTest, AJobWaitingOnAPipeForTasksKeepsServing) {
  const std::string fifo = dir_ + "/tasks.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Read and write: opening does not wait for the master, and the master
  // sees no end of input until this end is closed.
  const int w = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(w, 0);
  int port = 0;
  auto master = StartMaster({"--tasks", fifo, "--timeout", "30"}, &port);
  ASSERT_NE(port, 0);
  const std::string line = "square 7\n";
  ASSERT_EQ(write(w, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  // The job now waits for more lines; a client is served all the same.
  auto client = Connect(port);
  ASSERT_TRUE(client);
  Result<StatsOk> st = client->Stats(kQuick);
  EXPECT_TRUE(st.ok()) << st.status().message();
  auto worker = StartWorker(port, {"--quiet"});
  close(w);
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(master->CountLines(R"(^Done: 1 of 1 tasks in .*, 0 failed$)"), 1) << master->out();
  EXPECT_EQ(worker->Wait(kQuick), kExitOk) << worker->err();
}

TEST_F(JobTest, WithNoWorkerTheJobGivesUpAndSaysWhy) {
  int port = 0;
  auto master = StartMaster({"--square", "3", "--timeout", "1"}, &port);
  ASSERT_EQ(master->Wait(kSlow), kExitTimeout) << master->err();
  EXPECT_NE(master->err().find("no progress for 1 s"), std::string::npos) << master->err();
  EXPECT_NE(master->err().find("no worker is connected"), std::string::npos) << master->err();
  EXPECT_NE(master->err().find("--workers N"), std::string::npos) << master->err();
}

// Task arguments and results are the user's data: what the master makes is
// its owner's alone, whatever the umask; a results file that exists keeps
// the mode its owner gave it.
TEST_F(JobTest, WhatTheMasterStoresIsReadableOnlyByItsOwner) {
  const std::string tasks = SquareList(5);
  const mode_t old_umask = umask(022);
  int port = 0;
  auto master = StartMaster(JobArgs(tasks, "interval"), &port);
  umask(old_umask);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->err();
  auto mode = [](const fs::path& p) { return fs::status(p).permissions() & fs::perms::all; };
  EXPECT_EQ(mode(data_), fs::perms::owner_all);
  int files = 0;
  for (const auto& e : fs::directory_iterator(data_)) {
    ++files;
    EXPECT_EQ(mode(e.path()), fs::perms::owner_read | fs::perms::owner_write) << e.path();
  }
  EXPECT_GE(files, 3) << "LOCK, a journal segment and the job record";
  EXPECT_EQ(mode(results_), fs::perms::owner_read | fs::perms::owner_write);

  const std::string shared = dir_ + "/shared.jsonl";
  std::ofstream(shared).close();
  fs::permissions(shared, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto again = StartMaster({"--tasks", tasks, "--results", shared, "-q", "--timeout", "30"}, &port);
  auto worker2 = StartWorker(port, {"-q"});
  ASSERT_EQ(again->Wait(kSlow), kExitOk) << again->err();
  EXPECT_EQ(Lines(shared).size(), 5u);
  EXPECT_EQ(mode(shared), fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

}  // namespace
}  // namespace taskq::testing
