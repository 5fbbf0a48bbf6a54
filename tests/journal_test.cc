// The journal: what a master writes down is what a restarted one gets back.
#include "master/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "client/client.h"
#include "proto/value.h"
#include "tests/temp_dir.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class NullTransport : public Transport {
 public:
  SendResult Send(std::string_view peer, std::string_view bytes) override {
    sent.emplace_back(std::string(peer), std::string(bytes));
    return SendResult::kSent;
  }
  std::deque<std::pair<std::string, std::string>> sent;
};

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("taskq-journal-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    journal_.reset();
    broker_.reset();
    fs::remove_all(dir_);
  }

  // A master's state with its journal, as after a (re)start.
  RecoveryReport Open(uint64_t segment_bytes = 64u << 20) {
    journal_.reset();
    broker_ = std::make_unique<Broker>(BrokerOptions(), nullptr);
    RecoveryReport report;
    Result<std::unique_ptr<Journal>> j = Journal::Open(
        JournalOptions{dir_, FsyncMode::kNever, milliseconds(5), segment_bytes}, *broker_, &report);
    EXPECT_TRUE(j.ok()) << j.status().message();
    if (j.ok()) {
      journal_ = std::move(*j);
      broker_->AttachLog(journal_.get(), journal_->epoch());
    }
    Send("C", Hello());
    return report;
  }

  void Send(const std::string& peer, const Message& m) {
    broker_->Handle(peer, Encode(m), now_);
    broker_->Flush(transport_, now_);
    ASSERT_TRUE(journal_->Commit().ok());
  }
  std::vector<uint64_t> Put(int n, int arg_bytes = 1) {
    taskq::Put p;
    p.rid = 1;
    p.queue = "tasks";
    std::vector<std::string> args;
    for (int i = 0; i < n; ++i)
      args.push_back(Value::Str(std::string(arg_bytes, 'a' + i % 26)).packed());
    for (const std::string& a : args) p.items.push_back(NewTask{"square", a, 0});
    Send("C", p);
    std::vector<uint64_t> ids;
    for (auto& [peer, bytes] : transport_.sent) {
      Result<Message> m = Decode(bytes);
      if (m.ok() && std::holds_alternative<PutOk>(*m))
        for (uint64_t i = 0; i < std::get<PutOk>(*m).count; ++i)
          ids.push_back(std::get<PutOk>(*m).first_id + i);
    }
    transport_.sent.clear();
    return ids;
  }
  std::vector<Item> Get(std::string_view queue, uint32_t max, bool lease) {
    taskq::Get g;
    g.rid = 2;
    g.queue = queue;
    g.max = max;
    g.lease = lease;
    Send("C", g);
    std::vector<Item> out;
    for (auto& [peer, bytes] : transport_.sent) {
      Result<Message> m = Decode(bytes);
      if (m.ok() && std::holds_alternative<Items>(*m))
        for (const Entry& e : std::get<Items>(*m).items) out.push_back(Item::FromEntry(e));
    }
    transport_.sent.clear();
    return out;
  }
  void Report(uint64_t id, bool ok) {
    const std::string v = Value::Int(7).packed();
    Send("C", ResultMsg{3,
                        {TaskResult{id, ok, ok ? std::string_view(v) : std::string_view(),
                                    ok ? "" : "no", 1, true}}});
    transport_.sent.clear();
  }
  QueueSet::Counts Counts(std::string_view queue) {
    const int64_t q = broker_->queues().FindQueue(queue);
    return q < 0 ? QueueSet::Counts{} : broker_->queues().CountsOf(static_cast<uint32_t>(q));
  }
  std::vector<std::string> Segments() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".tqj") out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
  TimePoint now_ = TimePoint() + std::chrono::hours(1);
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Journal> journal_;
  NullTransport transport_;
};

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

TEST_F(JournalTest, ATornTailIsCutOffAndReportedOnce) {
  Open();
  Put(3);
  journal_.reset();
  {
    std::ofstream f(Segments().back(), std::ios::binary | std::ios::app);
    f.write("\x40\x00\x00\x00\x12\x34\x56\x78partial", 15);  // a record the crash interrupted
  }
  RecoveryReport r = Open();
  EXPECT_EQ(r.torn_bytes, 15u);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(Counts("tasks").ready, 3u);
  r = Open();
  EXPECT_EQ(r.torn_bytes, 0u);
  EXPECT_EQ(Counts("tasks").ready, 3u);
}

TEST_F(JournalTest, ADamagedRecordInAnOlderSegmentIsReported) {
  Open();
  Put(3);
  Open();  // a new segment; the first is now older
  Put(2);
  journal_.reset();
  const std::string first = Segments().front();
  std::string data;
  {
    std::ifstream in(first, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  data[data.size() - 3] ^= 0x55;  // inside the put record
  {
    std::ofstream out(first, std::ios::binary | std::ios::trunc);
    out << data;
  }
  RecoveryReport r = Open();
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].find("damaged"), std::string::npos) << r.problems[0];
  EXPECT_EQ(Counts("tasks").ready, 2u);  // the later segment's put is whole
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

TEST_F(JournalTest, OneMasterPerDataDir) {
  Open();
  Broker other(BrokerOptions(), nullptr);
  Result<std::unique_ptr<Journal>> second = Journal::Open(
      JournalOptions{dir_, FsyncMode::kNever, milliseconds(5), 1 << 20}, other, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another task_master is using the data dir"),
            std::string::npos);
}

}  // namespace
}  // namespace taskq
