// Backups (docs/replay.md "Backups"): full backups are a tenant's (or every
// tenant's) state at one commit; incremental ones the change events from
// their base's commit to a later commit, chained to the base by id. Both are
// archives (archive.h) under the catalog directory, one directory per backup
// named by its id.
//
// A BackupCatalog is thread-safe: the API runs backups, verifies and restores
// from several jobs at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/core/types.h"
#include "timevault/store/store.h"

namespace timevault::replay {

enum class BackupType { kFull, kIncremental };
std::string_view BackupTypeName(BackupType type);

struct BackupInfo {
  std::string id;
  BackupType type = BackupType::kFull;
  std::string tenant;                      // a tenant id, or "*" for every tenant
  std::vector<std::string> tables;         // empty: every table
  store::Point point;                      // the commit whose state it holds (incremental: the last one)
  std::optional<std::string> base_id;      // incremental: the backup it continues
  std::optional<store::Point> base_point;  // incremental: the base's point
  std::string name;
  std::string description;
  CommitTime created_at;
  std::map<std::string, uint64_t> rows;  // full: live rows per table; incremental: events per table
  uint64_t bytes = 0;                    // size on disk
};

struct BackupRequest {
  std::string tenant;  // or "*"
  std::vector<std::string> tables;
  std::optional<store::Point> at;  // default: the store's recoverable point
  std::string name;
  std::string description;
  // Asked while the backup is written (every few thousand rows or events,
  // and last before the archive is sealed): true stops it with Aborted and
  // nothing of it is kept (the temporary directory goes). Null: never.
  std::function<bool()> cancelled;
};

class BackupCatalog {
 public:
  // Opens (creating) the catalog in `dir`, loading the master key file.
  // `workers` (replay.backup_workers) bounds the threads of one backup: an
  // all-tenant full backup reads that many tenants at once, and as many
  // threads compress and encrypt its blocks.
  static Result<std::unique_ptr<BackupCatalog>> Open(const std::string& dir, const std::string& key_file,
                                                     size_t workers = 1);
  virtual ~BackupCatalog() = default;

  // A full backup of the tenant's state at request.at. OutOfRange past the
  // recoverable point.
  virtual Result<BackupInfo> CreateFull(store::StateReader& store, const BackupRequest& request) = 0;
  // The change events from the base's point to request.at (default: the
  // recoverable point), for the base's tenant and tables. The base is a full
  // or incremental backup; FailedPrecondition when request.at is not after it.
  virtual Result<BackupInfo> CreateIncremental(store::StateReader& store, const std::string& base_id,
                                               const BackupRequest& request) = 0;

  // Newest first; tenant given: that tenant's backups (and "*" backups).
  virtual Result<std::vector<BackupInfo>> List(const std::optional<std::string>& tenant) = 0;
  virtual Result<BackupInfo> Get(const std::string& id) = 0;
  // Every hash, every block of the backup and of the chain it needs; the
  // first problem, naming the backup, the file and what is wrong.
  virtual Status Verify(const std::string& id) = 0;
  // FailedPrecondition when another backup's chain needs it.
  virtual Status Delete(const std::string& id) = 0;
  // Expires backups beyond the newest `keep_count` (0: no limit by count) or
  // older than `max_age_days` (0: no limit by age), never one a kept
  // backup's chain needs. Returns the ids removed.
  // The count is per tenant value: with no tenant given, each tenant's (and
  // the "*") backups keep their newest `keep_count`; with a tenant, only
  // backups of exactly that tenant are considered. Removed newest first (an
  // incremental before its base).
  virtual Result<std::vector<std::string>> Expire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                                  const std::optional<std::string>& tenant) = 0;
  // What Expire with the same arguments would remove, changing nothing (the
  // CLI's dry run).
  virtual Result<std::vector<std::string>> PlanExpire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                                      const std::optional<std::string>& tenant) = 0;

  // The state the backup holds for `tenant` (one tenant even when the
  // backup holds "*"), restricted to `tables` (empty: all): the full base
  // with every incremental of the chain applied, verified first. Rows in
  // (table, pk) order; the json is the row image as the store gives it.
  virtual Status LoadState(const std::string& id, const TenantId& tenant, const std::vector<std::string>& tables,
                           const std::function<bool(const store::Row&)>& emit) = 0;
};

}  // namespace timevault::replay
