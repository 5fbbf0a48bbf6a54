// What every broker test drives: the Broker with a fake transport and a
// clock the test moves (no sockets, no sleeps), and the same with a real
// journal for what a restarted master gets back. Each test file takes the
// part of the broker its name says.
#ifndef TASKQ_TESTS_BROKER_FIXTURE_H_
#define TASKQ_TESTS_BROKER_FIXTURE_H_

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <set>

#include "master/broker.h"
#include "master/journal.h"
#include "proto/limits.h"
#include "proto/value.h"
#include "tests/temp_dir.h"

namespace taskq::broker_testing {

using std::chrono::milliseconds;

class FakeTransport : public Transport {
 public:
  SendResult Send(std::string_view peer, std::string_view bytes) override {
    if (gone.count(std::string(peer))) return SendResult::kGone;
    if (full) return SendResult::kFull;
    sent.emplace_back(std::string(peer), std::string(bytes));
    return SendResult::kSent;
  }
  std::deque<std::pair<std::string, std::string>> sent;
  std::set<std::string> gone;
  bool full = false;
};

inline const std::string kSquare = "square";

class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() { Reset(BrokerOptions()); }

  void Reset(BrokerOptions o) {
    o.heartbeat = milliseconds(100);
    options_ = o;
    broker_ =
        std::make_unique<Broker>(o, [this](const std::string& line) { log_.push_back(line); });
  }

  void Send(const std::string& peer, const Message& m) {
    broker_->Handle(peer, Encode(m), now_);
    broker_->Flush(transport_, now_);
  }
  void Advance(milliseconds d) {
    now_ += d;
    broker_->Tick(now_);
    broker_->Flush(transport_, now_);
  }
  void Hello(const std::string& peer, std::string_view role = "worker", uint32_t heartbeat_ms = 0,
             uint64_t session = 0, std::vector<uint64_t> holding = {}) {
    taskq::Hello h;
    h.role = role;
    h.name = peer;
    h.capacity = 1;
    h.session = session;
    h.heartbeat_ms = heartbeat_ms;
    h.holding = holding;
    Send(peer, h);
    ASSERT_TRUE(std::holds_alternative<Welcome>(Next(peer)));
  }

  // The next message sent to peer (decoded; it borrows from kept bytes).
  Message Next(const std::string& peer) {
    for (auto it = transport_.sent.begin(); it != transport_.sent.end(); ++it) {
      if (it->first != peer) continue;
      kept_.push_back(std::move(it->second));
      transport_.sent.erase(it);
      Result<Message> m = Decode(kept_.back());
      EXPECT_TRUE(m.ok()) << m.status().message();
      return m.ok() ? *m : Message(Goodbye{});
    }
    return Message(Ping{});  // nothing: tests compare against a real reply type
  }
  // Skips pings (heartbeats) to reach the next real message.
  Message NextReal(const std::string& peer) {
    for (;;) {
      if (std::none_of(transport_.sent.begin(), transport_.sent.end(),
                       [&](auto& s) { return s.first == peer; }))
        return Message(Ping{});
      Message m = Next(peer);
      if (!std::holds_alternative<Ping>(m)) return m;
    }
  }
  bool Nothing(const std::string& peer) {
    for (const auto& s : transport_.sent)
      if (s.first == peer && !std::holds_alternative<Ping>(*Decode(s.second))) return false;
    return true;
  }

