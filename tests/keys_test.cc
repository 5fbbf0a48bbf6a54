#include "proto/keys.h"

#include <gtest/gtest.h>
#include <zmq.h>

namespace taskq {
namespace {

TEST(Keys, SameAuthkeySameKeysOtherAuthkeyOtherKeys) {
  Result<DerivedKeys> a = DeriveKeys("abc"), b = DeriveKeys("abc"), c = DeriveKeys("abd");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->master.public_z85, b->master.public_z85);
  EXPECT_EQ(a->client.secret_z85, b->client.secret_z85);
  EXPECT_NE(a->master.public_z85, c->master.public_z85);
  EXPECT_NE(a->master.public_z85, a->client.public_z85);
  for (const KeyPair* kp : {&a->master, &a->client}) {
    ASSERT_EQ(kp->public_z85.size(), 40u);
    ASSERT_EQ(kp->secret_z85.size(), 40u);
    char derived[41];
    ASSERT_EQ(zmq_curve_public(derived, kp->secret_z85.c_str()), 0);
    EXPECT_EQ(std::string(derived), kp->public_z85) << "the public key belongs to the secret key";
  }
}

TEST(Keys, EmptyAuthkeyIsRefused) {
  Result<DerivedKeys> k = DeriveKeys("");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), Code::kInvalid);
}

// The vectors published in docs/PROTOCOL.md ("Key derivation").
TEST(Keys, MatchTheDocumentedVectors) {
  Result<DerivedKeys> k = DeriveKeys("abc");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->master.public_z85, R"(y}KUk5Fl}%LGeC=Wdd%2/oXgw@Gg633KXPbeh6{?)");
  EXPECT_EQ(k->master.secret_z85, R"(7qgM$5t{B0?6d>0dt*Va=Qm*P!5+dJjkr8*D#qUg)");
  EXPECT_EQ(k->client.public_z85, R"(6}6cdK&a{B>x2}-&/eoQKdFa:^SPUyFb:t9eV>xz)");
  EXPECT_EQ(k->client.secret_z85, R"(}l^ms!h?182R/F({6.:^J}=@$bO5DUtehLbRF8-z)");
}

// The restricted keys of docs/PROTOCOL.md 2.3, issued from "abc": the
// Python package computes the same from BLAKE2b and X25519 directly
// (python/tests/test_keys.py).
constexpr const char* kWorkerAbc =
    "taskq-worker-v1:PItUYL7e5Prenf9qklCCZ1HY9Toc_EfSFeoMInyVsOA:"
    "bLxufBERNvmTx4dftPFsRNeXMID9kVR0CwsuxiwvU0M";
constexpr const char* kSubmitterAbc =
    "taskq-submitter-v1:GC7a50umwXDzhif0H1kGxqzVTrqb0I7irgfANw7zqCE:"
    "bLxufBERNvmTx4dftPFsRNeXMID9kVR0CwsuxiwvU0M";

TEST(Keys, AnAuthkeyIssuesTheDocumentedRestrictedKeys) {
  Result<Credentials> c = IssueCredentials("abc");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->worker, kWorkerAbc);
  EXPECT_EQ(c->submitter, kSubmitterAbc);
  Result<Credentials> demo = IssueCredentials("taskq-demo-key");
  ASSERT_TRUE(demo.ok());
  EXPECT_EQ(demo->worker,
            "taskq-worker-v1:U16Ewr5l-oZdAAYmyRqO1KTX8OrHnBD6uvanMPU-VWY:"
            "COoKX6GvmGe5JrNiysyFPF3WzxmWvy1TTXjHBVBE1x0");
  EXPECT_EQ(demo->submitter,
            "taskq-submitter-v1:DuIb949LXv1_hjSL8YpyHKFyACb0c69MXWRkJFDv7Z4:"
            "COoKX6GvmGe5JrNiysyFPF3WzxmWvy1TTXjHBVBE1x0");
  // The master admits them: its keys carry their public keys.
  Result<DerivedKeys> k = DeriveKeys("abc");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->role, Role::kAdmin);
  EXPECT_EQ(k->worker_public_z85, R"(C4k*ZW+{&0ttA10wE4}OK)P!w[)1.2WbNJro)Coh)");
  EXPECT_EQ(k->submitter_public_z85, R"(]pLH^W.{@$Qzvk/qK^]rUlI)i@n6^4eucB0Fu:2S)");
}

