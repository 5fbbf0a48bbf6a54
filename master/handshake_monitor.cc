#include "master/handshake_monitor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>

namespace taskq {
namespace {

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "an unknown address";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "an unknown address";
}

std::string Reason(uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return "its client key does not match the authkey";
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) return "it holds another authkey";
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
      return "it does not encrypt (not a taskq client, or an old one)";
    return "it broke the ZeroMQ handshake";
  }
  return "it is not a ZeroMQ peer or broke off the handshake";
}

}  // namespace

HandshakeMonitor::HandshakeMonitor(zmq::context_t& ctx, OnRefused on_refused)
    : on_refused_(std::move(on_refused)), socket_(ctx, zmq::socket_type::pair) {}

Status HandshakeMonitor::Attach(zmq::socket_t& watched) {
  static std::atomic<uint64_t> n{0};
  const std::string endpoint = "inproc://taskq-handshake-monitor-" + std::to_string(n.fetch_add(1));
  const int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(watched.handle(), endpoint.c_str(), events) != 0)
    return Status::Error(Code::kIo,
                         std::string("cannot monitor the socket: ") + zmq_strerror(errno));
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error(Code::kIo, std::string("cannot monitor the socket: ") + e.what());
  }
  return Status::Ok();
}

void HandshakeMonitor::HandlePending() {
  for (;;) {
    zmq::message_t event, address;
    if (!socket_.recv(event, zmq::recv_flags::dontwait)) return;
    if (event.more()) (void)socket_.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 6) continue;
    uint16_t id;
    uint32_t value;
    std::memcpy(&id, event.data(), sizeof id);
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof value);
    const int fd = static_cast<int>(value);
    if (id == ZMQ_EVENT_ACCEPTED) {
      peers_[fd] = PeerAddress(fd);
    } else if (id == ZMQ_EVENT_DISCONNECTED) {
      auto it = peers_.find(fd);
      if (!pending_reason_.empty() && on_refused_)
        on_refused_(it == peers_.end() ? "an unknown address" : it->second, pending_reason_);
      pending_reason_.clear();
      if (it != peers_.end()) peers_.erase(it);
    } else if (pending_reason_.empty()) {  // the first, most specific reason wins
      pending_reason_ = Reason(id, value);
    }
  }
}

std::string RefusalLog::Note(const std::string& peer, const std::string& why, TimePoint now) {
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

}  // namespace taskq
