// RAII over libpq. PgConn owns a PGconn; PgResult owns a PGresult. Neither is
// copyable; both are movable. A PgConn is used by one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"

namespace timevault::pg {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}

  PGresult* raw() const { return r_.get(); }
  int rows() const { return PQntuples(r_.get()); }
  int columns() const { return PQnfields(r_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string GetString(int row, int col) const { return std::string(Get(row, col)); }
  // The column's index by name, or -1.
  int Column(const char* name) const { return PQfnumber(r_.get(), name); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

class PgConn {
 public:
  PgConn() = default;

  // Connects; Unavailable with libpq's message if it fails.
  static Result<PgConn> Connect(const std::string& conninfo);

  PGconn* raw() const { return c_.get(); }
  bool connected() const { return c_ && PQstatus(c_.get()) == CONNECTION_OK; }

  // Runs SQL (one or more statements, no parameters). OK for a command or
  // rows; otherwise the server's message (with SQLSTATE) as the Status.
  Result<PgResult> Exec(std::string_view sql);

  // Runs one statement with text parameters ($1, $2 ...); nullopt is NULL.
  Result<PgResult> ExecParams(std::string_view sql, const std::vector<std::optional<std::string>>& params);

  // Convenience: Exec and drop the rows.
  Status Run(std::string_view sql);

  // COPY ... FROM STDIN: CopyIn starts it, CopyPut sends data (any chunking),
  // CopyEnd finishes it and returns the command's status (the server checks
  // the data there). CopyAbort ends it with an error instead.
  Status CopyIn(std::string_view sql);
  Status CopyPut(std::string_view data);
  Status CopyEnd();
  void CopyAbort(const std::string& reason);

  // COPY ... TO STDOUT: `line` gets each data row (one line of COPY text,
  // with its trailing newline); an error it returns stops the copy.
  Status CopyOut(std::string_view sql, const std::function<Status(std::string_view line)>& line);

  std::string QuoteIdent(std::string_view ident) const;
  std::string QuoteLiteral(std::string_view literal) const;
  std::string ErrorMessage() const;

 private:
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Finish> c_;
};

// Maps a finished result to a Status (OK for COMMAND_OK, TUPLES_OK, COPY_*).
Status CheckResult(const PGresult* r, const PGconn* conn);

// "schema"."table" quoted for SQL.
std::string QualifiedName(const PgConn& conn, std::string_view schema, std::string_view table);

}  // namespace timevault::pg
