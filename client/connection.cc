#include "client/connection.h"

#include <sodium.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "client/zmtp_probe.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// Failed handshakes in a row, none succeeding, that mean the keys differ:
// libzmq itself would retry for ever (docs/LIBRARIES.md).
constexpr int kFailedHandshakesForAuthError = 3;
// A TCP connection this old with no welcome: ask the port what it is.
constexpr std::chrono::seconds kSilentHandshake{3};
constexpr std::chrono::milliseconds kProbeTimeout{2000};

std::string NextMonitorEndpoint() {
  static std::atomic<uint64_t> n{0};
  return "inproc://taskq-connection-monitor-" + std::to_string(n.fetch_add(1));
}

// The channel's string becomes the frame's bytes, moved, not copied.
void TakeFromChannel(std::deque<std::string>& from, zmq::message_t* frame) {
  auto* bytes = new std::string(std::move(from.front()));
  from.pop_front();
  *frame = zmq::message_t(
      bytes->data(), bytes->size(),
      [](void*, void* hint) { delete static_cast<std::string*>(hint); }, bytes);
}

}  // namespace

Connection::Connection(zmq::context_t& ctx, ConnectOptions options)
    : ctx_(ctx), options_(std::move(options)) {
  if (options_.peer.session == 0)
    randombytes_buf(&options_.peer.session, sizeof options_.peer.session);
}

// libzmq sends monitor events from its only I/O thread with a blocking send:
// closing the reading end (monitor_) while the socket is still monitored
// lets the next event (the old connection's CONNECT_RETRIED, say) block
// that thread for ever, and nothing connects again. Stop monitoring first.
void Connection::StopMonitor() {
  if (socket_ && monitor_) zmq_socket_monitor(socket_.handle(), nullptr, 0);
}

Connection::~Connection() { StopMonitor(); }

Result<std::unique_ptr<Connection>> Connection::Open(zmq::context_t& ctx, ConnectOptions options) {
  if (sodium_init() < 0) return Status::Error(Code::kIo, "libsodium could not be initialised");
  std::unique_ptr<Connection> c(new Connection(ctx, std::move(options)));
  const auto timeout = c->options_.connect_timeout;
  const TimePoint deadline = timeout.count() > 0 ? Clock::now() + timeout : TimePoint::max();
  Status s = c->OpenSocket();
  if (s.ok()) s = c->SendHello();
  if (s.ok()) s = c->AwaitWelcome(deadline);
  if (!s.ok()) {
    // The hello may still be queued for a master that is not there: do not
    // let linger hold up the caller's exit.
    if (c->socket_) c->socket_.set(zmq::sockopt::linger, 0);
    return s;
  }
  return c;
}

