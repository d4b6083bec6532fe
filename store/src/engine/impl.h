// StoreImpl (= Store::Impl): the state shared by the engine's files (store.cc: open, stats,
// offsets; ingest.cc: Apply; reads.cc: the StateReader side; retention.cc:
// retention and shredding). Private to store/src/engine.
//
// Thread-safety: the writer state (progress, offsets, counters, the writer
// keyring) belongs to whoever holds write_mu (Apply, RunRetention,
// ShredTenant). Readers see only `view` (under view_mu), RocksDB snapshots
// and the keyring's per-call key clones.
#pragma once

#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/encoding.h"
#include "engine/envelope_codec.h"
#include "engine/keyring.h"
#include "engine/progress.h"
#include "timevault/core/worker.h"
#include "timevault/store/store.h"

namespace timevault::store {

inline std::string RocksError(std::string_view what, const rocksdb::Status& s) {
  return "rocksdb: " + std::string(what) + ": " + s.ToString();
}

struct Counters {
  uint64_t events_stored = 0;
  uint64_t duplicates = 0;
  uint64_t dead_letters = 0;
  uint64_t toast_unresolved = 0;

  std::string Encode() const;
  static Counters Decode(std::string_view s);
};

// What readers need of the writer's progress, copied after each write.
struct ReadView {
  std::optional<engine::PointRec> recoverable;
  std::optional<engine::PointRec> floor;
  std::optional<engine::PointRec> first_point;
  int64_t max_skew_us = 0;
  Counters counters;
  std::vector<engine::GapRec> gaps;          // invariant 10: reads inside one are refused (engine/gaps.cc)
  std::optional<engine::Coverage> coverage;  // where each table's history starts (engine/gaps.cc)
};

// A RocksDB snapshot released on scope exit. Secondaries (read-only stores)
// have no snapshots: their state only moves in Refresh, which waits for
// readers (StoreImpl::refresh_mu), so there `get()` is null.
class ScopedSnapshot {
 public:
  ScopedSnapshot(rocksdb::DB* db, bool secondary) : db_(db), snap_(secondary ? nullptr : db->GetSnapshot()) {}
  ~ScopedSnapshot() {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
  }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

struct StoreImpl {
  Store::Options options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // destroyed before db
  rocksdb::ColumnFamilyHandle* versions = nullptr;
  rocksdb::ColumnFamilyHandle* txns = nullptr;
  rocksdb::ColumnFamilyHandle* pending = nullptr;
  rocksdb::ColumnFamilyHandle* log = nullptr;
  rocksdb::ColumnFamilyHandle* commits = nullptr;
  rocksdb::ColumnFamilyHandle* truncates = nullptr;
  rocksdb::ColumnFamilyHandle* keys = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* deadletter = nullptr;
  rocksdb::ColumnFamilyHandle* rowtenant = nullptr;
  rocksdb::ColumnFamilyHandle* current = nullptr;
  std::unique_ptr<engine::Keyring> keyring;
  std::unique_ptr<engine::EnvelopeCodec> codec;  // history envelopes' compression
  uint32_t format_version = 0;                   // meta `format` (engine/encoding.h, kFormatVersion; format.cc)
  bool rows_packed = false;                      // meta `rows-packed`: no format-1 row image left unpacked
  std::string secondary_dir;                     // read-only stores: the RocksDB secondary's own directory

