// Reading a message: Envelope finds the keys of its top-level map once, and
// ItemReader reads the positional items of its batches. Both are strict
// (docs/PROTOCOL.md section 3.3) and say what is wrong in a sentence naming
// the field. The generic decoder (proto/message_codec.h) drives them.
//
// Thread: used by one thread; they borrow the bytes they read.
#ifndef TASKQ_PROTO_ENVELOPE_H_
#define TASKQ_PROTO_ENVELOPE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/status.h"

namespace taskq {

// A bad_message: kInvalid with its reason.
inline Status Bad(std::string what) { return Status::Error(Code::kInvalid, std::move(what)); }

// The top-level map, read once: each key with the bytes of its value.
class Envelope {
 public:
  // Reads the map's keys. The last value is not checked yet: a decoder that
  // reads it in full says so (Consumed), else Finish checks it.
  Status Parse(std::string_view bytes);
  // After decoding: checks the last value if no decoder did (it must be one
  // valid value, with nothing after it).
  Status Finish() const;
  // A decoder read the value under key to its end, checking every byte:
  // *r is where it stopped. Fails on trailing bytes.
  Status Consumed(std::string_view key, const MsgpackReader& r) const {
    if (!last_unchecked_ || fields_[count_ - 1].key != key) return Status::Ok();
    if (!r.at_end()) return Bad("the message has trailing bytes after the map");
    last_unchecked_ = false;
    return Status::Ok();
  }

  // Each getter leaves *out unchanged when the key is absent and not required.
  Status Uint(std::string_view key, uint64_t* out, bool required = false) const {
    return Scalar(key, required, "a non-negative integer",
                  [out](MsgpackReader& r) { return r.ReadUint(out); });
  }
  Status Uint32(std::string_view key, uint32_t* out, bool required = false) const {
    uint64_t v = *out;
    TASKQ_TRY(Uint(key, &v, required));
    if (v > UINT32_MAX) return Bad("field '" + std::string(key) + "' is out of range");
    *out = static_cast<uint32_t>(v);
    return Status::Ok();
  }
  Status Str(std::string_view key, std::string_view* out, bool required = false,
             std::size_t max = kMaxNameBytes) const {
    TASKQ_TRY(
        Scalar(key, required, "a string", [out](MsgpackReader& r) { return r.ReadStr(out); }));
    if (out->size() > max)
      return Bad("field '" + std::string(key) + "' is longer than " + std::to_string(max) +
                 " bytes");
    return Status::Ok();
  }
  Status Bool(std::string_view key, bool* out, bool required = false) const {
    return Scalar(key, required, "a boolean", [out](MsgpackReader& r) { return r.ReadBool(out); });
  }
  // The array under key: *r is left positioned on its first element. An
  // absent key gives count 0 unless required.
  Status Array(std::string_view key, MsgpackReader* r, uint32_t* count, uint32_t limit,
               bool required) const {
    *count = 0;
    TASKQ_TRY(Find(key, r, required));
    if (r->at_end()) return Status::Ok();
    if (r->Peek() != MsgType::kArray) return WrongType(key, "an array");
    if (!r->ReadArrayHeader(count, limit))
      return Bad("field '" + std::string(key) + "' has more than " + std::to_string(limit) +
                 " elements");
    return Status::Ok();
  }
  Status Map(std::string_view key, MsgpackReader* r, uint32_t* count, bool required = false) const {
    *count = 0;
    TASKQ_TRY(Find(key, r, required));
    if (r->at_end()) return Status::Ok();
    if (!r->ReadMapHeader(count)) return WrongType(key, "a map");
    return Status::Ok();
  }

  // The bytes of key's value as received; empty when absent.
  std::string_view Raw(std::string_view key) const {
    for (uint32_t i = count_; i-- > 0;)
      if (fields_[i].key == key) return fields_[i].raw;
    return {};
  }

  // A peer's text, cut to fit an error message.
  static std::string Clip(std::string_view s);

 private:
  struct Field {
    std::string_view key;
    std::string_view raw;
  };

