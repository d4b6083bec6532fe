// PITR, rollback, plan binding, concurrency and the table filter against the
// real Postgres, the real broker, real capture and a real store: a
// multi-tenant schema with foreign keys (a self-reference, a deferrable key),
// TOASTed values, a random workload from several clients, and ground truth
// recorded from Postgres at 30 moments.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/config/config.h"
#include "timevault/replay/engine.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using replay::Engine;
using replay::PitrTarget;

const std::vector<std::string> kTables = {"orgs", "users", "campaigns", "enrollments", "notes"};
using Dump = std::map<std::string, std::string>;  // table -> its rows as text, in key order

constexpr const char* kSchema = R"SQL(
CREATE TABLE orgs (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL,
                   parent_id bigint REFERENCES orgs (id));
CREATE TABLE users (id bigint PRIMARY KEY, tenant_id text NOT NULL, org_id bigint NOT NULL REFERENCES orgs (id),
                    email text NOT NULL UNIQUE, score numeric(10,2), prefs jsonb, bio text,
                    updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE campaigns (id bigint PRIMARY KEY, tenant_id text NOT NULL, title text NOT NULL,
                        owner_id bigint REFERENCES users (id) DEFERRABLE INITIALLY IMMEDIATE);
CREATE TABLE enrollments (id bigint PRIMARY KEY, tenant_id text NOT NULL,
                          user_id bigint NOT NULL REFERENCES users (id),
                          campaign_id bigint NOT NULL REFERENCES campaigns (id), status text);
CREATE TABLE notes (id bigint PRIMARY KEY, tenant_id text NOT NULL, body text);
CREATE TABLE settings (key text PRIMARY KEY, value text);
CREATE INDEX ON orgs (tenant_id); CREATE INDEX ON users (tenant_id); CREATE INDEX ON campaigns (tenant_id);
CREATE INDEX ON enrollments (tenant_id); CREATE INDEX ON notes (tenant_id);
INSERT INTO settings SELECT 'k' || g, md5(g::text) FROM generate_series(1, 20) g;

-- A large value Postgres stores out of line (TOAST): random, so it does not compress below 2 kB.
CREATE FUNCTION big() RETURNS text LANGUAGE sql AS
  $$ SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200) $$;
CREATE FUNCTION pick(tbl regclass, t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
  EXECUTE format('SELECT id FROM %s WHERE tenant_id = $1 ORDER BY random() LIMIT 1', tbl) INTO v USING t;
  RETURN v;
END $$;

-- One random operation for tenant T<tn>; constraint violations are part of
-- the game and undo just that operation.
CREATE FUNCTION work(tn int, op int, r int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text := 'T' || tn; nid bigint := tn * 1000000 + r;
BEGIN
  CASE op
  WHEN 1 THEN INSERT INTO orgs VALUES (nid, t, 'org' || r, pick('orgs', t));
  WHEN 2 THEN UPDATE orgs SET name = md5(random()::text), parent_id = pick('orgs', t) WHERE orgs.id = pick('orgs', t);
  WHEN 3 THEN INSERT INTO users VALUES (nid, t, pick('orgs', t), t || '-' || (r % 60) || '@example.com',
                                        round((random() * 1000)::numeric, 2), jsonb_build_object('r', r),
                                        CASE WHEN r % 3 = 0 THEN big() ELSE 'short ' || r END, now());
  WHEN 4 THEN UPDATE users SET score = round((random() * 1000)::numeric, 2), updated = now()
              WHERE users.id = pick('users', t);
  WHEN 5 THEN UPDATE users SET org_id = pick('orgs', t) WHERE users.id = pick('users', t);
  WHEN 6 THEN DECLARE u bigint := pick('users', t);
              BEGIN
                DELETE FROM enrollments WHERE user_id = u;
                UPDATE campaigns SET owner_id = NULL WHERE owner_id = u;
                DELETE FROM users WHERE users.id = u;
              END;
  WHEN 7 THEN INSERT INTO campaigns VALUES (nid, t, 'campaign ' || r, pick('users', t));
  WHEN 8 THEN UPDATE campaigns SET title = md5(random()::text), owner_id = pick('users', t)
              WHERE campaigns.id = pick('campaigns', t);
  WHEN 9 THEN DECLARE c bigint := pick('campaigns', t);
              BEGIN
                DELETE FROM enrollments WHERE campaign_id = c;
                DELETE FROM campaigns WHERE campaigns.id = c;
              END;
  WHEN 10 THEN INSERT INTO enrollments VALUES (nid, t, pick('users', t), pick('campaigns', t), 'new');
  WHEN 11 THEN UPDATE enrollments SET status = md5(random()::text), campaign_id = pick('campaigns', t)
               WHERE enrollments.id = pick('enrollments', t);
  WHEN 12 THEN DELETE FROM enrollments WHERE enrollments.id = pick('enrollments', t);
  WHEN 13 THEN DELETE FROM orgs WHERE orgs.id = pick('orgs', t);
  ELSE INSERT INTO notes VALUES (nid, t, md5(random()::text)) ON CONFLICT (id) DO UPDATE SET body = NULL;
  END CASE;
EXCEPTION WHEN integrity_constraint_violation OR not_null_violation THEN NULL;
END $$;
)SQL";

constexpr const char* kSeed = R"SQL(
INSERT INTO orgs SELECT tn * 1000000 + g, 'T' || tn, 'org' || g, NULL FROM generate_series(1, 4) tn, generate_series(1, 15) g;
UPDATE orgs SET parent_id = id - 1 WHERE id % 1000000 > 1;
INSERT INTO users SELECT tn * 1000000 + g, 'T' || tn, tn * 1000000 + 1 + g % 15, 'T' || tn || '-seed' || g || '@example.com',
                         g * 1.5, jsonb_build_object('seed', g), CASE WHEN g % 4 = 0 THEN big() ELSE 'seed' END, now()
  FROM generate_series(1, 4) tn, generate_series(1, 80) g;
INSERT INTO campaigns SELECT tn * 1000000 + g, 'T' || tn, 'seed campaign', tn * 1000000 + g FROM generate_series(1, 4) tn, generate_series(1, 15) g;
INSERT INTO enrollments SELECT tn * 1000000 + g, 'T' || tn, tn * 1000000 + 1 + g % 80, tn * 1000000 + 1 + g % 15, 'seed'
  FROM generate_series(1, 4) tn, generate_series(1, 150) g;
INSERT INTO notes SELECT tn * 1000000 + g, 'T' || tn, 'note ' || g FROM generate_series(1, 4) tn, generate_series(1, 30) g;
)SQL";

