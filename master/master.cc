#include "master/master.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iostream>
#include <mutex>
#include <random>
#include <vector>

#include "client/client.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "master/job.h"
#include "master/job_report.h"
#include "master/server.h"
#include "master/task_source.h"
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

// Journal damage is told on every start that finds it, each stretch with
// its file, bytes and lost ids: lost work must never pass unnoticed.
void PrintRecovery(const MasterOptions& o, const RecoveryReport& r, std::ostream& out,
                   std::ostream& err) {
  const char* journal = "task_master: journal: ";
  if (r.torn_bytes)
    err << journal << "cut off " << r.torn_bytes << " bytes at the end of " << r.torn_file
        << ": a record a crash cut short as it was written (never acknowledged, unless the "
           "machine lost power with --fsync interval or never)\n";
  for (const JournalDamage& d : r.damage) err << journal << Describe(d) << "\n";
  if (!r.damage.empty())
    err << journal << r.damage.size() << " damaged stretch(es) skipped, " << r.lost
        << " task(s) known lost; serving the rest (see docs/JOURNAL.md)\n";
  if (!r.set_aside.empty()) {
    err << journal << "damaged segments set aside, kept until removed by hand:";
    for (const std::string& f : r.set_aside) err << " " << f;
    err << "\n";
  }
  if (r.records == 0) return;
  out << "Recovered " << o.data_dir << ": " << r.ready << " task(s) waiting, " << r.outcomes
      << " outcome(s) to collect (" << r.records << " journal records)" << std::endl;
}

bool HasJob(const MasterOptions& o) {
  return !o.download.empty() || !o.urls.empty() || !o.tasks.empty();
}

// The tasks of the job: --download and URL arguments, --tasks, or the
// tutorial's N random numbers 0..10000 as square tasks ("Put task 9541...").
Result<std::unique_ptr<TaskSource>> MakeSource(const MasterOptions& o, std::ostream& out,
                                               std::ostream& err) {
  LineError on_error = [&err](const std::string& where, const std::string& what) {
    err << "task_master: " << where << ": " << what << " (skipped)\n";
  };
  if (!o.download.empty() || !o.urls.empty()) return UrlSource(o.urls, o.download, on_error);
  if (!o.tasks.empty()) return TaskFileSource(o.tasks, on_error);
  const bool announce =
      !o.quiet && !o.json && static_cast<uint64_t>(o.square) <= JobReport::kPerTaskLines;
  return SquareSource(o.square, [&out, announce](int64_t n) {
    if (announce) out << "Put task " << n << "...\n";
  });
}

int RunTheJob(Client& client, const MasterOptions& o, std::ostream& out, std::ostream& err) {
  Result<std::unique_ptr<TaskSource>> source = MakeSource(o, out, err);
  if (!source.ok()) {
    err << "task_master: " << source.status().message() << "\n";
    return kExitUsage;
  }
  ReportOptions ro;
  ro.quiet = o.quiet;
  ro.json = o.json;
  ro.results = o.results;
  ro.tty = isatty(STDERR_FILENO);
  std::ostream discard(nullptr);                 // writes nothing
  std::ostream& shown = o.json ? discard : out;  // --json: stdout carries only the summary
  JobReport report(ro, out, err);
  if (Status s = report.Open(); !s.ok()) {
    err << "task_master: " << s.message() << "\n";
    return kExitUsage;
  }
  JobOptions jo;
  jo.timeout = o.timeout;
  jo.resume = !o.data_dir.empty();
  if (o.broker.max_queue) jo.batch = o.broker.max_queue;
  jo.wait_workers = o.wait_workers;
  jo.in_flight = o.in_flight;
  return Job(client, jo, report, shown, err).Run(**source);
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
  if (o.serve && !HasJob(o)) {
    out << "Serving queues until Ctrl-C..." << std::endl;
    return WaitForStop(server, err);
  }
  ClientOptions co;
  co.name = "task_master";
  co.interrupt_fd = SignalFd();
  Result<std::unique_ptr<Client>> client = Client::ConnectLocal(ctx, kLocalEndpoint, co);
  if (!client.ok()) return Fail(err, client.status());
  int code = RunTheJob(**client, o, out, err);
  if (Status s = server.failure(); !s.ok()) return Fail(err, s);
  if (o.serve && code != kExitInterrupted) {
    out << "Serving queues until Ctrl-C..." << std::endl;
    const int served = WaitForStop(server, err);
    if (code == kExitOk) code = served;
  }
  return code;
}

// Every connected peer holds a descriptor. The usual soft limit (1024)
// would refuse connections near 1000 workers, far below what one master
// serves (make bench runs 1000); the hard limit is what the administrator
// allows, so take it.
void RaiseFileLimit() {
  rlimit r;
  const rlim_t enough = 1 << 20;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= std::min(r.rlim_max, enough)) return;
  r.rlim_cur = std::min(r.rlim_max, enough);
  setrlimit(RLIMIT_NOFILE, &r);
}

}  // namespace

int RunMaster(const MasterOptions& o, std::ostream& out, std::ostream& err) {
  Result<DerivedKeys> keys = DeriveKeys(o.authkey);
  if (!keys.ok()) return Fail(err, keys.status());
  RaiseFileLimit();
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
