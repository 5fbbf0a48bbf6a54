// The tutorial end to end, and the core guarantees around it, with the real
// binaries on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <zmq.hpp>

#include "client/exit_codes.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Every "Result: a * a = b" line of the master's output, checked.
int CorrectResults(const std::string& out) {
  // task_master names the worker; the example master prints the tutorial's line.
  static const std::regex line(R"(^Result: (\d+) \* (\d+) = (\d+)(?:  \(worker \S+\))?$)");
  std::istringstream in(out);
  std::string s;
  int ok = 0;
  while (std::getline(in, s)) {
    std::smatch m;
    if (!std::regex_match(s, m, line)) continue;
    const long long a = std::stoll(m[1]), b = std::stoll(m[2]), c = std::stoll(m[3]);
    EXPECT_EQ(a, b) << s;
    EXPECT_EQ(a * b, c) << s;
    ok += (a == b && a * b == c) ? 1 : 0;
  }
  return ok;
}

// Workers connected to the master (0 if it cannot say).
std::size_t ConnectedWorkers(Client& c) {
  Result<StatsOk> s = c.Stats();
  return s.ok() ? s->workers.size() : 0;
}

// Tasks waiting in the master's queue "tasks" (0 if it cannot say).
uint64_t ReadyTasks(Client& c) {
  Result<StatsOk> s = c.Stats();
  if (s.ok())
    for (const QueueStats& q : s->queues)
      if (q.name == "tasks") return q.ready;
  return 0;
}

TEST_F(E2eTest, TutorialWithTwoWorkers) {
  int port = 0;
  // --workers 2: the job starts once both are connected, so both get the
  // shutdown notice however late a busy machine starts the second.
  auto master = StartMaster({"--workers", "2"}, &port);
  ASSERT_NE(port, 0);
  // --delay, as the tutorial's time.sleep.
  auto w1 = StartWorker(port, {"--name", "w1", "--delay", "0.2"});
  auto w2 = StartWorker(port, {"--name", "w2", "--delay", "0.2"});

  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(master->CountLines(R"(^Put task \d+\.\.\.$)"), 10);
  EXPECT_EQ(master->CountLines(R"(^Try get results\.\.\.$)"), 1);
  EXPECT_EQ(CorrectResults(master->out()), 10) << master->out();
  EXPECT_EQ(master->CountLines(R"(^master exit\.$)"), 1);
  // The master told its workers to go: both leave on their own, with 0.
  for (auto* w : {w1.get(), w2.get()}) {
    ASSERT_EQ(w->Wait(kQuick), kExitOk) << w->out() << w->err();
    EXPECT_EQ(w->CountLines(R"(^Connect to server 127\.0\.0\.1:\d+\.\.\.$)"), 1);
    EXPECT_EQ(w->CountLines(R"(^worker exit\.$)"), 1);
  }
  EXPECT_EQ(w1->CountLines(R"(^run task \d+ \* \d+\.\.\.$)") +
                w2->CountLines(R"(^run task \d+ \* \d+\.\.\.$)"),
            10);
}

