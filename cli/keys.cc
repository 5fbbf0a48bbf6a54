#include "cli/keys.h"

#include <unistd.h>

#include <iostream>

#include "client/exit_codes.h"
#include "proto/keys.h"

namespace taskq {

CLI::App* AddKeys(CLI::App& app, KeysFlags& f) {
  CLI::App* c = app.add_subcommand(
      "keys",
      "prints the worker key and the submitter key this authkey issues, to hand out "
      "instead of the authkey");
  f.keys.AddTo(*c);
  c->add_option("--role", f.role, "print only this role's key, bare (for a file)")
      ->check(CLI::IsMember({"worker", "submitter"}));
  c->footer(
      "A worker key can only take tasks, run them and report (task_worker); a submitter key\n"
      "can only put tasks and collect its own jobs' outcomes (taskq submit, taskq results,\n"
      "taskq status). Neither can purge, retry, read another job or give back the authkey.\n"
      "A master started with the authkey admits both as they are: no master is needed here.\n"
      "The same authkey always gives the same keys; to revoke them, change the authkey.\n\n"
      "Examples:\n"
      "  taskq keys --authkey-file key.txt\n"
      "  (umask 077; taskq keys --authkey-file key.txt --role worker > worker.key)\n"
      "  task_worker --server teacher-laptop --authkey-file worker.key");
  return c;
}

int Keys(const KeysFlags& f) {
  std::string authkey;
  if (std::optional<int> code = f.keys.Resolve("taskq", &authkey)) return *code;
  Result<Credentials> c = IssueCredentials(authkey);
  if (!c.ok()) {
    std::cerr << "taskq: keys: " << c.status().message() << "\n";
    return c.status().code() == Code::kInvalid ? kExitUsage : kExitError;
  }
  if (f.role == "worker") {
    std::cout << c->worker << std::endl;
  } else if (f.role == "submitter") {
    std::cout << c->submitter << std::endl;
  } else {
    std::cout << "worker     " << c->worker << "\n"
              << "submitter  " << c->submitter << std::endl;
    if (isatty(STDOUT_FILENO))
      std::cerr << "Give task_worker the worker key and taskq the submitter key (with "
                   "--authkey-file FILE, or TASKQ_AUTHKEY); keep the authkey for task_master "
                   "and yourself. One key alone: taskq keys --role worker > worker.key\n";
  }
  return kExitOk;
}

}  // namespace taskq
