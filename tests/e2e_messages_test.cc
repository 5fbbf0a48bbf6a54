// What the binaries say when something is wrong, and the exit code they
// give: each test runs the real binary on a mistake a new user makes and
// checks the code and the key words of the sentence (README.md, "Exit
// codes"). Also: stdout stays pure JSON when it carries JSON, and the
// tutorial waits for its workers and spreads its tasks over them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "client/endpoint.h"
#include "client/exit_codes.h"
#include "master/job_report.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

// README.md is read from the source tree.
#ifndef TASKQ_SOURCE_DIR
#error "TASKQ_SOURCE_DIR must name the source tree"
#endif

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;

class MessagesTest : public E2eTest {
 protected:
  void SetUp() override { dir_ = MakeTempDir("taskq-messages"); }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string dir_;

  // Runs task_master ARGS (key from the environment, any free port) to its end.
  int Master(std::vector<std::string> args, std::string* out, std::string* err) {
    std::vector<std::string> argv = {MasterBin(), "--bind", "127.0.0.1", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToEnd(argv, out, err, {"TASKQ_AUTHKEY=" + key_});
  }
  int Worker(std::vector<std::string> args, std::string* out, std::string* err) {
    std::vector<std::string> argv = {WorkerBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunToEnd(argv, out, err, {"TASKQ_AUTHKEY=" + key_});
  }
  fs::path Write(const std::string& name, const std::string& text) {
    const fs::path p = fs::path(dir_) / name;
    std::ofstream(p) << text;
    return p;
  }
};

#define EXPECT_SAYS(text, words)                                                             \
  EXPECT_NE((text).find(words), std::string::npos) << "expected \"" << (words) << "\" in:\n" \
                                                   << (text)

// --- task_master: inputs checked before it listens ---------------------------

TEST_F(MessagesTest, ATaskListThatIsADirectoryIsAnErrorNamingIt) {
  const fs::path dir = fs::path(dir_) / "adir";
  fs::create_directory(dir);
  std::string out, err;
  EXPECT_EQ(Master({"--tasks", dir.string()}, &out, &err), kExitUsage) << out << err;
  EXPECT_SAYS(err, dir.string() + " is a directory");
  EXPECT_EQ(out.find("listening"), std::string::npos) << "checked before listening:\n" << out;
}

TEST_F(MessagesTest, AMissingTaskListGivesTheReasonBeforeTheBanner) {
  std::string out, err;
  EXPECT_EQ(Master({"--tasks", "nope.txt"}, &out, &err), kExitUsage) << out << err;
  EXPECT_SAYS(err, "cannot read nope.txt: No such file or directory");
  EXPECT_EQ(out, "");
}

TEST_F(MessagesTest, AResultsFileThatCannotBeWrittenIsToldBeforeTheBanner) {
  const fs::path list = Write("t.txt", "square 2\n");
  std::string out, err;
  EXPECT_EQ(Master({"--tasks", list.string(), "--results", "/nonexistent/dir/r.jsonl"}, &out, &err),
            kExitUsage);
  EXPECT_SAYS(err, "/nonexistent/dir/r.jsonl");
  EXPECT_SAYS(err, "No such file or directory");
  EXPECT_EQ(out, "");
}

TEST_F(MessagesTest, ATimeoutOfZeroSaysWhatIsExpected) {
  std::string out, err;
  EXPECT_EQ(Master({"--timeout", "0"}, &out, &err), kExitUsage);
  EXPECT_SAYS(err, "--timeout: must be > 0 seconds");
  EXPECT_LT(err.size(), 200u) << err;
}

TEST_F(MessagesTest, DownloadTakesUrlsAsWellAsFiles) {
  std::string out, err;
  // No worker: the job gives up after its --timeout, having put both URLs.
  EXPECT_EQ(Master({"--download", "http://127.0.0.1:1/a.bin", "http://127.0.0.1:1/b.bin",
                    "--timeout", "0.3"},
                   &out, &err),
            kExitTimeout)
      << out << err;
  EXPECT_EQ(err.find("cannot read"), std::string::npos) << err;
  EXPECT_SAYS(err, "0 of 2 received");
}

TEST_F(MessagesTest, ABuiltInTaskWithoutItsArgumentIsABadLineWithItsNumber) {
  const fs::path list = Write("t.txt", "square 3\nsquare\n");
  int port = 0;
  auto master = StartMaster({"--tasks", list.string(), "--workers", "1"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitUsage) << master->out() << master->err();
  EXPECT_SAYS(master->err(), "t.txt:2: a square task needs an argument");
  EXPECT_SAYS(master->out(), "Result: 3 * 3 = 9");
}

TEST_F(MessagesTest, FailedTasksWinOverBadLinesAndAreListedOnce) {
  const fs::path list = Write("t.txt", "square \"x\"\nsquare\n");
  int port = 0;
  auto master = StartMaster({"--tasks", list.string(), "--workers", "1"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"-q"});
  ASSERT_EQ(master->Wait(kSlow), kExitTasksFailed) << master->out() << master->err();
  // Once on stdout (the Result: line), once in the list at the end: not in the log too.
  EXPECT_EQ(master->CountLines(R"(^Result: task 1 \(square .*\) failed)"), 1) << master->out();
  EXPECT_EQ(master->err().find("failed after"), std::string::npos) << master->err();
  EXPECT_SAYS(master->err(), "1 of 1 task(s) failed");
}

// --- task_worker: --server ------------------------------------------------------

TEST_F(MessagesTest, AWorkerSaysWhenItsServerNameDoesNotResolve) {
  std::string out, err;
  EXPECT_EQ(Worker({"--server", "no-such-host.invalid"}, &out, &err), kExitUsage) << out << err;
  EXPECT_SAYS(err, "cannot resolve no-such-host.invalid");
}

TEST_F(MessagesTest, AWorkerRefusesOtherSchemesAndBadHostsWithASentence) {
  std::string out, err;
  EXPECT_EQ(Worker({"--server", "http://127.0.0.1:5000"}, &out, &err), kExitUsage);
  EXPECT_SAYS(err, "tcp://HOST:PORT");
  EXPECT_EQ(Worker({"--server", "bad host!"}, &out, &err), kExitUsage);
  EXPECT_SAYS(err, "a host name has only letters, digits");
}

TEST_F(MessagesTest, AWorkerTakesTcpUrlsAsPythonClientsWriteThem) {
  int port = 0;
  auto master = StartMaster({"--square", "2", "--workers", "1"}, &port);
  ASSERT_NE(port, 0);
  std::vector<std::string> argv = {WorkerBin(), "--server",
                                   "tcp://127.0.0.1:" + std::to_string(port)};
  auto worker = Process::Start(argv, {"TASKQ_AUTHKEY=" + key_});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(worker->Wait(kQuick), kExitOk) << worker->err();
}

// A TCP server on 127.0.0.1 that is not a taskq master: it answers every
// connection with reply (nothing: it closes at once) and closes.
class FakeServer {
 public:
  explicit FakeServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) break;
        if (!reply_.empty()) {
          char buf[64];
          (void)recv(c, buf, sizeof buf, 0);
          (void)send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        }
        close(c);
      }
    });
  }
  ~FakeServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  std::string reply_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(MessagesTest, AWorkerSaysWhenThePortIsNotATaskqMaster) {
  for (const std::string reply : {"HTTP/1.0 400 Bad Request\r\n\r\n", ""}) {
    FakeServer web(reply);
    ASSERT_NE(web.port(), 0);
    std::string out, err;
    EXPECT_EQ(Worker({"--server", "127.0.0.1:" + std::to_string(web.port())}, &out, &err),
              kExitUsage)
        << out << err;
    EXPECT_SAYS(err, "is not a taskq master (the handshake failed at the protocol level");
    EXPECT_EQ(err.find("authkey"), std::string::npos) << err;
    if (!reply.empty()) {
      EXPECT_SAYS(err, "HTTP/1.0 400");
    }
  }
}

