#include "tests/nats_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds Left(Clock::time_point end) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(end - Clock::now()));
}

std::string Tail(const std::string& log, std::size_t n = 1500) {
  return log.size() <= n ? log : "..." + log.substr(log.size() - n);
}

// True once JetStream answers an account-info request through url alone.
bool JetStreamAnswers(const std::string& url, std::string* why) {
  NatsPtr<natsConnection> nc = NatsConnect(url, milliseconds(500), why);
  if (!nc) return false;
  jsCtx* raw = nullptr;
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = 500;
  natsStatus s = natsConnection_JetStream(&raw, nc.get(), &o);
  NatsPtr<jsCtx> js(raw);
  jsAccountInfo* ai = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (s == NATS_OK) s = js_GetAccountInfo(&ai, js.get(), nullptr, &code);
  NatsPtr<jsAccountInfo> info(ai);
  if (s != NATS_OK) *why = "account info: " + NatsError(s) + " (code " + std::to_string(code) + ")";
  return s == NATS_OK;
}

}  // namespace

NatsPtr<natsConnection> NatsConnect(const std::string& urls, milliseconds timeout,
                                    std::string* error, natsStatus* status) {
  natsStatus s = NATS_OK;
  NatsPtr<natsOptions> opts = NatsServerOptions(urls, timeout, &s);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), 50);
  natsConnection* nc = nullptr;
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts.get());
  if (status != nullptr) *status = s;
  if (s != NATS_OK) {
    *error = "connect to " + urls + ": " + NatsError(s);
    return nullptr;
  }
  return NatsPtr<natsConnection>(nc);
}

std::string NatsServerBin() {
  const auto executable = [](const std::string& p) { return access(p.c_str(), X_OK) == 0; };
  if (const char* env = std::getenv("TASKQ_NATS_SERVER"); env != nullptr && *env != '\0')
    return executable(env) ? env : "";
  std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "");
  for (std::string dir; std::getline(path, dir, ':');)
    if (!dir.empty() && executable(dir + "/nats-server")) return dir + "/nats-server";
  return executable("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "";
}

std::unique_ptr<NatsCluster> NatsCluster::Start(int n, milliseconds deadline, std::string* error) {
  const Clock::time_point end = Clock::now() + deadline;
  std::unique_ptr<NatsCluster> c(new NatsCluster());
  c->bin_ = NatsServerBin();
  if (c->bin_.empty()) {
    *error =
        "nats-server not found ($TASKQ_NATS_SERVER, $PATH, /usr/sbin): "
        "scripts/install-deps installs Debian's nats-server";
    return nullptr;
  }
  c->dir_ = MakeTempDir("taskq-nats");
  if (c->dir_.empty()) {
    *error = "cannot make a directory under /tmp";
    return nullptr;
  }
  c->servers_.resize(n);
  for (int i = 0; i < n; ++i) {
    Server& s = c->servers_[i];
    s.port = ReserveLoopbackPort(&s.port_fd);
    s.route_port = ReserveLoopbackPort(&s.route_fd);
    s.store = c->dir_ + "/" + c->Name(i);
    if (s.port == 0 || s.route_port == 0) {
      *error = "cannot reserve ports of 127.0.0.1";
      return nullptr;
    }
  }
  // All start before any is waited for: a cluster elects its metadata leader
  // only once a majority runs.
  for (int i = 0; i < n; ++i)
    if (!c->Launch(i, error)) return nullptr;
  for (int i = 0; i < n; ++i)
    if (!c->WaitReady(i, end, error)) return nullptr;
  if (n > 1 && !c->WaitForPlacement(end, error)) return nullptr;
  return c;
}

