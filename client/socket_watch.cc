#include "client/socket_watch.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>

namespace taskq {

uint64_t SocketWatch::NextGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

int SocketWatch::AddSocket(void* socket) {
  int fd = -1;
  size_t size = sizeof fd;
  zmq_getsockopt(socket, ZMQ_FD, &fd, &size);
  generation_ = NextGeneration();
  entries_.push_back(Entry{socket, true, false});
  fds_.push_back(pollfd{fd, POLLIN, 0});
  return static_cast<int>(entries_.size() - 1);
}

int SocketWatch::AddFd(int fd) {
  generation_ = NextGeneration();
  entries_.push_back(Entry{nullptr, false, false});
  fds_.push_back(pollfd{fd, POLLIN, 0});
  return static_cast<int>(entries_.size() - 1);
}

// Asks the socket (which also takes the signal off its fd).
bool SocketWatch::Readable(Entry& e) {
  int events = 0;
  size_t size = sizeof events;
  if (zmq_getsockopt(e.socket, ZMQ_EVENTS, &events, &size) != 0) {
    failed_ = true;  // the context is ending (ETERM) or the socket is gone
    return false;
  }
  return (events & ZMQ_POLLIN) != 0;
}

bool SocketWatch::Begin(bool* any) {
  failed_ = false;
  for (Entry& e : entries_) {
    e.ready = e.socket && e.touched && Readable(e);
    e.touched = false;
    *any |= e.ready;
  }
  for (pollfd& p : fds_) p.revents = 0;
  return !failed_;
}

void SocketWatch::End() {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    e.ready |= fds_[i].revents != 0;
    e.touched = e.ready && e.socket;
  }
}

bool SocketWatch::Wait(int timeout_ms) {
  bool any = false;
  if (!Begin(&any)) return false;
  if (poll(fds_.data(), fds_.size(), any ? 0 : timeout_ms) < 0 && errno != EINTR) return false;
  End();
  return true;
}

bool SocketWatch::WaitWith(SocketWatch& other, int timeout_ms) {
  bool any = false;
  if (!Begin(&any) || !other.Begin(&any)) return false;
  both_.assign(fds_.begin(), fds_.end());
  both_.insert(both_.end(), other.fds_.begin(), other.fds_.end());
  if (poll(both_.data(), both_.size(), any ? 0 : timeout_ms) < 0 && errno != EINTR) return false;
  for (std::size_t i = 0; i < fds_.size(); ++i) fds_[i].revents = both_[i].revents;
  for (std::size_t i = 0; i < other.fds_.size(); ++i)
    other.fds_[i].revents = both_[fds_.size() + i].revents;
  End();
  other.End();
  return true;
}

}  // namespace taskq
