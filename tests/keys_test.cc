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

}  // namespace
}  // namespace taskq