Status Connection::OpenSocket() {
  if (options_.local) {
    if (!options_.pump)
      return Status::Error(Code::kInvalid, "a local channel needs the master's loop to pump");
    watch_valid_ = false;
    return Status::Ok();
  }
  const bool tcp = options_.endpoint.rfind("tcp://", 0) == 0;
  if (tcp && !options_.keys)
    return Status::Error(Code::kInvalid,
                         "a tcp connection needs the keys derived from the authkey");
  failed_handshakes_ = 0;
  tcp_connected_ = false;
  handshaken_ = false;
  watch_valid_ = false;
  drained_ = false;  // a new socket is asked before the first wait
  try {
    socket_ = zmq::socket_t(ctx_, zmq::socket_type::dealer);
    // Bounded linger: the last results and the goodbye get a chance to
    // leave, but a dead master can never hang our exit (-1 would).
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes + 256));
    socket_.set(zmq::sockopt::reconnect_ivl, 100);
    // Back off while the master is down; but until a first welcome, try
    // often: a worker started before its master must join its first job
    // (the tutorial's lasts a second), not sleep through it.
    socket_.set(zmq::sockopt::reconnect_ivl_max, ever_welcomed_ ? 2000 : 250);
    // A server that accepts TCP but never speaks fails the handshake in 5 s, not 30.
    socket_.set(zmq::sockopt::handshake_ivl, 5000);
    if (tcp) {
      // ZMTP heartbeats drop a connection whose other end vanished without a
      // word (a crashed machine), so libzmq reconnects.
      socket_.set(zmq::sockopt::heartbeat_ivl, 1000);
      socket_.set(zmq::sockopt::heartbeat_timeout, 5000);
      if (options_.endpoint.find('[') != std::string::npos) socket_.set(zmq::sockopt::ipv6, 1);
      socket_.set(zmq::sockopt::curve_serverkey, options_.keys->master.public_z85);
      socket_.set(zmq::sockopt::curve_publickey, options_.keys->client.public_z85);
      socket_.set(zmq::sockopt::curve_secretkey, options_.keys->client.secret_z85);
      const std::string mon = NextMonitorEndpoint();
      const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
      if (zmq_socket_monitor(socket_.handle(), mon.c_str(), events) != 0)
        return Status::Error(Code::kIo, "cannot monitor the connection");
      monitor_ = zmq::socket_t(ctx_, zmq::socket_type::pair);
      monitor_.set(zmq::sockopt::linger, 0);
      monitor_.connect(mon);
    }
    socket_.connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error(Code::kInvalid, "cannot connect to " + options_.display + ": " + e.what());
  }
  return Status::Ok();
}

Status Connection::HandleMonitorEvents() {
  if (!monitor_) return Status::Ok();
  if (watch_valid_ && watch_monitor_ >= 0) watch_.Touch(watch_monitor_);
  for (;;) {
    zmq::message_t event, address;
    if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return Status::Ok();
    if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 6) continue;
    uint16_t id;
    std::memcpy(&id, event.data(), sizeof id);
    switch (id) {
      case ZMQ_EVENT_CONNECTED:
        if (!tcp_connected_) first_connected_at_ = Clock::now();
        tcp_connected_ = true;
        connected_at_ = Clock::now();
        break;
      case ZMQ_EVENT_CONNECT_RETRIED:
        // Also follows every failed handshake; only a master that never
        // accepted TCP is "not up yet".
        if (!tcp_connected_ && !ever_welcomed_ && options_.give_up_if_refused)
          return Status::Error(Code::kUnavailable, "no master listens at " + options_.display);
        if (!waiting_told_ && !tcp_connected_ && options_.on_waiting) {
          waiting_told_ = true;
          options_.on_waiting("waiting for the master at " + options_.display + " to come up...");
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        failed_handshakes_ = 0;
        handshaken_ = true;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        // Also follows every failed handshake: only a connection the master
        // knew can have taken requests with it.
        dropped_ = dropped_ || handshaken_;
        handshaken_ = false;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        // A wrong key fails within a millisecond of connecting; a handshake
        // that failed after seconds timed out (a master too busy to answer,
        // a network that lost packets): not a key problem.
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
            Clock::now() - connected_at_ > std::chrono::seconds(1))
          break;
        // Counted across reconnects: a master restarted with another key
        // fails every handshake too.
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            ++failed_handshakes_ >= kFailedHandshakesForAuthError)
          return HandshakeFailed();
        break;
    }
  }
}

Status Connection::ProbeForMaster() {
  std::string said;
  const ZmtpPeer peer = ProbeZmtp(options_.endpoint, kProbeTimeout, &said);
  const std::string other = NotAMasterMessage(peer, options_.display, said);
  return other.empty() ? Status::Ok() : Status::Error(Code::kInvalid, other);
}

// A peer that refuses our key and a program that is not ZeroMQ look alike
// to libzmq's monitor: ask the port itself which one it is.
Status Connection::HandshakeFailed() {
  TASKQ_TRY(ProbeForMaster());
  return Status::Error(
      Code::kAuthFailed,
      "authentication failed: the authkey does not match the master at " + options_.display);
}

