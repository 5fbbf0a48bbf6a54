// What the journal tests drive: a Broker with a journal on a temporary data
// dir, put and leased and finished through the broker, then a master
// restarted on the same dir (tests/journal_test.cc: restarts, compaction,
// ids, the lock; tests/journal_damage_test.cc: damaged files).
#ifndef TASKQ_TESTS_JOURNAL_FIXTURE_H_
#define TASKQ_TESTS_JOURNAL_FIXTURE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>

#include "client/client.h"
#include "master/crc32c.h"
#include "master/journal.h"
#include "master/journal_frame.h"
#include "proto/msgpack_writer.h"
#include "proto/value.h"
#include "tests/temp_dir.h"

namespace taskq::journal_testing {

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
        JournalOptions{dir_, FsyncMode::kNever, milliseconds(5), segment_bytes, {}}, *broker_, &report);
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

}  // namespace taskq::journal_testing

#endif  // TASKQ_TESTS_JOURNAL_FIXTURE_H_