  // ---- writer state (write_mu) ----
  std::mutex write_mu;
  engine::Progress progress;
  std::map<uint64_t, engine::InFlightTxn> inflight;            // by commit LSN = END order
  std::multimap<uint64_t, uint64_t> inflight_by_xid;           // xid -> commit LSN
  std::map<std::string, engine::PendingHeartbeat> heartbeats;  // by HeartbeatKey (LSN order)
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;  // next offset per partition
  Counters counters;
  std::vector<engine::GapRec> gaps;          // meta `gaps`, rewritten whole when one is added
  std::optional<engine::Coverage> coverage;  // meta `coverage` (none: no full snapshot marker met yet)
  // The latest deletes (table, change LSN, tenant, pk): the old row of a
  // primary-key change when the event does not name it (StoreEvent::old_pk).
  struct RecentDelete {
    std::string table;
    uint64_t change_lsn = 0;
    std::string tenant, pk;
  };
  std::deque<RecentDelete> recent_deletes;
  // The latest dead letters (not heartbeats) of this run, for naming them
  // in the gap of a transaction they leave incomplete (engine/gaps.cc).
  struct RecentDeadLetter {
    KafkaPosition position;
    std::string reason;
    std::optional<int64_t> xid;  // source.txId, when the message is JSON that has one
  };
  std::deque<RecentDeadLetter> recent_dead_letters;
  // The newest snapshot row stored while nothing is recoverable yet: the
  // first heartbeat met after it vouches for the snapshot's whole state, so
  // the store's first point is the snapshot's, not the heartbeat's
  // (Ingest::Finish; in memory only: after a restart the heartbeat's).
  std::optional<engine::PointRec> snapshot_before_first_point;
  // Per tenant, a key no smaller than any of its `log` keys in the database
  // or in a batch built since the store opened (engine/ingest.cc, LogBound):
  // an event whose log key sorts above it cannot be a duplicate, so the
  // duplicate check of events arriving in commit order reads nothing. Only
  // ever raised: keys deleted by retention or shredding, or of a batch that
  // failed, leave it an upper bound.
  struct LogBound {
    bool loaded = false;  // the database's greatest key is included
    std::string max;
  };
  std::unordered_map<std::string, LogBound> log_bounds;

  // ---- the write pipeline (write_mu; engine/ingest.cc) ----
  // A batch is built while the previous one is being written: the batch
  // being built reads through the previous batch's WriteBatchWithIndex
  // (kept until the batch built on it is handed to the writer), so it sees
  // that batch's records whether or not they have landed. Each batch is one
  // synced write with its offsets. The writer state above runs ahead of the
  // database by at most the batch in flight; readers see `view`, published
  // only when that batch has landed.
  // A batch's records of one busy family kept outside the batch index, by
  // row: (change LSN, where the value is in the batch's WriteBatch), one
  // entry per LSN. A row's entries are read a few times per event; a map per
  // row is far cheaper to keep and read than the index, and the values are
  // not copied (offsets stay valid as the batch grows).
  class RowEntries {
   public:
    struct Entry {
      uint64_t lsn;
      size_t offset, size;  // of the value in the WriteBatch's data
    };
    // Adds (or, for an LSN it has, replaces) an entry of `row`, whose
    // record's key (`row` then the 8-byte LSN) starts at `row_offset` in
    // the batch's `data`: the row is not copied. The row also keeps the
    // newest entry ever put for it, replaced ones included (greatest LSN;
    // at the same LSN the greater value, as RocksDB's max merge operator
    // orders `u64(lsn) value`): the batch's `current` operand.
    void Put(const std::string& data, std::string_view row, size_t row_offset, const Entry& entry) {
      if ((rows_ + 1) * 2 > slots_.size()) Grow();
      const uint64_t hash = Hash(row);
      Slot& slot = slots_[SlotOf(data, row, hash)];
      if (slot.head == kNone) {
        slot = Slot{hash, row_offset, static_cast<uint32_t>(row.size()), NewNode(entry, kNone), entry};
        ++rows_;
        return;
      }
      const auto value = [&](const Entry& e) { return std::string_view(data).substr(e.offset, e.size); };
      Entry& newest = slot.newest;
      if (newest.lsn < entry.lsn || (newest.lsn == entry.lsn && value(newest) < value(entry))) newest = entry;
      for (uint32_t n = slot.head; n != kNone; n = nodes_[n].next) {
        if (nodes_[n].entry.lsn == entry.lsn) {
          nodes_[n].entry = entry;
          return;
        }
      }
      slot.head = NewNode(entry, slot.head);
    }
    // Calls f(entry) for each entry of `row` (in no particular order) until
    // one returns an error.
    template <class F>
    Status ForEach(const std::string& data, std::string_view row, F&& f) const {
      if (rows_ == 0) return Status::Ok();
      const Slot& slot = slots_[SlotOf(data, row, Hash(row))];
      for (uint32_t n = slot.head; n != kNone; n = nodes_[n].next) TV_RETURN_IF_ERROR(f(nodes_[n].entry));
      return Status::Ok();
    }
    // Calls f(row, newest entry) for every row, in no particular order.
    template <class F>
    Status ForEachNewest(const std::string& data, F&& f) const {
      for (const Slot& slot : slots_) {
        if (slot.head != kNone) TV_RETURN_IF_ERROR(f(RowOf(data, slot), slot.newest));
      }
      return Status::Ok();
    }
    bool Has(const std::string& data, std::string_view row, uint64_t lsn) const {
      bool found = false;
      (void)ForEach(data, row, [&](const Entry& e) {
        found = found || e.lsn == lsn;
        return Status::Ok();
      });
      return found;
    }

