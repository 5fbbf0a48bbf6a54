// FileMedium: the journal's segments as files in a data dir
// (task_master --data-dir), with the --fsync modes.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "master/journal_medium.h"
#include "master/journal_records.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

Status WriteAll(int fd, const std::string& bytes, const std::string& where) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return JournalIo("cannot write the journal in " + where);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

FileMedium::FileMedium(std::string dir, FsyncMode fsync, std::chrono::milliseconds fsync_interval)
    : dir_(std::move(dir)), where_(dir_), fsync_(fsync), fsync_interval_(fsync_interval) {
  if (fsync_ == FsyncMode::kInterval) sync_thread_ = std::thread([this] { SyncLoop(); });
}

FileMedium::~FileMedium() {
  if (sync_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(fd_mu_);
      stop_sync_ = true;
    }
    sync_cv_.notify_all();
    sync_thread_.join();
  }
  if (fd_ >= 0) {
    if (fsync_ != FsyncMode::kNever) fdatasync(fd_);
    close(fd_);
  }
  if (lock_fd_ >= 0) close(lock_fd_);
}

// One master per data dir: a second one would interleave its records.
// Task arguments and results are the user's data: a data dir the master
// makes is 0700 and its files 0600 (README, "Security"). One that exists
// keeps the mode its owner gave it; its parents follow the umask.
Status FileMedium::Lock() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) {
    fs::path dir(dir_);
    if (!dir.has_filename()) dir = dir.parent_path();  // "state/" is "state"
    const fs::path parent = dir.parent_path();
    ec.clear();  // is_directory's "no such file" is the case handled here
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec || (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST))
      return Status::Error(Code::kIo, "cannot create the data dir " + dir_ + ": " +
                                          (ec ? ec.message() : std::strerror(errno)));
  }
  const std::string path = dir_ + "/LOCK";
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return JournalIo("cannot open " + path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Error(Code::kIo, "another task_master is using the data dir " + dir_);
    return JournalIo("cannot lock " + path);
  }
  return Status::Ok();
}

// The segments in DIR, oldest first; damaged ones set aside go in set_aside.
Status FileMedium::List(std::vector<MediumSegment>* segments, std::vector<std::string>* set_aside) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("damaged-", 0) == 0 && e.path().extension() == ".tqj")
      set_aside->push_back(e.path().string());
    unsigned long long seq;
    if (std::sscanf(name.c_str(), "journal-%16llu.", &seq) != 1) continue;
    if (name == SegmentName("journal", seq) + ".new") {  // a segment whose header never got written
      std::error_code ignored;
      fs::remove(e.path(), ignored);
      continue;
    }
    if (name != SegmentName("journal", seq)) continue;
    segments->push_back(MediumSegment{seq, e.path().string()});
  }
  if (ec) return Status::Error(Code::kIo, "cannot read the data dir " + dir_ + ": " + ec.message());
  std::sort(segments->begin(), segments->end(),
            [](const MediumSegment& a, const MediumSegment& b) { return a.seq < b.seq; });
  std::sort(set_aside->begin(), set_aside->end());
  return Status::Ok();
}

