// Value: one msgpack-encoded value kept as its bytes. Task arguments and
// result values are data the master never interprets, so it stores and
// forwards them as bytes, with no decode and re-encode on its path.
#ifndef TASKQ_PROTO_VALUE_H_
#define TASKQ_PROTO_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/msgpack_reader.h"
#include "proto/status.h"

namespace taskq {

class Value {
 public:
  Value();  // nil
  // Copies bytes after checking they hold exactly one msgpack value within
  // the decoder limits (proto/limits.h).
  static Result<Value> FromPacked(std::string_view bytes);
  static Value Nil() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t n);
  static Value Double(double d);
  static Value Str(std::string_view s);
  static Value Bin(std::string_view bytes);

  // The msgpack encoding; never empty.
  const std::string& packed() const { return packed_; }
  MsgType type() const;

  // Conversions that give nullopt when the value has another type.
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsDouble() const;  // floats and integers
  std::optional<std::string> AsStr() const;
  bool IsNil() const { return type() == MsgType::kNil; }

  // For people: a string as itself, anything else as JSON ("[1, 2]").
  std::string ToText() const;

  bool operator==(const Value& o) const { return packed_ == o.packed_; }

  // For code that checked the bytes already (a decoded message): no check.
  static Value FromTrusted(std::string_view bytes);

 private:
  std::string packed_;
};

// Renders one encoded value as compact JSON: bin as a base64 string, ext and
// non-finite floats as null, map keys that are not strings as their JSON text.
// Input that is not one valid value renders as null.
std::string PackedToJson(std::string_view packed);

}  // namespace taskq

#endif  // TASKQ_PROTO_VALUE_H_
