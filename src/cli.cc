#include "cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "timevault/capture/capture.h"
#include "timevault/config/config.h"
#include "timevault/core/log.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::cli {
namespace {

struct GlobalOptions {
  std::string config_path;
  std::string log_level;
};

// A subcommand: name, description, and the issue that builds it while it is
// not built yet (empty once it is).
struct Command {
  const char* name;
  const char* description;
  const char* pending_issue;
};

constexpr Command kCommands[] = {
    {"capture", "Tail Postgres logical replication and produce Debezium JSON change events to Kafka", "Capture"},
    {"store", "Consume change events from Kafka into the time-indexed RocksDB store", ""},
    {"serve", "Run the operators' HTTP API", "API"},
    {"run", "Run capture, store and serve in one process", "API"},
    {"backup", "Full and incremental backups: full|incremental|list|verify|expire", "Replay"},
    {"restore", "Restore a tenant from a backup (diff and apply, snapshot first)", "Replay"},
    {"pitr", "Point-in-time recovery of a tenant: preview|execute", "Replay"},
    {"snapshots", "List and inspect the snapshots taken before every apply", "Replay"},
    {"rollback", "Put a snapshot back (takes its own snapshot first)", "Replay"},
    {"state", "Write a tenant's rows as of a time (jsonl or csv)", "Replay"},
    {"history", "Write a tenant's change events in commit order", "Replay"},
    {"plan", "Disaster-recovery plans and their tests", "API"},
    {"health", "Backup, storage, RTO/RPO and capture health", "API"},
    {"audit", "Read and verify the audit trail", "API"},
};

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
  std::string level = g.log_level.empty() ? loaded->log_level : g.log_level;
  if (auto st = SetupLogging(level); !st.ok()) {
    std::fprintf(stderr, "timevault: %s\n", st.message().c_str());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return std::move(loaded).value();
}

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

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// SIGTERM and SIGINT ask the running service to finish cleanly.
void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

int RunCapture(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  InstallStopHandlers();
  capture::CaptureMetrics metrics;
  Status st = capture::Run(*cfg, &metrics, &g_stop);
  if (!st.ok()) {
    spdlog::critical("capture: {}", st.ToString());
    return kExitFailure;
  }
  spdlog::info("capture: stopped cleanly (confirmed {} events)", metrics.acked_events.load());
  return kExitOk;
}

Result<std::unique_ptr<store::Store>> OpenStore(const config::Config& cfg, bool read_only) {
  store::Store::Options options;
  options.path = cfg.store.path;
  options.key_file = cfg.store.key_file;
  options.tenant_column = cfg.tenant_column;
  options.retention_days = cfg.store.retention_days;
  options.read_only = read_only;
  return store::Store::Open(options);
}

// Folds history older than the retention window, hourly, until stopped.
void RetentionLoop(store::Store* st, const std::atomic<bool>* stop) {
  using namespace std::chrono_literals;
  auto next = std::chrono::steady_clock::now() + 1min;
  while (!stop->load()) {
    std::this_thread::sleep_for(200ms);
    if (std::chrono::steady_clock::now() < next) continue;
    next = std::chrono::steady_clock::now() + 1h;
    if (Status s = st->RunRetention(SystemClock().Now()); !s.ok()) spdlog::error("store: retention: {}", s.ToString());
  }
}

int RunStore(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto opened = OpenStore(*cfg, false);
  if (!opened.ok()) {
    spdlog::critical("store: cannot open {}: {}", cfg->store.path, opened.status().ToString());
    return kExitFailure;
  }
  InstallStopHandlers();
  std::thread retention(RetentionLoop, opened->get(), &g_stop);
  store::IngestMetrics metrics;
  Status st = store::RunIngest(*cfg, opened->get(), &metrics, &g_stop);
  g_stop.store(true);
  retention.join();
  if (!st.ok()) {
    spdlog::critical("store: {}", st.ToString());
    return kExitFailure;
  }
  spdlog::info("store: stopped cleanly ({} messages consumed, {} dead letters)", metrics.consumed.load(),
               metrics.dead_letters.load());
  return kExitOk;
}

int RunPending(const GlobalOptions& g, const Command& c) {
  int code = kExitOk;
  if (!LoadConfig(g, &code)) return code;
  std::fprintf(stderr, "timevault %s: not built yet (arrives with the %s issue)\n", c.name, c.pending_issue);
  return kExitFailure;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"timevault: per-tenant backup and point-in-time recovery for Postgres, built on change data capture"};
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("-c,--config", g.config_path, "Config file (TOML); default $TIMEVAULT_CONFIG");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error|critical|off (overrides log_level)");

  int exit_code = kExitOk;
  auto* check = app.add_subcommand("config", "Validate the config file and print the effective settings");
  check->callback([&] { exit_code = RunConfigCheck(g); });
  for (const auto& c : kCommands) {
    auto* sub = app.add_subcommand(c.name, c.description);
    if (*c.pending_issue) sub->allow_extras();
    if (std::string_view(c.name) == "capture") {
      sub->callback([&g, &exit_code] { exit_code = RunCapture(g); });
      continue;
    }
    if (std::string_view(c.name) == "store") {
      sub->callback([&g, &exit_code] { exit_code = RunStore(g); });
      continue;
    }
    sub->callback([&g, &c, &exit_code] { exit_code = RunPending(g, c); });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace timevault::cli
