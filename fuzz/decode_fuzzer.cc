// libFuzzer target: every decoder of bytes from the network or a file.
// Whatever the input: no crash, no undefined behaviour, no allocation beyond
// the limits; what decodes re-encodes to bytes that decode the same; and the
// msgpack reader accepts exactly what msgpack-c accepts (both with limits).
#include <cstdint>
#include <cstdlib>
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "proto/limits.h"
#include "proto/message.h"
#include "proto/msgpack_reader.h"
#include "proto/value.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void RoundTrip(std::string_view in) {
  taskq::Result<taskq::Message> m = taskq::Decode(in);
  (void)taskq::PeekRid(in);
  if (!m.ok()) return;
  const std::string again = taskq::Encode(*m);
  taskq::Result<taskq::Message> back = taskq::Decode(again);
  Check(back.ok(), "a decoded message re-encodes to bytes that decode");
  Check(taskq::Encode(*back) == again, "the re-encoding is stable");
}

void Differential(std::string_view in) {
  taskq::MsgpackReader r(in);
  const bool ours = r.Skip();
  const std::size_t our_len = in.size() - r.remaining();
  bool theirs = false;
  std::size_t off = 0;
  try {
    msgpack::unpack(in.data(), in.size(), off, nullptr, nullptr,
                    msgpack::unpack_limit(taskq::kMaxContainer, taskq::kMaxContainer, 1 << 20,
                                          1 << 20, 1 << 20, taskq::kMaxDepth));
    theirs = true;
  } catch (const std::exception&) {
  }
  // msgpack-c may refuse what we accept only for its own size limits (str,
  // bin, ext over 1 MiB here), never the other way round.
  if (ours && !theirs) Check(our_len > (1 << 20), "the reader accepts only what msgpack-c accepts");
  if (theirs)
    Check(ours && our_len == off, "the reader accepts what msgpack-c accepts, to the same length");
  (void)taskq::PackedToJson(in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  RoundTrip(in);
  Differential(in);
  return 0;
}
