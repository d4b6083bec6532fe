#include "timevault/config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace timevault::config {
namespace {

const char* kMinimal = R"(
[postgres]
conninfo = "host=localhost dbname=app"
[kafka]
bootstrap = "127.0.0.1:9092"
[store]
path = "/tmp/store"
key_file = "/tmp/key"
)";

Result<Config> Parse(const std::string& text, const Environment& env = {}) {
  return LoadFromString(text, "test.toml", env);
}

// The error must be InvalidArgument and its message must start with `key`.
void ExpectKeyError(const Result<Config>& r, const std::string& key, const std::string& reason_part) {
  ASSERT_FALSE(r.ok()) << "expected an error for " << key;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(key + ":", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find(reason_part), std::string::npos) << r.status().message();
}

TEST(Config, MinimalHasDefaults) {
  auto c = Parse(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->postgres.conninfo, "host=localhost dbname=app");
  EXPECT_EQ(c->postgres.slot, "timevault");
  EXPECT_EQ(c->tenant_column, "tenant_id");
  EXPECT_EQ(c->kafka.linger_ms, 5);
  EXPECT_EQ(c->kafka.compression, "lz4");
  EXPECT_FALSE(c->kafka.schemas_enable);
  EXPECT_EQ(c->postgres.snapshot_mode, SnapshotMode::kInitial);
  EXPECT_EQ(c->store.retention_days, 30);
  EXPECT_EQ(c->api.listen, "127.0.0.1:8080");
}

TEST(Config, ExampleFileLoadsAndDocumentsEveryKey) {
  std::string path = std::string(TV_SOURCE_DIR) + "/config/timevault.example.toml";
  auto c = Load(path, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->api.tokens.size(), 1u);
  EXPECT_EQ(c->api.tokens[0].role, Role::kOperator);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& key : KnownKeys()) {
    std::string leaf = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    EXPECT_NE(text.str().find("\n" + leaf + " = "), std::string::npos) << key << " is not in the example";
  }
}

TEST(Config, UnknownKeyNamesIt) {
  ExpectKeyError(Parse(std::string(kMinimal) + "\n[kafka.extra]\n"), "kafka.extra", "unknown key");
  ExpectKeyError(Parse(std::string(kMinimal) + "lingr_ms = 3\n"), "store.lingr_ms", "unknown key");
  ExpectKeyError(Parse(std::string("bogus = 1\n") + kMinimal), "bogus", "unknown key");
  ExpectKeyError(Parse(std::string(kMinimal) + "[nosuch]\nx = 1\n"), "nosuch", "unknown key");
}

TEST(Config, WrongTypeNamesKeyAndTypes) {
  std::string t = kMinimal;
  t.replace(t.find("bootstrap = \"127.0.0.1:9092\""), 28, "bootstrap = \"b\"\nlinger_ms = \"5\"");
  ExpectKeyError(Parse(t), "kafka.linger_ms", "expected an integer, got a string");
  std::string t2 = kMinimal;
  t2.replace(t2.find("bootstrap = \"127.0.0.1:9092\""), 28, "bootstrap = 9092");
  ExpectKeyError(Parse(t2), "kafka.bootstrap", "expected a string, got an integer");
  ExpectKeyError(Parse(std::string("[postgres]\ntables = [\"a.b\", 3]\n") + std::string(kMinimal).substr(11)),
                 "postgres.tables", "element 1");
}

TEST(Config, MissingRequiredNamesKey) {
  ExpectKeyError(Parse("[kafka]\nbootstrap = \"x\"\n[store]\npath = \"p\"\nkey_file = \"k\"\n"), "postgres.conninfo",
                 "missing required value");
  ExpectKeyError(Parse("[postgres]\nconninfo = \"x\"\n[store]\npath = \"p\"\nkey_file = \"k\"\n"), "kafka.bootstrap",
                 "missing required value");
  ExpectKeyError(Parse("[postgres]\nconninfo = \"x\"\n[kafka]\nbootstrap = \"b\"\n[store]\npath = \"p\"\n"),
                 "store.key_file", "TIMEVAULT_STORE_KEY_FILE");
}

TEST(Config, BadValuesNameKey) {
  ExpectKeyError(Parse(std::string("log_level = \"loud\"\n") + kMinimal), "log_level", "not one of");
  ExpectKeyError(Parse(std::string(kMinimal) + "[tenant]\ncolumn = \"Tenant Id\"\n"), "tenant.column", "SQL name");
  ExpectKeyError(Parse(std::string(kMinimal) + "[api]\nlisten = \"nohost\"\n"), "api.listen", "host:port");
  ExpectKeyError(Parse(std::string(kMinimal) + "[api]\ntls_cert = \"c.pem\"\n"), "api.tls_key", "together");
  ExpectKeyError(Parse(std::string(kMinimal) + "[[api.tokens]]\nname = \"a\"\nsha256 = \"xyz\"\nrole = \"admin\"\n"
                                               "tenants = [\"*\"]\n"),
                 "api.tokens[0].sha256", "64");
  ExpectKeyError(Parse(std::string(kMinimal) + "[[api.tokens]]\nname = \"a\"\nsha256 = \"" + std::string(64, 'a') +
                       "\"\nrole = \"root\"\ntenants = [\"*\"]\n"),
                 "api.tokens[0].role", "viewer, operator, admin");
}

