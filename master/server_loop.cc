#include "master/server_loop.h"

#include <cerrno>
#include <cstring>

#include "client/signals.h"
#include "master/status_report.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Messages read per poll wake-up before timers and the outbox get a turn, so
// a flood from one peer cannot starve the heartbeats.
constexpr int kReadsPerPass = 4096;
// How long shutdown notices get to leave once the loop stops.
constexpr int kShutdownLingerMs = 1000;
// A message of task_master's own job waits in memory (LocalChannel): the
// pass that handles it polls only if the last poll is older than this or
// was not over the same fds (Step's also: the job's, with the signal fd,
// or none while it pauses). A lone task's job sends two requests (the next
// put, then the get for its outcome) after each outcome, each waiting for
// its reply: two polls over every fd on the way of each task, for nothing,
// while every fd is polled again within this bound whatever the job does.
constexpr auto kLocalPassWithoutPoll = std::chrono::microseconds(200);

// The role of the connection a message came from: the user id ZAP gave it
// (ZapHandler names one of the three), which libzmq attaches to each of its
// messages. The inproc endpoint (task_master's own job) has no handshake and
// so no User-Id: only this process reaches it, and it is the admin. (Any
// other user id cannot come; it would get the role that sees least.)
Role RoleOf(zmq::message_t& msg) {
  const char* user = zmq_msg_gets(msg.handle(), "User-Id");
  if (!user) return Role::kAdmin;
  return RoleFromName(user).value_or(Role::kSubmitter);
}

}  // namespace

Status ServerLoop::OpenJournal(RecoveryReport* report) {
  if (!options_.journal) return Status::Ok();
  Result<std::unique_ptr<Journal>> j = Journal::Open(*options_.journal, broker_, report);
  if (!j.ok()) return j.status();
  journal_ = std::move(*j);
  broker_.AttachLog(journal_.get(), journal_->epoch());
  return Status::Ok();
}

Result<int> ServerLoop::Bind(const std::string& control_endpoint) {
  const std::string port = options_.port == 0 ? "*" : std::to_string(options_.port);
  const std::string endpoint = "tcp://" + options_.bind + ":" + port;
  TASKQ_TRY(zap_.Bind());
  TASKQ_TRY(monitor_.Attach(router_));
  try {
    control_.connect(control_endpoint);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes + 256));
    // A peer that connects and never finishes the handshake is cut off.
    router_.set(zmq::sockopt::handshake_ivl, 5000);
    // ZMTP heartbeats drop a connection whose peer vanished without closing
    // it (a crashed machine, a frozen process); the next send to it then
    // fails, and its leases go back (Broker::CheckPeers).
    const int hb = static_cast<int>(options_.broker.heartbeat.count());
    router_.set(zmq::sockopt::heartbeat_ivl, hb);
    router_.set(zmq::sockopt::heartbeat_timeout, std::max(3 * hb, 1000));
    // Sends never block and per-worker credit (get.max) bounds what is in
    // flight, so the high-water marks are a safety net, not flow control.
    router_.set(zmq::sockopt::sndhwm, 100000);
    router_.set(zmq::sockopt::rcvhwm, 100000);
    if (options_.bind.find(':') != std::string::npos) router_.set(zmq::sockopt::ipv6, 1);
    router_.set(zmq::sockopt::curve_server, 1);
    router_.set(zmq::sockopt::curve_secretkey, options_.keys.master.secret_z85);
    router_.set(zmq::sockopt::zap_domain, "taskq");
    router_.bind(endpoint);
    // Bind first, then ask which port: read it before the inproc bind
    // replaces LAST_ENDPOINT.
    const std::string last = router_.get(zmq::sockopt::last_endpoint);
    const int bound = std::stoi(last.substr(last.rfind(':') + 1));
    if (!options_.inproc_endpoint.empty()) router_.bind(options_.inproc_endpoint);
    return bound;
  } catch (const zmq::error_t& e) {
    std::string shown = (options_.bind == "*" ? "all interfaces" : options_.bind) + " port " +
                        std::to_string(options_.port);
    if (e.num() == EADDRINUSE)
      return Status::Error(Code::kCannotListen,
                           "cannot listen on " + shown + ": the port is in use");
    if (e.num() == EADDRNOTAVAIL || e.num() == ENODEV)
      return Status::Error(Code::kCannotListen,
                           "cannot listen on " + shown + ": no such local address");
    return Status::Error(Code::kCannotListen, "cannot listen on " + shown + ": " + e.what());
  }
}

void ServerLoop::Begin() {
  if (options_.status_every.count() > 0) next_status_ = Clock::now() + options_.status_every;
  if (options_.board) next_publish_ = Clock::now();
  router_i_ = watch_.AddSocket(router_.handle());
  zap_i_ = watch_.AddSocket(zap_.socket().handle());
  monitor_i_ = watch_.AddSocket(monitor_.socket().handle());
  control_i_ = watch_.AddSocket(control_.handle());
  status_i_ = options_.status_fd >= 0 ? watch_.AddFd(options_.status_fd) : -1;
  broker_.CountRepliesTo(LocalChannel::kPeerId);
  begun_ = true;
}

