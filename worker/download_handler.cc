#include "worker/download_handler.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "proto/msgpack_writer.h"
#include "proto/text.h"
#include "worker/file_names.h"

namespace taskq {
namespace {

// How much of a URL a message about it shows.
constexpr std::size_t kUrlShown = 200;

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

// The sha256 and size of a file already on disk (--skip-existing), read
// through the descriptor its record was read from: the file checked is the
// file hashed.
bool HashFile(int fd, std::string* sha, uint64_t* bytes) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  unsigned char buf[65536];
  *bytes = 0;
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    crypto_hash_sha256_update(&st, buf, static_cast<size_t>(n));
    *bytes += static_cast<uint64_t>(n);
  }
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

// libcurl is loaded at the first download (dlopen), not linked. Why: it
// brings about twenty libraries (OpenSSL, GnuTLS, LDAP, SSH, ...) and 5 MB
// of resident memory into every worker, and initialising it sets up
// OpenSSL; a worker that squares numbers or runs commands needs none of it.
// An idle task_worker is about 7 MB resident instead of 14 (make bench).
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
};

// Loads and initialises libcurl once; null (and *error) if it cannot.
// Debian's libcurl (7.88, "threadsafe" in curl --version) makes
// curl_global_init safe to call from a pool thread; call_once makes the
// other threads wait for it.
const Curl* LoadCurl(std::string* error) {
  static Curl curl;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);  // kept for the process's life
    auto sym = [&](const char* name) { return lib ? dlsym(lib, name) : nullptr; };
    curl.global_init = reinterpret_cast<decltype(curl.global_init)>(sym("curl_global_init"));
    curl.easy_init = reinterpret_cast<decltype(curl.easy_init)>(sym("curl_easy_init"));
    curl.easy_setopt = reinterpret_cast<decltype(curl.easy_setopt)>(sym("curl_easy_setopt"));
    curl.easy_perform = reinterpret_cast<decltype(curl.easy_perform)>(sym("curl_easy_perform"));
    curl.easy_getinfo = reinterpret_cast<decltype(curl.easy_getinfo)>(sym("curl_easy_getinfo"));
    curl.easy_cleanup = reinterpret_cast<decltype(curl.easy_cleanup)>(sym("curl_easy_cleanup"));
    curl.easy_strerror =
        reinterpret_cast<decltype(curl.easy_strerror)>(sym("curl_easy_strerror"));
    if (!lib || !curl.global_init || !curl.easy_init || !curl.easy_setopt || !curl.easy_perform ||
        !curl.easy_getinfo || !curl.easy_cleanup || !curl.easy_strerror) {
      const char* why = dlerror();
      failure = "cannot load libcurl.so.4 for downloads (" + std::string(why ? why : "?") +
                "); install the libcurl4 package";
    } else if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      failure = "cannot initialise libcurl";
    }
  });
  if (!failure.empty()) {
    *error = failure;
    return nullptr;
  }
  return &curl;
}

// What curl made of one transfer.
struct Response {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string content_type;
  std::string error;  // curl's words, when rc is not CURLE_OK
};

Response Perform(const Curl& c, const std::string& url, const DownloadOptions& o, Transfer* t) {
  CURL* h = c.easy_init();
  if (!h) return Response{CURLE_FAILED_INIT, 0, "", "cannot start a libcurl transfer"};
  char error[CURL_ERROR_SIZE] = "";
  c.easy_setopt(h, CURLOPT_URL, url.c_str());
  c.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  c.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  c.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  c.easy_setopt(h, CURLOPT_MAXREDIRS, o.max_redirects);
  c.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  c.easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout.count()));
  c.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(o.max_bytes));
  c.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  c.easy_setopt(h, CURLOPT_USERAGENT, "taskq/" TASKQ_VERSION);
  c.easy_setopt(h, CURLOPT_WRITEFUNCTION, OnData);
  c.easy_setopt(h, CURLOPT_WRITEDATA, t);
  c.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
  c.easy_setopt(h, CURLOPT_XFERINFODATA, t);
  c.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  c.easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  Response r;
  r.rc = c.easy_perform(h);
  char* type = nullptr;
  c.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  c.easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  r.content_type = type ? type : "";
  if (r.rc != CURLE_OK) r.error = error[0] ? error : c.easy_strerror(r.rc);
  c.easy_cleanup(h);
  return r;
}

}  // namespace

// A file a task's result describes.
struct DownloadHandler::Saved {
  std::string path;
  uint64_t bytes = 0;
  std::string sha256;
  long status = 0;  // 0 when skipped
  std::string content_type;
  bool skipped = false;
};

