#include "worker/out_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "worker/file_names.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;
using SystemClock = std::chrono::system_clock;

constexpr const char* kUrlAttr = "user.taskq.url";
constexpr std::string_view kPartPrefix = ".taskq-";
constexpr std::string_view kPartSuffix = ".part";
constexpr std::size_t kMaxUrlInRecord = 1024;

std::string Errno(int e = errno) { return std::strerror(e); }

std::string ThisHost() {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  std::string out;
  // Part of a file name: no separators, nothing a shell or a listing trips on.
  for (const char* p = host; *p && out.size() < 64; ++p)
    out.push_back(std::isalnum(static_cast<unsigned char>(*p)) || *p == '.' || *p == '-' ? *p
                                                                                         : '_');
  return out.empty() ? "host" : out;
}

// Who made a temporary file, from its name; nullopt for names without an
// owner (an older taskq's ".taskq-RANDOM.part") or not of this form.
struct PartOwner {
  std::string host;
  pid_t pid = 0;
};

std::optional<PartOwner> OwnerOf(std::string_view name) {
  name = name.substr(kPartPrefix.size(), name.size() - kPartPrefix.size() - kPartSuffix.size());
  const std::size_t random = name.rfind('-');
  if (random == std::string_view::npos || random == 0) return std::nullopt;
  const std::size_t pid = name.rfind('-', random - 1);
  if (pid == std::string_view::npos || pid == 0 || random - pid < 2) return std::nullopt;
  PartOwner owner{std::string(name.substr(0, pid)), 0};
  for (char c : name.substr(pid + 1, random - pid - 1)) {
    if (c < '0' || c > '9' || owner.pid > 100000000) return std::nullopt;
    owner.pid = owner.pid * 10 + (c - '0');
  }
  return owner;
}

bool IsPartName(std::string_view name) {
  return name.size() > kPartPrefix.size() + kPartSuffix.size() && name.starts_with(kPartPrefix) &&
         name.ends_with(kPartSuffix);
}