TEST_F(E2eTest, ThousandTasksOverFourWorkersEachIdOnce) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<Process>> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(StartWorker(port, {"--quiet", "-j", "2"}));
  auto client = Connect(port);
  ASSERT_TRUE(client);
  // All four in before the tasks: on a busy machine the first two can do
  // them all, and a worker that comes after the master stopped waits for
  // it instead of being told to leave.
  ASSERT_TRUE(WaitUntil([&] { return ConnectedWorkers(*client) == 4; }));

  std::mt19937 rng(7);
  std::vector<TaskSpec> tasks;
  std::map<uint64_t, int64_t> expected;  // id -> n
  for (int i = 0; i < 1000; ++i)
    tasks.push_back(TaskSpec{"square", Value::Int(rng() % 100000), {}});
  Result<IdRange> ids = client->Put("tasks", tasks);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  ASSERT_EQ(ids->count, 1000u);
  for (uint64_t i = 0; i < 1000; ++i) expected[ids->first + i] = *tasks[i].arg.AsInt();

  std::set<uint64_t> seen;
  while (seen.size() < 1000) {
    Result<std::vector<Item>> got = client->Get("results", 1000, kQuick);
    ASSERT_TRUE(got.ok()) << got.status().message() << " after " << seen.size() << " results";
    for (const Item& r : *got) {
      ASSERT_TRUE(expected.count(r.id)) << "unknown id " << r.id;
      EXPECT_TRUE(seen.insert(r.id).second) << "id " << r.id << " twice";
      ASSERT_TRUE(r.outcome);
      ASSERT_TRUE(r.outcome->ok) << r.outcome->error;
      EXPECT_EQ(r.arg.AsInt(), expected[r.id]);
      EXPECT_EQ(r.outcome->value.AsInt(), expected[r.id] * expected[r.id]);
    }
  }
  // Nothing more: one result per task.
  Result<std::vector<Item>> extra = client->Get("results", 10, milliseconds(200));
  EXPECT_EQ(extra.status().code(), Code::kEmpty);

  client.reset();
  master->Signal(SIGINT);
  EXPECT_EQ(master->Wait(kQuick), kExitOk) << master->err();
  for (auto& w : workers) EXPECT_EQ(w->Wait(kQuick), kExitOk) << w->out() << w->err();
}

