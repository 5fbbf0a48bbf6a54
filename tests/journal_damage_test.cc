// A damaged journal: a torn tail, flipped bytes, zeroed blocks, files cut
// short or missing, damaged headers; each loses exactly the records it
// touches and says so (tests/journal_fixture.h).
#include "tests/journal_fixture.h"

namespace taskq::journal_testing {
namespace {

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

}  // namespace
}  // namespace taskq::journal_testing
