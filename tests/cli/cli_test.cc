// Runs the real timevault binary: exit codes and messages of the command line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "support/process.h"
#include "support/testenv.h"
#include "timevault/store/store.h"

namespace timevault {
namespace {

using testing::RunCommand;

std::string WriteConfig(const std::string& body) {
  char path[] = "/tmp/tv_cli_XXXXXX.toml";
  int fd = mkstemps(path, 5);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << body;
  return path;
}

const std::string kGood =
    "[postgres]\nconninfo = \"dbname=x\"\n[kafka]\nbootstrap = \"b:1\"\n[store]\npath = \"/tmp/s\"\nkey_file = "
    "\"/tmp/k\"\n";

std::string Bin() { return std::string("env -u TIMEVAULT_CONFIG ") + TV_BINARY; }

TEST(Cli, HelpListsEveryCommand) {
  auto r = RunCommand(Bin() + " --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* c : {"capture", "store", "serve", "run", "backup", "restore", "pitr", "snapshots", "rollback",
                        "state", "history", "plan", "health", "audit"}) {
    EXPECT_NE(r.output.find(c), std::string::npos) << c;
  }
}

TEST(Cli, SubcommandHelp) {
  auto r = RunCommand(Bin() + " capture --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("logical replication"), std::string::npos) << r.output;
}

TEST(Cli, NoCommandIsUsageError) { EXPECT_EQ(RunCommand(Bin()).exit_code, 2); }

TEST(Cli, ConfigCheckPrintsEffectiveSettings) {
  auto path = WriteConfig(kGood);
  auto r = RunCommand("TIMEVAULT_KAFKA_LINGER_MS=42 " + Bin() + " --config " + path + " config");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kafka.linger_ms = 42"), std::string::npos) << r.output;
  unlink(path.c_str());
}

TEST(Cli, UnknownKeyExitsTwoNamingKey) {
  auto path = WriteConfig(kGood + "[api]\nlisten = \"127.0.0.1:1\"\nport = 3\n");
  auto r = RunCommand(Bin() + " --config " + path + " config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("api.port: unknown key"), std::string::npos) << r.output;
  unlink(path.c_str());
}

TEST(Cli, WrongTypeExitsTwoNamingKey) {
  auto path = WriteConfig(kGood + "[tenant]\ncolumn = 5\n");
  auto r = RunCommand(Bin() + " --config " + path + " capture");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("tenant.column: expected a string, got an integer"), std::string::npos) << r.output;
  unlink(path.c_str());
}

TEST(Cli, MissingValueExitsTwoNamingKey) {
  auto path = WriteConfig("[kafka]\nbootstrap = \"b\"\n[store]\npath = \"p\"\nkey_file = \"k\"\n");
  auto r = RunCommand(Bin() + " --config " + path + " config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("postgres.conninfo: missing required value"), std::string::npos) << r.output;
  unlink(path.c_str());
}

TEST(Cli, BadEnvOverrideExitsTwoNamingKey) {
  auto path = WriteConfig(kGood);
  auto r = RunCommand("TIMEVAULT_STORE_RETENTION_DAYS=forever " + Bin() + " --config " + path + " config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("store.retention_days"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TIMEVAULT_STORE_RETENTION_DAYS"), std::string::npos) << r.output;
  unlink(path.c_str());
}

TEST(Cli, MissingConfigFileExitsTwo) {
  auto r = RunCommand(Bin() + " --config /nonexistent.toml config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/nonexistent.toml"), std::string::npos) << r.output;
}

TEST(Cli, BadLogLevelExitsTwo) {
  auto path = WriteConfig(kGood);
  auto r = RunCommand(Bin() + " --config " + path + " --log-level chatty config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("chatty"), std::string::npos) << r.output;
  unlink(path.c_str());
}

// Issue #18 item 12: kafka.properties that weaken delivery are refused by
// the real binary when the services load the config: exit 2, naming the key,
// before anything connects (the broker here does not exist).
TEST(Cli, DeliveryWeakeningKafkaPropertiesExitTwoNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> weak = {
      {"enable.idempotence", "false"},
      {"acks", "1"},
      {"request.required.acks", "0"},
      {"message.timeout.ms", "300000"},
      {"delivery.timeout.ms", "5000"},
      {"max.in.flight.requests.per.connection", "6"},
      {"max.in.flight", "100"},
      {"retries", "3"},
      {"message.send.max.retries", "0"},
      {"enable.auto.commit", "true"},
      {"enable.auto.offset.store", "true"},
      {"auto.offset.reset", "latest"},
      {"auto.offset.reset", "earliest"},
  };
  for (const char* command : {"capture", "store", "run"}) {
    for (const auto& [key, value] : weak) {
      auto path = WriteConfig(kGood + "[kafka.properties]\n\"" + key + "\" = \"" + value + "\"\n");
      auto r = RunCommand("timeout 20 " + Bin() + " --config " + path + " " + command);
      EXPECT_EQ(r.exit_code, 2) << command << " with " << key << "=" << value << ": " << r.output;
      EXPECT_NE(r.output.find("kafka.properties." + key + ": '" + value + "' weakens delivery"), std::string::npos)
          << r.output;
      unlink(path.c_str());
    }
  }
  // What keeps delivery whole is accepted.
  auto path = WriteConfig(kGood +
                          "[kafka.properties]\n\"acks\" = \"all\"\n\"max.in.flight\" = \"5\"\n\"message.timeout.ms\" = "
                          "\"0\"\n\"auto.offset.reset\" = \"error\"\n");
  auto r = RunCommand(Bin() + " --config " + path + " config");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  unlink(path.c_str());
}

// `store rekey` re-wraps the keys and does not start the service (whose
// broker here does not exist: it would run until the timeout).
TEST(Cli, StoreRekeyMovesTheStoreToTheNewMasterKey) {
  testing::TempDir dir;
  const std::string store = dir.path() + "/store", a = dir.path() + "/a.key", b = dir.path() + "/b.key",
                    c = dir.path() + "/c.key";
  for (const auto& k : {a, b, c}) ASSERT_EQ(RunCommand("umask 077; head -c 32 /dev/urandom > " + k).exit_code, 0);
  auto config = [&](const std::string& key) {
    return WriteConfig("[postgres]\nconninfo = \"dbname=x\"\n[kafka]\nbootstrap = \"127.0.0.1:1\"\n[store]\npath = \"" +
                       store + "\"\nkey_file = \"" + key + "\"\n");
  };
  const std::string with_a = config(a), with_b = config(b);
  auto r = RunCommand("timeout 60 " + Bin() + " --config " + with_a + " store rekey --new-key-file " + b);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("set store.key_file to it"), std::string::npos) << r.output;
  r = RunCommand("timeout 60 " + Bin() + " --config " + with_a + " store rekey --new-key-file " + c);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is not the master key of the store"), std::string::npos) << r.output;
  r = RunCommand("timeout 60 " + Bin() + " --config " + with_b + " store rekey --new-key-file " + c);
  EXPECT_EQ(r.exit_code, 0) << "the new key opens the store: " << r.output;
  r = RunCommand("timeout 60 " + Bin() + " --config " + with_b + " store rekey");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // --new-key-file is required
  // Data-key rotation needs a tenant the store has seen.
  const std::string with_c = config(c);
  r = RunCommand("timeout 60 " + Bin() + " --config " + with_c + " store rotate-key --tenant nobody");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("tenant nobody has no data key"), std::string::npos) << r.output;
  unlink(with_c.c_str());
  unlink(with_a.c_str());
  unlink(with_b.c_str());
}

