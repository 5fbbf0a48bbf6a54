// Fault tests: workers killed, frozen or stopped, masters killed and
// restarted, journals cut short, queues full. Real binaries on 127.0.0.1.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "client/exit_codes.h"
#include "master/journal_frame.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

uint64_t Counter(Client& c, std::string_view name) {
  Result<StatsOk> s = c.Stats();
  if (!s.ok()) return 0;
  for (const auto& [k, v] : s->counters)
    if (k == name) return v;
  return 0;
}

QueueStats QueueInfo(Client& c, std::string_view name) {
  Result<StatsOk> s = c.Stats();
  if (s.ok())
    for (const QueueStats& q : s->queues)
      if (q.name == name) return QueueStats{{}, q.ready, q.leased, q.failed};
  return {};
}

// The size of the journal's segments in dir. The master compacts while we
// look: a segment listed may be gone when its size is asked, and then holds
// nothing. UINT64_MAX if the directory cannot be read.
uint64_t JournalBytes(const fs::path& dir) {
  std::error_code ec;
  uint64_t bytes = 0;
  for (fs::directory_iterator it(dir, ec), end; it != end; it.increment(ec)) {
    if (ec) return UINT64_MAX;
    if (it->path().extension() != ".tqj") continue;
    std::error_code gone;
    const uintmax_t size = fs::file_size(it->path(), gone);
    if (!gone) bytes += size;
  }
  return ec ? UINT64_MAX : bytes;
}

class ReliabilityTest : public E2eTest {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("taskq-e2e");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Puts n tasks of kind with args made by arg(i); returns id -> arg.
  std::map<uint64_t, int64_t> PutTasks(Client& c, const std::string& kind, int n,
                                       std::function<int64_t(int)> arg) {
    std::vector<TaskSpec> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(TaskSpec{kind, Value::Int(arg(i)), {}});
    Result<IdRange> ids = c.Put("tasks", tasks);
    EXPECT_TRUE(ids.ok()) << ids.status().message();
    std::map<uint64_t, int64_t> out;
    if (ids.ok())
      for (int i = 0; i < n; ++i) out[ids->first + i] = arg(i);
    return out;
  }
  // Collects outcomes until every id in want has one; fails on a duplicate,
  // an unknown id or a failure.
  void CollectAll(Client& c, const std::map<uint64_t, int64_t>& want,
                  std::function<int64_t(int64_t)> expect, milliseconds each = kSlow) {
    std::set<uint64_t> seen;
    while (seen.size() < want.size()) {
      Result<std::vector<Item>> got = c.Get("results", 1000, each);
      ASSERT_TRUE(got.ok()) << got.status().message() << " with " << seen.size() << " of "
                            << want.size();
      for (const Item& r : *got) {
        ASSERT_TRUE(want.count(r.id)) << "unknown id " << r.id;
        EXPECT_TRUE(seen.insert(r.id).second) << "a second outcome for task " << r.id;
        ASSERT_TRUE(r.outcome && r.outcome->ok) << (r.outcome ? r.outcome->error : "no outcome");
        EXPECT_EQ(r.outcome->value.AsInt(), expect(want.at(r.id))) << "task " << r.id;
      }
    }
    Result<std::vector<Item>> extra = c.Get("results", 10, milliseconds(100));
    EXPECT_EQ(extra.status().code(), Code::kEmpty) << "one outcome per task";
  }

  std::string dir_;
};

int64_t Same(int64_t x) { return x; }
int64_t Square(int64_t x) { return x * x; }

