// DownloadHandler: the "download" kind. The argument is an http or https
// URL; the body goes to a file in the worker's output directory, named
// after the URL (file_names.h); the result describes it:
//   {"url", "path", "bytes", "sha256", "status", "content_type", "elapsed_ms", "worker"}
// ("skipped": true when --skip-existing found the file already there).
//
// Safety: other schemes (file://, ftp://, ...) are refused, redirects
// included, so a master cannot make a worker read its own files; the body
// is written under a temporary hidden name and renamed when complete, so no
// partial file ever has the final name; bodies over max_bytes are cut off.
//
// Failures: HTTP 4xx (but 408 and 429) and bad URLs fail for good; refused
// or timed-out connections and 5xx go through the master's retries.
#ifndef TASKQ_WORKER_DOWNLOAD_HANDLER_H_
#define TASKQ_WORKER_DOWNLOAD_HANDLER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "worker/handler.h"

namespace taskq {

struct DownloadOptions {
  std::string out_dir = "downloads";
  bool skip_existing = false;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{300000};  // the whole transfer
  long max_redirects = 5;
  uint64_t max_bytes = uint64_t{1} << 30;
  std::string worker;  // the worker's name, for the result
};

class DownloadHandler : public Handler {
 public:
  explicit DownloadHandler(DownloadOptions options);
  ~DownloadHandler() override;
  RunOutcome Run(const Item& task, const CancelToken& cancel) override;
  std::string Describe(const Item& task) const override;

 private:
  DownloadOptions options_;
};

}  // namespace taskq

#endif  // TASKQ_WORKER_DOWNLOAD_HANDLER_H_
