// Limits every decoder applies to bytes that came from a peer or a file.
// docs/PROTOCOL.md ("Limits") lists the same numbers; change both together.
#ifndef TASKQ_PROTO_LIMITS_H_
#define TASKQ_PROTO_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace taskq {

// Largest message (one ZeroMQ frame). Sockets enforce it too
// (ZMQ_MAXMSGSIZE), so a larger frame never reaches the decoder.
constexpr std::size_t kMaxMessageBytes = 64u << 20;
// Most items one put, items or result message carries.
constexpr uint32_t kMaxBatch = 65536;
// Most kinds a hello or a get lists.
constexpr uint32_t kMaxKinds = 256;
// Most entries in any other array or map (message envelopes, values).
constexpr uint32_t kMaxContainer = 1u << 20;
// Deepest nesting of arrays and maps inside one task argument or result
// value. A message adds its own levels around values (kEnvelopeDepth), so a
// value accepted in a put or a result always fits in the items reply that
// carries it on.
constexpr int kMaxDepth = 32;
constexpr int kEnvelopeDepth = 4;
// Largest task argument or result value. An outcome entry carries both, so
// kMaxMessageBytes leaves room for several of the largest entries.
constexpr std::size_t kMaxValueBytes = 16u << 20;
// Longest queue name, kind, worker name or error code.
constexpr std::size_t kMaxNameBytes = 255;
// Longest error text carried in a result or an error reply.
constexpr std::size_t kMaxErrorBytes = 4096;
// Fields in a message envelope; a peer sending more is refused.
constexpr uint32_t kMaxEnvelopeFields = 64;
// Longest the master holds back the result_ok of a result sent with
// lazy_ack (it goes sooner with anything else sent to the same peer).
constexpr uint32_t kLazyAckMs = 50;

}  // namespace taskq

#endif  // TASKQ_PROTO_LIMITS_H_
