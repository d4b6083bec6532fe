// Backups: POST/GET /v1/backups, GET/DELETE /v1/backups/{id}, POST .../verify.
#include <algorithm>

#include "pagination.h"
#include "server_impl.h"

namespace timevault::api {

using config::Role;

void WritePoint(JsonWriter& w, const store::Point& p) {
  w.StartObject();
  w.Key("lsn");
  WriteString(w, p.lsn.ToString());
  w.Key("time");
  WriteString(w, p.time.ToIso());
  w.EndObject();
}

std::string BackupJson(const replay::BackupInfo& b) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, b.id);
  w.Key("type");
  WriteString(w, replay::BackupTypeName(b.type));
  w.Key("tenant");
  WriteString(w, b.tenant);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : b.tables) WriteString(w, t);
  w.EndArray();
  w.Key("point");
  WritePoint(w, b.point);
  w.Key("base_id");
  WriteOptString(w, b.base_id);
  w.Key("base_point");
  if (b.base_point) {
    WritePoint(w, *b.base_point);
  } else {
    w.Null();
  }
  w.Key("name");
  WriteString(w, b.name);
  w.Key("description");
  WriteString(w, b.description);
  w.Key("created_at");
  WriteString(w, b.created_at.ToIso());
  w.Key("rows");
  w.StartObject();
  for (const auto& [table, n] : b.rows) {
    w.Key(table.c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("bytes");
  w.Uint64(b.bytes);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<JobRecord> SubmitBackup(ApiState& s, const std::string& actor, const std::string& tenant, bool incremental,
                               std::optional<std::string> base, replay::BackupRequest request,
                               std::function<void(const replay::BackupInfo&)> on_success) {
  replay::BackupCatalog* catalog = s.catalog();
  if (!catalog) return Unavailable(s.backends.engine_error);
  store::StateReader* reader = s.backends.store;
  request.tenant = tenant;
  auto fn = [catalog, reader, incremental, base, request, on_success](JobContext& ctx) -> Result<std::string> {
    ctx.Progress(incremental ? "incremental" : "full", 0);
    replay::BackupRequest req = request;
    req.cancelled = [&ctx] { return ctx.CancelRequested(); };  // POST /v1/jobs/{id}/cancel: nothing is kept
    auto made = incremental ? catalog->CreateIncremental(*reader, *base, req) : catalog->CreateFull(*reader, req);
    if (!made.ok()) return made.status();
    if (on_success) on_success(*made);
    return BackupJson(*made);
  };
  return s.jobs->Submit("backup", tenant, actor, std::move(fn), /*cancellable_running=*/true);
}

namespace {

replay::BackupCatalog* CatalogOr503(ApiState& s, Call& c) {
  replay::BackupCatalog* catalog = s.catalog();
  if (!catalog) SendError(c, Unavailable(s.backends.engine_error));
  return catalog;
}

// The tenant of backup {id} (path capture 0).
TenantFn BackupTenant(ApiState& s) {
  return [&s](Call& c) -> Result<std::optional<std::string>> {
    replay::BackupCatalog* catalog = s.catalog();
    if (!catalog) return Unavailable(s.backends.engine_error);
    TV_ASSIGN_OR_RETURN(auto b, catalog->Get(c.params[0]));
    return std::optional<std::string>(b.tenant);
  };
}

Result<std::optional<std::string>> ParseCreateBody(Call& c) {
  TV_RETURN_IF_ERROR(ParseBody(c, {"tenant", "type", "base", "name", "description", "tables"}));
  TV_ASSIGN_OR_RETURN(auto tenant, c.body->RequiredString("tenant"));
  return std::optional<std::string>(tenant);
}

void CreateBackup(ApiState& s, Call& c) {
  const JsonBody& b = *c.body;
  auto type = b.RequiredString("type");
  auto base = b.OptionalString("base");
  auto name = b.OptionalString("name");
  auto description = b.OptionalString("description");
  auto tables = b.OptionalStringList("tables");
  for (const Status* st : {&type.status(), &base.status(), &name.status(), &description.status(), &tables.status()}) {
    if (!st->ok()) return SendError(c, *st);
  }
  if (*type != "full" && *type != "incremental") {
    return SendError(c, InvalidArgument("field 'type': expected \"full\" or \"incremental\", got \"" + *type + "\""));
  }
  bool incremental = *type == "incremental";
  if (!incremental && *base)
    return SendError(c, InvalidArgument("field 'base': only an incremental backup has a base"));
  replay::BackupCatalog* catalog = CatalogOr503(s, c);
  if (!catalog) return;
  if (incremental && !*base) {
    // Default base: the tenant's newest backup.
    auto list = catalog->List(c.tenant);
    if (!list.ok()) return SendError(c, list.status());
    for (const auto& info : *list) {
      if (info.tenant == c.tenant) {
        *base = info.id;
        break;
      }
    }
    if (!*base)
      return SendError(c, FailedPrecondition("tenant '" + c.tenant + "' has no backup to base an incremental on"));
  }
  if (incremental) {
    auto base_info = catalog->Get(**base);
    if (!base_info.ok())
      return SendError(c, base_info.status().code() == StatusCode::kNotFound
                              ? InvalidArgument("field 'base': " + base_info.status().message())
                              : base_info.status());
    if (base_info->tenant != c.tenant) {
      return SendError(c, InvalidArgument("field 'base': backup " + **base + " belongs to tenant '" +
                                          base_info->tenant + "', not '" + c.tenant + "'"));
    }
  }
  replay::BackupRequest request;
  request.tables = *tables;
  request.name = name->value_or("");
  request.description = description->value_or("");
  auto job = SubmitBackup(s, c.who.name, c.tenant, incremental, *base, request, nullptr);
  if (!job.ok()) return SendError(c, job.status());
  SendJson(c, 202, "{\"job_id\":" + JsonQuote(job->id) + "}");
}

void ListBackups(ApiState& s, Call& c) {
  replay::BackupCatalog* catalog = CatalogOr503(s, c);
  if (!catalog) return;
  std::optional<std::string> tenant;
  if (!c.tenant.empty()) tenant = c.tenant;
  auto pager = Pager::FromQuery(c, "backups", {"tenant"}, /*descending=*/true);
  if (!pager.ok()) return SendError(c, pager.status());
  auto list = catalog->List(tenant);
  if (!list.ok()) return SendError(c, list.status());
  // Newest first: the catalog's order (created_at, then id, descending).
  std::sort(list->begin(), list->end(), [](const replay::BackupInfo& a, const replay::BackupInfo& b) {
    return TimeKey(a.created_at, a.id) > TimeKey(b.created_at, b.id);
  });
  std::string out = "{\"backups\":[";
  bool first = true;
  for (const auto& b : *list) {
    if (!Visible(c, b.tenant) || !pager->Take(TimeKey(b.created_at, b.id))) continue;
    out += (first ? "" : ",") + BackupJson(b);
    first = false;
  }
  SendJson(c, 200, out + "],\"next_cursor\":" + pager->NextCursorJson() + "}");
}

void GetBackup(ApiState& s, Call& c) {
  auto b = s.catalog()->Get(c.params[0]);
  if (!b.ok()) return SendError(c, b.status());
  SendJson(c, 200, BackupJson(*b));
}

void VerifyBackup(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {}); !st.ok()) return SendError(c, st);
  Status v = s.catalog()->Verify(c.params[0]);
  if (!v.ok() && v.code() != StatusCode::kCorruption) return SendError(c, v);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("backup_id");
  WriteString(w, c.params[0]);
  w.Key("verified");
  w.Bool(v.ok());
  w.Key("problem");
  WriteOptString(w, v.ok() ? std::nullopt : std::optional<std::string>(v.message()));
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

void DeleteBackup(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {"confirm"}); !st.ok()) return SendError(c, st);
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  if (Status st = s.catalog()->Delete(c.params[0]); !st.ok()) return SendError(c, st);
  SendJson(c, 200, "{\"deleted\":" + JsonQuote(c.params[0]) + "}");
}

}  // namespace

void AddBackupRoutes(ApiState& s, std::vector<Route>& routes) {
  const std::string id = "/v1/backups/([A-Za-z0-9._-]+)";
  routes.push_back(
      MakeRoute("POST", "/v1/backups", Role::kOperator, true, ParseCreateBody, [&s](Call& c) { CreateBackup(s, c); }));
  routes.push_back(
      MakeRoute("GET", "/v1/backups", Role::kViewer, false, QueryTenant(), [&s](Call& c) { ListBackups(s, c); }));
  routes.push_back(MakeRoute("GET", id, Role::kViewer, false, BackupTenant(s), [&s](Call& c) { GetBackup(s, c); }));
  routes.push_back(
      MakeRoute("DELETE", id, Role::kOperator, true, BackupTenant(s), [&s](Call& c) { DeleteBackup(s, c); }));
  routes.push_back(
      MakeRoute("POST", id + "/verify", Role::kOperator, true, BackupTenant(s), [&s](Call& c) { VerifyBackup(s, c); }));
}

}  // namespace timevault::api
