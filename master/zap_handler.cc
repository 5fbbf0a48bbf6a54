#include "master/zap_handler.h"

#include <sodium.h>

#include <string_view>
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

ZapHandler::ZapHandler(zmq::context_t& ctx, const std::string& client_public_z85)
    : socket_(ctx, zmq::socket_type::rep) {
  zmq_z85_decode(client_key_.data(), client_public_z85.c_str());
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
    const bool ok = f.size() >= 7 && f[5].to_string_view() == "CURVE" && f[6].size() == 32 &&
                    sodium_memcmp(client_key_.data(), f[6].data(), 32) == 0;
    refused += ok ? 0 : 1;
    const std::string_view reply[] = {"1.0",
                                      f[1].to_string_view(),
                                      ok ? "200" : "400",
                                      ok ? "OK" : "the client key does not match the authkey",
                                      "",
                                      ""};
    for (int i = 0; i < 6; ++i)
      socket_.send(zmq::buffer(reply[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  return refused;
}

}  // namespace taskq
