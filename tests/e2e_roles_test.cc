// Least privilege with the real binaries on 127.0.0.1 (docs/PROTOCOL.md 2.5):
// the keys taskq keys issues from the master's authkey, each refused what
// its role may not do (forbidden, exit 7) while the master goes on serving;
// a key of no role refused in the handshake as before (exit 3); and the
// classroom with three keys: the teacher's authkey, a student's worker key,
// a teaching assistant's submitter key.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "client/exit_codes.h"
#include "client/local_channel.h"
#include "proto/keys.h"
#include "proto/message.h"
#include "proto/value.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class RolesTest : public E2eTest {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("taskq-roles");
    ASSERT_FALSE(dir_.empty());
    // As a teacher gets them: from the authkey, no master needed.
    std::string err;
    ASSERT_EQ(RunToEnd({TASKQ_CLI_BIN, "keys", "--role", "worker"}, &worker_key_, &err, AdminEnv()),
              kExitOk)
        << err;
    ASSERT_EQ(
        RunToEnd({TASKQ_CLI_BIN, "keys", "--role", "submitter"}, &submitter_key_, &err, AdminEnv()),
        kExitOk)
        << err;
    for (std::string* k : {&worker_key_, &submitter_key_}) {
      ASSERT_FALSE(k->empty());
      ASSERT_EQ(k->back(), '\n');
      k->pop_back();
    }
    master_ = StartMaster({"--serve"}, &port_);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> AdminEnv() { return {"TASKQ_AUTHKEY=" + key_}; }
  std::vector<std::string> Env(const std::string& key) { return {"TASKQ_AUTHKEY=" + key}; }
  std::vector<std::string> Taskq(std::vector<std::string> args) {
    std::vector<std::string> argv = {TASKQ_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", "127.0.0.1:" + std::to_string(port_)});
    return argv;
  }
  // A client of the API holding key, saying hello as role.
  std::unique_ptr<Client> ConnectAs(const std::string& key, const std::string& role) {
    ClientOptions o;
    o.name = "roles-" + role;
    o.role = role;
    o.connect_timeout = kQuick;
    Result<std::unique_ptr<Client>> c =
        Client::Connect("127.0.0.1:" + std::to_string(port_), key, o);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? std::move(*c) : nullptr;
  }
  static std::vector<TaskSpec> Squares(int n) {
    std::vector<TaskSpec> t;
    for (int i = 1; i <= n; ++i) t.push_back(TaskSpec{"square", Value::Int(i), {}});
    return t;
  }
  // Runs taskq ARGS with key; returns its exit code, stderr in *err.
  int RunTaskq(std::vector<std::string> args, const std::string& key, std::string* err,
               std::string* out = nullptr) {
    std::string ignored;
    return RunToEnd(Taskq(std::move(args)), out ? out : &ignored, err, Env(key));
  }
  // The names of the queues a stats reply to c lists.
  static std::vector<std::string> Queues(Client& c, const std::string& named = "") {
    std::vector<std::string> names;
    Result<StatsOk> s = c.Stats(milliseconds(30000), named);
    EXPECT_TRUE(s.ok()) << s.status().message();
    if (s.ok())
      for (const QueueStats& q : s->queues) names.emplace_back(q.name);
    return names;
  }
  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  static void ExpectForbidden(const Status& s, const std::string& says) {
    EXPECT_EQ(s.code(), Code::kForbidden) << s.message();
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  }

  std::string dir_;
  std::string worker_key_, submitter_key_;
  std::unique_ptr<Process> master_;
  int port_ = 0;
};

