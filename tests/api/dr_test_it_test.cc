// DR tests end to end: real Postgres, real Kafka, `timevault capture` and
// `timevault store`; a full backup taken with BackupCatalog, then RunDrTest
// at each level in process. The scratch schema never outlives a test; a
// flipped byte fails basic naming the file; an old backup misses a tiny RPO.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/capture_harness.h"
#include "timevault/api/plans.h"
#include "timevault/config/config.h"
#include "timevault/core/lsn.h"
#include "timevault/replay/engine.h"
#include "timevault/replay/scratch_restore.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const rapidjson::Value* FindCheck(const rapidjson::Document& d, const std::string& name) {
  for (const auto& c : d["checks"].GetArray()) {
    if (name == c["name"].GetString()) return &c;
  }
  return nullptr;
}

std::string CheckDetail(const rapidjson::Document& d, const std::string& name) {
  const auto* c = FindCheck(d, name);
  return c ? (*c)["detail"].GetString() : "<no check " + name + ">";
}

bool CheckPassed(const rapidjson::Document& d, const std::string& name) {
  const auto* c = FindCheck(d, name);
  return c && (*c)["passed"].GetBool();
}

class DrTestE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = std::make_unique<CaptureHarness>();
    h_->Exec(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance numeric(12,2) NOT NULL, "
        "note text, tags text[], meta jsonb, seen timestamptz)");
    h_->Exec("CREATE TABLE orders (tenant_id text NOT NULL, id int, total bigint, PRIMARY KEY (tenant_id, id))");
    h_->Exec(
        "INSERT INTO accounts SELECT g, 't' || (1 + g % 3), g / 7.0, CASE WHEN g % 5 = 0 THEN NULL ELSE "
        "E'n\\t' || md5(g::text) END, ARRAY['a', g::text], jsonb_build_object('g', g), now() - g * interval '1 min' "
        "FROM generate_series(1, 900) g");
    h_->Exec("INSERT INTO orders SELECT 't' || (1 + g % 3), g, g * 10 FROM generate_series(1, 300) g");
    ASSERT_NO_FATAL_FAILURE(h_->StartCapture());
    h_->StartStore();
    h_->Exec("UPDATE accounts SET balance = balance + 1, note = 'upd' WHERE id % 4 = 0");
    h_->Exec("DELETE FROM orders WHERE id % 9 = 0");
    store_ = h_->StopStoreAt(ParseLsnText(h_->Query("SELECT pg_current_wal_insert_lsn()")));
    ASSERT_NE(store_, nullptr);
    auto cfg = config::Load(h_->config_path(), config::Environment{});
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto e = replay::Engine::Open(*cfg, store_.get());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
  }

  std::string Backup(const std::string& tenant) {
    replay::BackupRequest req;
    req.tenant = tenant;
    auto b = engine_->backups().CreateFull(*store_, req);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? b->id : "";
  }

  std::unique_ptr<rapidjson::Document> Run(const api::DrPlan& plan, api::DrTestLevel level, const std::string& job) {
    auto report = api::RunDrTest(*engine_, plan, level, job, nullptr);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    auto d = ParseJson(report.ok() ? *report : "{}");
    EXPECT_TRUE(d && d->IsObject() && d->HasMember("checks")) << (report.ok() ? *report : "");
    EXPECT_EQ(h_->Query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tv_drtest_%'"), "0")
        << "the scratch schema outlived the test";
    return d;
  }

  static api::DrPlan Plan(const std::string& tenant, int64_t rpo_minutes) {
    api::DrPlan p;
    p.id = "p-1";
    p.tenant = tenant;
    p.rto_minutes = 30;
    p.rpo_minutes = rpo_minutes;
    return p;
  }

  std::unique_ptr<CaptureHarness> h_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<replay::Engine> engine_;
};

