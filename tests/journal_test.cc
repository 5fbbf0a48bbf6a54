// The journal: what a master writes down is what a restarted one gets back
// (tests/journal_fixture.h; damaged files: tests/journal_damage_test.cc).
#include "tests/journal_fixture.h"

namespace taskq::journal_testing {
namespace {

TEST_F(JournalTest, ARestartedMasterGetsBackQueuedLeasedAndFinishedWork) {
  Open();
  std::vector<uint64_t> ids = Put(5);
  std::vector<Item> leased = Get("tasks", 2, true);
  ASSERT_EQ(leased.size(), 2u);
  Report(leased[0].id, true);
  const uint64_t epoch = journal_->epoch();

  RecoveryReport r = Open();
  EXPECT_EQ(journal_->epoch(), epoch) << "the task ids keep their meaning";
  EXPECT_EQ(r.ready, 4u);  // 3 never handed out + 1 whose lease the restart ended
  EXPECT_EQ(r.outcomes, 1u);
  EXPECT_EQ(Counts("tasks").ready, 4u);
  std::vector<Item> outcomes = Get("results", 10, false);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].id, leased[0].id);
  EXPECT_EQ(outcomes[0].outcome->value.AsInt(), 7);
  // The lease that ended with the restart still counts as an attempt.
  std::vector<Item> again = Get("tasks", 10, true);
  ASSERT_EQ(again.size(), 4u);
  EXPECT_EQ(again[0].id, leased[1].id);
  EXPECT_EQ(again[0].attempt, 2u);
  // New ids follow the old ones.
  EXPECT_GT(Put(1)[0], ids.back());
}

TEST_F(JournalTest, WhatWasTakenStaysTaken) {
  Open();
  Put(3);
  ASSERT_EQ(Get("tasks", 2, false).size(), 2u);
  Open();
  EXPECT_EQ(Counts("tasks").ready, 1u);
  Report(424242, true);  // unknown: a duplicate, so nothing is recorded...
  Open();
  EXPECT_EQ(Counts("tasks").ready, 1u);
  EXPECT_EQ(Counts("results").ready, 0u);  // ...and no outcome comes back from it
}

