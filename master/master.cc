#include "master/master.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "client/client.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "master/http_server.h"
#include "master/job.h"
#include "master/job_record.h"
#include "master/job_report.h"
#include "master/outcome_file.h"
#include "master/server.h"
#include "master/task_source.h"
#include "proto/keys.h"
#include "proto/limits.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLocalEndpoint = "inproc://taskq-master-local";
// The tutorial job, once its first worker is there, waits this long for
// others started with it (a worker waiting for its master retries every
// quarter second), so that its tasks spread over all of them.
constexpr std::chrono::milliseconds kGatherWorkers{1000};

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

// "task_worker --server ADDR:PORT (and the same authkey)"
std::string HowToConnect(const MasterOptions& o, int port) {
  const std::vector<std::string> hosts = HostAddresses(o.bind);
  return "task_worker --server " + (hosts.empty() ? std::string("HOST") : hosts.front()) + ":" +
         std::to_string(port) + " (and the same authkey)";
}

void PrintHowToConnect(const MasterOptions& o, int port, std::ostream& out) {
  const std::string shown = o.bind == "*" ? "0.0.0.0" : o.bind;
  out << "taskq master " << TASKQ_VERSION << " listening on " << shown << ":" << port << "\n";
  const std::vector<std::string> hosts = HostAddresses(o.bind);
  out << "Workers connect with: " << HowToConnect(o, port) << "\n";
  if (hosts.size() > 1) {
    out << "  (addresses of this machine:";
    for (const auto& h : hosts) out << " " << h;
    out << ")\n";
  }
  out << std::flush;
}

int ExitWith(std::ostream& err, const Status& s, int code = kExitError) {
  err << "task_master: " << s.message() << "\n";
  return s.code() == Code::kInterrupted ? kExitInterrupted : code;
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
  out << "Recovered " << (o.open_medium ? o.store_shown : o.data_dir) << ": " << r.ready
      << " task(s) waiting, " << r.outcomes << " outcome(s) to collect (" << r.records
      << " journal records)" << std::endl;
}

bool HasJob(const MasterOptions& o) {
  return !o.download.empty() || !o.urls.empty() || !o.tasks.empty();
}

