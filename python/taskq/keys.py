"""Key derivation from the authkey (docs/PROTOCOL.md section 2.2).

The authkey never crosses the network: master and peers derive the same two
CURVE keypairs from it and prove they hold them in the handshake.
"""
import functools
import hashlib
import struct
from typing import NamedTuple

from nacl import bindings, pwhash
from zmq.utils import z85

SALT = b"taskq-authkey-v1"
# libsodium 1.0.18's "interactive" limits, as numbers (PROTOCOL 2.2 step 1).
OPSLIMIT = 2
MEMLIMIT = 67108864
MASTER_SUBKEY = 1
CLIENT_SUBKEY = 2


class Keys(NamedTuple):
    """The four CURVE keys, Z85-encoded (40 bytes each), as ZeroMQ takes them."""
    master_public: bytes
    master_secret: bytes
    client_public: bytes
    client_secret: bytes


def root_key(authkey: bytes) -> bytes:
    """Argon2id v1.3, t=2, m=64 MiB, p=1 over the authkey: 32 bytes (~0.1 s)."""
    if not authkey:
        raise ValueError("the authkey is empty: pass authkey=b'...' or set TASKQ_AUTHKEY")
    return pwhash.argon2id.kdf(32, authkey, SALT, opslimit=OPSLIMIT, memlimit=MEMLIMIT)


def seed(root: bytes, subkey_id: int) -> bytes:
    """libsodium's crypto_kdf_derive_from_key(32, subkey_id, "taskq-kp", root)."""
    return hashlib.blake2b(b"", digest_size=32, key=root,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=b"taskq-kp" + bytes(8)).digest()


def keypair(seed_bytes: bytes) -> tuple[bytes, bytes]:
    """libsodium's crypto_box_seed_keypair: (public, secret), raw 32 bytes each."""
    secret = hashlib.sha512(seed_bytes).digest()[:32]
    return bindings.crypto_scalarmult_base(secret), secret


@functools.lru_cache(maxsize=8)
def derive_keys(authkey: bytes) -> Keys:
    """The master and client keypairs for authkey, Z85-encoded. Cached: the
    derivation is made slow on purpose, and a program may connect often."""
    root = root_key(authkey)
    master_public, master_secret = keypair(seed(root, MASTER_SUBKEY))
    client_public, client_secret = keypair(seed(root, CLIENT_SUBKEY))
    return Keys(*(z85.encode(k) for k in (master_public, master_secret,
                                          client_public, client_secret)))