TEST_F(JournalTest, CompactionKeepsTheLiveEntriesAndDropsTheRest) {
  Open(/*segment_bytes=*/8192);
  std::vector<uint64_t> keep = Put(3, 200);  // old entries that never leave
  for (int round = 0; round < 60; ++round) {
    Put(20, 200);
    std::vector<Item> got = Get("tasks", 100, true);  // keep[] once, then every new one
    for (const Item& it : got) {
      if (std::find(keep.begin(), keep.end(), it.id) == keep.end()) Report(it.id, true);
    }
    Get("results", 100, false);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(journal_->Compact(64).ok());
  }
  EXPECT_LE(Segments().size(), 4u) << "the files follow the live data, not the history";
  RecoveryReport r = Open(8192);
  EXPECT_EQ(r.ready, 3u);
  EXPECT_EQ(r.outcomes, 0u);
  std::vector<Item> back = Get("tasks", 10, true);
  ASSERT_EQ(back.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(back[i].id, keep[i]);
}

TEST_F(JournalTest, ASegmentFileWithoutItsHeaderNeverLetsCompactionDropLiveEntries) {
  Open();
  Put(3);
  journal_.reset();
  // As a crash (or a full disk) between creating a segment and writing its
  // header could leave one.
  const std::string last = Segments().back();
  const std::string empty = last.substr(0, last.size() - 20) + "0000000000000009.tqj";
  std::ofstream(empty).flush();
  std::ofstream(empty + ".new") << "half";
  RecoveryReport r = Open();
  EXPECT_EQ(r.ready, 3u);
  EXPECT_FALSE(fs::exists(empty + ".new")) << "a segment that never got its name is removed";
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(journal_->Compact().ok());
  r = Open();
  EXPECT_EQ(r.ready, 3u) << "acknowledged tasks survive";
}

TEST_F(JournalTest, IdsAreNeverHandedOutTwiceEvenIfTheLastRecordsAreLost) {
  Open();
  const std::vector<uint64_t> first = Put(3);
  const std::string seg = Segments().back();
  const auto before = fs::file_size(seg);
  const std::vector<uint64_t> second = Put(2);
  journal_.reset();
  // The second put's record never reached the disk (a power cut with
  // --fsync interval): its ids must not be given to other tasks.
  fs::resize_file(seg, before);
  RecoveryReport r = Open();
  EXPECT_EQ(r.ready, 3u);
  const std::vector<uint64_t> third = Put(1);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_GT(third[0], second.back());
}

TEST_F(JournalTest, ADataDirOfTheFormatWithoutMagicIsStillRead) {
  // Format 1: [u32 length][u32 CRC-32C][payload], a header record first.
  auto frame = [](const std::string& payload) {
    const uint32_t len = static_cast<uint32_t>(payload.size());
    const uint32_t crc = Crc32c(payload.data(), payload.size());
    return std::string(reinterpret_cast<const char*>(&len), 4) +
           std::string(reinterpret_cast<const char*>(&crc), 4) + payload;
  };
  std::string header, put, items;
  MsgpackWriter(&header).Array(5).Uint(0).Str("taskq-journal").Uint(1).Uint(12345).Uint(1);
  MsgpackWriter w(&items);
  w.Array(3);
  for (int i = 0; i < 3; ++i) w.Array(2).Str("square").Raw(Value::Int(i).packed());
  MsgpackWriter(&put).Array(5).Uint(1).Uint(1).Str("tasks").Str("results").Raw(items);
  Write(dir_ + "/journal-0000000000000001.tqj", frame(header) + frame(put));

  RecoveryReport r = Open();
  EXPECT_TRUE(r.damage.empty()) << Describe(r.damage.front());
  EXPECT_EQ(Ready(), 3u);
  EXPECT_EQ(journal_->epoch(), 12345u);
  EXPECT_EQ(Read(Segments().back()).substr(0, 4), "\xc1TQ\xd7") << "new segments are framed";
  std::vector<Item> got = Get("tasks", 10, true);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].arg.AsInt(), 2);
}

TEST(JournalFrameTest, AFrameChecksOutOnlyAtTheOffsetItWasWrittenFor) {
  std::string frame;
  AppendFrame(&frame, 0, "payload");
  FrameReader::Piece p = FrameReader(frame, false, 1024).Next();
  EXPECT_EQ(p.kind, FrameReader::Kind::kRecord);
  EXPECT_EQ(p.payload, "payload");
  const std::string moved = "12345" + frame;
  p = FrameReader(moved, false, 1024).Next();
  EXPECT_EQ(p.kind, FrameReader::Kind::kDamaged);
  EXPECT_EQ(p.end, moved.size()) << "no record anywhere in it";
}

TEST_F(JournalTest, OneMasterPerDataDir) {
  Open();
  Broker other(BrokerOptions(), nullptr);
  Result<std::unique_ptr<Journal>> second = Journal::Open(
      JournalOptions{dir_, FsyncMode::kNever, milliseconds(5), 1 << 20, {}}, other, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another task_master is using the data dir"),
            std::string::npos);
}

// --data-dir state, as the README writes it: a bare relative name, and one
// with a trailing slash, are made (0700) in the working directory.
TEST_F(JournalTest, ABareRelativeDataDirIsMade) {
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  for (const std::string name : {"state", "other/"}) {
    Broker broker(BrokerOptions(), nullptr);
    Result<std::unique_ptr<Journal>> j =
        Journal::Open(JournalOptions{name, FsyncMode::kNever, milliseconds(5), 64u << 20, {}}, broker,
                      nullptr);
    EXPECT_TRUE(j.ok()) << name << ": " << j.status().message();
    EXPECT_TRUE(fs::is_directory(fs::path(dir_) / name)) << name;
    EXPECT_EQ(fs::status(fs::path(dir_) / name).permissions() & fs::perms::all, fs::perms::owner_all);
  }
  fs::current_path(cwd);
}

}  // namespace
}  // namespace taskq::journal_testing
