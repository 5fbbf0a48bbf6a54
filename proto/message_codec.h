// The one encoder and the one decoder of every message, driven by the tables
// of proto/message_schema.h: EncodeMessage writes a map of the fields in
// table order, DecodeFields reads them back with every check of
// docs/PROTOCOL.md section 3, and the items of batches go through
// EncodeItem/DecodeItem the same way. Nothing here names a message or a field.
//
// Everything is a template over the tables, so each message's code is
// unrolled at compile time, as a hand-written codec would be: this is the
// master's hot path (bench/micro_bench.cc). Internal to proto/.
#ifndef TASKQ_PROTO_MESSAGE_CODEC_H_
#define TASKQ_PROTO_MESSAGE_CODEC_H_

#include <algorithm>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "proto/envelope.h"
#include "proto/message_schema.h"
#include "proto/msgpack_writer.h"

// Speed. EncodeItem and DecodeItem are flattened: all they call is inlined
// into them (msgpack-c's packer, the reader's checks; the failures stay out
// of line, cold), which per item takes a third to a half fewer instructions
// than the hand-written codec before this one did. A message's own fields are
// read by steps forced inline (TASKQ_CODEC_INLINE): left to itself, GCC kept
// these small templates as calls, and decoding took 15% more instructions.
#define TASKQ_CODEC_INLINE [[gnu::always_inline]] inline

namespace taskq::schema {

template <class Tuple, class Fn>
constexpr void ForEach(const Tuple& t, Fn&& fn) {
  std::apply([&](const auto&... e) { (fn(e), ...); }, t);
}

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
// (name, uint64) pairs travel as a map: stats_ok's counters.
template <class T>
constexpr bool kIsNamedUints =
    std::is_same_v<T, std::vector<std::pair<std::string_view, uint64_t>>>;

// --- encoding -------------------------------------------------------------------

inline void RawOrNil(MsgpackWriter& w, std::string_view raw) {
  if (raw.empty())
    w.Nil();
  else
    w.Raw(raw);
}

template <Positional T>
void EncodeItem(MsgpackWriter& w, const T& item);
template <Keyed M>
void WriteFields(MsgpackWriter& w, const M& m);
template <Keyed M>
uint32_t WrittenCount(const M& m);

template <class T>
void WriteValue(MsgpackWriter& w, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    w.Bool(v);
  } else if constexpr (std::is_integral_v<T>) {
    w.Uint(v);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    w.Str(v);
  } else if constexpr (Positional<T>) {
    EncodeItem(w, v);
  } else if constexpr (Keyed<T>) {
    w.Map(WrittenCount(v));
    WriteFields(w, v);
  } else if constexpr (std::is_same_v<T, std::pair<uint64_t, uint64_t>>) {
    w.Array(2).Uint(v.first).Uint(v.second);
  } else if constexpr (kIsNamedUints<T>) {
    w.Map(static_cast<uint32_t>(v.size()));
    for (const auto& [name, value] : v) w.Key(name).Uint(value);
  } else {
    static_assert(IsVector<T>::value, "a field type the codec does not know");
    w.Array(static_cast<uint32_t>(v.size()));
    for (const auto& e : v) WriteValue(w, e);
  }
}

template <class T>
bool IsSet(const T& v) {
  if constexpr (requires { v.empty(); })
    return !v.empty();
  else
    return v != T{};
}

template <class Table>
constexpr std::size_t kSize = std::tuple_size_v<std::remove_cvref_t<Table>>;

// Calls fn(std::integral_constant<std::size_t, I>()) for I = 0 .. n-1, so
// that fn reads std::get<I> of a table as a constant: the compiler sees
// every key, member and flag, as in a hand-written codec.
template <std::size_t n, class Fn>
constexpr void ForIndex(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (fn(std::integral_constant<std::size_t, I>()), ...);
  }
  (std::make_index_sequence<n>());
}

