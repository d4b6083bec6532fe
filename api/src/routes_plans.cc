// DR plans: POST/GET /v1/plans, GET/PUT/DELETE /v1/plans/{id}, POST /v1/plans/{id}/tests.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "pagination.h"
#include "server_impl.h"

namespace timevault::api {

using config::Role;

namespace {

const std::vector<std::string_view> kPlanFields = {
    "name", "tenant", "rto_minutes", "rpo_minutes", "full_backup_every", "incremental_every", "retention_days"};

Result<DrPlan> PlanFromBody(const JsonBody& b) {
  DrPlan p;
  TV_ASSIGN_OR_RETURN(p.name, b.RequiredString("name"));
  TV_ASSIGN_OR_RETURN(p.tenant, b.RequiredString("tenant"));
  TV_ASSIGN_OR_RETURN(p.rto_minutes, b.RequiredInt("rto_minutes", 1, kMaxMinutes));
  TV_ASSIGN_OR_RETURN(p.rpo_minutes, b.RequiredInt("rpo_minutes", 1, kMaxMinutes));
  TV_ASSIGN_OR_RETURN(p.full_backup_every, b.RequiredInt("full_backup_every", 1, kMaxMinutes));
  TV_ASSIGN_OR_RETURN(auto inc, b.OptionalInt("incremental_every", 0, kMaxMinutes));
  p.incremental_every = inc.value_or(0);
  TV_ASSIGN_OR_RETURN(p.retention_days, b.RequiredInt("retention_days", 1, kMaxRetentionDays));
  if (p.incremental_every != 0 && p.incremental_every >= p.full_backup_every) {
    return InvalidArgument("field 'incremental_every': must be below full_backup_every (" +
                           std::to_string(p.full_backup_every) + " minutes) or 0 for none");
  }
  return p;
}

Result<std::optional<std::string>> CreateTenant(Call& c) {
  TV_RETURN_IF_ERROR(ParseBody(c, kPlanFields));
  TV_ASSIGN_OR_RETURN(auto tenant, c.body->RequiredString("tenant"));
  return std::optional<std::string>(tenant);
}

TenantFn PlanTenant(ApiState& s) {
  return [&s](Call& c) -> Result<std::optional<std::string>> {
    TV_ASSIGN_OR_RETURN(auto plan, s.plans->Get(c.params[0]));
    return std::optional<std::string>(plan.tenant);
  };
}

void Create(ApiState& s, Call& c) {
  auto plan = PlanFromBody(*c.body);
  if (!plan.ok()) return SendError(c, plan.status());
  auto made = s.plans->Create(*plan, s.clock->Now());
  if (!made.ok()) return SendError(c, made.status());
  SendJson(c, 201, PlanJson(*made));
}

// Oldest first (by creation, then id).
void List(ApiState& s, Call& c) {
  auto pager = Pager::FromQuery(c, "plans", {"tenant"}, /*descending=*/false);
  if (!pager.ok()) return SendError(c, pager.status());
  auto plans = s.plans->List();
  std::sort(plans.begin(), plans.end(),
            [](const DrPlan& a, const DrPlan& b) { return TimeKey(a.created_at, a.id) < TimeKey(b.created_at, b.id); });
  std::string out = "{\"plans\":[";
  bool first = true;
  for (const auto& p : plans) {
    if (!Visible(c, p.tenant) || (!c.tenant.empty() && p.tenant != c.tenant)) continue;
    if (!pager->Take(TimeKey(p.created_at, p.id))) continue;
    out += (first ? "" : ",") + PlanJson(p);
    first = false;
  }
  SendJson(c, 200, out + "],\"next_cursor\":" + pager->NextCursorJson() + "}");
}

void Get(ApiState& s, Call& c) {
  auto p = s.plans->Get(c.params[0]);
  if (!p.ok()) return SendError(c, p.status());
  SendJson(c, 200, PlanJson(*p));
}

void Put(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, kPlanFields); !st.ok()) return SendError(c, st);
  auto plan = PlanFromBody(*c.body);
  if (!plan.ok()) return SendError(c, plan.status());
  auto updated = s.plans->Update(c.params[0], *plan, s.clock->Now());
  if (!updated.ok()) return SendError(c, updated.status());
  SendJson(c, 200, PlanJson(*updated));
}

