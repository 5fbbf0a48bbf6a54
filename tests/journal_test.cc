// The journal: what a master writes down is what a restarted one gets back.
#include "master/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "client/client.h"
#include "master/crc32c.h"
#include "master/journal_frame.h"
#include "proto/msgpack_writer.h"
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
  uint64_t Ready() { return Counts("tasks").ready; }
  std::vector<std::string> Segments(const std::string& prefix = "journal-") {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".tqj" && e.path().filename().string().rfind(prefix, 0) == 0)
        out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  // n puts of tasks tasks each (100-byte arguments); the ids of each put.
  std::vector<std::vector<uint64_t>> Puts(int n, int tasks) {
    std::vector<std::vector<uint64_t>> out;
    for (int i = 0; i < n; ++i) out.push_back(Put(tasks, 100));
    return out;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void Write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }
  static void Flip(const std::string& path, std::size_t at) {
    std::string data = Read(path);
    data[at] ^= 0x55;
    Write(path, data);
  }
  // Where each record of an intact segment starts (its magic: the tests'
  // arguments are letters, never 0xc1), and the file's size last.
  static std::vector<std::size_t> Records(const std::string& path) {
    const std::string data = Read(path), magic = "\xc1TQ\xd7";
    std::vector<std::size_t> out;
    for (std::size_t at = data.find(magic); at != std::string::npos; at = data.find(magic, at + 1))
      out.push_back(at);
    out.push_back(data.size());
    return out;
  }
  // The record that holds byte at.
  static std::size_t RecordAt(const std::vector<std::size_t>& records, std::size_t at) {
    return static_cast<std::size_t>(std::upper_bound(records.begin(), records.end(), at) -
                                    records.begin()) -
           1;
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

// --- Damage. Each test puts 20 x 50 tasks (a record per put) and checks the
// exact number that come back, and what the report names.

constexpr int kPuts = 20, kTasks = 50;

TEST_F(JournalTest, ATornTailIsCutOffAndReportedOnce) {
  Open();
  Puts(kPuts, kTasks);
  journal_.reset();
  const std::string seg = Segments().back(), whole = Read(seg);
  const std::vector<std::size_t> records = Records(seg);
  const std::size_t last = records[records.size() - 2];  // the last put's record
  // A crash in the middle of the last write: part of the header, or all of
  // it and some of the payload, reached the file.
  for (std::size_t cut : {3, 11, 16, 700}) {
    SCOPED_TRACE("cut after " + std::to_string(cut) + " bytes of the record");
    journal_.reset();
    for (const std::string& s : Segments()) fs::remove(s);
    Write(seg, whole.substr(0, last + cut));
    RecoveryReport r = Open();
    EXPECT_EQ(r.torn_bytes, cut);
    EXPECT_EQ(r.torn_file, seg);
    EXPECT_TRUE(r.damage.empty()) << Describe(r.damage.front());
    EXPECT_EQ(Ready(), uint64_t{(kPuts - 1) * kTasks}) << "the last put was never acknowledged";
    EXPECT_EQ(fs::file_size(seg), last);
    r = Open();  // seg is an older segment now: nothing more to report
    EXPECT_EQ(r.torn_bytes, 0u);
    EXPECT_TRUE(r.damage.empty()) << Describe(r.damage.front());
    EXPECT_EQ(Ready(), uint64_t{(kPuts - 1) * kTasks});
  }
}

// Params: older (the damaged segment is not the newest: a restart followed,
// and one more put went to the newest), and where in the file, as a
// fraction of its size, the byte flips (the last one hits the last record).
class JournalFlipTest : public JournalTest,
                        public ::testing::WithParamInterface<std::tuple<bool, double>> {};

TEST_P(JournalFlipTest, AFlippedByteLosesExactlyItsRecord) {
  const auto [older, at] = GetParam();
  Open();
  std::vector<std::vector<uint64_t>> ids = Puts(kPuts, kTasks);
  if (older) {
    Open();
    ids.push_back(Put(kTasks, 100));
  }
  journal_.reset();
  const std::string seg = Segments().front();
  const std::size_t size = fs::file_size(seg), byte = static_cast<std::size_t>(at * size);
  const std::vector<std::size_t> records = Records(seg);
  const std::size_t hit = RecordAt(records, byte);
  ASSERT_GE(hit, 2u) << "the header and the id reservation come first, then a record per put";
  const std::vector<uint64_t>& lost = ids[hit - 2];
  Flip(seg, byte);

  RecoveryReport r = Open();
  EXPECT_EQ(Ready(), ids.size() * kTasks - kTasks);
  EXPECT_EQ(r.torn_bytes, 0u) << "damage is not a torn tail";
  ASSERT_EQ(r.damage.size(), 1u);
  const JournalDamage& d = r.damage[0];
  EXPECT_EQ(d.file, seg);
  EXPECT_EQ(d.begin, records[hit]);
  EXPECT_EQ(d.end, records[hit + 1]);
  EXPECT_EQ(d.first_id, lost.front());
  EXPECT_EQ(fs::file_size(seg), size) << "a damaged file is kept whole";
  if (hit + 2 < records.size() || older) {  // a record (or the next segment) follows
    EXPECT_TRUE(d.exact);
    EXPECT_EQ(d.end_id, lost.back() + 1);
    EXPECT_EQ(d.lost, uint64_t{kTasks});
    EXPECT_EQ(r.lost, uint64_t{kTasks});
    EXPECT_NE(Describe(d).find("50 task(s) made there are lost: ids " +
                               std::to_string(lost.front()) + ".." + std::to_string(lost.back())),
              std::string::npos)
        << Describe(d);
  } else {  // the newest segment's last record: nothing after it says where its ids end
    EXPECT_EQ(d.end_id, 0u);
    EXPECT_NE(Describe(d).find("its id is " + std::to_string(lost.front()) + " or above"),
              std::string::npos)
        << Describe(d);
  }
  EXPECT_GT(Put(1)[0], lost.back()) << "an id the damaged record used is not used again";
  r = Open();
  EXPECT_EQ(r.damage.size(), 1u) << "reported at every start while the file holds it";
  EXPECT_EQ(Ready(), ids.size() * kTasks - kTasks + 1);
}

INSTANTIATE_TEST_SUITE_P(Journal, JournalFlipTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(0.1, 0.5, 0.9, 0.9999)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Older" : "Newest") + "At" +
                                  std::to_string(static_cast<int>(std::get<1>(info.param) * 1e4));
                         });

