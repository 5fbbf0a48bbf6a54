#include "client/socket_watch.h"

#include <zmq.h>

#include <cerrno>

namespace taskq {

int SocketWatch::AddSocket(void* socket) {
  int fd = -1;
  size_t size = sizeof fd;
  zmq_getsockopt(socket, ZMQ_FD, &fd, &size);
  entries_.push_back(Entry{socket, true, false});
  fds_.push_back(pollfd{fd, POLLIN, 0});
  return static_cast<int>(entries_.size() - 1);
}

int SocketWatch::AddFd(int fd) {
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

bool SocketWatch::Wait(int timeout_ms) {
  bool any = false;
  failed_ = false;
  for (Entry& e : entries_) {
    e.ready = e.socket && e.touched && Readable(e);
    e.touched = false;
    any |= e.ready;
  }
  if (failed_) return false;
  for (pollfd& p : fds_) p.revents = 0;
  if (poll(fds_.data(), fds_.size(), any ? 0 : timeout_ms) < 0 && errno != EINTR) return false;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    e.ready |= fds_[i].revents != 0;
    e.touched = e.ready && e.socket;
  }
  return true;
}

}  // namespace taskq
