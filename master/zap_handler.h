// ZapHandler: the ZeroMQ authentication handler (ZAP, RFC 27) of a master.
// It admits a CURVE peer only if it presents the client public key derived
// from the authkey; without a ZAP handler libzmq would admit any keypair.
// It must be bound before the ROUTER binds (docs/LIBRARIES.md).
//
// Thread: the master's loop thread.
#ifndef TASKQ_MASTER_ZAP_HANDLER_H_
#define TASKQ_MASTER_ZAP_HANDLER_H_

#include <array>
#include <cstdint>
#include <string>
#include <zmq.hpp>

#include "proto/status.h"

namespace taskq {

class ZapHandler {
 public:
  // client_public_z85: the 40-character Z85 public key peers must present.
  ZapHandler(zmq::context_t& ctx, const std::string& client_public_z85);

  // Binds inproc://zeromq.zap.01 in ctx.
  Status Bind();
  // Answers every pending request; returns how many were refused.
  int HandlePending();
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
  std::array<uint8_t, 32> client_key_{};
};

}  // namespace taskq

#endif  // TASKQ_MASTER_ZAP_HANDLER_H_
