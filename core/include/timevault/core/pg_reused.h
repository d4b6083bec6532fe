// One Postgres connection kept open across calls, for what polls Postgres
// again and again (a metrics scrape, a health check): a call costs a query,
// not a connect and a backend start. Reconnects (once per call) when the
// connection broke. The connection names itself with application_name, so
// it can be told apart in pg_stat_activity.
//
// Thread-safe: one query at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/pg.h"

namespace timevault::pg {

class ReusedConn {
 public:
  // `conninfo` is a key/value string or a URI; a 3 s connect_timeout is
  // added unless it sets one.
  ReusedConn(std::string conninfo, std::string application_name);
  ReusedConn(const ReusedConn&) = delete;
  ReusedConn& operator=(const ReusedConn&) = delete;

  // Runs one statement with text parameters on the kept connection
  // (connecting first if there is none or it broke).
  Result<PgResult> ExecParams(std::string_view sql, const std::vector<std::optional<std::string>>& params);
  // Runs `fn` on the kept connection (connecting first if needed), under
  // the lock; its Status, or the connect's error.
  Status Use(const std::function<Status(PgConn&)>& fn);
  // Connections opened so far.
  uint64_t connects() const;

 private:
  Status EnsureConnectedLocked();

  std::string conninfo_;
  std::string application_name_;
  mutable std::mutex mu_;
  std::optional<PgConn> conn_;
  uint64_t connects_ = 0;
};

}  // namespace timevault::pg
