#include "proto/msgpack_reader.h"

#include <cstring>

namespace taskq {
namespace {

uint64_t BigEndian(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Width in bytes of the length field that follows tags with one.
int LengthWidth(uint8_t tag) {
  switch (tag) {
    case 0xc4:
    case 0xc7:
    case 0xd9:
      return 1;  // bin8 ext8 str8
    case 0xc5:
    case 0xc8:
    case 0xda:
    case 0xdc:
    case 0xde:
      return 2;
    case 0xc6:
    case 0xc9:
    case 0xdb:
    case 0xdd:
    case 0xdf:
      return 4;
    default:
      return 0;
  }
}

}  // namespace

const char* MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kNil:
      return "nil";
    case MsgType::kBool:
      return "a boolean";
    case MsgType::kUint:
    case MsgType::kInt:
      return "an integer";
    case MsgType::kFloat:
      return "a float";
    case MsgType::kStr:
      return "a string";
    case MsgType::kBin:
      return "binary data";
    case MsgType::kArray:
      return "an array";
    case MsgType::kMap:
      return "a map";
    case MsgType::kExt:
      return "an extension value";
    case MsgType::kEnd:
      return "nothing (the input ended)";
    case MsgType::kInvalid:
      break;
  }
  return "an invalid byte";
}

bool MsgpackReader::ReadHeader(Header* h) const {
  if (p_ == end_) {
    truncated_ = true;
    return false;
  }
  const uint8_t tag = static_cast<uint8_t>(*p_);
  h->tag = tag;
  const char* q = p_ + 1;
  auto need = [&](uint64_t n) {
    if (static_cast<uint64_t>(end_ - q) >= n) return true;
    truncated_ = true;
    return false;
  };
  // Fixed-size forms first: the tag alone says everything.
  if (tag <= 0x7f || tag >= 0xe0) {
    h->type = tag <= 0x7f ? MsgType::kUint : MsgType::kInt;
    h->length = 0;  // the value is in the tag itself
    h->payload = q;
    return true;
  }
  if (tag >= 0x80 && tag <= 0x9f) {
    h->type = tag <= 0x8f ? MsgType::kMap : MsgType::kArray;
    h->length = tag & 0x0f;
    h->payload = q;
    return true;
  }
  if (tag >= 0xa0 && tag <= 0xbf) {
    h->type = MsgType::kStr;
    h->length = tag & 0x1f;
    h->payload = q;
    return need(h->length);
  }
  switch (tag) {
    case 0xc0:
      h->type = MsgType::kNil;
      h->length = 0;
      h->payload = q;
      return true;
    case 0xc2:
    case 0xc3:
      h->type = MsgType::kBool;
      h->length = 0;
      h->payload = q;
      return true;
    case 0xca:
      h->type = MsgType::kFloat;
      h->length = 4;
      h->payload = q;
      return need(4);
    case 0xcb:
      h->type = MsgType::kFloat;
      h->length = 8;
      h->payload = q;
      return need(8);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      h->type = MsgType::kUint;
      h->length = 1u << (tag - 0xcc);
      h->payload = q;
      return need(h->length);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      h->type = MsgType::kInt;  // may still hold a non-negative value
      h->length = 1u << (tag - 0xd0);
      h->payload = q;
      return need(h->length);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:  // fixext: type byte + 2^k data
      h->type = MsgType::kExt;
      h->length = 1u << (tag - 0xd4);
      h->payload = q;
      return need(1 + h->length);
    default:
      break;
  }
  const int width = LengthWidth(tag);
  if (width == 0) {  // 0xc1 is never used
    h->type = MsgType::kInvalid;
    return false;
  }
  if (!need(width)) return false;
  h->length = BigEndian(q, width);
  h->payload = q + width;
  q = h->payload;
  switch (tag) {
    case 0xc4:
    case 0xc5:
    case 0xc6:
      h->type = MsgType::kBin;
      return need(h->length);
    case 0xc7:
    case 0xc8:
    case 0xc9:
      h->type = MsgType::kExt;
      return need(1 + h->length);
    case 0xd9:
    case 0xda:
    case 0xdb:
      h->type = MsgType::kStr;
      return need(h->length);
    case 0xdc:
    case 0xdd:
      h->type = MsgType::kArray;
      return true;
    default:
      h->type = MsgType::kMap;
      return true;  // 0xde 0xdf
  }
}

MsgType MsgpackReader::Peek() const {
  if (p_ == end_) return MsgType::kEnd;
  Header h;
  bool saved = truncated_;
  bool ok = ReadHeader(&h);
  truncated_ = saved;
  if (!ok && h.type == MsgType::kInvalid) return MsgType::kInvalid;
  return h.type;
}

bool MsgpackReader::ReadNil() {
  if (p_ == end_ || static_cast<uint8_t>(*p_) != 0xc0) {
    truncated_ |= p_ == end_;
    return false;
  }
  ++p_;
  return true;
}