TEST_F(RolesTest, AWorkerKeyCannotPutTakeOutcomesOrPurge) {
  auto admin = ConnectAs(key_, "client");
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->Put("tasks", Squares(2)).ok());
  // One outcome waits in "results".
  Result<std::vector<Item>> first = admin->Get("tasks", 1, kQuick, /*lease=*/true);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(admin->Done(first->front(), Value::Int(1)).ok());

  auto worker = ConnectAs(worker_key_, "worker");
  ASSERT_TRUE(worker);
  ExpectForbidden(worker->Put("tasks", Squares(1)).status(), "a worker key cannot put tasks");
  for (const char* q : {"results", "failed", "job.k3f9x2ab7m"})
    ExpectForbidden(worker->Get(q, 10, milliseconds(0), /*lease=*/true).status(),
                    std::string("a worker key cannot take from '") + q + "'");
  ExpectForbidden(worker->Get("tasks", 10, milliseconds(0), /*lease=*/false).status(),
                  "a worker key cannot take entries without a lease");
  ExpectForbidden(worker->Purge("tasks").status(), "a worker key cannot purge queues");
  ExpectForbidden(worker->Ack({1}).status(), "a worker key cannot ack outcomes");
  // The master goes on serving, this very connection too: the task waits.
  Result<std::vector<Item>> task = worker->Get("tasks", 10, kQuick, /*lease=*/true);
  ASSERT_TRUE(task.ok()) << task.status().message();
  ASSERT_EQ(task->size(), 1u);
  EXPECT_FALSE(task->front().outcome);
  Result<uint64_t> accepted = worker->Done(task->front(), Value::Int(4));
  ASSERT_TRUE(accepted.ok()) << accepted.status().message();
  EXPECT_EQ(*accepted, 1u);
  Result<std::vector<Item>> both = admin->Get("results", 10, kQuick);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->size(), 2u);

  // The programs say what was refused and to whom, and exit 7.
  std::string err;
  EXPECT_EQ(RunTaskq({"submit", "--square", "2"}, worker_key_, &err), kExitForbidden) << err;
  EXPECT_NE(err.find("a worker key cannot say hello as a 'client'"), std::string::npos) << err;
  EXPECT_EQ(RunTaskq({"purge", "tasks", "--yes"}, worker_key_, &err), kExitForbidden) << err;
  auto bad_queue = StartWorker(port_, {"--queue", "results"}, worker_key_);
  ASSERT_EQ(bad_queue->Wait(kSlow), kExitForbidden) << bad_queue->err();
  EXPECT_NE(bad_queue->err().find("not allowed with this key: a worker key cannot take from "
                                  "'results'"),
            std::string::npos)
      << bad_queue->err();
}