bool Running(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

SystemClock::time_point MTime(const struct stat& st) {
  return SystemClock::time_point(std::chrono::duration_cast<SystemClock::duration>(
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// Whether the temporary file name, last written at written, belongs to a
// worker that is gone (see RemoveStaleParts).
bool Abandoned(std::string_view name, SystemClock::time_point written,
               SystemClock::time_point started) {
  if (written >= started) return false;
  if (SystemClock::now() - written >= OutDir::kAbandonedAfter) return true;
  const std::optional<PartOwner> owner = OwnerOf(name);
  return owner && owner->host == ThisHost() && (owner->pid == getpid() || !Running(owner->pid));
}

// The nearest directory at or above path that exists ("." for a relative
// path none of whose parts exist).
fs::path NearestExisting(fs::path path) {
  std::error_code ec;
  while (!path.empty() && !fs::exists(path, ec)) path = path.parent_path();
  return path.empty() ? fs::path(".") : path;
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

PartFile::~PartFile() {
  if (!path_.empty()) unlink(path_.c_str());
}

std::string UrlRecord(std::string_view url) {
  if (url.size() <= kMaxUrlInRecord) return std::string(url);
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(url.data()), url.size());
  char hex[2 * sizeof d + 1];
  sodium_bin2hex(hex, sizeof hex, d, sizeof d);
  return std::string("sha256:") + hex;
}

std::string NewPartName() {
  unsigned char r[6];
  randombytes_buf(r, sizeof r);
  char hex[2 * sizeof r + 1];
  sodium_bin2hex(hex, sizeof hex, r, sizeof r);
  return std::string(kPartPrefix) + ThisHost() + "-" + std::to_string(getpid()) + "-" + hex +
         std::string(kPartSuffix);
}

Status OutDir::Check(bool create, bool need_records) const {
  struct stat st;
  if (stat(path_.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    return Status::Error(Code::kInvalid, "--out " + path_ +
                                             " is not a directory; give a directory to save "
                                             "downloads in (it is created if missing)");
  std::error_code ec;
  if (!create && !fs::exists(path_, ec)) return CheckCanBeMade();
  // Makes the directory if missing, and proves that a file can be made there.
  Result<PartFile> probe = CreatePart("probe", need_records);
  if (!probe.ok()) return Status::Error(Code::kInvalid, probe.status().message());
  return Status::Ok();  // the probe's destructor removes it
}

Status OutDir::CheckCanBeMade() const {
  const std::string fix = "; give a directory this worker can write in";
  const fs::path above = NearestExisting(path_);
  std::error_code ec;
  if (!fs::is_directory(above, ec))
    return Status::Error(Code::kInvalid, "--out " + path_ + " cannot be created: " +
                                             above.string() + " is not a directory" + fix);
  if (access(above.c_str(), W_OK | X_OK) != 0)
    return Status::Error(Code::kInvalid, "--out " + path_ + " cannot be created in " +
                                             above.string() + " (" + Errno() + ")" + fix);
  return Status::Ok();
}

Result<PartFile> OutDir::CreatePart(std::string_view url, bool need_records) const {
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec)
    return Status::Error(Code::kIo, "--out " + path_ + " cannot be created (" + ec.message() +
                                        "); give a directory this worker can write in");
  // Not mkstemp: its files are 0600, and a download should get the umask's mode.
  Fd fd;
  std::string path;
  for (int tries = 0; tries < 100 && fd.get() < 0; ++tries) {
    path = path_ + "/" + NewPartName();
    fd = Fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0 && errno != EEXIST) break;
  }
  if (fd.get() < 0)
    return Status::Error(Code::kIo, "--out " + path_ + " is not writable (" + Errno() +
                                        "); give a directory this worker can write in");
  PartFile part(path, std::move(fd));
  const std::string record = UrlRecord(url);
  if (fsetxattr(part.fd(), kUrlAttr, record.data(), record.size(), 0) == 0) return part;
  const int e = errno;
  if (e == EOPNOTSUPP && !need_records) return part;  // it records nothing
  if (e == EOPNOTSUPP)
    return Status::Error(Code::kIo, "--out " + path_ +
                                        " is on a file system without extended attributes, which "
                                        "--skip-existing needs to know the URL of each file; give "
                                        "--out on another file system, or drop --skip-existing");
  return Status::Error(
      Code::kIo, "cannot record the URL of a download in --out " + path_ + " (" + Errno(e) + ")");
}

Result<std::string> OutDir::Keep(PartFile& part, const std::string& name) const {
  // Some file systems (NFS) report a failed write only when the file is closed.
  if (close(part.fd_.Release()) != 0)
    return Status::Error(Code::kIo, "cannot write in --out " + path_ + " (" + Errno() + ")");
  Result<std::string> path = RenameUnique(part.path_, path_, name);
  if (path.ok()) part.path_.clear();
  return path;
}

std::optional<SavedFile> OutDir::Find(const std::string& name, std::string_view url) const {
  const std::string record = UrlRecord(url);
  char buf[kMaxUrlInRecord + 1];
  for (int n = 0; n < kMaxNumberedNames; ++n) {
    const std::string path = path_ + "/" + NumberedName(name, n);
    // O_NONBLOCK: a FIFO someone left under that name must not hang us.
    Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    // Saves take the first free name: past the first missing one, there is
    // nothing of ours (unless files were deleted by hand: then it is
    // downloaded again, never mistaken).
    if (fd.get() < 0 && errno == ENOENT) break;
    struct stat st;
    if (fd.get() < 0 || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const ssize_t len = fgetxattr(fd.get(), kUrlAttr, buf, sizeof buf);
    if (len >= 0 && std::string_view(buf, static_cast<std::size_t>(len)) == record)
      return SavedFile{path, std::move(fd)};
  }
  return std::nullopt;
}

int OutDir::RemoveStaleParts(SystemClock::time_point started) const {
  DIR* dir = opendir(path_.c_str());
  if (!dir) return 0;
  int removed = 0;
  while (const dirent* e = readdir(dir)) {
    struct stat st;
    if (!IsPartName(e->d_name) || fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    if (Abandoned(e->d_name, MTime(st), started) && unlinkat(dirfd(dir), e->d_name, 0) == 0)
      ++removed;
  }
  closedir(dir);
  return removed;
}

}  // namespace taskq
