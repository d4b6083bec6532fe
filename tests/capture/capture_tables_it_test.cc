// capture against the real Postgres and Kafka: what it carries beside
// Debezium's values (the __timevault.text header), partitioned tables and
// table names Kafka does not accept as they are.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/capture_harness.h"
#include "timevault/capture/debezium.h"

namespace timevault::testing {
namespace {

std::string Op(const Record& r) {
  if (!r.value) return "tombstone";
  auto d = ParseJson(*r.value);
  const auto& p = Payload(*d);
  return p.HasMember("op") ? p["op"].GetString() : "?";
}

// The row image of a change event: after, or before for a delete.
int RowId(const Record& r, const char* column = "id") {
  auto d = ParseJson(*r.value);
  const auto& p = Payload(*d);
  const auto& row = std::string(p["op"].GetString()) == "d" ? p["before"] : p["after"];
  return row[column].GetInt();
}

const std::string kTextHeader(capture::kTextHeader);

// Postgres's text of the lossy columns rides beside Debezium's value, from
// the snapshot and from the stream alike; exact columns are not listed.
TEST(CaptureText, LossyColumnsCarryPostgresTextInAHeader) {
  CaptureHarness h;
  h.Exec(
      "CREATE TABLE f (id int PRIMARY KEY, tenant_id text, span interval, amount numeric(8,2), bits varbit, "
      "p point, grid int[], note text)");
  h.Exec(
      "INSERT INTO f VALUES (1, 'a', '1 mon', 'NaN', '0011', '(1,2)', '{{1,2},{3,4}}', 'x'), "
      "(2, 'a', NULL, 1.50, NULL, NULL, '{5,6}', 'y')");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("UPDATE f SET span = '1 year 2 days', amount = 'NaN' WHERE id = 2");
  h.Exec("INSERT INTO f VALUES (3, 'b', NULL, 2.00, NULL, NULL, '[0:1]={7,8}', 'z')");
  auto records = h.Read({h.Topic("f")}, 4);
  ASSERT_EQ(records.size(), 4u) << h.capture().ReadLog();
  std::map<std::string, std::string> by_event;  // "<op><id>" -> header ("" if none)
  for (const auto& r : records) by_event[Op(r) + std::to_string(RowId(r))] = r.Header(kTextHeader).value_or("");
  EXPECT_EQ(by_event["r1"],
            R"x({"after":{"span":"1 mon","amount":"NaN","bits":"0011","p":"(1,2)","grid":"{{1,2},{3,4}}"}})x");
  EXPECT_EQ(by_event["r2"], R"x({"after":{"span":null,"bits":null,"p":null}})x");
  // REPLICA IDENTITY DEFAULT: the update has no before image.
  EXPECT_EQ(by_event["u2"], R"x({"after":{"span":"1 year 2 days","amount":"NaN","bits":null,"p":null}})x");
  EXPECT_EQ(by_event["c3"], R"x({"after":{"span":null,"bits":null,"p":null,"grid":"[0:1]={7,8}"}})x");
  EXPECT_EQ(h.capture().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing
