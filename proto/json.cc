#include "proto/json.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "proto/limits.h"
#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

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

}  // namespace taskq
