#include "client/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace taskq {
namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_count{0};

void OnSignal(int) {
  int saved = errno;
  g_count.fetch_add(1);
  char c = 1;
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &c, 1);
  errno = saved;
}

}  // namespace

void InstallSignalPipe() {
  if (g_pipe[0] >= 0) return;
  if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return;
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // the pipe, not EINTR, is how loops learn of it
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int SignalFd() { return g_pipe[0]; }
int SignalCount() { return g_count.load(); }

}  // namespace taskq
