// Runs the real timevault binary: exit codes and messages of the command line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

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

}  // namespace
}  // namespace timevault
