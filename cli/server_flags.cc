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

int Fail(const Status& s) {
  std::cerr << "taskq: " << s.message() << "\n";
  return ClientExitCode(s);
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
  Result<std::unique_ptr<Client>> c = Client::Connect(addr->Display(), *k, o);
  // The master refused the hello: the key is a worker's, which taskq is not.
  if (!c.ok() && c.status().code() == Code::kForbidden)
    return Status::Error(Code::kForbidden,
                         "this is a worker's key: it runs tasks (task_worker), and taskq takes "
                         "the authkey or a submitter's key (the master said: " +
                             c.status().message() + ")");
  return c;
}

int FailAsAdminOnly(const char* what, const Status& s) {
  if (s.code() != Code::kForbidden) return Fail(s);
  std::cerr << "taskq: " << what << " takes the authkey itself, not a worker's or a submitter's "
            << "key (the master said: " << s.message() << ")\n";
  return ClientExitCode(s);
}

}  // namespace taskq
