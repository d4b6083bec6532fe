// `timevault check` against the real test Postgres and Kafka: a broken setup
// is named check by check and exits 1; a sound one exits 0. Also the global
// options: --version, --config after the subcommand, TIMEVAULT_CONFIG.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "support/process.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"

namespace timevault {
namespace {

using testing::Env;
using testing::RunCommand;
using testing::TempDir;
using testing::TestDatabase;

std::string Bin() { return std::string("env -u TIMEVAULT_CONFIG ") + TV_BINARY; }

struct CheckSetup {
  std::string user = "postgres";
  std::string kafka;
  std::string token_sha;
  int key_mode = 0600;
};

// Writes a config for `db` and a key file into `dir`; returns the config path.
std::string WriteConfig(const TempDir& dir, const TestDatabase& db, const CheckSetup& s) {
  std::string key = dir.path() + "/master.key";
  {
    std::ofstream k(key, std::ios::binary);
    k << std::string(crypto::Sha256Hex("key material").substr(0, 16)) << std::string(16, '\x01');
  }
  chmod(key.c_str(), s.key_mode);
  std::string path = dir.path() + "/timevault.toml";
  std::ofstream(path) << "[postgres]\nconninfo = \"host=" << Env().pg_host << " port=" << Env().pg_port
                      << " user=" << s.user << " dbname=" << db.name() << "\"\nslot = \"" << db.name()
                      << "\"\npublication = \"" << db.name() << "\"\n[kafka]\nbootstrap = \"" << s.kafka
                      << "\"\ntopic_prefix = \"" << db.name() << "\"\n[store]\npath = \"" << dir.path()
                      << "/store\"\nkey_file = \"" << key << "\"\n[api]\nlisten = \"127.0.0.1:0\"\n"
                      << "[[api.tokens]]\nname = \"ops\"\nsha256 = \"" << s.token_sha
                      << "\"\nrole = \"admin\"\ntenants = [\"*\"]\n";
  return path;
}

// name -> {level, detail}
std::map<std::string, std::pair<std::string, std::string>> Checks(const std::string& json) {
  rapidjson::Document d;
  size_t start = json.find("{\"status\"");  // the document, whatever precedes it
  d.Parse(json.c_str() + (start == std::string::npos ? 0 : start));
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("checks")) return out;
  for (const auto& c : d["checks"].GetArray()) {
    out[c["name"].GetString()] = {c["level"].GetString(), c["detail"].GetString()};
  }
  return out;
}

TEST(Check, BrokenSetupIsNamedAndExitsOne) {
  ASSERT_NO_FATAL_FAILURE(Env());
  TestDatabase db("check_bad");
  auto conn = db.Connect();
  ASSERT_TRUE(conn.Run("CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL)").ok());
  ASSERT_TRUE(conn.Run("CREATE TABLE audit_events (tenant_id text, note text)").ok());  // no key
  ASSERT_TRUE(conn.Run("CREATE TABLE countries (code text PRIMARY KEY)").ok());         // no tenant
  std::string role = testing::UniqueName("check_role");
  auto admin = pg::PgConn::Connect(Env().Conninfo());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(admin->Run("CREATE ROLE " + role + " LOGIN NOREPLICATION").ok());
  TempDir dir;
  CheckSetup s;
  s.user = role;
  s.kafka = "127.0.0.1:1";             // nothing listens there
  s.token_sha = std::string(64, '0');  // the example config's placeholder
  s.key_mode = 0644;
  std::string cfg = WriteConfig(dir, db, s);
  // --config after the subcommand.
  auto r = RunCommand(Bin() + " check --output json --config " + cfg + " 2>/dev/null");
  (void)admin->Run("DROP ROLE " + role);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  auto checks = Checks(r.output);
  ASSERT_FALSE(checks.empty()) << r.output;
  EXPECT_EQ(checks["postgres.connect"].first, "ok");
  EXPECT_EQ(checks["postgres.wal_level"].first, "ok");
  EXPECT_EQ(checks["postgres.replication"].first, "error") << checks["postgres.replication"].second;
  EXPECT_EQ(checks["postgres.publication"].first, "error") << "FOR ALL TABLES needs a superuser";
  EXPECT_EQ(checks["postgres.session_replication_role"].first, "warning");
  EXPECT_EQ(checks["postgres.primary_keys"].first, "warning");
  EXPECT_NE(checks["postgres.primary_keys"].second.find("public.audit_events"), std::string::npos);
  EXPECT_EQ(checks["postgres.primary_keys"].second.find("public.orders"), std::string::npos);
  EXPECT_EQ(checks["postgres.tenant_column"].first, "warning");
  EXPECT_NE(checks["postgres.tenant_column"].second.find("public.countries"), std::string::npos);
  EXPECT_EQ(checks["kafka.reachable"].first, "error");
  EXPECT_EQ(checks["store.key_file"].first, "error");
  EXPECT_EQ(checks["api.tokens"].first, "error");
  // The text output gives a fix per problem.
  auto text = RunCommand(Bin() + " --config " + cfg + " check");
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.output.find("fix: chmod 600"), std::string::npos) << text.output;
}

TEST(Check, SoundSetupExitsZero) {
  ASSERT_NO_FATAL_FAILURE(Env());
  TestDatabase db("check_ok");
  auto conn = db.Connect();
  ASSERT_TRUE(conn.Run("CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL)").ok());
  TempDir dir;
  CheckSetup s;
  s.kafka = Env().kafka_bootstrap;
  s.token_sha = crypto::Sha256Hex(testing::UniqueName("a-real-secret"));
  std::string cfg = WriteConfig(dir, db, s);
  // The config from the environment.
  auto r = RunCommand("TIMEVAULT_CONFIG=" + cfg + " " + TV_BINARY + " check --output json 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto checks = Checks(r.output);
  for (const char* name :
       {"postgres.connect", "postgres.wal_level", "postgres.replication", "postgres.slot", "postgres.primary_keys",
        "postgres.tenant_column", "kafka.reachable", "store.key_file", "api.tokens", "api.tls"}) {
    EXPECT_EQ(checks[name].first, "ok") << name << ": " << checks[name].second;
  }
  EXPECT_NE(checks["kafka.retention"].first, "error");
}

TEST(Check, VersionAndConfigAnywhere) {
  auto v = RunCommand(Bin() + " --version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.output.rfind("timevault ", 0), 0u) << v.output;
  TempDir dir;
  std::string path = dir.path() + "/c.toml";
  std::ofstream(path) << "[postgres]\nconninfo = \"dbname=x\"\n[kafka]\nbootstrap = \"b:1\"\n[store]\npath = "
                         "\"/tmp/s\"\nkey_file = \"/tmp/k\"\n";
  for (const std::string& args : {" --config " + path + " config", " config --config " + path, " config -c " + path}) {
    auto r = RunCommand(Bin() + args);
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.output;
    EXPECT_NE(r.output.find("config ok"), std::string::npos) << args;
  }
  auto env = RunCommand("TIMEVAULT_CONFIG=" + path + " " + TV_BINARY + " config");
  EXPECT_EQ(env.exit_code, 0) << env.output;
}

}  // namespace
}  // namespace timevault
