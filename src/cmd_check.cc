// `timevault check`: the preflight (api/include/timevault/api/preflight.h).
// Prints every check with ok/warning/error and the one-line fix; exits 1 when
// any check is an error, so scripts can refuse to start a broken setup.
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.h"
#include "timevault/api/preflight.h"

namespace timevault::cli {
namespace {

int RunCheck(const GlobalOptions& g, const std::string& output) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  std::vector<api::CheckResult> checks = api::RunPreflight(*cfg);
  api::CheckLevel worst = api::WorstLevel(checks);
  if (output == "json") {
    std::printf("%s\n", api::PreflightJson(checks).c_str());
  } else {
    int errors = 0, warnings = 0;
    for (const auto& c : checks) {
      const char* label = c.level == api::CheckLevel::kOk        ? "ok     "
                          : c.level == api::CheckLevel::kWarning ? "WARNING"
                                                                 : "ERROR  ";
      std::printf("%s  %-36s %s\n", label, c.name.c_str(), c.detail.c_str());
      if (!c.fix.empty()) std::printf("         %-36s fix: %s\n", "", c.fix.c_str());
      errors += c.level == api::CheckLevel::kError;
      warnings += c.level == api::CheckLevel::kWarning;
    }
    std::printf("\n%zu checks: %d error(s), %d warning(s)\n", checks.size(), errors, warnings);
  }
  return worst == api::CheckLevel::kError ? kExitFailure : kExitOk;
}

}  // namespace

void RegisterCheckCommand(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  auto output = std::make_shared<std::string>("text");
  auto* sub = app.add_subcommand(
      "check", "Preflight: Postgres (wal_level, REPLICATION, slot, keys, tenant column), Kafka, key file, tokens");
  sub->add_option("--output", *output, "text or json")->check(CLI::IsMember({"text", "json"}));
  sub->callback([&g, exit_code, output] { *exit_code = RunCheck(g, *output); });
}

}  // namespace timevault::cli
