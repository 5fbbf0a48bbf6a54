#include "master/server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>

#include "master/server_loop.h"

namespace taskq {

Server::Server(zmq::context_t& ctx, ServerOptions options)
    : ctx_(ctx), options_(std::move(options)), done_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Server::~Server() {
  (void)Stop();
  if (done_fd_ >= 0) close(done_fd_);
}

Status Server::Start(RecoveryReport* report, Threading threading) {
  static std::atomic<uint64_t> n{0};
  const std::string control = "inproc://taskq-server-control-" + std::to_string(n.fetch_add(1));
  control_ = zmq::socket_t(ctx_, zmq::socket_type::pair);
  control_.set(zmq::sockopt::linger, 0);
  control_.bind(control);
  loop_ = std::make_unique<ServerLoop>(ctx_, options_, &local_);
  Status s = loop_->OpenJournal(report);
  Result<int> port = s.ok() ? loop_->Bind(control) : Result<int>(s);
  if (!port.ok()) {
    loop_.reset();
    return port.status();
  }
  port_ = *port;
  if (threading == Threading::kOwnThread) {
    RunInBackground();
  } else {
    loop_->Begin();
    pumped_ = true;
  }
  return Status::Ok();
}

void Server::RunInBackground() {
  if (!loop_ || thread_.joinable() || ended_) return;
  pumped_ = false;
  // The loop's sockets were made (or last used) on this thread; starting
  // the thread is the full memory barrier that lets them move to it.
  thread_ = std::thread([this] {
    loop_->Run();
    Ended();
  });
}

void Server::Ended() {
  ended_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t w = write(done_fd_, &one, sizeof one);
}

Status Server::Pump(SocketWatch& also, int timeout_ms) {
  if (!pumped_ || ended_) return StoppedStatus();
  if (!loop_->Step(&also, timeout_ms)) {
    Ended();
    return StoppedStatus();
  }
  return Status::Ok();
}

Status Server::StoppedStatus() const {
  Status s = failure();
  return s.ok() ? Status::Error(Code::kShutdown, "the master is shutting down") : s;
}

Status Server::failure() const { return loop_ ? loop_->failure() : Status::Ok(); }

Status Server::Stop(const std::string& reason) {
  if (!loop_) return Status::Ok();
  const bool running = thread_.joinable() || (pumped_ && !ended_);
  if (running) control_.send(zmq::buffer(reason), zmq::send_flags::dontwait);
  if (thread_.joinable()) {
    thread_.join();
  } else if (running) {  // pumped: the loop runs here until it reads the stop
    while (loop_->Step(nullptr, 1000)) {
    }
    ended_ = true;
  }
  Status failed = loop_->failure();
  loop_.reset();
  return failed;
}

}  // namespace taskq
