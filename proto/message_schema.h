// The one description of every message of proto/message.h: its op, its
// fields in the order they are written, the member each one fills, whether
// it is required, and its limit. Nothing else lists them: the encoder and the
// decoder (proto/message_codec.h) are driven by these tables, and
// tests/protocol_doc_test.cc checks docs/PROTOCOL.md's tables against them,
// so a field added here and not there (or there and not here) fails a test.
//
// Envelopes (maps) are described by Field entries in kFields; the items
// carried in batches (positional arrays) by element entries in kElements.
// The C++ type of a member gives its wire type: uint64_t, uint32_t, bool,
// std::string_view (str, or raw msgpack where an element says so), vectors of
// those, of items, or of the small maps of stats_ok.
//
// Longer than a file here usually is, and on purpose: it is the whole table
// of the protocol, one line per field, and splitting it would make a reader
// look in two places for one message.
#ifndef TASKQ_PROTO_MESSAGE_SCHEMA_H_
#define TASKQ_PROTO_MESSAGE_SCHEMA_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "proto/limits.h"
#include "proto/message.h"

namespace taskq::schema {

enum class Presence : uint8_t {
  kOptional,        // absent: the member keeps its default
  kRequired,        // absent: the message is refused
  kWrittenWhenSet,  // optional, and the encoder leaves it out while it is empty, false or 0
};
using enum Presence;

template <class T>
struct Schema {};  // specialised below for every message, item and stats map

template <class T>
concept Positional = requires {
  Schema<T>::kElements;
};  // an item: a positional array
template <class T>
concept Keyed = requires {
  Schema<T>::kFields;
};  // a map: a message or a stats element

// The usual limit of a field of type T: bytes for a str, elements for an
// array or a map (proto/limits.h, docs/PROTOCOL.md section 3.3).
template <class T>
constexpr std::size_t DefaultMax() {
  if constexpr (std::is_same_v<T, std::string_view>) {
    return kMaxNameBytes;
  } else if constexpr (std::is_same_v<T, std::vector<uint64_t>> ||
                       std::is_same_v<T, std::vector<std::pair<uint64_t, uint64_t>>>) {
    return kMaxBatch;  // ids
  } else if constexpr (requires { typename T::value_type; }) {
    if constexpr (Positional<typename T::value_type>) return kMaxBatch;
    return kMaxContainer;
  }
  return 0;
}

// One key of a map.
template <class M, class T>
struct Field {
  using Type = T;
  constexpr Field(std::string_view k, T M::*m, Presence p = kOptional,
                  std::size_t limit = DefaultMax<T>(), std::string_view M::*r = nullptr)
      : key(k), member(m), presence(p), max(limit), raw(r) {}

