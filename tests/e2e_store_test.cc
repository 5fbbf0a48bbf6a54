// task_master --store: the journal in NATS JetStream, real nats-server
// processes (tests/nats_cluster.h) and the real binaries, all on 127.0.0.1.
// A master killed is replaced by another started on the same servers, a
// standby takes over from a master that went silent, and a master that lost
// the store to another stops; with three NATS servers and R3 streams, a job
// of 100,000 tasks completes with every outcome exactly once through a
// NATS server killed and restarted, a master killed, and both.
#include <signal.h>

#include <fstream>
#include <future>
#include <map>
#include <set>

#include "client/exit_codes.h"
#include "master/nats_medium.h"
#include "tests/e2e_util.h"
#include "tests/nats_cluster.h"

namespace taskq::testing {
namespace {

using std::chrono::steady_clock;

std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

class StoreTest : public E2eTest {
 protected:
  void StartNats(int n) {
    std::string error;
    nats_ = NatsCluster::Start(n, kSlow, &error);
    ASSERT_TRUE(nats_) << error;
  }
  // task_master --serve --store on a reserved port, not waiting for it to
  // listen (a standby does not until it takes over).
  std::unique_ptr<Process> StartOnStore(int port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {MasterBin(),          "--bind",  "127.0.0.1", "--port",
                                     std::to_string(port), "--serve", "--store",   nats_->Urls(),
                                     "--heartbeat",        "0.2"};
    if (std::find(extra.begin(), extra.end(), "--takeover-after") == extra.end())
      argv.insert(argv.end(), {"--takeover-after", "1"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Process::Start(argv, Env());
    EXPECT_TRUE(p) << "cannot start the master";
    return p;
  }
  bool Listening(Process& master) { return master.WaitForLine("listening on", kSlow).has_value(); }
  std::unique_ptr<Process> StartWorkerFor(const std::vector<int>& ports) {
    std::string list;
    for (int p : ports) list += (list.empty() ? "" : ",") + Address(p);
    auto w = Process::Start({WorkerBin(), "--server", list, "-j", "4"}, Env());
    EXPECT_TRUE(w) << "cannot start the worker";
    return w;
  }
  // n squares put on the master at port, in puts of up to 10,000: the id
  // ranges, to check each outcome against its task.
  std::vector<IdRange> PutSquares(int port, int n) {
    std::vector<IdRange> ranges;
    auto client = Connect(port);
    if (!client) return ranges;
    for (int done = 0; done < n;) {
      std::vector<TaskSpec> tasks;
      for (int i = 0; i < 10000 && done < n; ++i, ++done)
        tasks.push_back(TaskSpec{"square", Value::Int(done + 1), {}});
      Result<IdRange> ids = client->Put("tasks", tasks);
      EXPECT_TRUE(ids.ok()) << ids.status().message();
      if (!ids.ok()) return {};
      ranges.push_back(*ids);
    }
    return ranges;
  }

  // The index of the server leading the store's stream (0 if not known).
  int StreamLeader() {
    std::string error;
    NatsPtr<natsConnection> nc = NatsConnect(nats_->Urls(), kQuick, &error);
    if (!nc) return 0;
    jsCtx* raw = nullptr;
    if (natsConnection_JetStream(&raw, nc.get(), nullptr) != NATS_OK) return 0;
    NatsPtr<jsCtx> js(raw);
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js.get(), "TASKQ_default", nullptr, nullptr) != NATS_OK) return 0;
    NatsPtr<jsStreamInfo> info(si);
    if (!info->Cluster || !info->Cluster->Leader) return 0;
    return std::max(0, nats_->IndexOf(info->Cluster->Leader));
  }

