#include "tests/e2e_util.h"

#include <algorithm>

namespace taskq::testing {

std::string MasterBin() { return TASKQ_MASTER_BIN; }
std::string WorkerBin() { return TASKQ_WORKER_BIN; }

std::unique_ptr<Process> E2eTest::StartMaster(std::vector<std::string> args, int* port) {
  std::vector<std::string> argv = {MasterBin(), "--bind", "127.0.0.1"};
  if (std::find(args.begin(), args.end(), "--port") == args.end())
    argv.insert(argv.end(), {"--port", "0"});
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::Start(argv, {"TASKQ_AUTHKEY=" + key_});
  EXPECT_TRUE(p) << "cannot start " << argv[0];
  if (!p) return p;
  std::optional<int> got = MasterPort(*p, kQuick);
  EXPECT_TRUE(got) << "the master printed no port; stdout:\n"
                   << p->out() << "\nstderr:\n"
                   << p->err();
  *port = got.value_or(0);
  return p;
}

std::unique_ptr<Process> E2eTest::StartWorker(int port, std::vector<std::string> args,
                                              const std::string& key) {
  std::vector<std::string> argv = {WorkerBin(), "--server", "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::Start(argv, {"TASKQ_AUTHKEY=" + (key.empty() ? key_ : key)});
  EXPECT_TRUE(p) << "cannot start " << argv[0];
  return p;
}

std::unique_ptr<Client> E2eTest::Connect(int port, const std::string& key) {
  ClientOptions o;
  o.name = "test-client";
  o.connect_timeout = kQuick;
  Result<std::unique_ptr<Client>> c =
      Client::Connect("127.0.0.1:" + std::to_string(port), key.empty() ? key_ : key, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(*c) : nullptr;
}

int E2eTest::RunToEnd(std::vector<std::string> argv, std::string* out, std::string* err,
                      std::vector<std::string> env) {
  auto p = Process::Start(argv, env);
  if (!p) return -1;
  std::optional<int> code = p->Wait(kSlow);
  if (out) *out = p->out();
  if (err) *err = p->err();
  return code.value_or(-2);
}

}  // namespace taskq::testing
