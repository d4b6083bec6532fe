// Diff and apply (docs/replay.md "Diff and apply"): one Postgres transaction
// that loads a target state into temporary tables, compares it with the
// tenant's live rows in SQL, saves the rows it will touch, and applies the
// differences in foreign-key-safe order.
//
// Two kinds of target:
//  - whole tenant (PITR, restore): the target is every row the tenant should
//    have in the scope tables; live rows not in it are deleted. Rows come as
//    store row images (Debezium JSON plus capture's fidelity texts); every
//    column but the generated ones is compared and written, each from its
//    text, else from Debezium's value where that is exact, else refused.
//  - keyed (rollback): the target covers only the keys of a snapshot: each
//    key has a saved row (COPY text of every column) or is absent (deleted).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog.h"
#include "timevault/core/pg.h"
#include "timevault/core/status.h"
#include "timevault/replay/archive.h"
#include "timevault/replay/engine.h"
#include "timevault/store/store.h"

namespace timevault::replay {

// The start of an Aborted message when rows of the tenant appeared or
// vanished between the lock and the diff's own row locks: the engine starts
// the apply over (nothing was changed).
inline constexpr std::string_view kConcurrentChange = "the tenant's rows changed while the apply was computing";

struct ApplyOptions {
  std::string conninfo;
  std::string tenant_column;
  std::string tenant;
  std::vector<std::string> tables;  // scope, from ScopeTables
  bool lock = true;                 // execute: lock the tenant's rows; preview: a consistent read only
  int64_t lock_timeout_ms = 10000;
  bool keyed = false;  // rollback: the target covers only the keys it is given
  // Whole-tenant targets: keep the loaded target's COPY text (TakeStaged),
  // for a later apply of the same target (a PITR preview's execute).
  bool stage = false;
};

// A whole-tenant target as loaded into the temporary tables: per scope
// table the COPY text of tv_t_<i>. The target state at a point is a function
// of the store's history only, so a PITR preview keeps it for its execute,
// which loads it instead of reading and converting the store's rows again
// (docs/replay.md "Staged targets").
struct StagedTarget {
  struct Table {
    std::string columns;  // the target columns and types it was built for; another table shape cannot use it
    std::string copy;     // COPY text lines
    uint64_t rows = 0;
    std::vector<bool> texts;  // per target column: a fidelity text was loaded
  };
  std::map<std::string, Table> tables;
  uint64_t skipped = 0;
  uint64_t rows() const {
    uint64_t n = 0;
    for (const auto& [name, t] : tables) n += t.rows;
    return n;
  }
  size_t bytes() const {
    size_t n = 0;
    for (const auto& [name, t] : tables) n += t.copy.size() + t.columns.size();
    return n;
  }
};

// A table's part of a keyed target (from a snapshot).
struct KeyedTable {
  std::vector<std::string> columns;  // names, in the order of the COPY lines
  std::vector<std::string> rows;     // COPY text lines (no newline): rows to put back
  std::vector<std::string> absent;   // COPY text lines of the key columns: rows to delete
  // What the apply that saved the snapshot left (its file t<i>.after; absent
  // in snapshots saved before it existed): per key it inserted or updated, a
  // COPY text line "key columns..., hash" — hashtextextended(ROW(after
  // columns)::text, 0) of the row it wrote. Keys it deleted are not listed.
  bool has_after = false;
  std::vector<std::string> after_columns;
  std::vector<std::string> after;
};

// What a rollback would revert that changed after the apply it undoes
// (Applier::FindReverts; docs/replay.md "Rollback preview").
struct Reverts {
  bool known = true;  // false: a snapshot without after-images (saved before they existed)
  uint64_t count = 0;
  std::map<std::string, uint64_t> by_table;
  std::string digest;  // SHA-256 over table, operation, key and the live row's hash of each
};

struct DiffResult {
  OperationCounts ops;
  std::vector<TableOperations> by_table;  // tables with operations, name order
  std::string digest;                     // SHA-256 over the sorted operations (kind, table, key)
  uint64_t target_rows = 0;
};

class Applier {
 public:
  // Connects, begins the transaction and (options.lock) takes the tenant's
  // advisory lock and row locks, waiting at most lock_timeout_ms.
  static Result<std::unique_ptr<Applier>> Begin(const Catalog& catalog, const ApplyOptions& options);
  ~Applier();  // rolls back unless committed

  // Whole-tenant targets: one row image; rows of tables outside the scope
  // are counted and skipped. Rows may come in any table order.
  Status AddRow(const store::Row& row);
  // Whole-tenant targets: loads a target staged by an earlier Applier
  // (options.stage) instead of rows. Returns false, having loaded nothing,
  // when a table's columns are not those the target was staged for (the
  // caller then loads the rows).
  Result<bool> AddStaged(const StagedTarget& staged);
  // After Diff, with options.stage: the target as loaded (once).
  std::shared_ptr<const StagedTarget> TakeStaged();
  // Keyed targets: one table's saved rows and absent keys.
  Status AddKeyed(const std::string& table, const KeyedTable& keyed);
  // Ends loading and computes the differences.
  Result<DiffResult> Diff();

  // After Diff: up to `limit` operations of each table with operations, in
  // key order, each as a JSON object {"op": "insert"|"update"|"delete",
  // "key": {column: text}, "before": {column: text|null}|null (the live
  // row), "after": {...}|null (the target row), "changed": [columns whose
  // text differs], "truncated": [columns cut to 256 characters]}.
  Status SampleChanges(uint64_t limit, const std::function<Status(const std::string& table, std::string change)>& emit);

  // Keyed targets, after Diff: the operations that would undo a change made
  // since the apply that saved the snapshot — a row it inserted or updated
  // that is now different or gone, a row it deleted that exists again —
  // counted per table and hashed into a digest; up to `limit` of them per
  // table, as SampleChanges' objects, go to `emit`.
  Result<Reverts> FindReverts(uint64_t limit,
                              const std::function<Status(const std::string& table, std::string change)>& emit);

  // Saves the current image of every row the apply will update or delete,
  // the keys it will insert, and the hash of every row it will write (see
  // KeyedTable::after), into `archive` (files t<i>.rows, t<i>.absent and
  // t<i>.after); returns the per-table manifest part (JSON object text) and
  // the counts.
  struct SnapshotPart {
    std::string
        tables_json;  // {"schema.table": {"file": "t0", "columns": [...], "key": [...], "rows": n, "absent": m}}
    uint64_t rows = 0;
    uint64_t absent = 0;
    Lsn lsn;
  };
  Result<SnapshotPart> SaveSnapshot(ArchiveWriter* archive);

  // Applies the differences (inserts parents first, updates, deletes children
  // first; the other way round when that fails on a constraint), verifies
  // that the tenant's rows in scope now equal the target in every target
  // column (digests over the rows' text, both computed in SQL; a difference
  // rolls back and is FailedPrecondition "verification failed: ..."), marks
  // the transaction with pg_logical_emit_message('timevault', message_json)
  // and commits. Returns the LSN after the commit.
  // `verifying`, if set, is called when the DML is done and verification starts.
  Result<Lsn> ApplyAndCommit(const std::string& message_json, const std::function<void()>& verifying = nullptr);

  uint64_t skipped_rows() const;
  // After ApplyAndCommit: SHA-256 over each scope table's name and its
  // target's row count and row-hash sums, which the live rows matched.
  const std::string& verified_digest() const;

 private:
  struct Impl;
  explicit Applier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace timevault::replay
