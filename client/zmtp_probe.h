// ZmtpProbe: asks a TCP port, outside libzmq, whether a taskq master listens
// there. libzmq's monitor cannot tell a peer that refused our CURVE key from
// a program that is not ZeroMQ at all and closed the connection (both give
// HANDSHAKE_FAILED_NO_DETAIL), and a program that answers in another
// protocol (HTTP, SSH) gives no event at all. The greeting a ZMTP 3 peer
// sends first names its security mechanism; a taskq master says CURVE.
#ifndef TASKQ_CLIENT_ZMTP_PROBE_H_
#define TASKQ_CLIENT_ZMTP_PROBE_H_

#include <chrono>
#include <string>

namespace taskq {

enum class ZmtpPeer {
  kCurve,       // a ZMTP 3 peer offering CURVE: a taskq master (or alike)
  kOtherZmtp,   // ZeroMQ, but another mechanism: not a taskq master
  kNotZmtp,     // it answered bytes that are not a ZMTP greeting
  kClosed,      // it closed the connection without a byte
  kNoAnswer,    // it said nothing in time (a busy master, maybe: nothing to conclude)
  kUnreachable  // no TCP connection (nothing to conclude)
};

// Connects to endpoint ("tcp://HOST:PORT" or "tcp://[V6]:PORT"), sends a
// ZMTP 3.0 CURVE greeting and reads the peer's, waiting at most timeout.
// *said: what the peer said, for a message ("HTTP/1.0 400", "NULL").
// Blocking; call only on a path that already failed.
ZmtpPeer ProbeZmtp(const std::string& endpoint, std::chrono::milliseconds timeout,
                   std::string* said);

// The sentence for a peer that is not a taskq master; "" for kCurve,
// kNoAnswer and kUnreachable.
std::string NotAMasterMessage(ZmtpPeer peer, const std::string& display, const std::string& said);

}  // namespace taskq

#endif  // TASKQ_CLIENT_ZMTP_PROBE_H_
