#include "tests/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

extern char** environ;

namespace taskq::testing {
namespace {

bool LineMatches(const std::string& text, const std::regex& re, std::string* capture) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      *capture = m.size() > 1 ? m[1].str() : m[0].str();
      return true;
    }
  }
  return false;
}

}  // namespace

std::unique_ptr<Process> Process::Start(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return nullptr;
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (const std::string& kv : env) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(envs, [&](const std::string& s) { return s.rfind(key, 0) == 0; });
    envs.push_back(kv);
  }
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    setpgid(0, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]);
  close(err[1]);
  std::unique_ptr<Process> p(new Process());
  p->pid_ = pid;
  p->reader_ = std::thread([raw = p.get(), o = out[0], e = err[0]] { raw->ReadLoop(o, e); });
  return p;
}

Process::~Process() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);  // the group: children a task started too
    if (Running()) kill(pid_, SIGKILL);
  }
  if (reader_.joinable()) reader_.join();
}

void Process::ReadLoop(int out_fd, int err_fd) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
      cv_.notify_all();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams_closed_ = true;
    cv_.notify_all();
  }
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) {
    std::lock_guard<std::mutex> lock(mu_);
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    cv_.notify_all();
  }
}

std::optional<std::string> Process::WaitForLine(const std::string& re, milliseconds timeout,
                                                bool from_err) {
  const std::regex rx(re);
  std::string capture;
  std::unique_lock<std::mutex> lock(mu_);
  const bool found = cv_.wait_for(lock, timeout, [&] {
    return LineMatches(from_err ? err_ : out_, rx, &capture) || streams_closed_;
  });
  if (found && LineMatches(from_err ? err_ : out_, rx, &capture)) return capture;
  return std::nullopt;
}

int Process::CountLines(const std::string& re) const {
  const std::regex rx(re);
  std::lock_guard<std::mutex> lock(mu_);
  std::istringstream in(out_);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += std::regex_search(line, rx) ? 1 : 0;
  return n;
}

std::optional<int> Process::Wait(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return exit_code_.has_value(); })) return std::nullopt;
  return exit_code_;
}

void Process::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

bool Process::Running() {
  std::lock_guard<std::mutex> lock(mu_);
  return !exit_code_.has_value();
}

std::string Process::out() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string Process::err() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

std::optional<int> MasterPort(Process& master, milliseconds timeout, bool from_err) {
  std::optional<std::string> port =
      master.WaitForLine(R"(listening on \S+:(\d+))", timeout, from_err);
  if (!port) return std::nullopt;
  return std::stoi(*port);
}

int ReserveLoopbackPort(int* fd) {
  // CLOEXEC: the binaries the test starts must not hold the port as well.
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (*fd < 0 || setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(*fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(*fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int saved = errno;  // for the caller's message
    if (*fd >= 0) close(*fd);
    *fd = -1;
    errno = saved;
    return 0;
  }
  return ntohs(a.sin_port);
}

}  // namespace taskq::testing
