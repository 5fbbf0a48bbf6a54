#include "client/signals.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

namespace taskq {
namespace {

int g_stop[2] = {-1, -1};
int g_status[2] = {-1, -1};
std::atomic<int> g_count{0};
bool g_exit_on_second = false;

void OnStop(int) {
  const int saved = errno;
  if (g_count.fetch_add(1) + 1 >= 2 && g_exit_on_second) _exit(130);
  char c = 1;
  [[maybe_unused]] ssize_t n = write(g_stop[1], &c, 1);
  errno = saved;
}

void OnStatus(int) {
  const int saved = errno;
  char c = 1;
  [[maybe_unused]] ssize_t n = write(g_status[1], &c, 1);
  errno = saved;
}

// The signals are blocked in every thread started after InstallSignalPipe
// (they inherit the mask) and taken here instead, so none of them is ever
// interrupted by one: libzmq calls fail with EINTR when a handler runs on
// their thread (cppzmq throws it), and task_master runs its server loop on
// main during a job (master/server.h, Server::Pump).
void TakeSignals(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGUSR1)
      OnStatus(sig);
    else
      OnStop(sig);
  }
}

void Install(int sig, void (*fn)(int)) {
  struct sigaction sa = {};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // the pipe, not EINTR, is how loops learn of it
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void InstallSignalPipe(bool exit_on_second) {
  if (g_stop[0] >= 0) return;
  if (pipe2(g_stop, O_CLOEXEC | O_NONBLOCK) != 0 || pipe2(g_status, O_CLOEXEC | O_NONBLOCK) != 0)
    return;
  g_exit_on_second = exit_on_second;
  // The handlers stay, for a thread started before this call (its mask lets
  // the signals in): they do what TakeSignals does.
  Install(SIGINT, OnStop);
  Install(SIGTERM, OnStop);
  Install(SIGUSR1, OnStatus);
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0) std::thread(TakeSignals, set).detach();
}

int SignalFd() { return g_stop[0]; }
int SignalCount() { return g_count.load(); }
int StatusFd() { return g_status[0]; }

bool DrainStatus() {
  char buf[64];
  bool any = false;
  while (g_status[0] >= 0 && read(g_status[0], buf, sizeof buf) > 0) any = true;
  return any;
}

}  // namespace taskq
