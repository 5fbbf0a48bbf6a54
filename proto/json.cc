#include "proto/json.h"

#include <sodium.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "proto/limits.h"
#include "proto/msgpack_writer.h"
#include "proto/utf8.h"

namespace taskq {
namespace {

// --- JSON text to msgpack ----------------------------------------------------

using Json = nlohmann::json;

constexpr std::string_view kNotAValue =
    "expected a value (object, array, string, number, true, false or null)";

// What nlohmann-json says of a text it refuses, in the words ParseJson has
// always used (tests/json_test.cc holds them). Only the wording is chosen
// here: the text is refused whichever entry matches. First match wins; the
// library's own words stand for anything missing.
struct Words {
  std::string_view library, ours;
};
constexpr Words kWords[] = {
    // Where a ',', ':' or the end was due, that is what is said, whatever
    // token stood there instead.
    {"; expected end of input", "unexpected text after the value"},
    {"while parsing object separator", "expected ':' after a key"},
    {"while parsing array -", "expected ',' or ']' in an array"},
    {"while parsing object -", "expected ',' or '}' in an object"},
    // A string that is wrong (a key too), then anything else where a key was due.
    {"invalid string: control character", "a control character inside a string"},
    {"invalid string: ill-formed UTF-8", "a string that is not UTF-8"},
    {"invalid string: surrogate", "a lone surrogate in a \\u escape"},
    {"must be followed by 4 hex digits", "\\u needs 4 hex digits"},
    {"forbidden character after backslash", "an unknown escape in a string"},
    {"missing closing quote", "the text ends inside a string"},
    {"while parsing object key", "expected a string key in an object"},
    // Where a value was due.
    {"expected digit after '.'", "digits must follow '.'"},
    {"after exponent", "digits must follow 'e'"},
    {"expected digit after '-'", "a number needs digits"},
    {"unexpected end of input", "the text ends where a value should be"},
    {"while parsing value", kNotAValue},
};

bool CanStartValue(char c) {
  return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' ||
         c == 'f' || c == 'n';
}

Status Refused(std::string_view what, std::size_t column) {
  return Status::Error(Code::kInvalid, std::string(what) + " at column " + std::to_string(column));
}

// Takes the values nlohmann-json's parser reports as it reads (its SAX
// interface) and writes them as msgpack. A container is written once it
// ends (its msgpack header carries the count): each open one collects its
// elements in a buffer of its own, spliced into its parent's at the end.
class MsgpackSax {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit MsgpackSax(std::string* out) : out_(out) {}

  bool null() { return MsgpackWriter(Next()).Nil(), true; }
  bool boolean(bool b) { return MsgpackWriter(Next()).Bool(b), true; }
  bool number_integer(number_integer_t i) { return MsgpackWriter(Next()).Int(i), true; }
  bool number_unsigned(number_unsigned_t u) { return MsgpackWriter(Next()).Uint(u), true; }
  bool number_float(number_float_t d, const string_t&) {
    return MsgpackWriter(Next()).Double(d), true;
  }
  bool string(string_t& s) { return MsgpackWriter(Next()).Str(s), true; }
  bool binary(binary_t&) { return false; }  // JSON text has none
  bool key(string_t& k) { return MsgpackWriter(&open_.back().body).Str(k), true; }
  bool start_object(std::size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t position, const std::string&, const Json::exception& e) {
    error_ = Translate(position, e);
    return false;
  }

  const Status& error() const { return error_; }

 private:
  struct Container {
    bool map;
    uint32_t n = 0;  // elements, or pairs
    std::string body;
  };

  // Where the next value goes: it is one more element of the innermost open
  // container, or the whole value.
  std::string* Next() {
    if (open_.empty()) return out_;
    ++open_.back().n;
    return &open_.back().body;
  }
  bool Open(bool map) {
    if (open_.size() >= kMaxDepth) {
      error_ = Status::Error(Code::kInvalid, "arrays and objects nest deeper than 32");
      return false;
    }
    open_.push_back(Container{map, 0, {}});
    return true;
  }
  bool Close() {
    Container c = std::move(open_.back());
    open_.pop_back();
    MsgpackWriter w(Next());
    (c.map ? w.Map(c.n) : w.Array(c.n)).Raw(c.body);
    return true;
  }
  static Status Translate(std::size_t column, const Json::exception& e) {
    if (e.id == 406) return Refused("the number is out of range", column);
    const std::string_view said = e.what();
    for (const Words& w : kWords)
      if (said.find(w.library) != std::string_view::npos) return Refused(w.ours, column);
    const std::size_t tag = said.find("] ");  // "[json.exception.parse_error.101] "
    return Status::Error(Code::kInvalid,
                         std::string(tag == said.npos ? said : said.substr(tag + 2)));
  }

  std::string* out_;
  std::vector<Container> open_;
  Status error_;
};

// --- msgpack to JSON text ----------------------------------------------------
//
// taskq's own rules, which nlohmann-json has no way to follow: bin as
// base64, ext and non-finite floats as null, map keys that are not strings
// as text, bytes that are not UTF-8 as \ufffd, and ", " and ": " between
// items (results files are read back in that form: outcome_file.cc).

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

Result<Value> ParseJson(std::string_view text) {
  // Most words that are not JSON (a task's bare-word argument: a URL, a
  // path) are told by their first character, at a tenth of what the
  // library's refusal costs (it builds its message). That check also
  // refuses a byte order mark, which the library would skip.
  const std::size_t first = text.find_first_not_of(" \t\n\r");
  if (first != text.npos && !CanStartValue(text[first])) return Refused(kNotAValue, first + 1);
  std::string packed;
  MsgpackSax sax(&packed);
  try {
    if (!Json::sax_parse(text.begin(), text.end(), &sax))
      return sax.error().ok() ? Refused(kNotAValue, 1) : sax.error();
  } catch (const Json::exception& e) {
    return Status::Error(Code::kInvalid, e.what());
  }
  if (packed.size() > kMaxValueBytes)
    return Refused("the value is larger than 16 MiB", text.size() + 1);
  return Value::FromTrusted(packed);
}

std::string PackedToJson(std::string_view packed) {
  MsgpackReader r(packed);
  std::string out;
  if (!RenderJson(r, &out, kMaxDepth) || !r.at_end()) return "null";
  return out;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  JsonString(s, &out);
  return out;
}

JsonObject& JsonObject::Key(std::string_view key) {
  if (text_.size() > 1) text_ += ", ";
  JsonString(key, &text_);
  text_ += ": ";
  return *this;
}

JsonObject& JsonObject::Str(std::string_view key, std::string_view s) {
  JsonString(s, &Key(key).text_);
  return *this;
}

JsonObject& JsonObject::Packed(std::string_view key, std::string_view packed) {
  return Raw(key, PackedToJson(packed));
}

JsonObject& JsonObject::Bool(std::string_view key, bool b) {
  return Raw(key, b ? "true" : "false");
}
JsonObject& JsonObject::Int(std::string_view key, int64_t n) { return Raw(key, std::to_string(n)); }
JsonObject& JsonObject::Uint(std::string_view key, uint64_t n) {
  return Raw(key, std::to_string(n));
}

JsonObject& JsonObject::Fixed(std::string_view key, double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return Raw(key, buf);
}

JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) {
  Key(key).text_ += json;
  return *this;
}

std::string JsonObject::Close() const { return text_ + "}"; }

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ", ";
    out += item;
  }
  return out + "]";
}

}  // namespace taskq
