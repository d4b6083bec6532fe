#include "timevault/core/pg_reused.h"

namespace timevault::pg {

namespace {

std::string WithConnectTimeout(const std::string& conninfo) {
  if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
  if (conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0) {
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=3";
  }
  return conninfo + " connect_timeout=3";
}

}  // namespace

ReusedConn::ReusedConn(std::string conninfo, std::string application_name)
    : conninfo_(WithConnectTimeout(conninfo)), application_name_(std::move(application_name)) {}

Status ReusedConn::EnsureConnectedLocked() {
  if (conn_ && conn_->connected()) return Status::Ok();
  conn_.reset();
  TV_ASSIGN_OR_RETURN(auto conn, PgConn::Connect(conninfo_));
  ++connects_;
  TV_RETURN_IF_ERROR(conn.ExecParams("SELECT set_config('application_name', $1, false)", {application_name_}).status());
  conn_ = std::move(conn);
  return Status::Ok();
}

Result<PgResult> ReusedConn::ExecParams(std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  std::lock_guard lock(mu_);
  TV_RETURN_IF_ERROR(EnsureConnectedLocked());
  auto r = conn_->ExecParams(sql, params);
  if (r.ok() || conn_->connected()) return r;
  // The connection broke (server restarted, network): one fresh try.
  TV_RETURN_IF_ERROR(EnsureConnectedLocked());
  return conn_->ExecParams(sql, params);
}

Status ReusedConn::Use(const std::function<Status(PgConn&)>& fn) {
  std::lock_guard lock(mu_);
  TV_RETURN_IF_ERROR(EnsureConnectedLocked());
  return fn(*conn_);
}

uint64_t ReusedConn::connects() const {
  std::lock_guard lock(mu_);
  return connects_;
}

}  // namespace timevault::pg
