#include "cli_common.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <csignal>
#include <cstdio>

#include "timevault/core/log.h"

namespace timevault::cli {

namespace {
// The zone zone-less command-line times are read in (LoadConfig; empty: none).
std::string g_time_zone;
}  // namespace

std::optional<CommitTime> ParseCliTime(std::string_view text) {
  std::optional<int32_t> offset;
  if (!g_time_zone.empty()) offset = ParseUtcOffset(g_time_zone);
  return CommitTime::ParseStrict(text, offset);
}

std::string CliTimeHint() {
  if (!g_time_zone.empty()) {
    return "a valid ISO 8601 time (like 2026-11-27T08:00:00Z; without a zone it is read at " + g_time_zone +
           "; 2026-02-31 is refused)";
  }
  return "a valid ISO 8601 time with a zone (like 2026-11-27T08:00:00Z; 2026-02-31 is refused, and a time without Z "
         "or an offset too unless --tz or api.time_zone states the zone)";
}

std::optional<config::Config> LoadConfig(const GlobalOptions& g, int* exit_code) {
  std::string path = g.config_path;
  auto env = config::ProcessEnvironment();
  if (path.empty()) {
    if (auto it = env.find("TIMEVAULT_CONFIG"); it != env.end()) path = it->second;
  }
  if (path.empty()) {
    std::fprintf(stderr, "timevault: --config FILE (or TIMEVAULT_CONFIG) is required\n");
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  auto loaded = config::Load(path, env);
  if (!loaded.ok()) {
    std::fprintf(stderr, "timevault: config error: %s\n", loaded.status().message().c_str());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (!g.tz.empty()) {
    if (!ParseUtcOffset(g.tz)) {
      std::fprintf(stderr,
                   "timevault: --tz '%s': expected UTC or a fixed offset like +02:00 (named zones are refused: "
                   "across a DST change a local time is ambiguous)\n",
                   g.tz.c_str());
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    loaded->api.time_zone = g.tz;  // `run`/`serve`: the API reads zone-less times in it too
  }
  g_time_zone = loaded->api.time_zone;
  std::string level = g.log_level.empty() ? loaded->log_level : g.log_level;
  if (auto st = SetupLogging(level, g.log_format); !st.ok()) {
    std::fprintf(stderr, "timevault: %s\n", st.message().c_str());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return std::move(loaded).value();
}

std::atomic<bool> g_stop{false};

namespace {
void OnSignal(int) { g_stop.store(true); }
}  // namespace

// SIGTERM and SIGINT ask the running service to finish cleanly.
void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

store::Store::Options StoreOptions(const config::Config& cfg, bool read_only) {
  store::Store::Options options;
  options.path = cfg.store.path;
  options.key_file = cfg.store.key_file;
  options.tenant_column = cfg.tenant_column;
  options.retention_days = cfg.store.retention_days;
  options.memory_budget_mb = static_cast<size_t>(cfg.store.memory_mb);
  options.min_free_mb = static_cast<size_t>(cfg.store.min_free_mb);
  options.read_only = read_only;
  return options;
}

Result<std::unique_ptr<store::Store>> OpenStore(const config::Config& cfg, bool read_only) {
  return store::Store::Open(StoreOptions(cfg, read_only));
}

void AddPendingCommand(CLI::App& app, const GlobalOptions& g, int* exit_code, const char* name, const char* description,
                       const char* issue) {
  auto* sub = app.add_subcommand(name, description);
  sub->allow_extras();
  sub->callback([&g, exit_code, name, issue] {
    if (!LoadConfig(g, exit_code)) return;
    std::fprintf(stderr, "timevault %s: not built yet (arrives with the %s issue)\n", name, issue);
    *exit_code = kExitFailure;
  });
}

}  // namespace timevault::cli

namespace timevault::cli {

std::unique_ptr<api::CliAudit> BeginAudit(const config::Config& cfg, const std::string& command,
                                          const std::string& tenant,
                                          const std::vector<std::pair<std::string, std::string>>& args) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [k, v] : args) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  auto audit = api::CliAudit::Begin(cfg, command, tenant, std::string(buf.GetString(), buf.GetSize()));
  if (!audit.ok()) {
    std::fprintf(stderr, "timevault %s: refused, nothing was changed: %s\n", command.c_str(),
                 audit.status().ToString().c_str());
    return nullptr;
  }
  return std::move(audit).value();
}

}  // namespace timevault::cli