void Delete(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {"confirm"}); !st.ok()) return SendError(c, st);
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  if (Status st = s.plans->Delete(c.params[0]); !st.ok()) return SendError(c, st);
  SendJson(c, 200, "{\"deleted\":" + JsonQuote(c.params[0]) + "}");
}

void StartTest(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {"level"}); !st.ok()) return SendError(c, st);
  auto level_text = c.body->RequiredString("level");
  if (!level_text.ok()) return SendError(c, level_text.status());
  auto level = ParseDrTestLevel(*level_text);
  if (!level) {
    return SendError(c, InvalidArgument("field 'level': expected basic, full or deep, got \"" + *level_text + "\""));
  }
  if (!s.backends.engine) return SendError(c, Unavailable(s.backends.engine_error));
  auto plan = s.plans->Get(c.params[0]);
  if (!plan.ok()) return SendError(c, plan.status());
  replay::Engine* engine = s.backends.engine;
  PlanStore* plans = s.plans.get();
  const Clock* clock = s.clock;
  DrTestLevel lv = *level;
  auto job = s.jobs->Submit(
      "dr_test", plan->tenant, c.who.name,
      [engine, plans, clock, lv, p = *plan](JobContext& ctx) -> Result<std::string> {
        auto report = RunDrTest(
            *engine, p, lv, ctx.id(), [&ctx](std::string_view ph, double f) { ctx.Progress(ph, f); },
            [&ctx] { return ctx.CancelRequested(); });
        if (!report.ok()) return report.status();
        rapidjson::Document d;
        d.Parse(report->data(), report->size());
        DrTestSummary sum{ctx.id(), std::string(DrTestLevelName(lv)), false, std::nullopt, clock->Now()};
        if (!d.HasParseError() && d.IsObject()) {
          if (d.HasMember("passed") && d["passed"].IsBool()) sum.passed = d["passed"].GetBool();
          if (d.HasMember("restore_seconds") && d["restore_seconds"].IsNumber()) {
            sum.restore_seconds = d["restore_seconds"].GetDouble();
          }
        }
        (void)plans->Mutate(p.id, [&sum](DrPlan& q) { q.last_test = sum; });
        return *report;
      },
      /*cancellable_running=*/true);
  if (!job.ok()) return SendError(c, job.status());
  SendJson(c, 202, "{\"job_id\":" + JsonQuote(job->id) + "}");
}

}  // namespace

void AddPlanRoutes(ApiState& s, std::vector<Route>& routes) {
  const std::string id = "/v1/plans/([A-Za-z0-9._-]+)";
  routes.push_back(MakeRoute("POST", "/v1/plans", Role::kAdmin, true, CreateTenant, [&s](Call& c) { Create(s, c); }));
  routes.push_back(MakeRoute("GET", "/v1/plans", Role::kViewer, false, QueryTenant(), [&s](Call& c) { List(s, c); }));
  routes.push_back(MakeRoute("GET", id, Role::kViewer, false, PlanTenant(s), [&s](Call& c) { Get(s, c); }));
  routes.push_back(MakeRoute("PUT", id, Role::kAdmin, true, PlanTenant(s), [&s](Call& c) { Put(s, c); }));
  routes.push_back(MakeRoute("DELETE", id, Role::kAdmin, true, PlanTenant(s), [&s](Call& c) { Delete(s, c); }));
  routes.push_back(
      MakeRoute("POST", id + "/tests", Role::kOperator, true, PlanTenant(s), [&s](Call& c) { StartTest(s, c); }));
}

// ---- the scheduler ---------------------------------------------------------