Dump DumpWhere(pg::PgConn& conn, const std::string& where) {
  Dump out;
  for (const auto& t : kTables) {
    auto r = conn.Exec("SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY id), '') FROM " + t + " x WHERE " + where);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    out[t] = r.ok() ? r->GetString(0, 0) : "";
  }
  auto s = conn.Exec("SELECT string_agg(x::text, E'\\n' ORDER BY key) FROM settings x");
  EXPECT_TRUE(s.ok());
  if (where.find("<>") != std::string::npos && s.ok()) out["settings"] = s->GetString(0, 0);
  return out;
}

Dump Tenant(pg::PgConn& conn, const std::string& tenant) { return DumpWhere(conn, "tenant_id = '" + tenant + "'"); }
Dump Others(pg::PgConn& conn, const std::string& tenant) { return DumpWhere(conn, "tenant_id <> '" + tenant + "'"); }

struct Moment {
  Lsn lsn;
  CommitTime time;
  Dump rows;
};

// The tenant's rows with every writer held off, and the WAL position and
// time they are the state at.
Moment Record(pg::PgConn& conn, const std::string& tenant) {
  Moment m;
  // Taking five table locks next to running writers can deadlock; Postgres
  // then aborts one side, and the recording simply tries again.
  Status locked = Status::Ok();
  for (int attempt = 0; attempt < 20; ++attempt) {
    locked = conn.Run("BEGIN; LOCK TABLE orgs, users, campaigns, enrollments, notes IN SHARE MODE");
    if (locked.ok()) break;
    (void)conn.Run("ROLLBACK");
  }
  EXPECT_TRUE(locked.ok()) << locked.ToString();
  m.rows = Tenant(conn, tenant);
  auto at = conn.Exec(
      "SELECT pg_current_wal_insert_lsn()::text, "
      "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  EXPECT_TRUE(conn.Run("COMMIT").ok());
  EXPECT_TRUE(at.ok());
  if (at.ok()) {
    m.lsn = *Lsn::Parse(at->GetString(0, 0));
    m.time = *CommitTime::Parse(at->GetString(0, 1));
  }
  return m;
}

config::Config LoadConfig(CaptureHarness& h, const std::string& extra_env_lock_ms = "") {
  config::Environment env;
  if (!extra_env_lock_ms.empty()) env["TIMEVAULT_REPLAY_LOCK_TIMEOUT_MS"] = extra_env_lock_ms;
  auto cfg = config::Load(h.config_path(), env);
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  return cfg.ok() ? *cfg : config::Config{};
}

// The shared world of these tests, built once per process by the first test
// that needs it (a failure there fails that test: gtest would report a
// failing SetUpTestSuite as skipped tests).
struct World {
  std::unique_ptr<CaptureHarness> h;
  std::unique_ptr<store::Store> store;
  std::vector<Moment> moments;
  bool ready = false;
};

void Build(World* w) {
  w->h = std::make_unique<CaptureHarness>();
  CaptureHarness& h = *w->h;
  ASSERT_NO_FATAL_FAILURE(h.Exec(kSchema));
  ASSERT_NO_FATAL_FAILURE(h.Exec(kSeed));
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  // A random workload from four clients over four tenants while the truth
  // of T1 is recorded at 30 moments.
  TempDir dir;
  WriteFile(dir.path() + "/work.sql",
            "\\set tn random(1, 4)\n\\set op random(1, 14)\n\\set r random(1, 400)\nSELECT work(:tn, :op, :r);\n");
  const auto& env = Env();
  Process bench;
  ASSERT_TRUE(
      bench.Start({PgTool("pgbench"), "-n", "-c", "4", "-j", "2", "-T", "25", "--max-tries", "20", "-f",
                   dir.path() + "/work.sql", "-h", env.pg_host, "-p", env.pg_port, "-U", env.pg_user, h.db().name()},
                  dir.path() + "/pgbench.log"));
  auto conn = h.db().Connect();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int i = 0; i < 30; ++i) {
    w->moments.push_back(Record(conn, "T1"));
    std::this_thread::sleep_for(std::chrono::milliseconds(550 + (i * 37) % 200));
  }
  ASSERT_EQ(bench.Wait(120), 0) << bench.ReadLog();
  Moment last = Record(conn, "T1");
  w->store = h.StopStoreWhenCaughtUp(
      [&](const store::Point& p) { return !(p.lsn < last.lsn) && p.time.micros() >= last.time.micros(); },
      last.lsn.ToString());
  ASSERT_NE(w->store, nullptr);
  w->ready = true;
}

