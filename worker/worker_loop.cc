#include "worker/worker_loop.h"

#include <algorithm>
#include <iostream>

#include "client/exit_codes.h"
#include "client/signals.h"
#include "proto/limits.h"

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

}  // namespace

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

WorkerLoop::WorkerLoop(const WorkerOptions& o, std::unique_ptr<Connection> conn, MasterList masters,
                       HandlerSet handlers, std::ostream& out, std::ostream& err)
    : o_(o),
      conn_(std::move(conn)),
      handlers_(std::move(handlers)),
      kinds_(handlers_.Kinds()),
      out_(out),
      err_(err),
      printer_(out, o.quiet),
      executor_(o.jobs, o.delay, [this](const Item& t, Handler* h) { SayRun(t, h, Clock::now()); }),
      cancel_(&cancelled_),
      session_(conn_->master().instance, conn_->master().epoch),
      masters_(std::move(masters)),
      master_heartbeat_(conn_->master().heartbeat) {}

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
    if (*ready & Connection::kDropped) {
      SessionActions todo;
      session_.OnDisconnect(after, &todo);
      Perform(todo);
    }
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
  if (!session_.welcomed() || stopping_ || get_out_) return Status::Ok();
  const uint32_t window = Window();
  // Ask when half the window is free, so a batch arrives before the threads run dry.
  if (in_flight_ > window / 2) return Status::Ok();
  Get g;
  g.queue = o_.queue;
  g.max = window - in_flight_;
  g.timeout_ms = kGetTimeoutMs;
  g.lease = true;
  g.kinds.assign(kinds_.begin(), kinds_.end());
  get_out_ = true;
  get_max_ = g.max;
  get_sent_ = Clock::now();
  Message m = std::move(g);
  get_rid_ = session_.Start(&m);
  return SendTracked(get_rid_);
}

Status WorkerLoop::SendTracked(uint64_t rid) {
  if (!session_.welcomed()) return Status::Ok();  // it goes with the welcome
  last_sent_ = Clock::now();
  return conn_->SendEncoded(session_.Encoded(rid));
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
    for (const auto& [id, term] : executor_.DropPending()) {
      --in_flight_;
      running_.erase(id);
      if (term == term_) unstarted_.push_back(id);
    }
    ReleaseUnstarted();
    if (get_out_ && session_.welcomed()) {
      (void)Send(Cancel{get_rid_});
    } else if (get_out_) {
      // No master now (lost, the next not there yet): the get waits for a
      // welcome only to bring tasks that would go back at once. Without
      // it the worker stops when its tasks do, not at the end of --grace.
      session_.Abandon(get_rid_);
      get_out_ = false;
    }
    if (in_flight_ > 0)
      out_ << "stopping: finishing " << in_flight_ << " running task(s); Ctrl-C again to quit now"
           << std::endl;
    std::size_t kept = unsent_.size();
    for (const auto& [rid, batch] : unacked_) kept += batch.size();
    if (!session_.welcomed() && kept > 0)
      out_ << "stopping: no master answers; keeping " << kept
           << " result(s) it has not acknowledged for up to " << o_.grace.count() / 1000.0
           << " s, in case it comes back; Ctrl-C again to quit now" << std::endl;
  }
  return std::nullopt;
}

void WorkerLoop::ReleaseUnstarted() {
  if (unstarted_.empty() || !session_.welcomed()) return;
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
    // Tasks run in place (Instant) finished with their items: their results
    // leave now, not after the read that finds nothing more (two system
    // calls on the way of every lone task), and the next get with them: the
    // last call on the socket before the wait is then that read, so the
    // wait need not ask the socket again (Connection::Wait).
    if (std::holds_alternative<Items>(*m) && !unsent_.empty()) {
      SendResults();
      TASKQ_TRY(Ask());
    }
  }
  return Status::Ok();
}

void WorkerLoop::Dispatch(const Message& m, std::optional<int>* exit) {
  SessionActions todo;
  const Session::Received got = session_.OnMessage(m, Clock::now(), &todo);
  switch (got.kind) {
    case Session::Kind::kReply:
      OnReply(m, got.rid, exit);
      break;
    case Session::Kind::kWelcome:
      OnWelcome(std::get<Welcome>(m), got, &todo);
      watch_silence_ = true;
      break;
    case Session::Kind::kStale:
      // Tasks nobody asked for any more go back, unstarted.
      if (const auto* items = std::get_if<Items>(&m); items && !items->items.empty()) {
        Release back;
        for (const Entry& e : items->items) back.ids.push_back(e.id);
        (void)Send(back);
      }
      break;
    case Session::Kind::kHandled:  // hello_required: the master is there
      watch_silence_ = false;
      break;
    case Session::Kind::kNotice:
      if (const auto* e = std::get_if<ErrorMsg>(&m)) OnError(*e, exit);
      if (const auto* s = std::get_if<Shutdown>(&m)) {
        // A master on a store that another takes over from (task_master
        // --store): given several masters, go on with the next, as for a
        // master lost. Otherwise (and while stopping) a shutdown ends us.
        if (s->handover && masters_.size() > 1 && !stopping_)
          LeaveMaster(Clock::now(),
                      "The master at " + conn_->display() +
                          " stopped and hands its queues over to another master of its store",
                      &todo);
        else
          *exit = Exit(kExitOk, /*goodbye=*/false);
      }
      break;  // ping: hearing anything is all it is for
  }
  Perform(todo);
}

