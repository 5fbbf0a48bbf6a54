#include "cli/server_flags.h"

#include <iostream>

#include "client/endpoint.h"
#include "client/exit_codes.h"
#include "client/signals.h"

namespace taskq {

void ServerFlags::AddTo(CLI::App* app) {
  app->add_option("--server", server, "the master's address: HOST, HOST:PORT or tcp://HOST:PORT")
      ->default_val("127.0.0.1");
  app->add_option("--port", port, "the master's port when --server names none")
      ->default_val(kDefaultPort)
      ->check(CLI::Range(1, 65535));
  app->add_option("--connect-timeout", connect_timeout_s, "seconds to wait for the master to answer")
      ->default_val(10)
      ->check(Seconds(true));
  keys.AddTo(*app);
}

std::string ServerFlags::Flag() const {
  Result<ServerAddress> addr = ParseServerAddress(server, port);
  return "--server " + (addr.ok() ? addr->Display() : server);
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kAuthFailed:
      return kExitAuthFailed;
    case Code::kTimeout:
    case Code::kUnavailable:
    case Code::kShutdown:
      return kExitUnavailable;
    case Code::kInterrupted:
      return kExitInterrupted;
    case Code::kInvalid:
      return kExitUsage;
    case Code::kForbidden:
      return kExitForbidden;
    default:
      return kExitError;
  }
}

int Fail(const Status& s) {
  std::cerr << "taskq: " << s.message() << "\n";
  return ExitCodeFor(s);
}

Result<std::unique_ptr<Client>> Open(const ServerFlags& f, const char* name) {
  Result<ServerAddress> addr = ParseServerAddress(f.server, f.port);
  if (!addr.ok()) return Status::Error(Code::kInvalid, addr.status().message());
  if (Status s = ResolveHost(*addr); !s.ok())  // libzmq would retry a bad name silently
    return Status::Error(Code::kInvalid, "--server " + f.server + ": " + s.message());
  Result<std::string> k = ResolveAuthkey(f.keys.key, f.keys.file);
  if (!k.ok()) return Status::Error(Code::kInvalid, k.status().message());
  ClientOptions o;
  o.name = name;
  o.connect_timeout = Millis(f.connect_timeout_s);
  o.interrupt_fd = SignalFd();
  return Client::Connect(addr->Display(), *k, o);
}

}  // namespace taskq
