// API commands: `serve` (the HTTP API next to a running `timevault store`),
// `run` (capture, store and serve in one process) and `audit verify`.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli_common.h"
#include "metrics_http.h"
#include "timevault/api/audit_check.h"
#include "timevault/api/server.h"
#include "timevault/capture/capture.h"
#include "timevault/replay/engine.h"
#include "timevault/store/ingest.h"

namespace timevault::cli {
namespace {

using namespace std::chrono_literals;

// A read-only store follows the primary; it catches up this often.
constexpr auto kRefreshInterval = 1s;
constexpr auto kStoreWait = 60s;

// Serves until SIGTERM/SIGINT (or until `pipeline_failed` is set).
int Serve(const config::Config& cfg, store::Store* st, bool read_only, const std::atomic<bool>* pipeline_failed) {
  api::Backends backends;
  backends.store = st;
  auto engine = replay::Engine::Open(cfg, st);
  if (engine.ok()) {
    backends.engine = engine->get();
  } else {
    backends.engine_error = "the replay engine could not start: " + engine.status().ToString();
    spdlog::error("serve: {} (PITR, restores, snapshots and backups answer 503)", backends.engine_error);
  }
  auto server = api::Server::Create(cfg, backends);
  if (!server.ok()) {
    spdlog::critical("serve: {}", server.status().ToString());
    return kExitFailure;
  }
  if (Status s = (*server)->Start(); !s.ok()) {
    spdlog::critical("serve: {}", s.ToString());
    return kExitFailure;
  }
  auto next_refresh = std::chrono::steady_clock::now();
  while (!g_stop.load() && !(pipeline_failed && pipeline_failed->load())) {
    std::this_thread::sleep_for(100ms);
    if (!read_only || std::chrono::steady_clock::now() < next_refresh) continue;
    next_refresh = std::chrono::steady_clock::now() + kRefreshInterval;
    if (Status s = st->Refresh(); !s.ok()) spdlog::warn("serve: store refresh: {}", s.ToString());
  }
  spdlog::info("serve: stopping");
  (*server)->Stop();
  return kExitOk;
}

int RunServe(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  InstallStopHandlers();
  // `serve` often starts next to `timevault store` (compose, the demo): wait
  // a while for the store to be created before giving up.
  auto deadline = std::chrono::steady_clock::now() + kStoreWait;
  auto opened = OpenStore(*cfg, true);
  while (!opened.ok() && !g_stop.load() && std::chrono::steady_clock::now() < deadline) {
    spdlog::info("serve: waiting for the store {}: {}", cfg->store.path, opened.status().ToString());
    std::this_thread::sleep_for(500ms);
    opened = OpenStore(*cfg, true);
  }
  if (!opened.ok()) {
    spdlog::critical("serve: cannot open the store {} read-only: {}", cfg->store.path, opened.status().ToString());
    return kExitFailure;
  }
  return Serve(*cfg, opened->get(), true, nullptr);
}

// capture, store and serve in one process: the API uses the primary store.
int RunAll(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto opened = OpenStore(*cfg, false);
  if (!opened.ok()) {
    spdlog::critical("run: cannot open the store {}: {}", cfg->store.path, opened.status().ToString());
    return kExitFailure;
  }
  InstallStopHandlers();
  std::atomic<bool> failed{false};
  capture::CaptureMetrics capture_metrics;
  store::IngestMetrics ingest_metrics;
  pg::ReusedConn slot_conn(cfg->postgres.conninfo, "timevault-metrics");  // one connection for every scrape
  std::unique_ptr<MetricsEndpoint> endpoint;
  if (!g.metrics_listen.empty()) {
    store::Store* st = opened->get();
    auto started = MetricsEndpoint::Start(g.metrics_listen, [&cfg, &capture_metrics, &ingest_metrics, &slot_conn, st] {
      return BuildInfoText("run") + CaptureMetricsText(*cfg, capture_metrics, slot_conn) +
             StoreMetricsText(ingest_metrics, st);
    });
    if (!started.ok()) {
      spdlog::critical("run: {}", started.status().ToString());
      return kExitFailure;
    }
    endpoint = std::move(started).value();
  }
  Status capture_status, ingest_status;
  std::thread capture([&] {
    capture_status = capture::Run(*cfg, &capture_metrics, &g_stop);
    if (!capture_status.ok()) failed.store(true);
  });
  std::thread ingest([&] {
    ingest_status = store::RunIngest(*cfg, opened->get(), &ingest_metrics, &g_stop);
    if (!ingest_status.ok()) failed.store(true);
  });
  int served = Serve(*cfg, opened->get(), false, &failed);
  g_stop.store(true);
  capture.join();
  ingest.join();
  if (!capture_status.ok()) spdlog::critical("run: capture: {}", capture_status.ToString());
  if (!ingest_status.ok()) spdlog::critical("run: store: {}", ingest_status.ToString());
  return served == kExitOk && capture_status.ok() && ingest_status.ok() ? kExitOk : kExitFailure;
}

int RunAuditVerify(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  std::string dir = cfg->api.state_dir.empty() ? cfg->store.path + "-api" : cfg->api.state_dir;
  auto v = api::VerifyAuditTrail(dir, cfg->store.key_file);
  if (!v.ok()) {
    std::fprintf(stderr, "timevault audit verify: %s\n", v.status().ToString().c_str());
    return kExitFailure;
  }
  std::printf("%s\n", v->c_str());
  return v->rfind("ok", 0) == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void RegisterApiCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  app.add_subcommand("serve", "Run the operators' HTTP API next to a running `timevault store`")
      ->callback([&g, exit_code] { *exit_code = RunServe(g); });
  app.add_subcommand("run", "Run capture, store and serve in one process")->callback([&g, exit_code] {
    *exit_code = RunAll(g);
  });
  auto* audit = app.add_subcommand("audit", "Read and verify the audit trail");
  audit->require_subcommand(1);
  audit->add_subcommand("verify", "Check the audit trail's hash chain; names the first bad line")
      ->callback([&g, exit_code] { *exit_code = RunAuditVerify(g); });
  RegisterApiClientCommands(app, g, exit_code);
}

}  // namespace timevault::cli
