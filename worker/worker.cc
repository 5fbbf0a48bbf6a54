#include "worker/worker.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <unordered_set>

#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/signals.h"
#include "proto/keys.h"
#include "proto/limits.h"
#include "worker/executor.h"
#include "worker/handler.h"
#include "worker/out_dir.h"
#include "worker/task_printer.h"

namespace taskq {
namespace {

// How long a get may wait at the master before it is asked again. The
// master answers at once when tasks are ready; this only bounds an idle wait.
constexpr uint32_t kGetTimeoutMs = 30000;
// Bounds of the window of leased tasks a worker holds (see Window()).
constexpr uint32_t kMaxWindow = 8192;
// Results per result message, and bytes: one value is at most
// kMaxValueBytes, so a message stays under kMaxMessageBytes.
constexpr std::size_t kResultsPerMessage = kMaxBatch;
constexpr std::size_t kResultBytesPerMessage = kMaxMessageBytes / 2;
// Where the executor's wake-up fd sits among the fds the loop waits on.
constexpr std::size_t kFinishedFd = 0;

// The exit code for the status that ends the worker. connected: it had a
// welcome; a port that then turns out not to be a taskq master's (it
// restarted as something else) is no mistake in --server.
int ExitCodeFor(const Status& s, bool connected) {
  switch (s.code()) {
    case Code::kAuthFailed:
      return kExitAuthFailed;
    case Code::kTimeout:  // --connect-timeout passed
      return kExitUnavailable;
    case Code::kInvalid:  // the address names no taskq master
      return connected ? kExitError : kExitUsage;
    case Code::kInterrupted:  // Ctrl-C before the master answered
    case Code::kShutdown:
      return kExitOk;
    case Code::kForbidden:  // a submitter's key
      return kExitForbidden;
    default:
      return kExitError;
  }
}

std::string DefaultName() {
  char host[256] = "worker";
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

// A finished task's result until the master acknowledged it.
struct PendingResult {
  uint64_t id = 0;
  bool ok = true;
  std::string data;  // raw value when ok, error text otherwise
  uint64_t elapsed_us = 0;
  bool retry = true;
  bool worker_fault = false;
  uint64_t epoch = 0;  // of the master the task came from
};

class WorkerLoop {
 public:
  WorkerLoop(const WorkerOptions& o, std::unique_ptr<Connection> conn, HandlerSet handlers,
             std::ostream& out, std::ostream& err)
      : o_(o),
        conn_(std::move(conn)),
        handlers_(std::move(handlers)),
        out_(out),
        err_(err),
        printer_(out, o.quiet),
        executor_(o.jobs, o.delay,
                  [this](const Item& t, Handler* h) {
                    printer_.Line("run task " + h->Describe(t) + "...", Clock::now());
                  }),
        cancel_(&cancelled_) {
    NoteWelcome();
  }

  int Run();

 private:
  // One pass of the loop, in order.
  Status Ask();
  Result<uint32_t> Wait(TimePoint now);
  std::optional<int> OnSignal(TimePoint now);
  Status ReadMaster(std::optional<int>* exit);
  void Dispatch(const Message& m, std::optional<int>* exit);
  void CheckMaster(TimePoint now);

  // Messages.
  void OnItems(const Items& m);
  void OnWelcome(const Welcome& w);
  void OnError(const ErrorMsg& e);
  void Start(const Entry& e, TimePoint now);

  // Results.
  void Finish(FinishedTask t);
  void SendResults();
  void Resend();

  uint32_t Window() const;
  void NoteWelcome() {
    connected_ = true;
    instance_ = conn_->master().instance;
    epoch_ = conn_->master().epoch;
    master_heartbeat_ = conn_->master().heartbeat;
  }
  void DropStale();
  void ReleaseUnstarted();
  // Tasks this process holds, of the current epoch: running, or results not
  // acknowledged (hello.holding).
  std::vector<uint64_t> Holding() const;
  Status Send(const Message& m) {
    last_sent_ = Clock::now();
    return conn_->Send(m);
  }
  void SendHello() {
    last_hello_ = last_sent_ = Clock::now();
    (void)conn_->SendHello(Holding());
  }
  int Exit(int code, bool goodbye);
  int Report(const Status& s);

  const WorkerOptions& o_;
  std::unique_ptr<Connection> conn_;
  HandlerSet handlers_;
  std::ostream& out_;
  std::ostream& err_;
  TaskPrinter printer_;
  Executor executor_;
  std::atomic<bool> cancelled_{false};
  CancelToken cancel_;

  bool connected_ = false;  // the current connection got its welcome
  uint64_t instance_ = 0;
  uint64_t epoch_ = 0;  // whose task ids the tasks we hold carry
  std::chrono::milliseconds master_heartbeat_{1000};
  TimePoint last_sent_ = Clock::now();
  TimePoint last_hello_ = Clock::now();

  uint32_t in_flight_ = 0;                // tasks received and not finished
  std::unordered_set<uint64_t> running_;  // their ids (for hello.holding)
  uint64_t get_rid_ = 0;
  bool get_out_ = false;  // a get is waiting for its answer
  uint32_t get_max_ = 0;
  TimePoint get_sent_;
  // Moving averages that size the window: time per task, round trip of a get.
  double task_us_ = 0, rtt_us_ = 0;

  std::vector<PendingResult> unsent_;                       // finished, not sent yet
  std::map<uint64_t, std::vector<PendingResult>> unacked_;  // by rid: sent, not acknowledged
  uint64_t next_rid_ = 1;

  bool stopping_ = false;
  TimePoint stop_deadline_;
  std::vector<uint64_t> unstarted_;  // tasks that came while stopping: handed back unstarted
  std::vector<int> wait_fds_;        // what Wait watches besides the connection
};

// The window is how many leased tasks the worker holds at once. Enough to
// keep every thread busy across a round trip to the master: a get's
// round trip in task-times, times the threads, times 2 for slack. Slow
// tasks (downloads) give 2 x jobs, so tasks spread over all workers; tasks
// of a microsecond give thousands, so one message carries thousands.
uint32_t WorkerLoop::Window() const {
  const double jobs = o_.jobs;
  // --delay (a demo): hold only what runs, so that the tasks a paused worker
  // would sit on go to the other workers.
  if (o_.delay.count() > 0) return static_cast<uint32_t>(o_.jobs);
  const double per_rtt = task_us_ > 0 ? std::max(1.0, rtt_us_ / task_us_) : 1.0;
  return static_cast<uint32_t>(std::clamp(2.0 * jobs * per_rtt, 2.0 * jobs, double{kMaxWindow}));
}

int WorkerLoop::Run() {
  for (;;) {
    if (Status s = Ask(); !s.ok()) return Report(s);
    const TimePoint now = Clock::now();
    printer_.Flush(now);
    Result<uint32_t> ready = Wait(now);
    if (!ready.ok()) return Report(ready.status());
    const TimePoint after = Clock::now();
    if (std::optional<int> code = OnSignal(after)) return *code;
    if (*ready & Connection::FdReady(kFinishedFd))
      for (FinishedTask& t : executor_.TakeFinished()) Finish(std::move(t));
    std::optional<int> exit;
    if (*ready & Connection::kMessageReady)
      if (Status s = ReadMaster(&exit); !s.ok()) return Report(s);
    if (exit) return *exit;
    SendResults();
    CheckMaster(after);
    // Done when nothing runs, every result is acknowledged and no get is out
    // (a withdrawn get answers, empty or with tasks that go back at once).
    if (stopping_ && ((in_flight_ == 0 && unsent_.empty() && unacked_.empty() && !get_out_) ||
                      after >= stop_deadline_))
      return Exit(kExitOk, /*goodbye=*/true);
  }
}

// Asks for more tasks when the window has room and no get is out.
Status WorkerLoop::Ask() {
  if (!connected_ || stopping_ || get_out_) return Status::Ok();
  const uint32_t window = Window();
  // Ask when half the window is free, so a batch arrives before the threads run dry.
  if (in_flight_ > window / 2) return Status::Ok();
  Get g;
  g.rid = get_rid_ = next_rid_++;
  g.queue = o_.queue;
  g.max = window - in_flight_;
  g.timeout_ms = kGetTimeoutMs;
  g.lease = true;
  const std::vector<std::string> kinds = handlers_.Kinds();
  for (const std::string& k : kinds) g.kinds.push_back(k);
  get_out_ = true;
  get_max_ = g.max;
  get_sent_ = Clock::now();
  return Send(g);
}

// Waits for the master, for finished tasks (wait_fds_[kFinishedFd]) and for
// a signal; the result as Connection::Wait's.
Result<uint32_t> WorkerLoop::Wait(TimePoint now) {
  wait_fds_.assign(1, executor_.wake_fd());  // at kFinishedFd
  if (SignalFd() >= 0 && !stopping_) wait_fds_.push_back(SignalFd());
  // Wake for the next heartbeat, the master's silence check, or the grace end.
  TimePoint next = now + std::min(o_.heartbeat, master_heartbeat_);
  if (stopping_) next = std::min(next, stop_deadline_);
  return conn_->Wait(PollTimeout(next), wait_fds_);
}

// First signal: stop taking tasks, finish the ones running. Second: quit now.
std::optional<int> WorkerLoop::OnSignal(TimePoint now) {
  const int count = SignalCount();
  if (count == 0) return std::nullopt;
  if (count >= 2) {
    out_ << "stopping now; " << in_flight_ << " unfinished task(s) go back to the master"
         << std::endl;
    return Exit(kExitInterrupted, /*goodbye=*/true);
  }
  if (!stopping_) {
    stopping_ = true;
    stop_deadline_ = now + o_.grace;
    // What waits for a thread goes back now, free, for other workers; a get
    // still parked at the master is withdrawn (what it brought meanwhile
    // goes back too, as it arrives).
    for (const auto& [id, epoch] : executor_.DropPending()) {
      --in_flight_;
      running_.erase(id);
      if (epoch == epoch_) unstarted_.push_back(id);
    }
    ReleaseUnstarted();
    if (get_out_) (void)Send(Cancel{get_rid_});
    if (in_flight_ > 0)
      out_ << "stopping: finishing " << in_flight_ << " running task(s); Ctrl-C again to quit now"
           << std::endl;
  }
  return std::nullopt;
}

void WorkerLoop::ReleaseUnstarted() {
  if (unstarted_.empty() || !connected_) return;
  (void)Send(Release{unstarted_});
  unstarted_.clear();
}

Status WorkerLoop::ReadMaster(std::optional<int>* exit) {
  for (int i = 0; i < 1024 && !*exit; ++i) {
    zmq::message_t frame;
    Result<Message> m = conn_->TryReceive(&frame);
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) return Status::Ok();
      if (m.status().code() != Code::kProtocol) return m.status();
      err_ << "task_worker: " << m.status().message() << "\n";  // one bad message is not fatal
      continue;
    }
    Dispatch(*m, exit);
  }
  return Status::Ok();
}

void WorkerLoop::Dispatch(const Message& m, std::optional<int>* exit) {
  if (const auto* items = std::get_if<Items>(&m)) return OnItems(*items);
  if (const auto* ok = std::get_if<ResultOk>(&m)) {
    unacked_.erase(ok->rid);
    return;
  }
  if (const auto* w = std::get_if<Welcome>(&m)) return OnWelcome(*w);
  if (const auto* e = std::get_if<ErrorMsg>(&m); e && e->code == kErrForbidden) {
    // Asking again would be refused again: the key (or --queue) is wrong.
    err_ << "task_worker: not allowed with this key: " << e->message << "\n";
    *exit = Exit(kExitForbidden, /*goodbye=*/true);
    return;
  }
  if (const auto* e = std::get_if<ErrorMsg>(&m)) return OnError(*e);
  if (std::holds_alternative<Shutdown>(m)) *exit = Exit(kExitOk, /*goodbye=*/false);
  // ping: hearing anything is all it is for
}

void WorkerLoop::OnItems(const Items& m) {
  get_out_ = false;
  const TimePoint now = Clock::now();
  // A full batch came back at once: a real round trip, not a parked wait.
  if (!m.items.empty() && m.items.size() == get_max_) {
    const double us = std::chrono::duration<double, std::micro>(now - get_sent_).count();
    rtt_us_ = rtt_us_ == 0 ? us : 0.8 * rtt_us_ + 0.2 * us;
  }
  for (const Entry& e : m.items) Start(e, now);
  ReleaseUnstarted();  // what came while stopping
}

void WorkerLoop::Start(const Entry& e, TimePoint now) {
  // While stopping, tasks that still arrive are not started: the goodbye
  // hands them back to the master, without using up an attempt.
  if (stopping_) return unstarted_.push_back(e.id);
  Item task = Item::FromEntry(e);
  Handler* h = handlers_.Find(task.kind);
  ++in_flight_;
  running_.insert(task.id);
  if (!h) {
    // The master hands out only the kinds we announced: if this happens,
    // another worker is the one to run it.
    Finish(FinishedTask{task.id,
                        RunOutcome::WorkerFault("this worker does not run '" + task.kind +
                                                "' tasks (commands need task_worker --exec)"),
                        0, epoch_});
    return;
  }
  if (h->Instant() && o_.delay.count() == 0) {
    printer_.Line("run task " + h->Describe(task) + "...", now);
    FinishedTask t = Executor::RunNow(task, h, cancel_);
    t.tag = epoch_;
    return Finish(std::move(t));
  }
  executor_.Submit(std::move(task), h, epoch_);
}

void WorkerLoop::OnWelcome(const Welcome& w) {
  conn_->NoteWelcome(w);
  const bool restarted = instance_ != 0 && w.instance != instance_;
  if (!connected_) {
    out_ << "Reconnected to " << conn_->display() << (restarted ? " (the master restarted)" : "")
         << std::endl;
  }
  const uint64_t old_epoch = epoch_;
  NoteWelcome();
  if (epoch_ != old_epoch) unstarted_.clear();  // ids of a master that is gone
  get_out_ = false;                             // a get sent before is gone with the old session
  DropStale();
  Resend();
}

std::vector<uint64_t> WorkerLoop::Holding() const {
  std::vector<uint64_t> ids(running_.begin(), running_.end());
  for (const PendingResult& r : unsent_)
    if (r.epoch == epoch_) ids.push_back(r.id);
  for (const auto& [rid, batch] : unacked_)
    for (const PendingResult& r : batch)
      if (r.epoch == epoch_) ids.push_back(r.id);
  return ids;
}

// Results for tasks of another epoch name ids this master does not know (it
// restarted without its journal): they must not reach it.
void WorkerLoop::DropStale() {
  std::size_t dropped = 0;
  auto stale = [&](const PendingResult& r) {
    if (r.epoch == epoch_) return false;
    ++dropped;
    return true;
  };
  std::erase_if(unsent_, stale);
  for (auto& [rid, batch] : unacked_) std::erase_if(batch, stale);
  if (dropped > 0)
    out_ << "Dropped " << dropped << " result(s) for tasks of the master before its restart"
         << std::endl;
}

void WorkerLoop::OnError(const ErrorMsg& e) {
  if (e.code == kErrHelloRequired) {
    // The master does not know this connection (it restarted, or declared
    // us dead): introduce ourselves again; results go out after welcome.
    if (connected_) SendHello();
    connected_ = false;
    get_out_ = false;
    return;
  }
  err_ << "task_worker: the master says: " << e.message << "\n";
  get_out_ = false;
}

void WorkerLoop::Finish(FinishedTask t) {
  --in_flight_;
  running_.erase(t.id);
  // A result the master would refuse (and with it the whole batch) fails here.
  if (t.outcome.ok && t.outcome.value.packed().size() > kMaxValueBytes)
    t.outcome = RunOutcome::Error("the result is larger than 16 MiB", /*retry=*/false);
  task_us_ = task_us_ == 0 ? t.elapsed_us : 0.9 * task_us_ + 0.1 * t.elapsed_us;
  if (task_us_ < 0.1) task_us_ = 0.1;
  PendingResult r{t.id, t.outcome.ok, {}, t.elapsed_us, t.outcome.retry, t.outcome.worker_fault,
                  t.tag};
  r.data = t.outcome.ok ? t.outcome.value.packed() : t.outcome.error.substr(0, kMaxErrorBytes);
  unsent_.push_back(std::move(r));
}

// Sends what finished in one message per kResultsPerMessage: results go back
// in batches, and a lone result goes at once.
void WorkerLoop::SendResults() {
  if (!connected_) return;
  DropStale();  // tasks that finished after a restart
  while (!unsent_.empty()) {
    std::size_t n = 0, bytes = 0;
    while (n < unsent_.size() && n < kResultsPerMessage &&
           (n == 0 || bytes + unsent_[n].data.size() < kResultBytesPerMessage))
      bytes += unsent_[n++].data.size() + 16;
    std::vector<PendingResult> batch(std::make_move_iterator(unsent_.begin()),
                                     std::make_move_iterator(unsent_.begin() + n));
    unsent_.erase(unsent_.begin(), unsent_.begin() + n);
    ResultMsg msg;
    msg.rid = next_rid_++;
    msg.lazy_ack = !stopping_;  // the ack may ride with our next tasks; a stopping worker waits for it
    msg.results.reserve(batch.size());
    for (const PendingResult& p : batch) {
      TaskResult r{p.id, p.ok, {}, {}, p.elapsed_us, p.retry};
      r.worker_fault = !p.ok && p.worker_fault;
      (p.ok ? r.value : r.error) = p.data;
      msg.results.push_back(r);
    }
    if (!Send(msg).ok()) {  // the socket's queue is full: keep them for later
      unsent_.insert(unsent_.begin(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
      return;
    }
    unacked_.emplace(msg.rid, std::move(batch));
  }
}

// After a new welcome: what was sent and not acknowledged may be lost.
// Sending it again is safe: the master takes one result per task.
void WorkerLoop::Resend() {
  for (auto& [rid, batch] : unacked_)
    unsent_.insert(unsent_.begin(), std::make_move_iterator(batch.begin()),
                   std::make_move_iterator(batch.end()));
  unacked_.clear();
  SendResults();
}

// Heartbeats out, hello again while no welcome came, and a master that fell
// silent means a new connection.
void WorkerLoop::CheckMaster(TimePoint now) {
  if (now - last_sent_ >= o_.heartbeat) (void)Send(Ping{});
  if (!connected_) {
    // A hello sent while the master was away may be lost with its connection.
    if (now - last_hello_ >= std::chrono::seconds(2)) SendHello();
    return;
  }
  const auto silent = now - conn_->last_heard();
  if (silent <= 3 * master_heartbeat_ + std::chrono::milliseconds(500)) return;
  out_ << "Lost contact with the master at " << conn_->display() << "; reconnecting..."
       << std::endl;
  connected_ = false;
  get_out_ = false;
  if (Status s = conn_->Reconnect(Holding()); !s.ok())
    err_ << "task_worker: " << s.message() << "\n";
  last_hello_ = last_sent_ = now;
}

int WorkerLoop::Exit(int code, bool goodbye) {
  if (goodbye) {
    SendResults();  // if connected: results not sent now are run again elsewhere
    Goodbye bye;
    bye.release = unstarted_;
    for (const auto& [id, epoch] : executor_.Cancel())
      if (epoch == epoch_) bye.release.push_back(id);
    (void)Send(bye);
  }
  printer_.Flush(Clock::now());
  out_ << "worker exit." << std::endl;
  return code;
}

int WorkerLoop::Report(const Status& s) {
  err_ << "task_worker: " << s.message() << "\n";
  return ExitCodeFor(s, /*connected=*/true);
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

}  // namespace

int RunWorker(const WorkerOptions& o, std::ostream& out, std::ostream& err) {
  const std::string name = o.name.empty() ? DefaultName() : o.name;
  HandlerSet handlers = HandlerSet::BuiltIn();
  if (std::optional<int> code = AddDownloads(o, name, &handlers, out, err)) return *code;
  if (!o.exec.argv.empty()) handlers.Add(o.exec_kind, std::make_unique<ExecHandler>(o.exec));
  out << "Connect to server " << o.server.Display() << "..." << std::endl;
  Result<DerivedKeys> keys = DeriveKeys(o.authkey);
  if (!keys.ok()) {
    err << "task_worker: " << keys.status().message() << "\n";
    return kExitError;
  }
  zmq::context_t ctx(1);
  ConnectOptions co;
  co.endpoint = o.server.TcpEndpoint();
  co.display = o.server.Display();
  co.keys = &*keys;
  co.peer.role = "worker";
  co.peer.name = name;
  co.peer.capacity = static_cast<uint32_t>(o.jobs);
  co.peer.heartbeat_ms = static_cast<uint32_t>(o.heartbeat.count());
  co.peer.kinds = handlers.Kinds();
  co.connect_timeout = o.connect_timeout;
  co.interrupt_fd = SignalFd();
  co.on_waiting = [&out](const std::string& line) { out << line << std::endl; };
  Result<std::unique_ptr<Connection>> conn = Connection::Open(ctx, co);
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
  WorkerLoop loop(o, std::move(*conn), std::move(handlers), out, err);
  return loop.Run();
}

}  // namespace taskq