// A real web server (Python's, as tests/http_fixture.py runs it) waits for a
// request line and says nothing to a ZeroMQ greeting; libzmq waits on it for
// ever. The worker must still tell the user, and not hang.
TEST_F(MessagesTest, AWorkerSaysWhenThePortIsARealWebServer) {
  std::string base;
  auto web = StartWebFixture(&base);
  ASSERT_TRUE(web);
  const std::string host_port = base.substr(std::string("http://").size());
  std::string out, err;
  EXPECT_EQ(Worker({"--server", host_port, "--connect-timeout", "25"}, &out, &err),
            kExitUsage)
      << out << err;
  // (It answers the nudge as HTTP/0.9: a page with no status line.)
  EXPECT_SAYS(err, "is not a taskq master (the handshake failed at the protocol level: it does "
                   "not speak ZeroMQ, it said '<!DOCTYPE");
}

TEST_F(MessagesTest, AWrongKeyIsStillAnAuthenticationFailure) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {}, "another-key");
  EXPECT_EQ(worker->Wait(kSlow), kExitAuthFailed) << worker->err();
  EXPECT_SAYS(worker->err(), "authentication failed: the authkey does not match");
}

// --- stdout carries only JSON when it carries JSON -----------------------------

void ExpectOnlyJsonLines(const std::string& out, int at_least) {
  std::istringstream in(out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_TRUE(!line.empty() && line.front() == '{' && line.back() == '}')
        << "not a JSON line on stdout: " << line;
  }
  EXPECT_GE(n, at_least) << out;
}

