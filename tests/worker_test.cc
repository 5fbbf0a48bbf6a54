// The worker's pieces on their own: file names for downloads, the --out
// directory, commands.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>

#include "proto/msgpack_reader.h"
#include "tests/e2e_util.h"
#include "tests/temp_dir.h"
#include "worker/download_handler.h"
#include "worker/exec_handler.h"
#include "worker/file_names.h"
#include "worker/out_dir.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

TEST(SafeFileName, KeepsTheLastSegmentAndNothingDangerous) {
  EXPECT_EQ(SafeFileName("http://h/a/b/photo.jpg"), "photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/photo.jpg?size=large#top"), "photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/my%20photo.jpg"), "my photo.jpg");
  EXPECT_EQ(SafeFileName("http://h/../../etc/passwd"), "passwd");
  EXPECT_EQ(SafeFileName("http://h/..%2F..%2Fetc%2Fpasswd"), "passwd");
  EXPECT_EQ(SafeFileName("http://h/%2e%2e"), "download");
  EXPECT_EQ(SafeFileName("http://h/.."), "download");
  EXPECT_EQ(SafeFileName("http://h/"), "download");
  EXPECT_EQ(SafeFileName("http://h"), "download");
  EXPECT_EQ(SafeFileName("http://h/.hidden"), "hidden");
  EXPECT_EQ(SafeFileName("http://h/a%5Cb"), "b");
  EXPECT_EQ(SafeFileName("http://h/bell%07%0a.txt"), "bell__.txt");
  EXPECT_EQ(SafeFileName("http://h/trailing.. "), "trailing");
  const std::string longname = SafeFileName("http://h/" + std::string(300, 'x') + ".png");
  EXPECT_EQ(longname.size(), 200u);
  EXPECT_EQ(longname.substr(196), ".png");
}

TEST(RenameUnique, NeverOverwrites) {
  const std::string dir = testing::MakeTempDir("taskq-names");
  ASSERT_FALSE(dir.empty());
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    const std::string temp = dir + "/.t" + std::to_string(i);
    std::ofstream(temp) << i;
    Result<std::string> p = RenameUnique(temp, dir, "a.txt");
    ASSERT_TRUE(p.ok()) << p.status().message();
    got.push_back(fs::path(*p).filename().string());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"a.txt", "a (1).txt", "a (2).txt"}));
  std::ifstream first(dir + "/a.txt");
  std::string content;
  first >> content;
  EXPECT_EQ(content, "0");
  fs::remove_all(dir);
}

TEST(NumberedName, NumbersBeforeTheExtension) {
  EXPECT_EQ(NumberedName("a.txt", 0), "a.txt");
  EXPECT_EQ(NumberedName("a.txt", 2), "a (2).txt");
  EXPECT_EQ(NumberedName("same", 1), "same (1)");
}



// The fields of a download's result, as text.
std::map<std::string, std::string> Fields(const Value& v) {
  std::map<std::string, std::string> out;
  MsgpackReader r(v.packed());
  uint32_t n = 0;
  if (!r.ReadMapHeader(&n)) return out;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view k, raw;
    r.ReadStr(&k);
    r.Skip(&raw);
    out[std::string(k)] = Value::FromTrusted(raw).ToText();
  }
  return out;
}

class OutDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir("taskq-outdir");
    ASSERT_FALSE(root_.empty());
    dir_ = root_ + "/out";
  }
  void TearDown() override { fs::remove_all(root_); }

  // Saves body as a download of url would: returns the path it got.
  std::string Save(const std::string& url, const std::string& body) {
    OutDir out(dir_);
    Result<PartFile> part = out.CreatePart(url, /*need_records=*/true);
    EXPECT_TRUE(part.ok()) << part.status().message();
    if (!part.ok()) return "";
    EXPECT_EQ(write(part->fd(), body.data(), body.size()), static_cast<ssize_t>(body.size()));
    Result<std::string> path = out.Keep(*part, SafeFileName(url));
    EXPECT_TRUE(path.ok()) << path.status().message();
    return path.ok() ? *path : "";
  }
  std::string Found(const std::string& url) {
    std::optional<SavedFile> f = OutDir(dir_).Find(SafeFileName(url), url);
    return f ? fs::path(f->path).filename().string() : "(none)";
  }
  std::vector<std::string> Listing() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string root_, dir_;
};

TEST_F(OutDirTest, CheckNamesTheFlagThePathAndWhatToDo) {
  std::ofstream(root_ + "/file.txt") << "x";
  Status s = OutDir(root_ + "/file.txt").Check(true, false);
  EXPECT_EQ(s.message(), "--out " + root_ +
                             "/file.txt is not a directory; give a directory to save downloads in "
                             "(it is created if missing)");
  s = OutDir(root_ + "/file.txt/sub").Check(true, false);
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_NE(s.message().find("--out " + root_ + "/file.txt/sub cannot be created"),
            std::string::npos)
      << s.message();
  s = OutDir(root_ + "/file.txt/sub").Check(false, false);
  EXPECT_NE(s.message().find("is not a directory"), std::string::npos) << s.message();
}

TEST_F(OutDirTest, CheckMakesTheDirectoryOnlyWhenAskedAndLeavesNothingInIt) {
  ASSERT_TRUE(OutDir(dir_ + "/a/b").Check(/*create=*/false, true).ok());
  EXPECT_FALSE(fs::exists(dir_)) << "checked, not made: a worker that never downloads makes none";
  Status s = OutDir(dir_ + "/a/b").Check(/*create=*/true, /*need_records=*/true);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(fs::is_directory(dir_ + "/a/b"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/a/b")) << "the probe file is removed";
}

TEST_F(OutDirTest, FindReturnsOnlyTheFileOfTheSameUrl) {
  const std::string h = "http://h";
  EXPECT_EQ(fs::path(Save(h + "/same", "A")).filename(), "same");
  EXPECT_EQ(fs::path(Save(h + "/same", "A again")).filename(), "same (1)");
  EXPECT_EQ(fs::path(Save(h + "/same?v=2", "B")).filename(), "same (2)");
  EXPECT_EQ(fs::path(Save(h + "/img_000.jpg", "C")).filename(), "img_000.jpg");
  EXPECT_EQ(fs::path(Save(h + "/sub/img_000.jpg", "D")).filename(), "img_000 (1).jpg");
  EXPECT_EQ(Found(h + "/same"), "same");
  EXPECT_EQ(Found(h + "/same?v=2"), "same (2)");
  EXPECT_EQ(Found(h + "/img_000.jpg"), "img_000.jpg");
  EXPECT_EQ(Found(h + "/sub/img_000.jpg"), "img_000 (1).jpg");
  EXPECT_EQ(Found(h + "/x/same"), "(none)") << "same name, another URL";
  EXPECT_EQ(Found("https://h/same"), "(none)");
  const std::string long_url = h + "/" + std::string(3000, 'q') + "/long";
  Save(long_url, "E");
  EXPECT_EQ(Found(long_url), "long");
  EXPECT_EQ(Found(h + "/" + std::string(3000, 'r') + "/long"), "(none)");
}

TEST_F(OutDirTest, AFileWithoutARecordIsNeverTakenForADownload) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/mine.txt") << "put there by hand";
  EXPECT_EQ(Found("http://h/mine.txt"), "(none)") << "nothing says which URL it came from";
  EXPECT_EQ(fs::path(Save("http://h/mine.txt", "A")).filename(), "mine (1).txt");
  EXPECT_EQ(testing::ReadFile(dir_ + "/mine.txt"), "put there by hand");
  EXPECT_EQ(Found("http://h/mine.txt"), "mine (1).txt");
}

// Touches path as last written age ago.
void Age(const std::string& path, std::chrono::seconds age) {
  const auto t = std::chrono::system_clock::now() - age;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  const timespec when = {static_cast<time_t>(ns.count() / 1000000000),
                         static_cast<long>(ns.count() % 1000000000)};
  const timespec both[2] = {when, when};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), both, 0), 0) << path;
}

