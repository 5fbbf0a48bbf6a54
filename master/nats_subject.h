// Subjects and names of the NATS store (docs/STORE-NATS.md, "Streams and
// subjects"): how a queue or kind name becomes one subject token, and the
// subjects and consumer names built from them. Pure functions, no server.
//
// Thread: any; nothing here has state.
#ifndef TASKQ_MASTER_NATS_SUBJECT_H_
#define TASKQ_MASTER_NATS_SUBJECT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proto/status.h"

namespace taskq {

// The streams of the store.
inline constexpr const char* kTasksStream = "TQ_TASKS";
inline constexpr const char* kOutStream = "TQ_OUT";
inline constexpr const char* kMetaStream = "TQ_META";
// The id counter's subject, in TQ_META.
inline constexpr const char* kIdsSubject = "tq.ids";

// E(name): bytes A-Z a-z 0-9 and '-' stay, every other byte (also '_')
// becomes '_' and two upper-case hex digits. One subject token, never empty
// for a non-empty name, reversible by DecodeToken.
std::string EncodeToken(std::string_view name);
// The name whose E() is token; nullopt if no name encodes to token (a byte
// outside the set above, '_' not followed by two upper-case hex digits, or
// an escape of a byte that would have stayed).
std::optional<std::string> DecodeToken(std::string_view token);

// Ok if name (a queue, reply queue or kind: what says which) has 1 to
// kMaxNameBytes bytes, as PROTOCOL requires; kInvalid otherwise (E of an
// empty name would be an empty token, which no subject may hold).
Status CheckName(std::string_view what, std::string_view name);

// "tq.task.E(queue).E(kind)": a lane of task batches.
std::string TaskSubject(std::string_view queue, std::string_view kind);
// "tq.task.E(queue).>": every lane of a queue.
std::string TaskFilter(std::string_view queue);
// "tq.out.E(reply).K": the outcome chunks of batch K.
std::string OutSubject(std::string_view reply, uint64_t batch);
// "tq.out.E(reply).>": every chunk of a reply queue.
std::string OutFilter(std::string_view reply);
// The queue and kind of a task subject; nullopt if subject is not one.
std::optional<std::pair<std::string, std::string>> ParseTaskSubject(std::string_view subject);
// The durable consumer of a lane: "E(queue)_-E(kind)" ("_-" never occurs in
// E's output, so the name is unambiguous). A name over 200 bytes (nats-server
// keeps a consumer in a directory of that name) is "h_-" and a hash of the
// subject instead.
std::string LaneConsumer(std::string_view queue, std::string_view kind);
// The durable consumer of a reply queue's chunks (on TQ_OUT): "E(reply)",
// hashed as above when long.
std::string OutConsumer(std::string_view reply);

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_SUBJECT_H_
