#include "master/job_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace taskq {
namespace {

constexpr const char* kHeader = "taskq job 1";

std::string PathIn(const std::string& dir) { return dir + "/job"; }

Status IoError(const std::string& what) {
  return Status::Error(Code::kIo, what + ": " + std::strerror(errno));
}

Status WriteFile(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot write " + path);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ok && fdatasync(fd) == 0;
  const int saved = errno;
  close(fd);
  errno = saved;
  return ok ? Status::Ok() : IoError("cannot write " + path);
}

void SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

}  // namespace

Result<std::optional<JobRecord>> JobRecord::Load(const std::string& dir) {
  std::ifstream in(PathIn(dir));
  if (!in) {
    if (errno == ENOENT) return std::optional<JobRecord>();
    return IoError("cannot read " + PathIn(dir));
  }
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    return Status::Error(Code::kInvalid, PathIn(dir) + " is not a taskq job record (expected '" +
                                             kHeader + "' on its first line)");
  JobRecord r;
  while (std::getline(in, line)) {
    const std::size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "job") r.job = value;
    if (key == "results") r.results = value;
    if (key == "state") r.finished = value == "finished";
  }
  return std::optional<JobRecord>(std::move(r));
}

Status JobRecord::Save(const std::string& dir) const {
  std::ostringstream text;
  text << kHeader << "\njob: " << job << "\nresults: " << results
       << "\nstate: " << (finished ? "finished" : "running") << "\n";
  const std::string tmp = PathIn(dir) + ".new";
  TASKQ_TRY(WriteFile(tmp, text.str()));
  if (rename(tmp.c_str(), PathIn(dir).c_str()) != 0) return IoError("cannot write " + PathIn(dir));
  SyncDir(dir);
  return Status::Ok();
}

Status JobRecord::Remove(const std::string& dir) {
  if (unlink(PathIn(dir).c_str()) != 0 && errno != ENOENT)
    return IoError("cannot remove " + PathIn(dir));
  return Status::Ok();
}

}  // namespace taskq
