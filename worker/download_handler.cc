#include "worker/download_handler.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "proto/msgpack_writer.h"
#include "worker/file_names.h"

namespace taskq {
namespace {

namespace fs = std::filesystem;

std::string Clip(std::string_view s, std::size_t n = 200) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

std::string Hex(const unsigned char* p, std::size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// One transfer's state, shared with curl's callbacks.
struct Transfer {
  int fd = -1;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
  bool too_big = false;
  int write_errno = 0;
  crypto_hash_sha256_state sha;
  const CancelToken* cancel = nullptr;
};

size_t OnData(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->bytes + len > t->max_bytes) {
    t->too_big = true;
    return 0;  // curl aborts with CURLE_WRITE_ERROR
  }
  for (size_t done = 0; done < len;) {
    const ssize_t w = write(t->fd, p + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  crypto_hash_sha256_update(&t->sha, reinterpret_cast<const unsigned char*>(p), len);
  t->bytes += len;
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->cancel->cancelled() ? 1 : 0;
}

// The sha256 and size of a file already on disk (--skip-existing).
bool HashFile(const std::string& path, std::string* sha, uint64_t* bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  unsigned char buf[65536];
  *bytes = 0;
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0; *bytes += n)
    crypto_hash_sha256_update(&st, buf, n);
  std::fclose(f);
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, out);
  *sha = Hex(out, sizeof out);
  return true;
}

// Failures that another attempt may cure (the network, the server's bad
// moment) go back through the master's retries; the rest fail for good.
bool Transient(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_REMOTE_ACCESS_DENIED:
      return false;
    default:
      return true;
  }
}

bool SchemeAllowed(std::string_view url) {
  const std::size_t colon = url.find("://");
  if (colon == std::string_view::npos) return false;
  std::string scheme(url.substr(0, colon));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return scheme == "http" || scheme == "https";
}

void InitCurlOnce() {
  // curl_global_init is not thread-safe: the first handler, made on the
  // main thread before the pool starts, does it.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

DownloadHandler::DownloadHandler(DownloadOptions options) : options_(std::move(options)) {
  InitCurlOnce();
}

DownloadHandler::~DownloadHandler() = default;

std::string DownloadHandler::Describe(const Item& task) const {
  return "download " + Clip(task.arg.AsStr().value_or(PackedToJson(task.arg.packed())));
}

RunOutcome DownloadHandler::Run(const Item& task, const CancelToken& cancel) {
  const auto start = std::chrono::steady_clock::now();
  const std::optional<std::string> url = task.arg.AsStr();
  if (!url)
    return RunOutcome::Error("download needs a URL string, got " + PackedToJson(task.arg.packed()),
                             false);
  if (!SchemeAllowed(*url))
    return RunOutcome::Error("only http and https URLs are downloaded, not " + Clip(*url), false);
  const std::string name = SafeFileName(*url);
  std::error_code ec;
  fs::create_directories(options_.out_dir, ec);
  if (ec) return RunOutcome::Error("cannot create " + options_.out_dir + ": " + ec.message());

  auto result = [&](const std::string& path, uint64_t bytes, const std::string& sha, long status,
                    const std::string& type, bool skipped) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    std::string v;
    MsgpackWriter w(&v);
    w.Map(skipped ? 9 : 8).Key("url").Str(*url).Key("path").Str(path).Key("bytes").Uint(bytes);
    w.Key("sha256").Str(sha).Key("status").Int(status).Key("content_type").Str(type);
    w.Key("elapsed_ms").Uint(static_cast<uint64_t>(ms.count())).Key("worker").Str(options_.worker);
    if (skipped) w.Key("skipped").Bool(true);
    return RunOutcome::Ok(Value::FromTrusted(v));
  };

  const std::string final_path = options_.out_dir + "/" + name;
  if (options_.skip_existing && fs::exists(final_path)) {
    std::string sha;
    uint64_t bytes = 0;
    if (HashFile(final_path, &sha, &bytes)) return result(final_path, bytes, sha, 0, "", true);
  }

  // A hidden temporary name: no final name ever holds a partial body. Not
  // mkstemp: its files are 0600, and a download should get the umask's mode.
  Transfer t;
  std::string temp;
  for (int tries = 0; tries < 100 && t.fd < 0; ++tries) {
    unsigned char r[6];
    randombytes_buf(r, sizeof r);
    temp = options_.out_dir + "/.taskq-" + Hex(r, sizeof r) + ".part";
    t.fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (t.fd < 0 && errno != EEXIST) break;
  }
  if (t.fd < 0)
    return RunOutcome::Error("cannot write in " + options_.out_dir + ": " + std::strerror(errno));
  t.max_bytes = options_.max_bytes;
  t.cancel = &cancel;
  crypto_hash_sha256_init(&t.sha);

  CURL* h = curl_easy_init();
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url->c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, options_.max_redirects);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_bytes));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(h, CURLOPT_USERAGENT, "taskq/" TASKQ_VERSION);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnData);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  char* type = nullptr;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  const std::string content_type = type ? type : "";
  curl_easy_cleanup(h);
  close(t.fd);

  auto fail = [&](const std::string& why, bool retry) {
    unlink(temp.c_str());
    return RunOutcome::Error(why + " (" + Clip(*url) + ")", retry);
  };
  if (t.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    return fail(
        "the body is larger than " + std::to_string(options_.max_bytes) + " bytes (--max-bytes)",
        false);
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return fail("the worker stopped before the download ended", true);
  if (t.write_errno)
    return fail("cannot write the file: " + std::string(std::strerror(t.write_errno)), true);
  if (rc != CURLE_OK) return fail(error[0] ? error : curl_easy_strerror(rc), Transient(rc));
  if (status >= 400) {
    const bool retry = status >= 500 || status == 408 || status == 429;
    return fail("HTTP " + std::to_string(status), retry);
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&t.sha, digest);
  Result<std::string> path = RenameUnique(temp, options_.out_dir, name);
  if (!path.ok()) {
    unlink(temp.c_str());
    return RunOutcome::Error(path.status().message());
  }
  return result(*path, t.bytes, Hex(digest, sizeof digest), status, content_type, false);
}

}  // namespace taskq