TEST_F(RolesTest, ASubmitterKeyCannotTakeTasksOrReadAnotherSubmittersJobUnlessNamed) {
  auto one = ConnectAs(submitter_key_, "client");
  auto two = ConnectAs(submitter_key_, "client");
  ASSERT_TRUE(one && two);
  ASSERT_TRUE(one->Put("tasks", Squares(3), "job.one").ok());
  ExpectForbidden(two->Get("tasks", 10, milliseconds(0), /*lease=*/true).status(),
                  "a submitter key cannot take from 'tasks'");
  ExpectForbidden(two->Put("tasks", Squares(1)).status(),
                  "a submitter key cannot put tasks whose outcomes go to 'results'");
  ExpectForbidden(two->Peek("failed").status(), "a submitter key cannot peek at queues");
  // Another submitter does not see the job ...
  EXPECT_TRUE(Has(Queues(*one), "job.one"));
  EXPECT_FALSE(Has(Queues(*two), "job.one"));
  std::string out, err;
  ASSERT_EQ(RunTaskq({"status", "--json"}, submitter_key_, &err, &out), kExitOk) << err;
  EXPECT_TRUE(nlohmann::json::parse(out)["jobs"].empty()) << out;
  ASSERT_EQ(RunTaskq({"status", "--json"}, key_, &err, &out), kExitOk) << err;
  EXPECT_EQ(nlohmann::json::parse(out)["jobs"].size(), 1u) << out;

  auto worker = StartWorker(port_, {"-q"}, worker_key_);
  ASSERT_TRUE(WaitUntil([&] {
    Result<StatsOk> s = one->Stats();
    for (const QueueStats& q : s.ok() ? s->queues : std::vector<QueueStats>{})
      if (q.name == "job.one") return q.ready == 3;
    return false;
  })) << worker->err();
  // ... and collects it only by naming it: the id is the capability.
  EXPECT_TRUE(Has(Queues(*two, "job.one"), "job.one"));
  Result<std::vector<Item>> got = two->Get("job.one", 10, kQuick, /*lease=*/true);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->size(), 3u);
  EXPECT_TRUE(got->front().outcome);

  // A student's worker given the submitter key, and a submitter trying the
  // admin's commands: each refusal named, exit 7.
  auto wrong = StartWorker(port_, {}, submitter_key_);
  ASSERT_EQ(wrong->Wait(kSlow), kExitForbidden) << wrong->err();
  EXPECT_NE(wrong->err().find("a submitter key cannot say hello as a 'worker'"), std::string::npos)
      << wrong->err();
  ASSERT_EQ(RunTaskq({"purge", "tasks", "--yes"}, submitter_key_, &err), kExitForbidden) << err;
  EXPECT_NE(err.find("a submitter key cannot purge queues"), std::string::npos) << err;
  ASSERT_EQ(RunTaskq({"retry", "--all"}, submitter_key_, &err), kExitForbidden) << err;
  EXPECT_NE(err.find("a submitter key cannot peek at queues"), std::string::npos) << err;
  ASSERT_EQ(RunTaskq({"retry", "7"}, submitter_key_, &err), kExitForbidden) << err;
  EXPECT_NE(err.find("a submitter key cannot retry failed tasks"), std::string::npos) << err;
  // And the master served on: the first submitter's connection still collects.
  Result<std::vector<Item>> none = one->Get("job.one", 10, milliseconds(0), /*lease=*/true);
  EXPECT_EQ(none.status().code(), Code::kEmpty) << none.status().message();
}

TEST_F(RolesTest, TheAdminKeyCanDoEverything) {
  auto admin = ConnectAs(key_, "client");
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->Put("tasks", Squares(3), "job.mine").ok());
  Result<std::vector<Item>> tasks = admin->Get("tasks", 2, kQuick, /*lease=*/true);
  ASSERT_TRUE(tasks.ok());
  ASSERT_TRUE(admin->Done(tasks->at(0), Value::Int(1)).ok());
  ASSERT_TRUE(admin->Fail(tasks->at(1), "no", /*retry=*/false).ok());
  Result<std::vector<Item>> outcomes = admin->Get("job.mine", 10, kQuick, /*lease=*/true);
  ASSERT_TRUE(outcomes.ok());
  ASSERT_EQ(outcomes->size(), 2u);
  EXPECT_EQ(admin->Ack({outcomes->at(0).id, outcomes->at(1).id}).value(), 2u);
  Result<std::vector<Item>> records = admin->Peek("failed");
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  Result<std::vector<std::pair<uint64_t, uint64_t>>> retried = admin->Retry({records->at(0).id});
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->size(), 1u);
  EXPECT_EQ(admin->Purge("tasks").value(), 2u);  // the third task and the retried one
  EXPECT_TRUE(Has(Queues(*admin), "job.mine"));
  // Its key may also say hello as a worker, as before.
  auto as_worker = ConnectAs(key_, "worker");
  ASSERT_TRUE(as_worker);
  EXPECT_EQ(as_worker->Get("tasks", 1, milliseconds(0), true).status().code(), Code::kEmpty);
}

