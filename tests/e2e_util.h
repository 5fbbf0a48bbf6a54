// Helpers for end-to-end tests: the real task_master and task_worker
// binaries on 127.0.0.1, ports chosen by the OS, every wait bounded.
#ifndef TASKQ_TESTS_E2E_UTIL_H_
#define TASKQ_TESTS_E2E_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/process.h"

namespace taskq::testing {

// Deadlines for events that normally take milliseconds: generous, so a busy
// 2-core CI machine does not fail a test that is right.
inline constexpr milliseconds kQuick{10000};
inline constexpr milliseconds kSlow{30000};

// Waits until cond() holds, asking every 20 ms; false if it still did not
// at the deadline. For state only a query shows (a counter, a file), where
// there is no line to wait for.
template <typename Cond>
bool WaitUntil(Cond cond, milliseconds deadline = kQuick) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

class E2eTest : public ::testing::Test {
 protected:
  ~E2eTest() override;

  std::string key_ = "e2e-test-key";

  // task_master --bind 127.0.0.1 --port 0 ARGS (ARGS may name another port),
  // key from TASKQ_AUTHKEY; waits for its port.
  std::unique_ptr<Process> StartMaster(std::vector<std::string> args, int* port);
  // task_worker --server 127.0.0.1:PORT ARGS with key.
  std::unique_ptr<Process> StartWorker(int port, std::vector<std::string> args = {},
                                       const std::string& key = "");
  // A client of the API, connected to 127.0.0.1:PORT.
  std::unique_ptr<Client> Connect(int port, const std::string& key = "");
  // taskq ARGS --server 127.0.0.1:PORT (no --server for port 0), and the
  // environment that gives it the test's key.
  std::vector<std::string> Taskq(std::vector<std::string> args, int port);
  std::vector<std::string> Env() { return {"TASKQ_AUTHKEY=" + key_}; }
  // Runs a binary to its end and returns its exit code (and output).
  int RunToEnd(std::vector<std::string> argv, std::string* out = nullptr,
               std::string* err = nullptr, std::vector<std::string> env = {});
  // A port of 127.0.0.1 that is this test's until it ends (0 and a failure
  // if none), for a master that must come back at the address its workers
  // know, or a worker that must find nobody there: ReserveLoopbackPort
  // (tests/process.h) says why nothing else can take it meanwhile.
  int ReservePort();

 private:
  std::vector<int> reserved_;  // sockets holding the ports of ReservePort
};

// An end-to-end test of downloads: a temporary dir (dir_, removed after),
// the workers' --out inside it (out_), and the local web server once
// StartWeb ran (web_, base_ its "http://127.0.0.1:PORT").
class WebE2eTest : public E2eTest {
 protected:
  explicit WebE2eTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override;
  void TearDown() override;
  void StartWeb();

  std::filesystem::path dir_, out_;
  std::unique_ptr<Process> web_;
  std::string base_;

 private:
  std::string prefix_;
};

std::string MasterBin();
std::string WorkerBin();

// Files and results lines, as tests read them.
std::string ReadFile(const std::filesystem::path& p);
std::vector<std::string> Lines(const std::filesystem::path& p);
std::string Sha256Hex(const std::string& bytes);
// A field of a JSON object, as text (JSON for a map; "" when absent).
std::string Field(const std::string& json, std::string_view key);
// The local web server's (tests/http_fixture.py) /data/SIZE/NAME body.
std::string FixtureData(const std::string& name, std::size_t size);
// tests/http_fixture.py on 127.0.0.1, on a port the OS picks: the process,
// with *base set to its "http://127.0.0.1:PORT"; null (and a test failure
// recorded) if it did not start.
std::unique_ptr<Process> StartWebFixture(std::string* base);

}  // namespace taskq::testing

#endif  // TASKQ_TESTS_E2E_UTIL_H_