TEST_F(JournalTest, AZeroedBlockLosesTheRecordsItTouchesOnly) {
  Open();
  std::vector<std::vector<uint64_t>> ids = Puts(kPuts, kTasks);
  journal_.reset();
  const std::string seg = Segments().front();
  const std::vector<std::size_t> records = Records(seg);
  // A 4 KiB block, aligned as a disk's is, in the middle of the file.
  const std::size_t from = fs::file_size(seg) / 2 / 4096 * 4096, to = from + 4096;
  const std::size_t first = RecordAt(records, from), last = RecordAt(records, to - 1);
  std::string data = Read(seg);
  std::fill(data.begin() + from, data.begin() + to, '\0');
  Write(seg, data);

  RecoveryReport r = Open();
  const uint64_t touched = last - first + 1;  // a put record is ~5.5 KB: one or two
  EXPECT_EQ(Ready(), (kPuts - touched) * kTasks);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].begin, records[first]);
  EXPECT_EQ(r.damage[0].end, records[last + 1]);
  EXPECT_TRUE(r.damage[0].exact);
  EXPECT_EQ(r.damage[0].first_id, ids[first - 2].front());
  EXPECT_EQ(r.damage[0].end_id, ids[last - 2].back() + 1);
  EXPECT_EQ(r.lost, touched * kTasks);
}

TEST_F(JournalTest, AnOlderFileCutShortLosesItsTailOnlyAndSaysWhich) {
  Open();
  std::vector<std::vector<uint64_t>> ids = Puts(kPuts, kTasks);
  Open();
  ids.push_back(Put(kTasks, 100));
  journal_.reset();
  const std::string seg = Segments().front();
  const std::vector<std::size_t> records = Records(seg);
  // Cut in the middle of the 15th put: it and the 5 after it are gone.
  fs::resize_file(seg, records[2 + 14] + 100);

  RecoveryReport r = Open();
  EXPECT_EQ(Ready(), uint64_t{(14 + 1) * kTasks});
  EXPECT_EQ(r.torn_bytes, 0u) << "only the newest file can have a torn tail";
  ASSERT_EQ(r.damage.size(), 1u);
  const JournalDamage& d = r.damage[0];
  EXPECT_EQ(d.begin, records[2 + 14]);
  EXPECT_EQ(d.end, records[2 + 14] + 100);
  EXPECT_TRUE(d.exact) << "the next segment says which ids came before it";
  EXPECT_EQ(d.first_id, ids[14].front());
  EXPECT_EQ(d.end_id, ids[19].back() + 1);
  EXPECT_EQ(r.lost, uint64_t{6 * kTasks}) << Describe(d);
}

TEST_F(JournalTest, AnOlderFileCutAtARecordBoundaryIsNotSilent) {
  Open();
  std::vector<std::vector<uint64_t>> ids = Puts(kPuts, kTasks);
  Open();
  Put(kTasks, 100);
  journal_.reset();
  const std::string seg = Segments().front();
  fs::resize_file(seg, Records(seg)[2 + 18]);  // the last two puts are gone, no byte damaged

  RecoveryReport r = Open();
  EXPECT_EQ(Ready(), uint64_t{(18 + 1) * kTasks});
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].kind, JournalDamage::Kind::kMissing);
  EXPECT_EQ(r.damage[0].first_id, ids[18].front());
  EXPECT_EQ(r.damage[0].end_id, ids[19].back() + 1);
  EXPECT_EQ(r.lost, uint64_t{2 * kTasks});
  EXPECT_NE(Describe(r.damage[0]).find("are missing"), std::string::npos) << Describe(r.damage[0]);
}

