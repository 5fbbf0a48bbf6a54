#include "proto/keys.h"

#include <sodium.h>
#include <zmq.h>

#include <array>
#include <cstdint>

namespace taskq {
namespace {

// Fixed and public: the salt only separates taskq's key space from other uses
// of the same password; secrecy rests on the authkey.
constexpr char kSalt[crypto_pwhash_SALTBYTES + 1] = "taskq-authkey-v1";
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "taskq-kp";
constexpr uint64_t kMasterSubkey = 1;
constexpr uint64_t kClientSubkey = 2;

std::string Z85(const unsigned char* key32) {
  char out[41];
  zmq_z85_encode(out, key32, 32);
  return std::string(out, 40);
}

KeyPair PairFromRoot(const unsigned char* root, uint64_t subkey) {
  std::array<unsigned char, crypto_box_SEEDBYTES> seed;
  crypto_kdf_derive_from_key(seed.data(), seed.size(), subkey, kKdfContext, root);
  std::array<unsigned char, crypto_box_PUBLICKEYBYTES> pk;
  std::array<unsigned char, crypto_box_SECRETKEYBYTES> sk;
  crypto_box_seed_keypair(pk.data(), sk.data(), seed.data());
  KeyPair kp{Z85(pk.data()), Z85(sk.data())};
  sodium_memzero(seed.data(), seed.size());
  sodium_memzero(sk.data(), sk.size());
  return kp;
}

}  // namespace

Result<DerivedKeys> DeriveKeys(std::string_view authkey) {
  if (authkey.empty()) return Status::Error(Code::kInvalid, "the authkey is empty");
  if (sodium_init() < 0) return Status::Error(Code::kIo, "libsodium could not be initialised");
  static_assert(sizeof(kSalt) - 1 == crypto_pwhash_SALTBYTES);
  static_assert(sizeof(kKdfContext) - 1 == crypto_kdf_CONTEXTBYTES);
  std::array<unsigned char, crypto_kdf_KEYBYTES> root;
  if (crypto_pwhash(root.data(), root.size(), authkey.data(), authkey.size(),
                    reinterpret_cast<const unsigned char*>(kSalt),
                    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::Error(Code::kIo, "not enough memory to derive keys from the authkey");
  }
  DerivedKeys keys{PairFromRoot(root.data(), kMasterSubkey),
                   PairFromRoot(root.data(), kClientSubkey)};
  sodium_memzero(root.data(), root.size());
  return keys;
}

}  // namespace taskq