bool MsgpackReader::ReadBool(bool* out) {
  if (p_ == end_) {
    truncated_ = true;
    return false;
  }
  const uint8_t tag = static_cast<uint8_t>(*p_);
  if (tag != 0xc2 && tag != 0xc3) return false;
  *out = tag == 0xc3;
  ++p_;
  return true;
}

bool MsgpackReader::ReadInt(int64_t* out) {
  Header h;
  if (!ReadHeader(&h) || (h.type != MsgType::kUint && h.type != MsgType::kInt)) return false;
  int64_t v;
  if (h.length == 0) {
    v = static_cast<int8_t>(h.tag);  // positive or negative fixint
  } else if (h.type == MsgType::kUint) {
    uint64_t u = BigEndian(h.payload, static_cast<int>(h.length));
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    v = static_cast<int64_t>(u);
  } else {
    uint64_t u = BigEndian(h.payload, static_cast<int>(h.length));
    int shift = 64 - 8 * static_cast<int>(h.length);  // sign-extend from length bytes
    v = shift == 0 ? static_cast<int64_t>(u) : static_cast<int64_t>(u << shift) >> shift;
  }
  *out = v;
  p_ = h.payload + h.length;
  return true;
}

bool MsgpackReader::ReadUint(uint64_t* out) {
  Header h;
  if (!ReadHeader(&h)) return false;
  if (h.type == MsgType::kUint) {
    *out = h.length == 0 ? static_cast<uint8_t>(h.tag)
                         : BigEndian(h.payload, static_cast<int>(h.length));
    p_ = h.payload + h.length;
    return true;
  }
  if (h.type != MsgType::kInt) return false;
  int64_t v;  // a signed encoding of a non-negative value is still fine
  const char* saved = p_;
  if (!ReadInt(&v)) return false;
  if (v < 0) {
    p_ = saved;
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

bool MsgpackReader::ReadDouble(double* out) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kFloat) return false;
  uint64_t bits = BigEndian(h.payload, static_cast<int>(h.length));
  if (h.length == 4) {
    uint32_t b32 = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b32, 4);
    *out = f;
  } else {
    std::memcpy(out, &bits, 8);
  }
  p_ = h.payload + h.length;
  return true;
}

bool MsgpackReader::ReadStr(std::string_view* out) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kStr) return false;
  *out = std::string_view(h.payload, h.length);
  p_ = h.payload + h.length;
  return true;
}

bool MsgpackReader::ReadBin(std::string_view* out) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kBin) return false;
  *out = std::string_view(h.payload, h.length);
  p_ = h.payload + h.length;
  return true;
}

bool MsgpackReader::ReadExt(int8_t* type, std::string_view* data) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kExt) return false;
  *type = static_cast<int8_t>(h.payload[0]);
  *data = std::string_view(h.payload + 1, h.length);
  p_ = h.payload + 1 + h.length;
  return true;
}

bool MsgpackReader::ReadArrayHeader(uint32_t* count, uint32_t limit) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kArray) return false;
  // Each element takes at least one byte: a count beyond the remaining bytes
  // cannot be honest, whatever the limit.
  if (h.length > limit || h.length > static_cast<uint64_t>(end_ - h.payload)) return false;
  *count = static_cast<uint32_t>(h.length);
  p_ = h.payload;
  return true;
}

bool MsgpackReader::ReadMapHeader(uint32_t* count, uint32_t limit) {
  Header h;
  if (!ReadHeader(&h) || h.type != MsgType::kMap) return false;
  if (h.length > limit || 2 * h.length > static_cast<uint64_t>(end_ - h.payload)) return false;
  *count = static_cast<uint32_t>(h.length);
  p_ = h.payload;
  return true;
}

bool MsgpackReader::SkipN(uint64_t values, int depth) {
  for (uint64_t i = 0; i < values; ++i)
    if (!Skip(nullptr, depth)) return false;
  return true;
}

bool MsgpackReader::Skip(std::string_view* raw, int depth) {
  const char* start = p_;
  Header h;
  if (!ReadHeader(&h)) return false;
  bool ok = true;
  switch (h.type) {
    case MsgType::kArray:
    case MsgType::kMap: {
      uint32_t n;
      ok = depth > 0 && (h.type == MsgType::kArray ? ReadArrayHeader(&n) : ReadMapHeader(&n)) &&
           SkipN(h.type == MsgType::kArray ? n : 2ull * n, depth - 1);
      break;
    }
    case MsgType::kExt:
      p_ = h.payload + 1 + h.length;
      break;
    case MsgType::kNil:
    case MsgType::kBool:
      p_ = start + 1;
      break;
    default:
      p_ = h.payload + h.length;
      break;  // ints, floats, str, bin
  }
  if (!ok) {
    p_ = start;
    return false;
  }
  if (raw) *raw = std::string_view(start, static_cast<std::size_t>(p_ - start));
  return true;
}

bool IsOneValue(std::string_view bytes) {
  MsgpackReader r(bytes);
  return r.Skip() && r.at_end();
}

}  // namespace taskq
