// MsgpackReader: a strict, zero-copy, allocation-free cursor over msgpack
// bytes. Every decoder in taskq reads peer or file input through it.
//
// Why not msgpack::unpack: it builds an object tree in a zone, allocating
// n * 24 bytes for an array header that claims n elements before reading any
// of them (docs/LIBRARIES.md), and it loses the byte span of each value, which
// the master needs to store and forward task arguments without re-encoding.
// This cursor hands out string_views into the input and checks every count
// against the bytes that remain (an element takes at least one byte), so
// hostile input costs at most O(input) time and no memory. Encoding uses
// msgpack-c's packer (msgpack_writer.h); tests check this reader against
// msgpack::unpack on the same bytes.
//
// Thread: a reader is used by one thread; it borrows the bytes it reads.
#ifndef TASKQ_PROTO_MSGPACK_READER_H_
#define TASKQ_PROTO_MSGPACK_READER_H_

#include <cstdint>
#include <string_view>

#include "proto/limits.h"

namespace taskq {

enum class MsgType {
  kNil,
  kBool,
  kUint,
  kInt,
  kFloat,
  kStr,
  kBin,
  kArray,
  kMap,
  kExt,
  kEnd,
  kInvalid
};

// The name used in error messages: "an integer", "a string", ...
const char* MsgTypeName(MsgType t);

class MsgpackReader {
 public:
  MsgpackReader() : p_(nullptr), end_(nullptr) {}
  explicit MsgpackReader(std::string_view bytes)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  // Type of the next value, without consuming it. kUint is a non-negative
  // integer, kInt a negative one; kEnd when no bytes remain.
  MsgType Peek() const;

  // Each Read* consumes the next value and returns true if it has the asked
  // type (and fits); otherwise it consumes nothing and returns false, and
  // truncated() tells whether the input ended inside the value.
  bool ReadNil();
  bool ReadBool(bool* out);
  bool ReadUint(uint64_t* out);  // any integer encoding holding a value >= 0
  bool ReadInt(int64_t* out);    // any integer encoding holding a value in int64
  bool ReadDouble(double* out);  // float32 or float64
  bool ReadStr(std::string_view* out);
  bool ReadBin(std::string_view* out);
  bool ReadExt(int8_t* type, std::string_view* data);
  // Container headers. The count is checked against the bytes that remain and
  // against limit, so a header claiming 2^32 elements fails here.
  bool ReadArrayHeader(uint32_t* count, uint32_t limit = kMaxContainer);
  bool ReadMapHeader(uint32_t* count, uint32_t limit = kMaxContainer);

  // Consumes one complete value of any type (nested up to depth levels of
  // containers) and, if raw is given, sets it to the value's bytes.
  bool Skip(std::string_view* raw = nullptr, int depth = kMaxDepth);

  bool at_end() const { return p_ == end_; }
  // The bytes not read yet.
  std::string_view Rest() const { return std::string_view(p_, static_cast<std::size_t>(end_ - p_)); }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  bool truncated() const { return truncated_; }

 private:
  // Reads the header of the next value: its type, its length or count (for
  // str/bin/ext/array/map) and where its payload starts. Consumes nothing.
  struct Header {
    MsgType type = MsgType::kInvalid;
    uint8_t tag = 0;
    uint64_t length = 0;  // bytes of payload (str/bin/ext) or element count
    const char* payload = nullptr;
  };
  bool ReadHeader(Header* h) const;
  bool SkipN(uint64_t values, int depth);

  const char* p_;
  const char* end_;
  mutable bool truncated_ = false;
};

// True when bytes hold exactly one complete msgpack value within the limits.
bool IsOneValue(std::string_view bytes);

}  // namespace taskq

#endif  // TASKQ_PROTO_MSGPACK_READER_H_
