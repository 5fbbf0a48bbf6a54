// CURVE keypairs derived from the shared authkey. The authkey itself never
// crosses the wire: both sides derive the same keys and CurveZMQ proves
// possession during the handshake. docs/PROTOCOL.md has the exact recipe and
// test vectors.
#ifndef TASKQ_PROTO_KEYS_H_
#define TASKQ_PROTO_KEYS_H_

#include <string>
#include <string_view>

#include "proto/status.h"

namespace taskq {

struct KeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

struct DerivedKeys {
  KeyPair master;  // the master's CURVE server keypair
  KeyPair client;  // the keypair every worker and client presents
};

// Argon2id(authkey, salt "taskq-authkey-v1", ops 2, mem 64 MiB) -> root key,
// then crypto_kdf subkeys 1 (master) and 2 (client) with context "taskq-kp",
// each the seed of crypto_box_seed_keypair. Takes about 0.1 s and 64 MiB.
// Fails for an empty authkey or when memory cannot be had.
Result<DerivedKeys> DeriveKeys(std::string_view authkey);

}  // namespace taskq

#endif  // TASKQ_PROTO_KEYS_H_
