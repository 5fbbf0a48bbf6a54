#include "master/job.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace taskq {
namespace {

// An outcome that comes again after a reconnect is counted once: SeenIds
// says which ids a job has kept, whatever order they come in.
TEST(SeenIdsTest, EachIdIsNewOnceInAnyOrder) {
  SeenIds seen;
  EXPECT_TRUE(seen.Insert(1000));
  EXPECT_FALSE(seen.Insert(1000));
  EXPECT_TRUE(seen.Insert(5));  // below the first: the bitmap grows at the front
  EXPECT_FALSE(seen.Insert(5));
  EXPECT_FALSE(seen.Insert(1000));
  EXPECT_TRUE(seen.Insert(1063));
  EXPECT_TRUE(seen.Insert(1064));

  std::mt19937_64 rng(7);
  std::set<uint64_t> model;
  SeenIds random;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t id = 1'000'000 + rng() % 5000;
    EXPECT_EQ(random.Insert(id), model.insert(id).second) << id;
  }
}

}  // namespace
}  // namespace taskq
