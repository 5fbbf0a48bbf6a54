#include "client/authkey.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"

namespace taskq {
namespace {

// Each test starts with TASKQ_AUTHKEY unset and a directory for key files.
class AuthkeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* env = getenv("TASKQ_AUTHKEY")) saved_ = env;
    unsetenv("TASKQ_AUTHKEY");
    dir_ = testing::MakeTempDir("taskq-authkey");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    if (saved_)
      setenv("TASKQ_AUTHKEY", saved_->c_str(), 1);
    else
      unsetenv("TASKQ_AUTHKEY");
  }
  std::string KeyFile(const std::string& text) {
    const std::string path = dir_ + "/key";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string Key(const std::string& flag, const std::string& file) {
    Result<std::string> k = ResolveAuthkey(flag, file);
    EXPECT_TRUE(k.ok()) << k.status().message();
    return k.ok() ? *k : "";
  }
  std::string Refused(const std::string& flag, const std::string& file) {
    Result<std::string> k = ResolveAuthkey(flag, file);
    EXPECT_FALSE(k.ok()) << "got a key: " << (k.ok() ? *k : "");
    if (k.ok()) return "";
    EXPECT_EQ(k.status().code(), Code::kInvalid);
    return k.status().message();
  }

  std::string dir_;
  std::optional<std::string> saved_;
};

TEST_F(AuthkeyTest, TheFlagWinsThenTheFileThenTheEnvironment) {
  setenv("TASKQ_AUTHKEY", "from-env", 1);
  const std::string file = KeyFile("from-file\n");
  EXPECT_EQ(Key("from-flag", file), "from-flag");
  EXPECT_EQ(Key("", file), "from-file");
  EXPECT_EQ(Key("", ""), "from-env");
}

TEST_F(AuthkeyTest, AKeyFileGivesItsFirstLineWithoutTheLineEnd) {
  EXPECT_EQ(Key("", KeyFile("s3cret\r\nsecond line\n")), "s3cret");
  EXPECT_EQ(Key("", KeyFile("no newline")), "no newline");
  EXPECT_EQ(Key("", KeyFile("  spaces stay  \n")), "  spaces stay  ");
}

TEST_F(AuthkeyTest, AFileThatGivesNoKeyIsAnErrorNotAFallBack) {
  setenv("TASKQ_AUTHKEY", "from-env", 1);
  EXPECT_EQ(Refused("", KeyFile("\nkey on line 2\n")),
            "the authkey file " + dir_ + "/key starts with an empty line");
  EXPECT_EQ(Refused("", dir_ + "/missing"),
            "cannot read the authkey file " + dir_ + "/missing: No such file or directory");
}

TEST_F(AuthkeyTest, NoKeyAtAllNamesTheThreeWaysToGiveOne) {
  const std::string why = Refused("", "");
  EXPECT_NE(why.find("--authkey KEY"), std::string::npos) << why;
  EXPECT_NE(why.find("TASKQ_AUTHKEY"), std::string::npos) << why;
  EXPECT_NE(why.find("--authkey-file FILE"), std::string::npos) << why;
  setenv("TASKQ_AUTHKEY", "", 1);
  EXPECT_EQ(Refused("", ""), why) << "an empty variable gives no key";
}

}  // namespace
}  // namespace taskq