void ServerLoop::Run() {
  if (!begun_) Begin();
  while (Step(nullptr, -1)) {
  }
}

bool ServerLoop::Step(SocketWatch* also, int most_ms) {
  const TimePoint wake = std::min({broker_.NextDeadline(), next_status_, next_publish_});
  int timeout = PollTimeout(wake, std::chrono::minutes(1));
  if (journal_) {  // its medium may fail while nothing happens here (NatsMedium's fence)
    const int every = static_cast<int>(journal_->commit_every().count());
    if (timeout < 0 || timeout > every) timeout = every;
  }
  if (most_ms >= 0 && (timeout < 0 || timeout > most_ms)) timeout = most_ms;
  if (!local_.to_master.empty()) timeout = 0;
  const uint64_t also_generation = also ? also->generation() : 0;
  if (!local_.to_master.empty() && also_generation == last_polled_also_ &&
      Clock::now() - last_poll_ < kLocalPassWithoutPoll) {
    watch_.Skip();
    if (also) also->Skip();
  } else {
    if (!(also ? watch_.WaitWith(*also, timeout) : watch_.Wait(timeout))) {
      RecordIfFailed(Status::Error(Code::kIo, std::string("poll failed: ") + std::strerror(errno)));
      return false;
    }
    last_poll_ = Clock::now();
    last_polled_also_ = also_generation;
  }
  if (watch_.Ready(zap_i_)) zap_.HandlePending();
  if (watch_.Ready(monitor_i_)) monitor_.HandlePending();
  // The ROUTER is asked for its events again before the next wait only if
  // something may have hidden them from its fd (client/socket_watch.h): a
  // read that stopped short of EAGAIN, or a send. Asking costs two system
  // calls, on the way of every lone task. So every send of a pass goes
  // through SendOnRouter, which notes it; a new use of router_ here must
  // Touch it too.
  sent_on_router_ = false;
  const bool read_router = watch_.Ready(router_i_) || router_cut_short_;
  if (router_cut_short_) {
    // The last read stopped to hand the job its reply (ReadRouter): what
    // the job sent since (its next task) goes out before the rest is read.
    ReadLocal();
    Pass(false);
  }
  if (read_router && ReadRouter()) watch_.Drained(router_i_);
  ReadLocal();
  Pass(status_i_ >= 0 && watch_.Ready(status_i_));
  if (sent_on_router_) watch_.Touch(router_i_);
  if (watch_.Ready(control_i_) && ReadControl()) return false;
  if (!failure().ok()) {
    // Nothing unwritten is acknowledged: the replies waiting go, and only
    // the shutdown notices leave.
    Log(failure().message() + "; the master stops");
    // A master that lost its NATS store (another took over, or it stopped
    // answering) goes silent instead: its workers take it for lost and move
    // to the next master of their list, where a shutdown would end them.
    const Code why = failure().code();
    if (why == Code::kTakenOver || why == Code::kUnavailable)
      broker_.DropOutbox();
    else
      SendShutdownAfterFailure(Clock::now());
    router_.set(zmq::sockopt::linger, kShutdownLingerMs);
    return false;
  }
  return true;
}

// After reading: tick the timers, send (behind the durability barrier),
// write the journal, report.
void ServerLoop::Pass(bool status_asked) {
  const TimePoint now = Clock::now();
  broker_.Tick(now);
  SendReplies(now);
  if (journal_) {
    // Changes no reply followed (a lease that expired with nobody waiting).
    RecordIfFailed(journal_->Commit());
    RecordIfFailed(journal_->Compact());
  }
  if (now >= next_status_ || status_asked) Report(now);
  if (now >= next_publish_) {
    publisher_.Publish(broker_, journal_.get(), now);
    next_publish_ = now + options_.publish_every;
  }
}

// The broker's replies leave in batches, each only once the journal holds
// every change the broker made before it (DurabilityBarrier): a reply that
// acknowledges a change (put_ok, result_ok, ack_ok, an items reply whose
// take or lease is recorded) never leaves before that change is written
// down. Settling a batch may make changes and queue replies (entries back
// from a reply that could not be sent go to parked gets; a peer gone gives
// its tasks back): those come with the next batch, behind the barrier again.
void ServerLoop::SendReplies(TimePoint now) {
  broker_.ReadyOutbox(now);
  for (broker_.TakeOutbox(&batch_); !batch_.empty(); broker_.TakeOutbox(&batch_)) {
    const bool durable = DurabilityBarrier();
    for (const OutMsg& m : batch_)
      broker_.Settle(m, durable ? SendOnRouter(m) : SendResult::kFull, now);
  }
}

