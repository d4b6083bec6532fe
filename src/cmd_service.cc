// `timevault capture` and `timevault store`: the two long-running services.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "cli_common.h"
#include "timevault/capture/capture.h"
#include "timevault/core/time.h"
#include "timevault/store/ingest.h"

namespace timevault::cli {
namespace {

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

}  // namespace

void RegisterServiceCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  app.add_subcommand("capture", "Tail Postgres logical replication and produce Debezium JSON change events to Kafka")
      ->callback([&g, exit_code] { *exit_code = RunCapture(g); });
  app.add_subcommand("store", "Consume change events from Kafka into the time-indexed RocksDB store")
      ->callback([&g, exit_code] { *exit_code = RunStore(g); });
}

}  // namespace timevault::cli
