// The server's insides, shared by the route files (routes_*.cc). Private to api/.
#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "audit.h"
#include "auth.h"
#include "idempotency.h"
#include "json_util.h"
#include "timevault/api/jobs.h"
#include "timevault/api/plans.h"
#include "timevault/api/server.h"
#include "timevault/core/pg_reused.h"

namespace timevault::api {

struct ApiState;

// One request as it goes through the router.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  std::vector<std::string> params;  // path captures, in order
  Principal who;
  std::optional<JsonBody> body;     // parsed by the tenant resolver or the handler
  std::string tenant;               // the tenant the call touches, for the audit
  std::string error_message;        // the last error sent, for the audit
  const ApiState* state = nullptr;  // for error redaction
};

using TenantFn = std::function<Result<std::optional<std::string>>(Call&)>;
using HandlerFn = std::function<void(Call&)>;

struct Route {
  std::string method;
  std::string pattern;  // for 405's Allow and the docs
  std::regex regex;
  bool authenticated = true;
  config::Role role = config::Role::kViewer;
  bool mutating = false;        // audited before it runs (fail closed) and after
  bool export_audited = false;  // a full-tenant export: audited before the first byte (fail closed)
  TenantFn tenant;              // null: the call names no single tenant
  HandlerFn handler;
};

// Counters for GET /metrics.
struct HttpMetrics {
  std::mutex mu;
  std::map<int, uint64_t> by_status;
  void Count(int status) {
    std::lock_guard lock(mu);
    ++by_status[status];
  }
};

// What every route reaches. Owned by Server::Impl.
struct ApiState {
  config::Config cfg;
  Backends backends;
  const Clock* clock = nullptr;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<AuditLog> audit;
  // Text an error body must not show (configured paths), with its replacement.
  std::vector<std::pair<std::string, std::string>> redactions;
  std::unique_ptr<JobRunner> jobs;
  std::unique_ptr<PlanStore> plans;
  HttpMetrics http;
  IdempotencyCache idempotency;  // POSTs with an Idempotency-Key (idempotency.h)
  // Health's reads of pg_replication_slots: one connection kept across calls
  // (the console polls health every 5 s).
  std::unique_ptr<pg::ReusedConn> health_pg;

  replay::BackupCatalog* catalog() const {
    if (backends.backups) return backends.backups;
    return backends.engine ? &backends.engine->backups() : nullptr;
  }
};

// Responses.
int HttpStatusFor(StatusCode code);
void SendJson(Call& c, int status, const std::string& body);
void SendError(Call& c, const Status& s);
void SendError(Call& c, int http, std::string_view code, const std::string& message);

// Parses the body with the allowed fields into c.body (once); InvalidArgument on bad JSON.
Status ParseBody(Call& c, const std::vector<std::string_view>& allowed);
// The body's "confirm" must be true, or query ?confirm=true: else InvalidArgument.
Status RequireConfirm(Call& c);
// A time a caller typed (`what`: "field 'target_time'", "query parameter
// 'at'"): RFC 3339 with a zone; a date and time without one only when
// api.time_zone states the zone it is read in. InvalidArgument naming `what`
// otherwise (routes_data.cc).
Result<CommitTime> CallerTime(const Call& c, const std::string& what, std::string_view text);
// A query parameter, if given (empty counts as given and is refused by callers).
std::optional<std::string> Query(const Call& c, const char* name);
// Query "tenant": the given one must be in scope (checked by the router when
// used as a TenantFn); for lists, whether an item's tenant is visible.
TenantFn QueryTenant();
bool Visible(const Call& c, const std::string& tenant);

// Route tables, one per file.
void AddBackupRoutes(ApiState& s, std::vector<Route>& routes);  // routes_backups.cc
void AddReplayRoutes(ApiState& s, std::vector<Route>& routes);  // routes_replay.cc
void AddPlanRoutes(ApiState& s, std::vector<Route>& routes);    // routes_plans.cc
void AddAdminRoutes(ApiState& s,
                    std::vector<Route>& routes);              // routes_admin.cc (health, metrics, audit, jobs, openapi)
void AddDataRoutes(ApiState& s, std::vector<Route>& routes);  // routes_data.cc (state, history)
// Runs a POST carrying Idempotency-Key once per (caller, path, key); a retry
// gets the first response (idempotency.cc).
void ServeIdempotent(ApiState& s, const HandlerFn& handler, Call& c);
void AddConsoleRoutes(ApiState& s, std::vector<Route>& routes);  // routes_console.cc (/, livez, readyz, session)
void AddGapRoutes(ApiState& s, std::vector<Route>& routes);      // routes_gaps.cc
// Health's "gaps" member; each unacknowledged gap is a critical problem.
void WriteGapsHealth(ApiState& s, JsonWriter& w, std::vector<std::string>* critical);

Route MakeRoute(std::string method, std::string pattern, config::Role role, bool mutating, TenantFn tenant,
                HandlerFn handler);

// JSON of replay types.
void WritePoint(JsonWriter& w, const store::Point& p);
std::string BackupJson(const replay::BackupInfo& b);
std::string SnapshotJson(const replay::SnapshotInfo& s);
std::string ApplyResultJson(const replay::ApplyResult& r);

// Submits a backup job (used by POST /v1/backups and the plan scheduler).
Result<JobRecord> SubmitBackup(ApiState& s, const std::string& actor, const std::string& tenant, bool incremental,
                               std::optional<std::string> base, replay::BackupRequest request,
                               std::function<void(const replay::BackupInfo&)> on_success);

// The plan scheduler: starts due backups and applies retention.
class PlanScheduler {
 public:
  PlanScheduler(ApiState& s, int interval_ms);
  ~PlanScheduler();
  void Stop();
  // One pass (also run by tests through the interval).
  void Tick();

 private:
  ApiState& s_;
  int interval_ms_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, std::string> running_;  // plan id -> job id of its pending backup
  std::map<std::string, CommitTime> last_attempt_;
  std::thread thread_;
};

// The points a PITR can target: from the oldest (the retention floor, or the
// first recoverable point before retention ran) to the newest (the
// recoverable point); both unset before there is a recoverable point.
struct RecoverableWindow {
  std::optional<store::Point> oldest;
  std::optional<store::Point> newest;
};
// The store tells only whether a time resolves (StateReader::ResolveTime:
// NotFound before the first point, OutOfRange before the floor or inside a
// gap), so the oldest point is found by bisection over time, about 50
// lookups of the commits index per stretch between gaps (routes_console.cc).
RecoverableWindow WindowOf(store::Store& store);
// One tenant's window (GET /v1/tenants/{t}/window): the store's, starting
// at the first point of it where the store holds the tenant's data — the
// store's oldest point if the tenant has rows there, else the commit of the
// tenant's first change after it (looked for stretch by stretch between the
// gaps). Both unset when the store holds nothing of the tenant in its
// window (never seen, or shredded).
RecoverableWindow TenantWindowOf(store::Store& store, const TenantId& tenant);

// GET /v1/health's document, as `who` may see it: a token scoped to some
// tenants sees only their plans and backups and no paths or server errors.
std::string HealthJson(ApiState& s, const Principal& who);

// Appends an audit entry for work no request started (the scheduler).
void AuditInternal(ApiState& s, const std::string& kind, const std::string& path, const std::string& tenant,
                   const std::string& params_json, const Status& outcome);

}  // namespace timevault::api