void WorkerLoop::OnReply(const Message& m, uint64_t rid, std::optional<int>* exit) {
  if (const auto* items = std::get_if<Items>(&m)) return OnItems(*items);
  // A result_ok, or an error that refused a batch or the get.
  unacked_.erase(rid);
  if (rid == get_rid_) get_out_ = false;
  if (const auto* e = std::get_if<ErrorMsg>(&m)) OnError(*e, exit);
}

void WorkerLoop::OnError(const ErrorMsg& e, std::optional<int>* exit) {
  if (e.code == kErrForbidden) {
    // Asking again would be refused again: the key (or --queue) is wrong.
    err_ << "task_worker: not allowed with this key: " << e.message << "\n";
    *exit = Exit(kExitForbidden, /*goodbye=*/true);
    return;
  }
  err_ << "task_worker: the master says: " << e.message << "\n";
}

void WorkerLoop::Perform(const SessionActions& todo) {
  if (todo.hello) {
    last_sent_ = Clock::now();
    (void)conn_->SendHello(Holding());
  }
  for (uint64_t rid : todo.resend) {
    if (rid == get_rid_ && stopping_) {  // a stopping worker asks for nothing more
      session_.Abandon(rid);
      get_out_ = false;
      continue;
    }
    (void)SendTracked(rid);
  }
  for (const auto& [rid, why] : todo.ended) {
    if (rid == get_rid_) get_out_ = false;
    if (auto it = unacked_.find(rid); it != unacked_.end()) {
      dropped_ += it->second.size();  // tasks of an older epoch (SendResults tells)
      unacked_.erase(it);
    }
  }
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
  running_.emplace(task.id, term_);
  if (!h) {
    // The master hands out only the kinds we announced: if this happens,
    // another worker is the one to run it.
    Finish(FinishedTask{task.id,
                        RunOutcome::WorkerFault("this worker does not run '" + task.kind +
                                                "' tasks (commands need task_worker --exec)"),
                        0, term_, task.attempt});
    return;
  }
  if (h->Instant() && o_.delay.count() == 0) {
    SayRun(task, h, now);
    FinishedTask t = Executor::RunNow(task, h, cancel_);
    t.tag = term_;
    return Finish(std::move(t));
  }
  executor_.Submit(std::move(task), h, term_);
}

// "run task ...", built only when it is printed (a lone task's hot path).
void WorkerLoop::SayRun(const Item& t, Handler* h, TimePoint now) {
  if (!printer_.quiet()) printer_.Line("run task " + h->Describe(t) + "...", now);
}

void WorkerLoop::Finish(FinishedTask t) {
  --in_flight_;
  running_.erase(t.id);
  // A result the master would refuse (and with it the whole batch) fails here.
  if (t.outcome.ok && t.outcome.value.packed().size() > kMaxValueBytes)
    t.outcome = RunOutcome::Error("the result is larger than 16 MiB", /*retry=*/false);
  task_us_ = task_us_ == 0 ? t.elapsed_us : 0.9 * task_us_ + 0.1 * t.elapsed_us;
  if (task_us_ < 0.1) task_us_ = 0.1;
  PendingResult r{t.id,  t.outcome.ok, {}, t.elapsed_us, t.outcome.retry, t.outcome.worker_fault,
                  t.tag, t.attempt};
  r.data = t.outcome.ok ? t.outcome.value.packed() : t.outcome.error.substr(0, kMaxErrorBytes);
  unsent_.push_back(std::move(r));
}

// Sends what finished in one message per kResultsPerMessage: results go back
// in batches, and a lone result goes at once.
void WorkerLoop::SendResults() {
  if (!session_.welcomed()) return;
  DropStale();  // tasks that finished after a restart
  while (!unsent_.empty()) {
    std::size_t n = 0, bytes = 0;
    while (n < unsent_.size() && n < kResultsPerMessage &&
           (n == 0 || bytes + unsent_[n].data.size() < kResultBytesPerMessage))
      bytes += unsent_[n++].data.size() + 16;
    ResultMsg msg;
    // The ack may ride with our next tasks; a stopping worker waits for it.
    msg.lazy_ack = !stopping_;
    msg.results.reserve(n);
    std::vector<uint64_t> ids;
    ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const PendingResult& p = unsent_[i];
      TaskResult r{p.id, p.ok, {}, {}, p.elapsed_us, p.retry};
      r.attempt = p.attempt;
      r.worker_fault = !p.ok && p.worker_fault;
      (p.ok ? r.value : r.error) = p.data;
      msg.results.push_back(r);
      ids.push_back(p.id);
    }
    Message m = std::move(msg);
    const uint64_t rid = session_.Start(&m);  // encoded: the batch's bytes may go now
    if (!SendTracked(rid).ok()) {
      session_.Abandon(rid);  // the socket's queue is full: they stay for later
      return;
    }
    unsent_.erase(unsent_.begin(), unsent_.begin() + n);
    unacked_.emplace(rid, std::move(ids));
  }
}

int WorkerLoop::Exit(int code, bool goodbye) {
  if (goodbye) {
    SendResults();  // if connected: results not sent now are run again elsewhere
    Goodbye bye;
    bye.release = unstarted_;
    for (const auto& [id, term] : executor_.Cancel())
      if (term == term_) bye.release.push_back(id);
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

}  // namespace taskq