  std::unique_ptr<NatsCluster> nats_;
};

// Collects the outcomes of squares from whichever of the masters serves,
// leased and acknowledged (an outcome leaves the store only once it is
// here), moving to the other master when a call fails. Every task must
// get one outcome, right for its argument; an outcome handed out again
// (its ack lost with a master) must be the same one: the same value from
// the same worker.
class Collector {
 public:
  Collector(std::string key, std::vector<int> ports, std::vector<IdRange> ranges)
      : key_(std::move(key)), ports_(std::move(ports)), ranges_(std::move(ranges)) {
    for (const IdRange& r : ranges_) expected_ += r.count;
  }
  // Collects until count outcomes are in, or all, or the deadline.
  void Until(uint64_t count, steady_clock::time_point deadline) {
    while (outcomes_.size() < std::min(count, expected_) && steady_clock::now() < deadline) {
      if (!client_) {
        ClientOptions o;
        o.name = "collector";
        o.connect_timeout = std::chrono::seconds(3);
        Result<std::unique_ptr<Client>> c = Client::Connect(Address(ports_[at_]), key_, o);
        if (c.ok()) client_ = std::move(*c);
        if (!client_) {
          at_ = (at_ + 1) % ports_.size();
          ++switches_;
          continue;
        }
      }
      Result<std::vector<Item>> got = client_->Get("results", 2000, std::chrono::seconds(1), true);
      if (!got.ok() && got.status().code() == Code::kEmpty) continue;
      std::vector<uint64_t> ids;
      if (got.ok()) {
        for (const Item& item : *got) {
          Check(item);
          ids.push_back(item.id);
        }
      }
      if (!got.ok() || !client_->Ack(ids).ok()) {  // this master is gone: try the other
        client_.reset();
        at_ = (at_ + 1) % ports_.size();
        ++switches_;
      }
    }
  }
  // The master at port is gone (the test killed it): the next call goes to
  // another at once, not after the client's wait for a reply runs out.
  void Lost(int port) {
    if (ports_[at_] != port) return;
    client_.reset();
    at_ = (at_ + 1) % ports_.size();
    ++switches_;
  }
  uint64_t collected() const { return outcomes_.size(); }
  uint64_t expected() const { return expected_; }
  uint64_t again() const { return again_; }
  int switches() const { return switches_; }

 private:
  void Check(const Item& item) {
    int64_t arg = -1;
    uint64_t base = 0;
    for (const IdRange& r : ranges_) {
      if (item.id >= r.first && item.id < r.first + r.count) arg = base + (item.id - r.first) + 1;
      base += r.count;
    }
    ASSERT_NE(arg, -1) << "an outcome for task " << item.id << ", which no put made";
    ASSERT_TRUE(item.outcome && item.outcome->ok) << "task " << item.id;
    EXPECT_EQ(item.outcome->value.AsInt(), arg * arg) << "task " << item.id;
    const std::string who = item.outcome->worker;
    auto [it, fresh] = outcomes_.emplace(item.id, who);
    if (!fresh) {
      ++again_;
      EXPECT_EQ(it->second, who) << "task " << item.id << " has two outcomes";
    }
  }

  std::string key_;
  std::vector<int> ports_;
  std::vector<IdRange> ranges_;
  std::unique_ptr<Client> client_;
  std::size_t at_ = 0;
  uint64_t expected_ = 0, again_ = 0;
  int switches_ = 0;
  std::map<uint64_t, std::string> outcomes_;  // id -> the worker of its outcome
};

// NatsMedium itself, against one server, with short timings.
class NatsMediumTest : public StoreTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartNats(1)); }
  std::unique_ptr<JournalMedium> Open(std::size_t max_message = 1000000) {
    NatsMediumOptions o;
    o.urls = nats_->Url(0);
    o.name = "medium";
    o.takeover_after = milliseconds(400);
    o.stall_limit = milliseconds(2000);
    o.max_message = max_message;
    Result<std::unique_ptr<JournalMedium>> m = NatsMedium::Open(o);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? std::move(*m) : nullptr;
  }
  // Publishes data on subject, unfenced, as a writer gone astray would.
  void RawPublish(const std::string& subject, const std::string& data) {
    std::string error;
    NatsPtr<natsConnection> nc = NatsConnect(nats_->Url(0), kQuick, &error);
    ASSERT_TRUE(nc) << error;
    jsCtx* raw = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&raw, nc.get(), nullptr), NATS_OK);
    NatsPtr<jsCtx> js(raw);
    jsPubAck* ack = nullptr;
    ASSERT_EQ(js_Publish(&ack, js.get(), subject.c_str(), data.data(),
                         static_cast<int>(data.size()), nullptr, nullptr),
              NATS_OK);
    jsPubAck_Destroy(ack);
  }
  static std::string Contents(JournalMedium& m, uint64_t seq) {
    std::vector<MediumSegment> segs;
    std::vector<std::string> aside;
    EXPECT_TRUE(m.List(&segs, &aside).ok());
    for (const MediumSegment& seg : segs) {
      if (seg.seq != seq) continue;
      std::string data;
      Status s = m.Read(seg, &data);
      EXPECT_TRUE(s.ok()) << s.message();
      return data;
    }
    return "(no segment " + std::to_string(seq) + ")";
  }
};