  std::string_view key;
  T M::*member;
  Presence presence;
  std::size_t max;           // str: most bytes; array or map: most elements
  std::string_view M::*raw;  // if set, decoding also keeps the value's bytes as received there
};

// --- elements of positional items -------------------------------------------
// Each says whether it may be left out (kOptional: then it is written only
// when every element before it is) and, for those, when it is written.

// A uint64, bool or str (limit max) element. A uint32_t member reads any
// uint64 and keeps at most UINT32_MAX.
template <class M, class T>
struct Elem {
  using Owner = M;
  using Type = T;
  static constexpr bool kOptional = false;
  constexpr Elem(std::string_view n, T M::*m, std::size_t limit = DefaultMax<T>(),
                 bool nonempty = false)
      : name(n), member(m), max(limit), non_empty(nonempty) {}
  std::string_view name;
  T M::*member;
  std::size_t max;
  bool non_empty;  // an empty str is refused
};

// One msgpack value of any type, byte for byte (section 3.5): at most
// kMaxDepth deep and kMaxValueBytes long; an empty member is written as nil.
template <class M>
struct Any {
  using Owner = M;
  static constexpr bool kOptional = false;
  std::string_view name;
  std::string_view M::*member;
};

// Any when *ok, else a str of at most max bytes.
template <class M>
struct ValueOrError {
  using Owner = M;
  static constexpr bool kOptional = false;
  std::string_view name;
  bool M::*ok;
  std::string_view M::*value;
  std::string_view M::*error;
  std::size_t max = kMaxErrorBytes;
};

// An optional trailing bool, or uint32 (read clamped from any uint64),
// written when written(item) says so.
template <class M, class T>
struct Trailing {
  using Owner = M;
  using Type = T;
  static constexpr bool kOptional = true;
  std::string_view name;
  T M::*member;
  bool (*written)(const M&);
};
template <class M>
using TrailingBool = Trailing<M, bool>;
template <class M>
using TrailingUint = Trailing<M, uint32_t>;

// An optional trailing nested item, nil or absent when *present is false.
template <class M, class T>
struct Nested {
  using Owner = M;
  using Item = T;
  static constexpr bool kOptional = true;
  std::string_view name;
  bool M::*present;
  T M::*member;
};

// A put item's options: nil or a map of option names; the one known so far,
// key, is written (as a uint32) only when not 0. Unknown options are ignored.
template <class M>
struct Options {
  using Owner = M;
  static constexpr bool kOptional = true;
  std::string_view name;
  std::string_view key;
  uint32_t M::*member;
};

// --- items ------------------------------------------------------------------
// kItem names an item in error messages and in PROTOCOL.md section 6.

template <>
struct Schema<NewTask> {
  static constexpr const char* kItem = "put item";
  static constexpr std::tuple kElements{
      Elem("kind", &NewTask::kind, kMaxNameBytes, /*nonempty=*/true),
      Any<NewTask>{"arg", &NewTask::arg},
      Options<NewTask>{"options", "timeout_ms", &NewTask::timeout_ms},
  };
};

template <>
struct Schema<Outcome> {
  static constexpr const char* kItem = "outcome";
  static constexpr std::tuple kElements{
      Elem("ok", &Outcome::ok),
      ValueOrError<Outcome>{"value_or_error", &Outcome::ok, &Outcome::value, &Outcome::error},
      Elem("worker", &Outcome::worker),
      Elem("elapsed_us", &Outcome::elapsed_us),
  };
};

template <>
struct Schema<Entry> {
  static constexpr const char* kItem = "entry";
  static constexpr std::tuple kElements{
      Elem("id", &Entry::id),
      Elem("kind", &Entry::kind),
      Any<Entry>{"arg", &Entry::arg},
      Elem("attempt", &Entry::attempt),
      Nested<Entry, Outcome>{"outcome", &Entry::has_outcome, &Entry::outcome},
  };
};

// retry is written for failures; worker_fault when set, or when attempt
// follows it; attempt for failures that say it (older masters stop at 5 or
// 6 elements).
template <>
struct Schema<TaskResult> {
  static constexpr const char* kItem = "result";
  static constexpr std::tuple kElements{
      Elem("id", &TaskResult::id),
      Elem("ok", &TaskResult::ok),
      ValueOrError<TaskResult>{"value_or_error", &TaskResult::ok, &TaskResult::value,
                               &TaskResult::error},
      Elem("elapsed_us", &TaskResult::elapsed_us),
      TrailingBool<TaskResult>{"retry", &TaskResult::retry,
                               [](const TaskResult& r) { return !r.ok; }},
      TrailingBool<TaskResult>{
          "worker_fault", &TaskResult::worker_fault,
          [](const TaskResult& r) { return !r.ok && (r.worker_fault || r.attempt != 0); }},
      TrailingUint<TaskResult>{"attempt", &TaskResult::attempt,
                               [](const TaskResult& r) { return !r.ok && r.attempt != 0; }},
  };
};

// --- the maps inside stats_ok -------------------------------------------------
// Small and read by people: decoded key by key, a known key with a wrong type
// skipped, and no limit on a name's length.

template <>
struct Schema<QueueStats> {
  static constexpr std::tuple kFields{
      Field("name", &QueueStats::name),     Field("ready", &QueueStats::ready),
      Field("leased", &QueueStats::leased), Field("failed", &QueueStats::failed),
      Field("owed", &QueueStats::owed),
  };
};

template <>
struct Schema<WorkerStats> {
  static constexpr std::tuple kFields{
      Field("name", &WorkerStats::name),         Field("in_flight", &WorkerStats::in_flight),
      Field("capacity", &WorkerStats::capacity), Field("done", &WorkerStats::done),
      Field("idle_ms", &WorkerStats::idle_ms),   Field("benched_ms", &WorkerStats::benched_ms),
  };
};

// --- messages -----------------------------------------------------------------
// The batch of a message goes last: the decoder finds the keys without
// walking the last value (proto/envelope.h says why).

template <>
struct Schema<Hello> {
  static constexpr std::string_view kOp = "hello";
  static constexpr std::tuple kFields{
      Field("v", &Hello::version, kRequired),
      Field("role", &Hello::role),
      Field("name", &Hello::name),
      Field("capacity", &Hello::capacity),
      Field("session", &Hello::session),
      Field("heartbeat_ms", &Hello::heartbeat_ms),
      Field("kinds", &Hello::kinds, kOptional, kMaxKinds),
      Field("holding", &Hello::holding),
  };
};

template <>
struct Schema<Welcome> {
  static constexpr std::string_view kOp = "welcome";
  static constexpr std::tuple kFields{
      Field("v", &Welcome::version, kRequired),      Field("master", &Welcome::master),
      Field("instance", &Welcome::instance),         Field("epoch", &Welcome::epoch),
      Field("heartbeat_ms", &Welcome::heartbeat_ms), Field("max_batch", &Welcome::max_batch),
  };
};

template <>
struct Schema<Put> {
  static constexpr std::string_view kOp = "put";
  static constexpr std::tuple kFields{
      Field("rid", &Put::rid),
      Field("queue", &Put::queue, kRequired),
      Field("reply_to", &Put::reply_to),
      Field("timeout_ms", &Put::timeout_ms),
      Field("items", &Put::items, kRequired, kMaxBatch, &Put::raw_items),
  };
};

template <>
struct Schema<PutOk> {
  static constexpr std::string_view kOp = "put_ok";
  static constexpr std::tuple kFields{
      Field("rid", &PutOk::rid),
      Field("first_id", &PutOk::first_id, kRequired),
      Field("count", &PutOk::count, kRequired),
  };
};

template <>
struct Schema<Get> {
  static constexpr std::string_view kOp = "get";
  static constexpr std::tuple kFields{
      Field("rid", &Get::rid),     Field("queue", &Get::queue, kRequired),
      Field("max", &Get::max),     Field("timeout_ms", &Get::timeout_ms),
      Field("lease", &Get::lease), Field("kinds", &Get::kinds, kOptional, kMaxKinds),
  };
};

template <>
struct Schema<Items> {
  static constexpr std::string_view kOp = "items";
  static constexpr std::tuple kFields{
      Field("rid", &Items::rid),
      Field("queue", &Items::queue),
      Field("items", &Items::items, kRequired),
  };
};

template <>
struct Schema<ResultMsg> {
  static constexpr std::string_view kOp = "result";
  static constexpr std::tuple kFields{
      Field("rid", &ResultMsg::rid),
      Field("lazy_ack", &ResultMsg::lazy_ack, kWrittenWhenSet),
      Field("results", &ResultMsg::results, kRequired),
  };
};

template <>
struct Schema<ResultOk> {
  static constexpr std::string_view kOp = "result_ok";
  static constexpr std::tuple kFields{
      Field("rid", &ResultOk::rid),
      Field("accepted", &ResultOk::accepted),
      Field("duplicates", &ResultOk::duplicates),
  };
};

template <>
struct Schema<Stats> {
  static constexpr std::string_view kOp = "stats";
  static constexpr std::tuple kFields{
      Field("rid", &Stats::rid),
      Field("queue", &Stats::queue, kWrittenWhenSet),
  };
};

template <>
struct Schema<StatsOk> {
  static constexpr std::string_view kOp = "stats_ok";
  static constexpr std::tuple kFields{
      Field("rid", &StatsOk::rid),
      Field("queues", &StatsOk::queues),
      Field("workers", &StatsOk::workers),
      Field("counters", &StatsOk::counters),
  };
};

template <>
struct Schema<Ping> {
  static constexpr std::string_view kOp = "ping";
  static constexpr std::tuple<> kFields{};
};

template <>
struct Schema<ErrorMsg> {
  static constexpr std::string_view kOp = "error";
  static constexpr std::tuple kFields{
      Field("rid", &ErrorMsg::rid),
      Field("code", &ErrorMsg::code, kRequired),
      Field("message", &ErrorMsg::message, kOptional, kMaxErrorBytes),
  };
};

template <>
struct Schema<Shutdown> {
  static constexpr std::string_view kOp = "shutdown";
  static constexpr std::tuple kFields{
      Field("reason", &Shutdown::reason, kOptional, kMaxErrorBytes),
      Field("handover", &Shutdown::handover, kWrittenWhenSet),
  };
};

template <>
struct Schema<Goodbye> {
  static constexpr std::string_view kOp = "goodbye";
  static constexpr std::tuple kFields{
      Field("release", &Goodbye::release),
  };
};

template <>
struct Schema<Release> {
  static constexpr std::string_view kOp = "release";
  static constexpr std::tuple kFields{
      Field("ids", &Release::ids),
  };
};

template <>
struct Schema<Cancel> {
  static constexpr std::string_view kOp = "cancel";
  static constexpr std::tuple kFields{
      Field("rid", &Cancel::rid, kRequired),
  };
};

template <>
struct Schema<Ack> {
  static constexpr std::string_view kOp = "ack";
  static constexpr std::tuple kFields{
      Field("rid", &Ack::rid),
      Field("ids", &Ack::ids),
  };
};

template <>
struct Schema<AckOk> {
  static constexpr std::string_view kOp = "ack_ok";
  static constexpr std::tuple kFields{
      Field("rid", &AckOk::rid),
      Field("acked", &AckOk::acked),
      Field("unknown", &AckOk::unknown),
  };
};

template <>
struct Schema<Peek> {
  static constexpr std::string_view kOp = "peek";
  static constexpr std::tuple kFields{
      Field("rid", &Peek::rid),
      Field("queue", &Peek::queue, kRequired),
      Field("after", &Peek::after),
      Field("max", &Peek::max),
  };
};

template <>
struct Schema<Retry> {
  static constexpr std::string_view kOp = "retry";
  static constexpr std::tuple kFields{
      Field("rid", &Retry::rid),
      Field("ids", &Retry::ids),
  };
};

template <>
struct Schema<RetryOk> {
  static constexpr std::string_view kOp = "retry_ok";
  static constexpr std::tuple kFields{
      Field("rid", &RetryOk::rid),
      Field("retried", &RetryOk::retried),
      Field("skipped", &RetryOk::skipped),
  };
};

template <>
struct Schema<Purge> {
  static constexpr std::string_view kOp = "purge";
  static constexpr std::tuple kFields{
      Field("rid", &Purge::rid),
      Field("queue", &Purge::queue, kRequired),
  };
};

template <>
struct Schema<PurgeOk> {
  static constexpr std::string_view kOp = "purge_ok";
  static constexpr std::tuple kFields{
      Field("rid", &PurgeOk::rid),
      Field("removed", &PurgeOk::removed),
  };
};

// Calls fn(std::type_identity<T>{}) for every message type T, in the order
// of Message's alternatives.
template <class Fn>
constexpr void ForEachMessage(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (fn(std::type_identity<std::variant_alternative_t<I, Message>>{}), ...);
  }
  (std::make_index_sequence<std::variant_size_v<Message>>());
}

}  // namespace taskq::schema

#endif  // TASKQ_PROTO_MESSAGE_SCHEMA_H_
