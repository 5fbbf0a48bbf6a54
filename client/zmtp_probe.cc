#include "client/zmtp_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace taskq {
namespace {

// ZMTP 3.0 greeting (rfc.zeromq.org/spec/23): signature (0xFF, 8 bytes,
// 0x7F), version 3.0, a 20-byte mechanism name, as-server, 31 bytes filler.
constexpr std::size_t kGreeting = 64;
// How long a silent peer has to answer our greeting before the line nudge.
constexpr std::chrono::milliseconds kNudgeAfter{500};

std::string Greeting() {
  std::string g(kGreeting, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = 3;
  std::memcpy(&g[12], "CURVE", 5);
  return g;
}

// Reads until n bytes came, the peer closed (*closed), or the deadline passed.
std::string ReadUpTo(int fd, std::size_t n, std::chrono::steady_clock::time_point deadline,
                     bool* closed) {
  std::string got;
  *closed = false;
  char buf[kGreeting];
  while (got.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t r = recv(fd, buf, std::min(sizeof buf, n - got.size()), 0);
    if (r <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<std::size_t>(r));
  }
  return got;
}

int ConnectTcp(const std::string& endpoint, std::chrono::milliseconds timeout) {
  std::string rest = endpoint.substr(endpoint.find("://") + 3);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return -1;
  std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &list) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = list; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(list);
  return fd;
}

// Printable start of what a peer said, for a message.
std::string Printable(const std::string& bytes) {
  std::string s;
  for (char c : bytes.substr(0, 24)) {
    if (c == '\r' || c == '\n') break;
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

}  // namespace

ZmtpPeer ProbeZmtp(const std::string& endpoint, std::chrono::milliseconds timeout,
                   std::string* said) {
  said->clear();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const int fd = ConnectTcp(endpoint, timeout);
  if (fd < 0) return ZmtpPeer::kUnreachable;
  const std::string hello = Greeting();
  bool closed = send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != ssize_t(hello.size());
  const auto nudge_at = std::min(deadline, std::chrono::steady_clock::now() + kNudgeAfter);
  std::string got = closed ? std::string() : ReadUpTo(fd, kGreeting, nudge_at, &closed);
  bool nudged = false;
  if (got.empty() && !closed) {
    // Silent: a ZeroMQ peer answers a greeting at once, but a line-based
    // server (HTTP, SMTP) waits for the end of a line. Send one: what it
    // answers tells it apart. Only bytes that are not ZMTP conclude; a
    // close or silence after this nudge could be the nudge's doing.
    nudged = send(fd, "\r\n\r\n", 4, MSG_NOSIGNAL) == 4;
    if (nudged) got = ReadUpTo(fd, kGreeting, deadline, &closed);
  }
  close(fd);
  if (got.empty()) return closed && !nudged ? ZmtpPeer::kClosed : ZmtpPeer::kNoAnswer;
  const bool zmtp = got.size() >= 11 && got[0] == '\xff' && got[9] == '\x7f' && got[10] >= 3;
  if (!zmtp) {
    *said = Printable(got);
    return ZmtpPeer::kNotZmtp;
  }
  if (got.size() < 32) return closed ? ZmtpPeer::kClosed : ZmtpPeer::kNoAnswer;
  *said = std::string(got.data() + 12, strnlen(got.data() + 12, 20));
  return *said == "CURVE" ? ZmtpPeer::kCurve : ZmtpPeer::kOtherZmtp;
}

std::string NotAMasterMessage(ZmtpPeer peer, const std::string& display, const std::string& said) {
  const std::string head = "the server at " + display +
                           " is not a taskq master (the handshake failed at the protocol level: ";
  const std::string tail = "); check --server's host and port";
  switch (peer) {
    case ZmtpPeer::kOtherZmtp:
      return head + "a ZeroMQ peer with security " + said + ", where taskq uses CURVE" + tail;
    case ZmtpPeer::kNotZmtp:
      return head + "it does not speak ZeroMQ" + (said.empty() ? "" : ", it said '" + said + "'") +
             tail;
    case ZmtpPeer::kClosed:
      return head + "it closed the connection without a ZeroMQ greeting" + tail;
    default:
      return "";
  }
}

}  // namespace taskq