// The journal's pending records go to its file, all at once, and with
// --fsync always to the disk (Journal::Commit). False when that failed: the
// journal keeps failing, no reply of the batch leaves (an items reply's
// entries go back) and the loop stops after this pass.
bool ServerLoop::DurabilityBarrier() {
  if (!journal_ || !journal_->pending()) return true;
  return RecordIfFailed(journal_->Commit());
}

// The journal failed: nothing unwritten is acknowledged. The replies
// waiting are dropped and only the shutdown notices leave (they acknowledge
// nothing, so no barrier); what settling them queues stays unsent.
void ServerLoop::SendShutdownAfterFailure(TimePoint now) {
  broker_.DropOutbox();
  broker_.Shutdown("master error");
  broker_.TakeOutbox(&batch_);
  for (const OutMsg& m : batch_) broker_.Settle(m, SendOnRouter(m), now);
  broker_.DropOutbox();
}

// Never blocks: a peer whose pipe is full gets kFull.
SendResult ServerLoop::SendOnRouter(const OutMsg& m) {
  if (m.routing_id == LocalChannel::kPeerId) {
    local_.to_client.push_back(m.bytes);
    return SendResult::kSent;
  }
  sent_on_router_ = true;
  try {
    if (!router_.send(zmq::buffer(m.routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return SendResult::kFull;
    router_.send(zmq::buffer(m.bytes), zmq::send_flags::dontwait);
    return SendResult::kSent;
  } catch (const zmq::error_t&) {  // EHOSTUNREACH: ROUTER_MANDATORY says the peer is gone
    return SendResult::kGone;
  }
}

void ServerLoop::Report(TimePoint now) {
  const StatsOk s = broker_.Snapshot(now);
  if (DrainStatus()) {
    std::string report = StatusReport(s);
    if (journal_)
      report += "  journal: " + std::to_string(journal_->segments()) + " segment(s), " +
                std::to_string(journal_->bytes_on_disk()) + " bytes in " + journal_->where() + "\n";
    report.pop_back();
    Log(report);
  }
  if (now >= next_status_) {
    Log(StatusSummary(s));
    next_status_ = now + options_.status_every;
  }
}

// True when it read until nothing was left (the last receive processed the
// socket's commands, so its fd tells the truth again).
//
// A message that gives task_master's own job a reply (a result that served
// the job's parked get: with --in-flight 1, the outcome it waits for) ends
// the read: the pass hands the reply over, and the rest is read in the next
// step, after what the job sent meanwhile (its next task) has gone out
// (Step). Reading on first put a decode and a park (a worker's next get,
// behind its result) and a receive that finds nothing (two system calls) on
// the way of every lone task.
bool ServerLoop::ReadRouter() {
  router_cut_short_ = false;
  const uint64_t job_replies = broker_.replies_counted();
  zmq::message_t id, body;
  for (int i = 0; i < kReadsPerPass; ++i) {
    if (!router_.recv(id, zmq::recv_flags::dontwait)) return true;
    if (!id.more()) continue;  // a ROUTER always prefixes the routing id
    if (!router_.recv(body, zmq::recv_flags::dontwait)) return false;
    const std::string_view peer(id.data<char>(), id.size());
    if (peer == LocalChannel::kPeerId) {  // a socket peer may not pose as the job
      while (body.more() && router_.recv(body, zmq::recv_flags::dontwait)) {
      }
      continue;
    }
    const Role role = RoleOf(body);
    if (!body.more()) {
      broker_.Handle(peer, std::string_view(body.data<char>(), body.size()), Clock::now(), role);
      if (broker_.replies_counted() != job_replies) {
        router_cut_short_ = true;
        return false;
      }
      continue;
    }
    // A message is one frame: drain the rest and answer as for garbage.
    while (body.more() && router_.recv(body, zmq::recv_flags::dontwait)) {
    }
    broker_.Handle(peer, "\xc1", Clock::now(), role);
  }
  return false;
}

// task_master's job, through the LocalChannel: the admin, as over inproc.
void ServerLoop::ReadLocal() {
  while (!local_.to_master.empty()) {
    const std::string bytes = std::move(local_.to_master.front());
    local_.to_master.pop_front();
    broker_.Handle(LocalChannel::kPeerId, bytes, Clock::now(), Role::kAdmin);
  }
}

// The owner asked to stop: tell every peer, give the notices a bounded time.
bool ServerLoop::ReadControl() {
  zmq::message_t reason;
  if (!control_.recv(reason, zmq::recv_flags::dontwait)) return false;
  // With --store a standby takes over as this master lets go of the store
  // (NatsMedium's release): peers given several masters move on to it.
  broker_.Shutdown(reason.to_string_view(), journal_ && journal_->shared());
  SendReplies(Clock::now());
  if (journal_) RecordIfFailed(journal_->Commit());
  router_.set(zmq::sockopt::linger, kShutdownLingerMs);
  return true;
}

}  // namespace taskq
