// The time-indexed store (docs/store.md): RocksDB column families holding
// every row version, the history in commit order, the commit-time index and
// the recoverable point; values encrypted per tenant.
//
// StateReader is the narrow, read-only interface replay uses; Store is the
// RocksDB implementation; NewMemoryStateReader an in-memory one for tests.
// A Store is thread-safe for concurrent readers; Apply and RunRetention are
// called by one writer thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/core/types.h"
#include "timevault/store/event.h"

namespace timevault::store {

// A commit: its LSN (the Commit's end LSN, as in capture's END id) and time.
struct Point {
  Lsn lsn;
  CommitTime time;
};

// An interval of history the store cannot vouch for (invariant 10; docs/
// store.md, "Gaps"): a lost or recreated replication slot, a transaction
// that will never complete (a dead letter took one of its events), Kafka
// offsets skipped. Points after `from` and before `to` are refused by
// StateAt, ResolveTime, History and Tenants with an error naming the gap;
// `to` (a full snapshot) and every point after it are exact.
struct Gap {
  uint64_t id = 0;
  Point from;  // the last point vouched for before the gap
  Point to;    // the first point vouched for after it (open(): none yet)
  std::string cause;
  CommitTime recorded_at;  // the store's clock when it recorded the gap
  bool acknowledged = false;
  std::string acknowledged_by;
  CommitTime acknowledged_at;
  // "gap #1 (cause) between 0/1A2B (time) and 0/1C00 (time)", or "… and
  // the next full snapshot" for an open one.
  std::string Describe() const;
  // Open (Kafka offsets skipped, a transaction that will never complete):
  // every point after `from` is unknown until a full snapshot closes the gap
  // (`to` is all ones until then).
  bool open() const { return to.lsn.value() == ~uint64_t{0}; }
};

struct Row {
  std::string table;  // "schema.table"
  std::string pk;     // key JSON
  std::string json;   // the row image (compact JSON object), TOAST resolved
};

struct HistoryEvent {
  Lsn commit_lsn;
  Lsn change_lsn;
  std::string table;
  std::string pk;
  char op = 0;
  std::string envelope;  // Debezium envelope payload, TOAST resolved in before/after
};

class StateReader {
 public:
  virtual ~StateReader() = default;

