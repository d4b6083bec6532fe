// Preflight: what `timevault check` and GET /v1/check report about a setup
// before `run` meets it (docs/check.md). Each check reads only: Postgres
// catalogs and settings, Kafka metadata and topic configs, file modes, the
// config. Every network step has a timeout, so a dead server costs seconds.
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "timevault/config/config.h"

namespace timevault::api {

enum class CheckLevel { kOk, kWarning, kError };
std::string_view CheckLevelName(CheckLevel level);  // "ok", "warning", "error"

struct CheckResult {
  std::string name;  // e.g. "postgres.wal_level"
  CheckLevel level = CheckLevel::kOk;
  std::string detail;  // what was found
  std::string fix;     // one line; empty when ok
};

// Runs every check of the config's setup, in a fixed order.
std::vector<CheckResult> RunPreflight(const config::Config& cfg);

// {"status": ok|warning|error, "checks": [{name, level, detail, fix}]}: the
// status is the worst level.
std::string PreflightJson(const std::vector<CheckResult>& checks);
CheckLevel WorstLevel(const std::vector<CheckResult>& checks);

}  // namespace timevault::api