Status Connection::SendHello(const std::vector<uint64_t>& holding) {
  Hello h;
  h.role = options_.peer.role;
  h.name = options_.peer.name;
  h.capacity = options_.peer.capacity;
  h.session = options_.peer.session;
  h.heartbeat_ms = options_.peer.heartbeat_ms;
  for (const std::string& k : options_.peer.kinds) h.kinds.push_back(k);
  h.holding = holding;
  return Send(h);
}

void Connection::NoteWelcome(const Welcome& w) {
  ever_welcomed_ = true;
  master_.name = std::string(w.master);
  master_.instance = w.instance;
  master_.epoch = w.epoch;
  master_.heartbeat = std::chrono::milliseconds(w.heartbeat_ms);
  master_.max_batch = w.max_batch;
}

Status Connection::AwaitWelcome(TimePoint deadline) {
  bool probed = false;
  for (;;) {
    zmq::message_t frame;
    // In slices: a TCP connection with no handshake for a while is a peer
    // that speaks something else (HTTP, SSH): libzmq waits on it silently.
    const TimePoint slice = std::min(deadline, Clock::now() + std::chrono::seconds(1));
    Result<Message> m = Receive(&frame, slice);
    if (!m.ok() && m.status().code() == Code::kTimeout && slice < deadline) {
      // Since the first connection: a server that closes idle connections
      // (and libzmq connects again) must not keep the probe from running.
      if (!probed && tcp_connected_ && Clock::now() - first_connected_at_ > kSilentHandshake &&
          options_.endpoint.rfind("tcp://", 0) == 0) {
        probed = true;
        TASKQ_TRY(ProbeForMaster());
      }
      continue;
    }
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout)
        return Status::Error(Code::kTimeout, "no master answered at " + options_.display);
      return m.status();
    }
    if (const auto* w = std::get_if<Welcome>(&*m)) {
      NoteWelcome(*w);
      return Status::Ok();
    }
    // An error about the hello itself has no rid; one with a rid, or a
    // hello_required, is a late answer to something sent before.
    if (const auto* e = std::get_if<ErrorMsg>(&*m);
        e && e->rid == 0 && e->code != kErrHelloRequired)
      return Status::Error(
          e->code == kErrForbidden ? Code::kForbidden : Code::kProtocol,
          "the master at " + options_.display + " refused us: " + std::string(e->message));
    if (std::holds_alternative<Shutdown>(*m))
      return Status::Error(Code::kShutdown,
                           "the master at " + options_.display + " is shutting down");
    // Anything else is from before the hello (a ping, a late reply): skip it.
  }
}

Status Connection::Reconnect() {
  if (options_.local) return Status::Ok();  // nothing can drop
  StopMonitor();
  socket_.set(zmq::sockopt::linger, 0);
  socket_.close();
  monitor_.close();
  return OpenSocket();
}

Status Connection::MoveTo(std::string endpoint, std::string display) {
  options_.endpoint = std::move(endpoint);
  options_.display = std::move(display);
  // The worker says where it goes itself; "waiting for the master at B to
  // come up..." would be wrong for a master it leaves after one try.
  waiting_told_ = true;
  return Reconnect();
}

Status Connection::Send(const Message& m) {
  std::string bytes;
  EncodeTo(m, &bytes);
  return SendEncoded(bytes);
}

Status Connection::SendEncoded(std::string_view bytes) {
  // A larger frame would make the master drop the connection, and the
  // message, without a word: refuse it here, where it can be explained.
  if (bytes.size() > kMaxMessageBytes)
    return Status::Error(
        Code::kInvalid, "a message of " + std::to_string(bytes.size() >> 20) +
                            " MiB is over the 64 MiB limit: send fewer or smaller items at a time");
  return SendRaw(bytes);
}

Status Connection::SendRaw(std::string_view bytes) {
  if (options_.local) {
    options_.local->to_master.emplace_back(bytes);
    return Status::Ok();
  }
  try {
    drained_ = false;
    if (socket_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait))
      return Status::Ok();
    return Status::Error(Code::kUnavailable,
                         "the send queue to the master at " + options_.display + " is full");
  } catch (const zmq::error_t& e) {
    return Status::Error(Code::kIo, std::string("cannot send to the master: ") + e.what());
  }
}

