#include "master/outcome_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"

namespace taskq {
namespace {

Item Outcome(uint64_t id, bool ok, Value arg = Value::Int(7)) {
  Item item;
  item.id = id;
  item.kind = "square";
  item.arg = std::move(arg);
  item.outcome = TaskOutcome{};
  item.outcome->ok = ok;
  if (ok) item.outcome->value = Value::Int(49);
  if (!ok) item.outcome->error = "no, \"ok\": false";
  return item;
}

class OutcomeFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("taskq-outcomes"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/out.jsonl"; }
  std::string dir_;
};

TEST_F(OutcomeFileTest, AResumedFileKnowsItsOutcomesAndCutsATornLastLine) {
  {
    OutcomeFile f;
    ASSERT_TRUE(f.Open(path(), false).ok());
    // An argument deeper than a task's own limit once wrapped in the line,
    // and a map argument that mimics the line's own keys.
    std::string deep(40, '\x91');
    deep += '\x01';
    f.Add(Outcome(1, true, Value::FromTrusted(deep)));
    f.Add(Outcome(2, false));
    f.Add(Outcome(3, true, Value::Str("\", \"ok\": false, \"x")));
    f.Add(Outcome(2, false));  // a duplicate line counts once
    ASSERT_TRUE(f.Sync(false).ok());
  }
  std::ofstream(path(), std::ios::app) << "{\"id\": 9, \"kind\": \"squ";  // a crash mid-line
  OutcomeFile f;
  ASSERT_TRUE(f.Open(path(), true).ok());
  EXPECT_EQ(f.count(), 3u);
  EXPECT_EQ(f.failed(), 1u);
  EXPECT_TRUE(f.Has(1));
  EXPECT_TRUE(f.Has(2));
  EXPECT_TRUE(f.Has(3));
  EXPECT_FALSE(f.Has(9));
  EXPECT_EQ(f.cut_bytes(), 22u);
  EXPECT_EQ(f.unreadable(), 0u);
  f.Add(Outcome(9, true));
  ASSERT_TRUE(f.Sync(true).ok());
  OutcomeFile again;
  ASSERT_TRUE(again.Open(path(), true).ok());
  EXPECT_EQ(again.count(), 4u);
  EXPECT_EQ(again.cut_bytes(), 0u);
}

TEST_F(OutcomeFileTest, AFreshFileStartsEmpty) {
  std::ofstream(path()) << "{\"id\": 1, \"kind\": \"square\", \"arg\": 1, \"ok\": true}\n";
  OutcomeFile f;
  ASSERT_TRUE(f.Open(path(), false).ok());
  EXPECT_EQ(f.count(), 0u);
  EXPECT_EQ(std::filesystem::file_size(path()), 0u);
}

}  // namespace
}  // namespace taskq
