#include "timevault/core/pg.h"

namespace timevault::pg {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Connection losses are Unavailable (retry may help); server errors carry
// their SQLSTATE and map to the closest code.
Status FromServerError(const PGresult* r, const PGconn* conn) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = Trim(r ? PQresultErrorMessage(r) : "");
  if (msg.empty()) msg = Trim(PQerrorMessage(conn));
  if (state == nullptr || PQstatus(conn) != CONNECTION_OK) return Unavailable("postgres: " + msg);
  std::string_view s(state);
  std::string full = "postgres [" + std::string(s) + "]: " + msg;
  if (s.starts_with("08") || s.starts_with("57P")) return Unavailable(full);
  if (s == "40001" || s == "40P01" || s == "55P03") return Aborted(full);
  if (s.starts_with("42P01") || s == "42704") return NotFound(full);
  if (s.starts_with("23") || s.starts_with("22")) return InvalidArgument(full);
  return Internal(full);
}

}  // namespace

Status CheckResult(const PGresult* r, const PGconn* conn) {
  switch (r ? PQresultStatus(r) : PGRES_FATAL_ERROR) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
    case PGRES_SINGLE_TUPLE:
    case PGRES_EMPTY_QUERY: return Status::Ok();
    default: return FromServerError(r, conn);
  }
}

Result<PgConn> PgConn::Connect(const std::string& conninfo) {
  PgConn conn;
  conn.c_.reset(PQconnectdb(conninfo.c_str()));
  if (!conn.c_) return Unavailable("postgres: out of memory allocating a connection");
  if (PQstatus(conn.c_.get()) != CONNECTION_OK) {
    return Unavailable("postgres: cannot connect: " + Trim(PQerrorMessage(conn.c_.get())));
  }
  return conn;
}

Result<PgResult> PgConn::Exec(std::string_view sql) {
  PgResult r(PQexec(c_.get(), std::string(sql).c_str()));
  TV_RETURN_IF_ERROR(CheckResult(r.raw(), c_.get()));
  return r;
}

Result<PgResult> PgConn::ExecParams(std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult r(PQexecParams(c_.get(), std::string(sql).c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
  TV_RETURN_IF_ERROR(CheckResult(r.raw(), c_.get()));
  return r;
}

Status PgConn::Run(std::string_view sql) {
  auto r = Exec(sql);
  return r.ok() ? Status::Ok() : r.status();
}

Status PgConn::CopyIn(std::string_view sql) {
  PgResult r(PQexec(c_.get(), std::string(sql).c_str()));
  TV_RETURN_IF_ERROR(CheckResult(r.raw(), c_.get()));
  if (PQresultStatus(r.raw()) != PGRES_COPY_IN) return Internal("postgres: not a COPY FROM STDIN: " + std::string(sql));
  return Status::Ok();
}

Status PgConn::CopyPut(std::string_view data) {
  if (PQputCopyData(c_.get(), data.data(), static_cast<int>(data.size())) != 1) {
    return Unavailable("postgres: COPY data: " + Trim(PQerrorMessage(c_.get())));
  }
  return Status::Ok();
}

namespace {
// The final result of a COPY (and any results after it).
Status DrainResults(PGconn* conn) {
  Status status = Status::Ok();
  while (PGresult* raw = PQgetResult(conn)) {
    PgResult r(raw);
    if (Status s = CheckResult(r.raw(), conn); !s.ok() && status.ok()) status = s;
  }
  return status;
}
}  // namespace

Status PgConn::CopyEnd() {
  if (PQputCopyEnd(c_.get(), nullptr) != 1) {
    return Unavailable("postgres: COPY end: " + Trim(PQerrorMessage(c_.get())));
  }
  return DrainResults(c_.get());
}

void PgConn::CopyAbort(const std::string& reason) {
  PQputCopyEnd(c_.get(), reason.c_str());
  (void)DrainResults(c_.get());
}

Status PgConn::CopyOut(std::string_view sql, const std::function<Status(std::string_view line)>& line) {
  PgResult r(PQexec(c_.get(), std::string(sql).c_str()));
  TV_RETURN_IF_ERROR(CheckResult(r.raw(), c_.get()));
  if (PQresultStatus(r.raw()) != PGRES_COPY_OUT) return Internal("postgres: not a COPY TO STDOUT: " + std::string(sql));
  Status status = Status::Ok();
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(c_.get(), &buf, 0);
    if (n == -1) break;  // done; the result follows
    if (n == -2) return Unavailable("postgres: COPY out: " + Trim(PQerrorMessage(c_.get())));
    if (status.ok()) status = line(std::string_view(buf, static_cast<size_t>(n)));
    PQfreemem(buf);
  }
  Status end = DrainResults(c_.get());
  return status.ok() ? end : status;
}

std::string PgConn::QuoteIdent(std::string_view ident) const {
  char* q = PQescapeIdentifier(c_.get(), ident.data(), ident.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

std::string PgConn::QuoteLiteral(std::string_view literal) const {
  char* q = PQescapeLiteral(c_.get(), literal.data(), literal.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

std::string PgConn::ErrorMessage() const { return Trim(PQerrorMessage(c_.get())); }

std::string QualifiedName(const PgConn& conn, std::string_view schema, std::string_view table) {
  return conn.QuoteIdent(schema) + "." + conn.QuoteIdent(table);
}

}  // namespace timevault::pg
