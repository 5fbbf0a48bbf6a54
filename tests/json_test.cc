#include "proto/json.h"

#include <gtest/gtest.h>

#include "proto/limits.h"

namespace taskq {
namespace {

std::string RoundTrip(std::string_view json) {
  Result<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << json << ": " << v.status().message();
  return v.ok() ? PackedToJson(v->packed()) : "";
}

TEST(Json, ParsesEveryKindOfValue) {
  EXPECT_EQ(RoundTrip(R"( {"a": [1, -2, 3.5, true, false, null], "b": {"c": "d"}} )"),
            R"({"a": [1, -2, 3.5, true, false, null], "b": {"c": "d"}})");
  EXPECT_EQ(ParseJson("42")->AsInt(), 42);
  EXPECT_EQ(ParseJson("-9223372036854775808")->AsInt(), INT64_MIN);
  EXPECT_EQ(ParseJson("18446744073709551615")->type(), MsgType::kUint);
  EXPECT_EQ(ParseJson("1e3")->AsDouble(), 1000.0);
  EXPECT_EQ(ParseJson("\"http://example.com/a b\"")->AsStr(), "http://example.com/a b");
}

TEST(Json, DecodesEscapesAndUtf8) {
  EXPECT_EQ(ParseJson(R"("a\"b\\c\/d\n\t\u00e9\ud83d\ude00")")->AsStr(),
            "a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(ParseJson("\"\xc3\xa9\"")->AsStr(), "\xc3\xa9");
}

void ExpectError(std::string_view json, const std::string& why) {
  Result<Value> v = ParseJson(json);
  ASSERT_FALSE(v.ok()) << json;
  EXPECT_NE(v.status().message().find(why), std::string::npos) << v.status().message();
}

TEST(Json, RefusesWhatIsNotJsonAndSaysWhere) {
  ExpectError("", "the text ends where a value should be");
  ExpectError("{\"a\" 1}", "expected ':' after a key at column 6");
  ExpectError("[1, 2", "expected ',' or ']'");
  ExpectError("[1] x", "unexpected text after the value");
  ExpectError("01", "unexpected text");
  ExpectError("1.", "digits must follow '.'");
  ExpectError("'single'", "expected a value");
  ExpectError("\"\\ud800\"", "lone surrogate");
  ExpectError("\"\xff\"", "not UTF-8");
  ExpectError("\"a\nb\"", "control character");
  ExpectError("1e999", "out of range");
  ExpectError(std::string(40, '[') + std::string(40, ']'), "nest deeper than 32");
  ExpectError("{1: 2}", "expected a string key");
}

TEST(Json, KeepsKeyOrderRepeatedKeysAndTheLimits) {
  EXPECT_EQ(RoundTrip(R"({"b": 1, "a": 2, "b": 3})"), R"({"b": 1, "a": 2, "b": 3})");
  EXPECT_EQ(ParseJson("9223372036854775807")->AsInt(), INT64_MAX);
  EXPECT_EQ(ParseJson("18446744073709551616")->type(), MsgType::kFloat);
  EXPECT_EQ(ParseJson("-0")->AsInt(), 0);
  EXPECT_TRUE(ParseJson(std::string(32, '[') + std::string(32, ']')).ok()) << "32 levels";
  ExpectError(
      "\xEF\xBB\xBF"
      "1",
      "expected a value");
  ExpectError("  http://example.com/",
              "expected a value (object, array, string, number, true, "
              "false or null) at column 3");
  const std::string big = "\"" + std::string(kMaxValueBytes, 'x') + "\"";
  ExpectError(big, "the value is larger than 16 MiB");
}

}  // namespace
}  // namespace taskq
