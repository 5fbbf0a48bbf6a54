// A worker given several masters (task_worker --server A,B): it works for
// the first that answers, and moves to the next when its master goes away.
// Real binaries on 127.0.0.1.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "client/exit_codes.h"
#include "tests/e2e_util.h"

namespace taskq::testing {
namespace {

std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

class FailoverTest : public E2eTest {
 protected:
  // task_worker --server 127.0.0.1:A,127.0.0.1:B,... -j 2.
  std::unique_ptr<Process> StartWorkerFor(const std::vector<int>& ports) {
    std::string list;
    for (int p : ports) list += (list.empty() ? "" : ",") + Address(p);
    auto w = Process::Start({WorkerBin(), "--server", list, "-j", "2"}, Env());
    EXPECT_TRUE(w) << "cannot start the worker";
    return w;
  }
  // A master serving its queues, with heartbeats of 0.2 s: a worker takes
  // it for gone 1.1 s after its last word (3 heartbeats and 0.5 s).
  std::unique_ptr<Process> StartServing(int* port) {
    return StartMaster({"--serve", "--heartbeat", "0.2"}, port);
  }
  // Puts squares of 1..n on the master at port and waits for their n
  // outcomes, each once.
  void SquaresComplete(int port, int n) {
    auto client = Connect(port);
    ASSERT_TRUE(client);
    std::vector<TaskSpec> tasks;
    for (int i = 1; i <= n; ++i) tasks.push_back(TaskSpec{"square", Value::Int(i), {}});
    Result<IdRange> ids = client->Put("tasks", tasks);
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    std::set<uint64_t> seen;
    while (seen.size() < static_cast<std::size_t>(n)) {
      Result<std::vector<Item>> got = client->Get("results", 100, kQuick);
      ASSERT_TRUE(got.ok()) << got.status().message() << " with " << seen.size() << " of " << n;
      for (const Item& r : *got) {
        ASSERT_TRUE(r.outcome && r.outcome->ok) << "task " << r.id;
        const int64_t i = static_cast<int64_t>(r.id - ids->first) + 1;
        EXPECT_EQ(r.outcome->value.AsInt(), i * i) << "task " << r.id;
        EXPECT_TRUE(seen.insert(r.id).second) << "a second outcome for task " << r.id;
      }
    }
  }
};

TEST_F(FailoverTest, AWorkerPassesAMasterThatIsNotThereAndWorksForTheNext) {
  const int nobody = ReservePort();  // connections to it are refused
  int b = 0;
  auto master_b = StartServing(&b);
  ASSERT_NE(b, 0);
  auto worker = StartWorkerFor({nobody, b});
  SquaresComplete(b, 5);
  EXPECT_TRUE(worker->Running()) << worker->err();
  EXPECT_EQ(worker->CountLines("waiting for"), 0) << "B answered in the first round:\n"
                                                  << worker->out();
}

// A port that takes the connection and says nothing (a listening socket
// nobody reads) costs the worker one try of MasterList::kStartTry, and it
// says so, naming the master it tries next.
TEST_F(FailoverTest, AWorkerSaysWhyItPassesAPortThatSaysNothing) {
  int fd = -1;
  const int silent = ReserveLoopbackPort(&fd);
  ASSERT_NE(silent, 0);
  ASSERT_EQ(listen(fd, 16), 0);
  int b = 0;
  auto master_b = StartServing(&b);
  ASSERT_NE(b, 0);
  auto worker = StartWorkerFor({silent, b});
  EXPECT_TRUE(worker->WaitForLine("^no welcome from " + Address(silent) +
                                      R"( within 3\.5 s \(not a taskq master, or one too busy )"
                                      R"(to answer\); trying )" +
                                      Address(b) + R"(\.\.\.$)",
                                  kQuick))
      << worker->out();
  SquaresComplete(b, 5);
  EXPECT_TRUE(worker->Running()) << worker->err();
  close(fd);
}

// Ctrl-C while no master answers (the one lost, the next not there): the
// get waiting for a welcome is dropped, so the worker stops at once, not
// at the end of --grace (30 s).
TEST_F(FailoverTest, AWorkerWithNoMasterLeftStopsAtOnceOnCtrlC) {
  int a = 0;
  auto master_a = StartServing(&a);
  ASSERT_NE(a, 0);
  const int nobody = ReservePort();
  auto worker = StartWorkerFor({a, nobody});
  SquaresComplete(a, 3);  // welcomed by A, its get parked there
  // No result of its own left to keep: A holds a result's ack back at most
  // 50 ms (lazy_ack, PROTOCOL.md 5.8), so once the worker has been silent
  // for 100 ms, every ack has left.
  auto client = Connect(a);
  ASSERT_TRUE(client);
  bool acked = false;
  for (auto until = std::chrono::steady_clock::now() + kQuick;
       !acked && std::chrono::steady_clock::now() < until;) {
    Result<StatsOk> st = client->Stats();
    ASSERT_TRUE(st.ok()) << st.status().message();
    for (const WorkerStats& w : st->workers) acked |= w.done == 3 && w.idle_ms >= 100;
  }
  ASSERT_TRUE(acked);
  client.reset();
  master_a->Signal(SIGKILL);
  master_a->Wait(kQuick);
  ASSERT_TRUE(worker->WaitForLine("^Lost contact with the master at " + Address(a), kQuick))
      << worker->out();
  const auto asked = std::chrono::steady_clock::now();
  worker->Signal(SIGINT);
  EXPECT_EQ(worker->Wait(kQuick), kExitOk) << worker->out() << worker->err();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(5)) << worker->out();
}

TEST_F(FailoverTest, AListWithAnEmptyOrRepeatedMasterIsAUsageError) {
  std::string err;
  EXPECT_EQ(RunToEnd({WorkerBin(), "--server", "127.0.0.1,,127.0.0.1:1"}, nullptr, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("'127.0.0.1,,127.0.0.1:1': master 2 is empty"), std::string::npos) << err;
  EXPECT_EQ(RunToEnd({WorkerBin(), "--server", "127.0.0.1:1,127.0.0.1:1"}, nullptr, &err, Env()),
            kExitUsage);
  EXPECT_NE(err.find("it names 127.0.0.1:1 twice"), std::string::npos) << err;
}

TEST_F(FailoverTest, AWorkerWhoseMasterIsKilledMovesToTheNextAndSaysSo) {
  int a = 0, b = 0;
  auto master_a = StartServing(&a);
  auto master_b = StartServing(&b);
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto worker = StartWorkerFor({a, b});
  SquaresComplete(a, 3);  // it works for A, the first
  // A sleep task of A's running when A dies: its result is not B's.
  auto client_a = Connect(a);
  ASSERT_TRUE(client_a);
  ASSERT_TRUE(client_a->Put("tasks", {TaskSpec{"sleep", Value::Int(1500), {}}}).ok());
  ASSERT_TRUE(worker->WaitForLine("run task sleep", kQuick)) << worker->out();
  client_a.reset();
  master_a->Signal(SIGKILL);
  ASSERT_TRUE(master_a->Wait(kQuick));
  SquaresComplete(b, 3);
  const std::string moved = "Lost the master at " + Address(a) + "; now working for " + Address(b);
  EXPECT_TRUE(worker->WaitForLine(moved, kQuick)) << worker->out();
  EXPECT_TRUE(worker->WaitForLine(
      "Dropped 1 result\\(s\\) for tasks of the master at " + Address(a), kQuick))
      << worker->out();
  auto client_b = Connect(b);
  ASSERT_TRUE(client_b);
  Result<std::vector<Item>> extra = client_b->Get("results", 10, milliseconds(100));
  EXPECT_EQ(extra.status().code(), Code::kEmpty) << "B got nothing of A's";
  // Nor was it sent there: B counts no result it did not want.
  Result<StatsOk> st = client_b->Stats();
  ASSERT_TRUE(st.ok()) << st.status().message();
  for (const auto& [name, n] : st->counters) {
    if (name == "duplicates") {
      EXPECT_EQ(n, 0u) << "a result of A's task reached B";
    }
  }
}

}  // namespace
}  // namespace taskq::testing
