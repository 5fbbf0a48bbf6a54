#include "proto/json.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "proto/limits.h"
#include "proto/msgpack_writer.h"
#include "proto/utf8.h"

namespace taskq {
namespace {

// Recursive descent straight into msgpack. Containers are written after
// their elements are known (msgpack headers carry counts), so each one is
// built in a buffer of its own and spliced into its parent.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Status Parse(std::string* out) {
    SkipSpace();
    TASKQ_TRY(ParseValue(out, 0));
    SkipSpace();
    if (i_ != s_.size()) return Error("unexpected text after the value");
    if (out->size() > kMaxValueBytes) return Error("the value is larger than 16 MiB");
    return Status::Ok();
  }

 private:
  Status Error(const std::string& what) const {
    return Status::Error(Code::kInvalid, what + " at column " + std::to_string(i_ + 1));
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  Status ParseValue(std::string* out, int depth) {
    if (i_ >= s_.size()) return Error("the text ends where a value should be");
    MsgpackWriter w(out);
    switch (s_[i_]) {
      case '{':
        return ParseObject(out, depth);
      case '[':
        return ParseArray(out, depth);
      case '"': {
        std::string str;
        TASKQ_TRY(ParseString(&str));
        w.Str(str);
        return Status::Ok();
      }
      case 't':
        if (!Word("true")) break;
        w.Bool(true);
        return Status::Ok();
      case 'f':
        if (!Word("false")) break;
        w.Bool(false);
        return Status::Ok();
      case 'n':
        if (!Word("null")) break;
        w.Nil();
        return Status::Ok();
      default:
        if (s_[i_] == '-' || (s_[i_] >= '0' && s_[i_] <= '9')) return ParseNumber(w);
    }
    return Error("expected a value (object, array, string, number, true, false or null)");
  }

  Status ParseArray(std::string* out, int depth) {
    if (depth >= kMaxDepth) return Error("arrays and objects nest deeper than 32");
    ++i_;  // [
    std::string body;
    uint32_t n = 0;
    SkipSpace();
    if (!Eat(']')) {
      for (;;) {
        SkipSpace();
        TASKQ_TRY(ParseValue(&body, depth + 1));
        ++n;
        SkipSpace();
        if (Eat(']')) break;
        if (!Eat(',')) return Error("expected ',' or ']' in an array");
      }
    }
    MsgpackWriter(out).Array(n).Raw(body);
    return Status::Ok();
  }

  Status ParseObject(std::string* out, int depth) {
    if (depth >= kMaxDepth) return Error("arrays and objects nest deeper than 32");
    ++i_;  // {
    std::string body;
    uint32_t n = 0;
    SkipSpace();
    if (!Eat('}')) {
      for (;;) {
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a string key in an object");
        std::string key;
        TASKQ_TRY(ParseString(&key));
        MsgpackWriter(&body).Str(key);
        SkipSpace();
        if (!Eat(':')) return Error("expected ':' after a key");
        SkipSpace();
        TASKQ_TRY(ParseValue(&body, depth + 1));
        ++n;
        SkipSpace();
        if (Eat('}')) break;
        if (!Eat(',')) return Error("expected ',' or '}' in an object");
      }
    }
    MsgpackWriter(out).Map(n).Raw(body);
    return Status::Ok();
  }

  Status ParseNumber(MsgpackWriter& w) {
    const std::size_t start = i_;
    Eat('-');
    if (Eat('0')) {
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    } else {
      return Error("a number needs digits");
    }
    bool integer = true;
    if (Eat('.')) {
      integer = false;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_])))
        return Error("digits must follow '.'");
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integer = false;
      ++i_;
      if (!Eat('+')) Eat('-');
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_])))
        return Error("digits must follow 'e'");
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    const std::string_view text = s_.substr(start, i_ - start);
    if (integer) {
      int64_t v;
      if (auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          ec == std::errc()) {
        w.Int(v);
        return Status::Ok();
      }
      uint64_t u;
      if (auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), u);
          ec == std::errc()) {
        w.Uint(u);
        return Status::Ok();
      }
    }
    // std::from_chars for double is in libstdc++ 11+, but strtod is enough.
    const std::string copy(text);
    errno = 0;
    const double d = std::strtod(copy.c_str(), nullptr);
    if (!std::isfinite(d)) return Error("the number is out of range");
    w.Double(d);
    return Status::Ok();
  }

  // Reads 4 hex digits of a \u escape.
  Status Hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return Error("\\u needs 4 hex digits");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        return Error("\\u needs 4 hex digits");
    }
    *cp = v;
    return Status::Ok();
  }

  static void Utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  Status Escape(std::string* out) {
    if (i_ >= s_.size()) return Error("the text ends inside a string");
    const char c = s_[i_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out->push_back(c);
        return Status::Ok();
      case 'b':
        out->push_back('\b');
        return Status::Ok();
      case 'f':
        out->push_back('\f');
        return Status::Ok();
      case 'n':
        out->push_back('\n');
        return Status::Ok();
      case 'r':
        out->push_back('\r');
        return Status::Ok();
      case 't':
        out->push_back('\t');
        return Status::Ok();
      case 'u': {
        uint32_t cp = 0;
        TASKQ_TRY(Hex4(&cp));
        if (cp >= 0xd800 && cp <= 0xdbff) {  // a high surrogate: its low half must follow
          uint32_t lo = 0;
          if (!Word("\\u")) return Error("a lone surrogate in a \\u escape");
          TASKQ_TRY(Hex4(&lo));
          if (lo < 0xdc00 || lo > 0xdfff) return Error("a lone surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          return Error("a lone surrogate in a \\u escape");
        }
        Utf8(cp, out);
        return Status::Ok();
      }
      default:
        return Error("an unknown escape in a string");
    }
  }

  Status ParseString(std::string* out) {
    ++i_;  // "
    for (;;) {
      if (i_ >= s_.size()) return Error("the text ends inside a string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return Status::Ok();
      }
      if (c == '\\') {
        ++i_;
        TASKQ_TRY(Escape(out));
        continue;
      }
      if (c < 0x20) return Error("a control character inside a string");
      const std::size_t n = Utf8SequenceLength(s_, i_);
      if (n == 0) return Error("a string that is not UTF-8");
      out->append(s_.substr(i_, n));
      i_ += n;
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

Result<Value> ParseJson(std::string_view text) {
  std::string packed;
  Status s = Parser(text).Parse(&packed);
  if (!s.ok()) return s;
  return Value::FromTrusted(packed);
}

}  // namespace taskq
