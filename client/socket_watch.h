// SocketWatch: waits on ZeroMQ sockets and plain fds with one poll(2), asking
// a socket for its events only when it may have changed.
//
// Why not zmq_poll: it asks every socket for ZMQ_EVENTS before it blocks and
// again after, and each ask costs two syscalls (libzmq's fork check,
// getpid, and its mailbox check, poll). With four sockets that was 17
// syscalls per wake-up, most of them for sockets idle all along (the ZAP
// and monitor sockets): a third of the master's CPU time per task with one
// task in flight.
//
// Why it is correct (zmq_getsockopt(3), ZMQ_FD): a socket's fd signals
// commands arriving in its mailbox, and any call on the socket may consume
// that signal while leaving messages readable. So a socket is asked again
// (ZMQ_EVENTS) before blocking if anything was done to it since it was last
// asked; one left alone needs no asking, since a new message for it signals
// its fd. Callers say what they did with Touch; a socket reported ready
// counts as touched (its owner is about to read it). A socket whose fd
// fired is reported ready without asking it: the owner's non-blocking
// receive asks anyway, and says EAGAIN if the wake-up was for something
// else.
//
// Thread: like the sockets it watches, one thread only.
#ifndef TASKQ_CLIENT_SOCKET_WATCH_H_
#define TASKQ_CLIENT_SOCKET_WATCH_H_

#include <poll.h>

#include <cstdint>
#include <vector>

namespace taskq {

class SocketWatch {
 public:
  SocketWatch() : generation_(NextGeneration()) {}
  // Names this watch with what it watches: another watch, or this one
  // after an Add, has another (ServerLoop::Step: "polled these fds").
  uint64_t generation() const { return generation_; }
  // Adds a socket (a libzmq handle) or a plain fd; returns its index.
  // Sockets start touched: nobody has asked them yet.
  int AddSocket(void* socket);
  int AddFd(int fd);
  // Something was sent to, received from or set on socket i.
  void Touch(int i) { entries_[i].touched = true; }
  // The last thing done to socket i was a receive that found nothing: that
  // processed its commands, so its fd tells the truth until the next call.
  void Drained(int i) { entries_[i].touched = false; }
  // Blocks until an entry is ready or timeout_ms passes (-1: no limit).
  // Returns false when poll(2) failed (other than EINTR) or a socket could
  // not be asked (its context is ending).
  bool Wait(int timeout_ms);
  // Wait on this watch's entries and other's with one poll(2): both are
  // updated as by their own Wait. (task_master runs its job and its server
  // loop on one thread this way: master/server.h, Server::Pump.)
  bool WaitWith(SocketWatch& other, int timeout_ms);
  // No wait this time: nothing is ready (the caller has work in hand and
  // polls again soon); what was touched stays so, to be asked next Wait.
  void Skip() {
    for (Entry& e : entries_) e.ready = false;
  }
  // After Wait: socket i may have a message (receive without blocking to
  // see) / fd i is readable.
  bool Ready(int i) const { return entries_[i].ready; }

 private:
  struct Entry {
    void* socket = nullptr;  // null for a plain fd
    bool touched = true;
    bool ready = false;
  };
  bool Readable(Entry& e);
  // Wait in two halves: asks the touched sockets (any: one is ready, so
  // poll must not block), then reads the poll's results.
  bool Begin(bool* any);
  void End();

  static uint64_t NextGeneration();

  uint64_t generation_;
  std::vector<Entry> entries_;
  bool failed_ = false;
  std::vector<pollfd> fds_;
  std::vector<pollfd> both_;  // WaitWith's scratch
};

}  // namespace taskq

#endif  // TASKQ_CLIENT_SOCKET_WATCH_H_