  // Positions *r on the value of key (the last one if repeated); an absent
  // key leaves *r empty (at_end) or fails when required.
  Status Find(std::string_view key, MsgpackReader* r, bool required) const {
    for (uint32_t i = count_; i-- > 0;) {
      if (fields_[i].key == key) {
        *r = MsgpackReader(fields_[i].raw);
        return Status::Ok();
      }
    }
    *r = MsgpackReader(std::string_view());
    if (required) return Bad("field '" + std::string(key) + "' is missing");
    return Status::Ok();
  }
  // Reads the value under key with read (a MsgpackReader::Read* of the
  // type want names); nothing when the key is absent and not required.
  template <class Read>
  Status Scalar(std::string_view key, bool required, const char* want, Read read) const {
    MsgpackReader r;
    TASKQ_TRY(Find(key, &r, required));
    if (r.at_end() || read(r)) return Status::Ok();
    return WrongType(key, want);
  }
  static Status WrongType(std::string_view key, const char* want) {
    return Bad("field '" + std::string(key) + "' must be " + want);
  }
  static Status NotValid(const Field& f, const MsgpackReader& r);

  Field fields_[kMaxEnvelopeFields];
  uint32_t count_ = 0;
  mutable bool last_unchecked_ = false;  // the last value has not been walked yet
};

// Reads one positional array item: its header, then its elements in order.
// Elements beyond those a reader knows are skipped (room to grow).
class ItemReader {
 public:
  ItemReader(MsgpackReader& r, const char* what) : r_(r), what_(what) {}

  Status Open(uint32_t min_elements) {
    if (!r_.ReadArrayHeader(&count_, kMaxContainer) || count_ < min_elements)
      return TooShort(min_elements);
    return Status::Ok();
  }
  bool Has(uint32_t index) const { return index < count_; }
  bool NextIsNil() const { return r_.Peek() == MsgType::kNil; }
  Status Uint(uint64_t* out) { return Next(r_.ReadUint(out), "a non-negative integer"); }
  Status Bool(bool* out) { return Next(r_.ReadBool(out), "a boolean"); }
  Status Str(std::string_view* out, std::size_t max) {
    TASKQ_TRY(Next(r_.ReadStr(out), "a string"));
    if (out->size() > max) return Said("a string in a ", " is too long");
    return Status::Ok();
  }
  // Structure around values (options, an outcome). An element sits two
  // levels into its envelope field (the batch, the item), and the field may
  // nest kMaxDepth + kEnvelopeDepth in all: the batch is checked here, not
  // by the envelope (Envelope::Parse).
  Status Any(std::string_view* raw) {
    return Next(r_.Skip(raw, kMaxDepth + kEnvelopeDepth - 2), "a valid msgpack value");
  }
  // A task argument or result value: one value within kMaxDepth and kMaxValueBytes.
  Status Payload(std::string_view* raw) {
    TASKQ_TRY(Next(r_.Skip(raw, kMaxDepth), "a valid msgpack value nested at most 32 deep"));
    if (raw->size() > kMaxValueBytes) return Said("a value in a ", " is larger than 16 MiB");
    return Status::Ok();
  }
  // Skips the elements not read.
  Status Close() {
    for (; read_ < count_; ++read_)
      if (!r_.Skip()) return Said("a ", " is not valid msgpack");
    return Status::Ok();
  }

 private:
  Status Next(bool ok, const char* want) {
    if (!ok) return NotA(want);
    ++read_;
    return Status::Ok();
  }
  // The failures, out of line and cold: the item decoders inline everything
  // else they call (proto/message_codec.h).
  [[gnu::cold, gnu::noinline]] Status TooShort(uint32_t min_elements) const;
  [[gnu::cold, gnu::noinline]] Status NotA(const char* want) const;
  [[gnu::cold, gnu::noinline]] Status Said(const char* before, const char* after) const;

  MsgpackReader& r_;
  const char* what_;
  uint32_t count_ = 0;
  uint32_t read_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_PROTO_ENVELOPE_H_
