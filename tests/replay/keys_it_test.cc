// Key management end to end (docs/store.md "Key management"): real Postgres,
// real Kafka, `timevault capture` and `timevault store` running, and the real
// CLI. After `store rekey` every backup restores and every snapshot rolls
// back under the new master key (and none opens under the old one); after
// `store shred` the tenant's backups and snapshots are gone and a copy of
// one made before no longer decrypts, while the other tenant's still work.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Rows = std::map<long long, std::string>;  // id -> "balance|note"

Rows Truth(CaptureHarness& h, const std::string& tenant) {
  auto conn = h.db().Connect();
  Rows out;
  auto rows =
      conn.Exec("SELECT id, balance, coalesce(note, '<null>') FROM accounts WHERE tenant_id = '" + tenant + "'");
  EXPECT_TRUE(rows.ok());
  for (int r = 0; rows.ok() && r < rows->rows(); ++r) {
    out[std::stoll(rows->GetString(r, 0))] = rows->GetString(r, 1) + "|" + rows->GetString(r, 2);
  }
  return out;
}

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
    if (!s.ok()) continue;
    auto p = (*s)->RecoverablePoint();
    if (p.ok() && p->lsn.value() >= target) return;
  }
  FAIL() << "the store did not reach " << Lsn(target).ToString() << "\n" << h.store().ReadLog();
}

void Change(CaptureHarness& h, int round) {
  const std::string r = std::to_string(round);
  h.Exec("UPDATE accounts SET balance = balance + " + r + ", note = md5(id::text || '" + r +
         "') WHERE id % 5 = " + std::to_string(round % 5));
  h.Exec("DELETE FROM accounts WHERE id % 13 = " + std::to_string(round % 13));
  h.Exec("INSERT INTO accounts SELECT 10000 * " + r +
         " + g, 't' || (1 + g % 2), g, 'new' FROM generate_series(1, 50) g");
}

struct CliRun {
  int code;
  std::string out;
};

