#include "capture/replication.h"

#include <poll.h>

#include <chrono>

#include "timevault/capture/pgoutput.h"
#include "timevault/core/time.h"

namespace timevault::capture {
namespace {

int64_t PostgresNow() { return SystemClock().Now().micros() - CommitTime::kPostgresEpochOffsetMicros; }

Result<Lsn> ParseLsnField(std::string_view text, std::string_view what) {
  auto lsn = Lsn::Parse(text);
  if (!lsn) return Internal("postgres returned an unparsable " + std::string(what) + ": '" + std::string(text) + "'");
  return *lsn;
}

}  // namespace

PgReplication::~PgReplication() {
  if (buffer_) PQfreemem(buffer_);
}

Result<std::unique_ptr<PgReplication>> PgReplication::Connect(const std::string& conninfo) {
  std::unique_ptr<PgReplication> r(new PgReplication());
  TV_ASSIGN_OR_RETURN(r->conn_, pg::PgConn::Connect(conninfo + " replication=database"));
  return r;
}

Result<SlotState> PgReplication::GetSlot(const std::string& slot) {
  TV_ASSIGN_OR_RETURN(auto res,
                      conn_.Exec("SELECT plugin, database, confirmed_flush_lsn, restart_lsn, active, wal_status "
                                 "FROM pg_replication_slots WHERE slot_name = " +
                                 conn_.QuoteLiteral(slot)));
  SlotState s;
  if (res.rows() == 0) return s;
  s.exists = true;
  s.plugin = res.GetString(0, 0);
  s.database = res.GetString(0, 1);
  if (!res.IsNull(0, 2)) {
    TV_ASSIGN_OR_RETURN(s.confirmed_flush, ParseLsnField(res.Get(0, 2), "confirmed_flush_lsn"));
  }
  if (!res.IsNull(0, 3)) {
    TV_ASSIGN_OR_RETURN(s.restart_lsn, ParseLsnField(res.Get(0, 3), "restart_lsn"));
  }
  s.active = res.Get(0, 4) == "t";
  if (!res.IsNull(0, 5)) s.wal_status = std::string(res.Get(0, 5));
  return s;
}

Result<SystemIdentity> PgReplication::IdentifySystem() {
  TV_ASSIGN_OR_RETURN(auto res, conn_.Exec("IDENTIFY_SYSTEM"));
  if (res.rows() != 1 || res.columns() < 3) return Internal("IDENTIFY_SYSTEM returned no row");
  SystemIdentity id;
  id.system_id = std::string(res.Get(0, 0));
  id.timeline = std::stoll(std::string(res.Get(0, 1)));
  TV_ASSIGN_OR_RETURN(id.xlogpos, ParseLsnField(res.Get(0, 2), "xlogpos"));
  return id;
}

Result<CreatedSlot> PgReplication::CreateSlot(const std::string& slot, bool export_snapshot) {
  std::string sql = "CREATE_REPLICATION_SLOT " + conn_.QuoteIdent(slot) + " LOGICAL pgoutput (SNAPSHOT '" +
                    (export_snapshot ? "export" : "nothing") + "')";
  TV_ASSIGN_OR_RETURN(auto res, conn_.Exec(sql));
  if (res.rows() != 1 || res.columns() < 3) return Internal("CREATE_REPLICATION_SLOT returned no row");
  CreatedSlot created;
  TV_ASSIGN_OR_RETURN(created.consistent_point, ParseLsnField(res.Get(0, 1), "consistent_point"));
  if (!res.IsNull(0, 2)) created.snapshot_name = res.GetString(0, 2);
  return created;
}

Status PgReplication::DropSlot(const std::string& slot) {
  return conn_.Run("DROP_REPLICATION_SLOT " + conn_.QuoteIdent(slot) + " WAIT");
}

Result<Lsn> PgReplication::CurrentWalLsn() {
  TV_ASSIGN_OR_RETURN(auto res, conn_.Exec("IDENTIFY_SYSTEM"));
  if (res.rows() != 1 || res.columns() < 3) return Internal("IDENTIFY_SYSTEM returned no row");
  return ParseLsnField(res.Get(0, 2), "xlogpos");
}

Status PgReplication::Start(const std::string& slot, Lsn start, const std::string& publication) {
  std::string sql = "START_REPLICATION SLOT " + conn_.QuoteIdent(slot) + " LOGICAL " + start.ToString() +
                    " (proto_version '1', publication_names " + conn_.QuoteLiteral(publication) + ", messages 'true')";
  pg::PgResult res(PQexec(conn_.raw(), sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_BOTH) {
    TV_RETURN_IF_ERROR(pg::CheckResult(res.raw(), conn_.raw()));
    return Internal("START_REPLICATION did not enter copy mode");
  }
  return Status::Ok();
}

Result<std::optional<std::string_view>> PgReplication::Read(int timeout_ms) {
  if (buffer_) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int n = PQgetCopyData(conn_.raw(), &buffer_, 1);
    if (n > 0) return std::optional<std::string_view>(std::string_view(buffer_, static_cast<size_t>(n)));
    if (n == -1) {
      pg::PgResult res(PQgetResult(conn_.raw()));
      auto st = pg::CheckResult(res.raw(), conn_.raw());
      return Unavailable("replication stream ended" + (st.ok() ? std::string() : ": " + st.message()));
    }
    if (n == -2) return Unavailable("replication stream: " + conn_.ErrorMessage());
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::optional<std::string_view>();
    pollfd pfd{PQsocket(conn_.raw()), POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) return Unavailable("replication stream: poll failed");
    if (rc > 0 && PQconsumeInput(conn_.raw()) == 0) {
      return Unavailable("replication stream: " + conn_.ErrorMessage());
    }
  }
}

Status PgReplication::SendStatus(Lsn flush, bool reply_requested) {
  std::string msg = pgoutput::EncodeStandbyStatus(flush, flush, flush, PostgresNow(), reply_requested);
  if (PQputCopyData(conn_.raw(), msg.data(), static_cast<int>(msg.size())) != 1 || PQflush(conn_.raw()) != 0) {
    return Unavailable("replication stream: sending status update: " + conn_.ErrorMessage());
  }
  return Status::Ok();
}

}  // namespace timevault::capture