TEST(Keys, ACredentialGivesItsRoleKeypairAndTheMasterKeyWithoutArgon2) {
  Result<DerivedKeys> w = DeriveKeys(kWorkerAbc);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->role, Role::kWorker);
  EXPECT_EQ(w->master.public_z85, R"(y}KUk5Fl}%LGeC=Wdd%2/oXgw@Gg633KXPbeh6{?)");
  EXPECT_EQ(w->master.secret_z85, "") << "a credential does not carry the master's secret";
  EXPECT_EQ(w->client.public_z85, R"(C4k*ZW+{&0ttA10wE4}OK)P!w[)1.2WbNJro)Coh)");
  EXPECT_EQ(w->client.secret_z85, R"(72QLuF^ZU$Mzz]<)qccQ[LG3M=w@XCIvOZsi%HpE)");
  Result<DerivedKeys> s = DeriveKeys(kSubmitterAbc);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->role, Role::kSubmitter);
  EXPECT_EQ(s->client.public_z85, R"(]pLH^W.{@$Qzvk/qK^]rUlI)i@n6^4eucB0Fu:2S)");
  EXPECT_EQ(s->client.secret_z85, R"(0?um!UL$O1]/tj]SXaEK7p(VQmo]P)kZwL$b727?)");
  // Neither is the admin's client key.
  Result<DerivedKeys> admin = DeriveKeys("abc");
  EXPECT_NE(w->client.public_z85, admin->client.public_z85);
  EXPECT_NE(s->client.public_z85, admin->client.public_z85);
  // A credential issues nothing.
  Result<Credentials> none = IssueCredentials(kWorkerAbc);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kInvalid);
}

TEST(Keys, OnlyTheCredentialFormIsReadAsACredential) {
  EXPECT_TRUE(IsCredential(kWorkerAbc));
  EXPECT_TRUE(IsCredential("taskq-admin-v1:x"));
  EXPECT_TRUE(IsCredential("taskq-worker-v2:"));
  for (const char* authkey : {"abc", "taskq-demo-key", "taskq-worker-v1", "taskq-Worker-v1:x",
                              "taskq--v1:x", "taskq-worker-v:x", "taskq-worker-1:x", ""})
    EXPECT_FALSE(IsCredential(authkey)) << authkey;
}

// Each damage is a usage error whose sentence says what is wrong, never
// repeating the key's fields.
TEST(Keys, ADamagedCredentialIsRefusedWithoutShowingIt) {
  const std::string good = kWorkerAbc;
  const std::string secret = good.substr(16, 43), master = good.substr(60);
  struct Case {
    std::string key;
    std::string says;
  };
  const Case cases[] = {
      {"taskq-admin-v1:" + secret + ":" + master, "names the role 'admin'"},
      {"taskq-boss-v1:" + secret + ":" + master, "names the role 'boss'"},
      {"taskq-worker-v2:" + secret + ":" + master, "version v2"},
      {good.substr(0, good.size() - 1), "cut or damaged"},
      {good + "x", "cut or damaged"},
      {"taskq-worker-v1:" + secret + "+" + master, "cut or damaged"},
      {"taskq-worker-v1:" + secret.substr(0, 42) + "$:" + master, "role secret is damaged"},
      {"taskq-worker-v1:" + secret + ":" + master.substr(0, 42) + "N", "master key is damaged"},
  };
  for (const Case& c : cases) {
    Status s = CheckCredential(c.key);
    ASSERT_FALSE(s.ok()) << c.key;
    EXPECT_EQ(s.code(), Code::kInvalid) << c.key;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(secret.substr(0, 20)), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(master.substr(0, 20)), std::string::npos) << s.message();
    Result<DerivedKeys> k = DeriveKeys(c.key);
    ASSERT_FALSE(k.ok()) << c.key;
    EXPECT_EQ(k.status().message(), s.message());
  }
  EXPECT_TRUE(CheckCredential(good).ok());
}

}  // namespace
}  // namespace taskq
