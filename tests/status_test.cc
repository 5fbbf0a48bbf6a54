#include "proto/status.h"

#include <gtest/gtest.h>

#include <string>

namespace taskq {
namespace {

Status Boom() { return Status::Error(Code::kIo, "the disk is full"); }

TEST(ResultTest, HoldsAValueOrSaysWhyNot) {
  Result<std::string> good = std::string("x");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "x");
  EXPECT_EQ(good->size(), 1u);
  Result<std::string> bad = Boom();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kIo);
  EXPECT_EQ(bad.status().message(), "the disk is full");
}

TEST(ResultTest, ReadingTheValueOfAFailureEndsTheProcessWithItsMessage) {
  Result<std::string> bad = Boom();
  const Result<std::string>& same = bad;
  EXPECT_DEATH((void)bad.value(), "the value of a failed Result was read: the disk is full");
  EXPECT_DEATH((void)*bad, "the value of a failed Result was read");
  EXPECT_DEATH((void)bad->size(), "the value of a failed Result was read");
  EXPECT_DEATH((void)same.value(), "the value of a failed Result was read");
}

TEST(ResultTest, AResultCannotBeMadeFromAnOkStatus) {
  EXPECT_DEATH(Result<int>{Status::Ok()}, "a Result was made from an ok Status, with no value");
}

TEST(StatusTest, TryReturnsTheFirstFailure) {
  int reached = 0;
  auto steps = [&]() -> Status {
    TASKQ_TRY(Status::Ok());
    ++reached;
    TASKQ_TRY(Boom());
    ++reached;
    return Status::Ok();
  };
  const Status s = steps();
  EXPECT_EQ(s.code(), Code::kIo);
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace taskq