    // Keeps the table's size for the next batch.
    void Clear() {
      std::fill(slots_.begin(), slots_.end(), Slot{});
      nodes_.clear();
      rows_ = 0;
    }

   private:
    // An open-addressing table (linear probing, at most half full) of rows,
    // each a list of entries in nodes_: per new row no allocation, where a
    // map of strings to vectors made three (the maps were 15% of the
    // building thread).
    static constexpr uint32_t kNone = UINT32_MAX;
    struct Slot {
      uint64_t hash = 0;
      size_t row_offset = 0;
      uint32_t row_size = 0;
      uint32_t head = kNone;  // kNone: empty
      Entry newest{};
    };
    struct Node {
      Entry entry;
      uint32_t next;
    };
    static uint64_t Hash(std::string_view row) { return std::hash<std::string_view>{}(row); }
    // Where the row's slot is, or the empty one where it would go (the
    // table is never full; not called on an empty table).
    size_t SlotOf(const std::string& data, std::string_view row, uint64_t hash) const {
      for (size_t i = hash & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
        const Slot& slot = slots_[i];
        if (slot.head == kNone || (slot.hash == hash && RowOf(data, slot) == row)) return i;
      }
    }
    static std::string_view RowOf(const std::string& data, const Slot& slot) {
      return std::string_view(data).substr(slot.row_offset, slot.row_size);
    }
    uint32_t NewNode(const Entry& entry, uint32_t next) {
      nodes_.push_back(Node{entry, next});
      return static_cast<uint32_t>(nodes_.size() - 1);
    }
    void Grow() {
      std::vector<Slot> old = std::move(slots_);
      slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
      for (const Slot& slot : old) {
        if (slot.head == kNone) continue;
        size_t i = slot.hash & (slots_.size() - 1);
        while (slots_[i].head != kNone) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = slot;
      }
    }
    std::vector<Slot> slots_;
    std::vector<Node> nodes_;
    size_t rows_ = 0;
  };
  // A batch's `log` keys, per tenant, as places in its WriteBatch's data,
  // kept in key order (they mostly arrive in it): the duplicate check looks
  // a key up without a copy of every key written (the set of strings it
  // replaces was ~5% of the building thread).
  class LogKeys {
   public:
    // The record's key and value are at these offsets of the batch's data.
    void Add(const std::string& data, const std::string& tenant, size_t offset, size_t size, size_t value_offset,
             size_t value_size) {
      std::vector<Ref>& refs = by_tenant_[tenant];
      const std::string_view key(data.data() + offset, size);
      const Ref ref{offset, size, value_offset, value_size};
      if (refs.empty() || View(data, refs.back()) < key) {
        refs.push_back(ref);
        return;
      }
      auto it = Find(data, refs, key);
      if (it != refs.end() && View(data, *it) == key) return;
      refs.insert(it, ref);
    }
    bool Has(const std::string& data, const std::string& tenant, std::string_view key) const {
      return Value(data, tenant, key).has_value();
    }
    std::optional<std::string_view> Value(const std::string& data, const std::string& tenant,
                                          std::string_view key) const {
      auto t = by_tenant_.find(tenant);
      if (t == by_tenant_.end()) return std::nullopt;
      auto it = Find(data, t->second, key);
      if (it == t->second.end() || View(data, *it) != key) return std::nullopt;
      return std::string_view(data.data() + it->value_offset, it->value_size);
    }
    void Clear() {
      if (by_tenant_.size() > kKeptTenants) {
        by_tenant_.clear();
        return;
      }
      for (auto& [tenant, refs] : by_tenant_) refs.clear();  // keeps the vectors for the next batch
    }