World* g_world = nullptr;

// Closes the store and stops the processes before static destruction
// (RocksDB must not outlive its own statics).
class WorldCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_world;
    g_world = nullptr;
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new WorldCleanup);

class PitrE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    static bool built = false;
    if (!built) {
      built = true;
      g_world = new World;
      Build(g_world);
    }
    ASSERT_TRUE(g_world && g_world->ready) << "the shared workload could not be built (see the failures above)";
    h_ = g_world->h.get();
    store_ = g_world->store.get();
    moments_ = &g_world->moments;
  }

  std::unique_ptr<Engine> OpenEngine(const std::string& lock_ms = "") {
    auto cfg = LoadConfig(*h_, lock_ms);
    auto e = Engine::Open(cfg, store_);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  CaptureHarness* h_ = nullptr;
  store::Store* store_ = nullptr;
  const std::vector<Moment>* moments_ = nullptr;
};

TEST_F(PitrE2E, EveryMomentIsRestoredExactlyAndRolledBackExactly) {
  ASSERT_EQ(moments_->size(), 30u);
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  uint64_t total_ops = 0;
  for (size_t i = 0; i < moments_->size(); ++i) {
    SCOPED_TRACE("moment " + std::to_string(i) + " at " + (*moments_)[i].lsn.ToString());
    const Dump before = Tenant(conn, "T1");
    const Dump others = Others(conn, "T1");
    PitrTarget target = i % 2 == 0 ? PitrTarget((*moments_)[i].lsn) : PitrTarget((*moments_)[i].time);
    auto plan = engine->PreviewPitr(TenantId("T1"), target, {});
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(Tenant(conn, "T1"), before) << "a preview changed live rows";
    std::vector<std::string> phases;
    auto done = engine->ExecutePitr(plan->plan_id, "job-pitr-" + std::to_string(i),
                                    [&](std::string_view phase, double) { phases.emplace_back(phase); });
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_TRUE(done->verified);
    EXPECT_EQ(done->verified_digest.size(), 64u);
    EXPECT_EQ(done->ops.inserts, plan->ops.inserts);
    EXPECT_EQ(done->ops.updates, plan->ops.updates);
    EXPECT_EQ(done->ops.deletes, plan->ops.deletes);
    EXPECT_FALSE(phases.empty());
    total_ops += done->ops.total();

    const Dump after = Tenant(conn, "T1");
    for (const auto& t : kTables) EXPECT_EQ(after.at(t), (*moments_)[i].rows.at(t)) << "table " << t;
    EXPECT_EQ(after.at("users").find("__debezium_unavailable_value"), std::string::npos);
    EXPECT_EQ(Others(conn, "T1"), others) << "another tenant's rows changed";

    auto snap = engine->GetSnapshot(done->snapshot_id);
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    EXPECT_EQ(snap->tenant, "T1");
    EXPECT_EQ(snap->rows, plan->ops.updates + plan->ops.deletes);
    EXPECT_EQ(snap->absent, plan->ops.inserts);

    auto back = engine->Rollback(done->snapshot_id, "job-rollback-" + std::to_string(i), nullptr);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(back->verified);
    EXPECT_EQ(back->ops.total(), done->ops.total());
    EXPECT_EQ(Tenant(conn, "T1"), before) << "rollback did not restore the rows before the PITR";
    EXPECT_EQ(Others(conn, "T1"), others);
  }
  // The workload changed T1 between the moments: the PITRs did real work.
  EXPECT_GT(total_ops, 100u);
  auto listed = engine->ListSnapshots(std::string("T1"));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 60u);
}

