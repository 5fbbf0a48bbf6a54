"""Key derivation against docs/PROTOCOL.md section 2.3's vectors."""
from taskq import keys


def test_abc_vectors():
    root = keys.root_key(b"abc")
    assert root.hex() == "6eeef8215087dc6a880e4b3a8057ca4dd6422c853574021ebb715eab6756747f"
    assert keys.seed(root, 1).hex() == \
        "f38ca12840c728e8ad20c616a263d6c6bf17ff505404f30aa2cac624e7f162b1"
    assert keys.seed(root, 2).hex() == \
        "36be9b30f8d01f3dbdce7058b261e7f5cf743bb2f1c23f651d41aed30082c89b"
    pub, sec = keys.keypair(keys.seed(root, 1))
    assert pub.hex() == "6cbc6e7c111136f993c7875fb4f16c44d7973080fd9154740b0b2ec62c2f5343"
    assert sec.hex() == "16bd18bc10a71a2edd228e1c298a4863cf44021dd3c9489c3bdc40987c6e4d2d"
    k = keys.derive_keys(b"abc")
    assert k.master_public == b"y}KUk5Fl}%LGeC=Wdd%2/oXgw@Gg633KXPbeh6{?"
    assert k.master_secret == b"7qgM$5t{B0?6d>0dt*Va=Qm*P!5+dJjkr8*D#qUg"
    assert k.client_public == b"6}6cdK&a{B>x2}-&/eoQKdFa:^SPUyFb:t9eV>xz"
    assert k.client_secret == b"}l^ms!h?182R/F({6.:^J}=@$bO5DUtehLbRF8-z"


def test_demo_key_vectors():
    assert keys.root_key(b"taskq-demo-key").hex() == \
        "97c8d20f92da15dbdb8d58e7be15ce313fbda83563323eba0d3af747a13c9051"
    assert keys.derive_keys(b"taskq-demo-key") == (
        b"2<I+7P%6?@XHaT(+fkM4udNstMCk1Io)BXZp^&[Q", b"-:(.y):sC!Q0e*j>29Y}lvEWb.pZu%L>Zrh><>[&",
        b"<@Sn!I3(s9o.tOpx%l?!GKAi=7xoMP.fV0Yw*bIA", b"(^/>@W^lJc]qL:cXw1O]G<q4xCY9ANc4}>vaTyh2")


def test_empty_key_is_refused():
    import pytest
    with pytest.raises(ValueError, match="authkey is empty"):
        keys.root_key(b"")


# The restricted keys of section 2.3, computed here from hashlib's BLAKE2b
# and PyNaCl's X25519; proto/keys.cc (libsodium's crypto_kdf) gives the same
# (tests/keys_test.cc).
WORKER_ABC = (b"taskq-worker-v1:PItUYL7e5Prenf9qklCCZ1HY9Toc_EfSFeoMInyVsOA:"
              b"bLxufBERNvmTx4dftPFsRNeXMID9kVR0CwsuxiwvU0M")
SUBMITTER_ABC = (b"taskq-submitter-v1:GC7a50umwXDzhif0H1kGxqzVTrqb0I7irgfANw7zqCE:"
                 b"bLxufBERNvmTx4dftPFsRNeXMID9kVR0CwsuxiwvU0M")


def test_restricted_key_vectors():
    root = keys.root_key(b"abc")
    assert keys.seed(root, 3).hex() == \
        "3c8b5460bedee4fade9dff6a9250826751d8f53a1cfc47d215ea0c227c95b0e0"
    assert keys.seed(root, 4).hex() == \
        "182edae74ba6c170f38627f41f5906c6acd54eba9bd08ee2ae07c0370ef3a821"
    assert keys.issue_credentials(b"abc") == (WORKER_ABC, SUBMITTER_ABC)
    assert keys.derive_keys(WORKER_ABC) == (
        b"y}KUk5Fl}%LGeC=Wdd%2/oXgw@Gg633KXPbeh6{?", b"",
        b"C4k*ZW+{&0ttA10wE4}OK)P!w[)1.2WbNJro)Coh", b"72QLuF^ZU$Mzz]<)qccQ[LG3M=w@XCIvOZsi%HpE")
    assert keys.derive_keys(SUBMITTER_ABC) == (
        b"y}KUk5Fl}%LGeC=Wdd%2/oXgw@Gg633KXPbeh6{?", b"",
        b"]pLH^W.{@$Qzvk/qK^]rUlI)i@n6^4eucB0Fu:2S", b"0?um!UL$O1]/tj]SXaEK7p(VQmo]P)kZwL$b727?")
    assert keys.issue_credentials(b"taskq-demo-key") == (
        b"taskq-worker-v1:U16Ewr5l-oZdAAYmyRqO1KTX8OrHnBD6uvanMPU-VWY:"
        b"COoKX6GvmGe5JrNiysyFPF3WzxmWvy1TTXjHBVBE1x0",
        b"taskq-submitter-v1:DuIb949LXv1_hjSL8YpyHKFyACb0c69MXWRkJFDv7Z4:"
        b"COoKX6GvmGe5JrNiysyFPF3WzxmWvy1TTXjHBVBE1x0")
    assert (keys.role_of(WORKER_ABC), keys.role_of(SUBMITTER_ABC), keys.role_of(b"abc"),
            keys.role_of(b"taskq-demo-key")) == ("worker", "submitter", "admin", "admin")


def test_damaged_credentials_are_refused_without_showing_them():
    import pytest
    secret, master = WORKER_ABC[16:59], WORKER_ABC[60:]
    for key, says in [
            (b"taskq-admin-v1:" + secret + b":" + master, "names the role 'admin'"),
            (b"taskq-worker-v2:" + secret + b":" + master, "version v2"),
            (WORKER_ABC[:-1], "cut or damaged"),
            (b"taskq-worker-v1:" + secret[:42] + b"$:" + master, "role secret is damaged"),
            (b"taskq-worker-v1:" + secret + b":" + master[:42] + b"N", "master key is damaged")]:
        with pytest.raises(ValueError, match=says) as e:
            keys.derive_keys(key)
        assert secret[:20].decode() not in str(e.value) and master[:20].decode() not in str(e.value)
    with pytest.raises(ValueError, match="cannot issue keys"):
        keys.issue_credentials(WORKER_ABC)
