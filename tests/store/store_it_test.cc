// capture + store against the real Postgres, the real broker and a real
// RocksDB: the state the store rebuilds equals what Postgres held.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/core/kafka.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using store::Store;

struct AccountRow {
  std::string balance, note;
  bool operator==(const AccountRow&) const = default;
};
using TenantRows = std::map<long long, AccountRow>;
using Truth = std::map<std::string, TenantRows>;  // tenant -> id -> row

Truth ReadTruth(pg::PgConn& conn, uint64_t* lsn) {
  Truth t;
  EXPECT_TRUE(conn.Run("BEGIN; LOCK TABLE accounts IN SHARE MODE").ok());
  auto rows = conn.Exec("SELECT tenant_id, id, balance, coalesce(note, '<null>') FROM accounts");
  auto at = conn.Exec("SELECT pg_current_wal_insert_lsn()");
  EXPECT_TRUE(conn.Run("COMMIT").ok());
  EXPECT_TRUE(rows.ok() && at.ok());
  for (int r = 0; rows.ok() && r < rows->rows(); ++r) {
    t[rows->GetString(r, 0)][std::stoll(rows->GetString(r, 1))] = {rows->GetString(r, 2), rows->GetString(r, 3)};
  }
  *lsn = at.ok() ? ParseLsnText(at->GetString(0, 0)) : 0;
  return t;
}

