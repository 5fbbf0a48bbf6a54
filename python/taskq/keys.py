"""Key derivation from the authkey (docs/PROTOCOL.md section 2.2).

The authkey never crosses the network: master and peers derive the same two
CURVE keypairs from it and prove they hold them in the handshake. It also
issues the restricted keys of the worker and submitter roles (credentials,
section 2.2 step 5), which derive_keys takes in its place.
"""
import base64
import functools
import hashlib
import re
import struct
from typing import NamedTuple

from nacl import bindings, pwhash
from zmq.utils import z85

SALT = b"taskq-authkey-v1"
# libsodium 1.0.18's "interactive" limits, as numbers (PROTOCOL 2.2 step 1).
OPSLIMIT = 2
MEMLIMIT = 67108864
MASTER_SUBKEY = 1
CLIENT_SUBKEY = 2  # the admin's: the authkey's own client keypair
WORKER_SUBKEY = 3
SUBMITTER_SUBKEY = 4
ROLE_SUBKEYS = {"worker": WORKER_SUBKEY, "submitter": SUBMITTER_SUBKEY}
# "taskq-", lowercase letters, "-v", digits, ":": always read as a credential.
_CREDENTIAL = re.compile(rb"taskq-([a-z]+)-v([0-9]+):")
_FIELD_CHARS = 43  # base64url of 32 bytes, without padding


class Keys(NamedTuple):
    """The four CURVE keys, Z85-encoded (40 bytes each), as ZeroMQ takes them.
    From a credential, master_secret is b"" (only the master has it)."""
    master_public: bytes
    master_secret: bytes
    client_public: bytes
    client_secret: bytes


class Credentials(NamedTuple):
    """The restricted keys an authkey issues, as `taskq keys` prints them."""
    worker: bytes
    submitter: bytes


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


def is_credential(key: bytes) -> bool:
    """True for a key of a credential's form (taskq-ROLE-vN:...)."""
    return _CREDENTIAL.match(key) is not None


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _from_b64url(field: bytes):
    """32 bytes from exactly 43 canonical base64url characters, or None."""
    if len(field) != _FIELD_CHARS:
        return None
    try:
        raw = base64.b64decode(field + b"=", altchars=b"-_", validate=True)
    except ValueError:
        return None
    return raw if len(raw) == 32 and _b64url(raw) == field else None


def parse_credential(key: bytes) -> tuple[str, bytes, bytes]:
    """(role, role secret, master public key), raw; ValueError for a damaged
    credential, with a message that never repeats the key."""
    m = _CREDENTIAL.match(key)
    if m is None:
        raise ValueError("the key is not a taskq credential")
    role, version = m.group(1).decode(), m.group(2).decode()
    bad = "the key looks like a taskq credential, but "
    if version != "1":
        raise ValueError(bad + f"it is of version v{version[:12]}, and this taskq reads v1")
    if role not in ROLE_SUBKEYS:
        raise ValueError(bad + f"it names the role {role[:24]!r}: a credential is a 'worker' or "
                               "a 'submitter' key (the authkey itself is the admin's)")
    fields = key[m.end():]
    copy = "; copy the whole key that taskq keys printed"
    if len(fields) != 2 * _FIELD_CHARS + 1 or fields[_FIELD_CHARS:_FIELD_CHARS + 1] != b":":
        raise ValueError(bad + f"it is cut or damaged: {m.group(0).decode()!r} is followed by "
                               f"two fields of {_FIELD_CHARS} characters joined by ':'" + copy)
    secret, master = _from_b64url(fields[:_FIELD_CHARS]), _from_b64url(fields[_FIELD_CHARS + 1:])
    chars = f" (not {_FIELD_CHARS} characters of A-Z a-z 0-9 - _)"
    if secret is None:
        raise ValueError(bad + "its role secret is damaged" + chars + copy)
    if master is None:
        raise ValueError(bad + "its master key is damaged" + chars + copy)
    return role, secret, master


def role_of(key: bytes) -> str:
    """"admin" for an authkey, else the credential's role."""
    return parse_credential(key)[0] if is_credential(key) else "admin"


def issue_credentials(authkey: bytes) -> Credentials:
    """The worker and submitter credentials of an authkey (taskq keys)."""
    if is_credential(authkey):
        raise ValueError("a worker or submitter key cannot issue keys: give the authkey itself")
    root = root_key(authkey)
    master_public, _ = keypair(seed(root, MASTER_SUBKEY))
    return Credentials(*(b"taskq-%s-v1:%s:%s" % (role.encode(), _b64url(seed(root, subkey)),
                                                  _b64url(master_public))
                         for role, subkey in ROLE_SUBKEYS.items()))


@functools.lru_cache(maxsize=8)
def derive_keys(authkey: bytes) -> Keys:
    """The master and client keypairs for authkey, Z85-encoded. Cached: the
    derivation is made slow on purpose, and a program may connect often.
    For a credential: its role's keypair and the master public key it
    carries (master_secret b""), with no Argon2id."""
    if is_credential(authkey):
        _, secret, master_public = parse_credential(authkey)
        client_public, client_secret = keypair(secret)
        return Keys(z85.encode(master_public), b"", z85.encode(client_public),
                    z85.encode(client_secret))
    root = root_key(authkey)
    master_public, master_secret = keypair(seed(root, MASTER_SUBKEY))
    client_public, client_secret = keypair(seed(root, CLIENT_SUBKEY))
    return Keys(*(z85.encode(k) for k in (master_public, master_secret,
                                          client_public, client_secret)))