CliRun Cli(CaptureHarness& h, const std::string& args) {
  auto r = RunCommand(std::string(TV_BINARY) + " --config " + h.config_path() + " --log-level warn " + args + " 2>&1");
  return {r.exit_code, r.output};
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string SnapshotOf(const CliRun& r) {
  const size_t at = r.out.find("\"snapshot_id\": \"");  // the CLI pretty-prints its JSON
  if (at == std::string::npos) return "";
  const size_t from = at + 16;
  return r.out.substr(from, r.out.find('"', from) - from);
}

struct Backup {
  std::string id, tenant;
  Rows rows;  // what the tenant held at its point
};

TEST(KeysE2E, RekeyThenEveryBackupRestoresAndEverySnapshotRollsBackAndShredReachesArchives) {
  CaptureHarness h;
  h.Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance bigint NOT NULL, note text)");
  h.Exec("INSERT INTO accounts SELECT g, 't' || (1 + g % 2), g, NULL FROM generate_series(1, 400) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  ASSERT_NO_FATAL_FAILURE(CatchUp(h, 120));

  // Backups of both tenants (full, then an incremental of each), changes between.
  std::vector<Backup> backups;
  std::map<std::string, std::string> last_full;
  for (int round = 1; round <= 2; ++round) {
    for (const std::string t : {"t1", "t2"}) {
      const std::string args = round == 1 ? "backup full --tenant " + t : "backup incremental --base " + last_full[t];
      CliRun r = Cli(h, args);
      ASSERT_EQ(r.code, 0) << r.out;
      backups.push_back({FirstLine(r.out), t, Truth(h, t)});
      if (round == 1) last_full[t] = backups.back().id;
    }
    Change(h, round);
    ASSERT_NO_FATAL_FAILURE(CatchUp(h, 120));
  }
  CliRun all = Cli(h, "backup full --tenant '*'");
  ASSERT_EQ(all.code, 0) << all.out;
  const std::string all_id = FirstLine(all.out);

  // One restore per tenant, so each has a snapshot (the state before it).
  const Rows t1_before = Truth(h, "t1"), t2_before = Truth(h, "t2");
  std::vector<std::string> snapshots;  // in the order they were taken
  for (const auto& b : {backups[0], backups[1]}) {
    CliRun r = Cli(h, "restore --backup " + b.id + " --confirm");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(Truth(h, b.tenant), b.rows);
    snapshots.push_back(SnapshotOf(r));
    ASSERT_FALSE(snapshots.back().empty()) << r.out;
  }

  // ---- rekey, with the store stopped ----
  h.store().Stop();
  const std::string old_key = h.key_path() + ".old", new_key = h.key_path() + ".new";
  ASSERT_EQ(RunCommand("umask 077; cp " + h.key_path() + " " + old_key + " && head -c 32 /dev/urandom > " + new_key)
                .exit_code,
            0);
  CliRun rekey = Cli(h, "store rekey --new-key-file " + new_key);
  ASSERT_EQ(rekey.code, 0) << rekey.out;
  EXPECT_THAT(rekey.out, HasSubstr("3 of backups"));                         // t1, t2 and "*"
  EXPECT_THAT(rekey.out, HasSubstr("2 of snapshots"));                       // t1, t2
  ASSERT_EQ(RunCommand("cp " + new_key + " " + h.key_path()).exit_code, 0);  // store.key_file now holds the new key
  h.StartStore();

  // Every backup restores exactly and every snapshot rolls back, under the new key.
  for (const auto& b : backups) {
    SCOPED_TRACE(b.id);
    CliRun v = Cli(h, "backup verify " + b.id);
    EXPECT_EQ(v.code, 0) << v.out;
    CliRun r = Cli(h, "restore --backup " + b.id + " --confirm");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(Truth(h, b.tenant), b.rows);
    snapshots.push_back(SnapshotOf(r));
  }
  CliRun v_all = Cli(h, "backup verify " + all_id);
  EXPECT_EQ(v_all.code, 0) << v_all.out;
  // Every snapshot, newest first (those from before the rekey among them):
  // the tenants end as they were before the first restore.
  for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it) {
    SCOPED_TRACE(*it);
    CliRun r = Cli(h, "rollback --snapshot " + *it + " --confirm");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  EXPECT_EQ(Truth(h, "t1"), t1_before);
  EXPECT_EQ(Truth(h, "t2"), t2_before);

  // The old master key opens nothing any more.
  const std::string old_cfg = h.config_path() + ".old-key.toml";
  std::ofstream(old_cfg) << std::regex_replace(ReadText(h.config_path()), std::regex("key_file = \"[^\"]*\""),
                                               "key_file = \"" + old_key + "\"");
  auto old_verify =
      RunCommand(std::string(TV_BINARY) + " --config " + old_cfg + " backup verify " + backups[0].id + " 2>&1");
  EXPECT_EQ(old_verify.exit_code, 1) << old_verify.output;
  EXPECT_THAT(old_verify.output, HasSubstr("wrapped under another master key"));

  // ---- shred t1, with the store stopped; a copy of one of its backups kept aside ----
  const std::string backup_dir = h.store_path() + "-backups";
  const std::string aside = h.store_path() + "-offsite";
  fs::create_directories(aside);
  fs::copy(backup_dir + "/" + backups[0].id, aside + "/" + backups[0].id, fs::copy_options::recursive);
  h.store().Stop();
  CliRun shred = Cli(h, "store shred --tenant t1 --confirm");
  ASSERT_EQ(shred.code, 0) << shred.out;
  EXPECT_THAT(shred.out, HasSubstr("tenant t1 shredded"));
  EXPECT_THAT(shred.out, HasSubstr("1 backup key(s)"));
  EXPECT_THAT(shred.out, HasSubstr("1 snapshot key(s)"));
  EXPECT_THAT(shred.out, HasSubstr(backups[0].id));
  EXPECT_THAT(shred.out, HasSubstr(backups[2].id));
  EXPECT_THAT(shred.out, HasSubstr("all-tenant backups NOT changed"));
  EXPECT_THAT(shred.out, HasSubstr(all_id));
  h.StartStore();

  CliRun list = Cli(h, "backup list --tenant t1");
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr(backups[0].id)));
  CliRun snaps = Cli(h, "snapshots list --tenant t1");
  EXPECT_THAT(snaps.out, ::testing::Not(HasSubstr(snapshots[0])));
  // The copy, put back where backups live, does not decrypt: a clear error.
  fs::copy(aside + "/" + backups[0].id, backup_dir + "/" + backups[0].id, fs::copy_options::recursive);
  CliRun copy = Cli(h, "backup verify " + backups[0].id);
  EXPECT_EQ(copy.code, 1) << copy.out;
  EXPECT_THAT(copy.out, HasSubstr("of tenant t1 is not in the key ring"));
  EXPECT_THAT(copy.out, HasSubstr("the tenant was shredded"));
  const Rows t1_now = Truth(h, "t1");
  CliRun refused = Cli(h, "restore --backup " + backups[0].id + " --confirm");
  EXPECT_NE(refused.code, 0) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("the tenant was shredded"));
  EXPECT_EQ(Truth(h, "t1"), t1_now) << "nothing changed";

  // t2's backups and snapshot still work.
  CliRun r2 = Cli(h, "restore --backup " + backups[3].id + " --confirm");
  ASSERT_EQ(r2.code, 0) << r2.out;
  EXPECT_EQ(Truth(h, "t2"), backups[3].rows);
  CliRun rb2 = Cli(h, "rollback --snapshot " + SnapshotOf(r2) + " --confirm");
  EXPECT_EQ(rb2.code, 0) << rb2.out;
}

}  // namespace
}  // namespace timevault::testing
