// Runs the real timevault binary: exit codes and messages of the command line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "support/process.h"
#include "support/testenv.h"

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

// `store rekey` re-wraps the keys and does not start the service (whose
// broker here does not exist: it would run until the timeout).
TEST(Cli, StoreRekeyMovesTheStoreToTheNewMasterKey) {
  testing::TempDir dir;
  const std::string store = dir.path() + "/store", a = dir.path() + "/a.key", b = dir.path() + "/b.key",
                    c = dir.path() + "/c.key";
  for (const auto& k : {a, b, c}) ASSERT_EQ(RunCommand("head -c 32 /dev/urandom > " + k).exit_code, 0);
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

}  // namespace
}  // namespace timevault
