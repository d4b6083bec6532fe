// The applies' snapshots (docs/replay.md "Snapshots"): before an apply
// writes, the current image of every row it will touch goes into an
// encrypted archive <snapshot_dir>/s-<job>; a rollback applies it back as a
// keyed target. Listing, reading, expiring and saving them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "apply.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/core/types.h"
#include "timevault/replay/archive_keys.h"
#include "timevault/replay/engine.h"

namespace timevault::replay {

// What a rollback of a snapshot puts back: the keyed target of each table.
struct RollbackTarget {
  TenantId tenant;
  std::vector<std::string> scope;  // name order
  std::map<std::string, KeyedTable> tables;
  uint64_t rows = 0;  // rows and absent keys, for load progress
};

// What an apply records about itself in its snapshot's manifest.
struct SnapshotOrigin {
  std::string job_id;
  SnapshotReason reason = SnapshotReason::kPitr;
  std::string source;  // plan, backup or snapshot id
  TenantId tenant;
};

class SnapshotStore {
 public:
  SnapshotStore(std::string dir, ArchiveKeyRing* keys, int64_t retention_days)
      : dir_(std::move(dir)), keys_(keys), retention_days_(retention_days) {}

  std::string Path(const std::string& snapshot_id) const { return dir_ + "/" + snapshot_id; }
  bool Exists(const std::string& snapshot_id) const;

  // Newest first; `tenant`: only its snapshots. Unreadable ones are logged
  // and left out.
  Result<std::vector<SnapshotInfo>> List(const std::optional<std::string>& tenant);
  Result<SnapshotInfo> Get(const std::string& snapshot_id);
  // Removes the snapshots older than the retention; returns their ids.
  Result<std::vector<std::string>> Expire(CommitTime now);

  // Reads a snapshot's rows, absent keys and after-images.
  Result<RollbackTarget> LoadRollback(const std::string& snapshot_id);

  // Saves what `applier` will change (Applier::SaveSnapshot) as snapshot
  // SnapshotIdForJob(origin.job_id); returns its id.
  Result<std::string> Save(Applier& applier, const SnapshotOrigin& origin);

 private:
  std::string dir_;
  ArchiveKeyRing* keys_;
  int64_t retention_days_;
};

}  // namespace timevault::replay