pid_t DeadPid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST_F(OutDirTest, StalePartsOfGoneWorkersAreRemovedLiveOnesKept) {
  fs::create_directories(dir_);
  char host_buf[256] = "";
  gethostname(host_buf, sizeof host_buf - 1);
  const std::string host = host_buf;
  const std::string dead = std::to_string(DeadPid()), live = std::to_string(getppid());
  const std::string me = std::to_string(getpid());
  const std::map<std::string, std::chrono::seconds> parts = {
      {".taskq-" + host + "-" + dead + "-0123456789ab.part", std::chrono::seconds(60)},
      {".taskq-" + host + "-" + me + "-0123456789ab.part", std::chrono::seconds(60)},
      {".taskq-" + host + "-" + live + "-0123456789ab.part", std::chrono::seconds(60)},
      {".taskq-" + host + "-" + live + "-aaaaaaaaaaaa.part", std::chrono::hours(25)},
      {".taskq-elsewhere-42-0123456789ab.part", std::chrono::hours(1)},
      {".taskq-elsewhere-42-aaaaaaaaaaaa.part", std::chrono::hours(25)},
      {".taskq-0123456789ab.part", std::chrono::hours(1)},
      {".taskq-aaaaaaaaaaaa.part", std::chrono::hours(25)},
      {"photo.part", std::chrono::hours(25)},
      {".taskq-notes.txt", std::chrono::hours(25)},
  };
  for (const auto& [name, age] : parts) {
    std::ofstream(dir_ + "/" + name) << "x";
    Age(dir_ + "/" + name, age);
  }
  // Written after this worker started: never touched, whoever made it.
  std::ofstream(dir_ + "/.taskq-" + host + "-" + dead + "-ffffffffffff.part") << "x";
  const auto started = std::chrono::system_clock::now() - std::chrono::seconds(5);
  Age(dir_ + "/.taskq-" + host + "-" + dead + "-ffffffffffff.part", std::chrono::seconds(1));

  EXPECT_EQ(OutDir(dir_).RemoveStaleParts(started), 5);
  std::vector<std::string> kept = {
      ".taskq-0123456789ab.part",                            // an older taskq's, 1 hour old
      ".taskq-elsewhere-42-0123456789ab.part",               // another host's, 1 hour old
      ".taskq-" + host + "-" + dead + "-ffffffffffff.part",  // newer than this worker
      ".taskq-" + host + "-" + live + "-0123456789ab.part",  // its worker runs
      ".taskq-notes.txt",                                    // not a temporary file
      "photo.part",
  };
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(Listing(), kept);
}

TEST(NewPartName, NamesItsOwner) {
  const std::string name = NewPartName();
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const std::string owner = ".taskq-" + std::string(host) + "-" + std::to_string(getpid()) + "-";
  EXPECT_TRUE(name.starts_with(owner)) << name;
  EXPECT_TRUE(name.ends_with(".part")) << name;
  EXPECT_NE(name, NewPartName());
}

class DownloadTest : public OutDirTest {
 protected:
  RunOutcome Download(const std::string& url, bool skip_existing) {
    DownloadOptions o;
    o.out_dir = dir_;
    o.skip_existing = skip_existing;
    DownloadHandler h(o);
    Item task;
    task.kind = "download";
    task.arg = Value::Str(url);
    return h.Run(task, CancelToken(&cancelled_));
  }
  std::atomic<bool> cancelled_{false};
};

TEST_F(DownloadTest, SkipExistingReportsTheFileOfItsOwnUrlAsItIsNow) {
  const std::string h = "http://127.0.0.1:9";  // never reached: every file is there
  for (const std::string path : {"/same", "/same", "/same?v=2", "/img_000.jpg", "/sub/img_000.jpg"})
    Save(h + path, "body of " + path);
  for (const std::string path : {"/same?v=2", "/same", "/sub/img_000.jpg", "/img_000.jpg"}) {
    RunOutcome o = Download(h + path, /*skip_existing=*/true);
    ASSERT_TRUE(o.ok) << path << ": " << o.error;
    std::map<std::string, std::string> f = Fields(o.value);
    EXPECT_EQ(testing::ReadFile(f["path"]), "body of " + path) << f["path"];
    EXPECT_EQ(f["sha256"], testing::Sha256Hex("body of " + path)) << path;
    EXPECT_EQ(f["bytes"], std::to_string(("body of " + path).size()));
    EXPECT_EQ(f["skipped"], "true");
    EXPECT_EQ(f["url"], h + path);
  }
  // Changed since it was saved: the result is the file as it is.
  std::ofstream(dir_ + "/same (2)") << "edited";
  EXPECT_EQ(Fields(Download(h + "/same?v=2", true).value)["sha256"], testing::Sha256Hex("edited"));
}

