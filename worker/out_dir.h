// OutDir: the directory downloads are saved in (task_worker --out), and the
// rules that keep it truthful when several threads, worker processes and
// hosts share it:
//  - a body is written under a temporary name, ".taskq-HOST-PID-RANDOM.part",
//    and renamed when complete, never over an existing file: a final name
//    never holds a partial body, and nobody's file is replaced;
//  - every file records the URL it came from in the extended attribute
//    "user.taskq.url", set on the temporary file before the rename, so a file
//    never has its final name without its URL (nothing to lock, no separate
//    manifest to keep in step). --skip-existing trusts only that record: a
//    file without one (put there by hand, or by an older taskq) is never
//    taken for a download, nor ever replaced;
//  - the temporary files of a worker that was killed are removed by the next
//    worker that starts on the same directory (RemoveStaleParts).
//
// Every failure reported here is about this worker's disk, not about a task.
//
// Thread: Check and RemoveStaleParts at start, before any download; the
// rest from any thread at once.
#ifndef TASKQ_WORKER_OUT_DIR_H_
#define TASKQ_WORKER_OUT_DIR_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proto/status.h"

namespace taskq {

// An open file descriptor, closed by the destructor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  // Gives up ownership: the caller closes it.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// A download being written: a temporary file in the directory, removed by
// the destructor unless OutDir::Keep renamed it.
class PartFile {
 public:
  PartFile(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  PartFile(PartFile&& o) noexcept = default;
  ~PartFile();
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  friend class OutDir;
  std::string path_;  // empty once kept
  Fd fd_;
};

// A file saved earlier for a URL, open for reading.
struct SavedFile {
  std::string path;
  Fd fd;
};

class OutDir {
 public:
  // A temporary file that nobody has written to for this long is abandoned,
  // whoever made it (see RemoveStaleParts).
  static constexpr std::chrono::hours kAbandonedAfter{24};

  explicit OutDir(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // Whether downloads can be saved here: the directory exists (made now if
  // create; without create, a missing one passes if it could be made) and
  // this process can create and remove a file in it; with need_records, its
  // file system also keeps extended attributes. The error (Code::kInvalid)
  // is a sentence naming --out, the path and what to do.
  [[nodiscard]] Status Check(bool create, bool need_records) const;

  // Removes the temporary files that workers which are gone left behind:
  // those matching the pattern, last written before started, and made by a
  // process of this host that no longer runs (or by this very process id: a
  // restarted container reuses its PID), or untouched for kAbandonedAfter
  // (another host's, or an older taskq's, whose owner cannot be asked).
  // A temporary file of a worker still running is never removed. Returns
  // how many were removed.
  int RemoveStaleParts(std::chrono::system_clock::time_point started) const;

  // Makes the directory if missing and a new empty temporary file in it
  // that records url. Without need_records, a file system that keeps no
  // extended attributes is accepted (the file then records nothing).
  [[nodiscard]] Result<PartFile> CreatePart(std::string_view url, bool need_records) const;

  // Closes part and renames it to name, or to "stem (1).ext", "stem (2).ext"...
  // if taken; returns the path used.
  [[nodiscard]] Result<std::string> Keep(PartFile& part, const std::string& name) const;

  // The file saved earlier for url under name: the first of name,
  // "stem (1).ext", ... (up to the first that does not exist) that records
  // url. Never a file that records another URL or none.
  std::optional<SavedFile> Find(const std::string& name, std::string_view url) const;

 private:
  // For a directory that does not exist: whether it could be made.
  Status CheckCanBeMade() const;

  std::string path_;
};

// What the extended attribute holds for url: the URL itself, or for one over
// 1 KiB (too long for some file systems' attribute space) "sha256:" and its
// hash in hex.
std::string UrlRecord(std::string_view url);

// The name of a new temporary file: ".taskq-HOST-PID-RANDOM.part".
std::string NewPartName();

}  // namespace taskq

#endif  // TASKQ_WORKER_OUT_DIR_H_
