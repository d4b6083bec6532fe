// The replication side of capture: a libpq connection in `replication=database`
// mode that manages the logical slot and streams pgoutput over CopyBoth.
//
// ReplicationStream is the narrow interface the capture loop reads from, so
// the loop can be driven by a fake in tests. PgReplication is the real one.
// Neither is thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "timevault/core/lsn.h"
#include "timevault/core/pg.h"
#include "timevault/core/status.h"

namespace timevault::capture {

class ReplicationStream {
 public:
  virtual ~ReplicationStream() = default;
  // The next CopyData message from the server, or nullopt when none arrived
  // within `timeout_ms`. The view stays valid until the next call.
  // Unavailable when the connection broke or the server ended the stream.
  virtual Result<std::optional<std::string_view>> Read(int timeout_ms) = 0;
  // Sends a standby status update: written/flushed/applied = `flush`.
  virtual Status SendStatus(Lsn flush, bool reply_requested) = 0;
};

struct SlotState {
  bool exists = false;
  std::string plugin;
  std::string database;
  Lsn confirmed_flush;
  Lsn restart_lsn;
  bool active = false;
  std::string wal_status;  // "reserved", "extended", "unreserved", "lost" (PG13+)
};

// IDENTIFY_SYSTEM: which cluster and timeline the connection reached.
struct SystemIdentity {
  std::string system_id;
  int64_t timeline = 0;
  Lsn xlogpos;
};

struct CreatedSlot {
  Lsn consistent_point;
  std::string snapshot_name;  // empty unless exported
};

class PgReplication final : public ReplicationStream {
 public:
  ~PgReplication() override;

  // Connects with replication=database.
  static Result<std::unique_ptr<PgReplication>> Connect(const std::string& conninfo);

  Result<SlotState> GetSlot(const std::string& slot);
  // CREATE_REPLICATION_SLOT ... LOGICAL pgoutput, exporting a snapshot when
  // `export_snapshot`. The snapshot stays valid until the next command here.
  Result<CreatedSlot> CreateSlot(const std::string& slot, bool export_snapshot);
  Status DropSlot(const std::string& slot);
  // Current WAL flush position of the server.
  Result<Lsn> CurrentWalLsn();
  Result<SystemIdentity> IdentifySystem();
  // START_REPLICATION from `start` (0/0: the slot's confirmed position).
  Status Start(const std::string& slot, Lsn start, const std::string& publication);

  Result<std::optional<std::string_view>> Read(int timeout_ms) override;
  Status SendStatus(Lsn flush, bool reply_requested) override;
  // The buffer behind the view the last Read returned, now the caller's (to
  // free with PQfreemem); the next Read leaves it alone.
  char* TakeBuffer() { return std::exchange(buffer_, nullptr); }

 private:
  PgReplication() = default;
  pg::PgConn conn_;
  char* buffer_ = nullptr;  // last PQgetCopyData buffer, freed on the next Read
};

}  // namespace timevault::capture
