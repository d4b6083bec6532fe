// capture against the real Postgres and the real Kafka broker.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/capture_harness.h"

namespace timevault::testing {
namespace {

std::string Op(const Record& r) {
  if (!r.value) return "tombstone";
  auto d = ParseJson(*r.value);
  const auto& p = Payload(*d);
  return p.HasMember("op") ? p["op"].GetString() : "?";
}

TEST(Capture, SnapshotThenStreamsInsertUpdateDeleteWithTransactions) {
  CaptureHarness h;
  h.Exec("CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text NOT NULL, balance bigint, note text)");
  h.Exec("INSERT INTO accounts VALUES (1, 'a', 10, 'one'), (2, 'b', 20, NULL), (3, 'a', 30, 'three')");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO accounts VALUES (4, 'b', 40, 'four')");
  h.Exec("UPDATE accounts SET balance = 11 WHERE id = 1");
  h.Exec("DELETE FROM accounts WHERE id = 2");
  h.Exec("BEGIN; INSERT INTO accounts VALUES (5, 'a', 50, 'x'); UPDATE accounts SET note = 'y' WHERE id = 5; COMMIT");
  uint64_t end = h.CurrentWalLsn();

  auto records = h.Read({h.Topic("accounts")}, 3 + 1 + 1 + 2 + 2);
  ASSERT_EQ(records.size(), 9u);
  std::multiset<std::string> ops;
  std::map<std::string, std::set<int>> partitions_by_tenant;
  for (const auto& r : records) {
    ops.insert(Op(r));
    ASSERT_TRUE(r.key.has_value()) << "every event of a table with a primary key has a key";
    if (!r.value) continue;
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    const auto& row = p["op"].GetString() == std::string("d") ? p["before"] : p["after"];
    partitions_by_tenant[row["tenant_id"].GetString()].insert(r.partition);
    EXPECT_STREQ(p["source"]["connector"].GetString(), "postgresql");
    EXPECT_STREQ(p["source"]["table"].GetString(), "accounts");
    EXPECT_EQ(std::string(p["source"]["db"].GetString()), h.db().name());
  }
  EXPECT_EQ(ops, (std::multiset<std::string>{"r", "r", "r", "c", "u", "d", "tombstone", "c", "u"}));
  for (const auto& [tenant, parts] : partitions_by_tenant) {
    EXPECT_EQ(parts.size(), 1u) << "tenant " << tenant << " spread over partitions";
  }

  // The update carries the new row; the delete the old key; the tombstone follows the delete.
  for (size_t i = 0; i < records.size(); ++i) {
    if (Op(records[i]) != "d") continue;
    auto d = ParseJson(*records[i].value);
    EXPECT_EQ(Payload(*d)["before"]["id"].GetInt(), 2);
    ASSERT_LT(i + 1, records.size());
    EXPECT_EQ(Op(records[i + 1]), "tombstone");
    EXPECT_EQ(records[i + 1].key, records[i].key);
  }

  // Transaction topic: BEGIN and END per transaction, END counting the events.
  auto tx = h.Read({h.prefix() + ".transaction"}, 8);
  ASSERT_EQ(tx.size(), 8u);
  int begins = 0, ends = 0;
  int64_t counted = 0;
  for (const auto& r : tx) {
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    std::string status = p["status"].GetString();
    if (status == "BEGIN") ++begins;
    if (status == "END") {
      ++ends;
      counted += p["event_count"].GetInt64();
    }
  }
  EXPECT_EQ(begins, 4);
  EXPECT_EQ(ends, 4);
  EXPECT_EQ(counted, 5) << "c, u, d, c, u: the tombstone is not an event";

  // Confirmation reaches the end of what was produced; SIGTERM exits 0.
  EXPECT_TRUE(h.WaitConfirmed(end, 30)) << "confirmed " << h.ConfirmedLsn() << " < " << end;
  EXPECT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();

  // The last heartbeat covers everything: its LSN passed the workload and its
  // offsets name the last offset of every partition the events went to.
  auto beats = h.Read({"__debezium-heartbeat." + h.prefix()}, 0, 1500);
  ASSERT_FALSE(beats.empty());
  auto last = ParseJson(*beats.back().value);
  const auto& hb = Payload(*last);
  EXPECT_GE(hb["lsn"].GetUint64(), end);
  std::map<int, long long> max_offset;
  for (const auto& r : records) max_offset[r.partition] = std::max(max_offset[r.partition], r.offset);
  ASSERT_TRUE(hb["offsets"].HasMember(h.Topic("accounts").c_str()));
  const auto& parts = hb["offsets"][h.Topic("accounts").c_str()];
  for (const auto& [partition, offset] : max_offset) {
    std::string p = std::to_string(partition);
    ASSERT_TRUE(parts.HasMember(p.c_str())) << "partition " << p;
    EXPECT_EQ(parts[p.c_str()].GetInt64(), offset) << "partition " << p;
  }
}

TEST(Capture, AlterTableAddColumnMidStream) {
  CaptureHarness h({.snapshot_mode = "no_data"});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text, name text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO items VALUES (1, 't', 'before')");
  h.Exec("ALTER TABLE items ADD COLUMN price numeric(10,2) DEFAULT 0");
  h.Exec("INSERT INTO items VALUES (2, 't', 'after', 12.5)");
  auto records = h.Read({h.Topic("items")}, 2);
  ASSERT_EQ(records.size(), 2u);
  auto first = ParseJson(*records[0].value);
  auto second = ParseJson(*records[1].value);
  EXPECT_FALSE(Payload(*first)["after"].HasMember("price"));
  ASSERT_TRUE(Payload(*second)["after"].HasMember("price"));
  EXPECT_STREQ(Payload(*second)["after"]["price"].GetString(), "BOI=") << "12.50 as Decimal(scale 2): 1250";
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(Capture, RestartResumesWithoutLossOrSnapshotRepeat) {
  CaptureHarness h;
  h.Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  h.Exec("INSERT INTO t VALUES (1, 'a')");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO t VALUES (2, 'a')");
  ASSERT_TRUE(h.WaitConfirmed(0, 30));
  EXPECT_EQ(h.capture().Stop(), 0);
  h.Exec("INSERT INTO t VALUES (3, 'a')");  // while capture is down
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO t VALUES (4, 'a')");
  auto records = h.Read({h.Topic("t")}, 4);
  ASSERT_EQ(records.size(), 4u) << "snapshot row 1, then 2, 3, 4 exactly once after a clean stop";
  // Row 1 from the snapshot; 2, 3 and 4 streamed, each exactly once (row 2
  // commits after StartCapture, which waits for the slot's consistent
  // point): a repeated snapshot would show row 1 again.
  std::vector<std::string> ops;
  for (const auto& r : records) {
    ASSERT_TRUE(r.value.has_value());
    auto d = ParseJson(*r.value);
    const int id = Payload(*d)["after"]["id"].GetInt();
    ops.push_back(std::to_string(id) + Op(r));
  }
  EXPECT_EQ(h.capture().Stop(), 0);
  if (ops != std::vector<std::string>{"1r", "2c", "3c", "4c"}) {
    // Both runs' logs say whether the second one redid the snapshot and why.
    std::string dir = h.config_path().substr(0, h.config_path().rfind('/'));
    auto read = [](const std::string& path) {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    ADD_FAILURE() << "ops " << ::testing::PrintToString(ops) << "\nfirst run:\n"
                  << read(dir + "/capture-0.log") << "\nsecond run:\n"
                  << read(dir + "/capture-1.log");
  }
}

// A store still reading what an earlier run produced must not meet the
// next run's heartbeats first: they list every topic under the prefix, also
// one this run never writes to (snapshot rows have no END to wait for).
TEST(Capture, HeartbeatsAfterARestartListTheTopicsOfEarlierRuns) {
  CaptureHarness h;
  h.Exec("CREATE TABLE early (id int PRIMARY KEY, tenant_id text)");
  h.Exec("CREATE TABLE later (id int PRIMARY KEY, tenant_id text)");
  h.Exec("INSERT INTO early SELECT g, 't' || g FROM generate_series(1, 20) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  auto early = h.Read({h.Topic("early")}, 20);
  ASSERT_EQ(early.size(), 20u);
  std::map<int, long long> last;  // early's partition -> its last offset
  for (const auto& r : early) last[r.partition] = std::max(last[r.partition], r.offset);
  EXPECT_EQ(h.capture().Stop(), 0);

  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO later VALUES (1, 'a')");
  ASSERT_TRUE(h.WaitConfirmed(0, 30));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a few heartbeats (every 500 ms)
  EXPECT_EQ(h.capture().Stop(), 0);                      // then the heartbeat topic goes quiet
  const auto beats = h.Read({"__debezium-heartbeat." + h.prefix()});

  // The first heartbeat that lists `later` is the second run's.
  bool found = false;
  for (const auto& b : beats) {
    ASSERT_TRUE(b.value.has_value());
    auto d = ParseJson(*b.value);
    const auto& offsets = Payload(*d)["offsets"];
    if (!offsets.HasMember(h.Topic("later").c_str())) continue;
    found = true;
    ASSERT_TRUE(offsets.HasMember(h.Topic("early").c_str()))
        << "the second run's heartbeat omits the topic only the first run wrote: " << *b.value;
    const auto& listed = offsets[h.Topic("early").c_str()];
    for (const auto& [partition, offset] : last) {
      const std::string p = std::to_string(partition);
      ASSERT_TRUE(listed.HasMember(p.c_str())) << "partition " << p << " missing: " << *b.value;
      EXPECT_GE(listed[p.c_str()].GetInt64(), offset) << "partition " << p;
    }
    break;
  }
  EXPECT_TRUE(found) << "no heartbeat of the second run among " << beats.size();
}

TEST(Capture, KilledMidSnapshotRedoesIt) {
  CaptureHarness h({.extra = ""});
  h.Exec("CREATE TABLE big (id int PRIMARY KEY, tenant_id text, pad text)");
  h.Exec("INSERT INTO big SELECT g, 't' || (g % 5), repeat('x', 200) FROM generate_series(1, 200000) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  h.capture().Kill();  // almost certainly mid-snapshot
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.Exec("INSERT INTO big VALUES (0, 't0', 'streamed')");
  ASSERT_TRUE(h.WaitConfirmed(0, 240)) << h.capture().ReadLog();
  auto records = h.Read({h.Topic("big")}, 0, 5000);
  std::set<int> ids;
  bool streamed = false;
  for (const auto& r : records) {
    auto d = ParseJson(*r.value);
    const auto& p = Payload(*d);
    ids.insert(p["after"]["id"].GetInt());
    if (std::string(p["op"].GetString()) == "c") streamed = true;
  }
  EXPECT_EQ(ids.size(), 200001u) << "every row, from a complete snapshot plus the stream";
  EXPECT_TRUE(streamed);
  EXPECT_EQ(h.capture().Stop(), 0);
}

TEST(Capture, PostgresUnreachableRetriesAndStopsCleanly) {
  CaptureHarness h;
  std::string bad = h.config_path() + ".bad";
  WriteFile(bad,
            "[postgres]\nconninfo = \"host=127.0.0.1 port=1 dbname=x connect_timeout=1\"\n[kafka]\nbootstrap = \"" +
                Env().kafka_bootstrap + "\"\n[store]\npath = \"/tmp/x\"\nkey_file = \"/tmp/k\"\n");
  Process p;
  ASSERT_TRUE(p.Start({TV_BINARY, "--config", bad, "capture"}, bad + ".log"));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSERT_TRUE(p.running()) << "must retry, not exit:\n" << p.ReadLog();
  EXPECT_EQ(p.Stop(), 0);
  std::string log = p.ReadLog();
  EXPECT_NE(log.find("cannot connect"), std::string::npos) << log;
  EXPECT_NE(log.find("retrying"), std::string::npos) << log;
}

}  // namespace
}  // namespace timevault::testing

namespace timevault::testing {
namespace {

TEST(Capture, InitialOnlySnapshotsThenExits) {
  CaptureHarness h({.snapshot_mode = "initial_only"});
  h.Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  h.Exec("INSERT INTO t SELECT g, 'a' FROM generate_series(1, 500) g");
  Process p;
  ASSERT_TRUE(p.Start({TV_BINARY, "--config", h.config_path(), "capture"}, h.config_path() + ".log"));
  EXPECT_EQ(p.Wait(60), 0) << p.ReadLog();
  auto records = h.Read({h.Topic("t")}, 500);
  EXPECT_EQ(records.size(), 500u);
  for (const auto& r : records) EXPECT_EQ(Op(r), "r");
}

}  // namespace
}  // namespace timevault::testing
