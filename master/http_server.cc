#include "master/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <sodium.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "master/dashboard/dashboard.h"
#include "master/snapshot_format.h"

namespace taskq {

bool IsLoopback(const std::string& address) {
  if (address == "localhost" || address == "::1" || address == "[::1]") return true;
  in_addr a{};
  return inet_pton(AF_INET, address.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string DeriveHttpToken(const std::string& secret_z85) {
  // A keyed hash of a fixed context under the client's secret key: one-way,
  // so the printed token does not open the queues' CURVE port.
  static constexpr char kContext[] = "taskq http dashboard token v1";
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(kContext),
                     sizeof kContext - 1, reinterpret_cast<const unsigned char*>(secret_z85.data()),
                     std::min<std::size_t>(secret_z85.size(), crypto_generichash_KEYBYTES_MAX));
  char hex[2 * sizeof out + 1];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

Result<HttpOptions> ParseHttpFlag(const std::string& flag, const std::string& token,
                                  const std::string& secret_z85) {
  HttpOptions o;
  std::string port = flag;
  const std::size_t colon = flag.rfind(':');
  if (colon != std::string::npos) {
    o.address = flag.substr(0, colon);
    port = flag.substr(colon + 1);
    if (o.address.size() > 2 && o.address.front() == '[' && o.address.back() == ']')
      o.address = o.address.substr(1, o.address.size() - 2);
    if (o.address.empty() || o.address == "*") o.address = "0.0.0.0";
  }
  const bool digits = !port.empty() && port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(port) > 65535)
    return Status::Error(Code::kInvalid, "--http " + flag +
                                             ": expected [ADDR:]PORT, e.g. 8080 or "
                                             "0.0.0.0:8080 (PORT 0: any free port)");
  o.port = std::stoi(port);
  o.token = token;
  if (o.token.empty() && !IsLoopback(o.address)) o.token = DeriveHttpToken(secret_z85);
  return o;
}

std::string DashboardUrl(const HttpOptions& o, int port) {
  std::string host = o.address;
  if (host == "0.0.0.0" || host == "::") host = "THIS-HOST";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string url = "http://" + host + ":" + std::to_string(port) + "/";
  if (!o.token.empty()) url += "?token=" + o.token;
  return url;
}

class HttpServer::Impl {
 public:
  Impl(HttpOptions options, SnapshotBoard* board) : options_(std::move(options)), board_(board) {}

  Status Start(int* port);
  void Stop();

 private:
  void Routes();
  bool Allowed(const httplib::Request& req) const;
  // Serves the latest snapshot through render, or 503 before the first.
  template <typename Render>
  void Latest(httplib::Response& res, const char* type, Render render) const;
  void Stream(httplib::Response& res);

  HttpOptions options_;
  SnapshotBoard* board_;
  httplib::Server http_;
  std::thread thread_;
  std::atomic<int> streams_{0};
  std::atomic<bool> stopping_{false};
  int listen_fd_ = -1;
};

Status HttpServer::Impl::Start(int* port) {
  const std::string& addr = options_.address;
  if (options_.token.empty() && !IsLoopback(addr))
    return Status::Error(Code::kInvalid,
                         "--http on " + addr + " (not a loopback address) needs a token");
  http_.new_task_queue = [n = options_.threads] { return new httplib::ThreadPool(n); };
  const auto io = static_cast<time_t>(options_.io_timeout.count());
  http_.set_read_timeout(io).set_write_timeout(io).set_keep_alive_timeout(
      static_cast<time_t>(options_.keep_alive.count()));
  http_.set_keep_alive_max_count(100);
  http_.set_payload_max_length(4096);  // every path is a GET: no body worth reading
  Routes();
  // cpp-httplib 0.11 listens with a backlog of 5: a burst of connections
  // (a class opening the page at once) would see SYNs dropped and retried a
  // second later. Its socket-options hook sees the listening socket, so
  // listen() is called on it again, with room for a burst.
  http_.set_socket_options([this](int fd) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);  // what the default hook does
    listen_fd_ = fd;
  });
  const int bound = options_.port == 0
                        ? http_.bind_to_any_port(addr)
                        : (http_.bind_to_port(addr, options_.port) ? options_.port : -1);
  if (bound <= 0)
    return Status::Error(Code::kIo, "--http cannot listen on " + addr + " port " +
                                        std::to_string(options_.port) +
                                        ": the port is in use or the address is not local");
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);
  *port = bound;
  thread_ = std::thread([this] { http_.listen_after_bind(); });
  return Status::Ok();
}

void HttpServer::Impl::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  board_->Close();  // streams waiting for a snapshot end now
  http_.stop();
  thread_.join();
}

bool HttpServer::Impl::Allowed(const httplib::Request& req) const {
  if (options_.token.empty()) return true;
  std::string given = req.get_param_value("token");
  const std::string auth = req.get_header_value("Authorization");
  if (given.empty() && auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
  return given.size() == options_.token.size() &&
         sodium_memcmp(given.data(), options_.token.data(), given.size()) == 0;
}

template <typename Render>
void HttpServer::Impl::Latest(httplib::Response& res, const char* type, Render render) const {
  std::shared_ptr<const Snapshot> s = board_->Latest();
  if (!s) {
    res.status = 503;
    res.set_content("the master is starting; try again in a moment\n", "text/plain");
    return;
  }
  res.set_header("Cache-Control", "no-store");
  res.set_content(render(*s), type);
}

// Server-Sent Events: one "data:" message per published snapshot (a few a
// second), a comment line when nothing new came for a while so that a proxy
// keeps the stream open. A reader too slow to take a message within
// io_timeout is cut off: it costs a thread, never the loop.
void HttpServer::Impl::Stream(httplib::Response& res) {
  if (++streams_ > options_.max_streams) {
    --streams_;
    res.status = 503;
    res.set_content("too many dashboards open (at most " + std::to_string(options_.max_streams) +
                        "); close one and reload\n",
                    "text/plain");
    return;
  }
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  auto last = std::make_shared<uint64_t>(0);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, last](std::size_t, httplib::DataSink& sink) {
        if (stopping_) return false;
        std::shared_ptr<const Snapshot> s = board_->WaitNewer(*last, std::chrono::seconds(5));
        if (stopping_) return false;
        std::string message = ": still here\n\n";
        if (s) {
          *last = s->seq;
          message = "data: " + SnapshotJson(*s) + "\n\n";
        }
        return sink.write(message.data(), message.size());
      },
      [this](bool) { --streams_; });
}

void HttpServer::Impl::Routes() {
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/healthz" || Allowed(req)) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(
        "this dashboard needs its token: open the URL task_master printed at start "
        "(…?token=…), or send Authorization: Bearer TOKEN\n",
        "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(board_->Latest() ? "ok\n" : "starting\n", "text/plain");
    if (!board_->Latest()) res.status = 503;
  });
  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = DashboardHtml();
    res.set_header("Cache-Control", "no-store");
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http_.Get("/api/status", [this](const httplib::Request& req, httplib::Response& res) {
    const bool flow = req.get_param_value("flow") != "0";
    Latest(res, "application/json", [flow](const Snapshot& s) { return SnapshotJson(s, flow); });
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    Latest(res, "text/plain; version=0.0.4; charset=utf-8", SnapshotMetrics);
  });
  http_.Get("/events", [this](const httplib::Request&, httplib::Response& res) { Stream(res); });
}

HttpServer::HttpServer(HttpOptions options, SnapshotBoard* board)
    : impl_(std::make_unique<Impl>(std::move(options), board)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() { return impl_->Start(&port_); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace taskq
