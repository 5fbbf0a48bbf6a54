// Server: the master's network side. One ROUTER socket (CURVE server) serves
// every worker and client, and a ZAP handler admits only peers holding a
// client key derived from the authkey (the admin's, the worker's or the
// submitter's), so a peer without one is refused during the handshake,
// before any of its bytes reach the Broker; each message reaches the Broker
// with its connection's role. The same ROUTER is also bound to an inproc
// endpoint for clients in this process (task_master's own jobs), which need
// no encryption and act as the admin.
//
// The loop runs on a thread of its own: poll, read what came, let the Broker
// act, tick its timers, flush its outbox without blocking.
//
// Thread: Start() and Stop() are called from one owner thread.
#ifndef TASKQ_MASTER_SERVER_H_
#define TASKQ_MASTER_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "client/local_channel.h"
#include "client/socket_watch.h"
#include "master/broker.h"
#include "master/journal.h"
#include "master/snapshot.h"
#include "proto/keys.h"
#include "proto/status.h"

namespace taskq {

struct ServerOptions {
  std::string bind = "*";  // interface address; "*" for all
  int port = 5000;         // 0: a free port chosen by the OS
  DerivedKeys keys;
  std::string inproc_endpoint;  // also bind this, if not empty
  BrokerOptions broker;
  std::optional<JournalOptions> journal;  // --data-dir: keep the state on disk
  // One line per notable event (a worker joined or left, a refused
  // handshake, a status report). Called on the loop thread.
  Broker::Logger log;
  int status_fd = -1;                         // readable: log a status report (SIGUSR1; signals.h)
  std::chrono::milliseconds status_every{0};  // log a status line this often; 0: never
  // --http: the loop publishes a Snapshot here this often (null: never).
  SnapshotBoard* board = nullptr;
  std::chrono::milliseconds publish_every{250};
};

class ServerLoop;

class Server {
 public:
  Server(zmq::context_t& ctx, ServerOptions options);
  ~Server();  // stops the loop if it still runs

  // Recovers the journal (telling report what it found), binds (an address
  // in use or not local comes back as kIo with a sentence naming it) and
  // starts the loop.
  //
  // kOwnThread: the loop runs on a thread of its own. kPumped: it runs only
  // inside Pump, on the caller's thread, until RunInBackground hands it a
  // thread: task_master's job talks to the broker that way without a
  // hand-off between threads per message (about 10 us each way on a VM,
  // most of a lone task's time beyond the network round trip).
  enum class Threading { kOwnThread, kPumped };
  Status Start(RecoveryReport* report = nullptr, Threading threading = Threading::kOwnThread);
  // kPumped: waits on also and the loop's sockets together for at most
  // timeout_ms (one poll), doing the loop's work for what came. Fails once
  // the loop has ended (failure(), or kShutdown after Stop). The thread
  // that called Start only.
  Status Pump(SocketWatch& also, int timeout_ms);
  // kPumped: from now on the loop runs on its own thread (Pump fails).
  void RunInBackground();
  // The loop runs in Pump (kPumped, not yet in the background).
  bool pumped() const { return pumped_; }
  // kPumped: the in-memory way to the broker for a Connection on the thread
  // that pumps (client/local_channel.h); its peer is the admin, like the
  // inproc endpoint's. The Connection must be gone before RunInBackground.
  LocalChannel* local_channel() { return &local_; }
  // The TCP port bound (the one the OS chose when port was 0).
  int port() const { return port_; }
  // Tells every peer the master is shutting down, gives the notices up to
  // linger to leave, and stops the loop. Returns the loop's failure, if it
  // had one (the journal could not be written, even in the last commit).
  Status Stop(const std::string& reason = "master exit");
  // Readable once the loop has ended on its own (the journal could not be
  // written); failure() then says why.
  int done_fd() const { return done_fd_; }
  Status failure() const;

 private:
  void Ended();                   // the loop has ended: done_fd becomes readable
  Status StoppedStatus() const;   // what Pump says once the loop has ended

  zmq::context_t& ctx_;
  ServerOptions options_;
  LocalChannel local_;  // outlives loop_, which reads it
  std::unique_ptr<ServerLoop> loop_;
  zmq::socket_t control_;  // the owner's end of the stop pipe
  std::thread thread_;
  bool pumped_ = false;  // the loop runs in Pump
  std::atomic<bool> ended_{false};
  int port_ = 0;
  int done_fd_ = -1;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_SERVER_H_
