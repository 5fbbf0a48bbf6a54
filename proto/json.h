// JSON both ways: text to msgpack values, for task lists (task_master
// --tasks), and the JSON taskq writes (PackedToJson, declared in value.h,
// and the objects below).
//
// nlohmann-json reads the text: strict RFC 8259, one value, whitespace
// around it allowed, nothing else. Integers that fit int64 (or uint64)
// become msgpack integers; other numbers become float64. Strings are checked
// as UTF-8 and keep their escapes' meaning (surrogate pairs included).
// Objects keep their keys' order, and repeated keys. Nesting is limited to
// kMaxDepth and the result to kMaxValueBytes, as for any value on the wire.
#ifndef TASKQ_PROTO_JSON_H_
#define TASKQ_PROTO_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"
#include "proto/value.h"

namespace taskq {

// Parses text; on failure (kInvalid), a sentence saying what is wrong and
// where ("expected ':' after a key at column 12").
Result<Value> ParseJson(std::string_view text);

// s as a JSON string, escaped as PackedToJson escapes strings.
std::string JsonQuote(std::string_view s);

// A JSON object written field by field as PackedToJson writes maps
// ({"key": value, ...}), for JSON that is not one msgpack value: a
// --results line, the --json summary.
class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view s);
  // packed: one msgpack value, rendered by PackedToJson.
  JsonObject& Packed(std::string_view key, std::string_view packed);
  JsonObject& Bool(std::string_view key, bool b);
  JsonObject& Int(std::string_view key, int64_t n);
  JsonObject& Uint(std::string_view key, uint64_t n);
  // x with this many decimals, as a measurement is shown ("%.3f": 17.650).
  JsonObject& Fixed(std::string_view key, double x, int decimals);
  // JSON text made already (another object's Close, a JsonList).
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Close() const;

 private:
  JsonObject& Key(std::string_view key);
  std::string text_ = "{";
};

// "[item, item]" from items that are JSON text each.
std::string JsonList(const std::vector<std::string>& items);

}  // namespace taskq

#endif  // TASKQ_PROTO_JSON_H_
