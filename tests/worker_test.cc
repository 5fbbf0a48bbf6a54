// The worker's pieces on their own: file names for downloads, commands.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "worker/exec_handler.h"
#include "tests/temp_dir.h"
#include "worker/file_names.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

TEST(SafeFileName, KeepsTheLastSegmentAndNothingDangerous) {
  EXPECT_EQ(SafeFileName("http://h/a/b/photo.jpg"), "photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/photo.jpg?size=large#top"), "photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/my%20photo.jpg"), "my photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/../../etc/passwd"), "passwd");
  EXPECT_EQ(SafeFileName("http://h/..%2F..%2Fetc%2Fpasswd"), "passwd");
  EXPECT_EQ(SafeFileName("http://h/%2e%2e"), "download");
  EXPECT_EQ(SafeFileName("http://h/.."), "download");
  EXPECT_EQ(SafeFileName("http://h/"), "download");
  EXPECT_EQ(SafeFileName("http://h"), "download");
  EXPECT_EQ(SafeFileName("http://h/.hidden"), "hidden");
  EXPECT_EQ(SafeFileName("http://h/a%5Cb"), "b");
  EXPECT_EQ(SafeFileName("http://h/bell%07%0a.txt"), "bell__.txt");
  EXPECT_EQ(SafeFileName("http://h/trailing.. "), "trailing");
  const std::string longname = SafeFileName("http://h/" + std::string(300, 'x') + ".png");
  EXPECT_EQ(longname.size(), 200u);
  EXPECT_EQ(longname.substr(196), ".png");
}

TEST(RenameUnique, NeverOverwrites) {
  const std::string dir = testing::MakeTempDir("taskq-names");
  ASSERT_FALSE(dir.empty());
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    const std::string temp = dir + "/.t" + std::to_string(i);
    std::ofstream(temp) << i;
    Result<std::string> p = RenameUnique(temp, dir, "a.txt");
    ASSERT_TRUE(p.ok()) << p.status().message();
    got.push_back(fs::path(*p).filename().string());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"a.txt", "a (1).txt", "a (2).txt"}));
  std::ifstream first(dir + "/a.txt");
  std::string content;
  first >> content;
  EXPECT_EQ(content, "0");
  fs::remove_all(dir);
}

class ExecTest : public ::testing::Test {
 protected:
  RunOutcome Run(std::vector<std::string> argv, Value arg, std::chrono::milliseconds timeout = {},
                 std::size_t max_output = 1 << 20) {
    ExecHandler h(ExecOptions{std::move(argv), timeout, max_output});
    Item task;
    task.kind = "exec";
    task.arg = std::move(arg);
    return h.Run(task, CancelToken(&cancelled_));
  }
  std::atomic<bool> cancelled_{false};
};

TEST_F(ExecTest, OutputIsTheValueAndTheArgumentIsPassedLiterally) {
  RunOutcome o = Run({"echo", "[{}]"}, Value::Str("a b; $(x) `y` && z"));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.AsStr(), "[a b; $(x) `y` && z]");
  o = Run({"cat"}, Value::Str("from stdin"));
  EXPECT_EQ(o.value.AsStr(), "from stdin");
  o = Run({"cat"}, Value::Int(42));  // not a string: JSON
  EXPECT_EQ(o.value.AsStr(), "42");
}

TEST_F(ExecTest, FailuresSayWhy) {
  RunOutcome o = Run({"sh", "-c", "echo bad input >&2; exit 4"}, Value::Str(""));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, "the command exited with code 4: bad input");
  o = Run({"sleep", "10"}, Value::Str(""), std::chrono::milliseconds(200));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.error.find("time limit"), std::string::npos) << o.error;
  o = Run({"head", "-c", "3000", "/dev/zero"}, Value::Str(""), {}, 1000);
  EXPECT_FALSE(o.ok);
  EXPECT_FALSE(o.retry);
  EXPECT_NE(o.error.find("more than 1000 bytes"), std::string::npos) << o.error;
  o = Run({"/no/such/command"}, Value::Str(""));
  EXPECT_FALSE(o.ok);
  EXPECT_FALSE(o.retry);
  EXPECT_NE(o.error.find("cannot run /no/such/command"), std::string::npos) << o.error;
}

TEST_F(ExecTest, WhatACommandLeavesRunningDoesNotHoldTheTask) {
  const auto start = std::chrono::steady_clock::now();
  RunOutcome o = Run({"sh", "-c", "sleep 30 & echo started"}, Value::Str(""));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.AsStr(), "started");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ExecTest, BinaryOutputStaysBinary) {
  RunOutcome o = Run({"printf", "\\377\\376"}, Value::Str(""));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.type(), MsgType::kBin);
}

TEST(FindCommand, LooksOnThePath) {
  EXPECT_FALSE(FindCommand("sh").empty());
  EXPECT_TRUE(FindCommand("no-such-command-anywhere").empty());
  EXPECT_EQ(FindCommand("/bin/sh"), "/bin/sh");
}

}  // namespace
}  // namespace taskq