template <Keyed M>
uint32_t WrittenCount(const M& m) {
  uint32_t n = 0;
  ForIndex<kSize<decltype(Schema<M>::kFields)>>([&](auto i) {
    constexpr const auto& f = std::get<i>(Schema<M>::kFields);
    if constexpr (f.presence == kWrittenWhenSet)
      n += IsSet(m.*f.member);
    else
      ++n;
  });
  return n;
}

template <Keyed M>
void WriteFields(MsgpackWriter& w, const M& m) {
  ForIndex<kSize<decltype(Schema<M>::kFields)>>([&](auto i) {
    constexpr const auto& f = std::get<i>(Schema<M>::kFields);
    if (f.presence != kWrittenWhenSet || IsSet(m.*f.member)) WriteValue(w.Key(f.key), m.*f.member);
  });
}

template <class M>
void EncodeMessage(MsgpackWriter& w, const M& m) {
  w.Map(WrittenCount(m) + 1).Key("op").Str(Schema<M>::kOp);
  WriteFields(w, m);
}

// Whether an element is written for this item.
template <class E, class M>
bool Present(const E& e, const M& m) {
  if constexpr (!E::kOptional) {
    return true;
  } else if constexpr (requires { e.written; }) {
    return e.written(m);
  } else if constexpr (requires { e.present; }) {
    return m.*e.present;
  } else {
    return m.*e.member != 0;  // Options
  }
}

template <class M, class T>
void WriteElem(MsgpackWriter& w, const Elem<M, T>& e, const M& m) {
  WriteValue(w, m.*e.member);
}
template <class M>
void WriteElem(MsgpackWriter& w, const Any<M>& e, const M& m) {
  RawOrNil(w, m.*e.member);
}
template <class M>
void WriteElem(MsgpackWriter& w, const ValueOrError<M>& e, const M& m) {
  if (m.*e.ok)
    RawOrNil(w, m.*e.value);
  else
    w.Str(m.*e.error);
}
template <class M>
void WriteElem(MsgpackWriter& w, const TrailingBool<M>& e, const M& m) {
  w.Bool(m.*e.member);
}
template <class M>
void WriteElem(MsgpackWriter& w, const TrailingUint<M>& e, const M& m) {
  w.Uint(m.*e.member);
}
template <class M, class T>
void WriteElem(MsgpackWriter& w, const Nested<M, T>& e, const M& m) {
  EncodeItem(w, m.*e.member);
}
template <class M>
void WriteElem(MsgpackWriter& w, const Options<M>& e, const M& m) {
  w.Map(1).Key(e.key).Uint(m.*e.member);
}

// An optional element is written only when every one before it is, so the
// count of those written is also the position after the last.
template <Positional T>
[[gnu::flatten]] void EncodeItem(MsgpackWriter& w, const T& item) {
  constexpr std::size_t kCount = kSize<decltype(Schema<T>::kElements)>;
  uint32_t n = 0;
  ForIndex<kCount>([&](auto i) { n += Present(std::get<i>(Schema<T>::kElements), item); });
  w.Array(n);
  ForIndex<kCount>([&](auto i) {
    constexpr const auto& e = std::get<i>(Schema<T>::kElements);
    if (Present(e, item)) WriteElem(w, e, item);
  });
}

// --- decoding: items --------------------------------------------------------------

template <Positional T>
constexpr uint32_t MinElements() {
  uint32_t n = 0;
  bool optional_seen = false;
  ForEach(Schema<T>::kElements, [&](const auto& e) {
    constexpr bool opt = std::remove_cvref_t<decltype(e)>::kOptional;
    if (!opt && optional_seen) throw "an element that must be there follows an optional one";
    optional_seen |= opt;
    n += !opt;
  });
  return n;
}

template <Positional T>
Status DecodeItem(MsgpackReader& r, T* item);

[[gnu::cold, gnu::noinline]] inline Status IsEmpty(std::string_view name) {
  return Bad("a task's " + std::string(name) + " must not be empty");
}