TEST_F(PitrE2E, StalePlanIsRefusedAndChangesNothing) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  auto plan = engine->PreviewPitr(TenantId("T2"), PitrTarget((*moments_)[3].lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_GT(plan->ops.total(), 0u);
  // The tenant changes after the preview: a new row the plan does not know.
  ASSERT_TRUE(conn.Run("INSERT INTO notes VALUES (2999999, 'T2', 'written after the preview')").ok());
  const Dump before = Tenant(conn, "T2");
  auto done = engine->ExecutePitr(plan->plan_id, "job-stale", nullptr);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), StatusCode::kFailedPrecondition) << done.status().ToString();
  EXPECT_NE(done.status().message().find("changed since the preview"), std::string::npos);
  EXPECT_EQ(Tenant(conn, "T2"), before);
  // Unknown and empty plan ids.
  EXPECT_EQ(engine->ExecutePitr("", "job-x", nullptr).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->ExecutePitr("p-20260101T000000Z-00000000", "job-x", nullptr).status().code(),
            StatusCode::kNotFound);
  // A fresh plan runs, and runs once.
  auto fresh = engine->PreviewPitr(TenantId("T2"), PitrTarget((*moments_)[3].lsn), {});
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(engine->ExecutePitr(fresh->plan_id, "job-fresh", nullptr).ok());
  auto again = engine->ExecutePitr(fresh->plan_id, "job-again", nullptr);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("already executed"), std::string::npos);
}

// The execute of a plan loads the target its preview staged (the target at
// a point depends on the store's history only) and still diffs it against
// the live rows under the lock; a table whose columns changed since the
// preview gets its target from the store again. Both give the rows at T.
TEST_F(PitrE2E, ExecuteReusesThePreviewsTargetUnlessTheTableChanged) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  const auto& moment = (*moments_)[11];
  auto plan = engine->PreviewPitr(TenantId("T1"), PitrTarget(moment.lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto done = engine->ExecutePitr(plan->plan_id, "job-staged", nullptr);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->target_staged);
  Dump after = Tenant(conn, "T1");
  for (const auto& t : kTables) EXPECT_EQ(after.at(t), moment.rows.at(t)) << "table " << t;

  // Another process (the CLI without the API) has no staged target: the store.
  auto other = OpenEngine();
  ASSERT_NE(other, nullptr);
  auto plan2 = engine->PreviewPitr(TenantId("T1"), PitrTarget((*moments_)[17].lsn), {});
  ASSERT_TRUE(plan2.ok()) << plan2.status().ToString();
  auto done2 = other->ExecutePitr(plan2->plan_id, "job-unstaged", nullptr);
  ASSERT_TRUE(done2.ok()) << done2.status().ToString();
  EXPECT_FALSE(done2->target_staged);
  after = Tenant(conn, "T1");
  for (const auto& t : kTables) EXPECT_EQ(after.at(t), (*moments_)[17].rows.at(t)) << "table " << t;

  // A column added between the preview and the execute: the staged text no
  // longer fits the table, the execute reads the store.
  auto plan3 = engine->PreviewPitr(TenantId("T1"), PitrTarget(moment.lsn), {});
  ASSERT_TRUE(plan3.ok()) << plan3.status().ToString();
  ASSERT_TRUE(conn.Run("ALTER TABLE notes ADD COLUMN extra text").ok());
  auto done3 = engine->ExecutePitr(plan3->plan_id, "job-reshaped", nullptr);
  ASSERT_TRUE(conn.Run("ALTER TABLE notes DROP COLUMN extra").ok());
  ASSERT_TRUE(done3.ok()) << done3.status().ToString();
  EXPECT_FALSE(done3->target_staged);
  after = Tenant(conn, "T1");
  for (const auto& t : kTables) EXPECT_EQ(after.at(t), moment.rows.at(t)) << "table " << t;
}

