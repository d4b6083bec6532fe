// The replay engine (docs/replay.md): point-in-time recovery (preview, then
// execute by plan id), restore from a backup, snapshots and rollback. Every
// apply goes through one diff-and-apply path: the tenant's live rows are
// locked, compared with the target state, the rows about to change are saved
// as a snapshot, and the changes are applied in one Postgres transaction in
// foreign-key-safe order, marked with pg_logical_emit_message carrying the
// job id.
//
// An Engine is thread-safe: the API runs several jobs at once (applies to the
// same tenant serialize on its row locks).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "timevault/config/config.h"
#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/core/types.h"
#include "timevault/replay/backup.h"
#include "timevault/store/store.h"

namespace timevault::replay {

struct OperationCounts {
  uint64_t inserts = 0;
  uint64_t updates = 0;
  uint64_t deletes = 0;
  uint64_t total() const { return inserts + updates + deletes; }
};

// Writes `ops` as the members insert, update, delete and (unless
// `with_total` is false: the engine's persisted plans) total of the JSON
// object open in `w` (any RapidJSON writer): one shape for the API, the CLI
// and the engine.
template <typename Writer>
void WriteOperationCounts(Writer& w, const OperationCounts& ops, bool with_total = true) {
  w.Key("insert");
  w.Uint64(ops.inserts);
  w.Key("update");
  w.Uint64(ops.updates);
  w.Key("delete");
  w.Uint64(ops.deletes);
  if (!with_total) return;
  w.Key("total");
  w.Uint64(ops.total());
}

struct TableOperations {
  std::string table;  // "schema.table"
  OperationCounts ops;
};

// What a PITR will do. The plan id is bound to all of it: execute refuses a
// plan whose operations would no longer be these.
struct PitrPlan {
  std::string plan_id;
  std::string tenant;
  std::vector<std::string> tables;  // as requested (empty: every table with the tenant column)
  store::Point target;              // the commit the tenant goes back to
  OperationCounts ops;
  std::vector<TableOperations> by_table;  // tables with at least one operation
  double estimated_seconds = 0;
  CommitTime created_at;
  // Per table with operations: how many of them the preview kept as its row
  // sample (at most kPreviewSampleRows; PlanSample pages through them).
  std::map<std::string, uint64_t> sampled;
};

// The row sample a PITR preview keeps per table (docs/replay.md "Row sample").
inline constexpr uint64_t kPreviewSampleRows = 200;

// One page of a preview's row sample of one table.
struct SamplePage {
  std::string plan_id;
  std::string table;
  uint64_t operations = 0;  // the table's operations in the plan
  uint64_t sampled = 0;     // of those, kept in the sample (the first in key order)
  // JSON objects {"op", "key", "before", "after", "changed", "truncated"},
  // in key order (docs/replay.md "Row sample").
  std::vector<std::string> changes;
  std::optional<uint64_t> next;  // offset of the next page; none after the last
};

// Called while a job runs: the phase ("resolve", "lock", "diff", "snapshot",
// "apply", "verify", "commit") and the fraction done overall (0..1).
using ProgressFn = std::function<void(std::string_view phase, double fraction)>;

// Asked by a running apply at its safe points (while it loads and diffs the
// target, and last right before its snapshot is saved): true stops the
// apply there with Aborted, its transaction rolled back, nothing changed in
// Postgres and no snapshot written. Past that point (snapshot, apply,
// verify, commit) the apply is not stopped. Null: never cancelled.
using CancelFn = std::function<bool()>;

struct ApplyResult {
  std::string snapshot_id;  // the snapshot saved before the apply
  OperationCounts ops;
  std::vector<TableOperations> by_table;
  double seconds = 0;
  Lsn commit_lsn;  // the LSN of the apply's commit (Lsn{} when nothing changed)
  // Invariant 9: before committing, the apply compared the tenant's rows in
  // scope with the target in every column (an apply that left a difference
  // rolls back and fails instead). `verified_digest` is the SHA-256 the
  // live rows matched (Applier::verified_digest).
  bool verified = false;
  std::string verified_digest;
  // PITR: the target came from the preview's staged target (kept in memory
  // by the process that previewed), not from the store again.
  bool target_staged = false;
};

// Writes `verified` and `verified_digest` of `r` into the JSON object open in
// `w`: one shape for the API's job result and the CLI.
template <typename Writer>
void WriteVerification(Writer& w, const ApplyResult& r) {
  w.Key("verified");
  w.Bool(r.verified);
  w.Key("verified_digest");
  w.String(r.verified_digest.c_str());
}

enum class SnapshotReason { kPitr, kRestore, kRollback };
std::string_view SnapshotReasonName(SnapshotReason reason);

struct SnapshotInfo {
  std::string id;
  std::string tenant;
  std::vector<std::string> tables;  // the tables it holds rows of
  Lsn lsn;                          // the WAL position at which the rows were read
  CommitTime created_at;
  std::string job_id;
  SnapshotReason reason = SnapshotReason::kPitr;
  std::string source;   // plan id, backup id or rolled-back snapshot id
  uint64_t rows = 0;    // rows saved (their pre-apply images)
  uint64_t absent = 0;  // keys the apply inserted (rollback deletes them)
  uint64_t bytes = 0;
};

// What a rollback would do (Engine::PreviewRollback; docs/replay.md
// "Rollback preview").
struct RollbackPreview {
  std::string snapshot_id;
  std::string tenant;
  OperationCounts ops;  // every operation the rollback would make
  std::vector<TableOperations> by_table;
  // Of those, the ones that undo a change made after the snapshot's apply:
  // a row the apply wrote that the application changed or deleted since, a
  // row it deleted that exists again. `reverts_known` is false for a
  // snapshot saved before after-images were recorded.
  bool reverts_known = true;
  uint64_t reverts = 0;
  std::map<std::string, uint64_t> reverts_by_table;
  std::string reverts_digest;  // Rollback's confirm_reverts
  // The first kRevertSampleRows reverts per table: (table, JSON object as
  // in SamplePage::changes: before = the live row now, after = what the
  // rollback writes).
  std::vector<std::pair<std::string, std::string>> revert_sample;
};
inline constexpr uint64_t kRevertSampleRows = 100;

// `p` as a JSON object (one shape for the API and the CLI; docs/api.md
// "Rollback preview"): snapshot_id, tenant, operations, tables, reverts_known,
// reverts, reverts_by_table, reverts_digest, confirm_required, revert_sample.
std::string RollbackPreviewJson(const RollbackPreview& p);

// The id of the snapshot the apply of job `job_id` saves: known before the
// job runs (the API answers 202 with it). Job ids must be unique.
std::string SnapshotIdForJob(std::string_view job_id);

// A PITR target: a time (resolved to the last commit at or before it) or an LSN.
using PitrTarget = std::variant<CommitTime, Lsn>;

class Engine {
 public:
  // `store` outlives the engine. Opens the snapshot and backup directories of
  // the config and the master key.
  static Result<std::unique_ptr<Engine>> Open(const config::Config& cfg, store::StateReader* store);
  virtual ~Engine() = default;

