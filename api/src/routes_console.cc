// The web console's files (GET / and /console/{file}), the probes that need
// no token (/livez, /readyz), GET /v1/check (the preflight, admin) and
// GET /v1/session, which tells the console who the token is (its role and
// tenants) so it shows only what that token may do.
#include <algorithm>

#include "console_assets.h"
#include "server_impl.h"
#include "timevault/api/preflight.h"

namespace timevault::api {

using config::Role;

namespace {

// The console loads only its own files and talks only to this server: no
// inline script, no other origin, never framed.
constexpr const char* kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ConsoleAsset* FindAsset(std::string_view name) {
  for (const auto& a : ConsoleAssets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

void SendAsset(Call& c, std::string_view name) {
  const ConsoleAsset* a = FindAsset(name);
  if (a == nullptr) return SendError(c, NotFound("no console file '" + std::string(name) + "'"));
  c.res.status = 200;
  c.res.set_header("Content-Security-Policy", kConsoleCsp);
  c.res.set_header("X-Content-Type-Options", "nosniff");
  c.res.set_header("X-Frame-Options", "DENY");
  c.res.set_header("Referrer-Policy", "no-referrer");
  c.res.set_header("Cache-Control", "no-cache");
  c.res.set_content(std::string(a->body), std::string(a->content_type));
}

// Ready: the store has a recoverable point and the replay engine is up, so
// PITR, restores and backups can be served. The body names what is missing.
void Ready(ApiState& s, Call& c) {
  store::StoreStats st = s.backends.store->Stats();
  bool engine = s.backends.engine != nullptr;
  bool ready = engine && st.recoverable.has_value();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status");
  WriteString(w, ready ? "ready" : "not_ready");
  w.Key("checks");
  w.StartObject();
  w.Key("engine");
  WriteString(w, engine ? "ok" : s.backends.engine_error);
  w.Key("recoverable_point");
  WriteString(w, st.recoverable ? "ok" : "the store has no recoverable point yet");
  w.EndObject();
  w.EndObject();
  SendJson(c, ready ? 200 : 503, std::string(buf.GetString(), buf.GetSize()));
}

// The recoverable window {oldest, newest} (null members before there is a
// recoverable point) as an object's members.
void WriteWindowMembers(JsonWriter& w, const RecoverableWindow& win) {
  w.Key("oldest");
  if (win.oldest) {
    WritePoint(w, *win.oldest);
  } else {
    w.Null();
  }
  w.Key("newest");
  if (win.newest) {
    WritePoint(w, *win.newest);
  } else {
    w.Null();
  }
}

// The earliest time in [lo, hi] that resolves, given that `hi` does and
// times from it back to the answer all do (no gap in between).
std::optional<store::Point> EarliestResolving(store::Store& store, int64_t lo, int64_t hi) {
  auto at_hi = store.ResolveTime(CommitTime(hi));
  if (!at_hi.ok()) return std::nullopt;
  if (auto at_lo = store.ResolveTime(CommitTime(lo)); at_lo.ok()) return *at_lo;
  while (hi - lo > 1) {  // lo fails, hi resolves
    const int64_t mid = lo + (hi - lo) / 2;
    if (store.ResolveTime(CommitTime(mid)).ok()) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  auto p = store.ResolveTime(CommitTime(hi));
  return p.ok() ? std::optional<store::Point>(*p) : std::nullopt;
}

// The first commit at or after `lsn` within [from, to] (both resolving, no
// gap between them, to.lsn >= lsn): the earliest time whose newest commit
// is at or past `lsn`, by bisection.
std::optional<store::Point> CommitAtOrAfter(store::Store& store, Lsn lsn, const store::Point& from,
                                            const store::Point& to) {
  auto reaches = [&](int64_t t) -> std::optional<store::Point> {
    auto p = store.ResolveTime(CommitTime(t));
    if (p.ok() && p->lsn.value() >= lsn.value()) return *p;
    return std::nullopt;
  };
  if (auto p = reaches(from.time.micros())) return p;
  int64_t lo = from.time.micros();
  int64_t hi = to.time.micros();
  if (!reaches(hi)) return to;  // commit times out of LSN order: the stretch's end holds it
  while (hi - lo > 1) {         // lo does not reach, hi does
    const int64_t mid = lo + (hi - lo) / 2;
    if (reaches(mid)) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return reaches(hi);
}

// Whether the tenant has a live row at `point`.
bool TenantRowsAt(store::Store& store, const TenantId& tenant, const store::Point& point) {
  bool any = false;
  (void)store.StateAt(tenant, point.lsn, {}, [&any](const store::Row&) {
    any = true;
    return false;
  });
  return any;
}
// The commit of the tenant's first row change in (after, end], if any.
std::optional<Lsn> TenantFirstChange(store::Store& store, const TenantId& tenant, Lsn after, Lsn end) {
  std::optional<Lsn> first;
  (void)store.History(tenant, after, end, std::nullopt, std::nullopt, [&first](const store::HistoryEvent& e) {
    if (e.table.empty() || e.op == 'm') return true;  // messages are not rows
    first = e.commit_lsn;
    return false;
  });
  return first;
}

// GET /v1/tenants/{t}/window: the points a PITR of the tenant can target,
// from the oldest (where the store first holds the tenant's data within its
// own window) to the newest (the recoverable point), and the gaps recorded
// inside, whose points are refused.
void Window(ApiState& s, Call& c) {
  const RecoverableWindow win = TenantWindowOf(*s.backends.store, TenantId(c.tenant));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("tenant");
  WriteString(w, c.tenant);
  WriteWindowMembers(w, win);
  w.Key("gaps");
  w.StartArray();
  for (const auto& g : s.backends.store->Gaps()) {
    if (!win.oldest || g.to.lsn.value() <= win.oldest->lsn.value()) continue;  // no window, or before it
    WriteRaw(w, store::Store::GapJson(g));
  }
  w.EndArray();
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

// GET /v1/recoverable-point: the store's recoverable point alone, as the
// store holds it in memory since it last advanced (no index read), for
// pollers such as bench/latency.sh; GET /v1/session answers the same point
// but also finds the window's oldest point (by bisection) and the tenants.
void RecoverablePointOnly(ApiState& s, Call& c) {
  auto point = s.backends.store->RecoverablePoint();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("recoverable_point");
  if (point.ok()) {
    WritePoint(w, *point);
  } else {
    w.Null();
  }
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

// The caller's name, role and tenant scope, and the tenants it can reach
// that the store holds rows of at its recoverable point (for pickers), and
// that point (the newest time a PITR can reach).
void Session(ApiState& s, Call& c) {
  std::vector<std::string> known;
  const RecoverableWindow win = WindowOf(*s.backends.store);
  auto point = s.backends.store->RecoverablePoint();
  if (point.ok()) {
    if (auto tenants = s.backends.store->Tenants(point->lsn); tenants.ok()) {
      for (const auto& t : *tenants) {
        if (!t.empty() && c.who.CanAccess(t.str())) known.push_back(t.str());
      }
    }
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteString(w, c.who.name);
  w.Key("role");
  WriteString(w, config::RoleName(c.who.role));
  w.Key("all_tenants");
  w.Bool(c.who.AllTenants());
  w.Key("tenants");
  w.StartArray();
  for (const auto& t : c.who.tenants) WriteString(w, t);
  w.EndArray();
  w.Key("known_tenants");
  w.StartArray();
  for (const auto& t : known) WriteString(w, t);
  w.EndArray();
  w.Key("recoverable_point");
  if (point.ok()) {
    WritePoint(w, *point);
  } else {
    w.Null();
  }
  w.Key("recoverable_window");
  w.StartObject();
  WriteWindowMembers(w, win);
  w.EndObject();
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

// POST /v1/jobs/{id}/cancel {"confirm": true}: a queued job never runs; a
// running apply stops before it writes.
void CancelJob(ApiState& s, Call& c) {
  if (Status st = ParseBody(c, {"confirm"}); !st.ok()) return SendError(c, st);
  if (Status st = RequireConfirm(c); !st.ok()) return SendError(c, st);
  auto cancelled = s.jobs->Cancel(c.params[0], c.who.name);
  if (!cancelled.ok()) return SendError(c, cancelled.status());
  // 200: a queued job, now failed; 202: a running one asked to stop (its
  // outcome is the job's: failed "cancelled by ..." or, past its last safe
  // point, succeeded).
  SendJson(c, cancelled->state == JobState::kRunning ? 202 : 200, JobJson(*cancelled));
}

Route Public(std::string pattern, HandlerFn handler) {
  Route r = MakeRoute("GET", std::move(pattern), Role::kViewer, false, nullptr, std::move(handler));
  r.authenticated = false;
  return r;
}

}  // namespace

RecoverableWindow WindowOf(store::Store& store) {
  RecoverableWindow win;
  auto newest = store.RecoverablePoint();
  if (!newest.ok()) return win;
  win.newest = *newest;
  // The stretch back from the recoverable point, then past each gap (newest
  // first) whose start still resolves: the oldest point is in the last one.
  win.oldest = EarliestResolving(store, 0, newest->time.micros());
  auto gaps = store.Gaps();
  std::sort(gaps.begin(), gaps.end(), [](const store::Gap& a, const store::Gap& b) { return a.from.lsn > b.from.lsn; });
  for (const auto& g : gaps) {
    if (!win.oldest || g.from.time.micros() >= win.oldest->time.micros()) continue;
    if (auto earlier = EarliestResolving(store, 0, g.from.time.micros())) win.oldest = earlier;
  }
  return win;
}

RecoverableWindow TenantWindowOf(store::Store& store, const TenantId& tenant) {
  const RecoverableWindow all = WindowOf(store);
  RecoverableWindow win;
  if (!all.oldest || !all.newest) return win;
  // The stretches between the gaps inside the store's window, oldest first:
  // each starts at a point the store vouches for (the window's start, or a
  // gap's end) and ends at the next gap's start (or the newest point).
  auto gaps = store.Gaps();
  std::sort(gaps.begin(), gaps.end(), [](const store::Gap& a, const store::Gap& b) { return a.from.lsn < b.from.lsn; });
  store::Point start = *all.oldest;
  for (size_t i = 0; i <= gaps.size(); ++i) {
    if (i < gaps.size() && gaps[i].to.lsn.value() <= start.lsn.value()) continue;  // before the window
    const store::Point end = i < gaps.size() ? gaps[i].from : *all.newest;
    if (TenantRowsAt(store, tenant, start)) {
      win.oldest = start;
    } else if (auto first = TenantFirstChange(store, tenant, start.lsn, end.lsn)) {
      win.oldest = CommitAtOrAfter(store, *first, start, end);
    }
    if (win.oldest || i == gaps.size()) break;
    start = gaps[i].to;
  }
  if (win.oldest) win.newest = all.newest;
  return win;
}

void AddConsoleRoutes(ApiState& s, std::vector<Route>& routes) {
  routes.push_back(Public("/", [](Call& c) { SendAsset(c, "index.html"); }));
  routes.push_back(Public("/console/([A-Za-z0-9_-]+\\.[a-z]+)", [](Call& c) { SendAsset(c, c.params[0]); }));
  routes.push_back(Public("/livez", [](Call& c) { SendJson(c, 200, R"({"status":"alive"})"); }));
  routes.push_back(Public("/readyz", [&s](Call& c) { Ready(s, c); }));
  routes.push_back(MakeRoute("GET", "/v1/session", Role::kViewer, false, nullptr, [&s](Call& c) { Session(s, c); }));
  routes.push_back(MakeRoute("GET", "/v1/recoverable-point", Role::kViewer, false, nullptr,
                             [&s](Call& c) { RecoverablePointOnly(s, c); }));
  routes.push_back(MakeRoute(
      "GET", "/v1/tenants/([^/]+)/window", Role::kViewer, false,
      [](Call& c) -> Result<std::optional<std::string>> { return std::optional<std::string>(c.params[0]); },
      [&s](Call& c) { Window(s, c); }));
  routes.push_back(MakeRoute(
      "POST", "/v1/jobs/([A-Za-z0-9._-]+)/cancel", Role::kOperator, true,
      [&s](Call& c) -> Result<std::optional<std::string>> {
        auto j = s.jobs->Get(c.params[0]);
        if (!j) return NotFound("no job with id '" + c.params[0] + "'");
        return std::optional<std::string>(j->tenant);
      },
      [&s](Call& c) { CancelJob(s, c); }));
  // The preflight of `timevault check`, for the running config (admin: it
  // names tables, users and files).
  routes.push_back(MakeRoute("GET", "/v1/check", Role::kAdmin, false, nullptr,
                             [&s](Call& c) { SendJson(c, 200, PreflightJson(RunPreflight(s.cfg))); }));
}

}  // namespace timevault::api