TEST_F(NatsMediumTest, AnAppendOverOneMessageComesBackWholeAndOneCutShortCountsForNothing) {
  std::string big(2500, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  {
    auto m = Open(/*max_message=*/1000);  // 2,500 bytes: three messages, M M E
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->Lock().ok());
    ASSERT_TRUE(m->Start(1, "header.").ok());
    ASSERT_TRUE(m->Append(big).ok());
    // The first message of an append whose last never came (a crash).
    ASSERT_NO_FATAL_FAILURE(RawPublish("taskq.medium.seg.1", "Mcut short"));
  }  // released: the next takes over at once
  auto next = Open();
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->Lock().ok());
  EXPECT_EQ(Contents(*next, 1), "header." + big);
}

TEST_F(NatsMediumTest, AStandbyTakesOverOnlyFromASilentWriterAndFencesItOut) {
  auto writer = Open();
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->Lock().ok());
  Result<MediumSegment> seg = writer->Start(1, "first.");
  ASSERT_TRUE(seg.ok());
  auto standby = Open();
  ASSERT_TRUE(standby);
  std::future<Status> took = std::async(std::launch::async, [&] { return standby->Lock(); });
  // While the writer's loop runs (asks Health) it beats: no takeover, for
  // well over --takeover-after (400 ms).
  for (int i = 0; i < 75; ++i) {
    ASSERT_TRUE(writer->Health().ok());
    ASSERT_EQ(took.wait_for(milliseconds(20)), std::future_status::timeout)
        << "took over a live writer";
  }
  // The loop stops asking (wedged, or the process frozen): the beat stops,
  // the standby takes over.
  ASSERT_EQ(took.wait_for(kQuick), std::future_status::ready);
  ASSERT_TRUE(took.get().ok());
  // The old writer can neither append nor retire a segment the new one replays.
  Status s = writer->Append("late.");
  EXPECT_EQ(s.code(), Code::kTakenOver) << s.message();
  EXPECT_FALSE(writer->Retire(*seg, false).ok());
  EXPECT_EQ(writer->Health().code(), Code::kTakenOver);
  EXPECT_EQ(Contents(*standby, 1), "first.");
  writer.reset();  // no release: it lost the store
  EXPECT_TRUE(standby->Start(2, "second.").ok());
}

TEST_F(NatsMediumTest, RetiringRemovesASegmentAndKeepsADamagedOneAside) {
  auto m = Open();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->Lock().ok());
  Result<MediumSegment> one = m->Start(1, "one.");
  Result<MediumSegment> two = m->Start(2, "two.");
  Result<MediumSegment> three = m->Start(3, "three.");
  ASSERT_TRUE(one.ok() && two.ok() && three.ok());
  ASSERT_TRUE(m->Health().ok());
  ASSERT_TRUE(m->Retire(*one, /*damaged=*/false).ok());
  ASSERT_TRUE(m->Retire(*two, /*damaged=*/true).ok());
  std::vector<MediumSegment> segs;
  std::vector<std::string> aside;
  ASSERT_TRUE(m->List(&segs, &aside).ok());
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].seq, 3u);
  EXPECT_EQ(aside, std::vector<std::string>{"taskq.medium.aside.2"});
  EXPECT_EQ(Contents(*m, 3), "three.");
}

TEST_F(StoreTest, NoNatsServerIsAClearRefusal) {
  const int nobody = ReservePort();
  std::string err;
  EXPECT_EQ(RunToEnd({MasterBin(), "--serve", "--port", "0", "--store",
                      "nats://127.0.0.1:" + std::to_string(nobody)},
                     nullptr, &err, Env()),
            kExitUnavailable);
  EXPECT_NE(err.find("no NATS server answered at nats://127.0.0.1:" + std::to_string(nobody)),
            std::string::npos)
      << err;
  EXPECT_EQ(
      RunToEnd({MasterBin(), "--serve", "--store", "nats://127.0.0.1:4222", "--data-dir", "/tmp/x"},
               nullptr, &err, Env()),
      kExitUsage);
}

TEST_F(StoreTest, CredentialsAreNeverShown) {
  const int nobody = ReservePort();
  const std::string url = "nats://127.0.0.1:" + std::to_string(nobody);
  const std::string secret_url = "nats://bob:s3cret@x@127.0.0.1:" + std::to_string(nobody);
  std::string err;
  EXPECT_EQ(RunToEnd({MasterBin(), "--serve", "--port", "0", "--store", secret_url + "," + url},
                     nullptr, &err, Env()),
            kExitUnavailable);
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  EXPECT_EQ(err.find("x@"), std::string::npos) << err;
  EXPECT_NE(err.find(url + "," + url), std::string::npos) << err;
}