TEST_F(JournalTest, AMissingSegmentIsNotSilent) {
  Open();
  Puts(2, kTasks);
  Open();
  Put(kTasks, 100);
  Open();
  Put(kTasks, 100);
  journal_.reset();
  fs::remove(Segments()[1]);

  RecoveryReport r = Open();
  EXPECT_EQ(Ready(), uint64_t{3 * kTasks});
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].kind, JournalDamage::Kind::kMissing);
  EXPECT_EQ(r.damage[0].file, Segments()[0]);
  EXPECT_FALSE(r.damage[0].exact) << "the missing segment's start skipped ids no record names";
}

TEST_F(JournalTest, ASegmentStartedWhileAPutIsRecordedIsNotTakenForMissingRecords) {
  Open(/*segment_bytes=*/1);  // every commit starts a new segment, even the id reservation's
  Puts(3, kTasks);
  Open(1);
  Put(kTasks, 100);
  RecoveryReport r = Open(1);
  EXPECT_TRUE(r.damage.empty()) << Describe(r.damage.front());
  EXPECT_EQ(Ready(), uint64_t{4 * kTasks});
}

TEST_F(JournalTest, ADamagedSegmentHeaderLosesNoTask) {
  Open();
  Puts(kPuts, kTasks);
  Open();
  Put(kTasks, 100);
  const uint64_t epoch = journal_->epoch();
  journal_.reset();
  Flip(Segments().front(), 20);  // inside the header record

  RecoveryReport r = Open();
  EXPECT_EQ(Ready(), uint64_t{(kPuts + 1) * kTasks});
  EXPECT_EQ(journal_->epoch(), epoch) << "every segment's header names the epoch";
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].begin, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_NE(Describe(r.damage[0]).find("no task was made there"), std::string::npos)
      << Describe(r.damage[0]);
}

TEST_F(JournalTest, JournalBytesInATaskArgumentAreNeverTakenForRecords) {
  Open();
  // A task whose argument holds a whole framed put record, as a backup of
  // a data dir put as a task would: 7 tasks with ids from 900000.
  std::string items, payload, frame;
  MsgpackWriter w(&items);
  w.Array(7);
  for (int i = 0; i < 7; ++i) w.Array(2).Str("square").Raw(Value::Int(i).packed());
  MsgpackWriter(&payload).Array(5).Uint(1).Uint(900000).Str("tasks").Str("results").Raw(items);
  AppendFrame(&frame, 0, payload);
  taskq::Put p;
  p.rid = 1;
  p.queue = "tasks";
  const std::string arg = Value::Bin(frame).packed();
  p.items.push_back(NewTask{"square", arg, 0});
  Send("C", p);
  transport_.sent.clear();
  Puts(2, kTasks);
  journal_.reset();
  const std::string seg = Segments().front();
  Flip(seg, Records(seg)[2] + 1);  // the magic of the record holding the copy

  RecoveryReport r = Open();
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(Ready(), uint64_t{2 * kTasks}) << "the copy inside the damaged record is not replayed";
  EXPECT_EQ(r.lost, 1u);
}

TEST_F(JournalTest, CompactionSetsADamagedSegmentAsideInsteadOfDeletingIt) {
  Open();
  std::vector<uint64_t> keep = Put(3, 200);  // live until the end: compaction must move them
  Puts(2, kTasks);
  journal_.reset();
  const std::string first = Segments().front();
  Flip(first, Records(first)[3] + 40);  // the first 50-task put
  const std::string damaged = Read(first);
  RecoveryReport r = Open(/*segment_bytes=*/8192);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(Ready(), uint64_t{3 + kTasks});
  for (int round = 0; round < 60 && fs::exists(first); ++round) {
    Put(20, 200);
    for (const Item& it : Get("tasks", 100, true))
      if (std::find(keep.begin(), keep.end(), it.id) == keep.end()) Report(it.id, true);
    Get("results", 100, false);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(journal_->Compact(64).ok());
  }
  ASSERT_FALSE(fs::exists(first)) << "compaction retired the damaged segment";
  const std::vector<std::string> aside = Segments("damaged-");
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(fs::path(aside[0]).filename(), "damaged-0000000000000001.tqj");
  EXPECT_EQ(Read(aside[0]), damaged) << "its bytes, damage included, are kept";
  r = Open(8192);
  EXPECT_TRUE(r.damage.empty()) << "a file set aside is not read again";
  EXPECT_EQ(r.set_aside, aside);
  EXPECT_EQ(r.ready, 3u) << "the live entries it held were moved first";
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
      JournalOptions{dir_, FsyncMode::kNever, milliseconds(5), 1 << 20}, other, nullptr);
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
        Journal::Open(JournalOptions{name, FsyncMode::kNever, milliseconds(5), 64u << 20}, broker,
                      nullptr);
    EXPECT_TRUE(j.ok()) << name << ": " << j.status().message();
    EXPECT_TRUE(fs::is_directory(fs::path(dir_) / name)) << name;
    EXPECT_EQ(fs::status(fs::path(dir_) / name).permissions() & fs::perms::all, fs::perms::owner_all);
  }
  fs::current_path(cwd);
}

}  // namespace
}  // namespace taskq
