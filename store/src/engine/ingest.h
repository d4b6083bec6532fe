// Ingest: one Store::Apply batch being built (docs/store.md, "Exactly-once
// effect"). ingest.cc: the batch, transactions, heartbeats and the end of the
// batch; ingest_rows.cc: row events (versions, the rows' timelines across
// tenants, TOAST). The batch is a WriteBatchWithIndex so that each event sees
// the writes of the events before it in the same batch. Private to
// store/src/engine; used by the writer only (StoreImpl::write_mu).
#pragma once

#include <rocksdb/comparator.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/impl.h"

namespace timevault::store::engine {

// Deletes remembered for the old key of a primary-key change (StoreImpl::recent_deletes).
constexpr size_t kRecentDeletes = 1024;

// How an event's history entry is keyed: by its own LSN (snapshot rows and
// non-transactional messages), by its transaction's known commit, or pending
// until its END arrives.
struct TxRef {
  enum Mode { kDirect, kKnown, kPending } mode = kDirect;
  uint64_t xid = 0;
  uint64_t commit = 0;
};

struct HistoryEntry {
  EntryId id;
  char op = 0;
  std::string_view envelope;  // valid until WriteHistory returns
  uint8_t weight = 1;         // counts toward the transaction's event_count (one entry per event does)
  // The row image just written as the version under `id` (a c/u/r event),
  // or empty: in format 3 the entry does not repeat it (kOpSpliced).
  std::string_view row = {};
};

struct Stored {  // a version entry read back
  std::string key, value;
  uint64_t change_lsn = 0;
  uint8_t flags = 0;
  uint64_t xid = 0;
};

struct Neighbours {  // a row's timeline entries around an event (rowtenant)
  std::optional<RowTenantEntry> before, after;
};

// The order Item() takes a batch in: whole partitions carrying a transaction
// END first, then the others, each partition in offset order. Any
// interleaving of partitions is a valid delivery order; this one lets the
// events of a transaction whose END is in the same batch go straight to
// `log` instead of through `pending` (a write, a delete and a re-encryption
// fewer per event).
std::vector<const IngestItem*> ApplyOrder(const std::vector<IngestItem>& batch);

// One batch: Item() per consumed message, then Finish() (progress, counters,
// offsets), then the caller writes layer->wb's batch (one synced write).
// Reads see this batch's records, then `previous`'s (the batch before, in
// flight or landed; may be null), then the database. On any error nothing is
// written and the caller reloads the writer state.
class Ingest {
 public:
  // held_back: see Store::ApplyStart (null: nothing is held back).
  Ingest(StoreImpl* s, StoreImpl::Layer* layer, StoreImpl::Layer* previous,
         std::vector<IngestItem>* held_back = nullptr);

  Status Item(const IngestItem& item);
  Status Finish();