// A NATS server that asks for a user and password: --store-credentials
// FILE gives them, and a wrong password is refused with a sentence that
// does not show it.
TEST_F(StoreTest, CredentialsComeFromAFile) {
  const std::string bin = NatsServerBin();
  ASSERT_FALSE(bin.empty()) << "nats-server is missing (scripts/install-deps installs it)";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("taskq-store-creds-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const int port = ReservePort();
  auto server = Process::Start({bin, "-a", "127.0.0.1", "-p", std::to_string(port), "-js", "-sd",
                                (dir / "js").string(), "--user", "bob", "--pass", "s3cret"});
  ASSERT_TRUE(server);
  ASSERT_TRUE(server->WaitForLine("Server is ready", kQuick, /*from_err=*/true)) << server->err();
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  std::string err;
  EXPECT_EQ(RunToEnd({MasterBin(), "--serve", "--port", "0", "--store", url, "--store-credentials",
                      write("wrong", "bob:guess\n")},
                     nullptr, &err, Env()),
            kExitUnavailable);
  EXPECT_NE(err.find("Authorization"), std::string::npos) << err;
  EXPECT_EQ(err.find("guess"), std::string::npos) << err;
  const int a = ReservePort();
  auto master =
      Process::Start({MasterBin(), "--bind", "127.0.0.1", "--port", std::to_string(a), "--serve",
                      "--store", url, "--store-credentials", write("right", "bob:s3cret\n")},
                     Env());
  ASSERT_TRUE(master);
  ASSERT_TRUE(Listening(*master)) << master->err();
  EXPECT_EQ(PutSquares(a, 3).size(), 1u);
  EXPECT_EQ(master->err().find("s3cret"), std::string::npos) << master->err();
  master->Signal(SIGINT);
  EXPECT_EQ(master->Wait(kQuick), kExitOk) << master->err();
  server->Signal(SIGKILL);
  server->Wait(kQuick);
  std::filesystem::remove_all(dir);
}

TEST_F(StoreTest, AMasterStartedOnTheStoreOfAKilledOneServesItsTasksAndOutcomes) {
  ASSERT_NO_FATAL_FAILURE(StartNats(1));
  const int a = ReservePort(), b = ReservePort();
  auto master_a = StartOnStore(a);
  ASSERT_TRUE(Listening(*master_a)) << master_a->err();
  std::vector<IdRange> ranges = PutSquares(a, 300);
  ASSERT_EQ(ranges.size(), 1u);
  uint64_t before = 0;
  {
    // Some done and collected before the kill, the rest after.
    auto worker = StartWorker(a);
    Collector early(key_, {a}, ranges);
    early.Until(100, steady_clock::now() + kSlow);
    ASSERT_GE(early.collected(), 100u);
    before = early.collected();
    worker->Signal(SIGKILL);
    worker->Wait(kQuick);
  }
  master_a->Signal(SIGKILL);
  master_a->Wait(kQuick);
  auto master_b = StartOnStore(b);
  // A was killed: B waits out the silence (--takeover-after 1) first.
  ASSERT_TRUE(master_b->WaitForLine("standing by", kQuick, /*from_err=*/true)) << master_b->err();
  ASSERT_TRUE(Listening(*master_b)) << master_b->err();
  EXPECT_TRUE(master_b->WaitForLine("Recovered the NATS store at nats://127.0.0.1:\\d+: \\d+ task",
                                    kQuick));
  auto worker = StartWorker(b);
  Collector rest(key_, {b}, ranges);
  rest.Until(300, steady_clock::now() + kSlow);
  // Those collected (and acked) before the kill are gone for good; B
  // has every other one.
  EXPECT_EQ(rest.collected(), 300 - before);
  EXPECT_EQ(rest.again(), 0u);
}

TEST_F(StoreTest, AMasterStoppedWithCtrlCLetsTheNextTakeOverAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartNats(1));
  const int a = ReservePort(), b = ReservePort();
  auto master_a = StartOnStore(a, {"--takeover-after", "100"});
  ASSERT_TRUE(Listening(*master_a)) << master_a->err();
  ASSERT_EQ(PutSquares(a, 10).size(), 1u);
  master_a->Signal(SIGINT);
  EXPECT_EQ(master_a->Wait(kQuick), kExitOk) << master_a->err();
  // A released the store: B does not wait the 100 s.
  auto master_b = StartOnStore(b, {"--takeover-after", "100"});
  ASSERT_TRUE(Listening(*master_b)) << master_b->err();
  EXPECT_TRUE(master_b->WaitForLine("Recovered .*: 10 task\\(s\\) waiting", kQuick))
      << master_b->out();
}