  // The newest point every event up to which is stored. NotFound before the
  // first one (e.g. the initial snapshot is still arriving).
  virtual Result<Point> RecoverablePoint() = 0;
  // The newest commit with commit time <= t. OutOfRange past the recoverable
  // point, NotFound before the first commit.
  virtual Result<Point> ResolveTime(CommitTime t) = 0;
  // Streams the tenant's rows live at commit `point` (tables empty: all), in
  // (table, pk) order. `emit` returns false to stop early. OutOfRange past
  // the recoverable point.
  virtual Status StateAt(const TenantId& tenant, Lsn point, const std::vector<std::string>& tables,
                         const std::function<bool(const Row&)>& emit) = 0;
  // Streams the tenant's change events with from < commit <= to in commit
  // order, optionally for one table and one key.
  virtual Status History(const TenantId& tenant, Lsn from, Lsn to, const std::optional<std::string>& table,
                         const std::optional<std::string>& pk,
                         const std::function<bool(const HistoryEvent&)>& emit) = 0;
  // The tenants with at least one row live at commit `point` (the rows
  // StateAt would emit), sorted by id. The store-wide tenant "" (tables
  // without the tenant column) is listed when it has live rows; shredded
  // tenants never are. OutOfRange past the recoverable point.
  virtual Result<std::vector<TenantId>> Tenants(Lsn point) = 0;
};

// One consumed message for Store::Apply: parsed, or a dead letter.
struct IngestItem {
  KafkaPosition position;
  std::optional<StoreEvent> event;  // set when parsing succeeded
  std::string dead_letter_reason;   // set when it did not
  std::string raw;                  // the raw value (kept, encrypted, for dead letters)
  int held_back = 0;                // batches that held it back so far (Store::ApplyStart)
};

// How long Store::ApplyStart may hold back a change whose transaction END
// has not arrived: at most this many batches per message, and at most this
// many messages at once; beyond either, the event is stored as `pending`.
inline constexpr int kMaxHeldBackBatches = 3;
inline constexpr size_t kMaxHeldBack = 20000;

// One column family's share of the store (`timevault store stats`).
struct FamilyStats {
  std::string name;
  uint64_t keys = 0;             // RocksDB's estimate (exact with Store::Stats(true))
  uint64_t live_sst_bytes = 0;   // SST files the current version references
  uint64_t total_sst_bytes = 0;  // every SST file, obsolete ones not deleted yet too
  uint64_t memtable_bytes = 0;   // memtables (active, immutable, pinned)
  // Filled by Stats(true) only (a scan of the family): the keys' and
  // values' bytes before block compression.
  uint64_t key_bytes = 0;
  uint64_t value_bytes = 0;
};

struct StoreStats {
  // Every file of the store directory (SST, WAL, manifests, options).
  uint64_t bytes_on_disk = 0;
  uint64_t wal_bytes = 0;       // RocksDB write-ahead log files (*.log)
  uint64_t sst_bytes = 0;       // live SST files of every column family
  uint32_t format_version = 0;  // the store's format (meta `format`)
  bool rows_packed = false;     // no row image of format 1 is left unpacked
  std::vector<FamilyStats> families;
  uint64_t dead_letters = 0;
  uint64_t events_stored = 0;
  uint64_t duplicates = 0;
  std::optional<Point> recoverable;
  // Updates whose unchanged-TOAST columns had no previous version to take the
  // value from: stored without those columns (never with the placeholder).
  uint64_t toast_unresolved = 0;
  // Iterator seeks and steps over `versions` by StateAt since open: a read's
  // cost in keys touched (invariant 4; tests and benchmarks compare them).
  uint64_t read_seeks = 0;
  uint64_t read_steps = 0;
};

class Store final : public StateReader {
 public:
  struct Options {
    std::string path;
    std::string key_file;
    std::string tenant_column = "tenant_id";
    int64_t retention_days = 30;
    bool read_only = false;  // analysts' reads while `timevault store` runs (RocksDB secondary)
    // History envelopes sampled (row values blanked) before the store trains
    // the zstd dictionary they are compressed with; 0: never compress
    // (docs/store.md, "Envelope compression").
    size_t envelope_dictionary_samples = 1000;
    // The writer's RocksDB memory: memtables of every column family together
    // (half of it), the block cache (a quarter); the write-ahead log is kept
    // under the same figure (docs/store.md, "Memory and disk bounds").
    size_t memory_budget_mb = 512;
    // Free space kept on the store's volume (docs/store.md, "A full
    // volume"): a batch that would leave less is refused before RocksDB
    // writes any of it; 0: no guard.
    size_t min_free_mb = 256;
    // The format new data is written in: the current one (engine/encoding.h,
    // kFormatVersion), or an older one as the code of that format wrote it
    // (1: row images not packed, no stamp; 2: history entries repeat the
    // row image): only for tests of the migration.
    uint32_t write_format = 3;
  };
  // Opens (creating if needed). Errors: the key file (missing, wrong size,
  // wrong master key for this store), RocksDB (path, lock, corruption).
  static Result<std::unique_ptr<Store>> Open(const Options& options);
  ~Store() override;

  // Applies a batch atomically, with the offsets of every partition in it;
  // the batch has landed (is durable and visible to readers) on return.
  Status Apply(const std::vector<IngestItem>& batch);
  // The same, pipelined: builds the batch now and starts its write in the
  // background once the previous batch's write has landed, so the next
  // batch is built while this one is written. Batches land in call order,
  // each atomically with its offsets. An error is this batch's or the
  // previous write's; after one, nothing more is written until the caller
  // starts again (the writer state is reloaded from the database).
  // WaitApplied() waits for the write in flight: call it before reading
  // offsets (NextOffset) or stopping. Apply = ApplyStart + WaitApplied.
  //
  // With `held_back`, a change event whose transaction's END is not applied
  // yet is not stored: it, and every later message of its partition in the
  // batch, go to *held_back (in offset order), and the partition's stored
  // offset stays at it. The caller puts them in front of its next batch,
  // which usually brings the END: the event then goes straight to the
  // history instead of through `pending` (a write, a read, a re-encryption
  // and a delete more). Bounded by kMaxHeldBackBatches and kMaxHeldBack;
  // before a rebalance or at stop the caller applies or drops them (dropped
  // ones are consumed again, from the stored offset).
  Status ApplyStart(const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back = nullptr);
  Status WaitApplied();
  // The next offset to consume for a partition (nullopt: none stored yet).
  Result<std::optional<int64_t>> NextOffset(const std::string& topic, int32_t partition);

  Result<Point> RecoverablePoint() override;
  Result<Point> ResolveTime(CommitTime t) override;
  Status StateAt(const TenantId& tenant, Lsn point, const std::vector<std::string>& tables,
                 const std::function<bool(const Row&)>& emit) override;
  Status History(const TenantId& tenant, Lsn from, Lsn to, const std::optional<std::string>& table,
                 const std::optional<std::string>& pk, const std::function<bool(const HistoryEvent&)>& emit) override;
  Result<std::vector<TenantId>> Tenants(Lsn point) override;

  // Crypto-shredding: deletes the tenant's data key and its data. NotFound
  // if the tenant has no key (never seen, or shredded already).
  Status ShredTenant(const TenantId& tenant);