TenantRows StoreRows(Store& s, const std::string& tenant, uint64_t lsn) {
  TenantRows out;
  Status st = s.StateAt(TenantId(tenant), Lsn(lsn), {"public.accounts"}, [&](const store::Row& row) {
    auto d = ParseJson(row.json);
    std::string note = (*d)["note"].IsNull() ? "<null>" : (*d)["note"].GetString();
    out[(*d)["id"].GetInt64()] = {std::to_string((*d)["balance"].GetInt64()), note};
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

void ExpectSameState(Store& s, const Truth& truth, uint64_t lsn, const std::set<std::string>& tenants) {
  for (const auto& tenant : tenants) {
    auto it = truth.find(tenant);
    TenantRows expected = it == truth.end() ? TenantRows{} : it->second;
    EXPECT_EQ(StoreRows(s, tenant, lsn), expected) << "tenant " << tenant << " at " << Lsn(lsn).ToString();
  }
}

void StartWorkload(CaptureHarness& h, Process* bench, const std::string& dir, int seconds) {
  WriteFile(dir + "/workload.sql", R"SQL(
\set id random(1, 3000)
\set t random(1, 6)
\set op random(1, 10)
BEGIN;
\if :op <= 5
INSERT INTO accounts VALUES (:id, 't' || :t, :op, NULL) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + :op;
\elif :op <= 8
UPDATE accounts SET balance = balance - 1, note = md5(random()::text) WHERE id = :id;
UPDATE accounts SET balance = balance + 1 WHERE id = :id + 1;
\else
DELETE FROM accounts WHERE id = :id;
\endif
COMMIT;
)SQL");
  const auto& env = Env();
  ASSERT_TRUE(
      bench->Start({PgTool("pgbench"), "-n", "-c", "3", "-j", "1", "-T", std::to_string(seconds), "-f",
                    dir + "/workload.sql", "-h", env.pg_host, "-p", env.pg_port, "-U", env.pg_user, h.db().name()},
                   dir + "/pgbench.log"));
}

const std::set<std::string> kTenants = {"t1", "t2", "t3", "t4", "t5", "t6"};

void CreateAccounts(CaptureHarness& h) {
  h.Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance bigint NOT NULL, note text)");
  h.Exec("INSERT INTO accounts SELECT g, 't' || (1 + g % 6), g, NULL FROM generate_series(1, 1500) g");
}

TEST(StoreE2E, StateAtNowAndAtTwentyEarlierCommitsEqualsPostgres) {
  CaptureHarness h;
  CreateAccounts(h);
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  TempDir dir;
  Process bench;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(h, &bench, dir.path(), 20));
  auto truth_conn = h.db().Connect();
  std::vector<std::pair<uint64_t, Truth>> moments;
  while (bench.running() && moments.size() < 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    uint64_t lsn = 0;
    Truth t = ReadTruth(truth_conn, &lsn);
    moments.emplace_back(lsn, std::move(t));
  }
  EXPECT_EQ(bench.Wait(120), 0) << bench.ReadLog();
  uint64_t final_lsn = 0;
  Truth final_truth = ReadTruth(truth_conn, &final_lsn);
  auto s = h.StopStoreAt(final_lsn, 180);
  ASSERT_TRUE(s) << h.store().ReadLog();
  auto point = s->RecoverablePoint();
  ASSERT_TRUE(point.ok());
  ExpectSameState(*s, final_truth, point->lsn.value(), kTenants);
  EXPECT_GE(moments.size(), 15u);
  for (const auto& [lsn, truth] : moments) ExpectSameState(*s, truth, lsn, kTenants);
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(StoreE2E, KillNineStoreFiveTimesStateStaysExact) {
  CaptureHarness h;
  CreateAccounts(h);
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  TempDir dir;
  Process bench;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(h, &bench, dir.path(), 20));
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  while (bench.running() && kills < 6) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(800, 3000)(rng)));
    h.store().Kill();
    ++kills;
    h.StartStore();
  }
  EXPECT_EQ(bench.Wait(120), 0);
  EXPECT_GE(kills, 5);
  auto conn = h.db().Connect();
  uint64_t final_lsn = 0;
  Truth truth = ReadTruth(conn, &final_lsn);
  auto s = h.StopStoreAt(final_lsn, 180);
  ASSERT_TRUE(s) << h.store().ReadLog();
  ExpectSameState(*s, truth, s->RecoverablePoint()->lsn.value(), kTenants);
  // No event stored twice: every (change LSN, key) appears once in history.
  for (const auto& tenant : kTenants) {
    std::set<std::pair<uint64_t, std::string>> seen;
    int duplicates = 0;
    Status st = s->History(TenantId(tenant), Lsn(0), s->RecoverablePoint()->lsn, std::nullopt, std::nullopt,
                           [&](const store::HistoryEvent& e) {
                             if (!seen.insert({e.change_lsn.value(), e.pk + e.op}).second) ++duplicates;
                             return true;
                           });
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(duplicates, 0) << "tenant " << tenant;
    EXPECT_GT(seen.size(), 100u);
  }
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(StoreE2E, ToastedValuesAreRealAtEveryPoint) {
  CaptureHarness h;
  h.Exec("CREATE TABLE docs (id int PRIMARY KEY, tenant_id text NOT NULL, body text, counter int)");
  // Random text does not compress: 12 kB of it is really TOASTed.
  h.Exec(
      "INSERT INTO docs SELECT g, 'ta', (SELECT string_agg(md5(random()::text || g || i), '') FROM "
      "generate_series(1, 400) i), 0 FROM generate_series(1, 5) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  std::map<int, std::string> bodies;
  auto rows = h.sql().Exec("SELECT id, body FROM docs");
  ASSERT_TRUE(rows.ok());
  for (int r = 0; r < rows->rows(); ++r) bodies[std::stoi(rows->GetString(r, 0))] = rows->GetString(r, 1);
  ASSERT_GT(bodies[1].size(), 10000u);
  std::vector<std::pair<uint64_t, int>> points;
  for (int i = 1; i <= 15; ++i) {
    h.Exec("UPDATE docs SET counter = " + std::to_string(i));
    points.emplace_back(ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()")), i);
  }
  auto s = h.StopStoreAt(points.back().first, 120);
  ASSERT_TRUE(s) << h.store().ReadLog();
  for (const auto& point : points) {
    const uint64_t lsn = point.first;
    const int counter = point.second;
    int seen = 0;
    Status st = s->StateAt(TenantId("ta"), Lsn(lsn), {}, [&](const store::Row& row) {
      auto d = ParseJson(row.json);
      int id = (*d)["id"].GetInt();
      EXPECT_EQ((*d)["counter"].GetInt(), counter);
      EXPECT_EQ(std::string((*d)["body"].GetString()), bodies[id]) << "row " << id << " at update " << counter;
      ++seen;
      return true;
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(seen, 5);
  }
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(StoreE2E, FilesHoldNoPlaintextAndWrongKeyIsRefused) {
  CaptureHarness h;
  h.Exec("CREATE TABLE secrets (id int PRIMARY KEY, tenant_id text NOT NULL, secret text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  const std::string marker = "PLAINTEXT-MARKER-7f3a9c";
  for (int i = 0; i < 50; ++i) {
    h.Exec("INSERT INTO secrets VALUES (" + std::to_string(i) + ", 'tx', '" + marker + " #" + std::to_string(i) + "')");
  }
  {
    auto s = h.StopStoreAt(ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()")), 120);
    ASSERT_TRUE(s);
    int rows = 0;
    ASSERT_TRUE(s->StateAt(TenantId("tx"), s->RecoverablePoint()->lsn, {}, [&](const store::Row& r) {
                   EXPECT_NE(r.json.find(marker), std::string::npos);
                   ++rows;
                   return true;
                 }).ok());
    EXPECT_EQ(rows, 50);
  }
  auto grep = RunCommand("grep -r -l -a '" + marker + "' " + h.store_path());
  EXPECT_EQ(grep.exit_code, 1) << "plaintext found in: " << grep.output;

  RunCommand("head -c 32 /dev/urandom > " + h.key_path());  // another master key
  Store::Options o;
  o.path = h.store_path();
  o.key_file = h.key_path();
  auto wrong = Store::Open(o);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("master key"), std::string::npos) << wrong.status().ToString();
  EXPECT_EQ(h.capture().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing
