// What every command shares: global options, config loading, the stop flag
// and store opening. Each command group lives in its own cmd_*.cc file and
// registers its subcommands with Register*Commands (called by cli.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "timevault/api/audit_check.h"
#include "timevault/config/config.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/store/store.h"

namespace timevault::cli {

struct GlobalOptions {
  std::string config_path;
  std::string log_level;
  std::string log_format = "text";  // text | json (SetupLogging)
  std::string metrics_listen;       // host:port for the services' Prometheus metrics (metrics_http.h)
  std::string tz;                   // --tz: overrides api.time_zone ("UTC", "+02:00")
};

// Loads the config named by --config or $TIMEVAULT_CONFIG and sets up
// logging; on failure prints the reason and sets *exit_code (kExitUsage).
std::optional<config::Config> LoadConfig(const GlobalOptions& g, int* exit_code);

// A time typed on the command line (--at, --from, --to): ISO 8601 with a
// zone; a date and time without one only when --tz or api.time_zone states
// the zone (LoadConfig records it). nullopt otherwise.
std::optional<CommitTime> ParseCliTime(std::string_view text);
// What to tell a person whose time ParseCliTime refused.
std::string CliTimeHint();

// Set by SIGTERM/SIGINT once InstallStopHandlers ran: services finish cleanly.
extern std::atomic<bool> g_stop;
void InstallStopHandlers();

// Opens the store of the config (read_only: a RocksDB secondary that follows
// a running `timevault store`).
store::Store::Options StoreOptions(const config::Config& cfg, bool read_only);
Result<std::unique_ptr<store::Store>> OpenStore(const config::Config& cfg, bool read_only);

// Records a command-line mutation in the API's audit trail before it runs:
// null (with the reason on stderr) when the entry cannot be written, and the
// mutation must then not run (fail closed). `args` are name/value pairs.
std::unique_ptr<api::CliAudit> BeginAudit(const config::Config& cfg, const std::string& command,
                                          const std::string& tenant,
                                          const std::vector<std::pair<std::string, std::string>>& args);

// A subcommand whose issue has not built it yet: says so and exits 1.
void AddPendingCommand(CLI::App& app, const GlobalOptions& g, int* exit_code, const char* name, const char* description,
                       const char* issue);

// Command groups (one file each). Each adds its subcommands to `app`; the
// callbacks store their exit code in *exit_code.
void RegisterServiceCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);    // cmd_service.cc
void RegisterGapsCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);       // cmd_gaps.cc
void RegisterReplayCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);     // cmd_replay.cc
void RegisterBackupCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);     // cmd_backup.cc
void RegisterApiCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);        // cmd_api.cc
void RegisterApiClientCommands(CLI::App& app, const GlobalOptions& g, int* exit_code);  // cmd_api_client.cc
void RegisterCheckCommand(CLI::App& app, const GlobalOptions& g, int* exit_code);       // cmd_check.cc

}  // namespace timevault::cli