  // Dry run: resolves the target, diffs, and saves the plan (plans expire
  // after an hour). OutOfRange past the recoverable point, NotFound for an
  // unknown table or a table without the tenant column.
  virtual Result<PitrPlan> PreviewPitr(const TenantId& tenant, const PitrTarget& target,
                                       const std::vector<std::string>& tables) = 0;
  virtual Result<PitrPlan> GetPlan(const std::string& plan_id) = 0;
  // A page of the preview's row sample of `table` (changes offset ..
  // offset+limit-1 of those kept). NotFound for an unknown plan, or a table
  // the plan does not change.
  virtual Result<SamplePage> PlanSample(const std::string& plan_id, const std::string& table, uint64_t offset,
                                        uint64_t limit) = 0;
  // Executes a saved plan: NotFound when the plan is unknown;
  // FailedPrecondition when it expired (an hour after the preview), already
  // ran, or the tenant changed since the preview so the operations differ;
  // OutOfRange when the target is past the recoverable point. Nothing is
  // changed in any of these cases.
  virtual Result<ApplyResult> ExecutePitr(const std::string& plan_id, const std::string& job_id,
                                          const ProgressFn& progress, const CancelFn& cancelled = nullptr) = 0;
  // Makes the tenant's live rows (in `tables`, empty: the backup's) equal the
  // backup's state.
  virtual Result<ApplyResult> Restore(const std::string& backup_id, const TenantId& tenant,
                                      const std::vector<std::string>& tables, const std::string& job_id,
                                      const ProgressFn& progress, const CancelFn& cancelled = nullptr) = 0;
  // Puts the rows of a snapshot back (saving a snapshot of its own first).
  // When that would revert rows changed since the apply that saved the
  // snapshot (PreviewRollback's reverts), `confirm_reverts` must be the
  // preview's reverts_digest: empty or another digest is FailedPrecondition
  // and nothing is changed.
  virtual Result<ApplyResult> Rollback(const std::string& snapshot_id, const std::string& job_id,
                                       const ProgressFn& progress, const CancelFn& cancelled = nullptr,
                                       const std::string& confirm_reverts = {}) = 0;
  // What Rollback would do now, without locks or changes: its operations,
  // and those that revert a change made since the snapshot's apply.
  virtual Result<RollbackPreview> PreviewRollback(const std::string& snapshot_id) = 0;

  // Newest first.
  virtual Result<std::vector<SnapshotInfo>> ListSnapshots(const std::optional<std::string>& tenant) = 0;
  virtual Result<SnapshotInfo> GetSnapshot(const std::string& snapshot_id) = 0;
  // Removes snapshots older than replay.snapshot_retention_days; their ids.
  virtual Result<std::vector<std::string>> ExpireSnapshots(CommitTime now) = 0;

  virtual BackupCatalog& backups() = 0;
  virtual store::StateReader& store() = 0;
  virtual const config::Config& config() const = 0;
};

}  // namespace timevault::replay