TEST_F(DownloadTest, AnOutThatCannotBeWrittenIsTheWorkersFaultNotTheTasks) {
  std::ofstream(dir_) << "a file where the directory should be";
  RunOutcome o = Download("http://127.0.0.1:9/x", false);
  EXPECT_FALSE(o.ok);
  EXPECT_TRUE(o.worker_fault) << o.error;
  EXPECT_TRUE(o.retry);
  EXPECT_NE(o.error.find("--out " + dir_), std::string::npos) << o.error;
  o = Download("ftp://127.0.0.1/x", false);
  EXPECT_FALSE(o.worker_fault) << "a bad URL is the task's";
  EXPECT_FALSE(o.retry);
}

class ExecTest : public ::testing::Test {
 protected:
  RunOutcome Run(std::vector<std::string> argv, Value arg, std::chrono::milliseconds timeout = {},
                 std::size_t max_output = 1 << 20) {
    ExecHandler h(ExecOptions{std::move(argv), timeout, max_output});
    Item task;
    task.kind = "exec";
    task.arg = std::move(arg);
    return h.Run(task, CancelToken(&cancelled_));
  }
  std::atomic<bool> cancelled_{false};
};

TEST_F(ExecTest, OutputIsTheValueAndTheArgumentIsPassedLiterally) {
  RunOutcome o = Run({"echo", "[{}]"}, Value::Str("a b; $(x) `y` && z"));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.AsStr(), "[a b; $(x) `y` && z]");
  o = Run({"cat"}, Value::Str("from stdin"));
  EXPECT_EQ(o.value.AsStr(), "from stdin");
  o = Run({"cat"}, Value::Int(42));  // not a string: JSON
  EXPECT_EQ(o.value.AsStr(), "42");
}

TEST_F(ExecTest, FailuresSayWhy) {
  RunOutcome o = Run({"sh", "-c", "echo bad input >&2; exit 4"}, Value::Str(""));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, "the command exited with code 4: bad input");
  o = Run({"sleep", "10"}, Value::Str(""), std::chrono::milliseconds(200));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.error.find("time limit"), std::string::npos) << o.error;
  o = Run({"head", "-c", "3000", "/dev/zero"}, Value::Str(""), {}, 1000);
  EXPECT_FALSE(o.ok);
  EXPECT_FALSE(o.retry);
  EXPECT_NE(o.error.find("more than 1000 bytes"), std::string::npos) << o.error;
  o = Run({"/no/such/command"}, Value::Str(""));
  EXPECT_FALSE(o.ok);
  EXPECT_TRUE(o.worker_fault) << "another worker may have the command";
  EXPECT_TRUE(o.retry);
  EXPECT_NE(o.error.find("cannot run /no/such/command"), std::string::npos) << o.error;
  o = Run({"echo", "{}"}, Value::Str(std::string(200000, 'a')));
  EXPECT_FALSE(o.ok);
  EXPECT_FALSE(o.worker_fault) << "an argument too long is the task's: " << o.error;
  EXPECT_FALSE(o.retry);
}

TEST_F(ExecTest, WhatACommandLeavesRunningDoesNotHoldTheTask) {
  const auto start = std::chrono::steady_clock::now();
  RunOutcome o = Run({"sh", "-c", "sleep 30 & echo started"}, Value::Str(""));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.AsStr(), "started");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ExecTest, BinaryOutputStaysBinary) {
  RunOutcome o = Run({"printf", "\\377\\376"}, Value::Str(""));
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.value.type(), MsgType::kBin);
}

TEST(FindCommand, LooksOnThePath) {
  EXPECT_FALSE(FindCommand("sh").empty());
  EXPECT_TRUE(FindCommand("no-such-command-anywhere").empty());
  EXPECT_EQ(FindCommand("/bin/sh"), "/bin/sh");
}

}  // namespace
}  // namespace taskq
