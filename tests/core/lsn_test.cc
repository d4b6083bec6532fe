#include "timevault/core/lsn.h"

#include <gtest/gtest.h>

namespace timevault {
namespace {

TEST(Lsn, ParsesPostgresNotation) {
  auto lsn = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(lsn.has_value());
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848);
}

TEST(Lsn, ParsesLowerCaseAndZero) {
  EXPECT_EQ(Lsn::Parse("0/0")->value(), 0u);
  EXPECT_EQ(Lsn::Parse("a/ff")->value(), (uint64_t{0xa} << 32) | 0xff);
  EXPECT_EQ(Lsn::Parse("FFFFFFFF/FFFFFFFF")->value(), UINT64_MAX);
}

TEST(Lsn, FormatsLikePostgres) {
  EXPECT_EQ(Lsn((uint64_t{0x16} << 32) | 0xB374D848).ToString(), "16/B374D848");
  EXPECT_EQ(Lsn(0).ToString(), "0/0");
  EXPECT_EQ(Lsn(0x1000).ToString(), "0/1000");
}

TEST(Lsn, RoundTrips) {
  for (uint64_t v : {uint64_t{1}, uint64_t{0x123456789abcdef0}, UINT64_MAX, uint64_t{0xffffffff}}) {
    EXPECT_EQ(Lsn::Parse(Lsn(v).ToString())->value(), v);
  }
}

TEST(Lsn, RejectsMalformed) {
  for (const char* bad :
       {"", "/", "1/", "/1", "12", "1/2/3", "g/1", "1/x", "123456789/1", "1/123456789", " 1/2", "1 /2", "-1/2"}) {
    EXPECT_FALSE(Lsn::Parse(bad).has_value()) << bad;
  }
}

TEST(Lsn, Orders) {
  EXPECT_LT(*Lsn::Parse("0/FFFFFFFF"), *Lsn::Parse("1/0"));
  EXPECT_EQ(*Lsn::Parse("1/10"), Lsn((uint64_t{1} << 32) | 0x10));
  EXPECT_FALSE(Lsn().valid());
  EXPECT_TRUE(Lsn(1).valid());
}

}  // namespace
}  // namespace timevault
