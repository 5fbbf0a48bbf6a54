#include "master/task_source.h"

#include <gtest/gtest.h>

namespace taskq {
namespace {

TaskSpec Parsed(std::string_view line) {
  TaskSpec t;
  std::string error;
  EXPECT_TRUE(ParseTaskLine(line, &t, &error)) << line << ": " << error;
  return t;
}

std::string Error(std::string_view line) {
  TaskSpec t;
  std::string error;
  EXPECT_FALSE(ParseTaskLine(line, &t, &error)) << line;
  return error;
}

TEST(TaskLine, ReadsBothForms) {
  TaskSpec t = Parsed(R"({"kind": "square", "arg": 12, "timeout": 2.5})");
  EXPECT_EQ(t.kind, "square");
  EXPECT_EQ(t.arg.AsInt(), 12);
  EXPECT_EQ(t.timeout.count(), 2500);
  t = Parsed("square 12");
  EXPECT_EQ(t.arg.AsInt(), 12);
  t = Parsed("download http://example.com/a.jpg");
  EXPECT_EQ(t.arg.AsStr(), "http://example.com/a.jpg");
  t = Parsed("  exec  hello world \r");
  EXPECT_EQ(t.kind, "exec");
  EXPECT_EQ(t.arg.AsStr(), "hello world");
  t = Parsed(R"(exec ["a", "b"])");
  EXPECT_EQ(t.arg.type(), MsgType::kArray);
  t = Parsed("ping");
  EXPECT_TRUE(t.arg.IsNil());
}

TEST(TaskLine, SkipsBlanksAndCommentsAndExplainsTheRest) {
  EXPECT_EQ(Error(""), "");
  EXPECT_EQ(Error("   # note"), "");
  EXPECT_EQ(Error(R"({"arg": 1})"), "a JSON task needs \"kind\"");
  EXPECT_EQ(Error(R"({"kind": 7})"), "\"kind\" must be a non-empty string");
  EXPECT_NE(Error(R"({"kind": "x", )").find("column"), std::string::npos);
  EXPECT_EQ(Error(R"({"kind": "x", "timeout": "soon"})"),
            "\"timeout\" must be a number of seconds");
  EXPECT_EQ(Error("square"), "a square task needs an argument (e.g. square 12)");
  EXPECT_EQ(Error(R"({"kind": "download"})"),
            "a download task needs an argument (e.g. download https://example.com/a.jpg)");
}

}  // namespace
}  // namespace taskq