// task_master's own job reaches the broker under a peer id of its own, in
// memory (client/local_channel.h); a socket peer holding a key may announce
// that id in its handshake, and must not be taken for the job (its session,
// its results): the broker never hears it. The same hello under any other
// id makes a worker the master lists. On a --serve master (no job), and on
// one whose job runs with its loop on the job's thread (the channel in use),
// which then finishes as if nobody had posed.
class ImpostorTest : public RolesTest {
 protected:
  // A DEALER with the admin's keys, routing id id (none: libzmq's), that
  // says hello as a worker named name to the master at port.
  zmq::socket_t HelloAs(int port, std::string_view id, const std::string& name) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (!id.empty()) s.set(zmq::sockopt::routing_id, zmq::buffer(id.data(), id.size()));
    s.set(zmq::sockopt::curve_serverkey, keys_->master.public_z85);
    s.set(zmq::sockopt::curve_publickey, keys_->client.public_z85);
    s.set(zmq::sockopt::curve_secretkey, keys_->client.secret_z85);
    s.connect("tcp://127.0.0.1:" + std::to_string(port));
    Hello h;
    h.role = "worker";
    h.name = name;
    h.capacity = 1;
    std::string bytes;
    EncodeTo(h, &bytes);
    EXPECT_TRUE(s.send(zmq::buffer(bytes), zmq::send_flags::none));
    return s;
  }
  // The impostor is never listed; the control, sent after it, is.
  void ExpectOnlyTheControlHeard(int port) {
    zmq::socket_t impostor = HelloAs(port, LocalChannel::kPeerId, "impostor");
    zmq::socket_t control = HelloAs(port, "", "control");
    Result<std::unique_ptr<Client>> admin =
        Client::Connect("127.0.0.1:" + std::to_string(port), key_, ClientOptions{});
    ASSERT_TRUE(admin.ok()) << admin.status().message();
    auto listed = [&](const std::string& name) {
      Result<StatsOk> s = (*admin)->Stats();
      if (!s.ok()) return false;
      for (const WorkerStats& w : s->workers)
        if (w.name == name) return true;
      return false;
    };
    ASSERT_TRUE(WaitUntil([&] { return listed("control"); })) << "the same hello under another id";
    // The impostor's hello went first; it has had the control's time, and a second.
    EXPECT_FALSE(WaitUntil([&] { return listed("impostor"); }, milliseconds(1000)))
        << "a peer posing as the master's own job was heard";
  }

  Result<DerivedKeys> keys_ = DeriveKeys(key_);
  zmq::context_t ctx_{1};
};

TEST_F(ImpostorTest, APeerCannotPoseAsTheMastersOwnJob) {
  ASSERT_TRUE(keys_.ok());
  ExpectOnlyTheControlHeard(port_);
}

TEST_F(ImpostorTest, APeerCannotPoseAsAJobThatIsRunning) {
  ASSERT_TRUE(keys_.ok());
  int port = 0;
  auto job = StartMaster({"--square", "5", "--timeout", "30"}, &port);  // generated: pumped
  ASSERT_NE(port, 0);
  ExpectOnlyTheControlHeard(port);
  auto worker = StartWorker(port, {"--quiet"});
  ASSERT_EQ(job->Wait(kSlow), kExitOk) << job->out() << job->err();
  EXPECT_EQ(job->CountLines(R"(^Done: 5 of 5 tasks in .*, 0 failed$)"), 1) << job->out();
}