// Ctrl-C of the active master hands over: its shutdown says so (handover,
// PROTOCOL.md 5.13), a worker given both masters moves to the standby,
// which takes over at once (the store released), and one given only the
// master that stopped stops with it.
TEST_F(StoreTest, AMasterStoppedWithCtrlCHandsItsWorkersOverToTheStandby) {
  ASSERT_NO_FATAL_FAILURE(StartNats(1));
  const int a = ReservePort(), b = ReservePort();
  auto master_a = StartOnStore(a, {"--takeover-after", "100"});
  ASSERT_TRUE(Listening(*master_a)) << master_a->err();
  auto master_b = StartOnStore(b, {"--takeover-after", "100"});
  ASSERT_TRUE(master_b->WaitForLine("standing by", kQuick, /*from_err=*/true)) << master_b->err();
  auto both = StartWorkerFor({a, b});
  auto only_a = StartWorkerFor({a});
  {
    Collector c(key_, {a}, PutSquares(a, 50));
    c.Until(50, steady_clock::now() + kSlow);
    ASSERT_EQ(c.collected(), 50u);
  }
  master_a->Signal(SIGINT);
  EXPECT_EQ(master_a->Wait(kQuick), kExitOk) << master_a->err();
  ASSERT_TRUE(Listening(*master_b)) << master_b->err();
  ASSERT_TRUE(both->WaitForLine("^The master at " + Address(a) +
                                    " stopped and hands its queues over to another master of "
                                    "its store; trying " +
                                    Address(b) + "\\.\\.\\.$",
                                kQuick))
      << both->out();
  ASSERT_TRUE(both->WaitForLine("now working for " + Address(b), kQuick)) << both->out();
  EXPECT_EQ(only_a->Wait(kQuick), kExitOk) << only_a->out();
  // The work goes on at B, with the worker that moved.
  Collector c(key_, {b}, PutSquares(b, 20));
  c.Until(20, steady_clock::now() + kSlow);
  EXPECT_EQ(c.collected(), 20u);
  EXPECT_TRUE(both->Running()) << both->out();
}

TEST_F(StoreTest, AMasterThatLostTheStoreToAStandbyStopsAndItsWorkerMoves) {
  ASSERT_NO_FATAL_FAILURE(StartNats(1));
  const int a = ReservePort(), b = ReservePort();
  // 3 s: B must not take over a healthy A before the freeze.
  auto master_a = StartOnStore(a, {"--takeover-after", "3"});
  ASSERT_TRUE(Listening(*master_a)) << master_a->err();
  auto master_b = StartOnStore(b, {"--takeover-after", "3"});
  ASSERT_TRUE(master_b->WaitForLine("standing by", kQuick, /*from_err=*/true)) << master_b->err();
  auto worker = StartWorkerFor({a, b});
  std::vector<IdRange> ranges = PutSquares(a, 50);
  // Working for A (a worker A never welcomed would pass it over instead).
  ASSERT_TRUE(worker->WaitForLine("run task", kQuick)) << worker->out();
  EXPECT_EQ(master_b->CountLines("listening on"), 0) << "B took over a healthy A";
  // A frozen past --takeover-after: B takes over; A, thawed, finds its
  // next write refused and stops without a word to its worker.
  master_a->Signal(SIGSTOP);
  ASSERT_TRUE(Listening(*master_b)) << master_b->err();
  master_a->Signal(SIGCONT);
  EXPECT_EQ(master_a->Wait(kQuick), kExitError);
  EXPECT_NE(master_a->err().find("another task_master took over the NATS store"), std::string::npos)
      << master_a->err();
  ASSERT_TRUE(worker->WaitForLine("now working for " + Address(b), kSlow))
      << worker->out() << "\nA:\n"
      << master_a->err() << "\nB:\n"
      << master_b->err();
  Collector c(key_, {b}, ranges);
  c.Until(50, steady_clock::now() + kSlow);
  EXPECT_EQ(c.collected(), 50u);
  EXPECT_TRUE(worker->Running());
}

// The issue's test: three NATS servers (R3), two masters, three workers
// given both, 100,000 tasks; what happens mid-job is the parameter.
enum class Fault { kNatsServer, kMaster, kBoth };

