// Refused tables are reported where an operator looks: two published tables
// whose topic names collide after Debezium's sanitising are refused by
// capture, named by /v1/health (critical) and `timevault check` (error), and
// every other table streams. PostGIS's spatial_ref_sys is left out silently,
// as Debezium does. Real Postgres, Kafka, capture, store and `timevault serve`.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/capture_harness.h"
#include "support/process.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"

namespace timevault::testing {
namespace {

using namespace std::chrono_literals;

std::string Token(const std::string& name, const std::string& secret, const std::string& role,
                  const std::string& tenants) {
  return "[[api.tokens]]\nname = \"" + name + "\"\nsha256 = \"" + crypto::Sha256Hex(secret) + "\"\nrole = \"" + role +
         "\"\ntenants = " + tenants + "\n";
}

struct Reply {
  int status = -1;
  std::string body;
  rapidjson::Document json;
};

Reply Get(int port, const std::string& path, const std::string& token) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60);
  Reply out;
  auto r = client.Get(path, httplib::Headers{{"Authorization", "Bearer " + token}});
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json.Parse(out.body.data(), out.body.size());
  return out;
}

TEST(RefusedTables, HealthAndCheckNameThemAndTheOthersStream) {
  const int port = FreePort();
  CaptureOptions o;
  o.extra = "[api]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n" +
            Token("admin", "admin-secret-1", "admin", "[\"*\"]") +
            Token("viewer", "view-secret-2", "viewer", "[\"t\"]");
  CaptureHarness h(o);
  h.Exec(R"SQL(
    CREATE TABLE "x y" (id int PRIMARY KEY, tenant_id text NOT NULL);
    CREATE TABLE "x_y" (id int PRIMARY KEY, tenant_id text NOT NULL);
    CREATE TABLE ok_t (id int PRIMARY KEY, tenant_id text NOT NULL);
    CREATE TABLE spatial_ref_sys (srid int PRIMARY KEY, tenant_id text NOT NULL);
    INSERT INTO "x y" VALUES (1, 't');
    INSERT INTO ok_t VALUES (1, 't');
    INSERT INTO spatial_ref_sys VALUES (4326, 't');
  )SQL");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  h.Exec(
      "INSERT INTO ok_t VALUES (2, 't'); INSERT INTO x_y VALUES (1, 't'); INSERT INTO spatial_ref_sys VALUES (1, 't')");

  // The others stream; the refused tables and spatial_ref_sys produce nothing.
  auto ok = h.Read({h.Topic("ok_t")}, 2);
  EXPECT_EQ(ok.size(), 2u);
  EXPECT_TRUE(h.Read({h.Topic("x_y"), h.Topic("spatial_ref_sys")}, 0, 1500).empty());

  // `timevault check`: an error naming both tables and the topic; exit 1.
  Process check;
  ASSERT_TRUE(check.Start({TV_BINARY, "--config", h.config_path(), "check", "--output", "json"},
                          h.store_path() + "-check.log"));
  EXPECT_EQ(check.Wait(120), 1) << check.ReadLog();
  std::string out = check.ReadLog();
  rapidjson::Document d;
  d.Parse(out.data(), out.size());
  ASSERT_TRUE(d.IsObject() && d.HasMember("checks")) << out;
  bool found = false;
  for (const auto& c : d["checks"].GetArray()) {
    if (std::string(c["name"].GetString()) != "capture.refused_tables") continue;
    found = true;
    EXPECT_STREQ(c["level"].GetString(), "error");
    const std::string detail = c["detail"].GetString();
    EXPECT_NE(detail.find("2 table(s) refused"), std::string::npos) << detail;
    EXPECT_NE(detail.find(R"("public"."x y" and "public"."x_y" all map to topic )" + h.prefix() + ".public.x_y"),
              std::string::npos)
        << detail;
    EXPECT_EQ(detail.find("spatial_ref_sys"), std::string::npos) << detail;
  }
  EXPECT_TRUE(found) << out;

  // /v1/health: critical, the tables named for an all-tenant token, the count
  // only for a scoped one.
  for (int i = 0; i < 300 && access((h.store_path() + "/CURRENT").c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  Process serve;
  ASSERT_TRUE(serve.Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log"));
  Reply all;
  for (auto deadline = std::chrono::steady_clock::now() + 90s; std::chrono::steady_clock::now() < deadline;) {
    all = Get(port, "/v1/health", "admin-secret-1");
    if (all.status == 200 || !serve.running()) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(all.status, 200) << all.body << serve.ReadLog();
  ASSERT_TRUE(all.json.IsObject()) << all.body;
  const auto& cap = all.json["capture"];
  ASSERT_TRUE(cap.HasMember("refused_table_count")) << all.body;
  EXPECT_EQ(cap["refused_table_count"].GetUint64(), 2u) << all.body;
  ASSERT_TRUE(cap.HasMember("refused_tables") && cap["refused_tables"].Size() == 2) << all.body;
  EXPECT_STREQ(cap["refused_tables"][0]["table"].GetString(), "public.x y");
  EXPECT_STREQ(cap["refused_tables"][1]["table"].GetString(), "public.x_y");
  EXPECT_EQ(std::string(cap["refused_tables"][1]["topic"].GetString()), h.prefix() + ".public.x_y");
  EXPECT_STREQ(all.json["status"].GetString(), "critical");
  bool problem = false;
  for (const auto& p : all.json["problems"].GetArray()) {
    problem |= std::string(p.GetString()).find("2 published table(s) refused") != std::string::npos;
  }
  EXPECT_TRUE(problem) << all.body;

  Reply scoped = Get(port, "/v1/health", "view-secret-2");
  ASSERT_EQ(scoped.status, 200) << scoped.body;
  EXPECT_EQ(scoped.json["capture"]["refused_table_count"].GetUint64(), 2u) << scoped.body;
  EXPECT_FALSE(scoped.json["capture"].HasMember("refused_tables")) << scoped.body;
  EXPECT_EQ(scoped.body.find("x_y"), std::string::npos) << scoped.body;

  // Renaming one of them ends the refusal in both reports.
  h.Exec(R"SQL(ALTER TABLE "x y" RENAME TO x_z)SQL");
  Reply after = Get(port, "/v1/health", "admin-secret-1");
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.json["capture"]["refused_table_count"].GetUint64(), 0u) << after.body;
  EXPECT_FALSE(after.json["capture"].HasMember("refused_tables")) << after.body;
  EXPECT_EQ(serve.Stop(30), 0) << serve.ReadLog();
}

}  // namespace
}  // namespace timevault::testing
