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
#include "master/job.h"
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

int Fail(std::ostream& err, const Status& s) {
  err << "task_master: " << s.message() << "\n";
  return s.code() == Code::kInterrupted ? kExitInterrupted : kExitError;
}

void PrintRecovery(const MasterOptions& o, const RecoveryReport& r, std::ostream& out,
                   std::ostream& err) {
  for (const std::string& p : r.problems) err << "task_master: journal: " << p << "\n";
  if (r.torn_bytes)
    err << "task_master: journal: cut off " << r.torn_bytes
        << " bytes of a record that a crash interrupted (it was never acknowledged)\n";
  if (r.records == 0) return;
  out << "Recovered " << o.data_dir << ": " << r.ready << " task(s) waiting, " << r.outcomes
      << " outcome(s) to collect (" << r.records << " journal records)" << std::endl;
}

// The tutorial's job: N random numbers 0..10000 as square tasks, each result
// printed as "Result: n * n = m".
int RunSquareJob(Client& client, const MasterOptions& o, std::ostream& out, std::ostream& err) {
  JobOptions jo;
  jo.timeout = o.timeout;
  jo.resume = !o.data_dir.empty();
  if (o.broker.max_queue) jo.batch = o.broker.max_queue;
  std::mt19937 rng(randombytes_random());
  std::uniform_int_distribution<int> pick(0, 10000);
  int left = o.square;
  auto source = [&](TaskSpec* t) {
    if (left == 0) return false;
    --left;
    const int n = pick(rng);
    if (!o.quiet) out << "Put task " << n << "...\n";
    *t = TaskSpec{"square", Value::Int(n), {}};
    return true;
  };
  auto sink = [&](const Item& item) {
    if (!item.outcome) return;  // something a client put into "results" by hand
    if (!item.outcome->ok) {
      out << "Result: task " << item.id << " (" << item.kind << " "
          << PackedToJson(item.arg.packed()) << ") failed: " << item.outcome->error << "\n";
    } else if (!o.quiet) {
      const std::string n = item.arg.ToText();
      out << "Result: " << n << " * " << n << " = " << item.outcome->value.ToText() << "\n";
    }
  };
  Job job(client, jo, out, err);
  const int code = job.Run(source, sink);
  if (o.quiet && code == kExitOk) out << o.square << " results received" << std::endl;
  return code;
}

// --serve: wait for a stop signal, or for the server to end on its own.
int WaitForStop(const Server& server, std::ostream& err) {
  zmq_pollitem_t items[] = {{nullptr, SignalFd(), ZMQ_POLLIN, 0},
                            {nullptr, server.done_fd(), ZMQ_POLLIN, 0}};
  while (SignalCount() == 0) {
    zmq_poll(items, 2, -1);
    if (items[1].revents & ZMQ_POLLIN) return Fail(err, server.failure());
  }
  return kExitOk;
}

int RunJob(zmq::context_t& ctx, const Server& server, const MasterOptions& o, std::ostream& out,
           std::ostream& err) {
  if (o.serve) {
    out << "Serving queues until Ctrl-C..." << std::endl;
    return WaitForStop(server, err);
  }
  ClientOptions co;
  co.name = "task_master";
  co.interrupt_fd = SignalFd();
  Result<std::unique_ptr<Client>> client = Client::ConnectLocal(ctx, kLocalEndpoint, co);
  if (!client.ok()) return Fail(err, client.status());
  const int code = RunSquareJob(**client, o, out, err);
  if (Status s = server.failure(); !s.ok()) return Fail(err, s);
  return code;
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
  if (!o.data_dir.empty())
    so.journal = JournalOptions{o.data_dir, o.fsync, std::chrono::milliseconds(5), o.segment_bytes};
  so.log = [&err, &log_mu](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    err << "task_master: " << line << std::endl;
  };
  so.status_fd = StatusFd();
  so.status_every = o.status_every;
  Server server(ctx, so);
  RecoveryReport recovered;
  if (Status s = server.Start(&recovered); !s.ok()) {
    err << "task_master: " << s.message() << "\n";
    return s.message().find("cannot listen") == 0 ? kExitUnavailable : kExitError;
  }
  PrintHowToConnect(o, server.port(), out);
  PrintRecovery(o, recovered, out, err);
  const int code = RunJob(ctx, server, o, out, err);
  server.Stop("master exit");
  out << "master exit." << std::endl;
  return code;
}

}  // namespace taskq