// Whether reading the job's tasks may wait on someone else: stdin, a pipe,
// a FIFO. Such a job keeps the server loop on a thread of its own: a loop
// that runs only while the job waits for the master (Server::Pump) would
// stop serving workers, handshakes and heartbeats while the job waits for
// its next line.
bool TasksMayBlock(const MasterOptions& o) {
  std::vector<std::string> files = o.download;
  if (!o.tasks.empty()) files.push_back(o.tasks);
  for (const std::string& f : files) {
    struct stat st;
    if (f == "-" || stat(f.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return true;
  }
  return false;
}

// The tasks of the job: --download and URL arguments, --tasks, or the
// tutorial's N random numbers 0..10000 as square tasks ("Put task 9541...").
Result<std::unique_ptr<TaskSource>> MakeSource(const MasterOptions& o, std::ostream& out,
                                               std::ostream& err) {
  const bool announce =
      !o.quiet && !o.json && static_cast<uint64_t>(o.square) <= JobReport::kPerTaskLines;
  return MakeTaskSource(JobTasks{static_cast<uint64_t>(o.square), o.download, o.urls, o.tasks},
                        "task_master", announce, out, err);
}

// The job's flags, as its record in the data dir keeps them: the same
// command run again names the same job. Paths are made absolute, so a run
// from another directory is still the same job.
std::string DescribeJob(const MasterOptions& o) {
  auto absolute = [](const std::string& p) {
    std::error_code ec;
    const fs::path a = p == "-" ? fs::path(p) : fs::absolute(p, ec);
    return ec ? p : a.string();
  };
  if (!o.tasks.empty()) return "--tasks " + absolute(o.tasks);
  if (o.download.empty() && o.urls.empty()) return "--square " + std::to_string(o.square);
  std::string d = "--download";
  for (const std::string& f : o.download) d += " " + absolute(f);
  for (const std::string& u : o.urls) d += " " + u;
  return d;
}

// With a data dir the job keeps a record there and its outcomes in a file
// (--results FILE, or DIR/job-results.jsonl), so that the same command run
// again resumes it. Sets *resume (collect and count what an earlier run
// left in the master) and *append (and in the results file), or returns an
// exit code to stop with.
std::optional<int> PrepareRecord(const MasterOptions& o, const RecoveryReport& recovered,
                                 std::string* results, bool* resume, bool* append,
                                 std::ostream& out, std::ostream& err) {
  std::error_code ec;
  const fs::path path = fs::absolute(*results, ec);
  if (!ec) *results = path.string();
  Result<std::optional<JobRecord>> found = JobRecord::Load(o.data_dir);
  if (!found.ok()) {
    err << "task_master: " << found.status().message() << "\n";
    return kExitError;
  }
  JobRecord record{DescribeJob(o), *results, false};
  const std::optional<JobRecord>& was = *found;
  if (was && was->job == record.job && was->finished) {
    out << "This job already finished: its outcomes are in " << was->results
        << ". Run it again with --fresh to start it anew." << std::endl;
    return kExitOk;
  }
  if (was && !was->finished && was->job != record.job) {
    err << "task_master: the data dir " << o.data_dir << " holds an unfinished job (" << was->job
        << "); run that command again to finish it, or add --fresh to drop it\n";
    return kExitUsage;
  }
  if (was && !was->finished && was->results != record.results) {
    err << "task_master: this job writes its outcomes to " << was->results
        << "; run it again with --results " << was->results << " (or add --fresh to start anew)\n";
    return kExitUsage;
  }
  // A data dir with no record but tasks in it (an older taskq, or --serve
  // and a client): the tasks are taken for this job's, but what the results
  // file holds is not known to be theirs: it starts anew.
  *append = was && !was->finished;
  *resume = *append || (!was && recovered.ready + recovered.outcomes > 0);
  return std::nullopt;
}

// Where the master's words go: stdout, unless stdout carries JSON (--json,
// --results -) for a program to read; then stderr.
std::ostream& Words(const MasterOptions& o, std::ostream& out, std::ostream& err) {
  return o.json || o.results == "-" ? err : out;
}

// What the job needs beyond the server, made before the master listens, so
// that a mistake in the command line is told before anything else.
struct JobInputs {
  std::unique_ptr<TaskSource> source;  // null: no job (--serve alone)
  StatusLine* status = nullptr;
  std::string connect_hint;
  std::function<void(std::chrono::milliseconds)> pause;  // JobOptions::pause
};

int RunTheJob(Client& client, const MasterOptions& o, const RecoveryReport& recovered,
              JobInputs& in, std::ostream& out, std::ostream& err) {
  std::ostream& words = Words(o, out, err);
  std::string results = o.results == "-" ? "" : o.results;
  if (!o.data_dir.empty() && results.empty()) results = o.data_dir + "/job-results.jsonl";
  bool resume = false, append = false;
  if (!o.data_dir.empty()) {
    if (std::optional<int> code =
            PrepareRecord(o, recovered, &results, &resume, &append, words, err))
      return *code;
    // The job counts the tasks it put by what the master and the results
    // hold; tasks lost with damaged records are missing from that count, and
    // which input lines they were cannot be told.
    if (resume && !recovered.damage.empty())
      err << "task_master: the journal lost records (above), so this job cannot tell which "
             "of its tasks they held: it puts again as many tasks as were lost, those after "
             "the ones it counted, so some outcomes may be missing and others twice in the "
             "results (--fresh runs the whole job again)\n";
  }
  OutcomeFile record;
  if (!results.empty()) {
    if (Status s = record.OpenForJob(results, append, "task_master", err); !s.ok()) {
      err << "task_master: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  // Only once the results file is as the job needs it (emptied, for a new
  // job) does the record say that the job runs.
  if (!o.data_dir.empty()) {
    if (Status s = JobRecord{DescribeJob(o), results, false}.Save(o.data_dir); !s.ok()) {
      err << "task_master: " << s.message() << "\n";
      return kExitError;
    }
  }
  ReportOptions ro;
  ro.quiet = o.quiet;
  ro.json = o.json;
  ro.results_stdout = o.results == "-";
  JobReport report(ro, out, err, *in.status);
  JobOptions jo;
  jo.timeout = o.timeout;
  jo.resume = resume;
  jo.record = results.empty() ? nullptr : &record;
  jo.lease = !o.data_dir.empty();
  jo.fsync = o.fsync == FsyncMode::kAlways;
  if (o.broker.max_queue) jo.batch = o.broker.max_queue;
  jo.wait_workers = o.wait_workers;
  jo.in_flight = o.in_flight;
  jo.wait_first_worker = !HasJob(o);  // the tutorial
  jo.first_worker_timeout = o.timeout_given ? o.timeout : std::chrono::milliseconds(0);
  jo.gather = kGatherWorkers;
  jo.connect_hint = in.connect_hint;
  jo.resumable = !o.data_dir.empty();
  jo.pause = in.pause;
  Job job(client, jo, report, words, err);
  const int code = job.Run(*in.source);
  if (job.finished() && !o.data_dir.empty()) {
    JobRecord done{DescribeJob(o), results, true};
    if (Status s = done.Save(o.data_dir); !s.ok()) err << "task_master: " << s.message() << "\n";
  }
  return code;
}

// --fresh: the data dir's journal and job record go, before the journal is
// opened (under its lock, so a master using the dir is not pulled from under).
Status ForgetDataDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::Ok();
  const std::string lock = dir + "/LOCK";
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Error(Code::kIo, "cannot open " + lock);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return Status::Error(Code::kIo, "another task_master is using the data dir " + dir);
  }
  // The record first: a kill half-way must not leave it to resume a job
  // whose journal is gone.
  Status s = JobRecord::Remove(dir);
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (s.ok() && (name.rfind("journal-", 0) == 0 || name == "job-results.jsonl"))
      fs::remove(e.path(), ec);
  }
  close(fd);
  return s;
}

// --serve: wait for a stop signal, or for the server to end on its own.
int WaitForStop(const Server& server, std::ostream& err) {
  zmq_pollitem_t items[] = {{nullptr, SignalFd(), ZMQ_POLLIN, 0},
                            {nullptr, server.done_fd(), ZMQ_POLLIN, 0}};
  while (SignalCount() == 0) {
    zmq_poll(items, 2, -1);
    if (items[1].revents & ZMQ_POLLIN) return ExitWith(err, server.failure());
  }
  return kExitOk;
}

// Whenever the job waits, its thread runs the server loop (Server::Pump): no
// hand-off between threads per message, and the job's messages go to the
// broker through memory (LocalChannel), not a socket. Once the job is over,
// --serve gives the loop a thread of its own.
int RunJob(zmq::context_t& ctx, Server& server, const MasterOptions& o,
           const RecoveryReport& recovered, JobInputs& in, std::ostream& out, std::ostream& err) {
  std::ostream& words = Words(o, out, err);
  if (!in.source) {
    words << "Serving queues until Ctrl-C..." << std::endl;
    return WaitForStop(server, err);
  }
  ClientOptions co;
  co.name = "task_master";
  co.interrupt_fd = SignalFd();
  if (server.pumped()) {
    co.pump = [&server](SocketWatch& watch, int timeout_ms) {
      return server.Pump(watch, timeout_ms);
    };
    in.pause = [&server](std::chrono::milliseconds d) {
      SocketWatch nothing;
      const TimePoint until = Clock::now() + d;
      do {
        if (!server.Pump(nothing, PollTimeout(until)).ok()) return;
      } while (Clock::now() < until);
    };
    co.local = server.local_channel();
  }
  int code;
  {
    Result<std::unique_ptr<Client>> client = Client::ConnectLocal(ctx, kLocalEndpoint, co);
    if (!client.ok()) return ExitWith(err, client.status());
    code = RunTheJob(**client, o, recovered, in, out, err);
  }  // the client (and its channel's goodbye) goes before the loop may move
  // A job stopped by the server's failure said why already.
  if (Status s = server.failure(); !s.ok()) return code == kExitOk ? ExitWith(err, s) : kExitError;
  if (o.serve && code != kExitInterrupted) {
    server.RunInBackground();
    words << "Serving queues until Ctrl-C..." << std::endl;
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
  std::ostream& words = Words(o, out, err);
  JobInputs in;
  if (!o.serve || HasJob(o)) {
    Result<std::unique_ptr<TaskSource>> source = MakeSource(o, words, err);
    if (!source.ok()) return ExitWith(err, source.status(), kExitUsage);
    in.source = std::move(*source);
  }
  if (Status s = CheckResultsPath(o.results); !s.ok()) return ExitWith(err, s, kExitUsage);
  StatusLine status(err, isatty(STDERR_FILENO));
  in.status = &status;
  if (IsCredential(o.authkey))
    return ExitWith(err,
                    Status::Error(Code::kInvalid,
                                  "a worker or submitter key cannot run a master: give task_master "
                                  "the authkey itself, from which taskq keys issued that key"),
                    kExitUsage);
  Result<DerivedKeys> keys = DeriveKeys(o.authkey);
  if (!keys.ok()) return ExitWith(err, keys.status());
  RaiseFileLimit();
  if (o.fresh && !o.data_dir.empty()) {
    if (Status s = ForgetDataDir(o.data_dir); !s.ok()) return ExitWith(err, s);
  }
  zmq::context_t ctx(1);
  ServerOptions so;
  so.bind = o.bind;
  so.port = o.port;
  so.keys = *keys;
  so.inproc_endpoint = kLocalEndpoint;
  so.broker = o.broker;
  if (so.broker.instance == 0)
    so.broker.instance = (uint64_t{randombytes_random()} << 32) | randombytes_random();
  if (!o.data_dir.empty() || o.open_medium)  // files in the data dir, or --store's medium
    so.journal = JournalOptions{o.data_dir, o.fsync, std::chrono::milliseconds(5), o.segment_bytes,
                                o.open_medium};
  so.log = [&status](const std::string& line) { status.Log("task_master: " + line + "\n"); };
  // The job lists its failures itself: the log would say each a second time.
  if (in.source) so.broker.log_failures = false;
  so.status_fd = StatusFd();
  so.status_every = o.status_every;
  SnapshotBoard board;
  std::optional<HttpOptions> http;
  if (!o.http.empty()) {
    Result<HttpOptions> h = ParseHttpFlag(o.http, o.http_token, keys->master.secret_z85);
    if (!h.ok()) {
      err << "task_master: " << h.status().message() << "\n";
      return kExitUsage;
    }
    http = *h;
    so.board = &board;
  }
  Server server(ctx, so);
  RecoveryReport recovered;
  const Server::Threading threading =
      in.source && !TasksMayBlock(o) ? Server::Threading::kPumped : Server::Threading::kOwnThread;
  if (Status s = server.Start(&recovered, threading); !s.ok()) {
    err << "task_master: " << s.message() << "\n";
    // kUnavailable: no NATS server answered (--store).
    if (s.code() == Code::kCannotListen || s.code() == Code::kUnavailable) return kExitUnavailable;
    return s.code() == Code::kInterrupted ? kExitInterrupted : kExitError;
  }
  PrintHowToConnect(o, server.port(), words);
  HttpServer web(http.value_or(HttpOptions{}), &board);
  if (http) {
    if (Status s = web.Start(); !s.ok()) {
      (void)server.Stop("master exit");
      ExitWith(err, s);
      return s.code() == Code::kInvalid ? kExitUsage : kExitUnavailable;
    }
    words << "Dashboard: " << DashboardUrl(*http, web.port()) << std::endl;
  }
  PrintRecovery(o, recovered, words, err);
  in.connect_hint = HowToConnect(o, server.port());
  int code = RunJob(ctx, server, o, recovered, in, out, err);
  web.Stop();
  // The last commit (at shutdown) may fail too: nothing is acknowledged
  // then, and the exit code says so.
  if (Status s = server.Stop("master exit"); !s.ok() && code == kExitOk) code = ExitWith(err, s);
  words << "master exit." << std::endl;
  return code;
}

}  // namespace taskq
