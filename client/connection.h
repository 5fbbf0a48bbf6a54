// Connection: one DEALER socket to a master, CURVE-secured, with hello and
// welcome done and the socket monitor watched for failed handshakes. The
// worker's event loop and the blocking Client are both built on it. (For
// task_master's own job, a LocalChannel in place of the socket.)
//
// libzmq never reports a failed CURVE handshake through send or recv: with a
// wrong key it just reconnects for ever (docs/LIBRARIES.md). So the monitor is
// read wherever the connection waits, and a run of failed handshakes with
// none succeeding is reported as kAuthFailed.
//
// Thread: a Connection is used by one thread at a time.
#ifndef TASKQ_CLIENT_CONNECTION_H_
#define TASKQ_CLIENT_CONNECTION_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "client/clock.h"
#include "client/local_channel.h"
#include "client/socket_watch.h"
#include "proto/keys.h"
#include "proto/message.h"
#include "proto/status.h"

namespace taskq {

// What a peer says of itself in hello.
struct PeerInfo {
  std::string role = "client";  // "worker" or "client"
  std::string name;
  uint32_t capacity = 0;
  uint64_t session = 0;  // 0: a random one is made
  uint32_t heartbeat_ms = 0;
  std::vector<std::string> kinds;  // kinds of task a worker runs
};

// What the master said in welcome.
struct MasterInfo {
  std::string name;
  uint64_t instance = 0;
  uint64_t epoch = 0;  // names the task ids (proto/message.h, Welcome)
  std::chrono::milliseconds heartbeat{0};
  uint32_t max_batch = 0;
};

// Runs other work of the calling thread while a Connection waits: it must
// wait on watch (SocketWatch::WaitWith) for at most timeout_ms, doing its own
// work meanwhile, and return an error if that work ended (the Connection
// gives it back). task_master's job uses it to run the server loop on its
// own thread (Server::Pump), so a message between the job and the broker
// needs no hand-off between threads.
using WaitPump = std::function<Status(SocketWatch& watch, int timeout_ms)>;

struct ConnectOptions {
  std::string endpoint;               // "tcp://host:port", or "inproc://..." (no CURVE)
  std::string display;                // "HOST:PORT", for messages to the user
  const DerivedKeys* keys = nullptr;  // required for tcp; must outlive the Connection
  PeerInfo peer;
  // How long Open waits for the master; zero waits for ever.
  std::chrono::milliseconds connect_timeout{0};
  // Told once, with a sentence to show, when the master is not reachable yet.
  std::function<void(const std::string&)> on_waiting;
  // Open fails at once with kUnavailable when nothing listens at endpoint
  // (instead of on_waiting and waiting): a worker given several masters
  // tries the next. Only before a first welcome.
  bool give_up_if_refused = false;
  // Also watched while waiting: readable means stop (signals.h). -1: none.
  int interrupt_fd = -1;
  WaitPump pump;  // waits for the Connection if set; else poll(2)
  // In place of endpoint: messages go through this channel, in memory, to
  // a master whose loop pump runs (required with it; client/local_channel.h).
  LocalChannel* local = nullptr;
};

class Connection {
 public:
  // Connects, sends hello and returns once welcome came. Fails with
  // kAuthFailed ("authentication failed: the authkey does not match the
  // master at HOST:PORT"), kInvalid when the port is not a taskq master's
  // (client/zmtp_probe.h), kTimeout when connect_timeout passed, kInterrupted
  // when interrupt_fd became readable, kProtocol when the master refused us
  // (kForbidden: the key's role may not say this hello).
  static Result<std::unique_ptr<Connection>> Open(zmq::context_t& ctx, ConnectOptions options);
  ~Connection();

  // Queues m without blocking; kUnavailable when the socket's queue is full.
  Status Send(const Message& m);
  // Send for a message already encoded (a Session's requests): kInvalid
  // over the 64 MiB limit, else as SendRaw.
  Status SendEncoded(std::string_view bytes);
  // Sends bytes as they are (tests use this for malformed messages).
  Status SendRaw(std::string_view bytes);