Result<Message> Connection::TryReceive(zmq::message_t* frame) {
  if (options_.local) {
    if (options_.local->to_client.empty()) return Status::Error(Code::kTimeout, "no message");
    TakeFromChannel(options_.local->to_client, frame);
  } else {
    if (Status s = TryReceiveFrame(frame); !s.ok()) return s;
  }
  last_heard_ = Clock::now();
  Result<Message> m = Decode(std::string_view(frame->data<char>(), frame->size()));
  if (!m.ok())
    return Status::Error(Code::kProtocol, "a bad message from the master: " + m.status().message());
  return m;
}

Status Connection::TryReceiveFrame(zmq::message_t* frame) {
  try {
    drained_ = !socket_.recv(*frame, zmq::recv_flags::dontwait);
    if (drained_) return Status::Error(Code::kTimeout, "no message");
    if (frame->more()) {  // a message is one frame: drain the rest, refuse it
      zmq::message_t junk;
      while (socket_.recv(junk, zmq::recv_flags::dontwait) && junk.more()) {
      }
      return Status::Error(Code::kProtocol, "the master sent a message of several frames");
    }
  } catch (const zmq::error_t& e) {
    return Status::Error(Code::kIo, std::string("cannot receive from the master: ") + e.what());
  }
  return Status::Ok();
}

Result<Message> Connection::Receive(zmq::message_t* frame, TimePoint deadline) {
  std::vector<int> fds;
  if (options_.interrupt_fd >= 0) fds.push_back(options_.interrupt_fd);
  for (;;) {
    Result<Message> m = TryReceive(frame);
    if (m.ok() || m.status().code() != Code::kTimeout) return m;
    if (Clock::now() >= deadline) return Status::Error(Code::kTimeout, "timed out");
    Result<uint32_t> ready = Wait(PollTimeout(deadline), fds);
    if (!ready.ok()) return ready.status();
    if (*ready & FdReady(0)) return Status::Error(Code::kInterrupted, "interrupted");
  }
}

void Connection::RebuildWatch(const std::vector<int>& fds) {
  watch_ = SocketWatch();
  watch_socket_ = socket_ ? watch_.AddSocket(socket_.handle()) : -1;
  watch_monitor_ = monitor_ ? watch_.AddSocket(monitor_.handle()) : -1;
  for (int fd : fds) watch_.AddFd(fd);
  watch_fds_ = fds;
  watch_valid_ = true;
}

Result<uint32_t> Connection::Wait(int timeout_ms, const std::vector<int>& fds) {
  if (options_.local && !options_.local->to_client.empty()) return kMessageReady;
  if (!watch_valid_ || fds != watch_fds_) RebuildWatch(fds);
  if (watch_socket_ >= 0) {
    if (drained_)
      watch_.Drained(watch_socket_);
    else
      watch_.Touch(watch_socket_);  // sends and receives since the last wait
  }
  if (options_.pump)
    TASKQ_TRY(options_.pump(watch_, timeout_ms));
  else if (!watch_.Wait(timeout_ms))
    return Status::Error(Code::kIo, std::string("poll failed: ") + std::strerror(errno));
  if (watch_monitor_ >= 0 && watch_.Ready(watch_monitor_)) TASKQ_TRY(HandleMonitorEvents());
  const bool message =
      options_.local ? !options_.local->to_client.empty() : watch_.Ready(watch_socket_);
  uint32_t ready = message ? kMessageReady : 0;
  if (dropped_) ready |= kDropped;
  dropped_ = false;
  const int first_fd = (watch_socket_ >= 0 ? 1 : 0) + (watch_monitor_ >= 0 ? 1 : 0);
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (watch_.Ready(first_fd + static_cast<int>(i))) ready |= FdReady(i);
  return ready;
}

}  // namespace taskq
