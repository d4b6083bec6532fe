// capture's guarantees under faults and load, against the real servers:
// kill -9 during a concurrent workload loses nothing; an idle capture
// releases WAL; a huge transaction streams with flat memory.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/capture_harness.h"

namespace timevault::testing {
namespace {

struct RowImage {
  std::string tenant, balance, note;
  bool operator==(const RowImage&) const = default;
};

// Folds change events into the final rows: per key, the event with the
// highest LSN wins (duplicates from restarts collapse).
std::map<long long, RowImage> Fold(const std::vector<Record>& records) {
  std::map<long long, std::pair<uint64_t, std::optional<RowImage>>> latest;
  for (const auto& r : records) {
    if (!r.value) continue;
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    std::string op = p["op"].GetString();
    uint64_t lsn = p["source"]["lsn"].GetUint64();
    const auto& row = op == "d" ? p["before"] : p["after"];
    long long id = row["id"].GetInt64();
    auto it = latest.find(id);
    if (it != latest.end() && it->second.first > lsn) continue;
    std::optional<RowImage> image;
    if (op != "d") {
      image = RowImage{row["tenant_id"].GetString(), std::to_string(row["balance"].GetInt64()),
                       row["note"].IsNull() ? "<null>" : row["note"].GetString()};
    }
    latest[id] = {lsn, image};
  }
  std::map<long long, RowImage> out;
  for (const auto& [id, v] : latest) {
    if (v.second) out[id] = *v.second;
  }
  return out;
}

TEST(CaptureFault, KillNineDuringWorkloadLosesNothing) {
  CaptureHarness h;
  h.Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance bigint NOT NULL, note text)");
  h.Exec("INSERT INTO accounts SELECT g, 't' || (g % 8), g, NULL FROM generate_series(1, 2000) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());

  TempDir dir;
  WriteFile(dir.path() + "/workload.sql", R"SQL(
\set id random(1, 4000)
\set t random(1, 8)
\set op random(1, 10)
BEGIN;
\if :op <= 5
INSERT INTO accounts VALUES (:id, 't' || :t, :op, NULL) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + :op, tenant_id = excluded.tenant_id;
\elif :op <= 8
UPDATE accounts SET balance = balance - 1, note = md5(random()::text) WHERE id = :id;
UPDATE accounts SET balance = balance + 1 WHERE id = :id + 1;
\else
DELETE FROM accounts WHERE id = :id;
\endif
COMMIT;
)SQL");
  const auto& env = Env();
  Process bench;
  ASSERT_TRUE(
      bench.Start({PgTool("pgbench"), "-n", "-c", "4", "-j", "2", "-T", "25", "-f", dir.path() + "/workload.sql", "-h",
                   env.pg_host, "-p", env.pg_port, "-U", env.pg_user, h.db().name()},
                  dir.path() + "/pgbench.log"));
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  while (bench.running() && kills < 6) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 3500)(rng)));
    h.capture().Kill();
    ++kills;
    ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  }
  EXPECT_EQ(bench.Wait(120), 0) << bench.ReadLog();
  EXPECT_GE(kills, 5);
  ASSERT_TRUE(h.WaitConfirmed(0, 180)) << h.capture().ReadLog();
  EXPECT_EQ(h.capture().Stop(), 0);

  auto folded = Fold(h.Read({h.Topic("accounts")}, 0, 4000));
  auto truth = h.sql().Exec("SELECT id, tenant_id, balance, coalesce(note, '<null>') FROM accounts");
  ASSERT_TRUE(truth.ok());
  std::map<long long, RowImage> expected;
  for (int r = 0; r < truth->rows(); ++r) {
    expected[std::stoll(truth->GetString(r, 0))] =
        RowImage{truth->GetString(r, 1), truth->GetString(r, 2), truth->GetString(r, 3)};
  }
  int lost = 0, wrong = 0, extra = 0;
  for (const auto& [id, row] : expected) {
    auto it = folded.find(id);
    if (it == folded.end()) {
      ++lost;
    } else if (!(it->second == row)) {
      ++wrong;
    }
  }
  for (const auto& [id, row] : folded) extra += expected.count(id) ? 0 : 1;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(extra, 0) << "rows deleted in Postgres but alive in the events";
  EXPECT_GT(expected.size(), 1000u);
  std::cout << "kill -9 x" << kills << ": rows=" << expected.size() << " lost=" << lost << " wrong=" << wrong
            << " extra=" << extra << "\n";
}