  std::vector<uint64_t> PutSquares(const std::string& peer, std::vector<int> ns) {
    Put p;
    p.rid = 1;
    p.queue = "tasks";
    std::vector<std::string> args;
    for (int n : ns) args.push_back(Value::Int(n).packed());
    for (const std::string& a : args) p.items.push_back(NewTask{kSquare, a, 0});
    Send(peer, p);
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<PutOk>(m));
    std::vector<uint64_t> ids;
    if (const auto* ok = std::get_if<PutOk>(&m))
      for (uint64_t i = 0; i < ok->count; ++i) ids.push_back(ok->first_id + i);
    return ids;
  }
  void SendGet(const std::string& peer, std::string_view queue, uint32_t max, uint32_t timeout_ms,
               bool lease, std::vector<std::string_view> kinds = {}) {
    Get g;
    g.rid = 2;
    g.queue = queue;
    g.max = max;
    g.timeout_ms = timeout_ms;
    g.lease = lease;
    g.kinds = kinds;
    Send(peer, g);
  }
  std::vector<Entry> Items(const std::string& peer) {
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<taskq::Items>(m)) << "got " << OpName(m);
    if (const auto* it = std::get_if<taskq::Items>(&m)) return it->items;
    return {};
  }
  ResultOk Report(const std::string& peer, uint64_t id, bool ok, int value = 0, bool retry = true) {
    ResultMsg r;
    r.rid = 9;
    const std::string v = Value::Int(value).packed();
    r.results.push_back(TaskResult{id, ok, ok ? std::string_view(v) : std::string_view(),
                                   ok ? "" : "boom", 10, retry});
    Send(peer, r);
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<ResultOk>(m)) << OpName(m);
    return std::holds_alternative<ResultOk>(m) ? std::get<ResultOk>(m) : ResultOk{};
  }
  // A failed result that blames the worker itself.
  void ReportFault(const std::string& peer, uint64_t id, std::string_view error) {
    TaskResult r{id, false, {}, error, 10, true};
    r.worker_fault = true;
    Send(peer, ResultMsg{9, {r}});
    EXPECT_TRUE(std::holds_alternative<ResultOk>(NextReal(peer)));
  }
  AckOk AckIds(const std::string& peer, std::vector<uint64_t> ids) {
    Send(peer, Ack{7, std::move(ids)});
    Message m = NextReal(peer);
    EXPECT_TRUE(std::holds_alternative<AckOk>(m)) << OpName(m);
    return std::holds_alternative<AckOk>(m) ? std::get<AckOk>(m) : AckOk{};
  }
  // Puts tasks, has W run them all (value n*n), and leaves their outcomes
  // in "results".
  std::vector<uint64_t> Finished(std::vector<int> ns) {
    std::vector<uint64_t> ids = PutSquares("C", ns);
    SendGet("W", "tasks", static_cast<uint32_t>(ns.size()), 0, true);
    for (const Entry& e : Items("W")) {
      const int64_t n = Value::FromTrusted(e.arg).AsInt().value_or(0);
      Report("W", e.id, true, static_cast<int>(n * n));
    }
    return ids;
  }
  std::vector<uint64_t> IdsOf(const std::vector<Entry>& entries) {
    std::vector<uint64_t> ids;
    for (const Entry& e : entries) ids.push_back(e.id);
    return ids;
  }
  WorkerStats WorkerInfo(std::string_view name) {
    for (const WorkerStats& w : broker_->Snapshot(now_).workers)
      if (w.name == name) return w;
    ADD_FAILURE() << "no worker " << name;
    return WorkerStats{};
  }
  bool Logged(std::string_view text) {
    return std::any_of(log_.begin(), log_.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
  uint64_t Counter(const std::string& name) {
    for (const auto& [k, v] : broker_->Snapshot(now_).counters)
      if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }
  QueueStats QueueInfo(std::string_view name) {
    for (const QueueStats& q : broker_->Snapshot(now_).queues)
      if (q.name == name) return q;
    return QueueStats{};
  }

  TimePoint now_ = TimePoint() + std::chrono::hours(1);
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  FakeTransport transport_;
  std::deque<std::string> kept_;
  std::vector<std::string> log_;
};

// The broker with a real journal: what a restarted master gets back.
class BrokerJournalTest : public BrokerTest {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("taskq-broker-journal-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    journal_.reset();
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A master (re)started on the data dir, with W and C connected again.
  RecoveryReport Restart(uint64_t segment_bytes = 64u << 20) {
    journal_.reset();
    Reset(options_);
    JournalOptions o;
    o.dir = dir_;
    o.fsync = FsyncMode::kNever;
    o.segment_bytes = segment_bytes;
    RecoveryReport report;
    Result<std::unique_ptr<Journal>> j = Journal::Open(o, *broker_, &report);
    EXPECT_TRUE(j.ok()) << j.status().message();
    if (j.ok()) {
      journal_ = std::move(*j);
      broker_->AttachLog(journal_.get(), journal_->epoch());
    }
    transport_.sent.clear();
    Hello("W");
    Hello("C", "client");
    return report;
  }
  void Commit() { ASSERT_TRUE(journal_->Commit().ok()); }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace taskq::broker_testing

#endif  // TASKQ_TESTS_BROKER_FIXTURE_H_