  // Data-key rotation: gives the tenant a new data key for everything
  // written from now on; its older keys stay in its key record to decrypt
  // what they made (shredding deletes them all). Returns the new key's id;
  // NotFound if the tenant has no key. Read-only stores see it at their
  // next Refresh.
  Result<uint32_t> RotateDataKey(const TenantId& tenant);

  // Master-key rotation: re-wraps every data key of the store at
  // `options.path` (which `options.key_file` opens) under the master key in
  // `new_key_file`, in one synced write, then checks that the new key opens
  // the store. The data is not re-encrypted: it stays under its data keys.
  // Takes the store for itself: Unavailable while a writer has it open.
  // Afterwards only the new key file opens the store (PermissionDenied with
  // the old one); a crash before the write leaves the old key in force.
  static Status RewrapMasterKey(const Options& options, const std::string& new_key_file);
  // Folds versions and history older than the retention window before `now`.
  Status RunRetention(CommitTime now);
  // Kafka offsets that cannot be read: partition `topic`[`partition`], where
  // the store would go on at `stored`, now holds offsets `low`..`high`-1
  // only: `stored` < `low` (its retention deleted messages the store had not
  // read) or `stored` > `high` (the topic was deleted and recreated, or
  // truncated: its offsets started over). Records an open gap after the
  // recoverable point naming both (closed by the next full snapshot) and
  // moves the partition's next offset to `low`, in one synced write.
  // Returns the offset to resume from (`low`).
  Result<int64_t> RecordSkippedOffsets(const std::string& topic, int32_t partition, int64_t stored, int64_t low,
                                       int64_t high);
  // Every gap recorded, oldest first, with its acknowledgement (read from
  // the store directory's acknowledgements file at each call).
  std::vector<Gap> Gaps();
  // Records that an admin has seen gap `id` (`by` names them): health stops
  // naming it; reads inside it stay refused. The acknowledgements live in
  // a file of their own in the store directory (written atomically), so a
  // read-only store (the CLI, the API) can write them while the store runs.
  // NotFound for an unknown id.
  Status AcknowledgeGap(uint64_t id, const std::string& by);
  // One gap as a compact JSON object (the CLI's and the API's listing):
  // {"id","cause","from":{"lsn","time"},"to":{...},"recorded_at",
  //  "acknowledged","acknowledged_by","acknowledged_at","description"}.
  static std::string GapJson(const Gap& gap);
  // Dead letters: (position, reason), oldest first.
  Status DeadLetters(const std::function<bool(const KafkaPosition&, const std::string& reason)>& emit);
  // One as a compact JSON object {"topic","partition","offset","reason"}
  // (the CLI's and the API's listing).
  static std::string DeadLetterJson(const KafkaPosition& pos, const std::string& reason);
  // Flushes the memtables and compacts every column family fully (benchmarks
  // compare stores in the same on-disk state; maintenance after bulk loads).
  // Blocks until done; reads and Apply may run meanwhile.
  Status Compact();
  // Read-only stores: catch up with the primary's latest writes.
  Status Refresh();
  // Brings a store written in an older format up to the current one:
  // packs (and re-encrypts) every row image in `versions` and `current`
  // that was stored as text, then compacts them so the old bytes go. A
  // writer only, with the store stopped (`timevault store migrate`);
  // resumable (a crash leaves each value old or new). Returns the number of
  // values rewritten.
  Result<uint64_t> Migrate();
  // Sizes and counters. `scan`: also reads every key of every column
  // family to count keys and key/value bytes exactly (seconds per GB).
  StoreStats Stats(bool scan = false);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An in-memory StateReader for replay's unit tests: rows per (tenant, point)
// are given directly.
class MemoryStateReader final : public StateReader {
 public:
  // Adds a version of a row at commit `commit` (json empty: deleted).
  void Put(const TenantId& tenant, Point commit, const std::string& table, const std::string& pk,
           const std::string& json);
  void SetRecoverable(Point p) { recoverable_ = p; }

  Result<Point> RecoverablePoint() override;
  Result<Point> ResolveTime(CommitTime t) override;
  Status StateAt(const TenantId& tenant, Lsn point, const std::vector<std::string>& tables,
                 const std::function<bool(const Row&)>& emit) override;
  Status History(const TenantId& tenant, Lsn from, Lsn to, const std::optional<std::string>& table,
                 const std::optional<std::string>& pk, const std::function<bool(const HistoryEvent&)>& emit) override;
  Result<std::vector<TenantId>> Tenants(Lsn point) override;

 private:
  struct Version {
    TenantId tenant;
    Point commit;
    std::string table, pk, json;
  };
  std::vector<Version> versions_;
  std::optional<Point> recoverable_;
};

}  // namespace timevault::store