TEST_F(DrTestE2E, EveryLevelPassesOnAGoodBackupForATenantAndForEveryTenant) {
  const std::string id = Backup("t1");
  ASSERT_FALSE(id.empty());
  const auto plan = Plan("t1", 60);
  for (auto level : {api::DrTestLevel::kBasic, api::DrTestLevel::kFull, api::DrTestLevel::kDeep}) {
    SCOPED_TRACE(std::string(api::DrTestLevelName(level)));
    auto d = Run(plan, level, "JOB-" + std::string(api::DrTestLevelName(level)) + "-1");
    ASSERT_TRUE(d && d->HasMember("passed"));
    EXPECT_TRUE((*d)["passed"].GetBool());
    EXPECT_EQ(std::string((*d)["backup_id"].GetString()), id);
    EXPECT_TRUE((*d)["rpo_met"].GetBool());
    EXPECT_GE((*d)["data_age_seconds"].GetDouble(), 0.0);
    EXPECT_LT((*d)["data_age_seconds"].GetDouble(), 600.0);
    EXPECT_EQ((*d)["rto_seconds"].GetDouble(), 1800.0);
    EXPECT_TRUE(CheckPassed(*d, "verify"));
    EXPECT_TRUE(CheckPassed(*d, "row_counts")) << CheckDetail(*d, "row_counts");
    EXPECT_THAT(CheckDetail(*d, "row_counts"), HasSubstr("public.accounts 300"));
    if (level == api::DrTestLevel::kBasic) {
      EXPECT_FALSE(d->HasMember("restore_seconds"));
      EXPECT_TRUE((*d)["rto_met"].IsNull());
      continue;
    }
    EXPECT_GT((*d)["restore_seconds"].GetDouble(), 0.0);
    EXPECT_TRUE((*d)["rto_met"].GetBool());
    EXPECT_TRUE(CheckPassed(*d, "checksums")) << CheckDetail(*d, "checksums");
    EXPECT_THAT(CheckDetail(*d, "checksums"), HasSubstr("2 table(s)"));
    if (level == api::DrTestLevel::kDeep) {
      EXPECT_TRUE(CheckPassed(*d, "rows")) << CheckDetail(*d, "rows");
    }
  }

  // A "*" plan has no "*" backup yet: a failed check, not an error.
  auto none = Run(Plan("*", 60), api::DrTestLevel::kBasic, "job-none");
  EXPECT_FALSE((*none)["passed"].GetBool());
  EXPECT_FALSE(CheckPassed(*none, "backup"));
  EXPECT_THAT(CheckDetail(*none, "backup"), HasSubstr("no backup"));
  // ... and with one, every tenant is restored and compared.
  ASSERT_FALSE(Backup("*").empty());
  auto all = Run(Plan("*", 60), api::DrTestLevel::kDeep, "job-all");
  EXPECT_TRUE((*all)["passed"].GetBool()) << CheckDetail(*all, "checksums") << CheckDetail(*all, "rows");
  EXPECT_THAT(CheckDetail(*all, "row_counts"), HasSubstr("public.accounts 900"));
}

TEST_F(DrTestE2E, AFlippedByteFailsBasicAndAnOldBackupMissesATinyRpo) {
  const std::string id = Backup("t2");
  ASSERT_FALSE(id.empty());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // rpo_minutes 0: any backup is too old.
  auto old = Run(Plan("t2", 0), api::DrTestLevel::kBasic, "job-rpo");
  EXPECT_FALSE((*old)["passed"].GetBool());
  EXPECT_FALSE((*old)["rpo_met"].GetBool());
  EXPECT_GE((*old)["data_age_seconds"].GetDouble(), 2.0);
  EXPECT_TRUE(CheckPassed(*old, "verify"));
  EXPECT_FALSE(CheckPassed(*old, "rpo"));
  bool recommended = false;
  for (const auto& r : (*old)["recommendations"].GetArray()) {
    recommended |= std::string(r.GetString()).find("no backup within RPO") != std::string::npos;
  }
  EXPECT_TRUE(recommended);

  const std::string dir =
      engine_->config().replay.backup_dir.empty() ? h_->store_path() + "-backups" : engine_->config().replay.backup_dir;
  std::string data_file;
  for (const auto& e : fs::directory_iterator(dir + "/" + id)) {
    if (e.path().filename() != "manifest.json") data_file = e.path().filename().string();
  }
  ASSERT_FALSE(data_file.empty());
  {
    std::fstream f(dir + "/" + id + "/" + data_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char c = 0;
    f.get(c);
    f.seekp(100);
    f.put(static_cast<char>(c ^ 0x10));
  }
  auto bad = Run(Plan("t2", 60), api::DrTestLevel::kBasic, "job-bad");
  EXPECT_FALSE((*bad)["passed"].GetBool());
  EXPECT_FALSE(CheckPassed(*bad, "verify"));
  EXPECT_THAT(CheckDetail(*bad, "verify"), HasSubstr(data_file));
  EXPECT_THAT(CheckDetail(*bad, "verify"), HasSubstr(id));
  auto full = Run(Plan("t2", 60), api::DrTestLevel::kFull, "job-bad-full");
  EXPECT_FALSE((*full)["passed"].GetBool());
  EXPECT_FALSE(full->HasMember("restore_seconds") && (*full)["restore_seconds"].IsNumber());
}

// Columns whose Debezium value is lossy or absent restore from their
// fidelity texts in the scratch restore, as replay restores them: the store's
// reconstruction equals the live rows as text; a row image with neither a
// text nor an exact value for such a column fails the load, naming it.
class DrTestFidelity : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = std::make_unique<CaptureHarness>();
    h_->Exec("CREATE EXTENSION IF NOT EXISTS citext");
    h_->Exec(
        "CREATE TABLE shapes (id int PRIMARY KEY, tenant_id text NOT NULL, pt point, span interval, tz timetz, "
        "n numeric, bits varbit, ci citext, grid int[], name_c name, total int GENERATED ALWAYS AS (id * 2) STORED)");
    h_->Exec(
        "INSERT INTO shapes (id, tenant_id, pt, span, tz, n, bits, ci, grid, name_c) SELECT g, 't' || (1 + g % 2), "
        "point(g, -g / 3.0), make_interval(months => g, hours => 25), '13:45:00+05:30', 1.500 + g, B'0011', "
        "'MiXeD ' || g, '{{1,2},{3,4}}', 'n' || g FROM generate_series(1, 40) g");
    ASSERT_NO_FATAL_FAILURE(h_->StartCapture());
    h_->StartStore();
    h_->Exec(
        "UPDATE shapes SET pt = '(0.1,1e-300)', span = '1 year -3 days', bits = B'0001000', ci = 'ÀbC' "
        "WHERE id % 3 = 0");
    h_->Exec("UPDATE shapes SET n = 'NaN', grid = '[0:1]={5,6}', pt = NULL WHERE id % 5 = 0");
    store_ = h_->StopStoreAt(ParseLsnText(h_->Query("SELECT pg_current_wal_insert_lsn()")));
    ASSERT_NE(store_, nullptr);
    auto cfg = config::Load(h_->config_path(), config::Environment{});
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    cfg_ = *cfg;
    auto e = replay::Engine::Open(*cfg, store_.get());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
  }

  std::unique_ptr<CaptureHarness> h_;
  config::Config cfg_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<replay::Engine> engine_;
};

