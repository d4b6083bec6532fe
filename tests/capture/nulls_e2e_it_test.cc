// Capture fidelity end to end (real Postgres, real Kafka broker, `timevault
// capture` and `timevault store`, real RocksDB):
//
// * NULLs in nullable columns that have a default reach Kafka as the default,
//   byte for byte as Debezium writes them (JsonConverter's
//   replace.null.with.default), and reach Store::StateAt as null thanks to
//   capture's __timevault.nulls header; values equal to the default stay
//   values. Snapshot rows, inserts, updates (both images, REPLICA IDENTITY
//   FULL) and primary-key changes (a second header beside __debezium.oldkey).
// * An empty varbit(1) (B''), which Debezium writes as null, does not stop
//   capture.
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/capture_harness.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using store::Store;

// Nullable columns with a default Debezium parses, of several types; `vb`
// has none. The first column of each pair is the name, the second the
// default as Debezium writes it for a NULL (docs/compat.md §7.4).
const std::vector<std::pair<std::string, std::string>> kDefaulted = {
    {"note", R"("x")"},
    {"n", "5"},
    {"ts", R"("1970-01-01T00:00:00.000000Z")"},  // DEFAULT now(): Debezium's placeholder
    {"ts2", "1577934245000000"},
    {"num", R"("AJY=")"},
    {"b", "true"},
    {"d", "18262"},
    {"u", R"("00000000-0000-0000-0000-000000000001")"},
    {"j", R"("{\"a\": 1}")"},
    {"f", "2.5"},
    {"iv", "86400000000"},
};

constexpr const char* kCreate = R"SQL(
CREATE TABLE defaults (
  id int PRIMARY KEY,
  tenant_id text NOT NULL,
  note text DEFAULT 'x',
  n int DEFAULT 5,
  ts timestamptz DEFAULT now(),
  ts2 timestamp DEFAULT '2020-01-02 03:04:05',
  num numeric(10,2) DEFAULT 1.50,
  b boolean DEFAULT true,
  d date DEFAULT '2020-01-01',
  u uuid DEFAULT '00000000-0000-0000-0000-000000000001',
  j jsonb DEFAULT '{"a": 1}',
  f float8 DEFAULT 2.5,
  iv interval DEFAULT '1 day',
  vb varbit(1)
);
ALTER TABLE defaults REPLICA IDENTITY FULL;
)SQL";

// Every defaulted column NULL.
std::string AllNulls(int id) {
  return "INSERT INTO defaults VALUES (" + std::to_string(id) +
         ", 'ta', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";
}

// Every defaulted column holding exactly the value its default stands for.
std::string AllDefaultValues(int id) {
  return "INSERT INTO defaults VALUES (" + std::to_string(id) +
         ", 'ta', 'x', 5, '1970-01-01 00:00:00+00', '2020-01-02 03:04:05', 1.50, true, '2020-01-01', "
         "'00000000-0000-0000-0000-000000000001', '{\"a\": 1}', 2.5, '1 day', B'1')";
}

// id -> column -> compact JSON of the value, from the store at `lsn`.
using Rows = std::map<int, std::map<std::string, std::string>>;

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

