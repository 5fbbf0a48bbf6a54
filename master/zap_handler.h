// ZapHandler: the ZeroMQ authentication handler (ZAP, RFC 27) of a master.
// It admits a CURVE peer only if it presents one of the client public keys
// derived from the authkey: the admin's, the worker's or the submitter's,
// and names that role as the connection's user id, which libzmq then
// attaches to every message from it ("User-Id"; docs/PROTOCOL.md 2.1).
// Without a ZAP handler libzmq would admit any keypair. It must be bound
// before the ROUTER binds (docs/LIBRARIES.md).
//
// Thread: the master's loop thread.
#ifndef TASKQ_MASTER_ZAP_HANDLER_H_
#define TASKQ_MASTER_ZAP_HANDLER_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "proto/keys.h"
#include "proto/status.h"

namespace taskq {

class ZapHandler {
 public:
  // keys: derived from the authkey (DeriveKeys), so with the public keys of
  // every role.
  ZapHandler(zmq::context_t& ctx, const DerivedKeys& keys);

  // Binds inproc://zeromq.zap.01 in ctx.
  Status Bind();
  // Answers every pending request; returns how many were refused.
  int HandlePending();
  zmq::socket_t& socket() { return socket_; }

 private:
  using Key = std::array<uint8_t, 32>;
  // The role whose key is presented, if any.
  std::optional<Role> RoleOf(const zmq::message_t& key) const;

  zmq::socket_t socket_;
  std::vector<std::pair<Role, Key>> keys_;  // the client public keys admitted
};

}  // namespace taskq

#endif  // TASKQ_MASTER_ZAP_HANDLER_H_
