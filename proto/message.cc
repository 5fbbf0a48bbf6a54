#include "proto/message.h"

#include <array>

#include "proto/envelope.h"
#include "proto/limits.h"
#include "proto/message_codec.h"
#include "proto/message_schema.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"

// Every message is described once, in proto/message_schema.h; the codec
// (proto/message_codec.h) reads those tables. What is here is the public face.
namespace taskq {
namespace {

template <typename T>
Result<Message> DecodeAs(const Envelope& env) {
  T m;
  Status s = schema::DecodeFields(env, &m);
  if (!s.ok()) return s;
  return Message(std::move(m));
}

struct OpEntry {
  std::string_view name;
  Result<Message> (*decode)(const Envelope&);
};

// In Message's alternative order, so OpName can index it.
constexpr auto kOps = []<std::size_t... I>(std::index_sequence<I...>) {
  return std::array<OpEntry, sizeof...(I)>{
      OpEntry{schema::Schema<std::variant_alternative_t<I, Message>>::kOp,
              DecodeAs<std::variant_alternative_t<I, Message>>}...};
}
(std::make_index_sequence<std::variant_size_v<Message>>());

}  // namespace

std::string_view OpName(const Message& m) { return kOps[m.index()].name; }

void EncodeTo(const Message& m, std::string* out) {
  // Most messages are small (a get, a result, one task's items): room for
  // them at once, not a string grown three or four times on the way (a
  // lone task's path encodes six).
  constexpr std::size_t kSmallMessage = 128;
  if (out->empty() && out->capacity() < kSmallMessage) out->reserve(kSmallMessage);
  MsgpackWriter w(out);
  std::visit([&w](const auto& msg) { schema::EncodeMessage(w, msg); }, m);
}

std::string Encode(const Message& m) {
  std::string out;
  EncodeTo(m, &out);
  return out;
}

Result<Message> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Bad("the message is larger than the limit");
  Envelope env;
  TASKQ_TRY(env.Parse(bytes));
  std::string_view op;
  TASKQ_TRY(env.Str("op", &op, true));
  for (const OpEntry& e : kOps) {
    if (e.name != op) continue;
    Result<Message> m = e.decode(env);
    if (!m.ok()) return m;
    TASKQ_TRY(env.Finish());
    return m;
  }
  return Status::Error(Code::kUnsupported, "unknown op '" + Envelope::Clip(op) + "'");
}

Status DecodePutItems(std::string_view raw, std::vector<NewTask>* items) {
  MsgpackReader r(raw);
  uint32_t n;
  if (!r.ReadArrayHeader(&n, kMaxBatch)) return Bad("put items must be an array of at most 65536");
  items->resize(n);
  for (uint32_t i = 0; i < n; ++i) TASKQ_TRY(schema::DecodeItem(r, &(*items)[i]));
  if (!r.at_end()) return Bad("put items have trailing bytes");
  return Status::Ok();
}

// Reads only as far as the rid: a peer learns which request was refused
// even when the damage is further on (in a task's argument, after the map).
uint64_t PeekRid(std::string_view bytes) {
  MsgpackReader r(bytes);
  uint32_t n;
  if (!r.ReadMapHeader(&n, kMaxEnvelopeFields)) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.ReadStr(&key)) return 0;
    uint64_t rid = 0;
    if (key == "rid") return r.ReadUint(&rid) ? rid : 0;
    if (!r.Skip(nullptr, kMaxDepth + kEnvelopeDepth)) return 0;
  }
  return 0;
}

bool IsUnknownOp(const Status& s) { return s.code() == Code::kUnsupported; }

}  // namespace taskq