PlanScheduler::PlanScheduler(ApiState& s, int interval_ms) : s_(s), interval_ms_(interval_ms) {
  thread_ = std::thread([this] {
    auto next = std::chrono::steady_clock::now();
    while (!stop_.load()) {
      if (std::chrono::steady_clock::now() >= next) {
        Tick();
        next = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
}

PlanScheduler::~PlanScheduler() { Stop(); }

void PlanScheduler::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void PlanScheduler::Tick() {
  replay::BackupCatalog* catalog = s_.catalog();
  if (!catalog) return;
  CommitTime now = s_.clock->Now();
  constexpr int64_t kMinute = 60LL * 1000000;
  for (const auto& plan : s_.plans->List()) {
    {
      std::lock_guard lock(mu_);
      auto it = running_.find(plan.id);
      if (it != running_.end()) {
        auto job = s_.jobs->Get(it->second);
        if (job && (job->state == JobState::kQueued || job->state == JobState::kRunning)) continue;
        running_.erase(it);
      }
      // A failed attempt is retried after a minute, not on every tick.
      auto tried = last_attempt_.find(plan.id);
      if (tried != last_attempt_.end() && now.micros() - tried->second.micros() < kMinute) continue;
    }
    bool full_due = plan.last_full_at.micros() == 0 ||
                    now.micros() - plan.last_full_at.micros() >= plan.full_backup_every * kMinute;
    CommitTime last_any = std::max(plan.last_full_at, plan.last_incremental_at);
    bool inc_due =
        !full_due && plan.incremental_every > 0 && now.micros() - last_any.micros() >= plan.incremental_every * kMinute;
    if (!full_due && !inc_due) continue;
    std::optional<std::string> base;
    if (inc_due) {
      auto list = catalog->List(plan.tenant);
      if (list.ok()) {
        for (const auto& b : *list) {
          if (b.tenant == plan.tenant) {
            base = b.id;
            break;
          }
        }
      }
      if (!base) full_due = true;
    }
    replay::BackupRequest request;
    request.name = "plan " + plan.name;
    request.description = std::string(full_due ? "full" : "incremental") + " backup scheduled by DR plan " + plan.id;
    PlanStore* plans = s_.plans.get();
    const Clock* clock = s_.clock;
    int64_t retention = plan.retention_days;
    std::string tenant = plan.tenant, id = plan.id;
    bool full = full_due;
    // Audited before the job is queued (fail closed), like an API call.
    std::string params = "{\"plan\":" + JsonQuote(plan.id) + ",\"incremental\":" + (full ? "false" : "true") + "}";
    AuditRecord intent;
    intent.kind = "scheduler";
    intent.actor = "scheduler";
    intent.method = "POST";
    intent.path = "/v1/backups";
    intent.tenant = plan.tenant;
    intent.params_json = params;
    intent.outcome = "started";
    if (auto seq = s_.audit->Append(intent); !seq.ok()) {
      spdlog::error("plan {}: backup not started, the audit trail cannot be written: {}", plan.id,
                    seq.status().ToString());
      continue;
    }
    ApiState* state = &s_;
    auto job =
        SubmitBackup(s_, "scheduler:" + plan.id, plan.tenant, !full, full ? std::nullopt : base, request,
                     [state, catalog, plans, clock, retention, tenant, id, full](const replay::BackupInfo& b) {
                       CommitTime t = clock->Now();
                       (void)plans->Mutate(id, [&](DrPlan& p) { (full ? p.last_full_at : p.last_incremental_at) = t; });
                       AuditInternal(*state, "scheduler", "/v1/backups/" + b.id, tenant,
                                     "{\"plan\":" + JsonQuote(id) + "}", Status::Ok());
                       auto expired = catalog->Expire(0, retention, t, tenant);
                       if (!expired.ok()) spdlog::warn("plan {}: retention: {}", id, expired.status().ToString());
                       AuditInternal(*state, "retention", "/v1/backups?expire", tenant,
                                     "{\"plan\":" + JsonQuote(id) + ",\"retention_days\":" + std::to_string(retention) +
                                         ",\"expired\":" + std::to_string(expired.ok() ? expired->size() : 0) + "}",
                                     expired.ok() ? Status::Ok() : expired.status());
                     });
    if (!job.ok()) {
      spdlog::warn("plan {}: cannot start its backup: {}", plan.id, job.status().ToString());
      continue;
    }
    std::lock_guard lock(mu_);
    running_[plan.id] = job->id;
    last_attempt_[plan.id] = now;
  }
}

}  // namespace timevault::api