TEST_F(ReliabilityTest, AWorkerKilledHoldingTasksLosesNone) {
  int port = 0;
  auto master = StartMaster({"--serve", "--heartbeat", "0.2"}, &port);
  ASSERT_NE(port, 0);
  auto doomed = StartWorker(port, {"-j", "4", "--name", "doomed"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  auto want = PutTasks(*client, "sleep", 24, [](int i) { return 100 + i; });
  ASSERT_TRUE(doomed->WaitForLine("run task sleep", kQuick)) << doomed->out();
  doomed->Signal(SIGKILL);
  auto survivor = StartWorker(port, {"-j", "4", "--name", "survivor"});
  CollectAll(*client, want, Same);
  EXPECT_GE(Counter(*client, "requeued"), 1u);
}

TEST_F(ReliabilityTest, AFrozenWorkersTasksRunElsewhereAndItsLateResultsAreDropped) {
  int port = 0;
  auto master = StartMaster({"--serve", "--heartbeat", "0.2"}, &port);
  ASSERT_NE(port, 0);
  auto frozen = StartWorker(port, {"-j", "2", "--name", "frozen", "--heartbeat", "0.2"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  auto want = PutTasks(*client, "sleep", 6, [](int i) { return 300 + i; });
  ASSERT_TRUE(frozen->WaitForLine("run task sleep", kQuick)) << frozen->out();
  frozen->Signal(SIGSTOP);
  auto other = StartWorker(port, {"-j", "4", "--name", "other"});
  CollectAll(*client, want, Same);
  EXPECT_GE(Counter(*client, "dead_peers"), 1u);
  frozen->Signal(SIGCONT);
  // It wakes, finishes what it ran, reconnects and reports: too late.
  EXPECT_TRUE(WaitUntil([&] { return Counter(*client, "duplicates") >= 1; }))
      << frozen->out() << frozen->err() << master->err();
  Result<std::vector<Item>> extra = client->Get("results", 10, milliseconds(300));
  EXPECT_EQ(extra.status().code(), Code::kEmpty) << "still one outcome per task";
}

// The workers find the master again by themselves at the address they
// know: its port is reserved for the test, so nothing else takes it while
// the master is down.
TEST_F(ReliabilityTest, AMasterKilledMidRunComesBackFromItsJournal) {
  int port = ReservePort();
  auto master = StartMaster({"--serve", "--data-dir", dir_, "--port", std::to_string(port)}, &port);
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<Process>> workers;
  for (int i = 0; i < 2; ++i) workers.push_back(StartWorker(port, {"-j", "4", "--quiet"}));
  std::map<uint64_t, int64_t> want;
  {
    auto client = Connect(port);
    ASSERT_TRUE(client);
    want = PutTasks(*client, "sleep", 300, [](int i) { return 5 + i % 7; });
    ASSERT_TRUE(WaitUntil([&] { return Counter(*client, "accepted") >= 50; })) << master->err();
  }
  master->Signal(SIGKILL);
  ASSERT_EQ(master->Wait(kQuick), 128 + SIGKILL);
  auto again = StartMaster({"--serve", "--data-dir", dir_, "--port", std::to_string(port)}, &port);
  EXPECT_TRUE(again->WaitForLine(R"(Recovered .*: \d+ task\(s\) waiting, \d+ outcome)", kQuick))
      << again->out();
  auto client = Connect(port);
  ASSERT_TRUE(client);
  // The workers reconnect by themselves and finish the job.
  CollectAll(*client, want, Same);
  for (auto& w : workers) EXPECT_TRUE(w->Running());
}

TEST_F(ReliabilityTest, AJournalWithATornTailIsRecoveredUpToItsLastWholeRecord) {
  int port = 0;
  std::map<uint64_t, int64_t> want;
  {
    auto master = StartMaster({"--serve", "--data-dir", dir_}, &port);
    ASSERT_NE(port, 0);
    auto client = Connect(port);
    ASSERT_TRUE(client);
    want = PutTasks(*client, "square", 100, [](int i) { return i; });
    master->Signal(SIGKILL);
    ASSERT_TRUE(master->Wait(kQuick));
  }
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().extension() == ".tqj") segments.push_back(e.path());
  std::sort(segments.begin(), segments.end());
  ASSERT_FALSE(segments.empty());
  {
    // The first 17 bytes of a record, as a crash in the middle of a write
    // leaves them.
    std::string record;
    AppendFrame(&record, fs::file_size(segments.back()), std::string(200, 'x'));
    std::ofstream f(segments.back(), std::ios::binary | std::ios::app);
    f.write(record.data(), 17);
  }
  auto master = StartMaster({"--serve", "--data-dir", dir_}, &port);
  EXPECT_TRUE(master->WaitForLine("cut off 17 bytes", kQuick, /*from_err=*/true)) << master->err();
  auto worker = StartWorker(port, {"--quiet"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  CollectAll(*client, want, Square);
}

TEST_F(ReliabilityTest, WorkersCarryOnWithAMasterRestartedWithoutDataDir) {
  int port = ReservePort();  // the second master comes back on it: see ReservePort
  auto first = StartMaster({"--serve", "--port", std::to_string(port)}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "steady"});
  {
    auto client = Connect(port);
    ASSERT_TRUE(client);
    ASSERT_TRUE(client->GetQueue("tasks").Put("square", Value::Int(2)).ok());
    ASSERT_TRUE(client->GetQueue("results").Get(kQuick).ok());
  }
  first->Signal(SIGKILL);
  ASSERT_TRUE(first->Wait(kQuick));
  // The tutorial's master, on the same port: the running worker takes its tasks.
  auto second = StartMaster({"--square", "5", "--port", std::to_string(port)}, &port);
  EXPECT_EQ(second->Wait(kSlow), kExitOk) << second->out() << second->err();
  EXPECT_EQ(second->CountLines(R"(^Result: \d+ \* \d+ = \d+  \(worker \S+\)$)"), 5);
  EXPECT_EQ(worker->Wait(kQuick), kExitOk) << worker->out() << worker->err();
}

TEST_F(ReliabilityTest, ABusyWorkerStoppedBySigtermFinishesItsTasksAndLosesNone) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto busy = StartWorker(port, {"-j", "2", "--name", "busy"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  auto want = PutTasks(*client, "sleep", 6, [](int i) { return 400 + i; });
  // It holds 4: 2 running, 2 waiting for a thread.
  ASSERT_TRUE(WaitUntil([&] { return busy->CountLines("run task sleep") == 2; })) << busy->out();
  busy->Signal(SIGTERM);
  EXPECT_EQ(busy->Wait(kQuick), kExitOk) << busy->out() << busy->err();
  EXPECT_TRUE(busy->WaitForLine(R"(stopping: finishing 2 running task)", milliseconds(0)))
      << busy->out();
  EXPECT_EQ(busy->CountLines("run task sleep"), 2) << "the 2 it had not started went back at once";
  auto next = StartWorker(port, {"-j", "4", "--name", "next"});
  std::set<uint64_t> seen;
  while (seen.size() < want.size()) {
    Result<std::vector<Item>> got = client->Get("results", 100, kSlow);
    ASSERT_TRUE(got.ok()) << got.status().message();
    for (const Item& r : *got) {
      EXPECT_TRUE(seen.insert(r.id).second);
      ASSERT_TRUE(r.outcome->ok) << r.outcome->error;
      // Handed back unstarted: the first run of those is their first attempt.
      if (r.outcome->worker == "next") {
        EXPECT_EQ(r.attempt, 1u) << "task " << r.id;
      }
    }
  }
}

TEST_F(ReliabilityTest, TasksThatAlwaysFailEndInFailedWhileTheOthersFinish) {
  int port = 0;
  auto master = StartMaster({"--serve", "--max-attempts", "2", "--task-timeout", "0.3"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"-j", "4"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> tasks = {{"square", Value::Int(3), {}},
                                 {"square", Value::Str("three"), {}},  // bad input: fails at once
                                 {"sleep", Value::Int(5000), {}},      // always past its time limit
                                 {"square", Value::Int(4), {}}};
  Result<IdRange> ids = client->Put("tasks", tasks);
  ASSERT_TRUE(ids.ok());
  std::map<uint64_t, TaskOutcome> outcomes;
  while (outcomes.size() < 4) {
    Result<std::vector<Item>> got = client->Get("results", 10, kSlow);
    ASSERT_TRUE(got.ok()) << got.status().message();
    for (const Item& r : *got) outcomes[r.id] = *r.outcome;
  }
  EXPECT_TRUE(outcomes[ids->first].ok);
  EXPECT_FALSE(outcomes[ids->first + 1].ok);
  EXPECT_NE(outcomes[ids->first + 1].error.find("square needs an integer"), std::string::npos);
  EXPECT_FALSE(outcomes[ids->first + 2].ok);
  EXPECT_NE(outcomes[ids->first + 2].error.find("time limit"), std::string::npos)
      << outcomes[ids->first + 2].error;
  EXPECT_TRUE(outcomes[ids->first + 3].ok);
  EXPECT_EQ(QueueInfo(*client, "tasks").failed, 2u);
  Result<std::vector<Item>> records = client->Get("failed", 10, kQuick);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 2u);
}

TEST_F(ReliabilityTest, AFullQueueSaysFullAfterTheTimeoutAndTheMasterStaysFlat) {
  int port = 0;
  auto master = StartMaster({"--serve", "--max-queue", "100"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> hundred(100, TaskSpec{"square", Value::Int(1), {}});
  ASSERT_TRUE(client->Put("tasks", hundred).ok());
  std::vector<TaskSpec> one(1, TaskSpec{"square", Value::Int(1), {}});
  const auto start = std::chrono::steady_clock::now();
  Result<IdRange> full = client->Put("tasks", one, "results", milliseconds(300));
  EXPECT_EQ(full.status().code(), Code::kFull) << full.status().message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  // A producer that keeps trying does not grow the master.
  auto rss = [&] {
    std::ifstream f("/proc/" + std::to_string(master->pid()) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  std::vector<TaskSpec> batch(1000, TaskSpec{"square", Value::Str(std::string(1000, 'x')), {}});
  const long before = rss();
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(client->Put("tasks", batch).status().code(), Code::kInvalid);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(client->Put("tasks", one).status().code(), Code::kFull);
  EXPECT_LT(rss() - before, 20 * 1024) << "kB of growth";  // 200 MB were offered
  EXPECT_EQ(QueueInfo(*client, "tasks").ready, 100u);
}

TEST_F(ReliabilityTest, AWorkerStartedBeforeItsMasterWaitsAndThenWorks) {
  // Reserved, not a port 0 gave a master now gone: while the worker retries,
  // nothing else can listen there, and the worker cannot connect to itself.
  int port = ReservePort();
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port);
  ASSERT_TRUE(
      worker->WaitForLine("waiting for the master at 127.0.0.1:" + std::to_string(port), kQuick))
      << worker->out();
  auto master = StartMaster({"--square", "3", "--port", std::to_string(port)}, &port);
  EXPECT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(worker->Wait(kQuick), kExitOk);
}

TEST_F(ReliabilityTest, TheMasterReportsItsStateOnRequest) {
  int port = 0;
  auto master = StartMaster({"--serve", "--status-every", "0.2"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "reporter", "-j", "1"});
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->GetQueue("tasks").Put("square", Value::Int(5)).ok());
  ASSERT_TRUE(client->GetQueue("results").Get(kQuick).ok());
  EXPECT_TRUE(master->WaitForLine(R"(status: .*1 worker\(s\); accepted 1)", kQuick, true))
      << master->err();
  master->Signal(SIGUSR1);
  EXPECT_TRUE(
      master->WaitForLine(R"(reporter: 0 in flight \(runs 1 at once\), 1 done)", kQuick, true))
      << master->err();
  master->Signal(SIGTERM);
  EXPECT_EQ(master->Wait(kQuick), kExitOk);
  EXPECT_EQ(worker->Wait(kQuick), kExitOk);
}

TEST_F(ReliabilityTest, TheJournalStaysAsSmallAsTheLiveData) {
  int port = 0;
  auto master = StartMaster({"--serve", "--data-dir", dir_, "--journal-segment-mb", "1"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  // Live from the start to the end: compaction must carry them along.
  std::vector<TaskSpec> keep(50, TaskSpec{"keep", Value::Str(std::string(200, 'x')), {}});
  ASSERT_TRUE(client->Put("kept", keep).ok());
  const std::string kb(1000, 'k');
  for (int round = 0; round < 20; ++round) {  // 20 MB of tasks through the master
    std::vector<TaskSpec> big(1000, TaskSpec{"blob", Value::Str(kb), {}});
    ASSERT_TRUE(client->Put("bulk", big).ok());           // 1 MB nobody works on...
    ASSERT_TRUE(client->Get("bulk", 1000, kQuick).ok());  // ...taken right back
  }
  uint64_t bytes = 0;
  ASSERT_TRUE(WaitUntil([&] { return (bytes = JournalBytes(dir_)) < 4u << 20; }))
      << bytes << " bytes on disk after 20 MB passed through";
  client.reset();
  master->Signal(SIGKILL);
  ASSERT_TRUE(master->Wait(kQuick));
  auto again = StartMaster({"--serve", "--data-dir", dir_}, &port);
  EXPECT_TRUE(again->WaitForLine(R"(Recovered .*: 50 task\(s\) waiting, 0 outcome)", kQuick))
      << again->out();
  client = Connect(port);
  ASSERT_TRUE(client);
  Result<std::vector<Item>> kept = client->Get("kept", 100, kQuick);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 50u);
}

}  // namespace
}  // namespace taskq::testing
