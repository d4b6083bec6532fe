#include "cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli_common.h"

namespace timevault::cli {
namespace {

// `timevault config`: validates the config and prints the effective settings.
int RunConfigCheck(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  std::printf("config ok\n");
  std::printf("postgres.slot = %s\npostgres.publication = %s\n", cfg->postgres.slot.c_str(),
              cfg->postgres.publication.c_str());
  std::printf("postgres.snapshot_mode = %s\n",
              std::string(config::SnapshotModeName(cfg->postgres.snapshot_mode)).c_str());
  std::printf("kafka.bootstrap = %s\nkafka.topic_prefix = %s\nkafka.linger_ms = %lld\n", cfg->kafka.bootstrap.c_str(),
              cfg->kafka.topic_prefix.c_str(), static_cast<long long>(cfg->kafka.linger_ms));
  std::printf("tenant.column = %s\nstore.path = %s\napi.listen = %s\napi.tokens = %zu\n", cfg->tenant_column.c_str(),
              cfg->store.path.c_str(), cfg->api.listen.c_str(), cfg->api.tokens.size());
  return kExitOk;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"timevault: per-tenant backup and point-in-time recovery for Postgres, built on change data capture"};
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", std::string("timevault ") + TV_VERSION);
  // Global options may also follow the subcommand (`timevault capture
  // --config F`): a subcommand hands the options it does not know to its
  // parent. Subcommands added below inherit the setting.
  app.fallthrough();
  GlobalOptions g;
  app.add_option("-c,--config", g.config_path, "Config file (TOML); default $TIMEVAULT_CONFIG");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error|critical|off (overrides log_level)");
  app.add_option("--log-format", g.log_format, "text, or json: one JSON object per line with the job or request id")
      ->check(CLI::IsMember({"text", "json"}))
      ->envname("TIMEVAULT_LOG_FORMAT");
  app.add_option("--tz", g.tz,
                 "Zone of times given without one (UTC or +HH:MM); overrides api.time_zone. Without either, such "
                 "times are refused")
      ->envname("TIMEVAULT_TZ");
  app.add_option("--metrics-listen", g.metrics_listen,
                 "host:port serving Prometheus metrics of capture, store and run at /metrics (no token)")
      ->envname("TIMEVAULT_METRICS_LISTEN");

  int exit_code = kExitOk;
  app.add_subcommand("config", "Validate the config file and print the effective settings")->callback([&] {
    exit_code = RunConfigCheck(g);
  });
  RegisterServiceCommands(app, g, &exit_code);
  RegisterGapsCommands(app, g, &exit_code);
  RegisterApiCommands(app, g, &exit_code);
  RegisterBackupCommands(app, g, &exit_code);
  RegisterReplayCommands(app, g, &exit_code);
  RegisterCheckCommand(app, g, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace timevault::cli
