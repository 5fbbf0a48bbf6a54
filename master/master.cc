#include "master/master.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>

#include <iostream>
#include <mutex>
#include <random>
#include <vector>

#include "client/client.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "master/server.h"
#include "proto/keys.h"
#include "proto/limits.h"

namespace taskq {
namespace {

constexpr const char* kLocalEndpoint = "inproc://taskq-master-local";

// Addresses a worker on another machine could use: this host's IPv4
// interfaces, loopback last.
std::vector<std::string> HostAddresses(const std::string& bind) {
  if (bind != "*" && bind != "0.0.0.0") return {bind};
  std::vector<std::string> out, loopback;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
      (std::string(buf).rfind("127.", 0) == 0 ? loopback : out).push_back(buf);
    }
    freeifaddrs(list);
  }
  out.insert(out.end(), loopback.begin(), loopback.end());
  return out;
}

void PrintHowToConnect(const MasterOptions& o, int port, std::ostream& out) {
  const std::string shown = o.bind == "*" ? "0.0.0.0" : o.bind;
  out << "taskq master " << TASKQ_VERSION << " listening on " << shown << ":" << port << "\n";
  const std::vector<std::string> hosts = HostAddresses(o.bind);
  out << "Workers connect with: task_worker --server " << (hosts.empty() ? "HOST" : hosts.front())
      << ":" << port << " (and the same authkey)\n";
  if (hosts.size() > 1) {
    out << "  (addresses of this machine:";
    for (const auto& h : hosts) out << " " << h;
    out << ")\n";
  }
  out << std::flush;
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kInterrupted:
      return kExitInterrupted;
    case Code::kEmpty:
    case Code::kTimeout:
      return kExitTimeout;
    default:
      return kExitError;
  }
}

int Fail(std::ostream& err, const Status& s) {
  err << "task_master: " << s.message() << "\n";
  return ExitCodeFor(s);
}

// The tutorial's master: put N random numbers as square tasks, then collect
// and print their results.
class SquareJob {
 public:
  SquareJob(Client& client, const MasterOptions& o, std::ostream& out, std::ostream& err)
      : client_(client), o_(o), out_(out), err_(err) {}

  int Run() {
    if (Status s = PutTasks(); !s.ok()) return Fail(err_, s);
    out_ << "Try get results..." << std::endl;
    while (received_ < o_.square) {
      Result<std::vector<Item>> got = client_.Get("results", kMaxBatch, o_.timeout);
      if (!got.ok()) return NoMoreResults(got.status());
      for (const Item& item : *got) Print(item);
      out_.flush();
    }
    if (failed_ > 0) {
      err_ << "task_master: " << failed_ << " of " << o_.square << " tasks failed\n";
      return kExitTasksFailed;
    }
    return kExitOk;
  }

 private:
  Status PutTasks() {
    std::mt19937 rng(randombytes_random());
    std::uniform_int_distribution<int> pick(0, 10000);
    std::vector<TaskSpec> batch;
    // One message carries many tasks: a batch per kMaxBatch, not per task.
    for (int i = 0; i < o_.square; ++i) {
      const int n = pick(rng);
      if (!o_.quiet) out_ << "Put task " << n << "...\n";
      batch.push_back(TaskSpec{"square", Value::Int(n), {}});
      if (batch.size() == kMaxBatch || i + 1 == o_.square) {
        Result<IdRange> r = client_.Put("tasks", batch);
        if (!r.ok()) return r.status();
        batch.clear();
      }
    }
    if (o_.quiet) out_ << "Put " << o_.square << " square tasks\n";
    out_.flush();
    return Status::Ok();
  }

  void Print(const Item& item) {
    ++received_;
    if (!item.outcome) return;  // something a client put into results by hand
    const TaskOutcome& r = *item.outcome;
    if (!r.ok) {
      ++failed_;
      out_ << "Result: task " << item.id << " (" << item.kind << " " << item.arg.ToText()
           << ") failed: " << r.error << "\n";
      return;
    }
    if (o_.quiet) return;
    const std::string n = item.arg.ToText();
    out_ << "Result: " << n << " * " << n << " = " << r.value.ToText() << "\n";
  }

  int NoMoreResults(const Status& s) {
    if (s.code() == Code::kEmpty) {
      err_ << "task_master: no result for " << o_.timeout.count() / 1000.0 << " s (" << received_
           << " of " << o_.square << " received); are workers connected?\n";
      return kExitTimeout;
    }
    if (s.code() == Code::kInterrupted) {
      err_ << "task_master: interrupted (" << received_ << " of " << o_.square
           << " results received)\n";
      return kExitInterrupted;
    }
    return Fail(err_, s);
  }

  Client& client_;
  const MasterOptions& o_;
  std::ostream& out_;
  std::ostream& err_;
  int received_ = 0;
  int failed_ = 0;
};

int WaitForSignal() {
  zmq_pollitem_t item = {nullptr, SignalFd(), ZMQ_POLLIN, 0};
  while (SignalCount() == 0) {
    if (SignalFd() < 0) return kExitError;
    zmq_poll(&item, 1, -1);
  }
  return kExitOk;
}

int RunJob(zmq::context_t& ctx, const MasterOptions& o, std::ostream& out, std::ostream& err) {
  if (o.serve) {
    out << "Serving queues until Ctrl-C..." << std::endl;
    return WaitForSignal();
  }
  ClientOptions co;
  co.name = "task_master";
  co.interrupt_fd = SignalFd();
  Result<std::unique_ptr<Client>> client = Client::ConnectLocal(ctx, kLocalEndpoint, co);
  if (!client.ok()) return Fail(err, client.status());
  return SquareJob(**client, o, out, err).Run();
}

}  // namespace

int RunMaster(const MasterOptions& o, std::ostream& out, std::ostream& err) {
  Result<DerivedKeys> keys = DeriveKeys(o.authkey);
  if (!keys.ok()) return Fail(err, keys.status());
  zmq::context_t ctx(1);
  std::mutex log_mu;
  ServerOptions so;
  so.bind = o.bind;
  so.port = o.port;
  so.keys = *keys;
  so.inproc_endpoint = kLocalEndpoint;
  so.broker = o.broker;
  if (so.broker.instance == 0)
    so.broker.instance = (uint64_t{randombytes_random()} << 32) | randombytes_random();
  so.log = [&err, &log_mu](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    err << "task_master: " << line << std::endl;
  };
  Server server(ctx, so);
  if (Status s = server.Start(); !s.ok()) {
    err << "task_master: " << s.message() << "\n";
    return kExitUnavailable;
  }
  PrintHowToConnect(o, server.port(), out);
  const int code = RunJob(ctx, o, out, err);
  server.Stop("master exit");
  out << "master exit." << std::endl;
  return code;
}

}  // namespace taskq
