// Where the authkey comes from: --authkey, --authkey-file or TASKQ_AUTHKEY.
// The key is never printed or logged, and there is no default key. A
// worker's or submitter's key (proto/keys.h) comes the same ways.
#ifndef TASKQ_CLIENT_AUTHKEY_H_
#define TASKQ_CLIENT_AUTHKEY_H_

#include <string>

#include "proto/status.h"

namespace taskq {

// A flag given on the command line wins: flag_value, then the first line of
// file_path (trailing CR/LF stripped), then the TASKQ_AUTHKEY environment
// variable. Fails with a sentence naming all three when none gives a key,
// and (kInvalid) for a credential that is damaged (CheckCredential): that
// is found here, before any work, and the sentence does not repeat the key.
Result<std::string> ResolveAuthkey(const std::string& flag_value, const std::string& file_path);

}  // namespace taskq

#endif  // TASKQ_CLIENT_AUTHKEY_H_
