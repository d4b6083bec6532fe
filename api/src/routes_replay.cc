// Engine-backed routes: restores, PITR preview/execute, snapshots, rollback.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "pagination.h"
#include "server_impl.h"

namespace timevault::api {

using config::Role;

namespace {

void WriteOps(JsonWriter& w, const replay::OperationCounts& ops) {
  w.StartObject();
  replay::WriteOperationCounts(w, ops);
  w.EndObject();
}

void WriteTables(JsonWriter& w, const std::vector<replay::TableOperations>& tables) {
  w.StartArray();
  for (const auto& t : tables) {
    w.StartObject();
    w.Key("table");
    WriteString(w, t.table);
    w.Key("operations");
    WriteOps(w, t.ops);
    w.EndObject();
  }
  w.EndArray();
}

std::string PlanJsonOf(const replay::PitrPlan& p) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("plan_id");
  WriteString(w, p.plan_id);
  w.Key("tenant");
  WriteString(w, p.tenant);
  w.Key("target");
  WritePoint(w, p.target);
  w.Key("operations");
  WriteOps(w, p.ops);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : p.by_table) {
    w.StartObject();
    w.Key("table");
    WriteString(w, t.table);
    w.Key("operations");
    WriteOps(w, t.ops);
    // The row sample kept for this table (GET /v1/pitr/plans/{id}/changes).
    w.Key("sampled");
    auto n = p.sampled.find(t.table);
    w.Uint64(n == p.sampled.end() ? 0 : n->second);
    w.EndObject();
  }
  w.EndArray();
  w.Key("estimated_seconds");
  w.Double(p.estimated_seconds);
  w.Key("created_at");
  WriteString(w, p.created_at.ToIso());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

replay::Engine* EngineOr503(ApiState& s, Call& c) {
  if (!s.backends.engine) SendError(c, Unavailable(s.backends.engine_error));
  return s.backends.engine;
}

replay::ProgressFn Reporter(JobContext& ctx) {
  return [&ctx](std::string_view phase, double fraction) { ctx.Progress(phase, fraction); };
}

// POST /v1/jobs/{id}/cancel on the running apply: it stops at its next safe point.
replay::CancelFn Canceller(JobContext& ctx) {
  return [&ctx] { return ctx.CancelRequested(); };
}

// Submits an apply job and answers 202 {job_id, snapshot_id}: the snapshot the
// job will save before it changes anything is named after the job
// (replay::SnapshotIdForJob); GET /v1/snapshots/{id} finds it once saved.
void SubmitApply(ApiState& s, Call& c, const char* kind, std::function<Result<replay::ApplyResult>(JobContext&)> fn) {
  auto job = s.jobs->Submit(
      kind, c.tenant, c.who.name,
      [fn](JobContext& ctx) -> Result<std::string> {
        TV_ASSIGN_OR_RETURN(auto result, fn(ctx));
        return ApplyResultJson(result);
      },
      /*cancellable_running=*/true);
  if (!job.ok()) return SendError(c, job.status());
  SendJson(
      c, 202,
      "{\"job_id\":" + JsonQuote(job->id) + ",\"snapshot_id\":" + JsonQuote(replay::SnapshotIdForJob(job->id)) + "}");
}

// ---- restores --------------------------------------------------------------

Result<std::optional<std::string>> RestoreTenant(ApiState& s, Call& c) {
  TV_RETURN_IF_ERROR(ParseBody(c, {"backup_id", "tenant", "tables", "confirm"}));
  TV_ASSIGN_OR_RETURN(auto backup_id, c.body->RequiredString("backup_id"));
  TV_ASSIGN_OR_RETURN(auto tenant, c.body->OptionalString("tenant"));
  replay::BackupCatalog* catalog = s.catalog();
  if (!catalog) return Unavailable(s.backends.engine_error);
  auto backup = catalog->Get(backup_id);
  if (!backup.ok()) {
    if (backup.status().code() == StatusCode::kNotFound) return NotFound(backup.status().message());
    return backup.status();
  }
  if (backup->tenant != "*") {
    if (tenant && *tenant != backup->tenant) {
      return InvalidArgument("field 'tenant': backup " + backup_id + " holds tenant '" + backup->tenant + "', not '" +
                             *tenant + "'");
    }
    return std::optional<std::string>(backup->tenant);
  }
  if (!tenant) return InvalidArgument("field 'tenant': required, backup " + backup_id + " holds every tenant");
  return std::optional<std::string>(*tenant);
}

void Restore(ApiState& s, Call& c) {
  auto tables = c.body->OptionalStringList("tables");
  if (!tables.ok()) return SendError(c, tables.status());
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  replay::Engine* engine = EngineOr503(s, c);
  if (!engine) return;
  std::string backup_id = *c.body->RequiredString("backup_id");
  TenantId tenant(c.tenant);
  SubmitApply(s, c, "restore", [engine, backup_id, tenant, tables = *tables](JobContext& ctx) {
    return engine->Restore(backup_id, tenant, tables, ctx.id(), Reporter(ctx), Canceller(ctx));
  });
}

// ---- PITR ------------------------------------------------------------------

Result<std::optional<std::string>> PreviewTenant(Call& c) {
  TV_RETURN_IF_ERROR(ParseBody(c, {"tenant", "target_time", "target_lsn", "tables"}));
  TV_ASSIGN_OR_RETURN(auto tenant, c.body->RequiredString("tenant"));
  if (tenant == "*") return InvalidArgument("field 'tenant': PITR is per tenant; \"*\" is not a tenant");
  return std::optional<std::string>(tenant);
}

void Preview(ApiState& s, Call& c) {
  auto time = c.body->OptionalString("target_time");
  auto lsn = c.body->OptionalString("target_lsn");
  auto tables = c.body->OptionalStringList("tables");
  for (const Status* st : {&time.status(), &lsn.status(), &tables.status()}) {
    if (!st->ok()) return SendError(c, *st);
  }
  if (time->has_value() == lsn->has_value()) {
    return SendError(c, InvalidArgument("give exactly one of 'target_time' and 'target_lsn'"));
  }
  replay::PitrTarget target;
  if (*time) {
    auto t = CallerTime(c, "field 'target_time'", **time);
    if (!t.ok()) return SendError(c, t.status());
    target = *t;
  } else {
    auto l = Lsn::Parse(**lsn);
    if (!l) return SendError(c, InvalidArgument("field 'target_lsn': not an LSN like 16/B374D848: '" + **lsn + "'"));
    target = *l;
  }
  replay::Engine* engine = EngineOr503(s, c);
  if (!engine) return;
  auto plan = engine->PreviewPitr(TenantId(c.tenant), target, *tables);
  if (!plan.ok()) return SendError(c, plan.status());
  SendJson(c, 200, PlanJsonOf(*plan));
}

Result<std::optional<std::string>> ExecuteTenant(ApiState& s, Call& c) {
  TV_RETURN_IF_ERROR(ParseBody(c, {"plan_id", "confirm"}));
  TV_ASSIGN_OR_RETURN(auto plan_id, c.body->RequiredString("plan_id"));
  if (!s.backends.engine) return Unavailable(s.backends.engine_error);
  auto plan = s.backends.engine->GetPlan(plan_id);
  if (!plan.ok()) return plan.status();
  return std::optional<std::string>(plan->tenant);
}

void Execute(ApiState& s, Call& c) {
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  replay::Engine* engine = s.backends.engine;
  std::string plan_id = *c.body->RequiredString("plan_id");
  SubmitApply(s, c, "pitr", [engine, plan_id](JobContext& ctx) {
    return engine->ExecutePitr(plan_id, ctx.id(), Reporter(ctx), Canceller(ctx));
  });
}

// A non-negative integer query parameter no greater than `max` (absent:
// `fallback`).
Result<uint64_t> QueryCount(const Call& c, const char* name, uint64_t fallback, uint64_t min, uint64_t max) {
  auto q = Query(c, name);
  if (!q) return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(q->c_str(), &end, 10);
  if (q->empty() || !std::isdigit(static_cast<unsigned char>((*q)[0])) || *end != '\0' || errno != 0 || v < min ||
      v > max) {
    return InvalidArgument(std::string("query parameter '") + name + "': expected an integer from " +
                           std::to_string(min) + " to " + std::to_string(max) + ", got '" + *q + "'");
  }
  return static_cast<uint64_t>(v);
}

TenantFn PlanTenant(ApiState& s) {
  return [&s](Call& c) -> Result<std::optional<std::string>> {
    if (!s.backends.engine) return Unavailable(s.backends.engine_error);
    TV_ASSIGN_OR_RETURN(auto plan, s.backends.engine->GetPlan(c.params[0]));
    return std::optional<std::string>(plan.tenant);
  };
}

// GET /v1/pitr/plans/{id}/changes?table=T[&cursor=C][&limit=N]: a page of
// the preview's row sample of table T (docs/api.md "PITR row sample").
void PlanChanges(ApiState& s, Call& c) {
  auto table = Query(c, "table");
  if (!table || table->empty()) return SendError(c, InvalidArgument("query parameter 'table': required"));
  auto cursor = QueryCount(c, "cursor", 0, 0, replay::kPreviewSampleRows);
  if (!cursor.ok()) return SendError(c, cursor.status());
  auto limit = QueryCount(c, "limit", 50, 1, replay::kPreviewSampleRows);
  if (!limit.ok()) return SendError(c, limit.status());
  auto page = s.backends.engine->PlanSample(c.params[0], *table, *cursor, *limit);
  if (!page.ok()) return SendError(c, page.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("plan_id");
  WriteString(w, page->plan_id);
  w.Key("table");
  WriteString(w, page->table);
  w.Key("operations");
  w.Uint64(page->operations);
  w.Key("sampled");
  w.Uint64(page->sampled);
  w.Key("changes");
  w.StartArray();
  for (const auto& change : page->changes) w.RawValue(change.data(), change.size(), rapidjson::kObjectType);
  w.EndArray();
  w.Key("next_cursor");
  WriteOptString(w, page->next ? std::optional<std::string>(std::to_string(*page->next)) : std::nullopt);
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

// ---- snapshots -------------------------------------------------------------

TenantFn SnapshotTenant(ApiState& s) {
  return [&s](Call& c) -> Result<std::optional<std::string>> {
    if (!s.backends.engine) return Unavailable(s.backends.engine_error);
    TV_ASSIGN_OR_RETURN(auto snap, s.backends.engine->GetSnapshot(c.params[0]));
    return std::optional<std::string>(snap.tenant);
  };
}

void ListSnapshots(ApiState& s, Call& c) {
  replay::Engine* engine = EngineOr503(s, c);
  if (!engine) return;
  std::optional<std::string> tenant;
  if (!c.tenant.empty()) tenant = c.tenant;
  auto pager = Pager::FromQuery(c, "snapshots", {"tenant"}, /*descending=*/true);
  if (!pager.ok()) return SendError(c, pager.status());
  auto list = engine->ListSnapshots(tenant);
  if (!list.ok()) return SendError(c, list.status());
  std::sort(list->begin(), list->end(), [](const replay::SnapshotInfo& a, const replay::SnapshotInfo& b) {
    return TimeKey(a.created_at, a.id) > TimeKey(b.created_at, b.id);
  });
  std::string out = "{\"snapshots\":[";
  bool first = true;
  for (const auto& snap : *list) {
    if (!Visible(c, snap.tenant) || !pager->Take(TimeKey(snap.created_at, snap.id))) continue;
    out += (first ? "" : ",") + SnapshotJson(snap);
    first = false;
  }
  SendJson(c, 200, out + "],\"next_cursor\":" + pager->NextCursorJson() + "}");
}

void GetSnapshot(ApiState& s, Call& c) {
  auto snap = s.backends.engine->GetSnapshot(c.params[0]);
  if (!snap.ok()) return SendError(c, snap.status());
  SendJson(c, 200, SnapshotJson(*snap));
}

void Rollback(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {"confirm", "confirm_reverts"}); !st.ok()) return SendError(c, st);
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  auto reverts = c.body->OptionalString("confirm_reverts");
  if (!reverts.ok()) return SendError(c, reverts.status());
  replay::Engine* engine = s.backends.engine;
  std::string id = c.params[0];
  SubmitApply(s, c, "rollback", [engine, id, digest = reverts->value_or("")](JobContext& ctx) {
    return engine->Rollback(id, ctx.id(), Reporter(ctx), Canceller(ctx), digest);
  });
}

// POST /v1/snapshots/{id}/rollback/preview: what the rollback would do now,
// and what of it reverts changes made since the snapshot's apply.
void RollbackPreview(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {}); !st.ok()) return SendError(c, st);
  auto p = s.backends.engine->PreviewRollback(c.params[0]);
  if (!p.ok()) return SendError(c, p.status());
  SendJson(c, 200, replay::RollbackPreviewJson(*p));
}

}  // namespace