TEST_F(MessagesTest, JsonAndResultsToStdoutLeaveStdoutPureJson) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--json"}, std::vector<std::string>{"--results", "-"},
        std::vector<std::string>{"--json", "--results", "-"}}) {
    std::vector<std::string> args = {"--square", "5", "--workers", "1"};
    args.insert(args.end(), flags.begin(), flags.end());
    int port = 0;
    auto master = StartMaster(args, &port);
    ASSERT_NE(port, 0);
    auto worker = StartWorker(port, {"-q"});
    ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
    ExpectOnlyJsonLines(master->out(), flags.size() == 1 && flags[0] == "--json" ? 1 : 5);
    EXPECT_SAYS(master->err(), "master exit.");
    if (flags[0] == "--results") {
      EXPECT_SAYS(master->err(), "Result: ");
    }
  }
}

// --- Ctrl-C says what it interrupted ----------------------------------------------

TEST_F(MessagesTest, InterruptedWhileWaitingForWorkersSaysHowManyCame) {
  int port = 0;
  auto master = StartMaster({"--workers", "3"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "first"});
  ASSERT_TRUE(master->WaitForLine("^Workers connected: 1 of 3$", kQuick)) << master->out();
  master->Signal(SIGINT);
  EXPECT_EQ(master->Wait(kQuick), kExitInterrupted);
  EXPECT_SAYS(master->err(), "interrupted while waiting for workers (1 of 3 connected)");
}

TEST_F(MessagesTest, AnInterruptedDataDirJobSaysHowToResume) {
  const fs::path list = Write("t.txt", "square 2\n");
  int port = 0;
  auto master = StartMaster({"--tasks", list.string(), "--workers", "1", "--data-dir",
                             (fs::path(dir_) / "state").string()},
                            &port);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(master->WaitForLine("Waiting for 1 worker", kQuick));
  master->Signal(SIGINT);
  EXPECT_EQ(master->Wait(kQuick), kExitInterrupted);
  EXPECT_SAYS(master->err(), "run the same command to resume");
}

// --- the tutorial, as a teacher runs it -----------------------------------------