Rows StoreRows(Store& s, uint64_t lsn) {
  Rows out;
  Status st = s.StateAt(TenantId("ta"), Lsn(lsn), {"public.defaults"}, [&](const store::Row& row) {
    auto d = ParseJson(row.json);
    const rapidjson::Value& image = *d;
    for (auto it = image.MemberBegin(); it != image.MemberEnd(); ++it)
      out[image["id"].GetInt()][it->name.GetString()] = Compact(it->value);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// id -> column -> whether Postgres holds NULL there now (defaulted columns).
std::map<int, std::map<std::string, bool>> PostgresNulls(CaptureHarness& h) {
  std::map<int, std::map<std::string, bool>> out;
  for (const auto& [c, json] : kDefaulted) {
    auto r = h.sql().Exec("SELECT id, (" + c + " IS NULL)::text FROM defaults");
    EXPECT_TRUE(r.ok());
    for (int i = 0; r.ok() && i < r->rows(); ++i) out[std::stoi(r->GetString(i, 0))][c] = r->GetString(i, 1) == "true";
  }
  return out;
}

uint64_t Now(CaptureHarness& h) { return ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()")); }

TEST(NullsEndToEnd, NullsInDefaultedColumnsComeBackAsNullAndDefaultValuesAsValues) {
  CaptureHarness h;
  h.Exec(kCreate);
  h.Exec(AllNulls(1));          // read by the snapshot ('r')
  h.Exec(AllDefaultValues(2));  // likewise, the values themselves
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();

  h.Exec(AllNulls(3));
  h.Exec(AllDefaultValues(4));
  // Mixed, and an empty varbit(1), which Debezium writes as null.
  h.Exec("INSERT INTO defaults (id, tenant_id, note, n, ts, vb) VALUES (5, 'ta', NULL, 6, NULL, B'')");
  const uint64_t before_updates = Now(h);
  h.Exec("UPDATE defaults SET note = NULL, n = NULL, j = NULL WHERE id = 4");  // both images, nulls in after
  h.Exec("UPDATE defaults SET note = 'set' WHERE id = 3");                     // nulls in before and after
  h.Exec("UPDATE defaults SET id = 30 WHERE id = 3");  // key change: d + c with __debezium.oldkey
  const uint64_t end = Now(h);

  // On Kafka the values are Debezium's: the defaults in place of NULL.
  auto records = h.Read({h.Topic("defaults")}, 2 + 3 + 2 + 3);
  bool saw_row3 = false;
  for (const auto& r : records) {
    if (!r.value) continue;
    auto d = ParseJson(*r.value);
    const auto& after = Payload(*d)["after"];
    if (!after.IsObject() || after["id"].GetInt() != 3 || !after["note"].IsString()) continue;
    if (std::string(after["note"].GetString()) != "x") continue;
    saw_row3 = true;
    for (const auto& [column, json] : kDefaulted) EXPECT_EQ(Compact(after[column.c_str()]), json) << column;
  }
  EXPECT_TRUE(saw_row3) << "no insert of row 3 with Debezium's defaults on Kafka";

  auto s = h.StopStoreAt(end);
  ASSERT_TRUE(s) << h.store().ReadLog();

  // Now: every column is null exactly where Postgres has NULL.
  const Rows rows = StoreRows(*s, s->RecoverablePoint()->lsn.value());
  const auto truth = PostgresNulls(h);
  ASSERT_EQ(rows.size(), truth.size());
  for (const auto& [id, columns] : truth) {
    ASSERT_TRUE(rows.count(id)) << "row " << id << " missing in the store";
    for (const auto& [column, is_null] : columns)
      EXPECT_EQ(rows.at(id).at(column) == "null", is_null)
          << "row " << id << " column " << column << ": " << rows.at(id).at(column);
  }
  // Values equal to the defaults stay values, with Debezium's JSON.
  for (const auto& [column, json] : kDefaulted) EXPECT_EQ(rows.at(2).at(column), json) << column;
  EXPECT_EQ(rows.at(2).at("vb"), "true");
  EXPECT_EQ(rows.at(4).at("ts"), R"("1970-01-01T00:00:00.000000Z")");
  EXPECT_EQ(rows.at(5).at("n"), "6");
  EXPECT_EQ(rows.at(5).at("vb"), "null");  // B'': Debezium cannot convert it (docs/compat.md §10.2)
  EXPECT_EQ(rows.at(30).at("note"), R"("set")");

  // And at a point before the updates, row 4 still had its values and row 3
  // its NULLs.
  const Rows earlier = StoreRows(*s, before_updates);
  EXPECT_EQ(earlier.at(4).at("note"), R"("x")");
  EXPECT_EQ(earlier.at(4).at("j"), R"("{\"a\": 1}")");
  ASSERT_TRUE(earlier.count(3));
  for (const auto& [column, json] : kDefaulted) EXPECT_EQ(earlier.at(3).at(column), "null") << column;
  EXPECT_EQ(earlier.count(30), 0u);
  EXPECT_EQ(h.capture().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing
