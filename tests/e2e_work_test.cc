// Real work: downloads from a local web server, commands run by workers that
// opted in, task lists with mistakes in them, and what the master shows.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "client/exit_codes.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Results lines by the argument they carry (a URL, a string...).
std::map<std::string, std::string> ByArg(const fs::path& results) {
  std::map<std::string, std::string> out;
  for (const std::string& line : Lines(results)) out[Field(line, "arg")] = line;
  return out;
}

class WorkTest : public WebE2eTest {
 protected:
  WorkTest() : WebE2eTest("taskq-work") {}
  fs::path WriteList(const std::string& name, const std::vector<std::string>& lines) {
    const fs::path p = dir_ / name;
    std::ofstream f(p);
    for (const std::string& l : lines) f << l << "\n";
    return p;
  }
  // Files in --out; fails if anything is in a subdirectory.
  std::vector<std::string> Saved() {
    std::vector<std::string> names;
    if (!fs::exists(out_)) return names;
    for (const auto& e : fs::recursive_directory_iterator(out_)) {
      EXPECT_EQ(e.path().parent_path(), out_) << "outside --out: " << e.path();
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

TEST_F(WorkTest, DownloadsArriveWholeWithTheirHashes) {
  StartWeb();
  const std::vector<std::pair<std::string, std::size_t>> files = {{"empty.bin", 0},
                                                                  {"small.txt", 100},
                                                                  {"medium.dat", 200000},
                                                                  {"large.bin", 3 << 20},
                                                                  {"odd.csv", 65537}};
  std::vector<std::string> urls;
  for (const auto& [name, size] : files)
    urls.push_back(base_ + "/data/" + std::to_string(size) + "/" + name);
  const fs::path list = WriteList("urls.txt", urls);
  int port = 0;
  auto master = StartMaster(
      {"--download", list.string(), "--results", (dir_ / "results.jsonl").string()}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--out", out_.string(), "-j", "4"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(
      master->CountLines(
          R"(^Result: http://127\.0\.0\.1:\d+/data/\d+/\S+ -> \S+ \(\d+ bytes\)  \(worker \S+\)$)"),
      5)
      << master->out();
  std::map<std::string, std::string> results = ByArg(dir_ / "results.jsonl");
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& [name, size] = files[i];
    const std::string want = FixtureData(name, size);
    const fs::path saved = out_ / name;
    ASSERT_TRUE(fs::exists(saved)) << saved;
    EXPECT_EQ(ReadFile(saved), want) << name;
    const std::string& line = results[urls[i]];
    EXPECT_EQ(Field(line, "ok"), "true") << line;
    const std::string value = line.substr(line.find("\"value\": "));
    EXPECT_NE(value.find("\"sha256\": \"" + Sha256Hex(want) + "\""), std::string::npos) << line;
    EXPECT_NE(value.find("\"bytes\": " + std::to_string(size)), std::string::npos) << line;
    EXPECT_NE(value.find("\"status\": 200"), std::string::npos) << line;
  }
  EXPECT_EQ(Saved().size(), files.size()) << "no temporary file left behind";
}

TEST_F(WorkTest, DownloadFailuresArriveWithTheirReason) {
  StartWeb();
  const std::vector<std::string> urls = {
      base_ + "/notfound",  base_ + "/error500", base_ + "/loop",
      base_ + "/big",       base_ + "/bigknown", base_ + "/to-file",
      "file:///etc/passwd", "ftp://127.0.0.1/x", base_ + "/data/10/fine.txt"};
  int port = 0;
  auto master = StartMaster({"--download", WriteList("urls.txt", urls).string(), "--results",
                             (dir_ / "results.jsonl").string(), "--max-attempts", "2"},
                            &port);
  ASSERT_NE(port, 0);
  auto worker =
      StartWorker(port, {"--out", out_.string(), "--max-bytes", "1M", "--max-redirects", "3"});
  ASSERT_EQ(master->Wait(kSlow), kExitTasksFailed) << master->out() << master->err();
  std::map<std::string, std::string> r = ByArg(dir_ / "results.jsonl");
  auto error_of = [&](const std::string& url) { return Field(r[url], "error"); };
  EXPECT_NE(error_of(base_ + "/notfound").find("HTTP 404"), std::string::npos)
      << r[base_ + "/notfound"];
  EXPECT_EQ(Field(r[base_ + "/notfound"], "attempt"), "1") << "a 404 is not retried";
  EXPECT_NE(error_of(base_ + "/error500").find("HTTP 500"), std::string::npos);
  EXPECT_EQ(Field(r[base_ + "/error500"], "attempt"), "2") << "a 500 is retried";
  EXPECT_NE(error_of(base_ + "/loop").find("edirect"), std::string::npos) << r[base_ + "/loop"];
  EXPECT_NE(error_of(base_ + "/big").find("--max-bytes"), std::string::npos) << r[base_ + "/big"];
  EXPECT_NE(error_of(base_ + "/bigknown").find("--max-bytes"), std::string::npos)
      << r[base_ + "/bigknown"];
  EXPECT_FALSE(error_of(base_ + "/to-file").empty()) << r[base_ + "/to-file"];
  EXPECT_NE(error_of("file:///etc/passwd").find("only http and https"), std::string::npos);
  EXPECT_NE(error_of("ftp://127.0.0.1/x").find("only http and https"), std::string::npos);
  EXPECT_EQ(Field(r[base_ + "/data/10/fine.txt"], "ok"), "true");
  // Only the good file, under its name: no partial body, no temporary file,
  // and nothing read from the worker's own disk.
  EXPECT_EQ(Saved(), std::vector<std::string>{"fine.txt"});
}

TEST_F(WorkTest, NamesThatTryToEscapeAreSavedSafelyInsideOut) {
  StartWeb();
  const std::vector<std::string> urls = {
      base_ + "/../../etc/passwd", base_ + "/%2e%2e/", base_ + "/",
      base_ + "/.hidden",          base_ + "/a%2Fb",   base_ + "/..%2F..%2Fescape",
      base_ + "/ctl%0a%01name",    base_ + "/same",    base_ + "/x/same"};
  int port = 0;
  auto master = StartMaster({"--download", WriteList("urls.txt", urls).string()}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--out", out_.string(), "-j", "1"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  const std::vector<std::string> saved = Saved();
  EXPECT_EQ(saved, (std::vector<std::string>{"b", "ctl__name", "download", "download (1)", "escape",
                                             "hidden", "passwd", "same", "same (1)"}));
  EXPECT_FALSE(fs::exists(dir_ / "passwd"));
  EXPECT_FALSE(fs::exists(dir_ / "escape"));
}

// A file put there by hand is not the URL's download: it is kept, the URL is
// fetched beside it, and only that file is skipped the next time.
TEST_F(WorkTest, SkipExistingDoesNotDownloadAgain) {
  StartWeb();
  fs::create_directories(out_);
  std::ofstream(out_ / "keep.txt") << "mine";
  const std::string url = base_ + "/data/10/keep.txt";
  for (const char* results : {"r1.jsonl", "r2.jsonl"}) {
    int port = 0;
    auto master = StartMaster({url, "--results", (dir_ / results).string()}, &port);
    ASSERT_NE(port, 0);
    auto worker = StartWorker(port, {"--out", out_.string(), "--skip-existing"});
    ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  }
  EXPECT_EQ(ReadFile(out_ / "keep.txt"), "mine");
  EXPECT_EQ(ReadFile(out_ / "keep (1).txt"), FixtureData("keep.txt", 10));
  EXPECT_EQ(Lines(dir_ / "r1.jsonl").at(0).find("\"skipped\": true"), std::string::npos);
  const std::string second = Lines(dir_ / "r2.jsonl").at(0);
  EXPECT_NE(second.find("\"skipped\": true"), std::string::npos) << second;
  EXPECT_NE(second.find("keep (1).txt"), std::string::npos) << second;
}

// Each download answers only when all eight are waiting at the web server at
// once (tests/http_fixture.py's /gate): the job succeeds only if the worker
// runs them at the same time. An event, not a stopwatch: the timing target
// itself lives in bench/.
TEST_F(WorkTest, EightDownloadsRunAtOnceOnAWorkerWithEightJobs) {
  StartWeb();
  std::vector<std::string> urls;
  for (int i = 0; i < 8; ++i) urls.push_back(base_ + "/gate/8/f" + std::to_string(i));
  int port = 0;
  auto master = StartMaster({"--download", WriteList("urls.txt", urls).string()}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--out", out_.string(), "-j", "8"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(Saved().size(), 8u);
}

// One worker per behaviour, each serving its own kind with its own command.
TEST_F(WorkTest, CommandsRunOnlyOnWorkersThatOptedIn) {
  const fs::path canary = dir_ / "pwned";
  const std::string hostile = "$(touch " + canary.string() + "); `touch " + canary.string() +
                              "` ; a && b | c > " + canary.string() + " 'q\"";
  const fs::path list = WriteList(
      "tasks.jsonl",
      {R"({"kind": "upper", "arg": "hello"})", R"({"kind": "fail", "arg": "x"})",
       R"({"kind": "slow", "arg": "5"})", R"({"kind": "big", "arg": "5000"})",
       "{\"kind\": \"echo\", \"arg\": " + PackedToJson(Value::Str(hostile).packed()) + "}"});
  int port = 0;
  auto master = StartMaster({"--tasks", list.string(), "--results", (dir_ / "r.jsonl").string(),
                             "--max-attempts", "1", "--timeout", "20"},
                            &port);
  ASSERT_NE(port, 0);
  auto plain = StartWorker(port, {"--name", "plain"});  // no --exec: runs no command
  ASSERT_TRUE(master->WaitForLine("worker plain joined", kQuick, true));
  std::vector<std::unique_ptr<Process>> workers;
  workers.push_back(StartWorker(port, {"--kind", "upper", "--exec", "tr", "a-z", "A-Z"}));
  workers.push_back(
      StartWorker(port, {"--kind", "fail", "--exec", "sh", "-c", "echo oops >&2; exit 3"}));
  workers.push_back(
      StartWorker(port, {"--kind", "slow", "--task-timeout", "0.3", "--exec", "sleep", "{}"}));
  workers.push_back(StartWorker(
      port, {"--kind", "big", "--max-output", "1K", "--exec", "head", "-c", "{}", "/dev/zero"}));
  workers.push_back(StartWorker(port, {"--kind", "echo", "--exec", "echo", "{}"}));
  ASSERT_EQ(master->Wait(kSlow), kExitTasksFailed) << master->out() << master->err();
  std::map<std::string, std::string> r;
  for (const std::string& line : Lines(dir_ / "r.jsonl")) r[Field(line, "kind")] = line;
  EXPECT_EQ(Field(r["upper"], "value"), "HELLO") << r["upper"];
  EXPECT_NE(Field(r["fail"], "error").find("exited with code 3: oops"), std::string::npos)
      << r["fail"];
  EXPECT_NE(Field(r["slow"], "error").find("time limit"), std::string::npos) << r["slow"];
  EXPECT_NE(Field(r["big"], "error").find("more than 1024 bytes"), std::string::npos) << r["big"];
  EXPECT_EQ(Field(r["echo"], "value"), hostile) << "passed literally, not through a shell";
  EXPECT_FALSE(fs::exists(canary));
  for (const std::string& line : Lines(dir_ / "r.jsonl"))
    EXPECT_NE(Field(line, "worker"), "plain") << line;
  EXPECT_EQ(plain->CountLines("run task"), 0) << plain->out();
}

TEST_F(WorkTest, AWorkerWithoutExecNeverRunsCommandsAndTheMasterSaysWhy) {
  const fs::path list = WriteList("tasks.txt", {"exec hello"});
  int port = 0;
  // --workers 1: the master says why once a worker is connected, and its
  // --timeout counts from then, so a worker slow to start on a busy machine
  // cannot leave it nothing to say.
  auto master =
      StartMaster({"--tasks", list.string(), "--timeout", "1.5", "--workers", "1"}, &port);
  ASSERT_NE(port, 0);
  auto plain = StartWorker(port, {"--name", "plain"});
  EXPECT_EQ(master->Wait(kQuick), kExitTimeout) << master->out() << master->err();
  EXPECT_NE(master->err().find(
                "tasks of kind 'exec' wait in queue 'tasks': no connected worker runs them "
                "(a worker runs commands only when started with --exec)"),
            std::string::npos)
      << master->err();
  EXPECT_EQ(plain->CountLines("run task"), 0);
}

TEST_F(WorkTest, TaskListsTakeBothFormsAndReportBadLinesByNumber) {
  const fs::path list =
      WriteList("tasks.txt", {
                                 R"({"kind": "square", "arg": 12})",
                                 "square 7",
                                 R"({"kind": "square", "arg": )",  // line 3: cut short
                                 "",
                                 "# a comment",
                                 R"({"arg": 3})",  // line 6: no kind
                                 "sleep 10",
                                 R"({"kind": "sleep", "arg": 20, "timeout": 5})",
                             });
  int port = 0;
  auto master =
      StartMaster({"--tasks", list.string(), "--results", (dir_ / "r.jsonl").string()}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port);
  EXPECT_EQ(master->Wait(kSlow), kExitUsage) << master->out() << master->err();
  EXPECT_NE(master->err().find("tasks.txt:3: "), std::string::npos) << master->err();
  EXPECT_NE(master->err().find("tasks.txt:6: a JSON task needs \"kind\""), std::string::npos)
      << master->err();
  EXPECT_NE(master->err().find("2 input line(s) were not tasks"), std::string::npos)
      << master->err();
  std::map<std::string, std::string> r = ByArg(dir_ / "r.jsonl");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(Field(r["12"], "value"), "144");
  EXPECT_EQ(Field(r["7"], "value"), "49");
  EXPECT_EQ(Field(r["10"], "value"), "10");
  EXPECT_EQ(Field(r["20"], "ok"), "true");
}

TEST_F(WorkTest, LargeJobsShowProgressAndASummaryPerWorker) {
  int port = 0;
  auto master = StartMaster({"--square", "3000"}, &port);
  ASSERT_NE(port, 0);
  auto w1 = StartWorker(port, {"--name", "one", "--quiet"});
  auto w2 = StartWorker(port, {"--name", "two", "--quiet"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  EXPECT_EQ(master->CountLines("^Put task"), 0) << "past 1000 tasks, no line per task";
  EXPECT_EQ(master->CountLines("^Result:"), 0);
  EXPECT_TRUE(master->WaitForLine(R"(^progress: 3000/3000 done, 0 failed, \d+ tasks/s)",
                                  milliseconds(0), true))
      << master->err();
  EXPECT_TRUE(master->WaitForLine(R"(^Done: 3000 of 3000 tasks in .* 0 failed$)", milliseconds(0)))
      << master->out();
  // Who did how much depends on who connected first; together, all of it.
  std::istringstream out(master->out());
  std::string line;
  int tasks = 0;
  std::smatch m;
  const std::regex worker_line(R"(^  (one|two) +(\d+) tasks, 0 failed, .* busy$)");
  while (std::getline(out, line))
    if (std::regex_match(line, m, worker_line)) tasks += std::stoi(m[2]);
  EXPECT_EQ(tasks, 3000) << master->out();
}

TEST_F(WorkTest, JsonGivesTheSummaryAsOneLine) {
  int port = 0;
  auto master = StartMaster({"--square", "20", "--json"}, &port);
  ASSERT_NE(port, 0);
  auto worker = StartWorker(port, {"--name", "solo"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  std::istringstream out(master->out());
  std::string line, json;
  while (std::getline(out, line))
    if (!line.empty() && line[0] == '{') json = line;
  ASSERT_FALSE(json.empty()) << master->out();
  EXPECT_EQ(Field(json, "done"), "20");
  EXPECT_EQ(Field(json, "failed"), "0");
  EXPECT_NE(json.find("\"name\": \"solo\""), std::string::npos) << json;
  EXPECT_EQ(master->CountLines("^Result:"), 0);
}

}  // namespace
}  // namespace taskq::testing
