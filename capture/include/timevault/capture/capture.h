// capture: tails Postgres logical replication (pgoutput) and produces
// Debezium-compatible JSON change events to Kafka, confirming to Postgres only
// what Kafka has acknowledged (invariant 1).
#pragma once

#include <atomic>
#include <cstdint>

#include "timevault/config/config.h"
#include "timevault/core/status.h"

namespace timevault::capture {

// Counters readable from any thread while capture runs (the api's /metrics).
struct CaptureMetrics {
  std::atomic<uint64_t> produced_events{0};
  std::atomic<uint64_t> acked_events{0};
  std::atomic<uint64_t> produced_bytes{0};
  std::atomic<uint64_t> transactions{0};
  std::atomic<uint64_t> confirmed_lsn{0};   // last flush position sent to Postgres
  std::atomic<uint64_t> server_wal_end{0};  // latest WAL end the server reported
  std::atomic<int64_t> last_commit_time_us{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> slot_losses{0};  // lost or replaced slots detected (docs/capture.md, "Slot loss")
  std::atomic<bool> streaming{false};
  // Tables whose events capture refuses to produce (their topic name, after
  // Debezium's sanitising, is another table's too); each is logged as an error.
  std::atomic<uint64_t> refused_tables{0};

  uint64_t lag_bytes() const {
    uint64_t end = server_wal_end.load(), confirmed = confirmed_lsn.load();
    return end > confirmed ? end - confirmed : 0;
  }
};

// Runs capture until `stop` becomes true (then flushes, confirms and returns
// OK) or an error that retrying cannot fix. Lost connections to Postgres or
// Kafka are retried with bounded exponential backoff.
Status Run(const config::Config& config, CaptureMetrics* metrics, const std::atomic<bool>* stop);

}  // namespace timevault::capture