// A cluster whose metadata leader answers may not yet know every peer well
// enough to place a stream on all of them: an R3 stream made at once is then
// refused ("no suitable peers for placement", 10005). Ready means a probe
// stream of as many replicas as servers (up to 3) could be made; it is
// removed again.
bool NatsCluster::WaitForPlacement(Clock::time_point end, std::string* error) {
  std::string why;
  NatsPtr<natsConnection> nc = NatsConnect(Urls(), milliseconds(1000), &why);
  jsCtx* raw = nullptr;
  if (nc && natsConnection_JetStream(&raw, nc.get(), nullptr) != NATS_OK) raw = nullptr;
  NatsPtr<jsCtx> js(raw);
  for (milliseconds pause(10); js; pause = std::min(pause * 2, milliseconds(200))) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "TQ_PLACEMENT_PROBE";
    const char* subjects[] = {"tq.placement.probe"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    cfg.Replicas = std::min(3, size());
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&si, js.get(), &cfg, nullptr, &code);
    NatsPtr<jsStreamInfo> info(si);
    if (s == NATS_OK) {
      (void)js_DeleteStream(js.get(), cfg.Name, nullptr, nullptr);  // harmless if it stays
      return true;
    }
    why = NatsError(s) + " (code " + std::to_string(code) + ")";
    if (Left(end) <= pause) break;
    std::this_thread::sleep_for(pause);
  }
  *error = "the cluster could not place a stream on " + std::to_string(std::min(3, size())) +
           " servers: " + why;
  return false;
}

NatsCluster::~NatsCluster() {
  for (Server& s : servers_) {
    s.process.reset();  // SIGKILL, and waits for its output to end
    if (s.port_fd >= 0) close(s.port_fd);
    if (s.route_fd >= 0) close(s.route_fd);
  }
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

std::string NatsCluster::Url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(servers_[i].port);
}

std::string NatsCluster::Urls() const {
  std::string urls;
  for (int i = 0; i < size(); ++i) urls += (i ? "," : "") + Url(i);
  return urls;
}

int NatsCluster::IndexOf(const std::string& name) const {
  for (int i = 0; i < size(); ++i)
    if (Name(i) == name) return i;
  return -1;
}

std::vector<std::string> NatsCluster::Argv(int i) const {
  const Server& s = servers_[i];
  std::vector<std::string> argv = {bin_, "-a",    "127.0.0.1", "-p",  std::to_string(s.port),
                                   "-n", Name(i), "-js",       "-sd", s.store};
  if (size() == 1) return argv;
  std::string routes;
  for (int j = 0; j < size(); ++j)
    if (j != i)
      routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") +
                std::to_string(servers_[j].route_port);
  argv.insert(argv.end(), {"--cluster", "nats://127.0.0.1:" + std::to_string(s.route_port),
                           "--cluster_name", "taskq-test", "--routes", routes});
  return argv;
}

bool NatsCluster::Launch(int i, std::string* error) {
  servers_[i].process = Process::Start(Argv(i));
  if (!servers_[i].process) *error = "cannot start " + bin_;
  return servers_[i].process != nullptr;
}

bool NatsCluster::WaitReady(int i, Clock::time_point end, std::string* error) {
  Process& p = *servers_[i].process;
  if (!p.WaitForLine("Server is ready", Left(end), /*from_err=*/true)) {
    *error = Name(i) + " did not say it was ready; its log:\n" + Tail(p.err());
    return false;
  }
  // From here the event is a reply that only comes once the cluster has a
  // metadata leader: asked again with a short backoff until the deadline.
  std::string why;
  for (milliseconds pause(10); !JetStreamAnswers(Url(i), &why);
       pause = std::min(pause * 2, milliseconds(200))) {
    if (Left(end) <= pause || !p.Running()) {
      *error = Name(i) + ": JetStream did not answer (" + why + "); its log:\n" + Tail(p.err());
      return false;
    }
    std::this_thread::sleep_for(pause);
  }
  return true;
}

bool NatsCluster::Kill(int i, milliseconds deadline) {
  Process& p = *servers_[i].process;
  p.Signal(SIGKILL);
  return p.Wait(deadline).has_value();
}

bool NatsCluster::Restart(int i, milliseconds deadline, std::string* error) {
  const Clock::time_point end = Clock::now() + deadline;
  if (servers_[i].process && servers_[i].process->Running()) {
    *error = Name(i) + " still runs: Kill it first";
    return false;
  }
  return Launch(i, error) && WaitReady(i, end, error);
}

}  // namespace taskq::testing