   private:
    static constexpr size_t kKeptTenants = 1024;
    struct Ref {
      size_t offset, size;              // the key's
      size_t value_offset, value_size;  // the value's
    };
    static std::string_view View(const std::string& data, const Ref& r) {
      return std::string_view(data.data() + r.offset, r.size);
    }
    static std::vector<Ref>::const_iterator Find(const std::string& data, const std::vector<Ref>& refs,
                                                 std::string_view key) {
      return std::lower_bound(refs.begin(), refs.end(), key,
                              [&](const Ref& r, std::string_view k) { return View(data, r) < k; });
    }
    std::unordered_map<std::string, std::vector<Ref>> by_tenant_;
  };
  struct Layer {  // one batch's records
    Layer() : wb(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true) {}
    // The value of an entry of `timelines` or `versions`.
    std::string_view Value(const RowEntries::Entry& e) { return std::string_view(Data()).substr(e.offset, e.size); }
    const std::string& Data() { return wb.GetWriteBatch()->Data(); }
    rocksdb::WriteBatchWithIndex wb;                 // all of them; the rare families indexed
    LogKeys log_written;                             // its `log` keys
    RowEntries timelines;                            // its `rowtenant` records, by RowTenantPrefix
    RowEntries versions;                             // its `versions` records, by RowPrefix
    std::unordered_set<std::string> version_tables;  // TablePrefix of each (tenant, table) in `versions`
    // Empties it for another batch, keeping what it allocated that can be
    // kept (the write batch's buffer, the maps' buckets).
    void Clear() {
      wb.Clear();
      log_written.Clear();
      timelines.Clear();
      versions.Clear();
      version_tables.clear();
    }
  };
  // Layers written and cleared, for the next batches (StoreImpl::NewLayer):
  // a batch reuses the memory of one before it rather than allocating it
  // on the building thread and freeing it on the writing one.
  std::mutex spare_layers_mu;
  std::vector<std::unique_ptr<Layer>> spare_layers;
  std::unique_ptr<Layer> NewLayer() {
    std::lock_guard lock(spare_layers_mu);
    if (spare_layers.empty()) return std::make_unique<Layer>();
    std::unique_ptr<Layer> l = std::move(spare_layers.back());
    spare_layers.pop_back();
    return l;
  }
  void RecycleLayer(std::unique_ptr<Layer> l) {
    if (!l) return;
    l->Clear();
    std::lock_guard lock(spare_layers_mu);
    if (spare_layers.size() < 2) spare_layers.push_back(std::move(l));
  }
  struct Pipeline {
    std::unique_ptr<Layer> previous;  // the batch in flight, or the last one landed
    std::future<Status> writing;      // the write of `previous`; publishes its view
  } pipeline;
  SerialWorker writer_thread;  // runs the pipeline's writes (drained in ~StoreImpl)
  // Syncs the WAL after each write, while the next batch is written, then
  // publishes that batch's view (engine/ingest.cc). A failed sync is kept in
  // sync_error and fails the next batch.
  SerialWorker sync_thread;
  std::mutex sync_mu;
  Status sync_error;
  // Set by a failed write: RocksDB's write-ahead-log writer that met the
  // error must not be synced again (the Debian build asserts on it).
  std::atomic<bool> write_failed{false};
  // Waits until every sync started so far has finished; its error, if any.
  Status WaitSynced();

