// The apply's guards against the real Postgres, the real broker, real
// capture and a real store (issue 18 items 7, 8, 9, 11; issue 21's preview
// sample): a row inserted into the tenant while an execute runs, the cost of
// the apply's locks on other tenants' writes, the rollback preview of rows
// changed since the apply, the fallback path refusing a cascade, points
// before the store's coverage, and the row-level sample of a preview.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/config/config.h"
#include "timevault/replay/engine.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using replay::Engine;
using replay::PitrTarget;

// Tenant A is large (the cost measurement), the others small, one per test.
constexpr const char* kSchema = R"SQL(
CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, balance int NOT NULL);
CREATE INDEX ON accounts (tenant_id);
CREATE TABLE items (id bigint PRIMARY KEY, tenant_id text NOT NULL,
                    account_id bigint REFERENCES accounts (id) ON DELETE CASCADE, note text);
CREATE INDEX ON items (tenant_id);
CREATE INDEX ON items (account_id);
)SQL";

constexpr const char* kSeed = R"SQL(
INSERT INTO accounts SELECT g, 'A', 'a' || g, g FROM generate_series(1, 20000) g;
INSERT INTO accounts SELECT t.n * 100000 + g, t.name, t.name || g, g
  FROM (VALUES (1, 'B'), (2, 'C'), (3, 'D'), (4, 'E'), (5, 'F')) t(n, name), generate_series(1, 200) g;
INSERT INTO items SELECT a.id * 10 + k, a.tenant_id, a.id, 'item ' || k FROM accounts a, generate_series(1, 2) k
  WHERE a.tenant_id <> 'A';
)SQL";

// After the first moment: every tenant changes (updates, deletes, inserts).
constexpr const char* kChanges = R"SQL(
UPDATE accounts SET balance = balance + 1 WHERE tenant_id = 'A';
UPDATE accounts SET name = name || ' (renamed)' WHERE tenant_id <> 'A' AND id % 100000 <= 20;
DELETE FROM items WHERE tenant_id <> 'A' AND account_id % 100000 BETWEEN 21 AND 30;
DELETE FROM accounts WHERE tenant_id <> 'A' AND id % 100000 BETWEEN 21 AND 30;
UPDATE accounts SET name = repeat('é', 300) WHERE id = 500002;
INSERT INTO accounts SELECT t.n * 100000 + 500 + g, t.name, 'new ' || g, 0
  FROM (VALUES (1, 'B'), (2, 'C'), (3, 'D'), (4, 'E'), (5, 'F')) t(n, name), generate_series(1, 5) g;
INSERT INTO items SELECT a.id * 10 + 1, a.tenant_id, a.id, 'new item' FROM accounts a WHERE a.id % 100000 > 500;
)SQL";

std::string TenantRows(pg::PgConn& conn, const std::string& tenant) {
  auto r = conn.Exec(
      "SELECT coalesce((SELECT string_agg(x::text, E'\\n' ORDER BY id) FROM accounts x WHERE tenant_id = '" + tenant +
      "'), '') || E'\\n--\\n' || coalesce((SELECT string_agg(x::text, E'\\n' ORDER BY id) FROM items x WHERE "
      "tenant_id = '" +
      tenant + "'), '')");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->GetString(0, 0) : "";
}

struct Moment {
  Lsn lsn;
  CommitTime time;
  std::map<std::string, std::string> rows;  // tenant -> TenantRows
};