// A store directory with its master key and a config naming them (the
// broker does not exist: only commands that do not consume may run).
struct StoreDir {
  StoreDir() {
    const std::string key = dir.path() + "/a.key";
    EXPECT_EQ(RunCommand("head -c 32 /dev/urandom > " + key + " && chmod 600 " + key).exit_code, 0);
    options.path = dir.path() + "/store";
    options.key_file = key;
    config =
        WriteConfig("[postgres]\nconninfo = \"dbname=x\"\n[kafka]\nbootstrap = \"127.0.0.1:1\"\n[store]\npath = \"" +
                    options.path + "\"\nkey_file = \"" + key + "\"\n");
  }
  ~StoreDir() { unlink(config.c_str()); }
  StoreDir(const StoreDir&) = delete;
  StoreDir& operator=(const StoreDir&) = delete;
  testing::TempDir dir;
  store::Store::Options options;
  std::string config;
};

// `store shred` crypto-shreds a tenant of a stopped store, and only when
// told --confirm: the tenant's rows are gone, the others' stay, and its key
// record with them (a second shred finds none).
TEST(Cli, StoreShredDeletesATenantOnlyWithConfirm) {
  const StoreDir d;
  const store::Store::Options& o = d.options;
  auto row = [](const std::string& tenant, int id, uint64_t lsn) {
    store::IngestItem item;
    item.position = store::KafkaPosition{"tv.public.items", 0, static_cast<int64_t>(lsn)};
    store::StoreEvent& e = item.event.emplace();
    e.op = 'r';  // a snapshot row: visible at its own LSN, no transaction needed
    e.table = "public.items";
    e.tenant = tenant;
    e.tenant_known = true;
    e.pk = "{\"id\":" + std::to_string(id) + "}";
    e.row = "{\"id\":" + std::to_string(id) + ",\"tenant_id\":\"" + tenant + "\"}";
    e.envelope = "{\"before\":null,\"after\":" + e.row + ",\"op\":\"r\"}";
    e.change_lsn = Lsn(lsn);
    e.commit_time = CommitTime(1000);
    e.snapshot = true;
    return item;
  };
  auto live = [&](const std::string& tenant) {
    auto s = store::Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    int rows = 0;
    EXPECT_TRUE((*s)->StateAt(TenantId(tenant), Lsn(200), {},
                              [&](const store::Row&) {
                                ++rows;
                                return true;
                              })
                    .ok());
    return rows;
  };
  {
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store::IngestItem hb;
    hb.position = store::KafkaPosition{"__debezium-heartbeat.tv", 0, 0};
    store::StoreEvent& h = hb.event.emplace();
    h.kind = store::EventKind::kHeartbeat;
    h.heartbeat_lsn = Lsn(200);
    h.heartbeat_time = CommitTime(2000);
    ASSERT_TRUE((*s)->Apply({row("t1", 1, 100), row("t2", 2, 101), hb}).ok());
  }
  ASSERT_EQ(live("t1"), 1);
  const std::string& config = d.config;
  const std::string shred = "timeout 60 " + Bin() + " --config " + config + " store shred --tenant t1";
  auto r = RunCommand(shred);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("run again with --confirm"), std::string::npos) << r.output;
  EXPECT_EQ(live("t1"), 1) << "nothing shredded without --confirm";
  r = RunCommand(shred + " --confirm");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("tenant t1 shredded"), std::string::npos) << r.output;
  EXPECT_EQ(live("t1"), 0);
  EXPECT_EQ(live("t2"), 1);
  r = RunCommand(shred + " --confirm");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("tenant t1 has no data key"), std::string::npos) << r.output;
}