// A key the master did not issue is refused in the handshake, as a wrong
// authkey is: another authkey's keys (another master key), and a forged
// secret next to this master's public key (ZAP says 400).
TEST_F(RolesTest, AKeyOfNoRoleIsRefusedInTheHandshake) {
  Result<Credentials> other = IssueCredentials("not-the-teachers-key");
  ASSERT_TRUE(other.ok());
  std::string forged = worker_key_;
  const std::size_t secret = forged.find(':') + 1;
  forged.replace(secret, 43, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  for (const std::string& key : {other->worker, other->submitter, forged}) {
    std::string err;
    EXPECT_EQ(RunTaskq({"status"}, key, &err), kExitAuthFailed) << err;
    EXPECT_NE(err.find("authentication failed"), std::string::npos) << err;
    auto worker = StartWorker(port_, {"--connect-timeout", "20"}, key);
    EXPECT_EQ(worker->Wait(kSlow), kExitAuthFailed) << worker->err();
  }
}

TEST_F(RolesTest, ADamagedKeyIsAUsageErrorThatDoesNotShowIt) {
  const std::string cut = worker_key_.substr(0, worker_key_.size() - 3);
  const std::string shown = worker_key_.substr(16, 30);  // part of its secret
  std::string err;
  EXPECT_EQ(RunTaskq({"status"}, cut, &err), kExitUsage);
  EXPECT_NE(err.find("cut or damaged"), std::string::npos) << err;
  EXPECT_EQ(err.find(shown), std::string::npos) << err;
  auto worker = StartWorker(port_, {}, cut);
  EXPECT_EQ(worker->Wait(kSlow), kExitUsage);
  EXPECT_NE(worker->err().find("cut or damaged"), std::string::npos) << worker->err();
  EXPECT_EQ(worker->err().find(shown), std::string::npos) << worker->err();
  // A master needs the authkey itself.
  std::string out;
  EXPECT_EQ(RunToEnd({MasterBin(), "--serve", "--port", "0", "--bind", "127.0.0.1"}, &out, &err,
                     Env(worker_key_)),
            kExitUsage);
  EXPECT_NE(err.find("a worker or submitter key cannot run a master"), std::string::npos) << err;
  EXPECT_EQ(err.find(shown), std::string::npos) << err;
}

// The teacher serves with the authkey, a student's worker holds only the
// worker key (in a file), a teaching assistant submits with only the
// submitter key: the job runs end to end, is collected after a detach on a
// new connection, and what the TA keeps is its alone (0600).
TEST_F(RolesTest, TheClassroomWorksWithThreeKeys) {
  const std::string key_file = dir_ + "/worker.key";
  std::ofstream(key_file) << worker_key_ << "\n";
  auto student = Process::Start({WorkerBin(), "--server", "127.0.0.1:" + std::to_string(port_),
                                 "--authkey-file", key_file, "--name", "ana", "-q"},
                                {"TASKQ_AUTHKEY="});
  ASSERT_TRUE(student);
  ASSERT_TRUE(student->WaitForLine("Connect to server", kQuick)) << student->err();

  const std::string results = dir_ + "/ta.jsonl";
  std::string out, err;
  ASSERT_EQ(RunTaskq({"submit", "--square", "5", "--results", results, "--workers", "1"},
                     submitter_key_, &err, &out),
            kExitOk)
      << out << err;
  EXPECT_NE(out.find("Done: 5 of 5 tasks"), std::string::npos) << out;
  EXPECT_EQ(Lines(results).size(), 5u);
  EXPECT_EQ(fs::status(results).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(Field(Lines(results).at(0), "worker"), "ana") << ReadFile(results);

  // Detached, then collected by another process: it names the job.
  ASSERT_EQ(RunTaskq({"submit", "--square", "4", "--detach", "--job", "lab2"}, submitter_key_, &err,
                     &out),
            kExitOk)
      << err;
  EXPECT_EQ(out, "lab2\n");
  const std::string later = dir_ + "/lab2.jsonl";
  ASSERT_EQ(RunTaskq({"results", "lab2", "--results", later}, submitter_key_, &err, &out), kExitOk)
      << out << err;
  EXPECT_EQ(Lines(later).size(), 4u);
  // The teacher sees both jobs; the student's key cannot submit.
  ASSERT_EQ(RunTaskq({"status"}, key_, &err, &out), kExitOk) << err;
  EXPECT_NE(out.find("jobs: 0 in progress, 2 finished"), std::string::npos) << out;
  EXPECT_EQ(RunTaskq({"submit", "--square", "1"}, worker_key_, &err), kExitForbidden) << err;
  EXPECT_TRUE(student->Running()) << student->err();
}

}  // namespace
}  // namespace taskq::testing