  // ---- reader state ----
  std::shared_mutex refresh_mu;  // read-only stores: readers shared, Refresh exclusive
  std::mutex view_mu;
  ReadView view;
  std::atomic<uint64_t> read_seeks{0};
  std::atomic<uint64_t> read_steps{0};

  ~StoreImpl();

  ReadView View() {
    std::lock_guard lock(view_mu);
    return view;
  }
  // Copies the writer state into `view` (after a successful write).
  void Publish();
  ReadView WriterView() const;
  // Reloads the writer state from the database (at open, after a failed write).
  Status LoadWriterState();
  // read_only: reloads `view` from meta.
  Status LoadView();

  // Ingest (ingest.cc). StartBatch builds a batch and starts its write once
  // the previous one has landed; Drain waits for the write in flight and
  // empties the pipeline. Any error leaves nothing of the failed batch (or
  // of one built on it) in the writer state.
  Status StartBatch(const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back = nullptr);
  Status Drain();
  // The first write (or WAL sync) of an ingest batch that failed, whoever
  // found it (a batch, WaitApplied, or retention's, a rotation's or a
  // shred's Drain). Batches consumed after it cannot be written without it:
  // every later StartBatch and WaitApplied returns it, so the consumer
  // stops and a restart consumes again from the stored offsets (issue #18:
  // retention's Drain cleared the error and ingest went on past the lost
  // batch). Under write_mu.
  Status lost_write;
  // Reads (reads.cc).
  Status CheckRecoverable(Lsn point, const ReadView& v, std::string_view what) const;
  Status CheckFloor(Lsn point, const ReadView& v, std::string_view what) const;
  // Gaps (gaps.cc): OutOfRange naming the gap when `point` lies inside one
  // (after its `from`, before its `to`); for History, when (from, to]
  // reaches into one.
  Status CheckGap(Lsn point, const ReadView& v, std::string_view what) const;
  Status CheckGapRange(Lsn from, Lsn to, const ReadView& v) const;
  // OutOfRange when `point` is before the store's first point, or before
  // the coverage of one of `tables` (or that table is not covered at all),
  // naming the table and where its coverage starts (gaps.cc).
  Status CheckCoverage(Lsn point, const std::vector<std::string>& tables, const ReadView& v) const;
  // The acknowledgements file (gaps.cc).
  std::string GapAcksPath() const;
  // Retention and shredding (retention.cc).
  Status Retention(CommitTime now);
  Status Shred(const TenantId& tenant);
  // The store's format at open: reads it, refuses a newer one, stamps a
  // writer's (format.cc).
  Status LoadFormat();
};

// Store's pimpl is the StoreImpl above (Store::Impl is private to Store).
struct Store::Impl : StoreImpl {};

// "X/Y (time ISO)".
std::string DescribePoint(const engine::PointRec& p);

namespace engine {
// ResolveTime's answer `best` for time `t`, given the gaps: OutOfRange for
// a time inside one; the end of a gap (its full snapshot) when that is
// newer than `best` and not after `t` (gaps.cc).
Status AdjustForGaps(const std::vector<GapRec>& gaps, CommitTime t, std::optional<PointRec>* best);
// Opens a gap after `recoverable` (or adds `cause` to the one open).
void AddOpenGap(std::vector<GapRec>* gaps, const std::optional<PointRec>& recoverable, const std::string& cause);
// Remembers a dead letter for DropStalled (the newest few).
void NoteDeadLetter(StoreImpl* s, const KafkaPosition& pos, std::string_view reason, std::string_view raw);
}  // namespace engine

}  // namespace timevault::store