Moment Record(pg::PgConn& conn) {
  Moment m;
  for (const char* t : {"A", "B", "C", "D", "E", "F"}) m.rows[t] = TenantRows(conn, t);
  auto at = conn.Exec(
      "SELECT pg_current_wal_insert_lsn()::text, "
      "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  EXPECT_TRUE(at.ok());
  if (at.ok()) {
    m.lsn = *Lsn::Parse(at->GetString(0, 0));
    m.time = *CommitTime::Parse(at->GetString(0, 1));
  }
  return m;
}

struct World {
  std::unique_ptr<CaptureHarness> h;
  std::unique_ptr<store::Store> store;
  Moment before_capture;  // a point before the initial snapshot
  Moment m0, m1;
  bool ready = false;
};

void Build(World* w) {
  w->h = std::make_unique<CaptureHarness>();
  CaptureHarness& h = *w->h;
  ASSERT_NO_FATAL_FAILURE(h.Exec(kSchema));
  ASSERT_NO_FATAL_FAILURE(h.Exec(kSeed));
  auto conn = h.db().Connect();
  w->before_capture = Record(conn);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  w->m0 = Record(conn);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_NO_FATAL_FAILURE(h.Exec(kChanges));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  w->m1 = Record(conn);
  const Moment last = w->m1;
  w->store = h.StopStoreWhenCaughtUp(
      [&](const store::Point& p) { return !(p.lsn < last.lsn) && p.time.micros() >= last.time.micros(); },
      last.lsn.ToString());
  ASSERT_NE(w->store, nullptr);
  w->ready = true;
}

World* g_world = nullptr;

class WorldCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_world;
    g_world = nullptr;
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new WorldCleanup);

class ApplyGuards : public ::testing::Test {
 protected:
  void SetUp() override {
    static bool built = false;
    if (!built) {
      built = true;
      g_world = new World;
      Build(g_world);
    }
    ASSERT_TRUE(g_world && g_world->ready) << "the shared world could not be built (see the failures above)";
    w_ = g_world;
  }

  std::unique_ptr<Engine> OpenEngine(const config::Environment& env = {}) {
    auto cfg = config::Load(w_->h->config_path(), env);
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    if (!cfg.ok()) return nullptr;
    auto e = Engine::Open(*cfg, w_->store.get());
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  World* w_ = nullptr;
};

// Item 7: a row inserted into the tenant after the apply locked the tenant's
// rows is diffed (READ COMMITTED) — and must be locked before the snapshot
// reads it, so a later write by the application either lands before the
// snapshot or waits for the apply, and rollback brings back exactly the
// version the apply replaced.
TEST_F(ApplyGuards, ARowInsertedDuringTheExecuteIsLockedAndRolledBackExactly) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = w_->h->db().Connect();
  replay::BackupRequest req;
  req.tenant = "C";
  req.at = store::Point{w_->m0.lsn, w_->m0.time};
  auto backup = engine->backups().CreateFull(*w_->store, req);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();

  auto app = w_->h->db().Connect();
  auto app2 = w_->h->db().Connect();
  const std::string before = TenantRows(conn, "C");
  bool inserted = false;
  std::future<Result<pg::PgResult>> update;
  bool update_waited = false;
  auto done = engine->Restore(backup->id, TenantId("C"), {}, "job-guard-insert", [&](std::string_view phase, double) {
    if (phase == "load" && !inserted) {
      // After LockRows: a new row of the tenant, committed at once.
      inserted = true;
      EXPECT_TRUE(app.Run("INSERT INTO accounts VALUES (299999, 'C', 'inserted during the execute', 7)").ok());
    }
    if (phase == "apply" && !update.valid()) {
      // After the snapshot, before the DML: the application changes that row.
      update = std::async(std::launch::async, [&] {
        return app2.Exec("UPDATE accounts SET name = 'changed by the app' WHERE id = 299999 RETURNING id");
      });
      update_waited = update.wait_for(std::chrono::milliseconds(1500)) == std::future_status::timeout;
    }
  });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_TRUE(inserted);
  ASSERT_TRUE(update.valid());
  auto updated = update.get();
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  // The row was locked by the apply: the write waited for its commit and
  // then found the row deleted by it (the restore's target lacks it).
  EXPECT_TRUE(update_waited) << "the application's write to a row the apply deletes did not wait for the apply";
  const bool app_write_landed = updated->rows() == 1;
  EXPECT_FALSE(app_write_landed);
  EXPECT_EQ(TenantRows(conn, "C"), w_->m0.rows.at("C")) << "the restore is not exactly the backup's state";

  // Rollback brings back exactly what the apply replaced: the row as the
  // application last committed it before the apply deleted it.
  auto back = engine->Rollback(done->snapshot_id, "job-guard-insert-rb", nullptr);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto row = conn.Exec("SELECT name FROM accounts WHERE id = 299999");
  ASSERT_TRUE(row.ok());
  ASSERT_EQ(row->rows(), 1);
  EXPECT_EQ(row->GetString(0, 0), app_write_landed ? "changed by the app" : "inserted during the execute");
  ASSERT_TRUE(conn.Run("DELETE FROM accounts WHERE id = 299999").ok());
  EXPECT_EQ(TenantRows(conn, "C"), before);
}