TEST_F(PitrE2E, TableFilterLeavesOtherTablesUntouched) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  const Dump before = Tenant(conn, "T1");
  auto plan = engine->PreviewPitr(TenantId("T1"), PitrTarget((*moments_)[0].lsn), {"public.notes"});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  for (const auto& t : plan->by_table) EXPECT_EQ(t.table, "public.notes");
  auto done = engine->ExecutePitr(plan->plan_id, "job-filter", nullptr);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  const Dump after = Tenant(conn, "T1");
  EXPECT_EQ(after.at("notes"), (*moments_)[0].rows.at("notes"));
  for (const auto& t : kTables) {
    if (t != "notes") {
      EXPECT_EQ(after.at(t), before.at(t)) << "table " << t << " was touched";
    }
  }
  ASSERT_TRUE(engine->Rollback(done->snapshot_id, "job-filter-rb", nullptr).ok());
  EXPECT_EQ(Tenant(conn, "T1"), before);
  // A table without the tenant column is refused by name.
  auto bad = engine->PreviewPitr(TenantId("T1"), PitrTarget((*moments_)[0].lsn), {"public.settings"});
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("no tenant column"), std::string::npos) << bad.status().ToString();
  // Past the recoverable point.
  auto late = engine->PreviewPitr(TenantId("T1"), PitrTarget(Lsn(~uint64_t{0} >> 1)), {});
  EXPECT_EQ(late.status().code(), StatusCode::kOutOfRange);
}

