// Backups end to end: real Postgres, real Kafka, `timevault capture` and
// `timevault store` running, and the real `timevault backup` CLI reading the
// store read-only beside them. The rows a backup chain loads equal what
// Postgres held; a flipped byte makes `backup verify` exit 1 naming the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/replay/backup.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Rows = std::map<long long, std::string>;  // id -> "balance|note"

Rows ReadTruth(pg::PgConn& conn, const std::string& tenant) {
  Rows out;
  auto rows =
      conn.Exec("SELECT id, balance, coalesce(note, '<null>') FROM accounts WHERE tenant_id = '" + tenant + "'");
  EXPECT_TRUE(rows.ok());
  for (int r = 0; rows.ok() && r < rows->rows(); ++r) {
    out[std::stoll(rows->GetString(r, 0))] = rows->GetString(r, 1) + "|" + rows->GetString(r, 2);
  }
  return out;
}

Rows FromBackup(replay::BackupCatalog& c, const std::string& id, const std::string& tenant) {
  Rows out;
  Status st = c.LoadState(id, TenantId(tenant), {}, [&](const store::Row& row) {
    auto d = ParseJson(row.json);
    std::string note = (*d)["note"].IsNull() ? "<null>" : (*d)["note"].GetString();
    out[(*d)["id"].GetInt64()] = std::to_string((*d)["balance"].GetInt64()) + "|" + note;
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// Waits (with a read-only store beside the running one) until the
// recoverable point reaches the WAL insert position.
void CatchUp(CaptureHarness& h, int timeout_s) {
  const uint64_t target = ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()"));
  store::Store::Options o;
  o.path = h.store_path();
  o.key_file = h.key_path();
  o.read_only = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto s = store::Store::Open(o);
    if (!s.ok()) continue;  // the store may not have created its files yet
    auto p = (*s)->RecoverablePoint();
    if (p.ok() && p->lsn.value() >= target) return;
  }
  FAIL() << "the store did not reach " << Lsn(target).ToString() << "\n" << h.store().ReadLog();
}

void Workload(CaptureHarness& h, int round) {
  const std::string r = std::to_string(round);
  h.Exec("UPDATE accounts SET balance = balance + " + r + ", note = md5(id::text || '" + r + "') WHERE id % 7 = " + r);
  h.Exec("DELETE FROM accounts WHERE id % 11 = " + r);
  h.Exec("INSERT INTO accounts SELECT 10000 * " + r +
         " + g, 't' || (1 + g % 3), g, 'new' FROM generate_series(1, 200) g");
  for (int i = 0; i < 20; ++i) {
    h.Exec("UPDATE accounts SET balance = balance - 1 WHERE id = " + std::to_string(100 + i * 13 + round));
  }
}

std::string Cli(CaptureHarness& h, const std::string& args, int* exit_code) {
  auto r = RunCommand(std::string(TV_BINARY) + " --config " + h.config_path() + " --log-level warn backup " + args +
                      " 2>&1");
  *exit_code = r.exit_code;
  return r.output;
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST(BackupE2E, FullAndIncrementalThroughTheCliWhileTheStoreRuns) {
  CaptureHarness h;
  h.Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance bigint NOT NULL, note text)");
  h.Exec("INSERT INTO accounts SELECT g, 't' || (1 + g % 3), g, NULL FROM generate_series(1, 1200) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  Workload(h, 1);
  ASSERT_NO_FATAL_FAILURE(CatchUp(h, 120));
  auto conn = h.db().Connect();
  const Rows truth1 = ReadTruth(conn, "t1");
  ASSERT_GT(truth1.size(), 300u);

  int rc = 0;
  std::string out = Cli(h, "full --tenant t1 --name nightly --description 'first one'", &rc);
  ASSERT_EQ(rc, 0) << out;
  const std::string full = FirstLine(out);
  EXPECT_THAT(full, ::testing::StartsWith("b-"));
  EXPECT_THAT(out, HasSubstr("full backup of tenant 't1'"));
  out = Cli(h, "full --tenant '*'", &rc);
  ASSERT_EQ(rc, 0) << out;
  const std::string all = FirstLine(out);

  Workload(h, 2);
  Workload(h, 3);
  ASSERT_NO_FATAL_FAILURE(CatchUp(h, 120));
  const Rows truth2 = ReadTruth(conn, "t1");
  const Rows truth2_t2 = ReadTruth(conn, "t2");
  ASSERT_NE(truth1, truth2);
  out = Cli(h, "incremental --base " + full, &rc);
  ASSERT_EQ(rc, 0) << out;
  const std::string inc = FirstLine(out);
  EXPECT_THAT(out, HasSubstr("incremental backup of tenant 't1'"));
  out = Cli(h, "incremental --base " + all, &rc);
  ASSERT_EQ(rc, 0) << out;
  const std::string inc_all = FirstLine(out);

  for (const auto& id : {full, all, inc, inc_all}) {
    out = Cli(h, "verify " + id, &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("ok"));
  }
  out = Cli(h, "list", &rc);
  EXPECT_EQ(rc, 0);
  for (const auto& id : {full, all, inc, inc_all}) EXPECT_THAT(out, HasSubstr(id));
  EXPECT_THAT(out, HasSubstr("nightly"));
  out = Cli(h, "list --tenant t2", &rc);
  EXPECT_THAT(out, ::testing::Not(HasSubstr(full)));
  EXPECT_THAT(out, HasSubstr(all));

  // What the backups hold is what Postgres held.
  const std::string backup_dir = h.store_path() + "-backups";
  auto catalog = replay::BackupCatalog::Open(backup_dir, h.key_path());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ(FromBackup(**catalog, full, "t1"), truth1);
  EXPECT_EQ(FromBackup(**catalog, inc, "t1"), truth2);
  EXPECT_EQ(FromBackup(**catalog, inc_all, "t1"), truth2);
  EXPECT_EQ(FromBackup(**catalog, inc_all, "t2"), truth2_t2);

  // Expire dry run: the full is needed by the incremental, nothing goes.
  out = Cli(h, "expire --keep 1 --tenant t1", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("dry run: 0 backup(s)"));

  // One flipped byte in the full's data: verifying the incremental names it.
  std::string data_file;
  for (const auto& e : fs::directory_iterator(backup_dir + "/" + full)) {
    if (e.path().filename() != "manifest.json") data_file = e.path().filename().string();
  }
  ASSERT_FALSE(data_file.empty());
  {
    std::fstream f(backup_dir + "/" + full + "/" + data_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char c = 0;
    f.get(c);
    f.seekp(100);
    f.put(static_cast<char>(c ^ 0x10));
  }
  out = Cli(h, "verify " + inc, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("backup " + full));
  EXPECT_THAT(out, HasSubstr("file " + data_file));
  out = Cli(h, "verify " + all, &rc);
  EXPECT_EQ(rc, 0) << out;  // the other backups are untouched
  out = Cli(h, "verify b-nope", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_EQ(h.capture().Stop(), 0);
  EXPECT_EQ(h.store().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing
