#include "master/outcome_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "master/job_report.h"

namespace taskq {
namespace {

Status IoError(const std::string& what) {
  return Status::Error(Code::kIo, what + ": " + std::strerror(errno));
}

// Skips one JSON value at *pos (as OutcomeJson writes them: no limits on
// depth or size, unlike ParseJson, so every line it wrote reads back).
bool SkipJson(std::string_view s, std::size_t* pos) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = *pos; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) return *pos = i + 1, true;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return *pos = i, true;  // the end of the enclosing object
      if (--depth == 0) return *pos = i + 1, true;
    } else if (c == ',' && depth == 0) {
      return *pos = i, true;
    }
  }
  if (in_string || depth > 0) return false;
  *pos = s.size();
  return true;
}

bool Expect(std::string_view s, std::size_t* pos, std::string_view what) {
  if (s.substr(*pos, what.size()) != what) return false;
  *pos += what.size();
  return true;
}

// The "id" and "ok" of a line OutcomeJson wrote:
// {"id": N, "kind": "...", "arg": ARG, "ok": true|false, ...}; false if it
// is not one. A line without "ok" (an entry with no outcome) counts as ok.
bool ParseLine(std::string_view line, uint64_t* id, bool* ok) {
  std::size_t pos = 0;
  if (!Expect(line, &pos, "{\"id\": ")) return false;
  const std::size_t digits = pos;
  *id = 0;
  while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9')
    *id = *id * 10 + static_cast<uint64_t>(line[pos++] - '0');
  if (pos == digits || !Expect(line, &pos, ", \"kind\": ") || !SkipJson(line, &pos) ||
      !Expect(line, &pos, ", \"arg\": ") || !SkipJson(line, &pos))
    return false;
  *ok = !Expect(line, &pos, ", \"ok\": false");
  return true;
}

bool SyncParent(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

}  // namespace

OutcomeFile::~OutcomeFile() {
  if (fd_ >= 0) {
    (void)Sync(false);
    close(fd_);
  }
}

Status OutcomeFile::Open(const std::string& path, bool resume) {
  path_ = path;
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC);
  fd_ = open(path.c_str(), flags, 0600);
  if (fd_ < 0) return IoError("cannot write the results file " + path);
  if (resume) TASKQ_TRY(ReadExisting());
  // A new file, or one emptied, must be so on disk before the job's record
  // says the job runs: else a crash could resume into an older job's lines.
  if (!resume && (fsync(fd_) != 0 || !SyncParent(path)))
    return IoError("cannot sync the results file " + path);
  if (lseek(fd_, 0, SEEK_END) < 0) return IoError("cannot write the results file " + path);
  return Status::Ok();
}

// Reads the file a line at a time. A last line without its newline is what
// a crash cut short: its outcome is still in the master (it was not
// acknowledged), so it is cut off here and written again whole.
Status OutcomeFile::ReadExisting() {
  std::string line;
  std::vector<std::pair<uint64_t, bool>> found;  // id, ok
  char chunk[1 << 16];
  uint64_t offset = 0, line_start = 0;
  for (;;) {
    const ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n < 0) return IoError("cannot read the results file " + path_);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i, ++offset) {
      if (chunk[i] != '\n') {
        line.push_back(chunk[i]);
        continue;
      }
      uint64_t id;
      bool ok;
      if (ParseLine(line, &id, &ok)) {
        found.emplace_back(id, ok);
      } else {
        ++unreadable_;
      }
      line.clear();
      line_start = offset + 1;
    }
  }
  if (line_start < offset) {
    cut_bytes_ = offset - line_start;
    if (ftruncate(fd_, static_cast<off_t>(line_start)) != 0 || fdatasync(fd_) != 0)
      return IoError("cannot cut the unfinished last line of " + path_);
  }
  std::sort(found.begin(), found.end());
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (i > 0 && found[i].first == found[i - 1].first) continue;
    ids_.push_back(found[i].first);
    failed_ += found[i].second ? 0 : 1;
  }
  return Status::Ok();
}

bool OutcomeFile::Has(uint64_t id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

void OutcomeFile::Add(const Item& item) {
  pending_ += OutcomeJson(item);
  pending_ += '\n';
}

Status OutcomeFile::Sync(bool fsync) {
  std::size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot write the results file " + path_);
    done += static_cast<std::size_t>(n);
  }
  pending_.clear();
  if (fsync && fdatasync(fd_) != 0) return IoError("cannot sync the results file " + path_);
  return Status::Ok();
}

Status OutcomeFile::OpenForJob(const std::string& path, bool resume, const std::string& program,
                               std::ostream& err) {
  TASKQ_TRY(Open(path, resume));
  if (cut_bytes_)
    err << program << ": cut off an unfinished last line of " << path << " (" << cut_bytes_
        << " bytes); its outcome comes again\n";
  if (unreadable_)
    err << program << ": " << unreadable_ << " line(s) of " << path
        << " are not outcome lines; they are kept and not counted\n";
  return Status::Ok();
}

Status CheckResultsPath(const std::string& path) {
  if (path.empty() || path == "-") return Status::Ok();
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return Status::Error(Code::kInvalid, "--results: " + path +
                                             " is a directory; give a file name (or - for "
                                             "standard output)");
  const bool exists = fs::exists(path, ec);
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const std::string target = exists ? path : dir.string();
  if (access(target.c_str(), W_OK) != 0)
    return Status::Error(Code::kInvalid, "--results: cannot write " + path + ": " +
                                             (exists ? "" : dir.string() + ": ") +
                                             std::strerror(errno));
  return Status::Ok();
}


}  // namespace taskq
