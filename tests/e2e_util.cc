#include "tests/e2e_util.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "proto/json.h"
#include "proto/msgpack_reader.h"
#include "tests/temp_dir.h"

namespace taskq::testing {

std::string MasterBin() { return TASKQ_MASTER_BIN; }
std::string WorkerBin() { return TASKQ_WORKER_BIN; }

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> Lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[2 * sizeof d + 1];
  sodium_bin2hex(hex, sizeof hex, d, sizeof d);
  return hex;
}

std::string Field(const std::string& json, std::string_view key) {
  Result<Value> v = ParseJson(json);
  if (!v.ok()) return "";
  MsgpackReader r(v->packed());
  uint32_t n;
  if (!r.ReadMapHeader(&n)) return "";
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view k, raw;
    r.ReadStr(&k);
    r.Skip(&raw);
    if (k == key) return Value::FromTrusted(raw).ToText();
  }
  return "";
}

void WebE2eTest::SetUp() {
  dir_ = MakeTempDir(prefix_);
  ASSERT_FALSE(dir_.empty());
  out_ = dir_ / "out";
}

void WebE2eTest::TearDown() { std::filesystem::remove_all(dir_); }

void WebE2eTest::StartWeb() {
  web_ = StartWebFixture(&base_);
  ASSERT_TRUE(web_);
}

std::unique_ptr<Process> StartWebFixture(std::string* base) {
  std::unique_ptr<Process> web = Process::Start({"/usr/bin/env", "python3", TASKQ_HTTP_FIXTURE});
  if (!web) {
    ADD_FAILURE() << "cannot start " << TASKQ_HTTP_FIXTURE;
    return nullptr;
  }
  std::optional<std::string> port = web->WaitForLine(R"(^port (\d+)$)", kQuick);
  if (!port) {
    ADD_FAILURE() << "the web fixture printed no port: " << web->err();
    return nullptr;
  }
  *base = "http://127.0.0.1:" + *port;
  return web;
}

std::string FixtureData(const std::string& name, std::size_t size) {
  std::string unit = name + "\n", out;
  while (out.size() < size) out += unit;
  return out.substr(0, size);
}

E2eTest::~E2eTest() {
  for (int fd : reserved_) close(fd);
}

std::unique_ptr<Process> E2eTest::StartMaster(std::vector<std::string> args, int* port) {
  std::vector<std::string> argv = {MasterBin(), "--bind", "127.0.0.1"};
  if (std::find(args.begin(), args.end(), "--port") == args.end())
    argv.insert(argv.end(), {"--port", "0"});
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::Start(argv, {"TASKQ_AUTHKEY=" + key_});
  EXPECT_TRUE(p) << "cannot start " << argv[0];
  if (!p) return p;
  bool json = std::find(args.begin(), args.end(), "--json") != args.end();
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    json = json || (args[i] == "--results" && args[i + 1] == "-");
  std::optional<int> got = MasterPort(*p, kQuick, /*from_err=*/json);
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

std::vector<std::string> E2eTest::Taskq(std::vector<std::string> args, int port) {
  std::vector<std::string> argv = {TASKQ_CLI_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  if (port) argv.insert(argv.end(), {"--server", "127.0.0.1:" + std::to_string(port)});
  return argv;
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

int E2eTest::ReservePort() {
  int fd = -1;
  const int port = ReserveLoopbackPort(&fd);
  if (port == 0) {
    ADD_FAILURE() << "cannot reserve a port of 127.0.0.1: " << std::strerror(errno);
    return 0;
  }
  reserved_.push_back(fd);
  return port;
}

}  // namespace taskq::testing