DownloadHandler::DownloadHandler(DownloadOptions options)
    : options_(std::move(options)), out_(options_.out_dir) {}

DownloadHandler::~DownloadHandler() = default;

std::string DownloadHandler::Describe(const Item& task) const {
  return "download " + Clip(task.arg.AsStr().value_or(PackedToJson(task.arg.packed())), kUrlShown);
}

RunOutcome DownloadHandler::Run(const Item& task, const CancelToken& cancel) {
  const std::optional<std::string> url = task.arg.AsStr();
  if (!url)
    return RunOutcome::Error("download needs a URL string, got " + PackedToJson(task.arg.packed()),
                             false);
  if (!SchemeAllowed(*url))
    return RunOutcome::Error(
        "only http and https URLs are downloaded, not " + Clip(*url, kUrlShown), false);
  if (!options_.skip_existing) return Fetch(*url, cancel);
  return fetches_.Do(*url, [&] {
    std::optional<RunOutcome> earlier = FromEarlierRun(*url);
    return earlier ? std::move(*earlier) : Fetch(*url, cancel);
  });
}

// --skip-existing: the file saved for url before, if there is one.
std::optional<RunOutcome> DownloadHandler::FromEarlierRun(const std::string& url) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<SavedFile> file = out_.Find(SafeFileName(url), url);
  if (!file) return std::nullopt;
  Saved saved{file->path, 0, "", 0, "", true};
  if (!HashFile(file->fd.get(), &saved.sha256, &saved.bytes))
    return RunOutcome::WorkerFault("cannot read " + file->path + ": " + std::strerror(errno));
  return Done(url, saved, start);
}

RunOutcome DownloadHandler::Fetch(const std::string& url, const CancelToken& cancel) {
  const auto start = std::chrono::steady_clock::now();
  std::string no_curl;
  const Curl* c = LoadCurl(&no_curl);
  if (!c) return RunOutcome::WorkerFault(no_curl);
  // Removed when it goes out of scope, unless kept under its final name.
  Result<PartFile> part = out_.CreatePart(url, options_.skip_existing);
  if (!part.ok()) return RunOutcome::WorkerFault(part.status().message());
  Transfer t;
  t.fd = part->fd();
  t.max_bytes = options_.max_bytes;
  t.cancel = &cancel;
  crypto_hash_sha256_init(&t.sha);
  const Response r = Perform(*c, url, options_, &t);

  const std::string about = " (" + Clip(url, kUrlShown) + ")";
  if (t.too_big || r.rc == CURLE_FILESIZE_EXCEEDED)
    return RunOutcome::Error("the body is larger than " + std::to_string(options_.max_bytes) +
                                 " bytes (--max-bytes)" + about,
                             false);
  if (r.rc == CURLE_ABORTED_BY_CALLBACK)
    return RunOutcome::Error("the worker stopped before the download ended" + about);
  if (t.write_errno)
    return RunOutcome::WorkerFault("cannot write in --out " + out_.path() + ": " +
                                   std::strerror(t.write_errno) + about);
  if (r.rc != CURLE_OK) return RunOutcome::Error(r.error + about, Transient(r.rc));
  if (r.status >= 400) {
    const bool retry = r.status >= 500 || r.status == 408 || r.status == 429;
    return RunOutcome::Error("HTTP " + std::to_string(r.status) + about, retry);
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&t.sha, digest);
  Result<std::string> path = out_.Keep(*part, SafeFileName(url));
  // No free name left is the task's doing (a list of URLs that all end in
  // the same name), and another worker would fare no better: a plain
  // failure, not retried. Anything else is about this worker's --out.
  if (!path.ok() && path.status().code() == Code::kInvalid)
    return RunOutcome::Error(path.status().message(), false);
  if (!path.ok()) return RunOutcome::WorkerFault(path.status().message());
  return Done(url, Saved{*path, t.bytes, Hex(digest, sizeof digest), r.status, r.content_type},
              start);
}

RunOutcome DownloadHandler::Done(const std::string& url, const Saved& s,
                                 std::chrono::steady_clock::time_point start) const {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::string v;
  MsgpackWriter w(&v);
  w.Map(s.skipped ? 9 : 8).Key("url").Str(url).Key("path").Str(s.path).Key("bytes").Uint(s.bytes);
  w.Key("sha256").Str(s.sha256).Key("status").Int(s.status).Key("content_type").Str(s.content_type);
  w.Key("elapsed_ms").Uint(static_cast<uint64_t>(ms.count())).Key("worker").Str(options_.worker);
  if (s.skipped) w.Key("skipped").Bool(true);
  return RunOutcome::Ok(Value::FromTrusted(v));
}

}  // namespace taskq
