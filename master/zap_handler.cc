#include "master/zap_handler.h"

#include <sodium.h>

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace taskq {
namespace {

// Receives one multipart message, frame by frame (cppzmq can leave frames
// behind if it throws mid-message; docs/LIBRARIES.md).
bool RecvFrames(zmq::socket_t& s, std::vector<zmq::message_t>* frames) {
  frames->clear();
  zmq::message_t f;
  if (!s.recv(f, zmq::recv_flags::dontwait)) return false;
  bool more = f.more();
  frames->push_back(std::move(f));
  while (more) {
    zmq::message_t next;
    if (!s.recv(next, zmq::recv_flags::dontwait)) break;
    more = next.more();
    frames->push_back(std::move(next));
  }
  return true;
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& ctx, const DerivedKeys& keys)
    : socket_(ctx, zmq::socket_type::rep) {
  const std::pair<Role, const std::string*> known[] = {
      {Role::kAdmin, &keys.client.public_z85},
      {Role::kWorker, &keys.worker_public_z85},
      {Role::kSubmitter, &keys.submitter_public_z85}};
  for (const auto& [role, z85] : known) {
    if (z85->size() != 40) continue;  // keys not derived from an authkey
    keys_.push_back({role, {}});
    zmq_z85_decode(keys_.back().second.data(), z85->c_str());
  }
}

// Every key is compared, in constant time, whichever matches: the time taken
// says nothing of which role a key holds.
std::optional<Role> ZapHandler::RoleOf(const zmq::message_t& key) const {
  if (key.size() != 32) return std::nullopt;
  std::optional<Role> found;
  for (const auto& [role, k] : keys_)
    if (sodium_memcmp(k.data(), key.data(), 32) == 0) found = role;
  return found;
}

Status ZapHandler::Bind() {
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::Error(Code::kIo,
                         std::string("cannot start the authentication handler: ") + e.what());
  }
  return Status::Ok();
}

int ZapHandler::HandlePending() {
  int refused = 0;
  std::vector<zmq::message_t> f;
  while (RecvFrames(socket_, &f)) {
    // Request: version, request id, domain, address, routing id, mechanism,
    // then the mechanism's credentials (for CURVE: the 32-byte public key).
    if (f.size() < 6) continue;  // not a request; a REP socket needs no reply
    const std::optional<Role> role =
        f.size() >= 7 && f[5].to_string_view() == "CURVE" ? RoleOf(f[6]) : std::nullopt;
    refused += role ? 0 : 1;
    // The user id (the role) is what the ROUTER's messages carry as User-Id.
    const std::string_view reply[] = {"1.0",
                                      f[1].to_string_view(),
                                      role ? "200" : "400",
                                      role ? "OK" : "the client key does not match the authkey",
                                      role ? RoleName(*role) : "",
                                      ""};
    for (int i = 0; i < 6; ++i)
      socket_.send(zmq::buffer(reply[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  return refused;
}

}  // namespace taskq
