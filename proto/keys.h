// CURVE keypairs derived from the shared authkey. The authkey itself never
// crosses the wire: both sides derive the same keys and CurveZMQ proves
// possession during the handshake. docs/PROTOCOL.md has the exact recipe and
// test vectors.
//
// The authkey is the admin's key: it may do everything. It also issues the
// restricted keys (credentials) of the worker and submitter roles, which a
// peer uses in its place: one printable string each, carrying the role, the
// role's secret and the master's public key, from which the authkey cannot
// be recovered (docs/PROTOCOL.md 2.2, 2.5).
#ifndef TASKQ_PROTO_KEYS_H_
#define TASKQ_PROTO_KEYS_H_

#include <string>
#include <string_view>

#include "proto/role.h"
#include "proto/status.h"

namespace taskq {

struct KeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters; empty when not known
};

struct DerivedKeys {
  KeyPair master;  // the master's CURVE server keypair; from a credential, its public key only
  KeyPair client;  // the keypair this peer presents
  Role role = Role::kAdmin;  // the authkey's, or the credential's
  // From the authkey only: the client public keys of the restricted roles,
  // which the master admits too, with their role.
  std::string worker_public_z85;
  std::string submitter_public_z85;
};

// The restricted keys an authkey issues ("taskq-worker-v1:...").
struct Credentials {
  std::string worker;
  std::string submitter;
};

// True when key has the form of a credential: "taskq-", lowercase letters,
// "-v", digits, ":". Such a key is always read as a credential, never as an
// authkey (so "taskq-demo-key" is an authkey, "taskq-worker-v1:..." is not).
bool IsCredential(std::string_view key);
// Checks a credential's role, version and fields without deriving anything.
// kInvalid with a sentence that never repeats the key.
Status CheckCredential(std::string_view key);

// For an authkey: Argon2id(authkey, salt "taskq-authkey-v1", ops 2, mem 64
// MiB) -> root key, then crypto_kdf subkeys 1 (master), 2 (admin client), 3
// (worker) and 4 (submitter) with context "taskq-kp", each the seed of
// crypto_box_seed_keypair. About 0.1 s and 64 MiB. For a credential: its
// role's keypair from the secret it carries, and the master public key it
// carries; no Argon2id. Fails (kInvalid) for an empty key or a damaged
// credential, or (kIo) when memory cannot be had.
Result<DerivedKeys> DeriveKeys(std::string_view authkey);

// The worker and submitter credentials of an authkey (a credential cannot
// issue any: kInvalid). About 0.1 s, as DeriveKeys.
Result<Credentials> IssueCredentials(std::string_view authkey);

}  // namespace taskq

#endif  // TASKQ_PROTO_KEYS_H_
