// The store's Kafka side: a consumer group over capture's topics feeding
// Store::Apply in batches, one WriteBatch per batch with the offsets in it
// (exactly-once effect, invariant 1); offsets are restored from the store on
// every assignment, never from the broker.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "timevault/config/config.h"
#include "timevault/core/status.h"
#include "timevault/store/store.h"

namespace timevault::store {

// Readable from any thread while the store runs (the api's /metrics).
struct IngestMetrics {
  std::atomic<uint64_t> consumed{0};  // messages consumed
  std::atomic<uint64_t> applied_batches{0};
  std::atomic<uint64_t> dead_letters{0};  // in this run
  std::atomic<uint64_t> rebalances{0};
  // Times the poll loop found no message and slept until one came or the
  // batch window ended (about 10 a second when idle), and of those the ones
  // a message ended.
  std::atomic<uint64_t> idle_sleeps{0};
  std::atomic<uint64_t> idle_woken{0};

  // Consumer lag per "topic/partition": high watermark - next offset.
  std::map<std::string, int64_t> Lag() const {
    std::lock_guard<std::mutex> lock(mu);
    return lag;
  }
  void SetLag(const std::string& partition, int64_t value) {
    std::lock_guard<std::mutex> lock(mu);
    lag[partition] = value;
  }

 private:
  mutable std::mutex mu;
  std::map<std::string, int64_t> lag;
};

// Consumes until `stop` (then applies what it has and returns OK) or an error
// retrying cannot fix. Broker outages are waited out (librdkafka reconnects).
Status RunIngest(const config::Config& config, Store* store, IngestMetrics* metrics, const std::atomic<bool>* stop);

}  // namespace timevault::store