TEST_F(DrTestFidelity, ScratchRestoreUsesTheTextsAndRefusesAColumnNothingCarries) {
  replay::BackupRequest req;
  req.tenant = "t1";
  auto b = engine_->backups().CreateFull(*store_, req);
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  api::DrPlan plan;
  plan.id = "p-1";
  plan.tenant = "t1";
  plan.rto_minutes = 30;
  plan.rpo_minutes = 60;
  auto report = api::RunDrTest(*engine_, plan, api::DrTestLevel::kDeep, "job-fidelity", nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  auto d = ParseJson(*report);
  ASSERT_TRUE(d && d->HasMember("passed")) << *report;
  EXPECT_TRUE((*d)["passed"].GetBool()) << *report;
  EXPECT_TRUE(CheckPassed(*d, "checksums")) << CheckDetail(*d, "checksums");
  EXPECT_TRUE(CheckPassed(*d, "rows")) << CheckDetail(*d, "rows");

  // The store's side of the scratch restore equals the live rows as text,
  // every non-generated column included (the JSON alone would give
  // "30 days 10:30:00" for "1 mon", "08:15:00Z" for the timetz, no point).
  auto scratch = replay::ScratchRestore::Begin(cfg_.postgres.conninfo, cfg_.tenant_column, cfg_.postgres.publication,
                                               "job-direct", {"public.shapes"});
  ASSERT_TRUE(scratch.ok()) << scratch.status().ToString();
  Status inner;
  Status st = engine_->store().StateAt(TenantId("t1"), b->point.lsn, {"public.shapes"}, [&](const store::Row& row) {
    inner = (*scratch)->Add(replay::ScratchSide::kStore, row);
    return inner.ok();
  });
  ASSERT_TRUE(inner.ok()) << inner.ToString();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE((*scratch)->Flush().ok());
  auto digest = (*scratch)->Digest(replay::ScratchSide::kStore, "public.shapes");
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(digest->rows, 20u);
  const std::string live = h_->Query(
      "SELECT count(*) || ' ' || md5(string_agg(x::text, E'\\n' ORDER BY x.id)) FROM (SELECT id, tenant_id, pt, span, "
      "tz, n, bits, ci, grid, name_c FROM shapes WHERE tenant_id = 't1') x");
  EXPECT_EQ(std::to_string(digest->rows) + " " + digest->md5, live);

  EXPECT_TRUE((*scratch)->Drop().ok());

  // A row image that holds only Debezium's lossy value of the interval (the
  // point has its text): refused, naming the column. A failed load ends the
  // scratch transaction, so each case gets a scratch of its own.
  auto again = [&](const std::string& job) {
    auto s = replay::ScratchRestore::Begin(cfg_.postgres.conninfo, cfg_.tenant_column, cfg_.postgres.publication, job,
                                           {"public.shapes"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  };
  store::Row lossy{"public.shapes", R"({"id":999})",
                   R"j({"id":999,"tenant_id":"t1","span":2629800000000,"":{"pt":"(1,2)"}})j"};
  Status refused = again("job-lossy")->Add(replay::ScratchSide::kBackup, lossy);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_THAT(refused.message(), HasSubstr("public.shapes.span (interval)"));
  // ... and one with neither a value nor a text for the point (Debezium leaves it out).
  store::Row absent{"public.shapes", R"({"id":998})", R"({"id":998,"tenant_id":"t1"})"};
  Status refused2 = again("job-absent")->Add(replay::ScratchSide::kBackup, absent);
  EXPECT_EQ(refused2.code(), StatusCode::kFailedPrecondition) << refused2.ToString();
  EXPECT_THAT(refused2.message(), HasSubstr("public.shapes.pt (point)"));
  EXPECT_EQ(h_->Query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tv_drtest_%'"), "0");
}

}  // namespace
}  // namespace timevault::testing
