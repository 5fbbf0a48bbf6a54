// Process: a real binary started by a test, with its stdout and stderr
// captured, so a test can wait for a line (with a deadline) and for the exit
// code (with a deadline). Nothing here sleeps to synchronise: every wait is
// on an event, bounded by a timeout, so a hang fails the test.
//
// The child runs in a process group of its own; the destructor kills the
// group (SIGKILL) if it still runs.
#ifndef TASKQ_TESTS_PROCESS_H_
#define TASKQ_TESTS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace taskq::testing {

using std::chrono::milliseconds;

class Process {
 public:
  // Starts argv[0] with argv, the current environment plus env ("K=V").
  static std::unique_ptr<Process> Start(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env = {});
  ~Process();

  // Waits until stdout (or stderr, if from_err) has a line matching re and
  // returns its first capture group (or the whole line); nullopt after timeout
  // or when the stream ended without one.
  std::optional<std::string> WaitForLine(const std::string& re, milliseconds timeout,
                                         bool from_err = false);
  // Counts lines of stdout matching re so far.
  int CountLines(const std::string& re) const;
  // Waits for the exit; returns the exit code, 128+N for a signal, nullopt on timeout.
  std::optional<int> Wait(milliseconds timeout);
  void Signal(int sig);
  bool Running();

  std::string out() const;
  std::string err() const;
  pid_t pid() const { return pid_; }

 private:
  Process() = default;
  void ReadLoop(int out_fd, int err_fd);

  pid_t pid_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string out_, err_;
  bool streams_closed_ = false;
  std::optional<int> exit_code_;
  std::thread reader_;
};

// A port of 127.0.0.1 held for a test until *fd is closed (0, and *fd -1, if
// none could be had): the socket is bound with SO_REUSEADDR and never
// listens, so a server that sets SO_REUSEADDR too (libzmq does, and so does
// Go's net.Listen, hence nats-server) can listen on it, while no other bind,
// nor an outgoing connection's source port, can take it; with no server on it,
// a connection is refused. So a server killed and started again on the same
// port cannot lose it in between, as it can a port 0 gave.
int ReserveLoopbackPort(int* fd);

// Reads "listening on ADDR:PORT" from a master's first line (of stderr when
// its stdout carries JSON: --json, --results -).
std::optional<int> MasterPort(Process& master, milliseconds timeout = milliseconds(10000),
                              bool from_err = false);

}  // namespace taskq::testing

#endif  // TASKQ_TESTS_PROCESS_H_
