// Helpers for end-to-end tests: the real task_master and task_worker
// binaries on 127.0.0.1, ports chosen by the OS, every wait bounded.
#ifndef TASKQ_TESTS_E2E_UTIL_H_
#define TASKQ_TESTS_E2E_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "tests/process.h"

namespace taskq::testing {

// Deadlines for events that normally take milliseconds: generous, so a busy
// 2-core CI machine does not fail a test that is right.
inline constexpr milliseconds kQuick{10000};
inline constexpr milliseconds kSlow{30000};

class E2eTest : public ::testing::Test {
 protected:
  std::string key_ = "e2e-test-key";

  // task_master --bind 127.0.0.1 --port 0 ARGS (ARGS may name another port),
  // key from TASKQ_AUTHKEY; waits for its port.
  std::unique_ptr<Process> StartMaster(std::vector<std::string> args, int* port);
  // task_worker --server 127.0.0.1:PORT ARGS with key.
  std::unique_ptr<Process> StartWorker(int port, std::vector<std::string> args = {},
                                       const std::string& key = "");
  // A client of the API, connected to 127.0.0.1:PORT.
  std::unique_ptr<Client> Connect(int port, const std::string& key = "");
  // Runs a binary to its end and returns its exit code (and output).
  int RunToEnd(std::vector<std::string> argv, std::string* out = nullptr,
               std::string* err = nullptr, std::vector<std::string> env = {});
};

std::string MasterBin();
std::string WorkerBin();

}  // namespace taskq::testing

#endif  // TASKQ_TESTS_E2E_UTIL_H_
