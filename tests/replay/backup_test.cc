// BackupCatalog over an in-memory StateReader and over a real Store built
// through Store::Apply: a full backup and incrementals chained on it load
// exactly the state StateAt gives at each point; verify walks the chain;
// delete and expire never break a chain that is kept.
#include "timevault/replay/backup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "store/store_test_util.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;
using store::Point;
using store::Row;
using ::testing::HasSubstr;

std::string RowText(const Row& r) { return r.table + " " + r.pk + " " + r.json; }

std::vector<std::string> StoreRows(store::StateReader& s, const std::string& tenant, Lsn at,
                                   const std::vector<std::string>& tables = {}) {
  std::vector<std::string> out;
  Status st = s.StateAt(TenantId(tenant), at, tables, [&](const Row& r) {
    out.push_back(RowText(r));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::vector<std::string> BackupRows(BackupCatalog& c, const std::string& id, const std::string& tenant,
                                    const std::vector<std::string>& tables = {}) {
  std::vector<std::string> out;
  Status st = c.LoadState(id, TenantId(tenant), tables, [&](const Row& r) {
    out.push_back(RowText(r));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::unique_ptr<BackupCatalog> OpenCatalog(const std::string& dir, const std::string& key_file) {
  auto c = BackupCatalog::Open(dir, key_file);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

BackupRequest Req(const std::string& tenant, Point p, std::vector<std::string> tables = {}) {
  BackupRequest r;
  r.tenant = tenant;
  r.at = p;
  r.tables = std::move(tables);
  r.name = "test";
  return r;
}

// ---------------------------------------------------------------------------
// In-memory store: a random workload over three tables and two tenants.

class MemoryBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = dir_.path() + "/master.key";
    store::test::WriteKeyFile(key_, 3);
    catalog_ = OpenCatalog(dir_.path() + "/backups", key_);
    ASSERT_NE(catalog_, nullptr);
    std::mt19937 rng(11);
    // Table names whose store order (length first) differs from plain string order.
    const std::vector<std::string> tables = {"public.b", "public.aa", "x.c"};
    for (uint64_t commit = 1; commit <= 200; ++commit) {
      const Point p{Lsn(1000 + commit * 10), CommitTime(1'700'000'000'000'000 + commit * 1000)};
      points_.push_back(p);
      const std::string tenant = rng() % 3 == 0 ? "zeta" : "acme";
      const std::string& table = tables[rng() % tables.size()];
      const int id = static_cast<int>(rng() % 40);
      const bool del = rng() % 4 == 0;
      const std::string json =
          del ? "" : "{\"id\":" + std::to_string(id) + ",\"v\":" + std::to_string(commit) + ",\"s\":\"é\\n\"}";
      mem_.Put(TenantId(tenant), p, table, "{\"id\":" + std::to_string(id) + "}", json);
    }
  }

  Point P(size_t commit) const { return points_[commit - 1]; }

  testing::TempDir dir_;
  std::string key_;
  store::MemoryStateReader mem_;
  std::vector<Point> points_;
  std::unique_ptr<BackupCatalog> catalog_;
};

TEST_F(MemoryBackupTest, FullAndThreeIncrementalsLoadTheStateAtEachPoint) {
  for (const std::string tenant : {"acme", "*"}) {
    auto full = catalog_->CreateFull(mem_, Req(tenant, P(50)));
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    EXPECT_EQ(full->type, BackupType::kFull);
    EXPECT_EQ(full->point.lsn, P(50).lsn);
    std::vector<std::string> ids{full->id};
    for (size_t commit : {100, 150, 200}) {
      auto inc = catalog_->CreateIncremental(mem_, ids.back(), Req("", P(commit)));
      ASSERT_TRUE(inc.ok()) << inc.status().ToString();
      EXPECT_EQ(inc->base_id, ids.back());
      EXPECT_EQ(inc->tenant, tenant);
      ids.push_back(inc->id);
    }
    const std::vector<size_t> commits{50, 100, 150, 200};
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(catalog_->Verify(ids[i]).ok());
      for (const std::string t : {"acme", "zeta"}) {
        if (tenant != "*" && t != tenant) continue;
        auto want = StoreRows(mem_, t, P(commits[i]).lsn);
        EXPECT_FALSE(want.empty());
        EXPECT_EQ(BackupRows(*catalog_, ids[i], t), want) << ids[i] << " tenant " << t;
        EXPECT_EQ(BackupRows(*catalog_, ids[i], t, {"public.aa", "x.c"}),
                  StoreRows(mem_, t, P(commits[i]).lsn, {"public.aa", "x.c"}));
      }
    }
    // Stopping early is honoured.
    int n = 0;
    ASSERT_TRUE(catalog_->LoadState(ids.back(), TenantId("acme"), {}, [&](const Row&) { return ++n < 3; }).ok());
    EXPECT_EQ(n, 3);
  }
  // A single-tenant backup does not serve another tenant.
  auto list = catalog_->List(std::nullopt);
  ASSERT_TRUE(list.ok());
  const BackupInfo& acme = list->back();  // the oldest: acme's full
  EXPECT_EQ(acme.tenant, "acme");
  Status other = catalog_->LoadState(acme.id, TenantId("zeta"), {}, [](const Row&) { return true; });
  EXPECT_EQ(other.code(), StatusCode::kInvalidArgument);
}

// POST /v1/jobs/{id}/cancel on a running backup (request.cancelled): asked
// while rows are written and last before the archive is sealed; once true
// the backup stops with Aborted and nothing of it is left in the catalog.
TEST_F(MemoryBackupTest, ACancelledBackupStopsWhileWritingAndKeepsNothing) {
  const Point big{Lsn(1000 + 201 * 10), CommitTime(1'700'000'000'000'000 + 201 * 1000)};
  for (int id = 0; id < 10000; ++id) {
    mem_.Put(TenantId("big"), big, "public.b", "{\"id\":" + std::to_string(id) + "}",
             "{\"id\":" + std::to_string(id) + "}");
  }
  mem_.SetRecoverable(big);
  auto base = catalog_->CreateFull(mem_, Req("acme", P(50)));
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  auto entries = [&] {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.path() + "/backups")) names.insert(e.path().filename().string());
    return names;
  };
  const std::set<std::string> before = entries();

  // Not cancelled: asked at rows 4096 and 8192 and before sealing.
  int asked = 0;
  BackupRequest req = Req("big", big);
  req.cancelled = [&] { return ++asked < 0; };
  auto whole = catalog_->CreateFull(mem_, req);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(whole->rows.at("public.b"), 10000u);
  ASSERT_TRUE(catalog_->Delete(whole->id).ok());
  ASSERT_EQ(entries(), before);

  // Cancelled at row 8192: stops there, the half-written archive is gone.
  asked = 0;
  req.cancelled = [&] { return ++asked == 2; };
  auto stopped = catalog_->CreateFull(mem_, req);
  EXPECT_EQ(stopped.status().code(), StatusCode::kAborted) << stopped.status().ToString();
  EXPECT_THAT(stopped.status().message(), HasSubstr("nothing was kept"));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(entries(), before);

  // Cancelled after the last row, before the seal (a backup smaller than a
  // check interval), and an incremental: nothing kept either.
  req = Req("acme", P(100));
  req.cancelled = [] { return true; };
  EXPECT_EQ(catalog_->CreateFull(mem_, req).status().code(), StatusCode::kAborted);
  req.tenant = "";
  EXPECT_EQ(catalog_->CreateIncremental(mem_, base->id, req).status().code(), StatusCode::kAborted);
  EXPECT_EQ(entries(), before);
  auto list = catalog_->List(std::nullopt);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().id, base->id);
}

TEST_F(MemoryBackupTest, RequestsOutsideTheHistoryAreRefused) {
  mem_.SetRecoverable(P(150));
  auto past = catalog_->CreateFull(mem_, Req("acme", P(160)));
  EXPECT_EQ(past.status().code(), StatusCode::kOutOfRange) << past.status().ToString();
  auto full = catalog_->CreateFull(mem_, Req("acme", P(100)));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(catalog_->CreateIncremental(mem_, full->id, Req("", P(100))).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->CreateIncremental(mem_, full->id, Req("", P(90))).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->CreateIncremental(mem_, full->id, Req("zeta", P(120))).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->CreateIncremental(mem_, "b-20260101T000000Z-00000000", Req("", P(120))).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(catalog_->Get("../etc").status().code(), StatusCode::kInvalidArgument);
  BackupRequest no_tenant;
  EXPECT_EQ(catalog_->CreateFull(mem_, no_tenant).status().code(), StatusCode::kInvalidArgument);
  // Default point: the recoverable one.
  BackupRequest latest;
  latest.tenant = "acme";
  auto inc = catalog_->CreateIncremental(mem_, full->id, latest);
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(inc->point.lsn, P(150).lsn);
  EXPECT_EQ(inc->point.time, P(150).time);
}

TEST_F(MemoryBackupTest, ListGetAndCatalogReopen) {
  auto full = catalog_->CreateFull(mem_, Req("acme", P(50)));
  ASSERT_TRUE(full.ok());
  BackupRequest r = Req("zeta", P(60));
  r.name = "nightly";
  r.description = "a \"quoted\" description";
  auto z = catalog_->CreateFull(mem_, r);
  ASSERT_TRUE(z.ok());
  auto inc = catalog_->CreateIncremental(mem_, full->id, Req("", P(70)));
  ASSERT_TRUE(inc.ok());

  auto reopened = OpenCatalog(dir_.path() + "/backups", key_);
  auto all = reopened->List(std::nullopt);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, inc->id);  // newest first
  EXPECT_EQ((*all)[2].id, full->id);
  auto acme = reopened->List(std::string("acme"));
  ASSERT_TRUE(acme.ok());
  EXPECT_EQ(acme->size(), 2u);
  auto got = reopened->Get(z->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "nightly");
  EXPECT_EQ(got->description, "a \"quoted\" description");
  EXPECT_EQ(got->point.lsn, P(60).lsn);
  EXPECT_EQ(got->point.time, P(60).time);
  EXPECT_EQ(got->rows, z->rows);
  EXPECT_GT(got->bytes, 0u);
  uint64_t total = 0;
  for (const auto& [t, n] : got->rows) total += n;
  EXPECT_EQ(total, StoreRows(mem_, "zeta", P(60).lsn).size());
  auto ginc = reopened->Get(inc->id);
  ASSERT_TRUE(ginc.ok());
  EXPECT_EQ(ginc->type, BackupType::kIncremental);
  EXPECT_EQ(ginc->base_point->lsn, P(50).lsn);
}

TEST_F(MemoryBackupTest, VerifyNamesTheDamagedBackupOfTheChain) {
  auto full = catalog_->CreateFull(mem_, Req("acme", P(50)));
  ASSERT_TRUE(full.ok());
  auto inc = catalog_->CreateIncremental(mem_, full->id, Req("", P(100)));
  ASSERT_TRUE(inc.ok());
  const std::string dir = dir_.path() + "/backups/" + full->id;
  std::string file;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename() != "manifest.json") file = e.path().filename().string();
  }
  ASSERT_FALSE(file.empty());
  {
    // Flip the byte (writing a constant left it unchanged when it already
    // held that value: a 1-in-256 false failure).
    std::fstream f(dir + "/" + file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(20);
    const int c = f.get();
    ASSERT_NE(c, EOF);
    f.seekp(20);
    f.put(static_cast<char>(c ^ 0xFF));
  }
  Status v = catalog_->Verify(inc->id);
  EXPECT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_THAT(v.message(), HasSubstr("backup " + full->id));
  EXPECT_THAT(v.message(), HasSubstr("file " + file));
  Status load = catalog_->LoadState(inc->id, TenantId("acme"), {}, [](const Row&) { return true; });
  EXPECT_EQ(load.code(), StatusCode::kCorruption);
  // A missing base is named too.
  fs::remove_all(dir);
  v = catalog_->Verify(inc->id);
  EXPECT_EQ(v.code(), StatusCode::kNotFound);
  EXPECT_THAT(v.message(), HasSubstr(full->id));
}

// An all-tenant full backup read by several workers: the same archive
// content as one reader (every tenant's state, in order), a tenant index in
// the manifest so one tenant's load opens only its blocks, and damage
// anywhere still refused by a load of any tenant.
TEST(BackupWorkersTest, AllTenantBackupWithWorkersLoadsEveryTenantFromItsBlocks) {
  testing::TempDir dir;
  const std::string key = dir.path() + "/master.key";
  store::test::WriteKeyFile(key, 5);
  store::MemoryStateReader mem;
  std::mt19937 rng(3);
  const Point p{Lsn(5000), CommitTime(1'700'000'000'000'000)};
  std::vector<std::string> tenants;
  for (int t = 0; t < 24; ++t) tenants.push_back("tenant" + std::to_string(t));
  for (int t = 0; t < 24; ++t) {
    const int rows = t % 5 == 0 ? 3 : 1500;  // some tenants smaller than a block, most spanning blocks
    for (int id = 0; id < rows; ++id) {
      std::string filler(200 + rng() % 200, '\0');
      for (auto& c : filler)
        c = static_cast<char>('a' + rng() % 26);  // ~4.7 bits per byte: ~1 MiB blocks hold ~4k rows
      for (const std::string table : {"public.orders", "public.items"}) {
        mem.Put(TenantId(tenants[t]), p, table, "{\"id\":" + std::to_string(id) + "}",
                "{\"id\":" + std::to_string(id) + ",\"f\":\"" + filler + "\"}");
      }
    }
  }
  auto one = BackupCatalog::Open(dir.path() + "/one", key, 1);
  auto four = BackupCatalog::Open(dir.path() + "/four", key, 4);
  ASSERT_TRUE(one.ok() && four.ok());
  auto b1 = (*one)->CreateFull(mem, Req("*", p));
  auto b4 = (*four)->CreateFull(mem, Req("*", p));
  ASSERT_TRUE(b1.ok()) << b1.status().ToString();
  ASSERT_TRUE(b4.ok()) << b4.status().ToString();
  EXPECT_EQ(b1->rows, b4->rows);
  EXPECT_EQ(b4->rows.at("public.orders"), 5u * 3 + 19u * 1500);
  ASSERT_TRUE((*four)->Verify(b4->id).ok());
  for (const auto& t : tenants) {
    auto want = StoreRows(mem, t, p.lsn);
    EXPECT_EQ(BackupRows(**four, b4->id, t), want) << t;
    EXPECT_EQ(BackupRows(**one, b1->id, t), want) << t;
  }
  // The tenant index: each tenant spans a few of its table file's blocks.
  const std::string dir4 = dir.path() + "/four/" + b4->id;
  std::ifstream in(dir4 + "/manifest.json");
  const std::string manifest((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(manifest, HasSubstr("\"tenant_blocks\""));
  EXPECT_THAT(manifest, HasSubstr("\"tenant23\""));
  // A byte flipped at the end of a data file (the last tenant's block):
  // loading the first tenant does not open that block but still refuses the
  // damaged file.
  std::string file;
  for (const auto& e : fs::directory_iterator(dir4)) {
    if (e.path().filename() != "manifest.json") file = e.path().filename().string();
  }
  {
    std::fstream f(dir4 + "/" + file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-3, std::ios::end);
    const int c = f.get();
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(c ^ 0xFF));
  }
  Status load = (*four)->LoadState(b4->id, TenantId("tenant0"), {}, [](const Row&) { return true; });
  EXPECT_EQ(load.code(), StatusCode::kCorruption) << load.ToString();
  EXPECT_THAT(load.message(), HasSubstr("file " + file));
  // Cancelled midway with four readers: Aborted, readers joined, nothing kept.
  BackupRequest cancel = Req("*", p);
  int asked = 0;
  cancel.cancelled = [&asked] { return ++asked > 3; };
  auto stopped = (*four)->CreateFull(mem, cancel);
  EXPECT_EQ(stopped.status().code(), StatusCode::kAborted) << stopped.status().ToString();
  auto listed = (*four)->List(std::nullopt);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  for (const auto& e : fs::directory_iterator(dir.path() + "/four")) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

TEST_F(MemoryBackupTest, DeleteRefusesANeededBase) {
  auto full = catalog_->CreateFull(mem_, Req("acme", P(50)));
  ASSERT_TRUE(full.ok());
  auto i1 = catalog_->CreateIncremental(mem_, full->id, Req("", P(100)));
  ASSERT_TRUE(i1.ok());
  auto i2 = catalog_->CreateIncremental(mem_, i1->id, Req("", P(150)));
  ASSERT_TRUE(i2.ok());
  Status st = catalog_->Delete(full->id);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr(i1->id));
  EXPECT_EQ(catalog_->Delete(i1->id).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(catalog_->Delete(i2->id).ok());
  EXPECT_EQ(catalog_->Get(i2->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(catalog_->Delete(i2->id).code(), StatusCode::kNotFound);
  ASSERT_TRUE(catalog_->Delete(i1->id).ok());
  ASSERT_TRUE(catalog_->Delete(full->id).ok());
  EXPECT_TRUE(catalog_->List(std::nullopt)->empty());
  std::set<std::string> left;  // nothing but the key ring (docs/replay.md "Archive keys")
  for (const auto& e : fs::directory_iterator(dir_.path() + "/backups")) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"keyring.json", "keyring.lock"}));
}

TEST_F(MemoryBackupTest, ExpireKeepsEveryChainItKeeps) {
  // Created in this order: F1, I1(F1), F2, I2(I1), Z (another tenant).
  auto f1 = catalog_->CreateFull(mem_, Req("acme", P(50)));
  auto i1 = catalog_->CreateIncremental(mem_, f1->id, Req("", P(60)));
  auto f2 = catalog_->CreateFull(mem_, Req("acme", P(70)));
  auto i2 = catalog_->CreateIncremental(mem_, i1->id, Req("", P(80)));
  auto z = catalog_->CreateFull(mem_, Req("zeta", P(80)));
  ASSERT_TRUE(f1.ok() && i1.ok() && f2.ok() && i2.ok() && z.ok());
  const CommitTime now = SystemClock().Now();

  // Keep 1 per tenant: acme keeps I2, hence I1 and F1; F2 goes; zeta keeps Z.
  auto plan = catalog_->PlanExpire(1, 0, now, std::nullopt);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(*plan, std::vector<std::string>{f2->id});
  EXPECT_EQ(catalog_->List(std::nullopt)->size(), 5u);  // a plan changes nothing
  auto removed = catalog_->Expire(1, 0, now, std::nullopt);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, std::vector<std::string>{f2->id});
  for (const auto& id : {f1->id, i1->id, i2->id, z->id}) EXPECT_TRUE(catalog_->Verify(id).ok()) << id;

  // By age: with "now" two days ahead, everything of acme is too old.
  const CommitTime later(now.micros() + 2 * 86'400'000'000LL);
  removed = catalog_->Expire(0, 1, later, std::string("acme"));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, (std::vector<std::string>{i2->id, i1->id, f1->id}));  // newest first
  auto left = catalog_->List(std::nullopt);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, z->id);
  // No limits: nothing expires.
  EXPECT_TRUE(catalog_->Expire(0, 0, later, std::nullopt)->empty());
  EXPECT_EQ(catalog_->Expire(0, -1, later, std::nullopt).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(MemoryBackupTest, WrongMasterKeyIsAClearError) {
  auto full = catalog_->CreateFull(mem_, Req("acme", P(50)));
  ASSERT_TRUE(full.ok());
  const std::string other = dir_.path() + "/other.key";
  store::test::WriteKeyFile(other, 9);
  auto c = OpenCatalog(dir_.path() + "/backups", other);
  Status v = c->Verify(full->id);
  EXPECT_EQ(v.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(v.message(), HasSubstr("master key"));
  EXPECT_EQ(BackupCatalog::Open(dir_.path() + "/b2", dir_.path() + "/nokey").status().code(), StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// The real RocksDB store: updates, deletes, a truncate inside a transaction
// (after an insert of the same transaction and before another), a tenant move.

class StoreBackupTest : public store::test::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    catalog_ = OpenCatalog(dir_.path() + "/backups", key_file_);
    ASSERT_NE(catalog_, nullptr);
  }

  store::IngestItem Truncate(uint64_t lsn, int64_t xid) {
    store::StoreEvent t;
    t.kind = store::EventKind::kChange;
    t.op = 't';
    t.table = store::test::kTable;
    t.envelope = "{\"op\":\"t\"}";
    t.change_lsn = Lsn(lsn);
    t.xid = xid;
    t.commit_time = CommitTime(store::test::kT0);
    return At("tv.public.items", 0, t);
  }

  static Point Pt(uint64_t lsn, int64_t offset_us) { return Point{Lsn(lsn), CommitTime(store::test::kT0 + offset_us)}; }

  std::unique_ptr<BackupCatalog> catalog_;
};

TEST_F(StoreBackupTest, FullAndIncrementalsEqualStateAtEachPoint) {
  using store::test::kT0;
  Bootstrap();
  Apply({Change('c', "a", 1, "one", 100, 7, kT0 + 1), Change('c', "a", 2, "two", 101, 7, kT0 + 1),
         Change('c', "b", 3, "three", 102, 7, kT0 + 1), End(7, 110, 3, kT0 + 1000)});
  std::vector<std::string> a_chain, all_chain;
  auto full_a = catalog_->CreateFull(*store_, Req("a", Pt(110, 1000)));
  auto full_all = catalog_->CreateFull(*store_, Req("*", Pt(110, 1000)));
  ASSERT_TRUE(full_a.ok()) << full_a.status().ToString();
  ASSERT_TRUE(full_all.ok()) << full_all.status().ToString();
  a_chain.push_back(full_a->id);
  all_chain.push_back(full_all->id);
  std::vector<uint64_t> points{110};

  auto step = [&](uint64_t lsn, int64_t offset) {
    auto ia = catalog_->CreateIncremental(*store_, a_chain.back(), Req("", Pt(lsn, offset)));
    auto iall = catalog_->CreateIncremental(*store_, all_chain.back(), Req("", Pt(lsn, offset)));
    ASSERT_TRUE(ia.ok()) << ia.status().ToString();
    ASSERT_TRUE(iall.ok()) << iall.status().ToString();
    a_chain.push_back(ia->id);
    all_chain.push_back(iall->id);
    points.push_back(lsn);
  };
  // Update, delete, insert.
  Apply({Change('u', "a", 1, "one-v2", 120, 8, kT0 + 2000), Change('d', "a", 2, "two", 121, 8, kT0 + 2000),
         Change('c', "a", 4, "four", 122, 8, kT0 + 2000), End(8, 130, 3, kT0 + 2000)});
  step(130, 2000);
  // One transaction: insert 9, TRUNCATE, insert 5; then another: insert 6,
  // update 5, move 5 to tenant b.
  Apply({Change('c', "a", 9, "gone", 139, 9, kT0 + 3000), Truncate(140, 9),
         Change('c', "a", 5, "five", 141, 9, kT0 + 3000), End(9, 145, 3, kT0 + 3000)});
  Apply({Change('c', "a", 6, "six", 150, 10, kT0 + 4000), Change('u', "a", 5, "five-v2", 151, 10, kT0 + 4000),
         Change('u', "b", 5, "moved", 152, 10, kT0 + 4000), End(10, 160, 3, kT0 + 4000)});
  step(160, 4000);
  Apply({Change('c', "a", 8, "eight", 170, 11, kT0 + 5000), Change('u', "a", 6, "six-v3", 171, 11, kT0 + 5000),
         Change('c', "b", 7, "seven", 172, 11, kT0 + 5000), End(11, 180, 3, kT0 + 5000)});
  step(180, 5000);

  ASSERT_EQ(a_chain.size(), 4u);
  for (size_t i = 0; i < a_chain.size(); ++i) {
    ASSERT_TRUE(catalog_->Verify(a_chain[i]).ok());
    const auto want_a = StoreRows(*store_, "a", Lsn(points[i]));
    EXPECT_EQ(BackupRows(*catalog_, a_chain[i], "a"), want_a) << "step " << i;
    EXPECT_EQ(BackupRows(*catalog_, all_chain[i], "a"), want_a) << "step " << i;
    EXPECT_EQ(BackupRows(*catalog_, all_chain[i], "b"), StoreRows(*store_, "b", Lsn(points[i]))) << "step " << i;
  }
  // Spot checks that the scenario did what it says.
  EXPECT_EQ(StoreRows(*store_, "a", Lsn(160)).size(), 1u);  // only 6: 9 truncated, 5 moved
  EXPECT_EQ(StoreRows(*store_, "b", Lsn(160)).size(), 1u);  // 3 truncated, 5 arrived
  auto inc = catalog_->Get(a_chain[2]);
  ASSERT_TRUE(inc.ok());
  EXPECT_EQ(inc->rows.at(store::test::kTable), 6u);  // events: c 9, t, c 5, c 6, u 5, d 5 (moved)
}

}  // namespace
}  // namespace timevault::replay
