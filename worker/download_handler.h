// DownloadHandler: the "download" kind. The argument is an http or https
// URL; the body goes to a file in the worker's output directory (OutDir),
// named after the URL (file_names.h), and the result describes it:
//   {"url", "path", "bytes", "sha256", "status", "content_type", "elapsed_ms", "worker"}
// ("skipped": true when --skip-existing found the file already there).
//
// A result always describes its own URL: each file records the URL it came
// from (out_dir.h), and --skip-existing reports only a file that records
// this task's URL, with the sha256 and size of the file as it is now. With
// --skip-existing, the same URL twice is fetched once: a task for a URL
// that is being fetched waits for it and gets the same outcome.
// Without it, every task fetches its own copy ("same", "same (1)").
//
// Safety: other schemes (file://, ftp://, ...) are refused, redirects
// included, so a master cannot make a worker read its own files; the body
// is written under a temporary hidden name and renamed when complete, so no
// partial file ever has the final name; bodies over max_bytes are cut off.
//
// Failures: HTTP 4xx (but 408 and 429) and bad URLs fail for good; refused
// or timed-out connections and 5xx go through the master's retries; what is
// about this worker (--out not writable, disk full, no libcurl) is a
// worker fault (handler.h).
#ifndef TASKQ_WORKER_DOWNLOAD_HANDLER_H_
#define TASKQ_WORKER_DOWNLOAD_HANDLER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "worker/handler.h"
#include "worker/out_dir.h"
#include "worker/single_flight.h"

namespace taskq {

struct DownloadOptions {
  std::string out_dir = "downloads";
  bool skip_existing = false;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{300000};  // the whole transfer
  long max_redirects = 5;
  uint64_t max_bytes = uint64_t{1} << 30;
  std::string worker;  // the worker's name, for the result
  // --out was on the command line: a bad one stops the worker at start
  // (exit 2). The default one only decides whether it takes downloads.
  bool out_dir_given = false;
};

class DownloadHandler : public Handler {
 public:
  explicit DownloadHandler(DownloadOptions options);
  ~DownloadHandler() override;
  RunOutcome Run(const Item& task, const CancelToken& cancel) override;
  std::string Describe(const Item& task) const override;

 private:
  struct Saved;
  RunOutcome Fetch(const std::string& url, const CancelToken& cancel);
  std::optional<RunOutcome> FromEarlierRun(const std::string& url);
  RunOutcome Done(const std::string& url, const Saved& saved,
                  std::chrono::steady_clock::time_point start) const;

  DownloadOptions options_;
  OutDir out_;
  SingleFlight fetches_;  // with --skip-existing: one fetch per URL at a time
};

}  // namespace taskq

#endif  // TASKQ_WORKER_DOWNLOAD_HANDLER_H_
