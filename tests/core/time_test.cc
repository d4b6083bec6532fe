#include "timevault/core/time.h"

#include <gtest/gtest.h>

namespace timevault {
namespace {

TEST(CommitTime, ParsesIsoUtc) {
  auto t = CommitTime::Parse("2026-11-27T03:20:57.123456Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->micros(), 1795749657123456LL);
  EXPECT_EQ(t->ToIso(), "2026-11-27T03:20:57.123456Z");
}

TEST(CommitTime, ParsesOffsetsAndSpaces) {
  EXPECT_EQ(CommitTime::Parse("2026-11-27 04:20:57+01:00")->micros(),
            CommitTime::Parse("2026-11-27T03:20:57Z")->micros());
  EXPECT_EQ(CommitTime::Parse("2026-11-27T02:20:57-0100")->micros(),
            CommitTime::Parse("2026-11-27T03:20:57Z")->micros());
  EXPECT_EQ(CommitTime::Parse("1970-01-01")->micros(), 0);
  EXPECT_EQ(CommitTime::Parse("2000-01-01T00:00:00Z")->micros(), CommitTime::kPostgresEpochOffsetMicros);
}

TEST(CommitTime, ParsesFractionsOfAnyLength) {
  EXPECT_EQ(CommitTime::Parse("1970-01-01T00:00:01.5Z")->micros(), 1500000);
  EXPECT_EQ(CommitTime::Parse("1970-01-01T00:00:00.1234567Z")->micros(), 123456);
}

TEST(CommitTime, RejectsMalformed) {
  for (const char* bad : {"", "2026", "2026-13-01", "2026-11-27T25:00:00Z", "2026-11-27T03:20", "2026-11-27Tx",
                          "2026-11-27T03:20:57.Z", "2026-11-27T03:20:57Q", "12a", "1500"}) {
    EXPECT_FALSE(CommitTime::Parse(bad).has_value()) << bad;
  }
}

TEST(CommitTime, RefusesImpossibleDates) {
  for (const char* bad : {"2026-02-31T08:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31", "2026-06-31T00:00:00Z",
                          "1900-02-29", "2026-11-27T03:20:57+24:00", "2026-11-27T03:20:57+01:60"}) {
    EXPECT_FALSE(CommitTime::Parse(bad).has_value()) << bad;
    EXPECT_FALSE(CommitTime::ParseStrict(bad).has_value()) << bad;
  }
  EXPECT_TRUE(CommitTime::Parse("2024-02-29T00:00:00Z").has_value()) << "a leap day";
  EXPECT_TRUE(CommitTime::Parse("2000-02-29T00:00:00Z").has_value()) << "2000 is a leap year";
}

TEST(CommitTime, StrictNeedsATimeAndAZone) {
  for (const char* bad : {"2026-11-27T08:00:00", "2026-11-27 08:00:00.5", "2026-11-27"}) {
    EXPECT_FALSE(CommitTime::ParseStrict(bad).has_value()) << bad << " has no zone";
    EXPECT_TRUE(CommitTime::Parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27T09:00:00+01:00"), CommitTime::ParseStrict("2026-11-27T08:00:00Z"));
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27 03:00:00-05"), CommitTime::ParseStrict("2026-11-27T08:00:00z"));
}

TEST(CommitTime, ZoneLessTimesReadInAStatedZone) {
  const auto utc = CommitTime::ParseStrict("2026-11-27T08:00:00Z");
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27T08:00:00", 0), utc);
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27T10:00:00", 7200), utc);
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27 02:30:00.0", -19800), utc);
  EXPECT_FALSE(CommitTime::ParseStrict("2026-11-27T08:00:00", std::nullopt).has_value()) << "no zone stated";
  // A time with its own zone keeps it; a stated zone does not make a date a time.
  EXPECT_EQ(CommitTime::ParseStrict("2026-11-27T08:00:00Z", 7200), utc);
  EXPECT_FALSE(CommitTime::ParseStrict("2026-11-27", 0).has_value());
  EXPECT_FALSE(CommitTime::ParseStrict("2026-02-31T08:00:00", 0).has_value());
}

TEST(ParseUtcOffset, UtcAndFixedOffsetsOnly) {
  EXPECT_EQ(ParseUtcOffset("UTC"), 0);
  EXPECT_EQ(ParseUtcOffset("Z"), 0);
  EXPECT_EQ(ParseUtcOffset("+02:00"), 7200);
  EXPECT_EQ(ParseUtcOffset("-05:30"), -19800);
  for (const char* bad : {"", "utc", "Europe/Paris", "CET", "+2", "+0200", "+24:00", "+01:60", "02:00", "+02:00 "}) {
    EXPECT_FALSE(ParseUtcOffset(bad).has_value()) << bad;
  }
}

TEST(CommitTime, FromPostgresEpoch) { EXPECT_EQ(CommitTime::FromPostgres(0).ToIso(), "2000-01-01T00:00:00.000000Z"); }

TEST(CommitTime, FormatsBeforeEpoch) { EXPECT_EQ(CommitTime(-1).ToIso(), "1969-12-31T23:59:59.999999Z"); }

TEST(Clock, SystemClockAdvances) {
  auto a = SystemClock().Now();
  EXPECT_GT(a.micros(), CommitTime::Parse("2020-01-01")->micros());
  EXPECT_GE(SystemClock().Now(), a);
}

}  // namespace
}  // namespace timevault
