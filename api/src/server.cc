#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <set>

#include "http_front.h"
#include "server_impl.h"
#include "timevault/core/crypto.h"
#include "timevault/core/json.h"
#include "timevault/core/log.h"

namespace timevault::api {

// ---- responses -------------------------------------------------------------

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted: return 409;
    case StatusCode::kOutOfRange: return 422;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kCorruption:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

namespace {
std::string ErrorCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kPermissionDenied: return "permission_denied";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kCorruption: return "corruption";
    default: return "internal";
  }
}

std::string ErrorBody(std::string_view code, const std::string& message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  WriteString(w, code);
  w.Key("message");
  WriteString(w, message);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}
}  // namespace

void SendJson(Call& c, int status, const std::string& body) {
  c.res.status = status;
  c.res.set_content(body, "application/json");
}

namespace {
// Configured paths become their key's name ("<store.path>"): error bodies
// never show where the server keeps its files.
std::string Redact(const Call& c, std::string message) {
  if (!c.state) return message;
  for (const auto& [text, replacement] : c.state->redactions) {
    for (size_t pos = message.find(text); pos != std::string::npos; pos = message.find(text, pos)) {
      message.replace(pos, text.size(), replacement);
      pos += replacement.size();
    }
  }
  return message;
}
}  // namespace

void SendError(Call& c, int http, std::string_view code, const std::string& message) {
  std::string shown = message;
  if (http >= 500 && http != 503) {
    // A bug or damaged data: the details go to the log, not to the client.
    std::string ref = RandomHex(6);
    spdlog::error("api: {} {} -> {} (ref {}): {}", c.req.method, c.req.path, http, ref, message);
    shown = "internal error (logged as ref " + ref + ")";
  }
  shown = Redact(c, std::move(shown));
  c.error_message = shown;
  SendJson(c, http, ErrorBody(code, shown));
}

void SendError(Call& c, const Status& s) { SendError(c, HttpStatusFor(s.code()), ErrorCodeFor(s.code()), s.message()); }

Status ParseBody(Call& c, const std::vector<std::string_view>& allowed) {
  // The pre-routing handler refuses bodies it would not read; this is the
  // parse of one that passed (at most kMaxBodyBytes, iterative, depth-limited).
  if (c.body) return Status::Ok();
  TV_ASSIGN_OR_RETURN(auto body, JsonBody::Parse(c.req.body, allowed));
  c.body = std::move(body);
  return Status::Ok();
}

std::optional<std::string> Query(const Call& c, const char* name) {
  if (!c.req.has_param(name)) return std::nullopt;
  return c.req.get_param_value(name);
}

Status RequireConfirm(Call& c) {
  if (auto q = Query(c, "confirm"); q && *q == "true") return Status::Ok();
  if (c.body) {
    TV_ASSIGN_OR_RETURN(bool confirmed, c.body->OptionalBool("confirm", false));
    if (confirmed) return Status::Ok();
  }
  return InvalidArgument("this call changes data: repeat it with \"confirm\": true (nothing was changed)");
}

TenantFn QueryTenant() {
  return [](Call& c) -> Result<std::optional<std::string>> {
    auto t = Query(c, "tenant");
    if (t && t->empty()) return InvalidArgument("query parameter 'tenant': must not be empty");
    return t;
  };
}

bool Visible(const Call& c, const std::string& tenant) { return c.who.CanAccess(tenant); }

Route MakeRoute(std::string method, std::string pattern, config::Role role, bool mutating, TenantFn tenant,
                HandlerFn handler) {
  Route r;
  r.method = std::move(method);
  r.regex = std::regex(pattern);
  r.pattern = std::move(pattern);
  r.role = role;
  r.mutating = mutating;
  r.tenant = std::move(tenant);
  r.handler = std::move(handler);
  return r;
}

// ---- the server ------------------------------------------------------------