 private:
  int64_t* NextOffset(const KafkaPosition& pos);
  bool HoldBack(const IngestItem& item);
  void CarryOver(const IngestItem& item);  // into held_back_, counting the hold
  // ---- batch + database access ----
  Result<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  Result<bool> Exists(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  Result<bool> InDb(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  Result<std::optional<std::string>> GetInDb(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  rocksdb::Iterator* Iter(rocksdb::ColumnFamilyHandle* cf);
  Status Put(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value);
  Status Delete(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  Status PutUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value);
  Result<size_t> PutLocated(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value);
  struct Kept {
    StoreImpl::RowEntries::Entry entry;
    size_t key_offset;  // in the batch's data
  };
  Result<Kept> PutKept(rocksdb::ColumnFamilyHandle* cf, std::string_view key, uint64_t lsn, std::string_view value);
  Status DeleteUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  Status MergeUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value);
  Status PutLog(const std::string& tenant, const std::string& key, std::string_view value);
  Result<std::optional<std::string>> LogValue(const std::string& tenant, const std::string& key);
  Result<const std::string*> LogBound(const std::string& tenant);
  Result<DataKeys*> Key(std::string_view tenant, bool create);

  // ---- items ----
  Status DeadLetter(const KafkaPosition& pos, std::string_view reason, std::string_view raw);
  Status Change(const IngestItem& item, const StoreEvent& ev);
  Status Truncate(const IngestItem& item, const StoreEvent& ev);
  Status Message(const StoreEvent& ev);
  Status End(const StoreEvent& ev);
  Status Heartbeat(const IngestItem& item, const StoreEvent& ev);
  // The partition's offsets jumped from `expected` to the item's (gaps.cc).
  Status SkippedOffsets(const KafkaPosition& pos, int64_t expected);

  // ---- helpers ----
  Result<TxRef> Resolve(const StoreEvent& ev, bool transactional);
  Result<std::optional<uint64_t>> FindCommit(uint64_t xid, uint64_t change_lsn);
  Result<bool> IsDuplicate(const TxRef& tx, const EntryId& main);
  Status WriteHistory(const TxRef& tx, const std::vector<HistoryEntry>& entries, CommitTime commit_time);
  Status AddStored(uint64_t xid, uint64_t commit, int64_t n, CommitTime commit_time);
  Status RefineCommitTime(uint64_t xid, uint64_t commit, TxnValue* txn, int64_t time_us);
  void NoteEndTime(int64_t time_us);
  Result<std::optional<std::string>> PreviousRow(const std::string& tenant, const StoreEvent& ev,
                                                 const std::string& pk);
  Result<std::optional<std::string>> OldKeyRow(const std::string& tenant, const StoreEvent& ev);
  Status ResolveToast(const StoreEvent& ev, const std::string& owner, const std::string& pk, std::string* row,
                      std::string* envelope, bool* incomplete);
  Result<Neighbours> RowNeighbours(const std::string& table, const std::string& pk, uint64_t lsn);
  Result<Neighbours> TimelineNeighbours(const std::string& table, const std::string& pk, uint64_t lsn, const TxRef& tx);
  Result<bool> InFlightAt(const RowTenantEntry& e, uint64_t snapshot);
  Result<Neighbours> RowNeighboursBySeek(const std::string& table, const std::string& pk, uint64_t lsn);
  Status PutTimeline(const std::string& table, const std::string& pk, uint64_t lsn, std::string_view value);
  Result<bool> VersionExists(const std::string& row_prefix, uint64_t lsn);
  rocksdb::Iterator* VersionsInDb();
  Status MarkDeleted(const std::string& tenant, const std::string& table, const std::string& pk, uint64_t lsn,
                     bool direct, uint64_t xid);
  Status EndBefore(const std::string& tenant, const std::string& table, const std::string& pk,
                   const RowTenantEntry& next);
  // The envelope of a history entry's plaintext (`op` its value's op byte),
  // the row put back from the version under `id` where it was spliced out.
  Status EntryEnvelope(const EntryId& id, uint8_t op, std::string_view plain, std::string* envelope);
  Result<std::string> EndEnvelope(const std::string& table, const std::string& pk, const RowTenantEntry& next,
                                  const TxRef& tx);
  Status PutVersion(const std::string& tenant, const std::string& table, const std::string& pk, uint64_t lsn,
                    uint8_t flags, uint64_t xid, std::string_view row);
  Result<std::vector<std::string>> TenantsWithRows(const std::string& table);
  bool Satisfied(const PendingHeartbeat& h) const;
  Status PopComplete();
  PointRec FirstPoint(const PointRec& recoverable) const;
  // Gaps (gaps.cc): a met full-snapshot marker.
  Status SnapshotImage(const PendingHeartbeat& h);
  // A heartbeat all of whose offsets are consumed while a transaction ended
  // below it is still incomplete: that transaction will never complete (a
  // dead letter took one of its events). Records the stall as an open gap
  // (once) and drops the heartbeat, which could only move the recoverable
  // point past it. False when `h` is not such a heartbeat.
  Result<bool> DropStalled(const std::string& key, const PendingHeartbeat& h);
  bool OffsetsPassed(const PendingHeartbeat& h) const;
  std::string DeadLettersOf(uint64_t xid) const;
  Result<size_t> EndRowsAbsentFrom(const PendingHeartbeat& h);

  StoreImpl* s_;
  StoreImpl::Layer* layer_;
  StoreImpl::Layer* previous_;
  rocksdb::WriteBatchWithIndex& wb_;  // layer_->wb
  rocksdb::ReadOptions base_ro_;
  std::map<rocksdb::ColumnFamilyHandle*, std::unique_ptr<rocksdb::Iterator>> iters_;
  std::unique_ptr<rocksdb::Iterator> timeline_it_;  // `rowtenant` in the database only
  std::unique_ptr<rocksdb::Iterator> versions_it_;  // `versions` in the database only
  std::set<std::pair<std::string, int32_t>> dirty_offsets_;
  // NextOffset's last partition and its entry in StoreImpl::offsets.
  std::string last_topic_;
  int32_t last_partition_ = 0;
  int64_t* last_offset_ = nullptr;
  // txns entries changed by this batch ((xid, commit LSN) -> value, TxnKey's
  // order), written once in Finish.
  std::map<std::pair<uint64_t, uint64_t>, TxnValue> txns_;
  struct LastTxn {  // AddStored's last transaction: its txns_ and StoreImpl::inflight entries
    uint64_t xid = 0, commit = 0;
    TxnValue* txn = nullptr;
    InFlightTxn* inflight = nullptr;
  } last_txn_;
  std::unordered_set<uint64_t> ended_here_;           // commit LSNs of the ENDs this batch applied
  std::unordered_set<uint64_t> inflight_new_;         // of those, the ones it put in StoreImpl::inflight
  std::vector<IngestItem>* held_back_;                // Store::ApplyStart's (null: hold nothing back)
  std::set<std::pair<std::string, int32_t>> frozen_;  // partitions whose rest is held back
  std::string packed_;                                // WriteHistory's buffer for EnvelopeCodec::Pack
  std::string rest_, rest_packed_, spliced_;          // WriteHistory's envelope without the row (format 3)
};

}  // namespace timevault::store::engine
