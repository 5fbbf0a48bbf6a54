// What every taskq subcommand needs to reach the master: the --server,
// --port, --connect-timeout and authkey flags, and the exit code and
// message for a failed call.
#ifndef TASKQ_CLI_SERVER_FLAGS_H_
#define TASKQ_CLI_SERVER_FLAGS_H_

#include <memory>
#include <string>

#include "client/client.h"
#include "client/command_line.h"
#include "client/endpoint.h"

namespace taskq {

struct ServerFlags {
  std::string server = "127.0.0.1";
  int port = kDefaultPort;
  double connect_timeout_s = 10;
  AuthkeyFlags keys;

  void AddTo(CLI::App* app);
  // "--server HOST:PORT" as the user gave it, for messages that say what
  // to run next ("taskq results ID --server ...").
  std::string Flag() const;
};

// Says "taskq: MESSAGE" on stderr and returns ClientExitCode(s)
// (client/exit_codes.h).
int Fail(const Status& s);
// Fail, for what only the authkey may do (what: "taskq retry"): a refusal
// says so in those words rather than in the protocol's.
int FailAsAdminOnly(const char* what, const Status& s);
// Connects (the name shows in the master's log and stats); a bad address
// or authkey flag is kInvalid.
Result<std::unique_ptr<Client>> Open(const ServerFlags& f, const char* name);

}  // namespace taskq

#endif  // TASKQ_CLI_SERVER_FLAGS_H_
