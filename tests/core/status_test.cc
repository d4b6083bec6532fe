#include "timevault/core/status.h"

#include <gtest/gtest.h>

namespace timevault {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd: " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  TV_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

Status Check(int v) {
  TV_RETURN_IF_ERROR(Half(v).status());
  return Status::Ok();
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("backup b1");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: backup b1");
  EXPECT_EQ(s.WithContext("restore").message(), "restore: backup b1");
}

TEST(Result, ValueAndPropagation) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(Check(4).ok());
  EXPECT_EQ(Check(5).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace timevault
