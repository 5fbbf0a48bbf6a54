// taskq keys: the restricted keys an authkey issues, printed for the admin
// to hand out (docs/PROTOCOL.md 2.2, 2.5). No master is needed: they are
// derived from the authkey alone, and a master holding the authkey admits
// them as they are.
#ifndef TASKQ_CLI_KEYS_H_
#define TASKQ_CLI_KEYS_H_

#include <string>

#include "client/command_line.h"

namespace taskq {

struct KeysFlags {
  AuthkeyFlags keys;
  std::string role;  // --role: print this one alone; empty: both, labelled
};

CLI::App* AddKeys(CLI::App& app, KeysFlags& f);
int Keys(const KeysFlags& f);

}  // namespace taskq

#endif  // TASKQ_CLI_KEYS_H_
