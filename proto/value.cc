#include "proto/value.h"

#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

template <typename Fn>
Value Build(Fn fn) {
  std::string bytes;
  MsgpackWriter w(&bytes);
  fn(w);
  return Value::FromTrusted(bytes);
}

}  // namespace

Value::Value() : packed_(1, '\xc0') {}

Result<Value> Value::FromPacked(std::string_view bytes) {
  if (!IsOneValue(bytes))
    return Status::Error(Code::kInvalid, "the bytes are not exactly one msgpack value");
  return FromTrusted(bytes);
}

Value Value::FromTrusted(std::string_view bytes) {
  Value v;
  if (!bytes.empty()) v.packed_.assign(bytes.data(), bytes.size());
  return v;
}

Value Value::Bool(bool b) {
  return Build([b](MsgpackWriter& w) { w.Bool(b); });
}
Value Value::Int(int64_t n) {
  return Build([n](MsgpackWriter& w) { w.Int(n); });
}
Value Value::Double(double d) {
  return Build([d](MsgpackWriter& w) { w.Double(d); });
}
Value Value::Str(std::string_view s) {
  return Build([s](MsgpackWriter& w) { w.Str(s); });
}
Value Value::Bin(std::string_view b) {
  return Build([b](MsgpackWriter& w) { w.Bin(b); });
}

MsgType Value::type() const { return MsgpackReader(packed_).Peek(); }

std::optional<int64_t> Value::AsInt() const {
  MsgpackReader r(packed_);
  int64_t v;
  if (r.ReadInt(&v)) return v;
  return std::nullopt;
}

std::optional<double> Value::AsDouble() const {
  MsgpackReader r(packed_);
  double d;
  if (r.ReadDouble(&d)) return d;
  if (auto i = AsInt()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<std::string> Value::AsStr() const {
  MsgpackReader r(packed_);
  std::string_view s;
  if (r.ReadStr(&s)) return std::string(s);
  return std::nullopt;
}

std::string Value::ToText() const {
  if (auto s = AsStr()) return *s;
  return PackedToJson(packed_);
}

}  // namespace taskq