template <class M, class T>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const Elem<M, T>& e, M* m) {
  T* out = &(m->*e.member);
  if constexpr (std::is_same_v<T, uint64_t>) {
    return it.Uint(out);
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    uint64_t v;
    TASKQ_TRY(it.Uint(&v));
    *out = static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
    return Status::Ok();
  } else if constexpr (std::is_same_v<T, bool>) {
    return it.Bool(out);
  } else {
    TASKQ_TRY(it.Str(out, e.max));
    if (e.non_empty && out->empty()) return IsEmpty(e.name);
    return Status::Ok();
  }
}
template <class M>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const Any<M>& e, M* m) {
  return it.Payload(&(m->*e.member));
}
template <class M>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const ValueOrError<M>& e, M* m) {
  if (m->*e.ok) return it.Payload(&(m->*e.value));
  return it.Str(&(m->*e.error), e.max);
}
template <class M>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const TrailingBool<M>& e, M* m) {
  return it.Bool(&(m->*e.member));
}
template <class M>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const TrailingUint<M>& e, M* m) {
  uint64_t v;
  TASKQ_TRY(it.Uint(&v));
  m->*e.member = static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
  return Status::Ok();
}
template <class M, class T>
TASKQ_CODEC_INLINE Status ReadElem(ItemReader& it, const Nested<M, T>& e, M* m) {
  if (it.NextIsNil()) return Status::Ok();
  std::string_view raw;
  TASKQ_TRY(it.Any(&raw));
  MsgpackReader sub(raw);
  m->*e.present = true;
  return DecodeItem(sub, &(m->*e.member));
}
// Rare (a task with its own time limit): a call, not inlined into every item.
template <class M>
[[gnu::noinline]] Status ReadElem(ItemReader& it, const Options<M>& e, M* m) {
  std::string_view raw;
  TASKQ_TRY(it.Any(&raw));
  MsgpackReader r(raw);
  if (r.ReadNil()) return Status::Ok();
  uint32_t n;
  if (!r.ReadMapHeader(&n)) return Bad("task options must be a map");
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.ReadStr(&key)) return Bad("task option names must be strings");
    uint64_t v;
    if (key == e.key) {
      if (!r.ReadUint(&v) || v > UINT32_MAX)
        return Bad("task option '" + std::string(e.key) + "' must be an integer");
      m->*e.member = static_cast<uint32_t>(v);
    } else if (!r.Skip()) {
      return Bad("task options are not valid msgpack");
    }
  }
  return Status::Ok();
}

// Element I onwards, stopping at the first failure. Unrolled at compile
// time; each step returns as TASKQ_TRY does, so that an item costs what a
// hand-written decoder's would (no Status is copied on the way).
template <Positional T, std::size_t I = 0>
TASKQ_CODEC_INLINE Status ReadElements(ItemReader& it, T* item) {
  constexpr const auto& kElements = Schema<T>::kElements;
  if constexpr (I == kSize<decltype(kElements)>) {
    return Status::Ok();
  } else {
    constexpr const auto& e = std::get<I>(kElements);
    if (!std::remove_cvref_t<decltype(e)>::kOptional || it.Has(I)) TASKQ_TRY(ReadElem(it, e, item));
    return ReadElements<T, I + 1>(it, item);
  }
}

template <Positional T>
[[gnu::flatten]] Status DecodeItem(MsgpackReader& r, T* item) {
  constexpr uint32_t kMin = MinElements<T>();
  ItemReader it(r, Schema<T>::kItem);
  TASKQ_TRY(it.Open(kMin));
  TASKQ_TRY(ReadElements(it, item));
  return it.Close();
}

// --- decoding: envelope fields ------------------------------------------------------

// Reads the value of a known key of a stats element: false (nothing
// consumed) when it has another type.
template <class T>
bool ReadLoose(MsgpackReader& r, T* out) {
  if constexpr (std::is_same_v<T, std::string_view>)
    return r.ReadStr(out);
  else
    return r.ReadUint(out);
}

