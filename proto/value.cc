#include "proto/value.h"

#include <sodium.h>

#include <cmath>
#include <cstdio>

#include "proto/msgpack_writer.h"
#include "proto/utf8.h"

namespace taskq {
namespace {

template <typename Fn>
Value Build(Fn fn) {
  std::string bytes;
  MsgpackWriter w(&bytes);
  fn(w);
  return Value::FromTrusted(bytes);
}

void JsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {  // not UTF-8: the replacement character keeps the output valid JSON
      out->append("\\ufffd");
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out->append(buf);
    } else {
      out->append(s.substr(i, n));
    }
    i += n;
  }
  out->push_back('"');
}

void JsonNumber(double d, std::string* out) {
  if (!std::isfinite(d)) {
    out->append("null");
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  out->append(buf);
}

bool RenderJson(MsgpackReader& r, std::string* out, int depth);

bool RenderContainer(MsgpackReader& r, std::string* out, int depth, bool map) {
  uint32_t n;
  if (depth <= 0 || !(map ? r.ReadMapHeader(&n) : r.ReadArrayHeader(&n))) return false;
  out->push_back(map ? '{' : '[');
  for (uint32_t i = 0; i < n; ++i) {
    if (i) out->append(", ");
    if (map) {
      std::string_view key;
      const MsgType kt = r.Peek();
      if (r.ReadStr(&key)) {
        JsonString(key, out);
      } else if (kt == MsgType::kArray || kt == MsgType::kMap) {
        // JSON keys are strings. A container key is named, not rendered:
        // rendering it as escaped text nests escapes, and the output would
        // double with each level (a few bytes of input, gigabytes of text).
        if (!r.Skip(nullptr, depth - 1)) return false;
        out->append(kt == MsgType::kArray ? "\"<array>\"" : "\"<map>\"");
      } else {
        std::string text;
        if (!RenderJson(r, &text, depth - 1)) return false;
        JsonString(text, out);
      }
      out->append(": ");
    }
    if (!RenderJson(r, out, depth - 1)) return false;
  }
  out->push_back(map ? '}' : ']');
  return true;
}

bool RenderJson(MsgpackReader& r, std::string* out, int depth) {
  switch (r.Peek()) {
    case MsgType::kNil:
      r.ReadNil();
      out->append("null");
      return true;
    case MsgType::kBool: {
      bool b;
      r.ReadBool(&b);
      out->append(b ? "true" : "false");
      return true;
    }
    case MsgType::kUint: {
      uint64_t u;
      if (!r.ReadUint(&u)) return false;
      out->append(std::to_string(u));
      return true;
    }
    case MsgType::kInt: {
      int64_t i;
      if (!r.ReadInt(&i)) return false;
      out->append(std::to_string(i));
      return true;
    }
    case MsgType::kFloat: {
      double d;
      if (!r.ReadDouble(&d)) return false;
      JsonNumber(d, out);
      return true;
    }
    case MsgType::kStr: {
      std::string_view s;
      if (!r.ReadStr(&s)) return false;
      JsonString(s, out);
      return true;
    }
    case MsgType::kBin: {
      std::string_view b;
      if (!r.ReadBin(&b)) return false;
      std::string b64(sodium_base64_ENCODED_LEN(b.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
      sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(b.data()),
                        b.size(), sodium_base64_VARIANT_ORIGINAL);
      b64.resize(b64.size() - 1);  // the terminating NUL
      JsonString(b64, out);
      return true;
    }
    case MsgType::kArray:
      return RenderContainer(r, out, depth, false);
    case MsgType::kMap:
      return RenderContainer(r, out, depth, true);
    case MsgType::kExt:
      if (!r.Skip()) return false;
      out->append("null");
      return true;
    default:
      return false;
  }
}

}  // namespace

Value::Value() : packed_(1, '\xc0') {}

Result<Value> Value::FromPacked(std::string_view bytes) {
  if (!IsOneValue(bytes))
    return Status::Error(Code::kInvalid, "the bytes are not exactly one msgpack value");
  return FromTrusted(bytes);
}

Value Value::FromTrusted(std::string_view bytes) {
  Value v;
  if (!bytes.empty()) v.packed_.assign(bytes.data(), bytes.size());
  return v;
}

Value Value::Bool(bool b) {
  return Build([b](MsgpackWriter& w) { w.Bool(b); });
}
Value Value::Int(int64_t n) {
  return Build([n](MsgpackWriter& w) { w.Int(n); });
}
Value Value::Double(double d) {
  return Build([d](MsgpackWriter& w) { w.Double(d); });
}
Value Value::Str(std::string_view s) {
  return Build([s](MsgpackWriter& w) { w.Str(s); });
}
Value Value::Bin(std::string_view b) {
  return Build([b](MsgpackWriter& w) { w.Bin(b); });
}

MsgType Value::type() const { return MsgpackReader(packed_).Peek(); }

std::optional<int64_t> Value::AsInt() const {
  MsgpackReader r(packed_);
  int64_t v;
  if (r.ReadInt(&v)) return v;
  return std::nullopt;
}

std::optional<double> Value::AsDouble() const {
  MsgpackReader r(packed_);
  double d;
  if (r.ReadDouble(&d)) return d;
  if (auto i = AsInt()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<std::string> Value::AsStr() const {
  MsgpackReader r(packed_);
  std::string_view s;
  if (r.ReadStr(&s)) return std::string(s);
  return std::nullopt;
}

std::string Value::ToText() const {
  if (auto s = AsStr()) return *s;
  return PackedToJson(packed_);
}

std::string PackedToJson(std::string_view packed) {
  MsgpackReader r(packed);
  std::string out;
  if (!RenderJson(r, &out, kMaxDepth) || !r.at_end()) return "null";
  return out;
}

}  // namespace taskq