namespace {
constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr size_t kMaxHeaderFields = 64;
constexpr size_t kMaxQueryParams = 32;
constexpr size_t kMaxAuditedQueryValue = 256;
constexpr auto kDenialWindow = std::chrono::seconds(2);
constexpr size_t kMaxDenialKeys = 64;
// Refused requests (no or a bad token) per source: a bucket of 100 refilled at 20 a second.
constexpr double kRefusalBurst = 100;
constexpr double kRefusalsPerSecond = 20;
constexpr size_t kMaxTrackedSources = 4096;

// The request's parameters as the audit keeps them: the query (bounded) and
// the body re-serialized from its parsed document (CanonicalBody), never the
// raw bytes.
std::string ParamsJson(const Call& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("query");
  w.StartObject();
  size_t n = 0;
  for (const auto& [k, v] : c.req.params) {
    if (++n > kMaxQueryParams) break;
    WriteString(w, k.substr(0, kMaxAuditedQueryValue));
    WriteString(w, v.substr(0, kMaxAuditedQueryValue));
  }
  w.EndObject();
  w.Key("body");
  if (c.req.body.empty()) {
    w.Null();
  } else {
    WriteRaw(w, CanonicalBody(c.req.body));
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// Refusals (401, 403, 429) are not written one entry each: identical ones
// (same source, token name, route, status) are counted and written as one
// entry per window, and at most kMaxDenialKeys distinct ones per window
// (the rest are counted under one overflow entry), so a flood of refused
// requests costs a bounded number of synced writes.
class DenialBook {
 public:
  void Add(const AuditRecord& r, const std::string& route) {
    std::lock_guard lock(mu_);
    std::string key = r.source + "\n" + r.actor + "\n" + r.method + "\n" + route + "\n" + std::to_string(r.status);
    auto it = pending_.find(key);
    if (it == pending_.end()) {
      if (pending_.size() >= kMaxDenialKeys) {
        ++overflow_;
        return;
      }
      it = pending_.emplace(key, r).first;
      it->second.count = 0;
    }
    ++it->second.count;
  }
  std::vector<AuditRecord> Take() {
    std::lock_guard lock(mu_);
    std::vector<AuditRecord> out;
    for (auto& [k, r] : pending_) out.push_back(std::move(r));
    pending_.clear();
    if (overflow_ > 0) {
      AuditRecord r;
      r.kind = "denied";
      r.outcome = "denied";
      r.message = "refused requests beyond " + std::to_string(kMaxDenialKeys) + " distinct kinds in this window";
      r.count = overflow_;
      out.push_back(std::move(r));
      overflow_ = 0;
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, AuditRecord> pending_;
  uint64_t overflow_ = 0;
};

// Per-source token buckets for refused requests.
class RefusalLimiter {
 public:
  bool Allow(const std::string& source) {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (buckets_.size() >= kMaxTrackedSources && !buckets_.count(source)) buckets_.clear();
    auto [it, inserted] = buckets_.try_emplace(source, Bucket{kRefusalBurst, now});
    Bucket& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(kRefusalBurst, b.tokens + elapsed * kRefusalsPerSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

bool IsBodyMethod(const std::string& m) { return m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE"; }

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}
}  // namespace

struct Server::Impl {
  ApiState state;
  std::vector<Route> routes;
  RequestEngine http;
  std::unique_ptr<HttpFront> front;
  std::unique_ptr<PlanScheduler> scheduler;
  DenialBook denials;
  RefusalLimiter limiter;
  std::mutex flush_mu;
  std::condition_variable flush_cv;
  bool stopping = false;
  std::thread flusher;
  int port = 0;

  const Route* Match(const httplib::Request& req, std::vector<std::string>* params, std::string* allow) const;
  void Dispatch(const httplib::Request& req, httplib::Response& res);
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req, httplib::Response& res);
  void Serve(const Route& route, Call& c);
  AuditRecord Record(const Call& c, std::string kind, std::string outcome) const;
  void Deny(const Call& c, const Route& route);
  void FlushDenials();
  void Configure();
};

AuditRecord Server::Impl::Record(const Call& c, std::string kind, std::string outcome) const {
  AuditRecord r;
  r.kind = std::move(kind);
  r.actor = c.who.name;
  r.source = c.req.remote_addr;
  r.method = c.req.method;
  r.path = c.req.path.substr(0, 1024);
  r.tenant = c.tenant;
  r.status = c.res.status > 0 ? c.res.status : 0;
  r.outcome = std::move(outcome);
  r.message = c.error_message;
  return r;
}

void Server::Impl::Deny(const Call& c, const Route& route) {
  AuditRecord r = Record(c, "denied", "denied");
  r.params_json = "{}";  // a refused request's body is never read, let alone kept
  denials.Add(r, route.pattern);
}

void Server::Impl::FlushDenials() {
  for (const auto& r : denials.Take()) {
    if (auto seq = state.audit->Append(r); !seq.ok()) spdlog::error("api: audit: {}", seq.status().ToString());
  }
}

void AuditInternal(ApiState& s, const std::string& kind, const std::string& path, const std::string& tenant,
                   const std::string& params_json, const Status& outcome) {
  AuditRecord r;
  r.kind = kind;
  r.actor = "scheduler";
  r.path = path;
  r.tenant = tenant;
  r.params_json = params_json;
  r.outcome = outcome.ok() ? "ok" : "error";
  r.message = outcome.ok() ? "" : outcome.message();
  if (auto seq = s.audit->Append(r); !seq.ok()) spdlog::error("api: audit: {}", seq.status().ToString());
}

const Route* Server::Impl::Match(const httplib::Request& req, std::vector<std::string>* params,
                                 std::string* allow) const {
  std::smatch m;
  for (const auto& r : routes) {
    if (!std::regex_match(req.path, m, r.regex)) continue;
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) {
      for (size_t i = 1; i < m.size(); ++i) params->push_back(m[i].str());
      return &r;
    }
    *allow += (allow->empty() ? "" : ", ") + r.method;
  }
  return nullptr;
}

void Server::Impl::Dispatch(const httplib::Request& req, httplib::Response& res) {
  // A request id on the response and on every JSON log line written for it.
  const std::string request_id = RandomHex(8);
  const ScopedLogContext log_request("request", request_id);
  res.set_header("X-Request-Id", request_id);
  Call c{req, res, {}, {}, {}, {}, {}, &state};
  std::string allow;
  const Route* found = Match(req, &c.params, &allow);
  if (!found && allow.empty()) return SendError(c, 404, "not_found", "no such endpoint: " + req.path.substr(0, 256));
  if (!found) {
    res.set_header("Allow", allow);
    return SendError(c, 405, "method_not_allowed",
                     req.method + " is not allowed on " + req.path.substr(0, 256) + " (allowed: " + allow + ")");
  }
  Serve(*found, c);
}

// Runs after httplib read the head and before it reads any body. Refuses
// what the front does not read (transfer-encoded, compressed, oversized or
// length-less bodies, too many header fields), and answers everything that
// needs no body right here, so a body is read only for an authenticated,
// authorized call of a route that takes one.
httplib::Server::HandlerResponse Server::Impl::PreRoute(const httplib::Request& req, httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  auto refuse = [&res](int status, const char* code, const std::string& message) {
    res.status = status;
    res.set_content(ErrorBody(code, message), "application/json");
    return HR::Handled;
  };
  if (req.headers.size() > kMaxHeaderFields) {
    return refuse(431, "headers_too_large", "more than " + std::to_string(kMaxHeaderFields) + " header fields");
  }
  if (req.has_header("Transfer-Encoding")) {
    return refuse(411, "length_required",
                  "transfer-encoded (chunked) request bodies are refused: send the body with a Content-Length");
  }
  if (req.has_header("Content-Encoding") && Lower(req.get_header_value("Content-Encoding")) != "identity") {
    return refuse(415, "unsupported_media_type", "compressed request bodies are refused: send the body uncompressed");
  }
  std::optional<uint64_t> length;
  if (size_t n = req.get_header_value_count("Content-Length"); n > 1) {
    return refuse(400, "bad_request", "more than one Content-Length header");
  } else if (n == 1) {
    std::string v = req.get_header_value("Content-Length");
    if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos) {
      return refuse(400, "bad_request", "Content-Length is not a number");
    }
    length = std::stoull(v);
    if (*length > kMaxBodyBytes) {
      return refuse(413, "payload_too_large", "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    }
  }
  if (!length && IsBodyMethod(req.method) && req.method != "DELETE") {
    return refuse(411, "length_required", req.method + " needs a Content-Length (0 for no body)");
  }
  if (!length || *length == 0 || !IsBodyMethod(req.method)) {
    Dispatch(req, res);  // nothing to read (a GET's body, if any, is never read)
    return HR::Handled;
  }
  std::vector<std::string> params;
  std::string allow;
  const Route* route = Match(req, &params, &allow);
  if (!route || !route->authenticated) {
    Dispatch(req, res);
    return HR::Handled;
  }
  auto who = state.auth->Authenticate(req.get_header_value("Authorization"));
  if (!who.ok() || !Authorize(*who, route->role, std::nullopt).ok()) {
    Dispatch(req, res);  // answers 401/403 (and audits it) without reading the body
    return HR::Handled;
  }
  return HR::Unhandled;
}

void Server::Impl::Serve(const Route& route, Call& c) {
  if (route.authenticated) {
    auto who = state.auth->Authenticate(c.req.get_header_value("Authorization"));
    if (!who.ok()) {
      if (!limiter.Allow(c.req.remote_addr)) {
        c.res.set_header("Retry-After", "1");
        SendError(c, 429, "rate_limited", "too many refused requests from this address; retry later");
      } else {
        c.res.set_header("WWW-Authenticate", "Bearer");
        SendError(c, who.status());
      }
      return Deny(c, route);
    }
    c.who = std::move(who).value();
    if (Status s = Authorize(c.who, route.role, std::nullopt); !s.ok()) {
      SendError(c, s);
      return Deny(c, route);
    }
  }
  if (route.tenant) {
    auto tenant = route.tenant(c);
    if (!tenant.ok()) {
      SendError(c, tenant.status());
      if (route.mutating) {
        AuditRecord r = Record(c, "refused", "error");
        r.params_json = ParamsJson(c);
        if (auto seq = state.audit->Append(r); !seq.ok()) spdlog::error("api: audit: {}", seq.status().ToString());
      }
      return;
    }
    if (*tenant) {
      c.tenant = **tenant;
      if (Status s = Authorize(c.who, route.role, c.tenant); !s.ok()) {
        SendError(c, s);
        return Deny(c, route);
      }
    }
  }
  uint64_t intent = 0;
  if (route.mutating || route.export_audited) {
    // Written and synced before the work starts: no change without its
    // entry, and no change at all if the entry cannot be written.
    AuditRecord r = Record(c, route.mutating ? "intent" : "export", "started");
    r.params_json = ParamsJson(c);
    auto seq = state.audit->Append(r);
    if (!seq.ok()) {
      spdlog::error("api: audit: {}; refusing {} {}", seq.status().ToString(), c.req.method, c.req.path);
      return SendError(c, 503, "unavailable",
                       "the audit trail cannot be written, so nothing was done (an administrator must check it)");
    }
    intent = *seq;
  }
  if (route.method == "POST" && c.req.has_header("Idempotency-Key")) {
    ServeIdempotent(state, route.handler, c);
  } else {
    route.handler(c);
  }
  if (route.mutating) {
    AuditRecord r = Record(c, "result", c.res.status < 400 ? "ok" : "error");
    r.params_json = "{}";
    r.ref = intent;
    if (auto seq = state.audit->Append(r); !seq.ok()) spdlog::error("api: audit: {}", seq.status().ToString());
  }
}

void Server::Impl::Configure() {
  http.set_payload_max_length(kMaxBodyBytes);
  // Every request is answered by the pre-routing handler except the ones
  // whose body is to be read; those reach the catch-all handlers below.
  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return PreRoute(req, res); });
  auto dispatch = [this](const httplib::Request& req, httplib::Response& res) { Dispatch(req, res); };
  http.Post(".*", dispatch);
  http.Put(".*", dispatch);
  http.Delete(".*", dispatch);
  http.Patch(".*", dispatch);
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = res.status == 413 ? "payload_too_large" : res.status == 404 ? "not_found" : "bad_request";
    std::string message = res.status == 413
                              ? "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes"
                              : "the request could not be processed (HTTP " + std::to_string(res.status) + ")";
    res.set_content(ErrorBody(code, message), "application/json");
  });
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::string ref = RandomHex(6);
    spdlog::error("api: {} {}: exception (ref {}): {}", req.method, req.path, ref, what);
    res.status = 500;
    res.set_content(ErrorBody("internal", "internal error (logged as ref " + ref + ")"), "application/json");
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    state.http.Count(res.status);
    spdlog::debug("api: {} {} -> {}", req.method, req.path, res.status);
  });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Create(const config::Config& cfg, const Backends& backends) {
  if (backends.store == nullptr) return InvalidArgument("api: the server needs a store");
  auto impl = std::make_unique<Impl>();
  ApiState& s = impl->state;
  s.cfg = cfg;
  s.backends = backends;
  s.clock = backends.clock ? backends.clock : &SystemClock();
  s.health_pg = std::make_unique<pg::ReusedConn>(cfg.postgres.conninfo, "timevault-health");
  if (s.cfg.api.state_dir.empty()) s.cfg.api.state_dir = cfg.store.path + "-api";
  std::error_code ec;
  std::filesystem::create_directories(s.cfg.api.state_dir, ec);
  if (ec) return InvalidArgument("api.state_dir: cannot create " + s.cfg.api.state_dir + ": " + ec.message());
  ::chmod(s.cfg.api.state_dir.c_str(), 0700);
  s.auth = std::make_unique<Authenticator>(cfg.api.tokens);
  auto master = crypto::MasterKey::Load(cfg.store.key_file);
  if (!master.ok())
    return InvalidArgument("api: the audit trail's key comes from store.key_file: " + master.status().message());
  TV_ASSIGN_OR_RETURN(s.audit, AuditLog::Open(s.cfg.api.state_dir, master->DeriveKey("audit/v1"), *s.clock));
  for (const auto& [path, name] :
       std::vector<std::pair<std::string, std::string>>{{s.cfg.api.state_dir, "<api.state_dir>"},
                                                        {s.cfg.replay.backup_dir, "<replay.backup_dir>"},
                                                        {s.cfg.replay.snapshot_dir, "<replay.snapshot_dir>"},
                                                        {s.cfg.store.key_file, "<store.key_file>"},
                                                        {s.cfg.store.path, "<store.path>"}}) {
    if (!path.empty()) s.redactions.emplace_back(path, name);
  }
  // Longest first, so "<store.path>-backups" is not half-replaced by "<store.path>".
  std::sort(s.redactions.begin(), s.redactions.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  TV_ASSIGN_OR_RETURN(s.jobs, JobRunner::Open(s.cfg.api.state_dir, backends.job_threads, *s.clock));
  TV_ASSIGN_OR_RETURN(s.plans, PlanStore::Open(s.cfg.api.state_dir));
  AddAdminRoutes(s, impl->routes);
  AddBackupRoutes(s, impl->routes);
  AddReplayRoutes(s, impl->routes);
  AddPlanRoutes(s, impl->routes);
  AddDataRoutes(s, impl->routes);
  AddConsoleRoutes(s, impl->routes);
  AddGapRoutes(s, impl->routes);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Start() {
  auto& i = *impl_;
  const auto& api = i.state.cfg.api;
  size_t colon = api.listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("api.listen: expected host:port, got '" + api.listen + "'");
  std::string host = api.listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(api.listen.substr(colon + 1));
  } catch (...) {
    return InvalidArgument("api.listen: bad port in '" + api.listen + "'");
  }
  i.Configure();
  i.front = std::make_unique<HttpFront>(i.http, FrontLimits{});
  if (!api.tls_cert.empty() || !api.tls_key.empty()) {
    if (api.tls_cert.empty() || api.tls_key.empty()) return InvalidArgument("api.tls_cert and api.tls_key go together");
    TV_RETURN_IF_ERROR(i.front->EnableTls({api.tls_cert, api.tls_key, api.tls_client_ca}));
  }
  auto bound = i.front->Start(host, port);
  if (!bound.ok()) return bound.status();
  i.port = *bound;
  i.flusher = std::thread([&i] {
    std::unique_lock lock(i.flush_mu);
    while (!i.stopping) {
      i.flush_cv.wait_for(lock, kDenialWindow);
      lock.unlock();
      i.FlushDenials();
      lock.lock();
    }
  });
  i.scheduler = std::make_unique<PlanScheduler>(i.state, i.state.backends.scheduler_interval_ms);
  spdlog::info("api: listening on {}://{}:{}", api.tls_cert.empty() ? "http" : "https", host, i.port);
  return Status::Ok();
}

int Server::port() const { return impl_->port; }

void Server::Stop() {
  auto& i = *impl_;
  if (i.scheduler) i.scheduler->Stop();
  if (i.front) i.front->Stop();
  {
    std::lock_guard lock(i.flush_mu);
    i.stopping = true;
  }
  i.flush_cv.notify_all();
  if (i.flusher.joinable()) i.flusher.join();
  if (i.state.audit) i.FlushDenials();
  if (i.state.jobs) i.state.jobs->Shutdown();
}

}  // namespace timevault::api