Status FileMedium::Read(const MediumSegment& seg, std::string* data) {
  std::ifstream in(seg.name, std::ios::binary | std::ios::ate);
  if (!in) return JournalIo("cannot read " + seg.name);
  data->resize(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  if (!in.read(data->data(), static_cast<std::streamsize>(data->size())))
    return JournalIo("cannot read " + seg.name);
  return Status::Ok();
}

Status FileMedium::CutTail(const MediumSegment& seg, uint64_t at) {
  if (truncate(seg.name.c_str(), static_cast<off_t>(at)) != 0)
    return JournalIo("cannot truncate " + seg.name);
  return Status::Ok();
}

// The header is written and on disk before the segment gets its name, so a
// segment file always says which ids it follows (a crash in between leaves
// a ".new" file, removed at the next start).
Result<MediumSegment> FileMedium::Start(uint64_t seq, const std::string& header) {
  const std::string path = dir_ + "/" + SegmentName("journal", seq);
  const std::string temp = path + ".new";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return JournalIo("cannot create " + temp);
  if (write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size()) ||
      fdatasync(fd) != 0 || rename(temp.c_str(), path.c_str()) != 0) {
    const Status s = JournalIo("cannot start the journal segment " + path);
    close(fd);
    unlink(temp.c_str());
    return s;
  }
  SyncDir();
  int old = -1;
  {
    std::lock_guard<std::mutex> lock(fd_mu_);
    old = fd_;
    fd_ = fd;
  }
  head_bytes_ = header.size();
  if (old >= 0) {
    // Everything in the old segment reaches the disk before it is left.
    const bool synced = fsync_ == FsyncMode::kNever || fdatasync(old) == 0;
    close(old);
    if (!synced) return JournalIo("cannot sync the journal in " + dir_);
  }
  return MediumSegment{seq, path};
}

// The directory's entries (a new or deleted segment) survive a crash too.
void FileMedium::SyncDir() {
  const int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

Status FileMedium::Health() {
  if (const int e = sync_errno_.load(); e != 0) {
    errno = e;
    return JournalIo("cannot sync the journal in " + dir_);
  }
  return Status::Ok();
}

Status FileMedium::Append(const std::string& bytes) {
  TASKQ_TRY(Health());
  if (Status s = WriteAll(fd_, bytes, dir_); !s.ok()) {
    // Cut off what part of the write went through: a later start must not
    // take it for a record a crash interrupted and drop what follows.
    [[maybe_unused]] const int cut = ftruncate(fd_, static_cast<off_t>(head_bytes_));
    return s;
  }
  head_bytes_ += bytes.size();
  const uint64_t written = written_.fetch_add(bytes.size()) + bytes.size();
  if (fsync_ == FsyncMode::kAlways) {
    if (fdatasync(fd_) != 0) return JournalIo("cannot sync the journal in " + dir_);
    synced_ = written;
  } else {
    sync_cv_.notify_one();
  }
  return Status::Ok();
}

Status FileMedium::Sync() {
  std::lock_guard<std::mutex> lock(fd_mu_);
  if (fd_ >= 0 && fdatasync(fd_) != 0) return JournalIo("cannot sync the journal in " + dir_);
  return Status::Ok();
}

void FileMedium::SyncLoop() {
  std::unique_lock<std::mutex> lock(fd_mu_);
  while (!stop_sync_) {
    sync_cv_.wait_for(lock, fsync_interval_);
    const uint64_t written = written_.load();
    if (written == synced_.load() || fd_ < 0) continue;
    // Group commit: one fdatasync covers every write since the last one.
    // A failure is kept for the loop: on Linux the pages it could not write
    // are no longer dirty, so a later sync would not report it.
    if (fdatasync(fd_) != 0) sync_errno_ = errno;
    synced_ = written;
    // Wait out the interval: syncing more often than asked only costs.
    sync_cv_.wait_for(lock, fsync_interval_, [this] { return stop_sync_; });
  }
}

Status FileMedium::Retire(const MediumSegment& seg, bool damaged) {
  if (damaged) {
    TASKQ_TRY(SetAside(seg));
  } else if (unlink(seg.name.c_str()) != 0) {
    return JournalIo("cannot delete " + seg.name);
  }
  SyncDir();
  return Status::Ok();
}

// A damaged segment's bytes are kept for whoever wants to look at them (or
// salvage what this version could not read), under a name no start reads.
Status FileMedium::SetAside(const MediumSegment& seg) {
  const std::string base = dir_ + "/" + SegmentName("damaged", seg.seq);
  std::string target = base;
  for (int n = 2; fs::exists(target); ++n)
    target = base.substr(0, base.size() - 4) + "-" + std::to_string(n) + ".tqj";
  if (rename(seg.name.c_str(), target.c_str()) != 0)
    return JournalIo("cannot rename " + seg.name + " to " + target);
  return Status::Ok();
}

}  // namespace taskq
