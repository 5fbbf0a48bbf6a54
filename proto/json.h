// JSON text to msgpack values, for task lists (task_master --tasks). The
// other way round is PackedToJson (value.h).
//
// nlohmann-json reads the text: strict RFC 8259, one value, whitespace
// around it allowed, nothing else. Integers that fit int64 (or uint64)
// become msgpack integers; other numbers become float64. Strings are checked
// as UTF-8 and keep their escapes' meaning (surrogate pairs included).
// Objects keep their keys' order, and repeated keys. Nesting is limited to
// kMaxDepth and the result to kMaxValueBytes, as for any value on the wire.
#ifndef TASKQ_PROTO_JSON_H_
#define TASKQ_PROTO_JSON_H_

#include <string>
#include <string_view>

#include "proto/status.h"
#include "proto/value.h"

namespace taskq {

// Parses text; on failure (kInvalid), a sentence saying what is wrong and
// where ("expected ':' after a key at column 12").
Result<Value> ParseJson(std::string_view text);

}  // namespace taskq

#endif  // TASKQ_PROTO_JSON_H_
