// SocketWatch against real ZeroMQ sockets (inproc pairs): it must never
// sleep through a message, whatever was done to the socket before the wait.
#include "client/socket_watch.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <zmq.hpp>

namespace taskq {
namespace {

// Long enough that a missed message fails the test by timing out the wait,
// short enough to keep the suite fast.
constexpr int kLongMs = 2000;

class SocketWatchTest : public ::testing::Test {
 protected:
  SocketWatchTest() : a_(ctx_, zmq::socket_type::pair), b_(ctx_, zmq::socket_type::pair) {
    a_.bind("inproc://watch");
    b_.connect("inproc://watch");
  }
  // Waits; true if it returned before kLongMs with b ready.
  bool WaitReady(SocketWatch& w, int i) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(w.Wait(kLongMs));
    return w.Ready(i) && std::chrono::steady_clock::now() - start < std::chrono::milliseconds(kLongMs);
  }
  zmq::context_t ctx_;
  zmq::socket_t a_, b_;
};

TEST_F(SocketWatchTest, AMessageSentBeforeTheFirstWaitIsSeen) {
  SocketWatch w;
  const int b = w.AddSocket(b_.handle());
  a_.send(zmq::str_buffer("x"));
  EXPECT_TRUE(WaitReady(w, b));
}

TEST_F(SocketWatchTest, NothingToReadTimesOutNotReady) {
  SocketWatch w;
  const int b = w.AddSocket(b_.handle());
  ASSERT_TRUE(w.Wait(0));  // asks the new socket
  ASSERT_TRUE(w.Wait(20));
  EXPECT_FALSE(w.Ready(b));
}

TEST_F(SocketWatchTest, MessagesLeftAfterAPartialReadAreSeen) {
  SocketWatch w;
  const int b = w.AddSocket(b_.handle());
  for (int i = 0; i < 3; ++i) a_.send(zmq::str_buffer("x"));
  ASSERT_TRUE(WaitReady(w, b));
  zmq::message_t m;
  ASSERT_TRUE(b_.recv(m, zmq::recv_flags::dontwait));  // one of three: the fd says nothing now
  EXPECT_TRUE(WaitReady(w, b));
}

TEST_F(SocketWatchTest, AMessageThatArrivesDuringASendIsSeen) {
  SocketWatch w;
  const int b = w.AddSocket(b_.handle());
  ASSERT_TRUE(w.Wait(0));
  zmq::message_t m;
  EXPECT_FALSE(b_.recv(m, zmq::recv_flags::dontwait));
  w.Drained(b);
  a_.send(zmq::str_buffer("x"));
  b_.send(zmq::str_buffer("y"));  // may take the signal of x's arrival off b's fd
  w.Touch(b);
  EXPECT_TRUE(WaitReady(w, b));
  ASSERT_TRUE(b_.recv(m, zmq::recv_flags::dontwait));
  EXPECT_EQ(m.to_string_view(), "x");
}

TEST_F(SocketWatchTest, AnIdleSocketIsNotAskedButItsMessageWakesTheWait) {
  zmq::socket_t c(ctx_, zmq::socket_type::pair), d(ctx_, zmq::socket_type::pair);
  c.bind("inproc://watch2");
  d.connect("inproc://watch2");
  SocketWatch w;
  const int b = w.AddSocket(b_.handle());
  const int dd = w.AddSocket(d.handle());
  ASSERT_TRUE(w.Wait(0));  // both asked once; nothing there
  // Before or while the wait blocks: either way d's fd must wake it.
  std::thread sender([&] { c.send(zmq::str_buffer("z")); });
  EXPECT_TRUE(WaitReady(w, dd));
  EXPECT_FALSE(w.Ready(b));
  sender.join();
}

TEST_F(SocketWatchTest, APlainFdIsReadyWhenReadable) {
  SocketWatch w;
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int i = w.AddFd(fd);
  ASSERT_TRUE(w.Wait(0));
  EXPECT_FALSE(w.Ready(i));
  const uint64_t one = 1;
  ASSERT_EQ(write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  EXPECT_TRUE(WaitReady(w, i));
  close(fd);
}

// WaitWith (task_master's job and server loop on one thread): one poll for
// both watches, each told what is ready in it, the other's entries not.
TEST_F(SocketWatchTest, WaitWithReportsEachWatchItsOwnReadiness) {
  zmq::socket_t c(ctx_, zmq::socket_type::pair), d(ctx_, zmq::socket_type::pair);
  c.bind("inproc://watch-other");
  d.connect("inproc://watch-other");
  SocketWatch mine, other;
  const int b = mine.AddSocket(b_.handle());
  const int dd = other.AddSocket(d.handle());
  ASSERT_TRUE(mine.WaitWith(other, 0));  // asks the new sockets
  c.send(zmq::str_buffer("x"));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(mine.WaitWith(other, kLongMs));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(kLongMs));
  EXPECT_FALSE(mine.Ready(b));
  EXPECT_TRUE(other.Ready(dd));
  zmq::message_t m;
  ASSERT_TRUE(d.recv(m, zmq::recv_flags::dontwait));
  ASSERT_FALSE(d.recv(m, zmq::recv_flags::dontwait));
  other.Drained(dd);
  a_.send(zmq::str_buffer("y"));
  ASSERT_TRUE(mine.WaitWith(other, kLongMs));
  EXPECT_TRUE(mine.Ready(b));
  EXPECT_FALSE(other.Ready(dd));
  // Nothing anywhere: it times out with neither ready.
  ASSERT_TRUE(b_.recv(m, zmq::recv_flags::dontwait));
  ASSERT_FALSE(b_.recv(m, zmq::recv_flags::dontwait));
  mine.Drained(b);
  ASSERT_TRUE(mine.WaitWith(other, 20));
  EXPECT_FALSE(mine.Ready(b));
  EXPECT_FALSE(other.Ready(dd));
}

}  // namespace
}  // namespace taskq