// --in-flight: never more than K tasks out, every task done once, the
// latency reported; a job larger than tutorial size gets totals, not a line
// per task, even though outcomes come back while it is still putting.
TEST_F(E2eTest, InFlightJobsReportLatencyAndStayQuietPerTask) {
  int port = 0;
  auto master = StartMaster({"--square", "3000", "--in-flight", "50", "--workers", "2"}, &port);
  ASSERT_NE(port, 0);
  auto w1 = StartWorker(port, {"--quiet"});
  auto w2 = StartWorker(port, {"--quiet"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(master->CountLines(R"(^Result: )"), 0) << master->out();
  EXPECT_EQ(master->CountLines(R"(^Done: 3000 of 3000 tasks in .*, 0 failed$)"), 1) << master->out();
  EXPECT_EQ(master->CountLines(R"(^Latency \(put -> result\): p50 \d+ us, p99 \d+ us$)"), 1)
      << master->out();
  EXPECT_EQ(w1->Wait(kQuick), kExitOk);
  EXPECT_EQ(w2->Wait(kQuick), kExitOk);

  // One at a time, tutorial size: a line per task, as without the flag.
  master = StartMaster({"--square", "5", "--in-flight", "1"}, &port);
  auto w3 = StartWorker(port, {"--quiet"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(CorrectResults(master->out()), 5) << master->out();
  EXPECT_EQ(master->CountLines(R"(^Try get results\.\.\.$)"), 1);
  EXPECT_EQ(w3->Wait(kQuick), kExitOk);
}

// task_master runs its job and the server loop on one thread (Server::Pump);
// with --serve, the loop gets a thread of its own once the job is over and
// keeps serving: the worker stays, a client's task is done, a SIGUSR1 report
// comes, and Ctrl-C ends it.
TEST_F(E2eTest, AJobThenServeKeepsServingOnItsOwn) {
  const std::string dir = MakeTempDir("taskq-serve");
  ASSERT_FALSE(dir.empty());
  {
    std::ofstream tasks(dir + "/tasks.txt");
    for (int i = 0; i < 5; ++i) tasks << "square " << i << "\n";
  }
  int port = 0;
  auto master = StartMaster({"--tasks", dir + "/tasks.txt", "--serve"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--quiet", "--name", "stayer", "-j", "1"});
  ASSERT_TRUE(master->WaitForLine("^Serving queues until Ctrl-C", kSlow)) << master->out();
  EXPECT_EQ(master->CountLines(R"(^Done: 5 of 5 tasks in .*, 0 failed$)"), 1) << master->out();
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->GetQueue("tasks").Put("square", Value::Int(7)).ok());
  Result<Item> r = client->GetQueue("results").Get(kQuick);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->outcome->value.AsInt(), 49);
  master->Signal(SIGUSR1);
  EXPECT_TRUE(
      master->WaitForLine(R"(stayer: 0 in flight \(runs 1 at once\), 6 done)", kQuick, true))
      << master->err();
  master->Signal(SIGINT);
  EXPECT_EQ(master->Wait(kQuick), kExitOk) << master->err();
  EXPECT_EQ(worker->Wait(kQuick), kExitOk) << worker->err();
  std::filesystem::remove_all(dir);
}

TEST_F(E2eTest, WrongAuthkeyIsRefusedQuicklyWhileGoodWorkersAreServed) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto good = StartWorker(port);

  const auto start = std::chrono::steady_clock::now();
  auto bad = StartWorker(port, {}, "not-the-key");
  ASSERT_EQ(bad->Wait(kQuick), kExitAuthFailed) << bad->out() << bad->err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_NE(
      bad->err().find("authentication failed: the authkey does not match the master at 127.0.0.1:" +
                      std::to_string(port)),
      std::string::npos)
      << bad->err();
  // The master said why, without the key, and kept serving.
  EXPECT_TRUE(master->WaitForLine("refused a connection from 127\\.0\\.0\\.1:\\d+", kQuick,
                                  /*from_err=*/true))
      << master->err();
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->GetQueue("tasks").Put("square", Value::Int(12)).ok());
  Result<Item> r = client->GetQueue("results").Get(kQuick);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->outcome->value.AsInt(), 144);
  for (const std::string& text : {master->out(), master->err(), bad->out(), bad->err()}) {
    EXPECT_EQ(text.find(key_), std::string::npos) << "the key was printed";
    EXPECT_EQ(text.find("not-the-key"), std::string::npos) << "the key was printed";
  }
}

// A raw TCP peer sending bytes that are not ZeroMQ at all.
void SendGarbage(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string junk = "GET / HTTP/1.0\r\n\r\n\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f garbage";
  for (int i = 0; i < 100; ++i) (void)!send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  close(fd);
}

TEST_F(E2eTest, GarbageAndUnencryptedPeersDoNotDisturbTheMaster) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  SendGarbage(port);
  {
    // A ZeroMQ peer without CURVE: refused in the handshake.
    zmq::context_t ctx;
    zmq::socket_t plain(ctx, zmq::socket_type::dealer);
    plain.set(zmq::sockopt::linger, 0);
    plain.connect("tcp://127.0.0.1:" + std::to_string(port));
    (void)plain.send(zmq::str_buffer("\x81\xa2op\xa5hello"), zmq::send_flags::dontwait);
    EXPECT_TRUE(
        master->WaitForLine("refused a connection from .*(does not encrypt|ZeroMQ)", kQuick, true))
        << master->err();
  }
  SendGarbage(port);
  auto worker = StartWorker(port);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->GetQueue("tasks").Put("square", Value::Int(3)).ok());
  Result<Item> r = client->GetQueue("results").Get(kQuick);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->outcome->value.AsInt(), 9);
  EXPECT_TRUE(master->Running());
}

TEST_F(E2eTest, GetOnAnEmptyQueueReportsEmptyAfterTheTimeout) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto client = Connect(port);
  ASSERT_TRUE(client);
  const auto start = std::chrono::steady_clock::now();
  Result<Item> r = client->GetQueue("nothing-here").Get(milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), Code::kEmpty) << r.status().message();
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(5000));
}

TEST_F(E2eTest, MasterReportsMissingResultsAfterItsTimeout) {
  int port = 0;
  auto master = StartMaster({"--square", "3", "--timeout", "0.5"}, &port);
  ASSERT_NE(port, 0);
  ASSERT_EQ(master->Wait(kQuick), kExitTimeout) << master->out() << master->err();
  EXPECT_NE(master->err().find("0 of 3 received"), std::string::npos) << master->err();
}