class StoreClusterTest : public StoreTest, public ::testing::WithParamInterface<Fault> {};

TEST_P(StoreClusterTest, AJobOf100000TasksGetsEveryOutcomeOnce) {
  constexpr int kTasks = 100000;
  ASSERT_NO_FATAL_FAILURE(StartNats(3));
  const int a = ReservePort(), b = ReservePort();
  auto master_a = StartOnStore(a, {"--takeover-after", "2"});
  ASSERT_TRUE(Listening(*master_a)) << master_a->err();
  auto master_b = StartOnStore(b, {"--takeover-after", "2"});
  ASSERT_TRUE(master_b->WaitForLine("standing by", kQuick, /*from_err=*/true)) << master_b->err();
  std::vector<IdRange> ranges = PutSquares(a, kTasks);
  ASSERT_EQ(ranges.size(), 10u);
  std::vector<std::unique_ptr<Process>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(StartWorkerFor({a, b}));

  const auto start = steady_clock::now();
  const auto deadline = start + std::chrono::seconds(100);  // ctest's limit is 120 s
  auto at = [&start] { return std::chrono::duration<double>(steady_clock::now() - start).count(); };
  Collector c(key_, {a, b}, ranges);
  c.Until(kTasks / 5, deadline);
  ASSERT_GE(c.collected(), static_cast<uint64_t>(kTasks / 5));
  const Fault fault = GetParam();
  // The stream's leader: the costliest server to lose.
  const int victim = StreamLeader();
  if (fault != Fault::kMaster) {
    ASSERT_TRUE(nats_->Kill(victim, kQuick));
  }
  if (fault != Fault::kNatsServer) {
    master_a->Signal(SIGKILL);
    master_a->Wait(kQuick);
    c.Lost(a);
  }
  const double fault_at = at();
  c.Until(kTasks / 2, deadline);
  const double half_at = at();
  if (fault != Fault::kMaster) {
    std::string error;
    ASSERT_TRUE(nats_->Restart(victim, kSlow, &error)) << error;
  }
  c.Until(kTasks, deadline);
  EXPECT_EQ(c.collected(), static_cast<uint64_t>(kTasks)) << "switches " << c.switches() << "\nA:\n"
                                                          << master_a->err() << "\nB:\n"
                                                          << master_b->err();
  for (auto& w : workers) EXPECT_TRUE(w->Running()) << w->out() << w->err();
  std::printf(
      "collected %llu outcomes (%llu handed out again after a loss), %d master switch(es); "
      "fault at %.1f s, half at %.1f s, all at %.1f s\n",
      static_cast<unsigned long long>(c.collected()), static_cast<unsigned long long>(c.again()),
      c.switches(), fault_at, half_at, at());
}

INSTANTIATE_TEST_SUITE_P(Faults, StoreClusterTest,
                         ::testing::Values(Fault::kNatsServer, Fault::kMaster, Fault::kBoth),
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           switch (info.param) {
                             case Fault::kNatsServer:
                               return "ANatsServerKilledAndRestarted";
                             case Fault::kMaster:
                               return "AMasterKilled";
                             case Fault::kBoth:
                               return "BothAtOnce";
                           }
                           return "";
                         });

TEST_F(StoreTest, AWorkerKilledMidTaskLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartNats(1));
  const int a = ReservePort();
  auto master = StartOnStore(a);
  ASSERT_TRUE(Listening(*master)) << master->err();
  auto client = Connect(a);
  ASSERT_TRUE(client);
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(TaskSpec{"sleep", Value::Int(300), {}});
  Result<IdRange> ids = client->Put("tasks", tasks);
  ASSERT_TRUE(ids.ok());
  auto doomed = StartWorker(a, {"-j", "4"});
  ASSERT_TRUE(doomed->WaitForLine("run task", kQuick)) << doomed->out();
  doomed->Signal(SIGKILL);
  doomed->Wait(kQuick);
  auto worker = StartWorker(a, {"-j", "10"});
  std::set<uint64_t> seen;
  const auto end = steady_clock::now() + kSlow;
  while (seen.size() < 20 && steady_clock::now() < end) {
    Result<std::vector<Item>> got = client->Get("results", 20, std::chrono::seconds(1));
    if (!got.ok()) continue;
    for (const Item& r : *got) EXPECT_TRUE(seen.insert(r.id).second) << r.id;
  }
  EXPECT_EQ(seen.size(), 20u);
}

}  // namespace
}  // namespace taskq::testing