  // Waits until deadline for a message; the result borrows from *frame,
  // which must stay put while it is used. kTimeout when none came,
  // kAuthFailed if handshakes start failing, kInterrupted on a signal,
  // kProtocol for bytes that do not decode.
  Result<Message> Receive(zmq::message_t* frame, TimePoint deadline);
  // Receive without waiting.
  Result<Message> TryReceive(zmq::message_t* frame);

  // Sends hello without waiting: the master forgot us (it restarted, or
  // declared us dead) and answers anything else with hello_required.
  Status SendHello(const std::vector<uint64_t>& holding = {});
  // Records what a welcome said (for loops that read it themselves).
  void NoteWelcome(const Welcome& w);
  // Drops the socket and connects a new one (the master went silent). The
  // owner says hello on it (its Session's OnDisconnect says so).
  Status Reconnect();
  // Reconnect, to another master (a worker given several: worker/master_list.h).
  Status MoveTo(std::string endpoint, std::string display);

  // Wait's result: a set of these bits.
  static constexpr uint32_t kMessageReady = 1;  // a message may be waiting (TryReceive says)
  static constexpr uint32_t FdReady(std::size_t i) { return 2u << i; }  // fds[i] is readable
  // A TCP connection that had finished its handshake dropped since the last
  // Wait: libzmq connects again by itself, and the master there does not
  // know this peer (Session::OnDisconnect).
  static constexpr uint32_t kDropped = 1u << 31;

  // For loops that wait on more than this connection: waits up to
  // timeout_ms (-1: no limit) for a message, or for one of fds (at most 30)
  // to become readable, handling monitor events on the way.
  // The socket is asked for its events first (two system calls) unless the
  // last call on it was a TryReceive that found nothing: so a loop that
  // sends before its last receive, not after, saves them.
  Result<uint32_t> Wait(int timeout_ms, const std::vector<int>& fds);
  // Reads pending monitor events; kAuthFailed as in Open.
  Status HandleMonitorEvents();

  const MasterInfo& master() const { return master_; }
  const std::string& display() const { return options_.display; }
  const ConnectOptions& options() const { return options_; }
  // When a message last came from the master.
  TimePoint last_heard() const { return last_heard_; }

 private:
  Connection(zmq::context_t& ctx, ConnectOptions options);
  Status OpenSocket();
  // TryReceive's read from the socket: kTimeout when nothing is there.
  Status TryReceiveFrame(zmq::message_t* frame);
  Status AwaitWelcome(TimePoint deadline);
  void RebuildWatch(const std::vector<int>& fds);
  // Asks the port itself (client/zmtp_probe.h): kInvalid ("... is not a
  // taskq master ...") when another program holds it, else ok. Blocking.
  Status ProbeForMaster();
  // Handshakes failed: kAuthFailed for a taskq master holding another key,
  // kInvalid for any other program.
  Status HandshakeFailed();
  // Ends the monitoring of socket_ before either socket closes.
  void StopMonitor();

  zmq::context_t& ctx_;
  ConnectOptions options_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
  MasterInfo master_;
  TimePoint last_heard_;
  int failed_handshakes_ = 0;
  bool tcp_connected_ = false;
  bool handshaken_ = false;       // the current TCP connection finished its handshake
  bool dropped_ = false;          // one that had dropped since Wait last said so
  bool drained_ = false;          // the last call on socket_ was a receive that found nothing
  TimePoint connected_at_;        // of the last TCP connection
  TimePoint first_connected_at_;  // of the first, for the protocol probe
  bool waiting_told_ = false;
  bool ever_welcomed_ = false;
  // Wait's poll set: the socket (if any), the monitor (if any), then
  // watch_fds_.
  SocketWatch watch_;
  bool watch_valid_ = false;
  int watch_socket_ = -1;
  int watch_monitor_ = -1;
  std::vector<int> watch_fds_;
};

}  // namespace taskq

#endif  // TASKQ_CLIENT_CONNECTION_H_
