// HandshakeMonitor: watches the master's ROUTER through libzmq's socket
// monitor and reports connections refused during the CURVE handshake (wrong
// authkey, no encryption, not ZeroMQ at all), with the peer's address.
//
// libzmq 4.3's monitor names the bound endpoint, not the peer, in its events,
// and a failed-handshake event carries an error code, not the connection. But
// a failure is always followed at once by the DISCONNECTED event of the same
// connection (stream_engine_base_t::error emits both, on the one I/O thread),
// and ACCEPTED and DISCONNECTED carry the socket's fd. So: remember each
// accepted fd's peer address (getpeername), note the reason of a failure, and
// report it with the next DISCONNECTED fd. RefusalLog keeps those reports
// to one line per host per 10 s.
//
// Thread: the master's loop thread.
#ifndef TASKQ_MASTER_HANDSHAKE_MONITOR_H_
#define TASKQ_MASTER_HANDSHAKE_MONITOR_H_

#include <functional>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "client/clock.h"
#include "proto/status.h"

namespace taskq {

class HandshakeMonitor {
 public:
  // Called with the peer's "HOST:PORT" and why it was refused.
  using OnRefused = std::function<void(const std::string& peer, const std::string& why)>;

  HandshakeMonitor(zmq::context_t& ctx, OnRefused on_refused);
  // Starts monitoring watched (before it binds, so no connection is missed).
  Status Attach(zmq::socket_t& watched);
  // Reads every pending event.
  void HandlePending();
  zmq::socket_t& socket() { return socket_; }

 private:
  OnRefused on_refused_;
  zmq::socket_t socket_;
  std::unordered_map<int, std::string> peers_;  // fd -> address, while connected
  std::string pending_reason_;
};

// Log lines for refused connections, at most one per host per 10 s: a worker
// with the wrong key retries several times a second.
class RefusalLog {
 public:
  // The line to log for this refusal ("HOST:PORT" peer), or empty to stay quiet.
  std::string Note(const std::string& peer, const std::string& why, TimePoint now);

 private:
  struct Entry {
    TimePoint logged;
    int quiet = 0;
  };
  std::unordered_map<std::string, Entry> seen_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_HANDSHAKE_MONITOR_H_