TEST_F(MessagesTest, TheTutorialWaitsForItsFirstWorkerAndSaysSoOnce) {
  int port = 0;
  auto master = StartMaster({}, &port);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(master->WaitForLine("^Waiting for a worker: task_worker --server", kQuick));
  auto worker = StartWorker(port, {"--name", "late"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(master->CountLines("^Waiting for a worker"), 1);
  EXPECT_EQ(master->CountLines(R"(^Result: \d+ \* \d+ = \d+  \(worker late\)$)"), 10)
      << master->out();
  EXPECT_EQ(
      master->CountLines(R"(^Waited .* for workers; the time below runs from the first task)"), 1)
      << master->out();
}

TEST_F(MessagesTest, AnExplicitTimeoutBoundsTheWaitForAFirstWorker) {
  std::string out, err;
  EXPECT_EQ(Master({"--square", "3", "--timeout", "0.3"}, &out, &err), kExitTimeout);
  EXPECT_SAYS(err, "no worker is connected");
}

TEST_F(MessagesTest, TheTutorialSpreadsItsTasksOverWorkersStartedBeforeIt) {
  const int port = ReservePort();
  ASSERT_NE(port, 0);
  auto w1 = StartWorker(port, {"--name", "w1"});
  auto w2 = StartWorker(port, {"--name", "w2"});
  for (auto* w : {w1.get(), w2.get()})
    ASSERT_TRUE(w->WaitForLine("waiting for the master", kQuick)) << w->out() << w->err();
  int got = 0;
  auto master = StartMaster({"--port", std::to_string(port)}, &got);
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_GT(master->CountLines(R"(\(worker w1\)$)"), 0) << master->out();
  EXPECT_GT(master->CountLines(R"(\(worker w2\)$)"), 0) << master->out();
}

// --- one table of exit codes -------------------------------------------------------

// README.md's "Exit codes" table: code -> (task_master cell, task_worker cell).
std::map<int, std::pair<std::string, std::string>> ReadmeExitCodes() {
  std::ifstream in(std::string(TASKQ_SOURCE_DIR) + "/README.md");
  std::map<int, std::pair<std::string, std::string>> rows;
  std::string line;
  bool in_table = false;
  static const std::regex row(R"(^\| (\d+) \| ([^|]*)\| ([^|]*)\|$)");
  while (std::getline(in, line)) {
    if (line == "### Exit codes") in_table = true;
    if (!in_table) continue;
    std::smatch m;
    if (std::regex_match(line, m, row)) rows[std::stoi(m[1])] = {m[2], m[3]};
    if (!rows.empty() && line.empty()) break;
  }
  return rows;
}

TEST_F(MessagesTest, HelpAndReadmeSayWhatTheExitCodeTableSays) {
  const auto readme = ReadmeExitCodes();
  ASSERT_EQ(readme.size(), std::size(kExitCodes)) << "rows in README.md's Exit codes table";
  for (const ExitCode& e : kExitCodes) {
    ASSERT_TRUE(readme.count(e.code)) << "README.md has no row for exit code " << e.code;
    const auto& [master, worker] = readme.at(e.code);
    EXPECT_EQ(master.rfind(e.master, 0), 0u)
        << e.code << ": README says '" << master << "', the table '" << e.master << "'";
    EXPECT_EQ(worker.rfind(e.worker, 0), 0u)
        << e.code << ": README says '" << worker << "', the table '" << e.worker << "'";
    if (*e.master == '\0') {
      EXPECT_EQ(master, "");
    }
    if (*e.worker == '\0') {
      EXPECT_EQ(worker, "");
    }
  }
  std::string out, err;
  ASSERT_EQ(RunToEnd({MasterBin(), "--help"}, &out, &err), kExitOk);
  EXPECT_SAYS(out, ExitCodesHelp(/*master=*/true));
  ASSERT_EQ(RunToEnd({WorkerBin(), "--help"}, &out, &err), kExitOk);
  EXPECT_SAYS(out, ExitCodesHelp(/*master=*/false));
}

// --- --server, parsed ---------------------------------------------------------------

TEST(ServerAddressTest, TakesTheFormsUsersWriteAndExplainsTheRest) {
  for (const char* text : {"tcp://127.0.0.1:5001", "127.0.0.1:5001", "tcp://127.0.0.1:5001/"}) {
    Result<ServerAddress> a = ParseServerAddress(text, 5000);
    ASSERT_TRUE(a.ok()) << text << ": " << a.status().message();
    EXPECT_EQ(a->TcpEndpoint(), "tcp://127.0.0.1:5001") << text;
  }
  Result<ServerAddress> v6 = ParseServerAddress("tcp://[::1]", 5000);
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->TcpEndpoint(), "tcp://[::1]:5000");
  for (const char* text : {"http://h:1", "tcp://", "bad host!", "h:0", "a:b:c"}) {
    Result<ServerAddress> a = ParseServerAddress(text, 5000);
    ASSERT_FALSE(a.ok()) << text;
    EXPECT_SAYS(a.status().message(), std::string("'") + text + "'");
  }
}

// --- the progress line and the log ---------------------------------------------------

TEST(StatusLineTest, ALogLineClearsTheProgressLineAndRedrawsIt) {
  std::ostringstream err;
  StatusLine line(err, /*tty=*/true);
  line.Show("3/10 done");
  line.Log("task_master: worker w joined\n");
  EXPECT_EQ(err.str(), "\r\033[K3/10 done\r\033[Ktask_master: worker w joined\n3/10 done");
  line.Clear();
  err.str("");
  line.Log("x\n");
  EXPECT_EQ(err.str(), "x\n");
}

}  // namespace
}  // namespace taskq::testing
