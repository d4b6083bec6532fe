// The operators' HTTP API (docs/api.md, api/openapi.yaml): backups, restores,
// PITR, snapshots and rollback, DR plans and tests, health, metrics, state and
// history export, the audit trail. Bearer tokens with roles and tenant scopes
// are checked before any work; every mutating and every denied call is
// audited; long operations run as jobs.
//
// Lifetime: the backends passed to Create outlive the Server. Start() binds
// and serves on a background thread; Stop() (or the destructor) stops
// accepting, lets running jobs finish and stops the plan scheduler.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "timevault/config/config.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/replay/backup.h"
#include "timevault/replay/engine.h"
#include "timevault/store/store.h"

namespace timevault::api {

struct Backends {
  store::Store* store = nullptr;             // required: stats, state and history export
  replay::Engine* engine = nullptr;          // null: engine endpoints answer 503 with engine_error
  replay::BackupCatalog* backups = nullptr;  // null: backup endpoints answer 503 (default: engine->backups())
  std::string engine_error = "the replay engine is not available";
  const Clock* clock = nullptr;  // default: SystemClock()
  int job_threads = 2;
  int scheduler_interval_ms = 5000;  // how often plans are checked for due backups
};

class Server {
 public:
  // Opens the audit trail, the job records and the plans under
  // cfg.api.state_dir (created if missing).
  static Result<std::unique_ptr<Server>> Create(const config::Config& cfg, const Backends& backends);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds cfg.api.listen ("host:port"; port 0 picks a free one) with TLS when
  // tls_cert and tls_key are set, and serves on a background thread.
  Status Start();
  int port() const;
  void Stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The OpenAPI document (api/openapi.yaml, embedded at build time).
std::string_view OpenApiYaml();

}  // namespace timevault::api
