// History the store cannot vouch for is refused, never served (invariant 10;
// issue #18 items 5, 6, 9), with real processes: a dead letter inside a
// counted transaction, points before a table's coverage, an unchanged TOAST
// column without a previous version.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <set>
#include <thread>

#include "support/capture_harness.h"
#include "support/kafka_reader.h"
#include "support/testenv.h"

namespace timevault::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kAdminSecret[] = "coverage-admin-secret";

std::string ApiToml(int port) { return AdminApiToml(port, kAdminSecret); }

void Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

// Runs the CLI; its exit code, stdout+stderr in *out.
int Cli(const std::string& config, const std::vector<std::string>& args, std::string* out) {
  TempDir dir;
  Process p;
  std::vector<std::string> argv{TV_BINARY, "--config", config};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!p.Start(argv, dir.path() + "/cli.log")) return -1;
  int rc = p.Wait(120);
  *out = p.ReadLog();
  return rc;
}

// POST /v1/pitr/preview through `timevault serve` (started for the call).
httplib::Result Preview(const CaptureHarness& h, int port, const std::string& body, Process* serve) {
  // Not started: the POST below fails and the caller's ASSERT_TRUE(r) says so.
  if (!serve->Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log")) {
    ADD_FAILURE() << "timevault serve did not start";
  }
  httplib::Client api("127.0.0.1", port);
  api.set_default_headers({{"Authorization", std::string("Bearer ") + kAdminSecret}});
  for (int i = 0; i < 100; ++i) {
    if (auto r = api.Get("/livez"); r && r->status == 200) break;
    Sleep(100ms);
  }
  return api.Post("/v1/pitr/preview", body, "application/json");
}

// /v1/health from `timevault serve` beside the running store, polled until
// it contains `want` (or 60 s).
std::string HealthWhen(const CaptureHarness& h, int port, const std::string& want) {
  Process serve;
  if (!serve.Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log")) return "";
  httplib::Client api("127.0.0.1", port);
  api.set_default_headers({{"Authorization", std::string("Bearer ") + kAdminSecret}});
  std::string health;
  for (int i = 0; i < 300; ++i) {
    auto r = api.Get("/v1/health");
    if (r && r->status == 200) health = r->body;
    if (health.find(want) != std::string::npos) break;
    Sleep(200ms);
  }
  serve.Stop();
  return health;
}

size_t CountRows(store::Store& s, const std::string& tenant, Lsn point, Status* status) {
  size_t n = 0;
  *status = s.StateAt(TenantId(tenant), point, {}, [&](const store::Row&) { return ++n, true; });
  return n;
}

// Item 5. A transaction whose END counts an event that was dead-lettered
// (a malformed message on the table's topic) never completes. Before: the
// recoverable point stood still forever and nothing said why. Now the store
// records an open gap naming the transaction and the dead letter, health is
// critical naming it, and every point after the last one vouched for is
// refused naming it.
TEST(CoverageFault, ADeadLetterInsideACountedTransactionIsAnOpenGapNamedByHealth) {
  const int port = FreePort();
  CaptureHarness h({.extra = ApiToml(port)});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)");
  h.Exec("INSERT INTO items SELECT g, 'acme', 'item ' || g FROM generate_series(1, 20) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  h.Exec("UPDATE items SET name = 'seen' WHERE id = 1");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);  // heartbeats after the update: the recoverable point passes it

  // A transaction of one event, counted by its END; the event on the
  // table's topic is not JSON (a corrupted message), so it is dead-lettered.
  // Its commit LSN lies 8 MB ahead of the WAL: capture's idle heartbeats
  // (tiny logical messages) stay below it, so none is met past it before
  // its END is consumed (they do not list the END's offset: it is not
  // capture's); the WAL switches below carry the real commits beyond it.
  const uint64_t commit = h.CurrentWalLsn() + 0x800000;
  const std::string xid = "3999999";
  const std::string bootstrap = Env().kafka_bootstrap;
  ProduceRaw(bootstrap, h.Topic("items"), R"({"id":7})", "{\"payload\": this is not json");
  // Capture's own corrupted message would sit below the offsets its heartbeats
  // list, so the store would always consume it first; this one is not
  // capture's: wait until the store has it before its END.
  for (int i = 0; i < 300 && h.store().ReadLog().find("dead letter " + h.Topic("items")) == std::string::npos; ++i) {
    Sleep(100ms);
  }
  ASSERT_NE(h.store().ReadLog().find("dead letter " + h.Topic("items")), std::string::npos) << h.store().ReadLog();
  const std::string end =
      R"({"status":"END","id":")" + xid + ":" + std::to_string(commit) + R"(","ts_ms":)" +
      std::to_string(SystemClock().Now().micros() / 1000) +
      R"(,"event_count":1,"data_collections":[{"data_collection":"public.items","event_count":1}]})";
  ProduceRaw(bootstrap, h.prefix() + ".transaction", R"({"id":")" + xid + ":" + std::to_string(commit) + "\"}", end);
  // Real transactions after it; capture's heartbeats list offsets past both messages.
  h.Exec("UPDATE items SET name = 'after' WHERE id = 2");
  h.Query("SELECT pg_switch_wal()");
  h.Exec("UPDATE items SET name = 'after again' WHERE id = 2");
  h.Query("SELECT pg_switch_wal()");
  h.Exec("INSERT INTO items VALUES (21, 'acme', 'new')");
  ASSERT_GT(h.CurrentWalLsn(), commit);
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(2000ms);
  const CommitTime after = SystemClock().Now();

  const std::string health = HealthWhen(h, port, "will never complete");
  EXPECT_NE(health.find("\"status\":\"critical\""), std::string::npos) << health;
  EXPECT_NE(health.find("transaction " + xid + " committed at " + Lsn(commit).ToString()), std::string::npos)
      << health << "\n"
      << h.store().ReadLog();
  EXPECT_NE(health.find("will never complete: 0 of 1 event(s) stored"), std::string::npos) << health;
  EXPECT_NE(health.find(h.Topic("items") + "["), std::string::npos) << health;  // the dead letter, by position

  // Preview after it: refused, naming the transaction.
  std::string out;
  EXPECT_NE(Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", after.ToIso()}, &out), 0) << out;
  EXPECT_NE(out.find("transaction " + xid), std::string::npos) << out;

  ASSERT_EQ(h.store().Stop(), 0) << h.store().ReadLog();
  EXPECT_EQ(h.capture().Stop(), 0);
  auto s = h.OpenStore();
  ASSERT_NE(s, nullptr);
  auto gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_TRUE(gaps[0].open());
  auto rp = s->RecoverablePoint();
  ASSERT_TRUE(rp.ok()) << rp.status().ToString();
  // It stays before the transaction (a heartbeat below its commit LSN may
  // still move it, inside the open gap)...
  EXPECT_GE(rp->lsn, gaps[0].from.lsn);
  EXPECT_LT(rp->lsn.value(), commit);
  // ...and every point after it is refused, naming the gap.
  Status st;
  CountRows(*s, "acme", Lsn(commit + 1), &st);
  EXPECT_NE(st.message().find("gap #1 (transaction " + xid), std::string::npos) << st.ToString();
  auto at = s->ResolveTime(after);
  ASSERT_FALSE(at.ok());
  EXPECT_NE(at.status().message().find("will never complete"), std::string::npos) << at.status().ToString();
  // The gap's start is exact: the 20 rows with the first update.
  EXPECT_EQ(CountRows(*s, "acme", gaps[0].from.lsn, &st), 20u);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::cout << "dead letter in a counted transaction: " << gaps[0].Describe() << "\n";
}

// Item 9, the store's start. Before: a preview at a time before capture
// started answered NotFound ("no commit at or before"), and a point before
// the first snapshot was served as an empty state (a PITR to it deletes
// every row). Now both are refused naming where coverage starts.
TEST(CoverageFault, APointBeforeTheFirstSnapshotIsRefusedNamingTheCoverageStart) {
  const int port = FreePort();
  CaptureHarness h({.extra = ApiToml(port)});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)");
  h.Exec("INSERT INTO items SELECT g, 'acme', 'item ' || g FROM generate_series(1, 10) g");
  const CommitTime before = SystemClock().Now();
  Sleep(1200ms);
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  h.Exec("UPDATE items SET name = 'seen' WHERE id = 1");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);

  Process serve;
  auto r = Preview(h, port, R"({"tenant":"acme","target_time":")" + before.ToIso() + R"("})", &serve);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_NE(r->body.find("before the store's coverage, which starts at"), std::string::npos) << r->body;
  serve.Stop();
  std::string out;
  EXPECT_NE(Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", before.ToIso()}, &out), 0) << out;
  EXPECT_NE(out.find("before the store's coverage"), std::string::npos) << out;

  ASSERT_EQ(h.store().Stop(), 0) << h.store().ReadLog();
  EXPECT_EQ(h.capture().Stop(), 0);
  auto s = h.OpenStore();
  ASSERT_NE(s, nullptr);
  auto rp = s->RecoverablePoint();
  ASSERT_TRUE(rp.ok()) << rp.status().ToString();
  auto early = s->ResolveTime(before);
  EXPECT_EQ(early.status().code(), StatusCode::kOutOfRange) << early.status().ToString();
  // A point before the snapshot: refused, not an empty state.
  Status st;
  EXPECT_EQ(CountRows(*s, "acme", Lsn(1), &st), 0u);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.ToString();
  EXPECT_NE(st.message().find("before the store's coverage, which starts at"), std::string::npos) << st.ToString();
  // From the snapshot on: exact.
  EXPECT_EQ(CountRows(*s, "acme", rp->lsn, &st), 10u);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(s->Gaps().empty());
}

// Items 9 and 6: a table added to a FOR TABLE publication after capture's
// snapshot. Its rows were never read; an UPDATE of one of its columns
// leaves a TOASTed text (random, > 2 kB, not compressible) unchanged, so the
// store has no value for it. Before: a PITR served the table from the rows
// that changed alone (the others deleted) and wrote NULL for the TOASTed
// column. Now the table is refused, naming it, and so is a point before it
// was covered; Postgres keeps every row and every value.
TEST(CoverageFault, ATableAddedToThePublicationLaterIsRefusedAndNoToastValueBecomesNull) {
  const int port = FreePort();
  CaptureHarness h({.extra = ApiToml(port), .postgres_extra = "tables = [\"public.items\"]\n"});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)");
  h.Exec("CREATE TABLE docs (id int PRIMARY KEY, tenant_id text NOT NULL, body text, counter int)");
  h.Exec("INSERT INTO items SELECT g, 'acme', 'item ' || g FROM generate_series(1, 10) g");
  // 40 md5s (1280 hex characters) twice over: ~2.5 kB that pglz cannot shrink below the TOAST threshold.
  h.Exec(
      "INSERT INTO docs SELECT g, 'acme', (SELECT string_agg(md5(random()::text || i), '') FROM generate_series(1, 80) "
      "i WHERE g > 0), 0 FROM generate_series(1, 5) g");
  ASSERT_EQ(h.Query("SELECT count(*) FROM docs WHERE pg_column_size(body) > 2000"), "5");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  h.Exec("UPDATE items SET name = 'seen' WHERE id = 1");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);
  const std::string publication = h.Query("SELECT pubname FROM pg_publication");
  h.Exec("ALTER PUBLICATION " + publication + " ADD TABLE docs");
  h.Exec("UPDATE docs SET counter = counter + 1 WHERE id = 1");  // body unchanged: TOAST not in the WAL
  h.Exec("UPDATE items SET name = 'later' WHERE id = 2");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1000ms);
  const CommitTime after = SystemClock().Now();
  const std::string body1 = h.Query("SELECT md5(body) FROM docs WHERE id = 1");
  // The store reads the new table's topic once its consumer's metadata
  // finds it: until then the heartbeats listing it hold the recoverable time.
  std::string out;
  for (int i = 0; i < 120; ++i) {
    Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", after.ToIso(), "--table", "public.items"},
        &out);
    if (out.find("past the recoverable point") == std::string::npos) break;
    Sleep(500ms);
  }

  Process serve;
  auto r = Preview(h, port, R"({"tenant":"acme","target_time":")" + after.ToIso() + R"("})", &serve);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_NE(r->body.find("table public.docs is not covered"), std::string::npos) << r->body;
  serve.Stop();
  // The tables that are covered still restore; the PITR of items alone runs.
  ASSERT_EQ(Cli(h.config_path(),
                {"pitr", "preview", "--tenant", "acme", "--at", after.ToIso(), "--table", "public.items"}, &out),
            0)
      << out;
  EXPECT_NE(Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", after.ToIso()}, &out), 0) << out;
  EXPECT_NE(out.find("public.docs"), std::string::npos) << out;
  EXPECT_EQ(h.Query("SELECT count(*) FROM docs WHERE body IS NULL"), "0");
  EXPECT_EQ(h.Query("SELECT md5(body) FROM docs WHERE id = 1"), body1);

  ASSERT_EQ(h.store().Stop(), 0) << h.store().ReadLog();
  EXPECT_EQ(h.capture().Stop(), 0);
  const std::string slog = h.store().ReadLog();
  EXPECT_NE(slog.find("stored incomplete"), std::string::npos) << slog;  // item 6: marked, not dropped
  auto s = h.OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Stats().toast_unresolved, 1u);
  auto rp = s->RecoverablePoint();
  ASSERT_TRUE(rp.ok()) << rp.status().ToString();
  Status st = s->StateAt(TenantId("acme"), rp->lsn, {"public.docs"}, [](const store::Row&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.ToString();
  EXPECT_NE(st.message().find("table public.docs is not covered"), std::string::npos) << st.ToString();
  EXPECT_EQ(CountRows(*s, "acme", Lsn(rp->lsn), &st), 0u);
  EXPECT_NE(st.message().find("public.docs"), std::string::npos) << st.ToString();
  size_t items = 0;
  st = s->StateAt(TenantId("acme"), rp->lsn, {"public.items"}, [&](const store::Row&) { return ++items, true; });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(items, 10u);
}

}  // namespace
}  // namespace timevault::testing
