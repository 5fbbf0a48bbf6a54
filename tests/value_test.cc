#include "proto/value.h"

#include <gtest/gtest.h>

#include <cmath>

#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

TEST(Value, ConvertsAndRenders) {
  EXPECT_EQ(Value::Int(-42).AsInt(), -42);
  EXPECT_EQ(Value::Str("hi").AsStr(), "hi");
  EXPECT_FALSE(Value::Str("hi").AsInt());
  EXPECT_EQ(Value::Double(1.5).AsDouble(), 1.5);
  EXPECT_EQ(Value::Int(3).AsDouble(), 3.0);
  EXPECT_TRUE(Value().IsNil());
  EXPECT_EQ(Value::Int(9541).ToText(), "9541");
  EXPECT_EQ(Value::Str("plain text").ToText(), "plain text");
  EXPECT_EQ(Value::Bool(true).ToText(), "true");
}

TEST(Value, RendersJson) {
  std::string b;
  MsgpackWriter(&b).Map(3).Key("a").Array(2).Int(1).Str("x\"y\n").Key("b").Nil().Key("c").Bin(
      "\x01\x02\x03");
  EXPECT_EQ(PackedToJson(b), R"({"a": [1, "x\"y\n"], "b": null, "c": "AQID"})");
  EXPECT_EQ(PackedToJson(Value::Double(NAN).packed()), "null");
  EXPECT_EQ(PackedToJson(Value::Str("\xff").packed()), "\"\\ufffd\"");
  EXPECT_EQ(PackedToJson("\x01\x02"), "null");  // not one value
}

TEST(Value, MapKeysThatAreContainersAreNamedNotRendered) {
  // {{{...}: 1}: 1} thirty levels deep: rendered as escaped text, each level
  // would double the output (found by the fuzzer).
  std::string nested;
  for (int i = 0; i < 30; ++i) nested += "\x81";
  nested += "\x01";
  for (int i = 0; i < 30; ++i) nested += "\x01";
  const std::string json = PackedToJson(nested);
  EXPECT_EQ(json, R"({"<map>": 1})");
  std::string b;
  MsgpackWriter(&b).Map(2).Int(7).Str("seven").Array(1).Nil().Str("list");
  EXPECT_EQ(PackedToJson(b), R"({"7": "seven", "<array>": "list"})");
}

TEST(Value, FromPackedChecksTheBytes) {
  EXPECT_TRUE(Value::FromPacked("\x01").ok());
  EXPECT_FALSE(Value::FromPacked("").ok());
  EXPECT_FALSE(Value::FromPacked("\x01\x01").ok());
  EXPECT_FALSE(Value::FromPacked("\x92\x01").ok());
}

}  // namespace
}  // namespace taskq