// A stats element, key by key: unknown keys, and known ones of another
// type, are skipped.
template <Keyed T>
Status ReadLooseMap(MsgpackReader& r, std::string_view field, T* out) {
  uint32_t fields;
  if (!r.ReadMapHeader(&fields))
    return Bad("each element of '" + std::string(field) + "' must be a map");
  for (uint32_t k = 0; k < fields; ++k) {
    std::string_view name;
    if (!r.ReadStr(&name)) return Bad("keys in '" + std::string(field) + "' must be strings");
    bool read = false;
    bool known = false;
    ForEach(Schema<T>::kFields, [&](const auto& f) {
      if (known || f.key != name) return;
      known = true;
      read = ReadLoose(r, &(out->*f.member));
    });
    if (!read && !r.Skip()) return Bad("'" + std::string(field) + "' is not valid msgpack");
  }
  return Status::Ok();
}

// One element of an envelope array, by type.
template <class T>
Status ReadArrayElement(MsgpackReader& r, std::string_view field, T* out) {
  if constexpr (Positional<T>) {
    return DecodeItem(r, out);
  } else if constexpr (Keyed<T>) {
    return ReadLooseMap(r, field, out);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    if (!r.ReadUint(out))
      return Bad("field '" + std::string(field) + "' must be an array of task ids");
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    if (!r.ReadStr(out) || out->size() > kMaxNameBytes)
      return Bad("field '" + std::string(field) + "' must be an array of short strings");
  } else {
    static_assert(std::is_same_v<T, std::pair<uint64_t, uint64_t>>);
    uint32_t two;
    if (!r.ReadArrayHeader(&two) || two != 2 || !r.ReadUint(&out->first) ||
        !r.ReadUint(&out->second))
      return Bad("field '" + std::string(field) +
                 "' must be an array of [record id, task id] pairs");
  }
  return Status::Ok();
}

template <class M, class T>
TASKQ_CODEC_INLINE Status ReadArray(const Envelope& env, const Field<M, std::vector<T>>& f,
                                    std::vector<T>* out) {
  MsgpackReader r;
  uint32_t n;
  TASKQ_TRY(env.Array(f.key, &r, &n, static_cast<uint32_t>(f.max), f.presence == kRequired));
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) TASKQ_TRY(ReadArrayElement(r, f.key, &(*out)[i]));
  // A batch was read in full, every byte checked: the envelope need not walk it again.
  if constexpr (Positional<T>) return env.Consumed(f.key, r);
  return Status::Ok();
}

template <class M, class T>
TASKQ_CODEC_INLINE Status ReadField(const Envelope& env, const Field<M, T>& f, M* m) {
  const bool required = f.presence == kRequired;
  T* out = &(m->*f.member);
  if (f.raw) m->*f.raw = env.Raw(f.key);
  if constexpr (std::is_same_v<T, uint64_t>) {
    return env.Uint(f.key, out, required);
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    return env.Uint32(f.key, out, required);
  } else if constexpr (std::is_same_v<T, bool>) {
    return env.Bool(f.key, out, required);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return env.Str(f.key, out, required, f.max);
  } else if constexpr (kIsNamedUints<T>) {
    MsgpackReader r;
    uint32_t n;
    TASKQ_TRY(env.Map(f.key, &r, &n, required));
    out->resize(n);
    for (auto& [name, value] : *out)
      if (!r.ReadStr(&name) || !r.ReadUint(&value))
        return Bad("field '" + std::string(f.key) + "' must map names to non-negative integers");
    return Status::Ok();
  } else {
    return ReadArray(env, f, out);
  }
}

// Reads field I onwards into *m, stopping at the first failure (unrolled,
// as ReadElements).
template <class M, std::size_t I = 0>
TASKQ_CODEC_INLINE Status DecodeFields(const Envelope& env, M* m) {
  constexpr const auto& kFields = Schema<M>::kFields;
  if constexpr (I == kSize<decltype(kFields)>) {
    return Status::Ok();
  } else {
    TASKQ_TRY(ReadField(env, std::get<I>(kFields), m));
    return DecodeFields<M, I + 1>(env, m);
  }
}

}  // namespace taskq::schema

#undef TASKQ_CODEC_INLINE

#endif  // TASKQ_PROTO_MESSAGE_CODEC_H_
