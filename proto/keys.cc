#include "proto/keys.h"

#include <sodium.h>
#include <zmq.h>

#include <array>
#include <cctype>
#include <cstdint>

namespace taskq {
namespace {

using Key32 = std::array<unsigned char, 32>;

// Fixed and public: the salt only separates taskq's key space from other uses
// of the same password; secrecy rests on the authkey.
constexpr char kSalt[crypto_pwhash_SALTBYTES + 1] = "taskq-authkey-v1";
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "taskq-kp";
constexpr uint64_t kMasterSubkey = 1;
constexpr uint64_t kClientSubkey = 2;  // the admin's: the authkey's own client
constexpr uint64_t kWorkerSubkey = 3;
constexpr uint64_t kSubmitterSubkey = 4;

// A credential: "taskq-ROLE-v1:" SECRET ":" MASTER, each field 32 bytes in
// base64url without padding. Not Z85: its $ ! & * ? { } ( ) < > # would be
// mangled by a shell or an env file, and its ':' would make the fields
// ambiguous.
constexpr std::string_view kCredentialPrefix = "taskq-";
constexpr std::string_view kCredentialVersion = "1";
constexpr std::size_t kFieldChars = 43;
constexpr int kBase64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

std::string Z85(const unsigned char* key32) {
  char out[41];
  zmq_z85_encode(out, key32, 32);
  return std::string(out, 40);
}

std::string Base64Url(const Key32& key) {
  char out[sodium_base64_ENCODED_LEN(32, kBase64)];
  sodium_bin2base64(out, sizeof out, key.data(), key.size(), kBase64);
  return out;
}

// Exactly 43 characters of base64url, canonical (unused bits zero).
bool FromBase64Url(std::string_view text, Key32* out) {
  std::size_t len = 0;
  const char* end = nullptr;
  return text.size() == kFieldChars &&
         sodium_base642bin(out->data(), out->size(), text.data(), text.size(), nullptr, &len, &end,
                           kBase64) == 0 &&
         len == out->size() && end == text.data() + text.size();
}

Key32 Seed(const Key32& root, uint64_t subkey) {
  Key32 seed;
  crypto_kdf_derive_from_key(seed.data(), seed.size(), subkey, kKdfContext, root.data());
  return seed;
}

KeyPair PairFromSeed(const Key32& seed) {
  std::array<unsigned char, crypto_box_PUBLICKEYBYTES> pk;
  std::array<unsigned char, crypto_box_SECRETKEYBYTES> sk;
  crypto_box_seed_keypair(pk.data(), sk.data(), seed.data());
  KeyPair kp{Z85(pk.data()), Z85(sk.data())};
  sodium_memzero(sk.data(), sk.size());
  return kp;
}

KeyPair PairFromRoot(const Key32& root, uint64_t subkey) {
  Key32 seed = Seed(root, subkey);
  KeyPair kp = PairFromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return kp;
}

// The Argon2id root of an authkey (not a credential); the caller wipes it.
Status RootOf(std::string_view authkey, Key32* root) {
  if (authkey.empty()) return Status::Error(Code::kInvalid, "the authkey is empty");
  if (sodium_init() < 0) return Status::Error(Code::kIo, "libsodium could not be initialised");
  static_assert(sizeof(kSalt) - 1 == crypto_pwhash_SALTBYTES);
  static_assert(sizeof(kKdfContext) - 1 == crypto_kdf_CONTEXTBYTES);
  static_assert(crypto_kdf_KEYBYTES == 32 && crypto_box_SEEDBYTES == 32);
  if (crypto_pwhash(root->data(), root->size(), authkey.data(), authkey.size(),
                    reinterpret_cast<const unsigned char*>(kSalt),
                    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::Error(Code::kIo, "not enough memory to derive keys from the authkey");
  }
  return Status::Ok();
}

Status Damaged(const std::string& why) {
  return Status::Error(Code::kInvalid, "the key looks like a taskq credential, but " + why);
}

struct Credential {
  Role role = Role::kWorker;
  Key32 secret{};
  Key32 master_public{};
  ~Credential() { sodium_memzero(secret.data(), secret.size()); }
};

// The role and version of a credential's head ("taskq-worker-v1").
Status ParseHead(std::string_view head, Role* role) {
  head.remove_prefix(kCredentialPrefix.size());
  const std::size_t v = head.rfind("-v");
  const std::string_view name = head.substr(0, v), version = head.substr(v + 2);
  if (version != kCredentialVersion)
    return Damaged("it is of version v" + std::string(version.substr(0, 12)) +
                   ", and this taskq reads v" + std::string(kCredentialVersion));
  const std::optional<Role> r = RoleFromName(name);
  if (!r || *r == Role::kAdmin)
    return Damaged("it names the role '" + std::string(name.substr(0, 24)) +
                   "': a credential is a 'worker' or a 'submitter' key (the authkey itself is "
                   "the admin's)");
  *role = *r;
  return Status::Ok();
}

Status Parse(std::string_view key, Credential* c) {
  const std::size_t colon = key.find(':');
  TASKQ_TRY(ParseHead(key.substr(0, colon), &c->role));
  const std::string_view fields = key.substr(colon + 1);
  const std::string copy = "; copy the whole key that taskq keys printed";
  if (fields.size() != 2 * kFieldChars + 1 || fields[kFieldChars] != ':')
    return Damaged("it is cut or damaged: '" + std::string(key.substr(0, colon + 1)) +
                   "' is followed by two fields of " + std::to_string(kFieldChars) +
                   " characters joined by ':'" + copy);
  const std::string chars =
      " (not " + std::to_string(kFieldChars) + " characters of A-Z a-z 0-9 - _)";
  if (!FromBase64Url(fields.substr(0, kFieldChars), &c->secret))
    return Damaged("its role secret is damaged" + chars + copy);
  if (!FromBase64Url(fields.substr(kFieldChars + 1), &c->master_public))
    return Damaged("its master key is damaged" + chars + copy);
  return Status::Ok();
}

std::string Format(Role role, const Key32& secret, const Key32& master_public) {
  return std::string(kCredentialPrefix) + std::string(RoleName(role)) + "-v" +
         std::string(kCredentialVersion) + ":" + Base64Url(secret) + ":" + Base64Url(master_public);
}

Result<DerivedKeys> FromCredential(std::string_view key) {
  if (sodium_init() < 0) return Status::Error(Code::kIo, "libsodium could not be initialised");
  Credential c;
  TASKQ_TRY(Parse(key, &c));
  DerivedKeys keys;
  keys.master.public_z85 = Z85(c.master_public.data());
  keys.client = PairFromSeed(c.secret);
  keys.role = c.role;
  return keys;
}

}  // namespace

bool IsCredential(std::string_view key) {
  if (key.substr(0, kCredentialPrefix.size()) != kCredentialPrefix) return false;
  std::size_t i = kCredentialPrefix.size();
  const std::size_t letters = i;
  while (i < key.size() && key[i] >= 'a' && key[i] <= 'z') ++i;
  if (i == letters || key.substr(i, 2) != "-v") return false;
  i += 2;
  const std::size_t digits = i;
  while (i < key.size() && std::isdigit(static_cast<unsigned char>(key[i]))) ++i;
  return i > digits && i < key.size() && key[i] == ':';
}

Status CheckCredential(std::string_view key) {
  if (sodium_init() < 0) return Status::Error(Code::kIo, "libsodium could not be initialised");
  Credential c;
  return Parse(key, &c);
}

Result<DerivedKeys> DeriveKeys(std::string_view authkey) {
  if (IsCredential(authkey)) return FromCredential(authkey);
  Key32 root;
  TASKQ_TRY(RootOf(authkey, &root));
  DerivedKeys keys;
  keys.master = PairFromRoot(root, kMasterSubkey);
  keys.client = PairFromRoot(root, kClientSubkey);
  keys.worker_public_z85 = PairFromRoot(root, kWorkerSubkey).public_z85;
  keys.submitter_public_z85 = PairFromRoot(root, kSubmitterSubkey).public_z85;
  sodium_memzero(root.data(), root.size());
  return keys;
}

Result<Credentials> IssueCredentials(std::string_view authkey) {
  if (IsCredential(authkey))
    return Status::Error(Code::kInvalid,
                         "a worker or submitter key cannot issue keys: give the authkey itself");
  Key32 root;
  TASKQ_TRY(RootOf(authkey, &root));
  Key32 master_seed = Seed(root, kMasterSubkey), master_public, master_secret;
  crypto_box_seed_keypair(master_public.data(), master_secret.data(), master_seed.data());
  Key32 worker = Seed(root, kWorkerSubkey), submitter = Seed(root, kSubmitterSubkey);
  Credentials out{Format(Role::kWorker, worker, master_public),
                  Format(Role::kSubmitter, submitter, master_public)};
  for (Key32* k : {&root, &master_seed, &master_secret, &worker, &submitter})
    sodium_memzero(k->data(), k->size());
  return out;
}

}  // namespace taskq
