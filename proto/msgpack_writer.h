// MsgpackWriter: appends msgpack to a std::string through msgpack-c's packer,
// which always picks the shortest encoding. Raw() splices bytes that already
// hold one encoded value (a task argument) without re-encoding them.
#ifndef TASKQ_PROTO_MSGPACK_WRITER_H_
#define TASKQ_PROTO_MSGPACK_WRITER_H_

#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>

namespace taskq {

class MsgpackWriter {
 public:
  // Appends to *out (not owned; must outlive the writer).
  explicit MsgpackWriter(std::string* out) : sink_{out}, pk_(sink_) {}

  MsgpackWriter& Map(uint32_t n) {
    pk_.pack_map(n);
    return *this;
  }
  MsgpackWriter& Array(uint32_t n) {
    pk_.pack_array(n);
    return *this;
  }
  MsgpackWriter& Nil() {
    pk_.pack_nil();
    return *this;
  }
  MsgpackWriter& Bool(bool b) {
    if (b)
      pk_.pack_true();
    else
      pk_.pack_false();
    return *this;
  }
  MsgpackWriter& Uint(uint64_t v) {
    pk_.pack_uint64(v);
    return *this;
  }
  MsgpackWriter& Int(int64_t v) {
    pk_.pack_int64(v);
    return *this;
  }
  MsgpackWriter& Double(double v) {
    pk_.pack_double(v);
    return *this;
  }
  MsgpackWriter& Str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  MsgpackWriter& Bin(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  // Appends bytes that already hold exactly one encoded value.
  MsgpackWriter& Raw(std::string_view encoded) {
    sink_.out->append(encoded.data(), encoded.size());
    return *this;
  }
  // A map key followed by its value, for envelopes: w.Key("rid").Uint(7).
  MsgpackWriter& Key(std::string_view k) { return Str(k); }

 private:
  struct Sink {
    std::string* out;
    void write(const char* p, std::size_t n) { out->append(p, n); }
  };
  Sink sink_;
  msgpack::packer<Sink> pk_;
};

}  // namespace taskq

#endif  // TASKQ_PROTO_MSGPACK_WRITER_H_
