#include "worker/worker.h"

#include <poll.h>
#include <unistd.h>

#include <iostream>
#include <vector>

#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "proto/keys.h"
#include "worker/master_list.h"
#include "worker/out_dir.h"
#include "worker/worker_loop.h"

namespace taskq {
namespace {

std::string DefaultName() {
  char host[256] = "worker";
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}
// Adds the download kind if its --out can be used, after removing what
// killed workers left there. A --out given on the command line must be
// usable (else the exit code: a worker that failed every download would eat
// the retries of other workers' tasks); the default one only decides whether
// this worker takes downloads, so a worker that squares numbers never fails
// over a directory it does not need.
std::optional<int> AddDownloads(const WorkerOptions& o, const std::string& name,
                                HandlerSet* handlers, std::ostream& out, std::ostream& err) {
  const auto started = std::chrono::system_clock::now();
  const OutDir dir(o.download.out_dir);
  if (Status s = dir.Check(o.download.out_dir_given, o.download.skip_existing); !s.ok()) {
    if (o.download.out_dir_given) {
      err << "task_worker: " << s.message() << "\n";
      return kExitUsage;
    }
    err << "task_worker: not taking downloads: " << s.message() << "\n";
    return std::nullopt;
  }
  if (const int removed = dir.RemoveStaleParts(started); removed > 0)
    out << "Removed " << removed << " unfinished download(s) that a stopped worker left in "
        << dir.path() << std::endl;
  DownloadOptions download = o.download;
  download.worker = name;
  handlers->Add("download", std::make_unique<DownloadHandler>(download));
  return std::nullopt;
}

// Waits up to pause for a signal (signals.h): kInterrupted if one came.
Status PauseUnlessSignalled(std::chrono::milliseconds pause) {
  pollfd p{SignalFd(), POLLIN, 0};
  if (poll(&p, p.fd >= 0 ? 1 : 0, static_cast<int>(pause.count())) > 0)
    return Status::Error(Code::kInterrupted, "interrupted");
  return Status::Ok();
}

// Time left until t, never negative (poll(2) would take that for "for ever").
std::chrono::milliseconds Until(TimePoint t) {
  return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()),
                  std::chrono::milliseconds(0));
}

// Connects to the first master of the list that answers, in the order
// given, round after round: one that refuses the connection is passed at
// once, one that accepts it has MasterList::kStartTry to say welcome.
// Fails as Connection::Open (kTimeout when co.connect_timeout passed).
Result<std::unique_ptr<Connection>> OpenFirst(zmq::context_t& ctx, ConnectOptions co,
                                              MasterList* masters, std::ostream& out) {
  const std::size_t n = masters->size();
  if (n == 1) return Connection::Open(ctx, co);  // as before lists: waits there
  const TimePoint deadline =
      co.connect_timeout.count() > 0 ? Clock::now() + co.connect_timeout : TimePoint::max();
  co.give_up_if_refused = true;
  std::vector<bool> told(n, false);  // "no welcome from ...", once per master
  for (std::size_t i = 0, round = 1;; i = (i + 1) % n) {
    co.endpoint = masters->at(i).TcpEndpoint();
    co.display = masters->at(i).Display();
    co.connect_timeout = std::max(Until(std::min(deadline, Clock::now() + MasterList::kStartTry)),
                                  std::chrono::milliseconds(1));
    Result<std::unique_ptr<Connection>> c = Connection::Open(ctx, co);
    if (c.ok()) {
      masters->Start(i);
      return c;
    }
    const Code code = c.status().code();
    if (code != Code::kUnavailable && code != Code::kTimeout) return c;
    if (Clock::now() >= deadline)
      return Status::Error(Code::kTimeout, "no master answered at " + masters->Describe());
    // It took the connection and said nothing (a port that speaks nothing
    // is not told from a busy master by the probe): say why it is passed.
    if (code == Code::kTimeout && !told[i]) {
      told[i] = true;
      out << "no welcome from " << masters->at(i).Display() << " within "
          << MasterList::kStartTry.count() / 1000.0
          << " s (not a taskq master, or one too busy to answer); trying "
          << masters->at((i + 1) % n).Display() << "..." << std::endl;
    }
    if (i + 1 < n) continue;
    if (round++ == 1)
      out << "waiting for a master at " << masters->Describe() << " to come up..." << std::endl;
    TASKQ_TRY(PauseUnlessSignalled(std::min(MasterList::kStartRoundPause, Until(deadline))));
  }
}

}  // namespace

int RunWorker(const WorkerOptions& o, std::ostream& out, std::ostream& err) {
  const std::string name = o.name.empty() ? DefaultName() : o.name;
  HandlerSet handlers = HandlerSet::BuiltIn();
  if (std::optional<int> code = AddDownloads(o, name, &handlers, out, err)) return *code;
  if (!o.exec.argv.empty()) handlers.Add(o.exec_kind, std::make_unique<ExecHandler>(o.exec));
  MasterList masters(o.servers);
  out << "Connect to server " << masters.Describe() << "..." << std::endl;
  Result<DerivedKeys> keys = DeriveKeys(o.authkey);
  if (!keys.ok()) {
    err << "task_worker: " << keys.status().message() << "\n";
    return kExitError;
  }
  zmq::context_t ctx(1);
  ConnectOptions co;
  co.endpoint = masters.at(0).TcpEndpoint();
  co.display = masters.at(0).Display();
  co.keys = &*keys;
  co.peer.role = "worker";
  co.peer.name = name;
  co.peer.capacity = static_cast<uint32_t>(o.jobs);
  co.peer.heartbeat_ms = static_cast<uint32_t>(o.heartbeat.count());
  co.peer.kinds = handlers.Kinds();
  co.connect_timeout = o.connect_timeout;
  co.interrupt_fd = SignalFd();
  co.on_waiting = [&out](const std::string& line) { out << line << std::endl; };
  Result<std::unique_ptr<Connection>> conn = OpenFirst(ctx, co, &masters, out);
  if (!conn.ok()) {
    const Status& s = conn.status();
    if (s.code() == Code::kInterrupted || s.code() == Code::kShutdown) {
      out << "worker exit." << std::endl;
    } else if (s.code() == Code::kTimeout) {
      err << "task_worker: gave up: " << s.message() << " within "
          << o.connect_timeout.count() / 1000.0 << " s (--connect-timeout)\n";
    } else {
      err << "task_worker: " << s.message() << "\n";
    }
    return ExitCodeFor(s, /*connected=*/false);
  }
  WorkerLoop loop(o, std::move(*conn), std::move(masters), std::move(handlers), out, err);
  return loop.Run();
}

}  // namespace taskq
