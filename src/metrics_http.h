// Prometheus metrics of the long-running commands (`capture`, `store`,
// `run`), served on --metrics-listen (or TIMEVAULT_METRICS_LISTEN) at
// GET /metrics, without a token: bind it to loopback or a private network.
// The API's own /metrics (requests, jobs, plans) stays on api.listen.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "timevault/capture/capture.h"
#include "timevault/config/config.h"
#include "timevault/core/pg_reused.h"
#include "timevault/core/status.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::cli {

class MetricsEndpoint {
 public:
  // Binds `listen` ("host:port") and serves `render()` at /metrics (and
  // /livez) on a thread of its own until destroyed.
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const std::string& listen, std::function<std::string()> render);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

 private:
  struct Impl;
  explicit MetricsEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Prometheus text of capture: events produced/acknowledged, bytes,
// transactions, LSNs, lag, reconnects, and the slot's WAL retained (read
// from Postgres at each scrape on `slot_conn`, one connection kept across
// scrapes, 3 s connect timeout).
std::string CaptureMetricsText(const config::Config& cfg, const capture::CaptureMetrics& m, pg::ReusedConn& slot_conn);
// Prometheus text of the store: messages consumed, batches, dead letters,
// rebalances, consumer lag per partition, and the store's size, events and
// recoverable point (and its age).
std::string StoreMetricsText(const store::IngestMetrics& m, store::Store* st);
// timevault_build_info{version, command} 1.
std::string BuildInfoText(const std::string& command);

}  // namespace timevault::cli