TEST_F(E2eTest, WorkerGivesUpWhenNoMasterAnswers) {
  // A port nothing listens on, nor can while the test runs (not one a
  // master that has gone had: another test's master could get it).
  const int port = ReservePort();
  ASSERT_NE(port, 0);
  std::string out, err;
  const int code = RunToEnd(
      {WorkerBin(), "--server", "127.0.0.1:" + std::to_string(port), "--connect-timeout", "0.5"},
      &out, &err, {"TASKQ_AUTHKEY=" + key_});
  EXPECT_EQ(code, kExitUnavailable) << out << err;
  EXPECT_NE(out.find("waiting for the master at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << out;
  EXPECT_NE(err.find("--connect-timeout"), std::string::npos) << err;
}

TEST_F(E2eTest, MasterOnAPortInUseSaysSo) {
  int port = 0;
  auto first = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::string out, err;
  const int code =
      RunToEnd({MasterBin(), "--bind", "127.0.0.1", "--port", std::to_string(port), "--serve"},
               &out, &err, {"TASKQ_AUTHKEY=" + key_});
  EXPECT_EQ(code, kExitUnavailable);
  EXPECT_NE(err.find("the port is in use"), std::string::npos) << err;
}

// examples/ is the tutorial written against the client API: it must keep
// working as the API changes.
TEST_F(E2eTest, TheExamplesRunTheTutorial) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  const std::string server = "127.0.0.1:" + std::to_string(port);
  auto example = Process::Start({TASKQ_EXAMPLE_MASTER_BIN, server}, {"TASKQ_AUTHKEY=" + key_});
  ASSERT_TRUE(example);
  // The worker leaves once the queue stays empty for a second: it starts
  // when the ten tasks are in, not while a busy machine is still starting
  // the example's master.
  auto client = Connect(port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitUntil([&] { return ReadyTasks(*client) == 10; })) << example->err();
  auto worker = Process::Start({TASKQ_EXAMPLE_WORKER_BIN, server}, {"TASKQ_AUTHKEY=" + key_});
  ASSERT_TRUE(worker);
  EXPECT_EQ(example->Wait(kSlow), 0) << example->out() << example->err();
  EXPECT_EQ(CorrectResults(example->out()), 10) << example->out();
  EXPECT_EQ(worker->Wait(kQuick), 0) << worker->out() << worker->err();
  EXPECT_EQ(worker->CountLines(R"(^run task \d+ \* \d+\.\.\.$)"), 10);
  // A program on the client API is named after itself, and runs a task at a time.
  EXPECT_NE(master->err().find("worker example_worker-" + std::to_string(worker->pid()) +
                               " joined (runs up to 1 at once)"),
            std::string::npos)
      << master->err();
}

TEST_F(E2eTest, CommandLinesExplainThemselves) {
  std::string out, err;
  for (const std::string& bin : {MasterBin(), WorkerBin()}) {
    EXPECT_EQ(RunToEnd({bin, "--help"}, &out, &err), 0);
    EXPECT_NE(out.find("Examples:"), std::string::npos) << out;
    EXPECT_NE(out.find("Exit codes:"), std::string::npos) << out;
    EXPECT_EQ(RunToEnd({bin, "--version"}, &out, &err), 0);
    EXPECT_NE(out.find(TASKQ_VERSION), std::string::npos) << out;
    EXPECT_EQ(RunToEnd({bin, "--no-such-flag"}, &out, &err), kExitUsage);
    EXPECT_NE(err.find("--no-such-flag"), std::string::npos) << err;
    EXPECT_EQ(err.find("terminate"), std::string::npos) << err;
    // No key anywhere: a sentence naming the three places to put one.
    EXPECT_EQ(RunToEnd({bin}, &out, &err, {"TASKQ_AUTHKEY="}), kExitUsage);
    EXPECT_NE(
        err.find("no authkey: pass --authkey KEY, set TASKQ_AUTHKEY, or use --authkey-file FILE"),
        std::string::npos)
        << err;
  }
  EXPECT_EQ(RunToEnd({WorkerBin(), "--server", "host:99999"}, &out, &err, {"TASKQ_AUTHKEY=x"}),
            kExitUsage);
  EXPECT_NE(err.find("invalid server address"), std::string::npos) << err;
}

}  // namespace
}  // namespace taskq::testing
