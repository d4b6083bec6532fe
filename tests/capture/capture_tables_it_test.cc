// capture against the real Postgres and Kafka: what it carries beside
// Debezium's values (the __timevault.text header), partitioned tables and
// table names Kafka does not accept as they are.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/capture_harness.h"
#include "timevault/capture/debezium.h"
#include "timevault/store/store.h"

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

// Events of one topic as "<op><id>" (tombstones left out), in topic order per
// Kafka partition.
std::multiset<std::string> OpsById(const std::vector<Record>& records) {
  std::multiset<std::string> out;
  for (const auto& r : records)
    if (r.value) out.insert(Op(r) + std::to_string(RowId(r)));
  return out;
}

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

// --- table names ---------------------------------------------------------------

// Every name Postgres allows gets Debezium's sanitised topic; two tables
// whose topics collide are refused, loudly, and every other table streams
// (no restart loop, one slot).
TEST(CaptureNames, TopicsAreSanitisedAndCollisionsRefusedWithoutStoppingTheRest) {
  CaptureHarness h;
  const std::string n63(63, 'n');  // the longest name Postgres keeps
  h.Exec(R"SQL(
    CREATE SCHEMA "Sales-EU";
    CREATE TABLE "Sales-EU"."Order Lines" (id int PRIMARY KEY, tenant_id text);
    CREATE TABLE "a.b" (id int PRIMARY KEY, tenant_id text);
    CREATE TABLE "MixedCase" (id int PRIMARY KEY, tenant_id text);
    CREATE TABLE "été" (id int PRIMARY KEY, tenant_id text);
    CREATE TABLE "x y" (id int PRIMARY KEY, tenant_id text);
    CREATE TABLE "x_y" (id int PRIMARY KEY, tenant_id text);
    INSERT INTO "Sales-EU"."Order Lines" VALUES (1, 't');
    INSERT INTO "x y" VALUES (1, 't');
  )SQL");
  h.Exec("CREATE TABLE " + n63 + " (id int PRIMARY KEY, tenant_id text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec(R"SQL(INSERT INTO "Sales-EU"."Order Lines" VALUES (2, 't'))SQL");
  h.Exec(R"SQL(INSERT INTO "a.b" VALUES (1, 't'))SQL");
  h.Exec(R"SQL(INSERT INTO "MixedCase" VALUES (1, 't'))SQL");
  h.Exec(R"SQL(INSERT INTO "été" VALUES (1, 't'))SQL");
  h.Exec("INSERT INTO " + n63 + " VALUES (1, 't')");
  h.Exec(
      R"SQL(BEGIN; INSERT INTO "x y" VALUES (2, 't'); INSERT INTO "x_y" VALUES (1, 't'); INSERT INTO "a.b" VALUES (2, 't'); COMMIT)SQL");

  const std::string p = h.prefix();
  auto lines = h.Read({p + ".Sales-EU.Order_Lines"}, 2);
  EXPECT_EQ(OpsById(lines), (std::multiset<std::string>{"r1", "c2"}));
  for (const auto& r : lines) {
    auto d = ParseJson(*r.value);
    EXPECT_STREQ(Payload(*d)["source"]["schema"].GetString(), "Sales-EU");
    EXPECT_STREQ(Payload(*d)["source"]["table"].GetString(), "Order Lines");
  }
  EXPECT_EQ(OpsById(h.Read({p + ".public.a.b"}, 2)), (std::multiset<std::string>{"c1", "c2"}));
  EXPECT_EQ(OpsById(h.Read({p + ".public.MixedCase"}, 1)), (std::multiset<std::string>{"c1"}));
  EXPECT_EQ(OpsById(h.Read({p + ".public._t_"}, 1)), (std::multiset<std::string>{"c1"}));
  EXPECT_EQ(OpsById(h.Read({p + ".public." + n63}, 1)), (std::multiset<std::string>{"c1"}));

  // The transaction with the refused tables' rows counts only what was sent.
  ASSERT_TRUE(h.WaitConfirmed(0, 60));
  EXPECT_EQ(h.capture().Stop(), 0);
  const std::string log = h.capture().ReadLog();
  EXPECT_NE(log.find(R"(REFUSING table "public"."x y": tables "public"."x y" and "public"."x_y" all map to topic )" +
                     p + ".public.x_y"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(R"(REFUSING table "public"."x_y")"), std::string::npos) << log;
  size_t slots = 0;
  for (size_t at = log.find("created slot"); at != std::string::npos; at = log.find("created slot", at + 1)) ++slots;
  EXPECT_EQ(slots, 1u) << log;
  auto tx = h.Read({p + ".transaction"}, 0, 1500);
  bool saw_mixed_end = false;
  for (const auto& r : tx) {
    auto d = ParseJson(*r.value);
    const auto& v = Payload(*d);
    if (std::string(v["status"].GetString()) != "END" || v["event_count"].GetInt64() != 1) continue;
    if (std::string(v["data_collections"][0]["data_collection"].GetString()) == "public.a.b") saw_mixed_end = true;
  }
  EXPECT_TRUE(saw_mixed_end) << "the mixed transaction's END counts a.b's event only";
}

// --- partitioned tables ----------------------------------------------------

std::multiset<std::string> Expect(char op, int from, int to) {
  std::multiset<std::string> out;
  for (int i = from; i <= to; ++i) out.insert(std::string(1, op) + std::to_string(i));
  return out;
}

uint64_t Now(CaptureHarness& h) { return ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()")); }

// The ids the store holds for `tenant` in `table` at `lsn`.
std::set<int> StoreIds(store::Store& s, const std::string& tenant, const std::string& table, uint64_t lsn) {
  std::set<int> ids;
  Status st = s.StateAt(TenantId(tenant), Lsn(lsn), {table}, [&](const store::Row& row) {
    auto d = ParseJson(row.json);
    ids.insert((*d)["id"].GetInt());
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ids;
}

// The ids Postgres holds for `tenant` in `table` now.
std::set<int> PostgresIds(CaptureHarness& h, const std::string& tenant, const std::string& table) {
  std::set<int> ids;
  auto r = h.sql().ExecParams("SELECT id FROM " + table + " WHERE tenant_id = $1", {tenant});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  for (int i = 0; r.ok() && i < r->rows(); ++i) ids.insert(std::stoi(r->GetString(i, 0)));
  return ids;
}

// Rows that exist before capture starts arrive as snapshot events under the
// root's topic, for every kind of partitioning; no partition has a topic.
TEST(CapturePartitions, SnapshotReadsEveryKindOfPartitionedTableUnderItsRoot) {
  CaptureHarness h;
  h.Exec(R"SQL(
    CREATE TABLE a_hash (id int, tenant_id text NOT NULL, v int, PRIMARY KEY (id, tenant_id)) PARTITION BY HASH (tenant_id);
    CREATE TABLE a_hash_0 PARTITION OF a_hash FOR VALUES WITH (MODULUS 4, REMAINDER 0);
    CREATE TABLE a_hash_1 PARTITION OF a_hash FOR VALUES WITH (MODULUS 4, REMAINDER 1);
    CREATE TABLE a_hash_2 PARTITION OF a_hash FOR VALUES WITH (MODULUS 4, REMAINDER 2);
    CREATE TABLE a_hash_3 PARTITION OF a_hash FOR VALUES WITH (MODULUS 4, REMAINDER 3);
    INSERT INTO a_hash SELECT g, 't' || (g % 10), g FROM generate_series(1, 400) g;

    CREATE TABLE b_list (id int, tenant_id text NOT NULL, region text NOT NULL, PRIMARY KEY (id, region))
      PARTITION BY LIST (region);
    CREATE TABLE b_list_eu PARTITION OF b_list FOR VALUES IN ('eu');
    CREATE TABLE b_list_us PARTITION OF b_list FOR VALUES IN ('us');
    CREATE TABLE b_list_other PARTITION OF b_list DEFAULT;
    INSERT INTO b_list SELECT g, 't' || (g % 3), (ARRAY['eu', 'us', 'apac'])[1 + g % 3] FROM generate_series(1, 300) g;

    CREATE TABLE c_range (id int, tenant_id text NOT NULL, created date NOT NULL, kind text NOT NULL,
      PRIMARY KEY (id, created, kind)) PARTITION BY RANGE (created);
    CREATE TABLE c_range_2023 PARTITION OF c_range FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')
      PARTITION BY LIST (kind);
    CREATE TABLE c_range_2023_a PARTITION OF c_range_2023 FOR VALUES IN ('a');
    CREATE TABLE c_range_2023_rest PARTITION OF c_range_2023 DEFAULT;
    CREATE TABLE c_range_2024 PARTITION OF c_range FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    INSERT INTO c_range SELECT g, 't1', date '2023-01-01' + g * 3, (ARRAY['a', 'b'])[1 + g % 2]
      FROM generate_series(1, 200) g;

    CREATE TABLE d_tenant (id int, tenant_id text NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
    CREATE TABLE d_tenant_a PARTITION OF d_tenant FOR VALUES IN ('a');
    CREATE TABLE d_tenant_b PARTITION OF d_tenant FOR VALUES IN ('b');
    CREATE TABLE d_tenant_c PARTITION OF d_tenant FOR VALUES IN ('c');
    INSERT INTO d_tenant SELECT g, (ARRAY['a', 'b', 'c'])[1 + g % 3] FROM generate_series(1, 90) g;
  )SQL");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  const std::vector<std::pair<std::string, int>> roots = {
      {"a_hash", 400}, {"b_list", 300}, {"c_range", 200}, {"d_tenant", 90}};
  std::map<std::string, int> markers;  // "<table>:<marker>" -> events, markers other than "true"
  for (const auto& [table, n] : roots) {
    auto records = h.Read({h.Topic(table)}, static_cast<size_t>(n));
    EXPECT_EQ(OpsById(records), Expect('r', 1, n)) << table;
    for (const auto& r : records) {
      auto d = ParseJson(*r.value);
      const auto& source = Payload(*d)["source"];
      EXPECT_STREQ(source["table"].GetString(), table.c_str());
      const std::string marker = source["snapshot"].GetString();
      if (marker != "true") markers[table + ":" + marker]++;
    }
  }
  // Debezium's markers over the snapshot order a_hash, b_list, c_range, d_tenant.
  EXPECT_EQ(markers.count("a_hash:first"), 1u);
  EXPECT_EQ(markers.count("a_hash:last_in_data_collection"), 1u);
  EXPECT_EQ(markers.count("b_list:first_in_data_collection"), 1u);
  EXPECT_EQ(markers.count("d_tenant:last"), 1u);
  EXPECT_EQ(h.capture().Stop(), 0);
}

// An UPDATE of the partition key moves the row to another partition:
// pgoutput (PG15, publish_via_partition_root) sends a DELETE and an INSERT
// under the root. Capture emits d + tombstone + c in that order; the store
// ends with the row in its new place, and the old place empty.
TEST(CapturePartitions, RowsMovingBetweenPartitionsEndInTheirNewPlace) {
  CaptureHarness h;
  h.Exec(R"SQL(
    CREATE TABLE acc (id int, tenant_id text NOT NULL, v int, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
    CREATE TABLE acc_a PARTITION OF acc FOR VALUES IN ('a');
    CREATE TABLE acc_b PARTITION OF acc FOR VALUES IN ('b');
    CREATE TABLE acc_rest PARTITION OF acc DEFAULT;
    INSERT INTO acc SELECT g, 'a', g FROM generate_series(1, 10) g;
  )SQL");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  h.Exec("UPDATE acc SET v = 100 WHERE tenant_id = 'a' AND id = 2");           // in place: u
  h.Exec("UPDATE acc SET tenant_id = 'b' WHERE tenant_id = 'a' AND id <= 3");  // a -> b: d + c each
  h.Exec("UPDATE acc SET tenant_id = 'zz', v = 7 WHERE id = 3");               // b -> the default partition
  const uint64_t end = Now(h);

  auto records = h.Read({h.Topic("acc")}, 10 + 1 + 3 * 3 + 3);
  std::multiset<std::string> ops = OpsById(records);
  EXPECT_EQ(ops.count("u2"), 1u);
  EXPECT_EQ(ops.count("d1"), 1u);
  EXPECT_EQ(ops.count("c1"), 1u);
  EXPECT_EQ(ops.count("d3"), 2u);
  EXPECT_EQ(ops.count("c3"), 2u);
  // Within its transaction the delete comes first (total_order).
  std::map<std::string, int64_t> order;  // "<op><id>:<txId>" -> total_order
  for (const auto& r : records) {
    if (!r.value) continue;
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    if (!p["transaction"].IsObject()) continue;
    order[Op(r) + std::to_string(RowId(r)) + ":" + std::to_string(p["source"]["txId"].GetInt64())] =
        p["transaction"]["total_order"].GetInt64();
  }
  for (const auto& [event, position] : order) {
    if (event[0] != 'c') continue;
    const std::string twin = "d" + event.substr(1);
    if (order.count(twin)) {
      EXPECT_LT(order[twin], position) << event;
    }
  }

  auto s = h.StopStoreAt(end);
  ASSERT_TRUE(s) << h.store().ReadLog();
  const uint64_t at = s->RecoverablePoint()->lsn.value();
  for (const std::string tenant : {"a", "b", "zz"})
    EXPECT_EQ(StoreIds(*s, tenant, "public.acc", at), PostgresIds(h, tenant, "acc")) << "tenant " << tenant;
  EXPECT_EQ(StoreIds(*s, "b", "public.acc", at), (std::set<int>{1, 2}));
  EXPECT_EQ(h.capture().Stop(), 0);
}

// ATTACH brings rows into the root and DETACH takes them out without any
// row event; capture emits them as creates and deletes under the root, also
// for a DETACH that happened while capture was down.
TEST(CapturePartitions, AttachAndDetachBecomeCreatesAndDeletes) {
  CaptureHarness h;
  h.Exec(R"SQL(
    CREATE TABLE ev (id int NOT NULL, tenant_id text NOT NULL, created date NOT NULL, PRIMARY KEY (id, created))
      PARTITION BY RANGE (created);
    CREATE TABLE ev_2023 PARTITION OF ev FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
    CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    INSERT INTO ev SELECT g, 't', date '2023-01-01' + g FROM generate_series(1, 5) g;
    INSERT INTO ev SELECT g, 't', date '2024-01-01' + g FROM generate_series(6, 9) g;
    CREATE TABLE ev_2025 (id int NOT NULL, tenant_id text NOT NULL, created date NOT NULL, PRIMARY KEY (id, created));
    INSERT INTO ev_2025 SELECT g, 't', date '2025-01-01' + g FROM generate_series(10, 12) g;
  )SQL");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  // The ATTACH must come after the initial snapshot has read the root: a
  // snapshot resolves a root's partitions from the current catalog, so an
  // ATTACH committed while it runs brings the rows in as snapshot reads ('r')
  // rather than creates (docs/capture.md, "Partitioned tables").
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (h.capture().ReadLog().find("initial snapshot complete") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << h.capture().ReadLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  h.Exec("ALTER TABLE ev ATTACH PARTITION ev_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')");
  auto attached = h.Read({h.Topic("ev")}, 9 + 3);
  EXPECT_EQ(OpsById(attached), []() {
    auto e = Expect('r', 1, 9);
    e.merge(Expect('c', 10, 12));
    return e;
  }()) << h.capture().ReadLog();

  h.Exec("ALTER TABLE ev DETACH PARTITION ev_2023");
  auto detached = h.Read({h.Topic("ev")}, 12 + 5 * 2);
  std::multiset<std::string> ops = OpsById(detached);
  for (int id = 1; id <= 5; ++id) EXPECT_EQ(ops.count("d" + std::to_string(id)), 1u) << id;
  h.Exec("INSERT INTO ev VALUES (13, 't', '2025-06-01')");
  const uint64_t streamed = Now(h);
  ASSERT_TRUE(h.WaitConfirmed(streamed, 60));

  // A DETACH while capture is down is found when it starts again.
  EXPECT_EQ(h.capture().Stop(), 0);
  h.Exec("ALTER TABLE ev DETACH PARTITION ev_2024");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  auto later = h.Read({h.Topic("ev")}, 22 + 1 + 4 * 2);
  ops = OpsById(later);
  for (int id = 6; id <= 9; ++id) EXPECT_EQ(ops.count("d" + std::to_string(id)), 1u) << id;
  h.Exec("INSERT INTO ev VALUES (14, 't', '2025-07-01')");
  const uint64_t end = Now(h);

  auto s = h.StopStoreAt(end);
  ASSERT_TRUE(s) << h.store().ReadLog();
  EXPECT_EQ(StoreIds(*s, "t", "public.ev", s->RecoverablePoint()->lsn.value()), (std::set<int>{10, 11, 12, 13, 14}));
  EXPECT_EQ(PostgresIds(h, "t", "ev"), (std::set<int>{10, 11, 12, 13, 14}));
  EXPECT_EQ(h.capture().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing
