// Gaps are recorded, never papered over (invariant 10), with real processes
// and real faults: the replication slot dropped while capture is down, a
// slot invalidated by max_slot_wal_keep_size, capture killed mid-snapshot
// with deletes between the two snapshots.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "support/capture_harness.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"

namespace timevault::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kAdminSecret[] = "gaps-admin-secret";

std::set<int> Range(int from, int to) {
  std::set<int> out;
  for (int i = from; i <= to; ++i) out.insert(i);
  return out;
}

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

void Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

// The headline: 100 rows; capture stopped; rows 1-50 deleted; the
// slot dropped; 10 rows inserted; capture started again. Before: a new slot
// and snapshot without a word, and the state after it had 110 rows (the 50
// deleted ones back); a time inside the uncaptured window was served.
TEST(GapsFault, SlotDroppedWhileCaptureIsDownIsAGapAndTheStateAfterItIsExact) {
  const int port = FreePort();
  CaptureHarness h({.extra = AdminApiToml(port, kAdminSecret)});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)");
  h.Exec("INSERT INTO items SELECT g, 'acme', 'item ' || g FROM generate_series(1, 100) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  h.Exec("UPDATE items SET name = 'seen' WHERE id = 1");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);  // a heartbeat after the update
  ASSERT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();

  h.Exec("DELETE FROM items WHERE id <= 50");
  Sleep(1200ms);
  const CommitTime inside = SystemClock().Now();  // history here was never captured
  Sleep(1200ms);
  h.Exec("SELECT pg_drop_replication_slot('" + h.slot() + "')");
  h.Exec("INSERT INTO items SELECT g, 'acme', 'item ' || g FROM generate_series(101, 110) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);
  const CommitTime after = SystemClock().Now();
  // Capture says so loudly.
  const std::string log = h.capture().ReadLog();
  EXPECT_NE(log.find("SLOT LOST"), std::string::npos) << log;
  EXPECT_NE(log.find("is missing"), std::string::npos) << log;

  // Health, through the API next to the running store: critical, naming the gap.
  Process serve;
  ASSERT_TRUE(serve.Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log"));
  httplib::Client api("127.0.0.1", port);
  api.set_default_headers({{"Authorization", std::string("Bearer ") + kAdminSecret}});
  std::string health;
  for (int i = 0; i < 300; ++i) {
    auto r = api.Get("/v1/health");
    if (r && r->status == 200) health = r->body;
    if (health.find("gap #1") != std::string::npos) break;
    Sleep(200ms);
  }
  EXPECT_NE(health.find("\"status\":\"critical\""), std::string::npos) << health;
  EXPECT_NE(health.find("critical: history is missing: gap #1 (replication slot"), std::string::npos) << health;
  auto acked = api.Post("/v1/gaps/1/ack", "", "application/json");
  ASSERT_TRUE(acked);
  EXPECT_EQ(acked->status, 200) << acked->body;
  auto again = api.Get("/v1/health");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body.find("critical: history is missing"), std::string::npos) << again->body;
  serve.Stop();
  {
    const std::string slog = h.store().ReadLog();
    EXPECT_NE(slog.find("50 row(s) absent from it ended there"), std::string::npos) << slog;
  }

  auto s = h.StopStoreWhenCaughtUp([&](const store::Point& p) { return p.time >= after; }, after.ToIso());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(h.capture().Stop(), 0);
  auto gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_TRUE(gaps[0].acknowledged);
  EXPECT_LT(gaps[0].from.time, inside);
  EXPECT_GT(gaps[0].to.time, inside);

  // After the re-snapshot: exactly the 60 rows Postgres has.
  auto point = s->ResolveTime(after);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  Status st;
  auto ids = LiveIds(*s, "acme", point->lsn, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ids, Range(51, 110)) << "rows: " << ids.size() << "\n" << h.store().ReadLog();
  // Inside the window: refused, naming the gap.
  auto in = s->ResolveTime(inside);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.status().message().find("gap #1"), std::string::npos) << in.status().ToString();
  Lsn mid(gaps[0].from.lsn.value() + (gaps[0].to.lsn.value() - gaps[0].from.lsn.value()) / 2);
  EXPECT_NE(LiveIds(*s, "acme", mid, &st).size(), 60u);
  EXPECT_NE(st.message().find("gap #1"), std::string::npos) << st.ToString();
  // Before the window: the 100 rows, exact.
  auto before = s->ResolveTime(gaps[0].from.time);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(LiveIds(*s, "acme", before->lsn, &st), Range(1, 100));
  s.reset();

  // The accident and the PITR, through the CLI: preview inside the window
  // refused; to after the restart, exactly 60 rows come back.
  h.Exec("DELETE FROM items WHERE tenant_id = 'acme'");
  std::string out;
  EXPECT_NE(Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", inside.ToIso()}, &out), 0) << out;
  EXPECT_NE(out.find("gap #1"), std::string::npos) << out;
  ASSERT_EQ(Cli(h.config_path(), {"pitr", "preview", "--tenant", "acme", "--at", after.ToIso()}, &out), 0) << out;
  auto plan_at = out.find("\"plan_id\": \"");
  ASSERT_NE(plan_at, std::string::npos) << out;
  const std::string plan = out.substr(plan_at + 12, out.find('"', plan_at + 12) - plan_at - 12);
  ASSERT_EQ(Cli(h.config_path(), {"pitr", "execute", "--plan", plan, "--confirm"}, &out), 0) << out;
  EXPECT_EQ(h.Query("SELECT count(*) FROM items WHERE tenant_id = 'acme'"), "60");
  EXPECT_EQ(h.Query("SELECT min(id) || '-' || max(id) FROM items"), "51-110");
  ASSERT_EQ(Cli(h.config_path(), {"gaps", "list"}, &out), 0) << out;
  EXPECT_NE(out.find("\"acknowledged\":true"), std::string::npos) << out;
  std::cout << "slot dropped: gap " << gaps[0].Describe() << "; rows after the restart " << ids.size() << "\n";
}

// On today's main capture found the slot gone and took a new snapshot
// silently; with on_slot_loss = "stop" it refuses and names the cause.
TEST(GapsFault, OnSlotLossStopRefusesToResnapshot) {
  CaptureHarness h({.postgres_extra = "on_slot_loss = \"stop\"\n"});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL)");
  h.Exec("INSERT INTO items SELECT g, 'acme' FROM generate_series(1, 10) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_TRUE(h.WaitConfirmed(0, 120));
  Sleep(1200ms);
  ASSERT_EQ(h.capture().Stop(), 0);
  h.Exec("SELECT pg_drop_replication_slot('" + h.slot() + "')");
  Process capture;
  TempDir dir;
  ASSERT_TRUE(capture.Start({TV_BINARY, "--config", h.config_path(), "capture"}, dir.path() + "/capture.log"));
  EXPECT_NE(capture.Wait(60), 0);
  const std::string log = capture.ReadLog();
  EXPECT_NE(log.find("on_slot_loss = \"stop\""), std::string::npos) << log;
  EXPECT_EQ(h.Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + h.slot() + "'"), "0");
}

// A slot invalidated by max_slot_wal_keep_size while capture is down
// (wal_status = 'lost'): capture drops it, re-snapshots, the store records
// the gap and the rows deleted meanwhile stay deleted.
TEST(GapsFault, SlotInvalidatedByMaxSlotWalKeepSizeIsAGap) {
  CaptureHarness h;
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL)");
  h.Exec("CREATE TABLE filler (id bigint, pad text)");
  h.Exec("INSERT INTO items SELECT g, 'acme' FROM generate_series(1, 40) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  ASSERT_TRUE(h.WaitConfirmed(0, 120));
  Sleep(1200ms);
  ASSERT_EQ(h.capture().Stop(), 0);
  h.Exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  h.Exec("SELECT pg_reload_conf()");
  h.Exec("DELETE FROM items WHERE id <= 10");
  std::string status;
  for (int i = 0; i < 20 && status != "lost"; ++i) {
    h.Exec("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g");
    h.Exec("SELECT pg_switch_wal()");
    h.Exec("CHECKPOINT");
    status = h.Query("SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = '" + h.slot() + "'");
  }
  h.Exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
  h.Exec("SELECT pg_reload_conf()");
  ASSERT_EQ(status, "lost");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);
  const CommitTime after = SystemClock().Now();
  EXPECT_NE(h.capture().ReadLog().find("wal_status = lost"), std::string::npos) << h.capture().ReadLog();
  auto s = h.StopStoreWhenCaughtUp([&](const store::Point& p) { return p.time >= after; }, after.ToIso());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(h.capture().Stop(), 0);
  auto gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].cause.find("max_slot_wal_keep_size"), std::string::npos) << gaps[0].cause;
  auto point = s->ResolveTime(after);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  Status st;
  EXPECT_EQ(LiveIds(*s, "acme", point->lsn, &st), Range(11, 40));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// Capture killed (kill -9) during its initial snapshot; rows deleted before
// it starts again. The second snapshot is a full image: the rows the first,
// interrupted snapshot had delivered and that are gone now stay gone.
TEST(GapsFault, KilledMidSnapshotWithDeletesBetweenTheSnapshotsKeepsThemDeleted) {
  CaptureHarness h({.postgres_extra = "snapshot_chunk_rows = 500\n"});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, pad text)");
  h.Exec("INSERT INTO items SELECT g, 'acme', repeat('x', 200) FROM generate_series(1, 200000) g");
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  {
    TempDir dir;
    Process first;  // killed as soon as its snapshot is under way
    ASSERT_TRUE(first.Start({TV_BINARY, "--config", h.config_path(), "capture"}, dir.path() + "/capture.log"));
    for (int i = 0; i < 600; ++i) {
      if (h.Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + h.slot() + "'") == "1") break;
      Sleep(20ms);
    }
    Sleep(400ms);
    first.Kill();
  }
  const std::string marker =
      h.Query("SELECT coalesce(obj_description(oid, 'pg_publication'), '') FROM pg_publication LIMIT 1");
  ASSERT_EQ(marker.find("snapshot-completed"), std::string::npos) << "the snapshot finished before the kill";
  h.Exec("DELETE FROM items WHERE id <= 1000");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_TRUE(h.WaitConfirmed(0, 300)) << h.capture().ReadLog();
  Sleep(1500ms);
  const CommitTime after = SystemClock().Now();
  auto s = h.StopStoreWhenCaughtUp([&](const store::Point& p) { return p.time >= after; }, after.ToIso(), 300);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(h.capture().Stop(), 0);
  auto point = s->RecoverablePoint();
  ASSERT_TRUE(point.ok());
  Status st;
  auto ids = LiveIds(*s, "acme", point->lsn, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ids.size(), 199000u);
  EXPECT_EQ(*ids.begin(), 1001);
  EXPECT_TRUE(s->Gaps().empty()) << "nothing was vouched for before the first complete snapshot";
}

}  // namespace
}  // namespace timevault::testing
