#include "worker/exec_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proto/utf8.h"

extern char** environ;

namespace taskq {
namespace {

constexpr std::size_t kStderrTail = 2048;
constexpr auto kKillGrace = std::chrono::milliseconds(1000);

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Replace(std::string s, std::string_view what, std::string_view with) {
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
    s.replace(at, what.size(), with);
  return s;
}

// The pipes between the worker and one command.
struct Pipes {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  ~Pipes() {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
      if (fd >= 0) close(fd);
  }
  bool Open() {
    return pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0;
  }
  static void Close(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

// What happened while the command ran.
struct CommandRun {
  std::string out, err_tail;
  bool too_much = false, timed_out = false, cancelled = false;
  int status = 0;
};

pid_t Spawn(const std::vector<std::string>& args, Pipes& p, int* error) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p.in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, p.out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p.err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A process group of its own, so a time limit kills what it started too;
  // SIGPIPE back to its default (the worker ignores it, and ignoring is
  // inherited); no blocked signals.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  pid_t pid = -1;
  *error = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return *error == 0 ? pid : -1;
}

// Feeds input, reads both outputs, and enforces the limits until the
// command has closed its outputs and exited.
void Supervise(pid_t pid, Pipes& p, const std::string& input, const ExecOptions& o,
               const CancelToken& cancel, CommandRun* run) {
  Pipes::Close(p.in[0]);
  Pipes::Close(p.out[1]);
  Pipes::Close(p.err[1]);
  for (int fd : {p.in[1], p.out[0], p.err[0]}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const auto start = std::chrono::steady_clock::now();
  auto killed_at = std::chrono::steady_clock::time_point::max();
  std::size_t written = 0;
  if (input.empty()) Pipes::Close(p.in[1]);
  auto stop = [&](bool* why) {
    *why = true;
    if (killed_at == std::chrono::steady_clock::time_point::max()) {
      kill(-pid, SIGTERM);
      killed_at = std::chrono::steady_clock::now();
    }
  };
  // A pidfd is readable when the process ends: no polling for its exit.
  const int exited = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  char buf[65536];
  bool reaped = false;
  auto reaped_at = std::chrono::steady_clock::time_point::max();
  for (;;) {
    pollfd fds[4] = {{p.out[0], POLLIN, 0},
                     {p.err[0], POLLIN, 0},
                     {p.in[1], POLLOUT, 0},
                     {reaped ? -1 : exited, POLLIN, 0}};
    if (!reaped && waitpid(pid, &run->status, WNOHANG) == pid) {
      reaped = true;
      reaped_at = std::chrono::steady_clock::now();
    }
    // Done when it has exited and its outputs are closed. Something it left
    // running in the background may hold them open: after a second, that
    // goes too.
    if (reaped && ((p.out[0] < 0 && p.err[0] < 0) ||
                   std::chrono::steady_clock::now() - reaped_at > kKillGrace)) {
      kill(-pid, SIGKILL);
      Pipes::Close(p.out[0]);
      Pipes::Close(p.err[0]);
      if (exited >= 0) close(exited);
      return;
    }
    // Without a pidfd (old kernels), look again every 50 ms; with one, the
    // 50 ms only paces the checks of the time limit and of cancellation.
    poll(fds, 4, 50);
    for (int i = 0; i < 2; ++i) {
      int& fd = i == 0 ? p.out[0] : p.err[0];
      if (fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        Pipes::Close(fd);
      } else if (n > 0 && i == 0) {
        run->out.append(buf, static_cast<std::size_t>(n));
        if (run->out.size() > o.max_output) stop(&run->too_much);
      } else if (n > 0) {
        run->err_tail.append(buf, static_cast<std::size_t>(n));
        if (run->err_tail.size() > kStderrTail)
          run->err_tail.erase(0, run->err_tail.size() - kStderrTail);
      }
    }
    if (p.in[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(p.in[1], input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      // Done, or the command does not read its input (EPIPE): either way, close.
      if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR))
        Pipes::Close(p.in[1]);
    }
    const auto now = std::chrono::steady_clock::now();
    if (o.timeout.count() > 0 && now - start > o.timeout) stop(&run->timed_out);
    if (cancel.cancelled()) stop(&run->cancelled);
    if (now - killed_at > kKillGrace && !reaped) kill(-pid, SIGKILL);
  }
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string ExecInput(const Value& arg) {
  if (std::optional<std::string> s = arg.AsStr()) return *s;
  return PackedToJson(arg.packed());
}

std::string FindCommand(const std::string& cmd) {
  auto runnable = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (cmd.find('/') != std::string::npos) return runnable(cmd) ? cmd : "";
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + cmd;
    if (runnable(candidate)) return candidate;
  }
  return "";
}

std::string ExecHandler::Describe(const Item& task) const {
  std::string line;
  const std::string input = ExecInput(task.arg);
  for (const std::string& a : options_.argv)
    line += (line.empty() ? "" : " ") + Replace(a, "{}", input);
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

// A command that exits without reading its input makes writing to it
// raise SIGPIPE, which would end the whole process unless ignored: block it
// on this thread while the command runs, and take what is pending after.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &saved_);
  }
  ~NoSigpipe() {
    const timespec now = {0, 0};
    while (sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }

 private:
  sigset_t pipe_, saved_;
};

RunOutcome ExecHandler::Run(const Item& task, const CancelToken& cancel) {
  const NoSigpipe no_sigpipe;
  const std::string input = ExecInput(task.arg);
  std::vector<std::string> args;
  for (const std::string& a : options_.argv) args.push_back(Replace(a, "{}", input));
  Pipes pipes;
  if (!pipes.Open())
    return RunOutcome::WorkerFault(std::string("cannot make pipes: ") + std::strerror(errno));
  int error = 0;
  const pid_t pid = Spawn(args, pipes, &error);
  // Arguments too long for the system: the task's argument did that. Any
  // other failure to start (the command gone, not executable, no memory or
  // processes left) is about this worker: another may run it.
  if (pid < 0 && error == E2BIG)
    return RunOutcome::Error("cannot run " + args[0] + ": the task's argument is too long (" +
                                 std::strerror(error) + ")",
                             false);
  // A program named by the task itself ({} in the command's first word)
  // that is not there is the task's failure, not the worker's.
  if (pid < 0 && options_.argv[0].find("{}") != std::string::npos)
    return RunOutcome::Error("cannot run " + args[0] + ": " + std::strerror(error), false);
  if (pid < 0)
    return RunOutcome::WorkerFault("cannot run " + args[0] + ": " + std::strerror(error));
  CommandRun run;
  Supervise(pid, pipes, input, options_, cancel, &run);
  const std::string tail = Trimmed(run.err_tail);
  const std::string said = tail.empty() ? "" : ": " + tail;
  if (run.too_much)
    return RunOutcome::Error("the command wrote more than " + std::to_string(options_.max_output) +
                                 " bytes (--max-output)",
                             false);
  if (run.timed_out)
    return RunOutcome::Error("the command ran past its time limit of " +
                             std::to_string(options_.timeout.count()) + " ms and was killed");
  if (run.cancelled) return RunOutcome::Error("the worker stopped before the command ended");
  if (WIFSIGNALED(run.status))
    return RunOutcome::Error("the command was killed by signal " +
                             std::to_string(WTERMSIG(run.status)) + said);
  if (WEXITSTATUS(run.status) != 0)
    return RunOutcome::Error("the command exited with code " +
                             std::to_string(WEXITSTATUS(run.status)) + said);
  std::string out = Trimmed(std::move(run.out));
  return RunOutcome::Ok(ValidUtf8(out) ? Value::Str(out) : Value::Bin(out));
}

}  // namespace taskq