// Item 7, PITR: a row inserted between the lock and the diff changes the
// plan's operations, so the execute refuses and changes nothing.
TEST_F(ApplyGuards, APitrRefusesWhenARowIsInsertedDuringTheExecute) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = w_->h->db().Connect();
  auto app = w_->h->db().Connect();
  auto plan = engine->PreviewPitr(TenantId("C"), PitrTarget(w_->m0.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string before;
  bool inserted = false;
  auto done = engine->ExecutePitr(plan->plan_id, "job-guard-pitr", [&](std::string_view phase, double) {
    if (phase == "load" && !inserted) {
      inserted = true;
      EXPECT_TRUE(app.Run("INSERT INTO accounts VALUES (299998, 'C', 'inserted during the execute', 7)").ok());
      before = TenantRows(app, "C");
    }
  });
  ASSERT_TRUE(inserted);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), StatusCode::kFailedPrecondition) << done.status().ToString();
  EXPECT_NE(done.status().message().find("changed since the preview"), std::string::npos) << done.status().ToString();
  EXPECT_EQ(TenantRows(conn, "C"), before);
  ASSERT_TRUE(conn.Run("DELETE FROM accounts WHERE id = 299998").ok());
}

// Item 7's cost: the apply locks only the tenant's rows (no table lock), so
// other tenants' writes to the same tables go on while a 20,000-row PITR of
// tenant A runs. Measured: single-row updates of tenant B, latency during
// the apply against the same loop without it.
TEST_F(ApplyGuards, OtherTenantsWriteWhileALargeApplyRuns) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = w_->h->db().Connect();
  const std::string before = TenantRows(conn, "A");
  auto writes = [&](const std::atomic<bool>& stop, int max_n) {
    auto other = w_->h->db().Connect();
    std::vector<double> ms;
    for (int i = 0; !stop.load() && static_cast<int>(ms.size()) < max_n; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      EXPECT_TRUE(
          other.Run("UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(100001 + i % 200)).ok());
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms;
  };
  std::atomic<bool> never{false};
  auto baseline = writes(never, 300);
  auto plan = engine->PreviewPitr(TenantId("A"), PitrTarget(w_->m0.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->ops.updates, 20000u);
  std::atomic<bool> stop{false};
  auto during = std::async(std::launch::async, [&] { return writes(stop, 1000000); });
  auto t0 = std::chrono::steady_clock::now();
  auto done = engine->ExecutePitr(plan->plan_id, "job-guard-cost", nullptr);
  const double apply_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  auto ms = during.get();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(TenantRows(conn, "A"), w_->m0.rows.at("A"));
  ASSERT_FALSE(ms.empty());
  ASSERT_FALSE(baseline.empty());
  auto pct = [](const std::vector<double>& v, double p) { return v[static_cast<size_t>(p * (v.size() - 1))]; };
  std::printf(
      "[cost] 20000-row PITR of tenant A took %.0f ms; tenant B single-row updates: during it n=%zu p50=%.2f ms "
      "p99=%.2f ms max=%.2f ms; without it n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms\n",
      apply_ms, ms.size(), pct(ms, 0.5), pct(ms, 0.99), ms.back(), baseline.size(), pct(baseline, 0.5),
      pct(baseline, 0.99), baseline.back());
  // Never blocked for the apply's duration (a table lock would be).
  EXPECT_LT(ms.back(), std::max(1000.0, apply_ms / 2)) << "another tenant's write waited for the apply";
  EXPECT_GT(ms.size(), 10u);
  ASSERT_TRUE(engine->Rollback(done->snapshot_id, "job-guard-cost-rb", nullptr).ok());
  EXPECT_EQ(TenantRows(conn, "A"), before);
}

// Issue 21: a preview keeps a row-level sample per table (before -> after),
// paged by PlanSample; values are texts, long ones cut and named.
TEST_F(ApplyGuards, PreviewKeepsAPagedRowSampleOfEveryTable) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto plan = engine->PreviewPitr(TenantId("F"), PitrTarget(w_->m0.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->by_table.size(), 2u);
  std::map<std::string, uint64_t> ops;
  for (const auto& t : plan->by_table) ops[t.table] = t.ops.total();
  // accounts: 20 renamed (one of them made long) -> updates, 10 deleted ->
  // inserts, 5 new -> deletes; all fit the sample.
  EXPECT_EQ(ops["public.accounts"], 35u);
  EXPECT_EQ(plan->sampled["public.accounts"], 35u);
  EXPECT_EQ(plan->sampled["public.items"], ops["public.items"]);
  // Pages of 8 cover the sample once, in key order.
  std::vector<std::string> all;
  std::optional<uint64_t> cursor = 0;
  int pages = 0;
  while (cursor) {
    auto page = engine->PlanSample(plan->plan_id, "public.accounts", *cursor, 8);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ(page->operations, 35u);
    EXPECT_EQ(page->sampled, 35u);
    EXPECT_LE(page->changes.size(), 8u);
    all.insert(all.end(), page->changes.begin(), page->changes.end());
    cursor = page->next;
    ASSERT_LT(++pages, 10);
  }
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(all.size(), 35u);
  std::map<std::string, int> by_op;
  int64_t last_id = 0;
  for (const auto& text : all) {
    auto d = ParseJson(text);
    const std::string op = (*d)["op"].GetString();
    ++by_op[op];
    const int64_t id = std::stoll((*d)["key"]["id"].GetString());
    EXPECT_GT(id, last_id) << "not in key order";
    last_id = id;
    if (op == "insert") {
      EXPECT_TRUE((*d)["before"].IsNull());
      EXPECT_EQ(std::string((*d)["after"]["tenant_id"].GetString()), "F");
    } else if (op == "delete") {
      EXPECT_TRUE((*d)["after"].IsNull());
      EXPECT_EQ(std::string((*d)["before"]["name"].GetString()).rfind("new ", 0), 0u) << text;
    } else {
      ASSERT_EQ(op, "update");
      ASSERT_EQ((*d)["changed"].Size(), 1u) << text;
      EXPECT_EQ(std::string((*d)["changed"][0].GetString()), "name");
      EXPECT_EQ(std::string((*d)["after"]["name"].GetString()), "F" + std::to_string(id - 500000));
      if (id == 500002) {
        // 300 characters of two bytes each: cut at 256 characters, named.
        std::string cut;
        for (int i = 0; i < 256; ++i) cut += "é";
        EXPECT_EQ(std::string((*d)["before"]["name"].GetString()), cut + "…");
        ASSERT_EQ((*d)["truncated"].Size(), 1u);
        EXPECT_EQ(std::string((*d)["truncated"][0].GetString()), "name");
      } else {
        EXPECT_EQ(std::string((*d)["before"]["name"].GetString()), "F" + std::to_string(id - 500000) + " (renamed)");
        EXPECT_EQ((*d)["truncated"].Size(), 0u);
      }
    }
  }
  EXPECT_EQ(by_op["update"], 20);
  EXPECT_EQ(by_op["insert"], 10);
  EXPECT_EQ(by_op["delete"], 5);
  // The plan read back carries the counts; unknown tables and plans are 404s.
  auto again = engine->GetPlan(plan->plan_id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sampled, plan->sampled);
  EXPECT_EQ(engine->PlanSample(plan->plan_id, "public.nope", 0, 8).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->PlanSample("p-20260101T000000Z-00000000", "public.accounts", 0, 8).status().code(),
            StatusCode::kNotFound);
  auto past = engine->PlanSample(plan->plan_id, "public.accounts", 35, 8);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->changes.empty());
  EXPECT_FALSE(past->next);
}

// Item 11: a rollback preview names what the rollback would revert that the
// application changed after the apply; the rollback refuses to revert it
// unless that exact set was confirmed (its digest), through the engine and
// the CLI.
TEST_F(ApplyGuards, RollbackPreviewNamesRowsChangedSinceTheApplyAndNeedsTheirConfirmation) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = w_->h->db().Connect();
  const std::string before = TenantRows(conn, "D");
  auto plan = engine->PreviewPitr(TenantId("D"), PitrTarget(w_->m0.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto done = engine->ExecutePitr(plan->plan_id, "job-guard-revert", nullptr);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  // Right after the apply: the rollback reverts nothing the application did.
  auto clean = engine->PreviewRollback(done->snapshot_id);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->reverts_known);
  EXPECT_EQ(clean->reverts, 0u);
  EXPECT_EQ(clean->ops.total(), done->ops.total());
  EXPECT_TRUE(clean->revert_sample.empty());

  // The application changes rows after the PITR: one the PITR updated, one
  // it inserted, one it deleted (written again), and one it never touched.
  ASSERT_TRUE(conn.Run("UPDATE accounts SET name = 'D1 by the app' WHERE id = 300001").ok());
  ASSERT_TRUE(conn.Run("UPDATE accounts SET name = 'D22 by the app' WHERE id = 300022").ok());
  ASSERT_TRUE(conn.Run("INSERT INTO accounts VALUES (300501, 'D', 'back by the app', 9)").ok());
  ASSERT_TRUE(conn.Run("UPDATE accounts SET balance = 4242 WHERE id = 300100").ok());
  const std::string changed = TenantRows(conn, "D");
  auto preview = engine->PreviewRollback(done->snapshot_id);
  ASSERT_TRUE(preview.ok()) << preview.status().ToString();
  EXPECT_EQ(preview->reverts, 3u);
  EXPECT_EQ(preview->reverts_by_table["public.accounts"], 3u);
  EXPECT_EQ(preview->reverts_digest.size(), 64u);
  ASSERT_EQ(preview->revert_sample.size(), 3u);
  std::map<std::string, std::string> ops;  // key -> op
  for (const auto& [table, change] : preview->revert_sample) {
    EXPECT_EQ(table, "public.accounts");
    auto d = ParseJson(change);
    ops[(*d)["key"]["id"].GetString()] = (*d)["op"].GetString();
    if (std::string((*d)["key"]["id"].GetString()) == "300001") {
      EXPECT_EQ(std::string((*d)["before"]["name"].GetString()), "D1 by the app");
      EXPECT_EQ(std::string((*d)["after"]["name"].GetString()), "D1 (renamed)");
    }
  }
  EXPECT_EQ(ops,
            (std::map<std::string, std::string>{{"300001", "update"}, {"300022", "delete"}, {"300501", "update"}}));

  // Without the confirmation, and with a wrong one: refused, unchanged.
  auto refused = engine->Rollback(done->snapshot_id, "job-guard-revert-rb0", nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("would revert 3 row(s)"), std::string::npos) << refused.status().ToString();
  auto wrong = engine->Rollback(done->snapshot_id, "job-guard-revert-rb1", nullptr, nullptr, std::string(64, '0'));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("not those confirmed"), std::string::npos) << wrong.status().ToString();
  EXPECT_EQ(TenantRows(conn, "D"), changed);
  // The CLI: the preview, and --confirm alone refused.
  const std::string base = std::string(TV_BINARY) + " --config " + w_->h->config_path();
  auto cli_preview = RunCommand(base + " rollback --snapshot " + done->snapshot_id + " --preview 2>/dev/null");
  ASSERT_EQ(cli_preview.exit_code, 0) << cli_preview.output;
  auto cli_doc = ParseJson(cli_preview.output);
  EXPECT_EQ((*cli_doc)["reverts"].GetUint64(), 3u) << cli_preview.output;
  EXPECT_EQ(std::string((*cli_doc)["reverts_digest"].GetString()), preview->reverts_digest);
  EXPECT_TRUE((*cli_doc)["confirm_required"].GetBool());
  auto cli_refused = RunCommand(base + " rollback --snapshot " + done->snapshot_id + " --confirm 2>&1");
  EXPECT_NE(cli_refused.exit_code, 0) << cli_refused.output;
  EXPECT_NE(cli_refused.output.find("reverts_digest"), std::string::npos) << cli_refused.output;
  EXPECT_EQ(TenantRows(conn, "D"), changed);

  // With the preview's digest: the rollback puts the snapshot back; the row
  // it never held keeps the application's change.
  auto back = engine->Rollback(done->snapshot_id, "job-guard-revert-rb2", nullptr, nullptr, preview->reverts_digest);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(conn.Exec("SELECT balance FROM accounts WHERE id = 300100")->GetString(0, 0), "4242");
  ASSERT_TRUE(conn.Run("UPDATE accounts SET balance = 100 WHERE id = 300100").ok());
  EXPECT_EQ(TenantRows(conn, "D"), before);
}

// Item 8: without the privilege to set session_replication_role the apply
// takes the ordered path, where ON DELETE CASCADE and user triggers fire and
// could change rows outside the snapshot: refused (at the preview already),
// naming them; once neither would fire, that path applies and verifies.
TEST_F(ApplyGuards, TheFallbackPathRefusesCascadesAndTriggersByName) {
  auto conn = w_->h->db().Connect();
  const std::string role = UniqueName("tv_norepl");
  ASSERT_TRUE(conn.Run("CREATE ROLE " + role + " LOGIN NOSUPERUSER NOREPLICATION").ok());
  ASSERT_TRUE(conn.Run("GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, items TO " + role).ok());
  const auto& env = Env();
  config::Environment as_role{{"TIMEVAULT_POSTGRES_CONNINFO", "host=" + env.pg_host + " port=" + env.pg_port +
                                                                  " user=" + role + " dbname=" + w_->h->db().name()}};
  auto engine = OpenEngine(as_role);
  ASSERT_NE(engine, nullptr);
  const std::string before = TenantRows(conn, "E");
  // The PITR deletes rows of accounts, which items references ON DELETE CASCADE.
  auto cascade = engine->PreviewPitr(TenantId("E"), PitrTarget(w_->m0.lsn), {});
  ASSERT_FALSE(cascade.ok());
  EXPECT_EQ(cascade.status().code(), StatusCode::kFailedPrecondition) << cascade.status().ToString();
  EXPECT_NE(cascade.status().message().find("foreign key items_account_id_fkey (public.items -> public.accounts) ON "
                                            "DELETE CASCADE"),
            std::string::npos)
      << cascade.status().ToString();
  EXPECT_NE(cascade.status().message().find("session_replication_role"), std::string::npos);
  // A user trigger on the table is named the same way.
  ASSERT_TRUE(conn.Run("ALTER TABLE items DROP CONSTRAINT items_account_id_fkey, ADD CONSTRAINT items_account_id_fkey "
                       "FOREIGN KEY (account_id) REFERENCES accounts (id)")
                  .ok());
  ASSERT_TRUE(conn.Run("CREATE TABLE audit_log (at timestamptz DEFAULT now(), what text);"
                       "CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
                       "audit_log (what) VALUES (TG_OP); RETURN NULL; END $$;"
                       "CREATE TRIGGER accounts_audit AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION "
                       "log_change()")
                  .ok());
  auto trigger = engine->PreviewPitr(TenantId("E"), PitrTarget(w_->m0.lsn), {});
  ASSERT_FALSE(trigger.ok());
  EXPECT_NE(trigger.status().message().find("trigger accounts_audit on public.accounts"), std::string::npos)
      << trigger.status().ToString();
  EXPECT_EQ(trigger.status().message().find("items_account_id_fkey"), std::string::npos);
  EXPECT_EQ(TenantRows(conn, "E"), before);
  // Neither left: the ordered path applies (triggers firing), verified.
  ASSERT_TRUE(conn.Run("DROP TRIGGER accounts_audit ON accounts").ok());
  auto plan = engine->PreviewPitr(TenantId("E"), PitrTarget(w_->m0.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto done = engine->ExecutePitr(plan->plan_id, "job-guard-fallback", nullptr);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->verified);
  EXPECT_EQ(TenantRows(conn, "E"), w_->m0.rows.at("E"));
  auto back = engine->Rollback(done->snapshot_id, "job-guard-fallback-rb", nullptr);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(TenantRows(conn, "E"), before);
  engine.reset();
  ASSERT_TRUE(conn.Run("ALTER TABLE items DROP CONSTRAINT items_account_id_fkey, ADD CONSTRAINT items_account_id_fkey "
                       "FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE")
                  .ok());
  ASSERT_TRUE(conn.Run("DROP TABLE audit_log; DROP FUNCTION log_change()").ok());
  ASSERT_TRUE(conn.Run("REVOKE ALL ON accounts, items FROM " + role + "; DROP ROLE " + role).ok());
}

}  // namespace
}  // namespace timevault::testing