TEST(CaptureFault, IdleSlotRetainsLittleWalWhileOthersWrite) {
  CaptureHarness h({.snapshot_mode = "no_data", .status_ms = 500});
  h.Exec("CREATE TABLE quiet (id int PRIMARY KEY, tenant_id text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  TestDatabase other("busy");
  auto busy = other.Connect();
  ASSERT_TRUE(busy.Run("CREATE TABLE noise (id bigint, pad text)").ok());
  auto retained = [&] {
    return std::stoll(
        h.Query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM "
                "pg_replication_slots WHERE slot_name = '" +
                h.slot() + "'"));
  };
  long long peak_after_warmup = 0;
  // ~300 MB of WAL in another database, in steps.
  for (int step = 0; step < 30; ++step) {
    ASSERT_TRUE(busy.Run("INSERT INTO noise SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 60000) g").ok());
    if (step % 3 == 2) {  // restart_lsn only moves at running-xacts records (checkpoints)
      ASSERT_TRUE(busy.Run("CHECKPOINT").ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (step >= 10) peak_after_warmup = std::max(peak_after_warmup, retained());
  }
  ASSERT_TRUE(busy.Run("CHECKPOINT").ok());
  long long final_retained = 0;
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    final_retained = retained();
    if (final_retained < 16 * 1024 * 1024) break;
  }
  std::cout << "idle slot: peak retained after warm-up " << peak_after_warmup / 1024 / 1024 << " MB, final "
            << final_retained / 1024 / 1024 << " MB\n";
  EXPECT_LT(final_retained, 64LL * 1024 * 1024);
  EXPECT_LT(peak_after_warmup, 64LL * 1024 * 1024);
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(CaptureFault, TwoMillionRowTransactionStreamsWithFlatMemory) {
  CaptureHarness h({.snapshot_mode = "no_data"});
  h.Exec("CREATE TABLE bulk (id bigint PRIMARY KEY, tenant_id text NOT NULL, amount numeric(12,2), note text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO bulk SELECT g, 't' || (g % 16), g / 100.0, 'row ' || g FROM generate_series(1, 2000000) g");
  long peak = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(400);
  uint64_t target = h.CurrentWalLsn();
  while (h.ConfirmedLsn() < target && std::chrono::steady_clock::now() < deadline) {
    peak = std::max(peak, h.capture().PeakRssKb());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  peak = std::max(peak, h.capture().PeakRssKb());
  ASSERT_GE(h.ConfirmedLsn(), target) << "the transaction did not flow through in time";
  EXPECT_EQ(CountMessages(Env().kafka_bootstrap, h.Topic("bulk")), 2000000);
  std::cout << "2M-row transaction: capture peak RSS " << peak / 1024 << " MB\n";
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, 128 * 1024) << "capture must stream a big transaction, not buffer it";
  EXPECT_EQ(h.capture().Stop(), 0);
}

}  // namespace
}  // namespace timevault::testing

namespace timevault::testing {
namespace {

TEST(CaptureFault, WalsenderTerminatedMidStreamReconnectsWithoutLoss) {
  CaptureHarness h({.snapshot_mode = "no_data"});
  h.Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) h.Exec("INSERT INTO t VALUES (" + std::to_string(round * 100 + i) + ", 'a')");
    // Postgres goes away under capture: its walsender is terminated.
    h.Query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" + h.slot() + "'");
  }
  ASSERT_TRUE(h.WaitConfirmed(0, 60)) << h.capture().ReadLog();
  std::set<int> ids;
  for (const auto& r : h.Read({h.Topic("t")}, 0, 3000)) {
    auto d = ParseJson(*r.value);
    ids.insert(Payload(*d)["after"]["id"].GetInt());
  }
  EXPECT_EQ(ids.size(), 150u);
  EXPECT_TRUE(h.capture().running()) << "capture must reconnect, not exit";
  EXPECT_NE(h.capture().ReadLog().find("retrying"), std::string::npos);
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(CaptureFault, KafkaBrokerKilledAndRestartedLosesNothing) {
  // A private broker, so killing it disturbs no other test.
  TempDir kdir;
  auto started = RunCommand(std::string(TV_SOURCE_DIR) + "/scripts/kafka-local start " + kdir.path());
  ASSERT_EQ(started.exit_code, 0) << started.output;
  std::string bootstrap = started.output.substr(started.output.find('=') + 1);
  bootstrap = bootstrap.substr(0, bootstrap.find('\n'));
  CaptureHarness h({.snapshot_mode = "no_data", .extra = ""});
  std::string cfg = h.config_path() + ".private";
  RunCommand("sed 's|^bootstrap = .*|bootstrap = \"" + bootstrap + "\"|' " + h.config_path() + " > " + cfg);
  h.Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  Process capture;
  ASSERT_TRUE(capture.Start({TV_BINARY, "--config", cfg, "capture"}, cfg + ".log"));
  for (int i = 0; i < 100 && h.Query("SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots "
                                     "WHERE slot_name = '" +
                                     h.slot() + "'") != "t";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  h.Exec("INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g");
  ASSERT_TRUE(h.WaitConfirmed(0, 60));
  RunCommand(std::string(TV_SOURCE_DIR) + "/scripts/kafka-local kill " + kdir.path());
  h.Exec("INSERT INTO t SELECT g, 'a' FROM generate_series(101, 300) g");
  uint64_t target = h.CurrentWalLsn();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_LT(h.ConfirmedLsn(), target) << "nothing may be confirmed while Kafka is down";
  auto restarted = RunCommand(std::string(TV_SOURCE_DIR) + "/scripts/kafka-local start " + kdir.path());
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
  ASSERT_TRUE(h.WaitConfirmed(target, 180)) << capture.ReadLog();
  std::set<int> ids;
  for (const auto& r : ReadTopics(bootstrap, {h.Topic("t")}, 3000)) {
    auto d = ParseJson(*r.value);
    ids.insert(Payload(*d)["after"]["id"].GetInt());
  }
  EXPECT_EQ(ids.size(), 300u);
  EXPECT_EQ(capture.Stop(), 0) << capture.ReadLog();
  RunCommand(std::string(TV_SOURCE_DIR) + "/scripts/kafka-local stop " + kdir.path());
}

}  // namespace
}  // namespace timevault::testing
