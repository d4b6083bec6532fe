#include <spdlog/spdlog.h>

#include <filesystem>
#include <set>

#include "server_impl.h"
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

void SendError(Call& c, int http, std::string_view code, const std::string& message) {
  c.error_message = message;
  SendJson(c, http, ErrorBody(code, message));
}

void SendError(Call& c, const Status& s) { SendError(c, HttpStatusFor(s.code()), ErrorCodeFor(s.code()), s.message()); }

Status ParseBody(Call& c, const std::vector<std::string_view>& allowed) {
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

struct Server::Impl {
  ApiState state;
  std::vector<Route> routes;
  std::unique_ptr<httplib::Server> http;
  std::unique_ptr<PlanScheduler> scheduler;
  std::thread thread;
  int port = 0;

  void Dispatch(const httplib::Request& req, httplib::Response& res);
  void Serve(const Route& route, Call& c);
  void Audit(const Call& c, const Route* route, std::string_view outcome);
  void Configure();
};

namespace {
constexpr size_t kMaxBodyBytes = 1 << 20;

std::string ParamsJson(const Call& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("query");
  w.StartObject();
  for (const auto& [k, v] : c.req.params) {
    w.Key(k.c_str());
    WriteString(w, v);
  }
  w.EndObject();
  w.Key("body");
  if (c.req.body.empty()) {
    w.Null();
  } else if (IsValidJson(c.req.body)) {
    WriteRaw(w, c.req.body);
  } else {
    WriteString(w, "(not JSON, " + std::to_string(c.req.body.size()) + " bytes)");
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}
}  // namespace

void Server::Impl::Audit(const Call& c, const Route* route, std::string_view outcome) {
  AuditRecord r;
  r.actor = c.who.name;
  r.method = c.req.method;
  r.path = c.req.path;
  r.tenant = c.tenant;
  r.params_json = ParamsJson(c);
  r.status = c.res.status;
  r.outcome = std::string(outcome);
  r.message = c.error_message;
  (void)route;
  if (Status s = state.audit->Append(r); !s.ok()) spdlog::error("api: audit: {}", s.ToString());
}

void Server::Impl::Dispatch(const httplib::Request& req, httplib::Response& res) {
  // A request id on the response and on every JSON log line written for it.
  const std::string request_id = RandomHex(8);
  const ScopedLogContext log_request("request", request_id);
  res.set_header("X-Request-Id", request_id);
  Call c{req, res, {}, {}, {}, {}, {}};
  const Route* found = nullptr;
  std::string allow;
  std::smatch m;
  for (const auto& r : routes) {
    if (!std::regex_match(req.path, m, r.regex)) continue;
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) {
      found = &r;
      for (size_t i = 1; i < m.size(); ++i) c.params.push_back(m[i].str());
      break;
    }
    allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (!found && allow.empty()) return SendError(c, 404, "not_found", "no such endpoint: " + req.path);
  if (!found) {
    res.set_header("Allow", allow);
    return SendError(c, 405, "method_not_allowed",
                     req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
  }
  Serve(*found, c);
}

void Server::Impl::Serve(const Route& route, Call& c) {
  if (route.authenticated) {
    auto who = state.auth->Authenticate(c.req.get_header_value("Authorization"));
    if (!who.ok()) {
      c.res.set_header("WWW-Authenticate", "Bearer");
      SendError(c, who.status());
      return Audit(c, &route, "denied");
    }
    c.who = std::move(who).value();
    if (Status s = Authorize(c.who, route.role, std::nullopt); !s.ok()) {
      SendError(c, s);
      return Audit(c, &route, "denied");
    }
  }
  if (route.tenant) {
    auto tenant = route.tenant(c);
    if (!tenant.ok()) {
      SendError(c, tenant.status());
      if (route.mutating) Audit(c, &route, "error");
      return;
    }
    if (*tenant) {
      c.tenant = **tenant;
      if (Status s = Authorize(c.who, route.role, c.tenant); !s.ok()) {
        SendError(c, s);
        return Audit(c, &route, "denied");
      }
    }
  }
  if (route.method == "POST" && c.req.has_header("Idempotency-Key")) {
    ServeIdempotent(state, route.handler, c);
  } else {
    route.handler(c);
  }
  if (route.mutating) Audit(c, &route, c.res.status < 400 ? "ok" : "error");
}

void Server::Impl::Configure() {
  http->set_payload_max_length(kMaxBodyBytes);
  http->set_read_timeout(30);
  // httplib 0.11 reads a request's body only for POST, PUT, PATCH and DELETE
  // with a Content-Length: any other body (a TRACE's, a GET's) stayed in the
  // connection and was parsed as the next request, so the next call on that
  // connection got a 400 (found by schemathesis), or ran whatever the body
  // spelled. One request per connection leaves nothing to misread.
  http->set_keep_alive_max_count(1);
  // Methods httplib routes to no handler (TRACE, CONNECT) get the router's
  // 405 with Allow (404 for an unknown path) instead of httplib's bare 400.
  http->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    static const std::set<std::string> kRouted = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    if (kRouted.count(req.method)) return httplib::Server::HandlerResponse::Unhandled;
    Dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  auto dispatch = [this](const httplib::Request& req, httplib::Response& res) { Dispatch(req, res); };
  http->Get(".*", dispatch);
  http->Post(".*", dispatch);
  http->Put(".*", dispatch);
  http->Delete(".*", dispatch);
  http->Patch(".*", dispatch);
  http->Options(".*", dispatch);
  http->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = res.status == 413 ? "payload_too_large" : res.status == 404 ? "not_found" : "bad_request";
    std::string message = res.status == 413
                              ? "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes"
                              : "the request could not be processed (HTTP " + std::to_string(res.status) + ")";
    res.set_content(ErrorBody(code, message), "application/json");
  });
  http->set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("api: {} {}: exception: {}", req.method, req.path, what);
    res.status = 500;
    res.set_content(ErrorBody("internal", "internal error: " + what), "application/json");
  });
  http->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
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
  if (s.cfg.api.state_dir.empty()) s.cfg.api.state_dir = cfg.store.path + "-api";
  std::error_code ec;
  std::filesystem::create_directories(s.cfg.api.state_dir, ec);
  if (ec) return InvalidArgument("api.state_dir: cannot create " + s.cfg.api.state_dir + ": " + ec.message());
  s.auth = std::make_unique<Authenticator>(cfg.api.tokens);
  TV_ASSIGN_OR_RETURN(s.audit, AuditLog::Open(s.cfg.api.state_dir, *s.clock));
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
  if (!api.tls_cert.empty() || !api.tls_key.empty()) {
    if (api.tls_cert.empty() || api.tls_key.empty()) return InvalidArgument("api.tls_cert and api.tls_key go together");
    i.http = std::make_unique<httplib::SSLServer>(api.tls_cert.c_str(), api.tls_key.c_str());
    if (!i.http->is_valid()) {
      return InvalidArgument("api.tls_cert/api.tls_key: cannot load " + api.tls_cert + " and " + api.tls_key +
                             " (not a PEM certificate and matching key?)");
    }
  } else {
    i.http = std::make_unique<httplib::Server>();
  }
  i.Configure();
  if (port == 0) {
    i.port = i.http->bind_to_any_port(host);
    if (i.port < 0) return Unavailable("api: cannot bind " + api.listen);
  } else {
    if (!i.http->bind_to_port(host, port)) return Unavailable("api: cannot bind " + api.listen + " (in use?)");
    i.port = port;
  }
  i.thread = std::thread([&i] { i.http->listen_after_bind(); });
  i.scheduler = std::make_unique<PlanScheduler>(i.state, i.state.backends.scheduler_interval_ms);
  spdlog::info("api: listening on {}://{}:{}", api.tls_cert.empty() ? "http" : "https", host, i.port);
  return Status::Ok();
}

int Server::port() const { return impl_->port; }

void Server::Stop() {
  auto& i = *impl_;
  if (i.scheduler) i.scheduler->Stop();
  if (i.http) i.http->stop();
  if (i.thread.joinable()) i.thread.join();
  if (i.state.jobs) i.state.jobs->Shutdown();
}

}  // namespace timevault::api
