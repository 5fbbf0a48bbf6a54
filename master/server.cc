#include "master/server.h"

#include <atomic>
#include <unordered_map>

#include "master/handshake_monitor.h"
#include "master/zap_handler.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Messages read per poll wake-up before timers and the outbox get a turn, so
// a flood from one peer cannot starve the heartbeats.
constexpr int kReadsPerPass = 4096;
// How long shutdown notices get to leave once the loop stops.
constexpr int kShutdownLingerMs = 1000;

int MillisUntil(TimePoint deadline, TimePoint now) {
  if (deadline == TimePoint::max()) return -1;
  if (deadline <= now) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(
      std::min<long long>(ms + 1, 60000));  // round up: never wake early and spin
}

// Log lines for refused connections, at most one per host per 10 s: a worker
// with the wrong key retries several times a second.
class RefusalLog {
 public:
  // The line to log for this refusal, or empty to stay quiet.
  std::string Note(const std::string& peer, const std::string& why, TimePoint now) {
    const std::string host = peer.substr(0, peer.rfind(':'));
    if (seen_.size() > 1024) seen_.clear();  // many hosts: forget rather than grow
    Entry& e = seen_[host];
    if (e.logged != TimePoint() && now - e.logged < std::chrono::seconds(10)) {
      ++e.quiet;
      return {};
    }
    std::string line = "refused a connection from " + peer + ": " + why;
    if (e.quiet > 0)
      line += " (" + std::to_string(e.quiet) + " more from this host since the last report)";
    e = Entry{now, 0};
    return line;
  }

 private:
  struct Entry {
    TimePoint logged;
    int quiet = 0;
  };
  std::unordered_map<std::string, Entry> seen_;
};

}  // namespace

// Owns the sockets and the Broker; lives on the loop thread once started.
class ServerLoop : public Transport {
 public:
  ServerLoop(zmq::context_t& ctx, const ServerOptions& options)
      : options_(options),
        broker_(options.broker, options.log),
        router_(ctx, zmq::socket_type::router),
        control_(ctx, zmq::socket_type::pair),
        zap_(ctx, options.keys.client.public_z85),
        monitor_(ctx, [this](const std::string& peer, const std::string& why) {
          broker_.CountRefusedHandshake();
          const std::string line = refusals_.Note(peer, why, Clock::now());
          if (options_.log && !line.empty()) options_.log(line);
        }) {}

  Result<int> Bind(const std::string& control_endpoint);
  void Run();

  SendResult Send(std::string_view routing_id, std::string_view bytes) override {
    try {
      if (!router_.send(zmq::buffer(routing_id),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return SendResult::kFull;
      router_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
      return SendResult::kSent;
    } catch (const zmq::error_t&) {  // EHOSTUNREACH: ROUTER_MANDATORY says the peer is gone
      return SendResult::kGone;
    }
  }

 private:
  void ReadRouter();
  bool ReadControl();

  const ServerOptions& options_;
  Broker broker_;
  zmq::socket_t router_;
  zmq::socket_t control_;
  ZapHandler zap_;
  RefusalLog refusals_;
  HandshakeMonitor monitor_;
};

Result<int> ServerLoop::Bind(const std::string& control_endpoint) {
  const std::string port = options_.port == 0 ? "*" : std::to_string(options_.port);
  const std::string endpoint = "tcp://" + options_.bind + ":" + port;
  if (Status s = zap_.Bind(); !s.ok()) return s;
  if (Status s = monitor_.Attach(router_); !s.ok()) return s;
  try {
    control_.connect(control_endpoint);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes + 256));
    // A peer that connects and never finishes the handshake is cut off.
    router_.set(zmq::sockopt::handshake_ivl, 5000);
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
      return Status::Error(Code::kIo, "cannot listen on " + shown + ": the port is in use");
    if (e.num() == EADDRNOTAVAIL || e.num() == ENODEV)
      return Status::Error(Code::kIo, "cannot listen on " + shown + ": no such local address");
    return Status::Error(Code::kIo, "cannot listen on " + shown + ": " + e.what());
  }
}

void ServerLoop::Run() {
  for (;;) {
    zmq::pollitem_t items[] = {
        {router_.handle(), 0, ZMQ_POLLIN, 0},
        {zap_.socket().handle(), 0, ZMQ_POLLIN, 0},
        {monitor_.socket().handle(), 0, ZMQ_POLLIN, 0},
        {control_.handle(), 0, ZMQ_POLLIN, 0},
    };
    const int timeout = MillisUntil(broker_.NextDeadline(), Clock::now());
    if (zmq_poll(items, 4, timeout) < 0 && zmq_errno() != EINTR) break;
    if (items[1].revents & ZMQ_POLLIN) zap_.HandlePending();
    if (items[2].revents & ZMQ_POLLIN) monitor_.HandlePending();
    if (items[0].revents & ZMQ_POLLIN) ReadRouter();
    const TimePoint now = Clock::now();
    broker_.Tick(now);
    broker_.Flush(*this, now);
    if ((items[3].revents & ZMQ_POLLIN) && ReadControl()) return;
  }
}

void ServerLoop::ReadRouter() {
  zmq::message_t id, body;
  for (int i = 0; i < kReadsPerPass; ++i) {
    if (!router_.recv(id, zmq::recv_flags::dontwait)) return;
    if (!id.more()) continue;  // a ROUTER always prefixes the routing id
    if (!router_.recv(body, zmq::recv_flags::dontwait)) return;
    const std::string_view peer(id.data<char>(), id.size());
    if (!body.more()) {
      broker_.Handle(peer, std::string_view(body.data<char>(), body.size()), Clock::now());
      continue;
    }
    // A message is one frame: drain the rest and answer as for garbage.
    while (body.more() && router_.recv(body, zmq::recv_flags::dontwait)) {
    }
    broker_.Handle(peer, "\xc1", Clock::now());
  }
}

// The owner asked to stop: tell every peer, give the notices a bounded time.
bool ServerLoop::ReadControl() {
  zmq::message_t reason;
  if (!control_.recv(reason, zmq::recv_flags::dontwait)) return false;
  broker_.Shutdown(reason.to_string_view());
  broker_.Flush(*this, Clock::now());
  router_.set(zmq::sockopt::linger, kShutdownLingerMs);
  return true;
}

Server::Server(zmq::context_t& ctx, ServerOptions options)
    : ctx_(ctx), options_(std::move(options)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  static std::atomic<uint64_t> n{0};
  const std::string control = "inproc://taskq-server-control-" + std::to_string(n.fetch_add(1));
  control_ = zmq::socket_t(ctx_, zmq::socket_type::pair);
  control_.set(zmq::sockopt::linger, 0);
  control_.bind(control);
  loop_ = std::make_unique<ServerLoop>(ctx_, options_);
  Result<int> port = loop_->Bind(control);
  if (!port.ok()) {
    loop_.reset();
    return port.status();
  }
  port_ = *port;
  // The loop's sockets were made on this thread; starting the thread is the
  // full memory barrier that lets them move to it.
  thread_ = std::thread([this] { loop_->Run(); });
  return Status::Ok();
}

void Server::Stop(const std::string& reason) {
  if (!thread_.joinable()) return;
  control_.send(zmq::buffer(reason), zmq::send_flags::none);
  thread_.join();
  loop_.reset();
}

}  // namespace taskq
