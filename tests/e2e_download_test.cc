// Downloads and the worker's --out directory, with the real binaries and the
// local web server (http_fixture.py): a bad --out stops a worker at start,
// --skip-existing reports only a file of the same URL, the same URL twice is
// fetched once, and what a killed worker left is removed by the next one.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "client/exit_codes.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"

namespace taskq::testing {
namespace {

namespace fs = std::filesystem;

class DownloadE2eTest : public WebE2eTest {
 protected:
  DownloadE2eTest() : WebE2eTest("taskq-download") {}
  // A download job of urls run to its end by one worker started with
  // worker_args; returns the lines of its --results.
  std::vector<std::string> RunJob(const std::vector<std::string>& urls,
                                  const std::vector<std::string>& worker_args) {
    ++jobs_;  // a results file per job: each run's own outcomes
    const fs::path list = dir_ / "urls.txt",
                   results = dir_ / ("results-" + std::to_string(jobs_) + ".jsonl");
    {
      std::ofstream f(list);
      for (const std::string& u : urls) f << u << "\n";
    }
    int port = 0;
    auto master = StartMaster({"--download", list.string(), "--results", results.string()}, &port);
    EXPECT_NE(port, 0);
    auto worker = StartWorker(port, worker_args);
    EXPECT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err() << worker->err();
    return Lines(results);
  }
  // Names in --out, temporary files included.
  std::vector<std::string> Saved() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(out_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  // The temporary file the worker with this pid is writing ("" if none).
  std::string PartOf(pid_t pid) {
    for (const std::string& name : Saved())
      if (name.starts_with(".taskq-") &&
          name.find("-" + std::to_string(pid) + "-") != std::string::npos)
        return name;
    return "";
  }

  int jobs_ = 0;
};

TEST_F(DownloadE2eTest, AWorkerWithABadOutExitsTwoAtStartAndSaysWhy) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  std::ofstream(dir_ / "downloads.txt") << "not a directory";
  const std::vector<std::pair<fs::path, std::string>> cases = {
      {dir_ / "downloads.txt",
       "is not a directory; give a directory to save downloads in (it is created if missing)"},
      {dir_ / "downloads.txt" / "sub",
       "cannot be created (Not a directory); give a directory this worker can write in"}};
  for (const auto& [out, says] : cases) {
    auto worker = StartWorker(port, {"--out", out.string()});
    EXPECT_EQ(worker->Wait(kQuick), kExitUsage) << worker->out() << worker->err();
    EXPECT_NE(worker->err().find("task_worker: --out " + out.string() + " " + says),
              std::string::npos)
        << worker->err();
    EXPECT_EQ(worker->CountLines("^Connect to server"), 0) << "it stops before connecting";
  }
  EXPECT_EQ(master->err().find("joined"), std::string::npos) << master->err();
}

TEST_F(DownloadE2eTest, WithoutOutAWorkerThatCannotUseTheDefaultRunsTheRest) {
  int port = 0;
  auto master = StartMaster({"--serve"}, &port);
  ASSERT_NE(port, 0);
  // ./downloads, the default --out, is a file where this worker starts.
  std::ofstream(dir_ / "downloads") << "not a directory";
  auto worker =
      Process::Start({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" --server \"$2\" --name plain",
                      dir_.string(), WorkerBin(), "127.0.0.1:" + std::to_string(port)},
                     {"TASKQ_AUTHKEY=" + key_});
  ASSERT_TRUE(worker);
  EXPECT_TRUE(master->WaitForLine("worker plain joined", kQuick, true)) << worker->err();
  EXPECT_TRUE(worker->WaitForLine(
      "^task_worker: not taking downloads: --out downloads is not a directory", kQuick, true))
      << worker->err();
  EXPECT_TRUE(worker->Running());
}

TEST_F(DownloadE2eTest, SkipExistingReturnsEachUrlsOwnFileAndHash) {
  StartWeb();
  // The fixture answers each path (query included) with the path itself.
  const std::vector<std::string> paths = {"/same", "/same", "/same?v=2", "/img_000.jpg",
                                          "/sub/img_000.jpg"};
  std::vector<std::string> urls;
  for (const std::string& p : paths) urls.push_back(base_ + p);
  RunJob(urls, {"--out", out_.string(), "-j", "1"});
  EXPECT_EQ(Saved(), (std::vector<std::string>{"img_000 (1).jpg", "img_000.jpg", "same", "same (1)",
                                               "same (2)"}));
  const int fetched = web_->CountLines("^GET ");
  EXPECT_EQ(fetched, 5);

  // Again, in the other order and several at once: every URL is found.
  std::reverse(urls.begin(), urls.end());
  const std::vector<std::string> lines =
      RunJob(urls, {"--out", out_.string(), "--skip-existing", "-j", "4"});
  ASSERT_EQ(lines.size(), urls.size());
  for (const std::string& line : lines) {
    const std::string url = Field(line, "arg"), value = Field(line, "value");
    const std::string body = url.substr(base_.size());
    EXPECT_EQ(Field(value, "url"), url) << line;
    EXPECT_EQ(Field(value, "skipped"), "true") << line;
    EXPECT_EQ(Field(value, "sha256"), Sha256Hex(body)) << "another URL's file: " << line;
    EXPECT_EQ(Field(value, "bytes"), std::to_string(body.size())) << line;
    EXPECT_EQ(ReadFile(Field(value, "path")), body) << line;
  }
  EXPECT_EQ(web_->CountLines("^GET "), fetched) << "nothing fetched again\n" << web_->out();
}

TEST_F(DownloadE2eTest, AFilePutThereByHandIsKeptAndNeverReportedAsADownload) {
  StartWeb();
  fs::create_directories(out_);
  std::ofstream(out_ / "keep.txt") << "mine";
  const std::string url = base_ + "/keep.txt";
  const std::vector<std::string> first = RunJob({url}, {"--out", out_.string(), "--skip-existing"});
  const std::vector<std::string> second =
      RunJob({url}, {"--out", out_.string(), "--skip-existing"});
  // Nothing says which URL "mine" came from: it stays, and the download
  // goes beside it, once.
  EXPECT_EQ(ReadFile(out_ / "keep.txt"), "mine");
  EXPECT_EQ(ReadFile(out_ / "keep (1).txt"), "/keep.txt");
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(Field(Field(first[0], "value"), "skipped"), "") << first[0];
  EXPECT_EQ(Field(Field(second[0], "value"), "skipped"), "true") << second[0];
  EXPECT_EQ(Field(Field(second[0], "value"), "path"), (out_ / "keep (1).txt").string());
  EXPECT_EQ(web_->CountLines("^GET /keep.txt$"), 1);
}

TEST_F(DownloadE2eTest, TheSameUrlTwiceIsFetchedOnceWithSkipExisting) {
  StartWeb();
  // Slow enough that both tasks of the same URL run at once.
  const std::string twice = base_ + "/slow/300/twice";
  const std::vector<std::string> lines =
      RunJob({twice, twice, base_ + "/data/10/other.txt"},
             {"--out", out_.string(), "--skip-existing", "-j", "4"});
  EXPECT_EQ(Saved(), (std::vector<std::string>{"other.txt", "twice"}));
  EXPECT_EQ(web_->CountLines("^GET /slow/300/twice$"), 1) << web_->out();
  std::vector<std::string> values;
  for (const std::string& line : lines)
    if (Field(line, "arg") == twice) values.push_back(Field(line, "value"));
  ASSERT_EQ(values.size(), 2u);
  for (const std::string& v : values) {
    EXPECT_EQ(Field(v, "path"), (out_ / "twice").string()) << v;
    EXPECT_EQ(Field(v, "sha256"), Sha256Hex("slow twice")) << v;
  }
}

TEST_F(DownloadE2eTest, WorkersSharingAnOutNeverTakeEachOthersFiles) {
  StartWeb();
  // Twenty URLs, one file name, two workers of eight threads each.
  const fs::path list = dir_ / "urls.txt", results = dir_ / "results.jsonl";
  {
    std::ofstream f(list);
    for (int i = 0; i < 20; ++i) f << base_ << "/" << i << "/same\n";
  }
  int port = 0;
  auto master = StartMaster(
      {"--download", list.string(), "--results", results.string(), "--workers", "2"}, &port);
  ASSERT_NE(port, 0);
  auto one = StartWorker(port, {"--out", out_.string(), "-j", "8"});
  auto two = StartWorker(port, {"--out", out_.string(), "-j", "8"});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  std::set<std::string> paths;
  for (const std::string& line : Lines(results)) {
    const std::string value = Field(line, "value");
    const std::string body = Field(line, "arg").substr(base_.size());
    EXPECT_EQ(ReadFile(Field(value, "path")), body) << line;
    paths.insert(Field(value, "path"));
  }
  EXPECT_EQ(paths.size(), 20u);
  EXPECT_EQ(Saved().size(), 20u) << "no temporary file left behind";
}

TEST_F(DownloadE2eTest, AWorkerThatCannotWriteItsOutIsBenchedAndAnotherDoesTheWork) {
  StartWeb();
  const fs::path list = dir_ / "urls.txt", results = dir_ / "results.jsonl";
  {
    std::ofstream f(list);
    for (int i = 0; i < 10; ++i) f << base_ << "/data/100/f" << i << "\n";
  }
  int port = 0;
  auto master = StartMaster(
      {"--download", list.string(), "--results", results.string(), "--workers", "2"}, &port);
  ASSERT_NE(port, 0);
  const fs::path broken = dir_ / "broken";
  auto bad = StartWorker(port, {"--name", "bad", "--out", broken.string()});
  ASSERT_TRUE(master->WaitForLine("worker bad joined", kQuick, true)) << bad->err();
  // Its --out goes away after its check at start (the job waits for two
  // workers): every download it takes fails because of the worker.
  fs::remove_all(broken);
  std::ofstream(broken) << "now a file";
  auto good = StartWorker(port, {"--name", "good", "--out", out_.string()});
  ASSERT_EQ(master->Wait(kSlow), kExitOk) << master->out() << master->err();
  const std::vector<std::string> lines = Lines(results);
  EXPECT_EQ(lines.size(), 10u);
  for (const std::string& line : lines) {
    EXPECT_EQ(Field(line, "ok"), "true") << line;
    EXPECT_EQ(Field(line, "worker"), "good") << line;
  }
  EXPECT_NE(master->err().find("worker bad benched"), std::string::npos) << master->err();
}

TEST_F(DownloadE2eTest, AKilledWorkersPartFileIsRemovedAtTheNextStartALiveWorkersIsNot) {
  StartWeb();
  // Two jobs, so each worker holds one download that does not end.
  int port_k = 0, port_l = 0;
  auto master_k = StartMaster({base_ + "/slow/60000/k", "--timeout", "120"}, &port_k);
  auto master_l = StartMaster({base_ + "/slow/60000/l", "--timeout", "120"}, &port_l);
  ASSERT_TRUE(port_k != 0 && port_l != 0);
  auto killed = StartWorker(port_k, {"--out", out_.string()});
  auto live = StartWorker(port_l, {"--out", out_.string()});
  // A request reaches the server only after its temporary file is made.
  ASSERT_TRUE(web_->WaitForLine("^GET /slow/60000/k$", kQuick)) << killed->err();
  ASSERT_TRUE(web_->WaitForLine("^GET /slow/60000/l$", kQuick)) << live->err();
  const std::string killed_part = PartOf(killed->pid()), live_part = PartOf(live->pid());
  ASSERT_FALSE(killed_part.empty() || live_part.empty()) << ::testing::PrintToString(Saved());

  killed->Signal(SIGKILL);
  ASSERT_EQ(killed->Wait(kQuick), 128 + SIGKILL);  // reaped: its PID runs nothing now
  ASSERT_TRUE(fs::exists(out_ / killed_part)) << "kill -9 leaves it behind";
  auto next = StartWorker(port_l, {"--out", out_.string()});
  ASSERT_TRUE(next->WaitForLine("^Connect to server", kQuick)) << next->err();
  EXPECT_FALSE(fs::exists(out_ / killed_part));
  EXPECT_TRUE(fs::exists(out_ / live_part)) << "a running worker's download is left alone";
  EXPECT_EQ(
      next->CountLines("^Removed 1 unfinished download\\(s\\) that a stopped worker left in "), 1)
      << next->out();
  EXPECT_TRUE(live->Running());
}

}  // namespace
}  // namespace taskq::testing
