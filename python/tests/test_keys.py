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