std::string SnapshotJson(const replay::SnapshotInfo& s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, s.id);
  w.Key("tenant");
  WriteString(w, s.tenant);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : s.tables) WriteString(w, t);
  w.EndArray();
  w.Key("lsn");
  WriteString(w, s.lsn.ToString());
  w.Key("created_at");
  WriteString(w, s.created_at.ToIso());
  w.Key("job_id");
  WriteString(w, s.job_id);
  w.Key("reason");
  WriteString(w, replay::SnapshotReasonName(s.reason));
  w.Key("source");
  WriteString(w, s.source);
  w.Key("rows");
  w.Uint64(s.rows);
  w.Key("absent");
  w.Uint64(s.absent);
  w.Key("bytes");
  w.Uint64(s.bytes);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ApplyResultJson(const replay::ApplyResult& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("snapshot_id");
  WriteString(w, r.snapshot_id);
  w.Key("operations");
  WriteOps(w, r.ops);
  w.Key("tables");
  WriteTables(w, r.by_table);
  w.Key("seconds");
  w.Double(r.seconds);
  w.Key("commit_lsn");
  WriteOptString(w, r.commit_lsn.valid() ? std::optional<std::string>(r.commit_lsn.ToString()) : std::nullopt);
  replay::WriteVerification(w, r);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void AddReplayRoutes(ApiState& s, std::vector<Route>& routes) {
  const std::string snap = "/v1/snapshots/([A-Za-z0-9._-]+)";
  routes.push_back(MakeRoute(
      "POST", "/v1/restores", Role::kOperator, true, [&s](Call& c) { return RestoreTenant(s, c); },
      [&s](Call& c) { Restore(s, c); }));
  routes.push_back(
      MakeRoute("POST", "/v1/pitr/preview", Role::kOperator, true, PreviewTenant, [&s](Call& c) { Preview(s, c); }));
  routes.push_back(MakeRoute(
      "POST", "/v1/pitr", Role::kOperator, true, [&s](Call& c) { return ExecuteTenant(s, c); },
      [&s](Call& c) { Execute(s, c); }));
  routes.push_back(MakeRoute("GET", "/v1/pitr/plans/(p-[A-Za-z0-9-]+)/changes", Role::kOperator, false, PlanTenant(s),
                             [&s](Call& c) { PlanChanges(s, c); }));
  routes.push_back(
      MakeRoute("GET", "/v1/snapshots", Role::kViewer, false, QueryTenant(), [&s](Call& c) { ListSnapshots(s, c); }));
  routes.push_back(
      MakeRoute("GET", snap, Role::kViewer, false, SnapshotTenant(s), [&s](Call& c) { GetSnapshot(s, c); }));
  routes.push_back(MakeRoute("POST", snap + "/rollback", Role::kOperator, true, SnapshotTenant(s),
                             [&s](Call& c) { Rollback(s, c); }));
  routes.push_back(MakeRoute("POST", snap + "/rollback/preview", Role::kOperator, true, SnapshotTenant(s),
                             [&s](Call& c) { RollbackPreview(s, c); }));
}

}  // namespace timevault::api