// `store dead-letters` lists what went to the dead-letter store, as JSON
// lines, beside a running writer (it opens the store read-only).
TEST(Cli, StoreDeadLettersListsThemBesideTheWriter) {
  const StoreDir d;
  const store::Store::Options& o = d.options;
  auto writer = store::Store::Open(o);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  auto bad = [](int32_t partition, int64_t offset, const std::string& reason) {
    store::IngestItem item;
    item.position = store::KafkaPosition{"tv.public.items", partition, offset};
    item.dead_letter_reason = reason;
    item.raw = "{not json";
    return item;
  };
  ASSERT_TRUE((*writer)->Apply({bad(1, 7, "not valid JSON at offset 1"), bad(0, 3, "missing \"source\"")}).ok());
  const std::string& config = d.config;
  const std::string list = "timeout 60 " + Bin() + " --config " + config + " store dead-letters";
  auto r = RunCommand(list);  // stdout: the lines; stderr (also captured): the count
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find(
          "{\"topic\":\"tv.public.items\",\"partition\":0,\"offset\":3,\"reason\":\"missing \\\"source\\\"\"}\n"
          "{\"topic\":\"tv.public.items\",\"partition\":1,\"offset\":7,\"reason\":\"not valid JSON at offset 1\"}\n"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("2 dead letters listed"), std::string::npos) << r.output;
  r = RunCommand(list + " --limit 1 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"offset\":3"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\"offset\":7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 dead letter listed"), std::string::npos) << r.output;
  r = RunCommand(list + " --limit 0 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace timevault