TEST(Config, DuplicateAndEmptyTokensAreRefused) {
  auto token = [](const std::string& name, const std::string& sha) {
    return "[[api.tokens]]\nname = \"" + name + "\"\nsha256 = \"" + sha + "\"\nrole = \"viewer\"\ntenants = [\"a\"]\n";
  };
  const std::string a(64, 'a'), b(64, 'b');
  ExpectKeyError(Parse(std::string(kMinimal) + token("x", a) + token("x", b)), "api.tokens[1].name", "also");
  ExpectKeyError(Parse(std::string(kMinimal) + token("x", a) + token("y", a)), "api.tokens[1].sha256", "same token");
  ExpectKeyError(
      Parse(std::string(kMinimal) + token("x", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
      "api.tokens[0].sha256", "empty token");
  EXPECT_TRUE(Parse(std::string(kMinimal) + token("x", a) + token("y", b)).ok());
}

TEST(Config, EnvironmentOverrides) {
  auto c = Parse(kMinimal, {{"TIMEVAULT_KAFKA_LINGER_MS", "25"},
                            {"TIMEVAULT_KAFKA_SCHEMAS_ENABLE", "true"},
                            {"TIMEVAULT_POSTGRES_TABLES", "public.a,app.b"},
                            {"TIMEVAULT_TENANT_COLUMN", "org_id"},
                            {"TIMEVAULT_CONFIG", "/ignored/path"},
                            {"PATH", "/bin"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kafka.linger_ms, 25);
  EXPECT_TRUE(c->kafka.schemas_enable);
  EXPECT_EQ(c->postgres.tables, (std::vector<std::string>{"public.a", "app.b"}));
  EXPECT_EQ(c->tenant_column, "org_id");
}

// The command line's own variables are not settings: with TIMEVAULT_TOKEN or
// TIMEVAULT_TZ set, every command used to refuse its config.
TEST(Config, TheCommandLinesOwnVariablesAreNotSettings) {
  auto c = Parse(kMinimal, {{"TIMEVAULT_TOKEN", "secret"},
                            {"TIMEVAULT_TZ", "UTC"},
                            {"TIMEVAULT_LOG_FORMAT", "json"},
                            {"TIMEVAULT_METRICS_LISTEN", "127.0.0.1:9100"},
                            {"TIMEVAULT_CONFIG", "/ignored/path"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->api.url.empty());
  auto u = Parse(kMinimal, {{"TIMEVAULT_API_URL", "http://127.0.0.1:8080"}});
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->api.url, "http://127.0.0.1:8080");
  for (const char* bad : {"127.0.0.1:8080", "http://", "ftp://h:1", "http://h:1/v1", "https://h:1?x"}) {
    ExpectKeyError(Parse(kMinimal, {{"TIMEVAULT_API_URL", bad}}), "api.url", "is not http://host:port");
  }
}

TEST(Config, EnvironmentSuppliesRequired) {
  auto c = Parse("[kafka]\nbootstrap = \"b\"\n[store]\npath = \"p\"\nkey_file = \"k\"\n",
                 {{"TIMEVAULT_POSTGRES_CONNINFO", "dbname=x"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->postgres.conninfo, "dbname=x");
}

TEST(Config, BadEnvironmentOverrideNamesKeyAndVariable) {
  ExpectKeyError(Parse(kMinimal, {{"TIMEVAULT_KAFKA_LINGER_MS", "soon"}}), "kafka.linger_ms",
                 "TIMEVAULT_KAFKA_LINGER_MS='soon' is not an integer");
  ExpectKeyError(Parse(kMinimal, {{"TIMEVAULT_KAFKA_SCHEMAS_ENABLE", "yes please"}}), "kafka.schemas_enable",
                 "boolean");
  ExpectKeyError(Parse(kMinimal, {{"TIMEVAULT_KAFKA_LINGER_MS", "-4"}}), "kafka.linger_ms", "at least 0");
  auto r = Parse(kMinimal, {{"TIMEVAULT_KAFKA_LINGER", "5"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("TIMEVAULT_KAFKA_LINGER:", 0), 0u) << r.status().message();
}

TEST(Config, InvalidTomlGivesPosition) {
  auto r = Parse("[postgres\nconninfo=1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("test.toml:1:", 0), 0u) << r.status().message();
}

TEST(Config, MissingFileIsClear) {
  auto r = Load("/nonexistent/timevault.toml", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/timevault.toml"), std::string::npos);
}

}  // namespace
}  // namespace timevault::config

namespace timevault::config {
namespace {

// Issue 18: kafka.properties that would let capture skip a message or the
// store lose one are refused at load, naming the key.
TEST(Config, DeliveryWeakeningKafkaPropertiesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> weak = {
      {"enable.idempotence", "false"},
      {"acks", "1"},
      {"message.timeout.ms", "300000"},
      {"delivery.timeout.ms", "5000"},
      {"max.in.flight", "6"},
      {"retries", "3"},
      {"enable.auto.commit", "true"},
      {"auto.offset.reset", "latest"},
      {"auto.offset.reset", "earliest"},
  };
  for (const auto& [key, value] : weak) {
    const std::string text = std::string(kMinimal) + "\n[kafka.properties]\n\"" + key + "\" = \"" + value + "\"\n";
    ExpectKeyError(Parse(text), "kafka.properties." + key, "weakens delivery");
  }
  auto ok =
      Parse(std::string(kMinimal) +
            "\n[kafka.properties]\n\"acks\" = \"all\"\n\"message.timeout.ms\" = \"0\"\n\"max.in.flight\" = \"5\"\n"
            "\"auto.offset.reset\" = \"error\"\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->postgres.on_slot_loss, SlotLossAction::kResnapshot);
  EXPECT_EQ(ok->kafka.topic_retention_ms, -1);
  ExpectKeyError(Parse(std::string("[postgres]\non_slot_loss = \"ignore\"\n") + std::string(kMinimal).substr(12)),
                 "postgres.on_slot_loss", "not one of");
}

}  // namespace
}  // namespace timevault::config
