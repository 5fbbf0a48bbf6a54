// ServerLoop: the master's loop (master/server.h's Server runs it, on a
// thread of its own or pumped by the job's thread): the ROUTER, the ZAP and
// monitor sockets, the control socket, the Broker and the journal. Private
// to master/server.cc and master/server_loop.cc.
#ifndef TASKQ_MASTER_SERVER_LOOP_H_
#define TASKQ_MASTER_SERVER_LOOP_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/socket_watch.h"
#include "master/handshake_monitor.h"
#include "master/server.h"
#include "master/zap_handler.h"

namespace taskq {

// Owns the sockets, the Broker and the journal; lives on the loop thread
// once started.
class ServerLoop {
 public:
  ServerLoop(zmq::context_t& ctx, const ServerOptions& options, LocalChannel* local)
      : options_(options),
        local_(*local),
        broker_(options.broker, options.log),
        router_(ctx, zmq::socket_type::router),
        control_(ctx, zmq::socket_type::pair),
        zap_(ctx, options.keys),
        monitor_(ctx, [this](const std::string& peer, const std::string& why) {
          broker_.CountRefusedHandshake();
          const std::string line = refusals_.Note(peer, why, Clock::now());
          if (!line.empty()) Log(line);
        }) {}
  // libzmq sends monitor events from its I/O thread with a blocking send:
  // once the reading end (monitor_, destroyed before router_) is gone, the
  // next event could block that thread for ever. Stop monitoring first.
  ~ServerLoop() {
    if (router_) zmq_socket_monitor(router_.handle(), nullptr, 0);
  }

  Status OpenJournal(RecoveryReport* report);
  Result<int> Bind(const std::string& control_endpoint);
  // Run: Begin, then Step until the loop ends (stopped, or a failure).
  // Step waits (on also too, if given, with one poll) for at most most_ms
  // (-1: until the next timer), handles what came and returns false once
  // the loop has ended. Begin once, on the thread that steps first.
  void Begin();
  void Run();
  bool Step(SocketWatch* also, int most_ms);
  Status failure() {
    std::lock_guard<std::mutex> lock(failure_mu_);
    return failure_;
  }

 private:
  void Pass(bool status_asked);
  void SendReplies(TimePoint now);
  bool DurabilityBarrier();
  void SendShutdownAfterFailure(TimePoint now);
  SendResult SendOnRouter(const OutMsg& m);
  bool ReadRouter();
  void ReadLocal();
  bool ReadControl();
  void Report(TimePoint now);
  void Log(const std::string& line) {
    if (options_.log) options_.log(line);
  }
  // Records a fatal error; true when s is ok.
  bool RecordIfFailed(const Status& s) {
    if (s.ok()) return true;
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (failure_.ok()) failure_ = s;
    return false;
  }

  const ServerOptions& options_;
  LocalChannel& local_;
  Broker broker_;
  std::unique_ptr<Journal> journal_;
  zmq::socket_t router_;
  zmq::socket_t control_;
  ZapHandler zap_;
  RefusalLog refusals_;
  HandshakeMonitor monitor_;
  TimePoint next_status_ = TimePoint::max();
  SnapshotPublisher publisher_{options_.board};
  TimePoint next_publish_ = TimePoint::max();
  SocketWatch watch_;
  int router_i_ = -1, zap_i_ = -1, monitor_i_ = -1, control_i_ = -1, status_i_ = -1;
  bool begun_ = false;
  bool sent_on_router_ = false;    // in this pass
  bool router_cut_short_ = false;  // the last ReadRouter stopped for the job's reply
  TimePoint last_poll_;            // when Step's last poll returned
  uint64_t last_polled_also_ = 0;  // and the generation of the other watch it polled
  std::vector<OutMsg> batch_;      // SendReplies', kept for its capacity
  std::mutex failure_mu_;
  Status failure_;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_SERVER_LOOP_H_