TEST_F(PitrE2E, ConcurrentWritesAreNeitherLostNorOverwrittenSilently) {
  auto engine = OpenEngine("1500");
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  auto blocker = h_->db().Connect();
  auto other = h_->db().Connect();
  const Dump before = Tenant(conn, "T3");

  // 1. A transaction holds a row of T3 past the lock timeout: the execute
  //    fails cleanly and changes nothing; other tenants write meanwhile.
  auto plan = engine->PreviewPitr(TenantId("T3"), PitrTarget((*moments_)[5].lsn), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_TRUE(
      blocker.Run("BEGIN; UPDATE notes SET body = 'held' WHERE id = (SELECT min(id) FROM notes WHERE tenant_id = 'T3')")
          .ok());
  auto running = std::async(std::launch::async, [&] { return engine->ExecutePitr(plan->plan_id, "job-c1", nullptr); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(other.Run("UPDATE notes SET body = 'other tenant writes' WHERE tenant_id = 'T4'").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  auto failed = running.get();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kAborted) << failed.status().ToString();
  ASSERT_TRUE(blocker.Run("COMMIT").ok());
  Dump with_write = Tenant(conn, "T3");
  EXPECT_NE(with_write.at("notes"), before.at("notes"));
  EXPECT_NE(with_write.at("notes").find("held"), std::string::npos) << "the concurrent write was lost";

  // 2. A transaction holds a row briefly: the execute waits for it, then
  //    its snapshot holds the concurrent write, so rollback brings it back.
  //    (A row the plan deletes, so the write does not change the plan.)
  ASSERT_TRUE(conn.Run("INSERT INTO notes VALUES (3999998, 'T3', 'fresh')").ok());
  auto plan2 = engine->PreviewPitr(TenantId("T3"), PitrTarget((*moments_)[5].lsn), {});
  ASSERT_TRUE(plan2.ok());
  ASSERT_TRUE(blocker.Run("BEGIN; UPDATE notes SET body = 'late write' WHERE id = 3999998").ok());
  auto waiting = std::async(std::launch::async, [&] { return engine->ExecutePitr(plan2->plan_id, "job-c2", nullptr); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(blocker.Run("COMMIT").ok());
  auto done = waiting.get();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  const Dump concurrent = Tenant(conn, "T3");
  EXPECT_EQ(concurrent.at("notes").find("late write"), std::string::npos);  // the PITR put the target back
  ASSERT_TRUE(engine->Rollback(done->snapshot_id, "job-c2-rb", nullptr).ok());
  EXPECT_NE(Tenant(conn, "T3").at("notes").find("late write"), std::string::npos)
      << "the write made while the execute waited is not in its snapshot";
}

TEST_F(PitrE2E, CliPreviewAndExecuteRequireConfirm) {
  auto conn = h_->db().Connect();
  const Dump before = Tenant(conn, "T4");
  std::string cfg = h_->config_path();
  // The store process must be stopped for the in-process store; the CLI opens
  // it read-only, which works next to it.
  auto preview = RunCommand(std::string(TV_BINARY) + " --config " + cfg + " pitr preview --tenant T4 --lsn " +
                            (*moments_)[2].lsn.ToString() + " 2>&1");
  ASSERT_EQ(preview.exit_code, 0) << preview.output;
  auto doc = ParseJson(preview.output.substr(preview.output.find('{')));
  ASSERT_TRUE(doc->HasMember("plan_id")) << preview.output;
  std::string plan_id = (*doc)["plan_id"].GetString();
  auto dry = RunCommand(std::string(TV_BINARY) + " --config " + cfg + " pitr execute --plan " + plan_id + " 2>&1");
  EXPECT_NE(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("--confirm"), std::string::npos) << dry.output;
  EXPECT_EQ(Tenant(conn, "T4"), before);
  auto none = RunCommand(std::string(TV_BINARY) + " --config " + cfg + " pitr execute --confirm 2>&1");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  auto run =
      RunCommand(std::string(TV_BINARY) + " --config " + cfg + " pitr execute --plan " + plan_id + " --confirm 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(Tenant(conn, "T4"), before);
  auto list = RunCommand(std::string(TV_BINARY) + " --config " + cfg + " snapshots list --tenant T4 2>&1");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  auto pos = list.output.find("s-");
  ASSERT_NE(pos, std::string::npos) << list.output;
  std::string snap = list.output.substr(pos, list.output.find_first_of(" \t\n", pos) - pos);
  auto rb =
      RunCommand(std::string(TV_BINARY) + " --config " + cfg + " rollback --snapshot " + snap + " --confirm 2>&1");
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(Tenant(conn, "T4"), before);
}

// With api.url set, `pitr preview|execute` and `rollback` go through the
// running API (`serve`) instead of opening the store: the CLI here is given a
// store path that does not exist, so only the API can have done the work;
// the audit trail names the token's actor; the rows are exact.
TEST_F(PitrE2E, CliGoesThroughTheApiWhenApiUrlIsSet) {
  const int port = FreePort();
  const std::string secret = "cli-through-api-secret";
  std::string text;
  {
    std::ifstream in(h_->config_path());
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  ASSERT_EQ(text.find("[api]"), std::string::npos) << "the harness's config already has an [api] table";
  std::string api = AdminApiToml(port, secret);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  api.insert(api.find("[[api.tokens]]"), "url = \"" + url + "\"\n");
  const std::string cfg = h_->config_path() + "-through-api.toml";
  {
    std::ofstream out(cfg);
    out << text << "\n" << api;
  }
  Process serve;
  ASSERT_TRUE(serve.Start({TV_BINARY, "--config", cfg, "serve"}, cfg + "-serve.log"));
  bool up = false;
  for (int i = 0; i < 300 && !up; ++i) {
    up = RunCommand("curl -sf " + url + "/livez >/dev/null 2>&1").exit_code == 0;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(up) << serve.ReadLog();
  const std::string cli = "TIMEVAULT_TOKEN=" + secret + " TIMEVAULT_STORE_PATH=/nonexistent/tv-store " +
                          std::string(TV_BINARY) + " --config " + cfg + " ";

  auto conn = h_->db().Connect();
  const Dump before = Tenant(conn, "T1");
  const Moment& m = (*moments_)[7];
  auto preview = RunCommand(cli + "pitr preview --tenant T1 --at " + m.time.ToIso() + " 2>&1");
  ASSERT_EQ(preview.exit_code, 0) << preview.output << serve.ReadLog();
  auto doc = ParseJson(preview.output.substr(preview.output.find('{')));
  ASSERT_TRUE(doc->HasMember("plan_id")) << preview.output;
  const std::string plan_id = (*doc)["plan_id"].GetString();
  EXPECT_EQ(Tenant(conn, "T1"), before) << "a preview changed live rows";

  auto dry = RunCommand(cli + "pitr execute --plan " + plan_id + " 2>&1");
  EXPECT_EQ(dry.exit_code, 2) << dry.output;
  EXPECT_NE(dry.output.find("--confirm"), std::string::npos) << dry.output;
  EXPECT_EQ(Tenant(conn, "T1"), before);

  auto run = RunCommand(cli + "pitr execute --plan " + plan_id + " --confirm 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.output << serve.ReadLog();
  EXPECT_NE(run.output.find("\"succeeded\""), std::string::npos) << run.output;
  const Dump after = Tenant(conn, "T1");
  for (const auto& t : kTables) EXPECT_EQ(after.at(t), m.rows.at(t)) << "table " << t;
  const auto at = run.output.find("(snapshot ");
  ASSERT_NE(at, std::string::npos) << run.output;
  const std::string snap = run.output.substr(at + 10, run.output.find(' ', at + 10) - at - 10);

  auto audit = RunCommand("curl -sf -H 'Authorization: Bearer " + secret + "' '" + url + "/v1/audit?actor=admin'");
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("/v1/pitr"), std::string::npos) << audit.output;

  auto rb = RunCommand(cli + "rollback --snapshot " + snap + " --confirm 2>&1");
  ASSERT_EQ(rb.exit_code, 0) << rb.output << serve.ReadLog();
  EXPECT_EQ(Tenant(conn, "T1"), before) << "the rollback through the API did not put the rows back";

  // No token: a usage error naming how to give one; nothing sent.
  auto none = RunCommand("TIMEVAULT_STORE_PATH=/nonexistent/tv-store " + std::string(TV_BINARY) + " --config " + cfg +
                         " pitr preview --tenant T1 --at " + m.time.ToIso() + " 2>&1");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("TIMEVAULT_TOKEN"), std::string::npos) << none.output;
  // An API that is not there: a clear failure, not a store opened instead.
  auto away = RunCommand(cli + "pitr preview --url http://127.0.0.1:1 --tenant T1 --at " + m.time.ToIso() + " 2>&1");
  EXPECT_EQ(away.exit_code, 1) << away.output;
  EXPECT_NE(away.output.find("cannot reach the API at http://127.0.0.1:1"), std::string::npos) << away.output;
  serve.Stop();
}

TEST_F(PitrE2E, BackupsRestoreExactlyAndDamageIsRefused) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto conn = h_->db().Connect();
  auto& catalog = engine->backups();
  // A full backup of T1 and three incrementals chained on it.
  const std::vector<size_t> at = {4, 11, 19, 28};
  std::vector<replay::BackupInfo> chain;
  for (size_t k = 0; k < at.size(); ++k) {
    replay::BackupRequest req;
    req.tenant = "T1";
    req.at = store::Point{(*moments_)[at[k]].lsn, (*moments_)[at[k]].time};
    req.name = "chain-" + std::to_string(k);
    auto made = k == 0 ? catalog.CreateFull(*store_, req) : catalog.CreateIncremental(*store_, chain.back().id, req);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    chain.push_back(*made);
  }
  for (size_t k = 0; k < chain.size(); ++k) {
    SCOPED_TRACE("backup " + chain[k].id);
    ASSERT_TRUE(catalog.Verify(chain[k].id).ok());
    const Dump before = Tenant(conn, "T1");
    const Dump others = Others(conn, "T1");
    auto done = engine->Restore(chain[k].id, TenantId(""), {}, "job-restore-" + std::to_string(k), nullptr);
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    const Dump after = Tenant(conn, "T1");
    for (const auto& t : kTables) EXPECT_EQ(after.at(t), (*moments_)[at[k]].rows.at(t)) << "table " << t;
    EXPECT_EQ(Others(conn, "T1"), others);
    auto snap = engine->GetSnapshot(done->snapshot_id);
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->reason, replay::SnapshotReason::kRestore);
    EXPECT_EQ(snap->source, chain[k].id);
    ASSERT_TRUE(engine->Rollback(done->snapshot_id, "job-restore-rb-" + std::to_string(k), nullptr).ok());
    EXPECT_EQ(Tenant(conn, "T1"), before);
  }
  // One flipped byte in the full backup's data: verify names the file,
  // and a restore through any backup of the chain is refused unchanged.
  auto cfg = LoadConfig(*h_);
  std::string dir = cfg.replay.backup_dir + "/" + chain[0].id;
  std::string victim;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename() != "manifest.json") victim = e.path().string();
  }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(victim) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(victim) / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  Status bad = catalog.Verify(chain[3].id);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find(std::filesystem::path(victim).filename().string()), std::string::npos) << bad.ToString();
  const Dump before = Tenant(conn, "T1");
  auto refused = engine->Restore(chain[3].id, TenantId(""), {}, "job-restore-bad", nullptr);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(Tenant(conn, "T1"), before);
  // The wrong master key: a clear error, not garbage.
  TempDir other;
  RunCommand("umask 077; head -c 32 /dev/urandom > " + other.path() + "/key");
  auto wrong = replay::BackupCatalog::Open(cfg.replay.backup_dir, other.path() + "/key");
  ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
  Status w = (*wrong)->Verify(chain[1].id);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.message().find("key"), std::string::npos) << w.ToString();
}

TEST_F(PitrE2E, AnalystsReadStateAndHistoryThroughTheCli) {
  const Moment& m = (*moments_)[7];
  const std::string base = std::string(TV_BINARY) + " --config " + h_->config_path();
  auto jsonl = RunCommand(base + " state --tenant T1 --at " + m.lsn.ToString() + " --format jsonl 2>/dev/null");
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.output;
  size_t expected_rows = 0;
  for (const auto& [table, text] : m.rows) {
    if (!text.empty()) expected_rows += static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  }
  EXPECT_EQ(static_cast<size_t>(std::count(jsonl.output.begin(), jsonl.output.end(), '\n')), expected_rows);
  auto first = ParseJson(jsonl.output.substr(0, jsonl.output.find('\n')));
  EXPECT_TRUE(first->HasMember("table") && first->HasMember("key") && first->HasMember("row"));
  EXPECT_EQ(jsonl.output.find("__debezium_unavailable_value"), std::string::npos);

  auto csv =
      RunCommand(base + " state --tenant T1 --at " + m.time.ToIso() + " --table public.notes --format csv 2>/dev/null");
  ASSERT_EQ(csv.exit_code, 0) << csv.output;
  const std::string& notes = m.rows.at("notes");
  size_t note_rows = notes.empty() ? 0 : static_cast<size_t>(std::count(notes.begin(), notes.end(), '\n')) + 1;
  EXPECT_EQ(csv.output.substr(0, csv.output.find('\n')), "id,tenant_id,body");
  EXPECT_EQ(static_cast<size_t>(std::count(csv.output.begin(), csv.output.end(), '\n')), note_rows + 1);
  auto two = RunCommand(base + " state --tenant T1 --at " + m.time.ToIso() + " --format csv 2>&1");
  EXPECT_EQ(two.exit_code, 2) << two.output;

  // History between two moments: Debezium envelopes in commit order.
  const Moment& from = (*moments_)[2];
  auto hist = RunCommand(base + " history --tenant T1 --from " + from.lsn.ToString() + " --to " + m.lsn.ToString() +
                         " 2>/dev/null");
  ASSERT_EQ(hist.exit_code, 0) << hist.output;
  size_t lines = 0, with_source = 0;
  for (size_t pos = 0; pos < hist.output.size();) {
    size_t nl = hist.output.find('\n', pos);
    auto e = ParseJson(hist.output.substr(pos, nl - pos));
    ASSERT_TRUE(e->HasMember("op") && e->HasMember("before") && e->HasMember("after"))
        << hist.output.substr(pos, nl - pos);
    if (e->HasMember("source")) ++with_source;
    ++lines;
    pos = nl + 1;
  }
  // Every event has its source, also the 'd' the store writes for a row
  // whose tenancy ends at an event that arrived before the row's version.
  EXPECT_EQ(with_source, lines);
  EXPECT_GT(lines, 0u);
  auto bad = RunCommand(base + " history --tenant T1 --from yesterday 2>&1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
}

TEST_F(PitrE2E, EveryApplyMarksTheChangeStreamWithItsJob) {
  // Capture kept running through the applies above: their transactions carry
  // pg_logical_emit_message('timevault', {...job_id...}), which capture
  // publishes on <prefix>.message as Debezium does (content in base64).
  auto records = h_->Read({h_->prefix() + ".message"}, 0, 5000);
  std::set<std::string> jobs;
  for (const auto& r : records) {
    if (!r.value) continue;
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    if (!p.HasMember("message") || std::string(p["message"]["prefix"].GetString()) != "timevault") continue;
    std::string b64 = p["message"]["content"].GetString();
    std::string raw(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    ASSERT_GT(n, 0);
    raw.resize(static_cast<size_t>(n));
    while (!raw.empty() && raw.back() == '\0') raw.pop_back();  // base64 padding
    auto m = ParseJson(raw);
    EXPECT_EQ(std::string((*m)["snapshot_id"].GetString()), replay::SnapshotIdForJob((*m)["job_id"].GetString()));
    jobs.insert((*m)["job_id"].GetString());
  }
  // The PITRs and rollbacks of the first test, at least.
  EXPECT_TRUE(jobs.count("job-pitr-0")) << records.size() << " records";
  EXPECT_TRUE(jobs.count("job-rollback-0"));
  EXPECT_TRUE(jobs.count("job-pitr-29"));
}

// Last in the file: it removes the snapshots the tests above made.
TEST_F(PitrE2E, SnapshotsExpireAfterTheirRetention) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  auto all = engine->ListSnapshots(std::nullopt);
  ASSERT_TRUE(all.ok());
  ASSERT_GT(all->size(), 60u);
  const std::string base = std::string(TV_BINARY) + " --config " + h_->config_path();
  auto dry = RunCommand(base + " snapshots expire 2>&1");
  EXPECT_EQ(dry.exit_code, 2) << dry.output;
  auto none = engine->ExpireSnapshots(SystemClock().Now());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "fresh snapshots are inside the 30-day retention";
  auto later = engine->ExpireSnapshots(CommitTime(SystemClock().Now().micros() + 31LL * 86400 * 1000000));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->size(), all->size());
  EXPECT_TRUE(engine->ListSnapshots(std::nullopt)->empty());
  EXPECT_EQ(engine->Rollback((*all)[0].id, "job-after-expiry", nullptr).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace timevault::testing
