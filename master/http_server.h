// HttpServer: task_master --http. Read-only web pages about the master: the
// dashboard (/), the live event stream it reads (/events, Server-Sent
// Events), /api/status (JSON), /metrics (Prometheus) and /healthz. It runs
// on threads of its own (cpp-httplib's pool) and only reads the snapshots
// the master's loop publishes on a SnapshotBoard: nothing it does can make
// the loop wait, and nothing over HTTP can put, take or delete entries.
//
// Bound to a loopback address it serves anyone on this machine; bound to
// any other address every path but /healthz needs the token (docs/HTTP.md).
//
// Thread: Start() and Stop() from one owner thread.
#ifndef TASKQ_MASTER_HTTP_SERVER_H_
#define TASKQ_MASTER_HTTP_SERVER_H_

#include <chrono>
#include <memory>
#include <string>

#include "master/snapshot.h"
#include "proto/status.h"

namespace taskq {

struct HttpOptions {
  std::string address = "127.0.0.1";
  int port = 0;  // 0: any free port
  // Required on every request but /healthz when not empty: as ?token=, or
  // "Authorization: Bearer TOKEN". Must not be empty on a non-loopback address.
  std::string token;
  // Connections served at once; more wait their turn. An idle keep-alive
  // connection holds its thread for keep_alive, so many idle ones delay the
  // pages (never the queues).
  int threads = 64;
  std::chrono::seconds keep_alive{1};
  int max_streams = 8;                 // /events clients at once; more get 503
  std::chrono::seconds io_timeout{3};  // a read or write that stalls this long ends the connection
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(const std::string& address);
// The dashboard's token derived from the authkey's client secret key: the
// same authkey gives the same token, and the token tells nothing of the key.
std::string DeriveHttpToken(const std::string& secret_z85);

// The options for task_master's "--http [ADDR:]PORT" (ADDR defaults to
// 127.0.0.1, [::1]:PORT for IPv6) and --http-token: the token given, else
// on a non-loopback address one derived from the authkey's client secret
// key. kInvalid with a sentence when the flag does not parse.
Result<HttpOptions> ParseHttpFlag(const std::string& flag, const std::string& token,
                                  const std::string& secret_z85);
// The URL to print at start: with ?token= when one is needed.
std::string DashboardUrl(const HttpOptions& options, int port);

class HttpServer {
 public:
  // board must outlive the server.
  HttpServer(HttpOptions options, SnapshotBoard* board);
  ~HttpServer();  // stops it

  // Binds (kIo with a sentence naming the address when it cannot) and starts
  // serving; a non-loopback address without a token is kInvalid.
  Status Start();
  int port() const { return port_; }
  // Ends every stream and connection and joins the threads.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_HTTP_SERVER_H_
