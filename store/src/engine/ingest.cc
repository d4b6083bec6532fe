// Store::Apply: one consumed batch -> one synced RocksDB WriteBatch holding
// the data, the counters, the recoverable-point bookkeeping and the next
// offset of every partition in the batch. Row events: ingest_rows.cc.
#include "engine/ingest.h"

#include <rocksdb/comparator.h>
#include <rocksdb/perf_level.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace timevault::store {
namespace engine {

Ingest::Ingest(StoreImpl* s, StoreImpl::Layer* layer, StoreImpl::Layer* previous, std::vector<IngestItem>* held_back)
    : s_(s), layer_(layer), previous_(previous), wb_(layer->wb), held_back_(held_back) {
  base_ro_.total_order_seek = true;
}

namespace {

enum class InBatch { kAbsent, kPut, kDeleted };

// The newest record of `key` in one batch's index (overwrite_key: one per key).
Result<InBatch> LookUp(rocksdb::WriteBatchWithIndex& wb, rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                       std::string* value) {
  std::unique_ptr<rocksdb::WBWIIterator> it(wb.NewIterator(cf));
  it->Seek(key);
  if (!it->Valid()) return InBatch::kAbsent;
  const rocksdb::WriteEntry e = it->Entry();
  if (e.key != key) return InBatch::kAbsent;
  switch (e.type) {
    case rocksdb::kPutRecord: value->assign(e.value.data(), e.value.size()); return InBatch::kPut;
    case rocksdb::kDeleteRecord:
    case rocksdb::kSingleDeleteRecord: return InBatch::kDeleted;
    default: return Internal("unexpected record type in an ingest batch's index");
  }
}

}  // namespace

Result<std::optional<std::string>> Ingest::Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  std::string v;
  for (StoreImpl::Layer* l : {layer_, previous_}) {
    if (l == nullptr) continue;
    TV_ASSIGN_OR_RETURN(InBatch found, LookUp(l->wb, cf, key, &v));
    if (found == InBatch::kPut) return std::optional<std::string>(std::move(v));
    if (found == InBatch::kDeleted) return std::optional<std::string>();
  }
  return GetInDb(cf, key);
}

Result<std::optional<std::string>> Ingest::GetInDb(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  std::string v;
  rocksdb::Status st = s_->db->Get(rocksdb::ReadOptions(), cf, key, &v);
  if (st.IsNotFound()) return std::optional<std::string>();
  if (!st.ok()) return Internal(RocksError("get", st));
  return std::optional<std::string>(std::move(v));
}

// In the database only (families whose batch records are not indexed).
Result<bool> Ingest::InDb(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  std::string ignored;
  rocksdb::Status st = s_->db->Get(rocksdb::ReadOptions(), cf, key, &ignored);
  if (st.IsNotFound()) return false;
  if (!st.ok()) return Internal(RocksError("get", st));
  return true;
}

Result<bool> Ingest::Exists(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  TV_ASSIGN_OR_RETURN(auto v, Get(cf, key));
  return v.has_value();
}

// This batch over the previous one over the database (each layer's iterator
// owns the one below).
rocksdb::Iterator* Ingest::Iter(rocksdb::ColumnFamilyHandle* cf) {
  auto& it = iters_[cf];
  if (!it) {
    rocksdb::Iterator* base = s_->db->NewIterator(base_ro_, cf);
    if (previous_ != nullptr) base = previous_->wb.NewIteratorWithBase(cf, base, &base_ro_);
    it.reset(wb_.NewIteratorWithBase(cf, base, &base_ro_));
  }
  return it.get();
}

Status Ingest::Put(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value) {
  rocksdb::Status st = wb_.Put(cf, key, value);
  return st.ok() ? Status::Ok() : Internal(RocksError("batch put", st));
}

// Records nothing reads back within the batch skip the batch's index (its
// upkeep is most of a batch's cost): appended to the underlying WriteBatch,
// they are written with the rest, in order. The index refers to its own
// records by offset, so appending others between them is safe.
Status Ingest::PutUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value) {
  rocksdb::Status st = wb_.GetWriteBatch()->Put(cf, key, value);
  return st.ok() ? Status::Ok() : Internal(RocksError("batch put", st));
}

// PutUnindexed, returning where the key is in the batch's data: the record
// ends with the key, the value's length (varint) and the value.
Result<size_t> Ingest::PutLocated(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value) {
  TV_RETURN_IF_ERROR(PutUnindexed(cf, key, value));
  const std::string& data = wb_.GetWriteBatch()->Data();
  size_t value_length_bytes = 1;
  for (size_t n = value.size(); n >= 0x80; n >>= 7) ++value_length_bytes;
  const size_t key_end = data.size() - value.size() - value_length_bytes;
  if (key_end < key.size() || data.compare(key_end - key.size(), key.size(), key) != 0) {
    return Internal("a batch record is not where the batch format puts it");
  }
  return key_end - key.size();
}

// PutUnindexed for a record kept in one of the layer's RowEntries: where its
// key and value are in the batch.
Result<Ingest::Kept> Ingest::PutKept(rocksdb::ColumnFamilyHandle* cf, std::string_view key, uint64_t lsn,
                                     std::string_view value) {
  TV_ASSIGN_OR_RETURN(const size_t key_offset, PutLocated(cf, key, value));
  const size_t end = wb_.GetWriteBatch()->GetDataSize();
  return Kept{{lsn, end - value.size(), value.size()}, key_offset};
}

Status Ingest::DeleteUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  rocksdb::Status st = wb_.GetWriteBatch()->Delete(cf, key);
  return st.ok() ? Status::Ok() : Internal(RocksError("batch delete", st));
}

Status Ingest::MergeUnindexed(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value) {
  rocksdb::Status st = wb_.GetWriteBatch()->Merge(cf, key, value);
  return st.ok() ? Status::Ok() : Internal(RocksError("batch merge", st));
}

// `log` is read back only by the duplicate check, which looks in the
// layers' log_written (this batch's and the one before, maybe in flight).
Status Ingest::PutLog(const std::string& tenant, const std::string& key, std::string_view value) {
  StoreImpl::LogBound& bound = s_->log_bounds[tenant];
  if (key > bound.max) bound.max = key;
  TV_ASSIGN_OR_RETURN(const size_t key_offset, PutLocated(s_->log, key, value));
  const std::string& data = wb_.GetWriteBatch()->Data();
  layer_->log_written.Add(data, tenant, key_offset, key.size(), data.size() - value.size(), value.size());
  return Status::Ok();
}

// A `log` value: in this batch, the one before (their `log` records are
// not indexed: Layer::log_written finds them), or the database.
Result<std::optional<std::string>> Ingest::LogValue(const std::string& tenant, const std::string& key) {
  for (StoreImpl::Layer* l : {layer_, previous_}) {
    if (l == nullptr) continue;
    if (auto v = l->log_written.Value(l->Data(), tenant, key)) return std::optional<std::string>(std::string(*v));
  }
  return GetInDb(s_->log, key);
}

// The tenant's log bound (StoreImpl::log_bounds), with the database's
// greatest `log` key of the tenant read once per store opening.
Result<const std::string*> Ingest::LogBound(const std::string& tenant) {
  StoreImpl::LogBound& bound = s_->log_bounds[tenant];
  if (!bound.loaded) {
    std::string prefix;
    PutT(&prefix, tenant);
    std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(base_ro_, s_->log));
    it->SeekForPrev(PrefixSuccessor(prefix));
    if (!it->status().ok()) return Internal(RocksError("reading the newest log entry", it->status()));
    if (it->Valid() && it->key().starts_with(prefix) && it->key().ToStringView() > bound.max) {
      bound.max = it->key().ToString();
    }
    bound.loaded = true;
  }
  return &bound.max;
}

Status Ingest::Delete(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
  rocksdb::Status st = wb_.Delete(cf, key);
  return st.ok() ? Status::Ok() : Internal(RocksError("batch delete", st));
}

Result<DataKeys*> Ingest::Key(std::string_view tenant, bool create) {
  return s_->keyring->ForWrite(tenant, create, &wb_);
}

// The next offset of the item's partition (created as 0, which passes
// every offset): the previous item's entry most of the time, found without
// building a key.
int64_t* Ingest::NextOffset(const KafkaPosition& pos) {
  if (last_offset_ == nullptr || last_partition_ != pos.partition || last_topic_ != pos.topic) {
    auto part = std::make_pair(pos.topic, pos.partition);
    dirty_offsets_.insert(part);
    last_offset_ = &s_->offsets.try_emplace(std::move(part), 0).first->second;
    last_topic_ = pos.topic;
    last_partition_ = pos.partition;
  }
  return last_offset_;
}

// Holds `item` back (Store::ApplyStart), with the rest of its partition in
// this batch: the partition's next offset stays at it.
bool Ingest::HoldBack(const IngestItem& item) {
  if (held_back_ == nullptr || item.held_back >= kMaxHeldBackBatches || held_back_->size() >= kMaxHeldBack) {
    return false;
  }
  frozen_.emplace(item.position.topic, item.position.partition);
  *NextOffset(item.position) = item.position.offset;
  CarryOver(item);
  return true;
}

void Ingest::CarryOver(const IngestItem& item) {
  held_back_->push_back(item);
  ++held_back_->back().held_back;
}

Status Ingest::Item(const IngestItem& item) {
  if (!frozen_.empty() && frozen_.count({item.position.topic, item.position.partition})) {
    CarryOver(item);  // behind an earlier message of its partition that waits
    return Status::Ok();
  }
  int64_t* next = NextOffset(item.position);
  if (item.position.offset < *next) {
    ++s_->counters.duplicates;  // re-delivered by Kafka: already applied
    return Status::Ok();
  }
  // A jump forward: the partition held messages the store never read (its
  // retention deleted them and the fetch was reset past them). The heartbeat
  // topic too: a lost snapshot marker would hide a re-snapshot's gap.
  if (*next > 0 && item.position.offset > *next) TV_RETURN_IF_ERROR(SkippedOffsets(item.position, *next));
  *next = item.position.offset + 1;
  if (!item.event) {
    return DeadLetter(item.position, item.dead_letter_reason.empty() ? "not parsed" : item.dead_letter_reason,
                      item.raw);
  }
  const StoreEvent& ev = *item.event;
  switch (ev.kind) {
    case EventKind::kChange: return ev.op == 't' ? Truncate(item, ev) : Change(item, ev);
    case EventKind::kMessage: return Message(ev);
    case EventKind::kTransactionEnd: return End(ev);
    case EventKind::kHeartbeat: return Heartbeat(item, ev);
    case EventKind::kTombstone:
    case EventKind::kTransactionBegin: return Status::Ok();
  }
  return Status::Ok();
}

Status Ingest::DeadLetter(const KafkaPosition& pos, std::string_view reason, std::string_view raw) {
  const std::string key = DeadLetterKey(pos.topic, pos.partition, pos.offset);
  TV_ASSIGN_OR_RETURN(bool exists, Exists(s_->deadletter, key));
  if (exists) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }
  std::string value;
  PutT(&value, reason.substr(0, 0xFFFF));
  std::string enc;
  s_->keyring->StoreKeyForWrite().Encrypt(raw, key, &enc);
  value += enc;
  ++s_->counters.dead_letters;
  NoteDeadLetter(s_, pos, reason, raw);
  spdlog::warn("store: dead letter {}[{}]@{}: {}", pos.topic, pos.partition, pos.offset, reason);
  return Put(s_->deadletter, key, value);
}

// A truncate is stored once per table (truncates CF) and in the history of
// the store-wide "" tenant (where it counts) and of every tenant that has
// versions in the table.
Status Ingest::Truncate(const IngestItem& item, const StoreEvent& ev) {
  if (ev.table.empty() || !FitsT(ev.table)) return DeadLetter(item.position, "truncate without a table", item.raw);
  TV_ASSIGN_OR_RETURN(TxRef tx, Resolve(ev, true));
  const uint64_t lsn = ev.change_lsn.value();
  const EntryId main{"", ev.table, "", lsn};
  TV_ASSIGN_OR_RETURN(bool dup, IsDuplicate(tx, main));
  if (dup) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }
  std::string v;
  PutU64(&v, tx.mode == TxRef::kDirect ? kNoTransaction : tx.xid);
  TV_RETURN_IF_ERROR(Put(s_->truncates, TruncateKey(ev.table, lsn), v));
  std::vector<HistoryEntry> entries{{main, 't', ev.envelope, 1}};
  TV_ASSIGN_OR_RETURN(auto tenants, TenantsWithRows(ev.table));
  for (auto& t : tenants) {
    if (!t.empty()) entries.push_back({EntryId{std::move(t), ev.table, "", lsn}, 't', ev.envelope, 0});
  }
  TV_RETURN_IF_ERROR(WriteHistory(tx, entries, ev.commit_time));
  ++s_->counters.events_stored;
  return Status::Ok();
}

// Logical messages have no tenant: they go to the store-wide "" history.
Status Ingest::Message(const StoreEvent& ev) {
  TV_ASSIGN_OR_RETURN(TxRef tx, Resolve(ev, ev.transactional));
  const EntryId main{"", "", "", ev.change_lsn.value()};
  TV_ASSIGN_OR_RETURN(bool dup, IsDuplicate(tx, main));
  if (dup) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }
  TV_RETURN_IF_ERROR(WriteHistory(tx, {{main, 'm', ev.envelope, 1}}, ev.commit_time));
  ++s_->counters.events_stored;
  return Status::Ok();
}

Status Ingest::End(const StoreEvent& ev) {
  const uint64_t commit = ev.tx_lsn.value();
  const auto xid = static_cast<uint64_t>(ev.tx_xid);
  // ENDs arrive in commit order, so an older one is mostly a re-send; but
  // one whose first send never landed (a producer that gave up on it while
  // later ones landed) is only now complete: it is applied unless its
  // transaction is known (or folded by retention).
  const bool older = commit <= s_->progress.last_end_lsn;
  if (older && s_->progress.floor && commit <= s_->progress.floor->lsn) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }
  bool seen = txns_.count({xid, commit}) > 0;
  if (!seen) {
    TV_ASSIGN_OR_RETURN(seen, Exists(s_->txns, TxnKey(xid, commit)));
  }
  if (seen) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }
  if (older) {
    spdlog::warn("store: END of transaction {} at {} arrived after a later END ({}); applying it now", xid,
                 Lsn(commit).ToString(), Lsn(s_->progress.last_end_lsn).ToString());
  } else {
    s_->progress.last_end_lsn = commit;
  }
  ended_here_.insert(commit);

  // The events stored before their END: move them to the log.
  std::vector<std::pair<std::string, std::string>> moved;
  std::string xid_prefix;
  PutU64(&xid_prefix, xid);
  rocksdb::Iterator* it = Iter(s_->pending);
  for (it->Seek(xid_prefix); it->Valid() && it->key().starts_with(xid_prefix); it->Next()) {
    auto parts = ParsePendingKey(it->key().ToStringView());
    if (!parts) return Corruption("pending entry with a damaged key");
    if (parts->id.change_lsn > commit) break;  // a later transaction with the same xid (wraparound)
    moved.emplace_back(it->key().ToString(), it->value().ToString());
  }
  TxnValue txn;
  txn.commit_time_us = ev.tx_time.micros();
  txn.flags = kTxnTimeFromEnd;
  std::string plain, enc;
  for (const auto& [key, value] : moved) {
    Reader r(value);
    uint8_t weight = 0, op = 0;
    uint64_t time = 0;
    if (!r.U8(&weight) || !r.U8(&op) || !r.U64(&time)) return Corruption("pending entry with a damaged value");
    if ((txn.flags & kTxnTimeFromEnd) && time > 0) {  // change events carry the commit time in microseconds
      txn.commit_time_us = static_cast<int64_t>(time);
      txn.flags = 0;
    }
    auto parts = ParsePendingKey(key);
    TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(parts->id.tenant, false));
    txn.stored += weight;
    TV_RETURN_IF_ERROR(Delete(s_->pending, key));
    if (dk == nullptr) continue;         // the tenant was shredded meanwhile
    if (!dk->Opens(r.rest())) continue;  // ...and came back with a new key: as unreadable
    TV_RETURN_IF_ERROR(dk->Decrypt(r.rest(), key, &plain).WithContext("pending entry"));
    const std::string log_key = LogKey(commit, parts->id);
    dk->Encrypt(plain, log_key, &enc);
    std::string log_value(1, static_cast<char>(op));
    log_value += enc;
    TV_RETURN_IF_ERROR(PutLog(parts->id.tenant, log_key, log_value));
  }
  txn.expected = std::max<int64_t>(ev.event_count, 0);
  const bool complete = txn.stored >= txn.expected;
  if (complete) txn.flags |= kTxnComplete;
  txns_[{xid, commit}] = txn;  // written in Finish, with its `commits` entry
  NoteEndTime(txn.commit_time_us);
  if (complete && s_->inflight.empty()) {
    if (!older) s_->progress.complete_through = PointRec{commit, txn.commit_time_us};
    return Status::Ok();
  }
  const InFlightTxn t{xid, txn.commit_time_us, txn.expected, txn.stored, txn.flags};
  s_->inflight[commit] = t;
  s_->inflight_by_xid.emplace(xid, commit);
  inflight_new_.insert(commit);  // its meta entry is written in Finish if it is still in flight then
  return Status::Ok();
}

Status Ingest::Heartbeat(const IngestItem& item, const StoreEvent& ev) {
  const uint64_t lsn = ev.heartbeat_lsn.value();
  const auto& p = s_->progress;
  // One at the recoverable LSN still moves its time on (capture's idle probe
  // right after a commit: nothing committed between them).
  if (p.base && p.recoverable && !ev.snapshot_image &&
      (lsn < p.recoverable->lsn || (lsn == p.recoverable->lsn && ev.heartbeat_time.micros() <= p.recoverable->time_us)))
    return Status::Ok();
  const std::string key = HeartbeatKey(lsn, item.position.offset);
  if (s_->heartbeats.count(key)) return Status::Ok();
  PendingHeartbeat h{lsn, ev.heartbeat_time.micros(), ev.heartbeat_offsets};
  h.image = ev.snapshot_image;
  h.gap = ev.snapshot_gap;
  h.tables = ev.snapshot_tables;
  h.all_tables = ev.snapshot_all_tables;
  h.cause = ev.snapshot_cause;
  TV_RETURN_IF_ERROR(Put(s_->meta, key, EncodeHeartbeat(h)));
  s_->heartbeats.emplace(key, std::move(h));
  return Status::Ok();
}

Result<TxRef> Ingest::Resolve(const StoreEvent& ev, bool transactional) {
  TxRef tx;
  if (!transactional || !ev.xid) {
    tx.commit = ev.change_lsn.value();
    return tx;
  }
  tx.xid = static_cast<uint64_t>(*ev.xid);
  TV_ASSIGN_OR_RETURN(auto commit, FindCommit(tx.xid, ev.change_lsn.value()));
  if (commit) {
    tx.mode = TxRef::kKnown;
    tx.commit = *commit;
  } else {
    tx.mode = TxRef::kPending;
  }
  return tx;
}

// The commit LSN of transaction `xid` containing a change at `change_lsn`: the
// smallest commit >= change_lsn with that xid (survives xid wraparound).
Result<std::optional<uint64_t>> Ingest::FindCommit(uint64_t xid, uint64_t change_lsn) {
  std::optional<uint64_t> best;
  for (auto [it, end] = s_->inflight_by_xid.equal_range(xid); it != end; ++it) {
    if (it->second >= change_lsn && (!best || it->second < *best)) best = it->second;
  }
  if (best) return best;
  // ENDs arrive in commit order: none seen yet can be this transaction's.
  if (change_lsn >= s_->progress.last_end_lsn) return std::optional<uint64_t>();
  // This batch's ENDs are in txns_ (written in Finish), earlier ones in the
  // family (through the previous batch's records).
  if (auto c = txns_.lower_bound({xid, change_lsn}); c != txns_.end() && c->first.first == xid) best = c->first.second;
  rocksdb::Iterator* it = Iter(s_->txns);
  it->Seek(TxnKey(xid, change_lsn));
  if (it->Valid() && it->key().size() == 16 && DecodeU64(it->key().ToStringView()) == xid) {
    const uint64_t found = DecodeU64(it->key().ToStringView().substr(8));
    if (!best || found < *best) best = found;
  }
  return best;
}

Result<bool> Ingest::IsDuplicate(const TxRef& tx, const EntryId& main) {
  if (tx.mode == TxRef::kPending) return Exists(s_->pending, PendingKey(tx.xid, main));
  std::string key = LogKey(tx.commit, main);
  // Above every key of the tenant (the usual case: events arrive in commit
  // order per tenant): not stored.
  TV_ASSIGN_OR_RETURN(const std::string* bound, LogBound(main.tenant));
  if (key > *bound) return false;
  for (StoreImpl::Layer* l : {layer_, previous_}) {
    if (l != nullptr && l->log_written.Has(l->wb.GetWriteBatch()->Data(), main.tenant, key)) return true;
  }
  // Every stored event of a transaction whose END this batch applied is in
  // this batch (moved from `pending` at the END, or written since): it is
  // not in the database.
  if (tx.mode == TxRef::kKnown && ended_here_.count(tx.commit)) return false;
  return InDb(s_->log, key);
}

Status Ingest::WriteHistory(const TxRef& tx, const std::vector<HistoryEntry>& entries, CommitTime commit_time) {
  std::string enc;
  int64_t weight = 0;
  for (const auto& e : entries) {
    TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(e.id.tenant, true));
    weight += e.weight;
    // The dictionary lands in this batch, with the first envelopes packed with it.
    for (const auto& r : s_->codec->Sample(e.envelope)) TV_RETURN_IF_ERROR(Put(s_->meta, r.key, r.value));
    // Format 3: the row image is in `versions` under the same tenant, table,
    // key and LSN; the entry keeps the envelope without it (the first place
    // its bytes occur: put back there, the envelope is exactly the same).
    char op = e.op;
    std::string_view plain;
    const size_t at = (s_->options.write_format >= 3 && e.row.size() >= kMinSplicedRow &&
                       e.envelope.size() <= std::numeric_limits<uint32_t>::max())
                          ? e.envelope.find(e.row)
                          : std::string_view::npos;
    if (at != std::string_view::npos) {
      rest_.assign(e.envelope.substr(0, at));
      rest_.append(e.envelope.substr(at + e.row.size()));
      spliced_ = EncodeSpliced(static_cast<uint32_t>(at), s_->codec->Pack(rest_, &rest_packed_));
      plain = spliced_;
      op = static_cast<char>(static_cast<uint8_t>(op) | kOpSpliced);
    } else {
      plain = s_->codec->Pack(e.envelope, &packed_);
    }
    if (tx.mode == TxRef::kPending) {
      const std::string key = PendingKey(tx.xid, e.id);
      dk->Encrypt(plain, key, &enc);
      std::string value;
      value.push_back(static_cast<char>(e.weight));
      value.push_back(op);
      PutU64(&value, static_cast<uint64_t>(commit_time.micros()));
      value += enc;
      TV_RETURN_IF_ERROR(Put(s_->pending, key, value));
    } else {
      const std::string key = LogKey(tx.commit, e.id);
      dk->Encrypt(plain, key, &enc);
      std::string value(1, op);
      value += enc;
      TV_RETURN_IF_ERROR(PutLog(e.id.tenant, key, value));
    }
  }
  if (tx.mode == TxRef::kKnown) return AddStored(tx.xid, tx.commit, weight, commit_time);
  return Status::Ok();
}

// Counts `n` more stored events of a transaction whose END is applied.
// The entry is read once per batch and written once, in Finish.
Status Ingest::AddStored(uint64_t xid, uint64_t commit, int64_t n, CommitTime commit_time) {
  // A transaction's events mostly come one after another: the entries of
  // the last one are kept (map entries stay put until Finish).
  if (!last_txn_.txn || last_txn_.xid != xid || last_txn_.commit != commit) {
    auto cached = txns_.find({xid, commit});
    auto inflight = s_->inflight.find(commit);
    if (inflight != s_->inflight.end() && inflight->second.xid != xid) inflight = s_->inflight.end();
    if (cached == txns_.end() && inflight != s_->inflight.end()) {
      // An incomplete transaction's counters are in memory: no read.
      const InFlightTxn& t = inflight->second;
      cached = txns_.emplace(std::make_pair(xid, commit), TxnValue{t.commit_time_us, t.expected, t.stored, t.txn_flags})
                   .first;
    } else if (cached == txns_.end()) {
      TV_ASSIGN_OR_RETURN(auto raw, Get(s_->txns, TxnKey(xid, commit)));
      auto parsed = raw ? ParseTxnValue(*raw) : std::nullopt;
      if (!parsed) return Corruption("txns entry of transaction " + std::to_string(xid) + " is missing or damaged");
      cached = txns_.emplace(std::make_pair(xid, commit), *parsed).first;
    }
    last_txn_ = {xid, commit, &cached->second, inflight != s_->inflight.end() ? &inflight->second : nullptr};
  }
  TxnValue* txn = last_txn_.txn;
  if ((txn->flags & kTxnTimeFromEnd) && commit_time.micros() > 0) {
    TV_RETURN_IF_ERROR(RefineCommitTime(xid, commit, txn, commit_time.micros()));
  }
  txn->stored += n;
  if (txn->stored >= txn->expected) txn->flags |= kTxnComplete;
  if (InFlightTxn* inflight = last_txn_.inflight) {
    inflight->stored = txn->stored;
    inflight->commit_time_us = txn->commit_time_us;
    inflight->txn_flags = txn->flags;
  }
  return Status::Ok();
}

// END's ts_ms has millisecond precision; the change events' ts_us is the
// commit time in microseconds: re-key the commit under the precise time.
// (An END applied by this batch has its `commits` entry written in Finish,
// under the time refined by then.)
Status Ingest::RefineCommitTime(uint64_t xid, uint64_t commit, TxnValue* txn, int64_t time_us) {
  if (ended_here_.count(commit) == 0) {
    TV_RETURN_IF_ERROR(DeleteUnindexed(s_->commits, CommitKey(txn->commit_time_us, commit)));
    TV_RETURN_IF_ERROR(PutUnindexed(s_->commits, CommitKey(time_us, commit), EncodeCommitValue(xid, txn->expected)));
  }
  txn->commit_time_us = time_us;
  txn->flags &= static_cast<uint8_t>(~kTxnTimeFromEnd);
  NoteEndTime(time_us);
  auto& ct = s_->progress.complete_through;
  if (ct && ct->lsn == commit) ct->time_us = time_us;
  return Status::Ok();
}

// Commit times are not monotonic in LSN order; ResolveTime scans back over
// the largest step back seen (docs/store.md, "Resolving a time").
void Ingest::NoteEndTime(int64_t time_us) {
  auto& p = s_->progress;
  if (time_us < p.max_end_time_us) p.max_skew_us = std::max(p.max_skew_us, p.max_end_time_us - time_us);
  p.max_end_time_us = std::max(p.max_end_time_us, time_us);
}

bool Ingest::Satisfied(const PendingHeartbeat& h) const {
  // A full snapshot's marker does not wait for transactions below it: the
  // new slot will never send what they miss (SnapshotImage gives them up).
  if (!h.image && !s_->inflight.empty() && s_->inflight.begin()->first <= h.lsn) return false;
  return OffsetsPassed(h);
}

// Advances complete-through over the complete transactions at the front.
Status Ingest::PopComplete() {
  auto& p = s_->progress;
  while (!s_->inflight.empty()) {
    auto it = s_->inflight.begin();
    if (it->second.stored < it->second.expected) break;
    // Only raised: an END applied late (Ingest::End) may complete below it.
    if (!p.complete_through || it->first > p.complete_through->lsn) {
      p.complete_through = PointRec{it->first, it->second.commit_time_us};
    }
    // One that went in flight in this batch has no meta entry to delete.
    if (inflight_new_.erase(it->first) == 0) TV_RETURN_IF_ERROR(Delete(s_->meta, InflightKey(it->first)));
    for (auto [x, end] = s_->inflight_by_xid.equal_range(it->second.xid); x != end; ++x) {
      if (x->second == it->first) {
        s_->inflight_by_xid.erase(x);
        break;
      }
    }
    s_->inflight.erase(it);
  }
  return Status::Ok();
}

// The store's first point, when `recoverable` is the first one: the state
// at the newest snapshot row stored before it is known too (the heartbeat
// met says every event up to `recoverable` is stored, so nothing committed
// in between is missing); CheckCoverage refuses points before it.
PointRec Ingest::FirstPoint(const PointRec& recoverable) const {
  const auto& snap = s_->snapshot_before_first_point;
  if (!snap || snap->lsn >= recoverable.lsn) return recoverable;
  return PointRec{snap->lsn, std::min(snap->time_us, recoverable.time_us)};
}

Status Ingest::Finish() {
  auto& p = s_->progress;
  TV_RETURN_IF_ERROR(PopComplete());
  auto advance = [&](const PointRec& q) {
    if (!p.recoverable || q.lsn > p.recoverable->lsn) p.recoverable = q;
  };
  auto meet = [&](const PointRec& met) {
    p.base = true;
    advance(met);
    // The first point met (a later full snapshot's marker in the same batch
    // must not move it past the first one's).
    if (!p.first_point) p.first_point = FirstPoint(*p.recoverable);
    // A heartbeat at the recoverable LSN with a later time: nothing committed
    // in between, so the time moves on (the idle probe, docs/capture.md).
    if (met.lsn == p.recoverable->lsn && met.time_us > p.recoverable->time_us) p.recoverable->time_us = met.time_us;
  };
  // Heartbeats are met in order (later ones list larger offsets and LSNs),
  // each moving the recoverable point before the next is looked at: a full
  // snapshot's marker met in the same batch as an earlier marker finds the
  // history that one vouched for, and records the gap after it.
  while (!s_->heartbeats.empty()) {
    if (const auto& [key, h] = *s_->heartbeats.begin(); !Satisfied(h)) {
      // A full snapshot's marker met ends what the heartbeats before it wait
      // for (transactions whose events were lost, skipped Kafka offsets):
      // they go, unmet, and the snapshot records the gap below it.
      auto image = std::find_if(std::next(s_->heartbeats.begin()), s_->heartbeats.end(),
                                [&](const auto& e) { return e.second.image && Satisfied(e.second); });
      if (image == s_->heartbeats.end()) {
        TV_ASSIGN_OR_RETURN(bool dropped, DropStalled(key, h));  // a transaction that will never complete
        if (dropped) continue;
        break;
      }
      for (auto e = s_->heartbeats.begin(); e != image;) {
        TV_RETURN_IF_ERROR(Delete(s_->meta, e->first));
        e = s_->heartbeats.erase(e);
      }
      continue;
    }
    const auto& [key, h] = *s_->heartbeats.begin();
    if (h.image) {
      if (p.base && p.complete_through && p.complete_through->lsn < h.lsn) advance(*p.complete_through);
      TV_RETURN_IF_ERROR(SnapshotImage(h));
      TV_RETURN_IF_ERROR(PopComplete());
    }
    meet(PointRec{h.lsn, h.time_us});
    TV_RETURN_IF_ERROR(Delete(s_->meta, key));
    s_->heartbeats.erase(s_->heartbeats.begin());
  }
  for (uint64_t commit : inflight_new_) {  // still in flight at the end of the batch
    auto it = s_->inflight.find(commit);
    if (it == s_->inflight.end()) return Internal("an in-flight transaction of this batch is missing");
    TV_RETURN_IF_ERROR(Put(s_->meta, InflightKey(commit), EncodeInflight(it->second)));
  }
  if (p.base && p.complete_through) advance(*p.complete_through);
  if (p.recoverable && !p.first_point) p.first_point = FirstPoint(*p.recoverable);

  std::string row;  // copies: the merge appends to the batch they are in
  TV_RETURN_IF_ERROR(layer_->versions.ForEachNewest(
      layer_->Data(), [&](std::string_view in_batch, const StoreImpl::RowEntries::Entry& e) {
        row.assign(in_batch);
        return MergeUnindexed(s_->current, row, EncodeCurrent(e.lsn, layer_->Value(e)));
      }));
  for (const auto& [id, txn] : txns_) {
    TV_RETURN_IF_ERROR(Put(s_->txns, TxnKey(id.first, id.second), EncodeTxnValue(txn)));
    if (ended_here_.count(id.second) > 0) {
      TV_RETURN_IF_ERROR(PutUnindexed(s_->commits, CommitKey(txn.commit_time_us, id.second),
                                      EncodeCommitValue(id.first, txn.expected)));
    }
  }
  TV_RETURN_IF_ERROR(Put(s_->meta, kMetaProgress, p.Encode()));
  TV_RETURN_IF_ERROR(Put(s_->meta, kMetaCounters, s_->counters.Encode()));
  for (const auto& part : dirty_offsets_) {
    std::string v;
    PutU64(&v, static_cast<uint64_t>(s_->offsets[part]));
    TV_RETURN_IF_ERROR(Put(s_->meta, OffsetKey(part.first, part.second), v));
  }
  return Status::Ok();
}

std::vector<const IngestItem*> ApplyOrder(const std::vector<IngestItem>& batch) {
  std::set<std::pair<std::string_view, int32_t>> with_end;
  for (const auto& item : batch) {
    if (item.event && item.event->kind == EventKind::kTransactionEnd) {
      with_end.emplace(item.position.topic, item.position.partition);
    }
  }
  std::vector<const IngestItem*> order;
  order.reserve(batch.size());
  for (bool first : {true, false}) {
    for (const auto& item : batch) {
      if (with_end.count({item.position.topic, item.position.partition}) == (first ? 1u : 0u)) order.push_back(&item);
    }
  }
  return order;
}

}  // namespace engine

namespace {

// Waits for the batch in flight (which published its view when it landed).
// Its WAL sync may still run: a failed one is reported by a later
// WaitWrite or by WaitSynced.
Status WaitWrite(StoreImpl* s) {
  Status written = s->pipeline.writing.valid() ? s->pipeline.writing.get() : Status::Ok();
  if (!written.ok()) return written;
  std::lock_guard lock(s->sync_mu);
  return s->sync_error;
}

// After an error: nothing of the failed batch (nor of a batch built on it)
// is in the database; the writer state is reloaded from it.
void Reset(StoreImpl* s) {
  (void)s->WaitSynced();  // no sync still publishing a view of before the reload
  {
    std::lock_guard lock(s->sync_mu);
    s->sync_error = Status::Ok();  // the reload starts from what the database holds
  }
  s->pipeline = StoreImpl::Pipeline();
  s->keyring->AbortCreated();
  Status reload = s->LoadWriterState();
  if (!reload.ok()) spdlog::error("store: reloading the writer state: {}", reload.ToString());
}

// A batch's write failed: batches consumed after it cannot land without it
// (StoreImpl::lost_write).
void NoteLostWrite(StoreImpl* s, Status error) {
  s->lost_write = std::move(error);
  spdlog::error("store: {}: nothing more is written until the store is restarted", s->lost_write.ToString());
}

// A copy of `batch` with its records in (column family, key) order, the
// records of one key in their order (so the result is the same). Each
// memtable insert starts from where the previous one ended (RocksDB's
// skiplist keeps that position), so keys in order cost far fewer
// comparisons than keys in arrival order.
Result<std::unique_ptr<rocksdb::WriteBatch>> SortedCopy(rocksdb::WriteBatch& batch,
                                                        const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  struct Record {
    uint32_t cf;
    rocksdb::Slice key, value;
    char type;  // 'p' put, 'd' delete, 'm' merge
  };
  struct Collect : rocksdb::WriteBatch::Handler {
    std::vector<Record> records;
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      records.push_back({cf, k, v, 'p'});
      return rocksdb::Status::OK();
    }
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& k) override {
      records.push_back({cf, k, {}, 'd'});
      return rocksdb::Status::OK();
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      records.push_back({cf, k, v, 'm'});
      return rocksdb::Status::OK();
    }
  } collect;
  collect.records.reserve(batch.Count());
  if (rocksdb::Status st = batch.Iterate(&collect); !st.ok()) return Internal(RocksError("reading the batch", st));
  std::stable_sort(collect.records.begin(), collect.records.end(), [](const Record& a, const Record& b) {
    return a.cf != b.cf ? a.cf < b.cf : a.key.compare(b.key) < 0;
  });
  std::vector<rocksdb::ColumnFamilyHandle*> by_id;
  for (auto* h : handles) {
    if (h->GetID() >= by_id.size()) by_id.resize(h->GetID() + 1, nullptr);
    by_id[h->GetID()] = h;
  }
  auto sorted = std::make_unique<rocksdb::WriteBatch>(batch.GetDataSize());
  for (const Record& r : collect.records) {
    rocksdb::ColumnFamilyHandle* cf = r.cf < by_id.size() ? by_id[r.cf] : nullptr;
    if (cf == nullptr) return Internal("batch record of an unknown column family " + std::to_string(r.cf));
    rocksdb::Status st = r.type == 'p'   ? sorted->Put(cf, r.key, r.value)
                         : r.type == 'd' ? sorted->Delete(cf, r.key)
                                         : sorted->Merge(cf, r.key, r.value);
    if (!st.ok()) return Internal(RocksError("sorting the batch", st));
  }
  return sorted;
}

// The full-volume guard (docs/store.md, "A full volume"). RocksDB meeting
// ENOSPC in a write-ahead-log append leaves that log's writer failed, and the
// next flush or sync of it aborts the process (an assertion of the Debian
// build); so a batch that would leave less than the reserve free is refused
// here, before RocksDB writes any of it, and the store stops with an error.
Status CheckFreeSpace(const std::string& path, size_t min_free_mb, size_t batch_bytes) {
  if (min_free_mb == 0) return Status::Ok();
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) {
    return Internal("reading the free space of store.path " + path + ": " + std::strerror(errno));
  }
  // A file system that states no size (ramfs) has no free-space figure to go by.
  if (fs.f_blocks == 0) return Status::Ok();
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t need = (static_cast<uint64_t>(min_free_mb) << 20) + batch_bytes;
  if (free_bytes >= need) return Status::Ok();
  return Unavailable("No space left on the store's volume: " + std::to_string(free_bytes >> 20) + " MB free in " +
                     path + "; a batch of " + std::to_string(batch_bytes >> 10) +
                     " KB would leave less than store.min_free_mb = " + std::to_string(min_free_mb) +
                     " MB. Free space (or grow the volume) and restart the store: it resumes from its last stored "
                     "offsets");
}

}  // namespace

Status StoreImpl::StartBatch(const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back) {
  // RocksDB counts every key comparison in a thread-local perf context by
  // default: ~5% of ingest, for counters nothing here reads.
  if (!lost_write.ok()) return lost_write;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  std::unique_ptr<Layer> layer = NewLayer();
  Status st;
  {
    engine::Ingest ingest(this, layer.get(), pipeline.previous.get(), held_back);
    for (const IngestItem* item : engine::ApplyOrder(batch)) {
      st = ingest.Item(*item);
      if (!st.ok()) {
        st = st.WithContext(item->position.topic + "[" + std::to_string(item->position.partition) + "]@" +
                            std::to_string(item->position.offset));
        break;
      }
    }
    if (st.ok()) st = ingest.Finish();
  }
  // The write gets a sorted copy (SortedCopy), made here while the previous
  // batch is still being written: since round 7 writing is the longer stage
  // (BENCHMARKS.md). The batch itself stays as it is for the next batch's
  // reads through its index (read-only from now on).
  std::unique_ptr<rocksdb::WriteBatch> sorted;
  if (st.ok()) {
    auto copy = SortedCopy(*layer->wb.GetWriteBatch(), handles);
    if (copy.ok()) {
      sorted = std::move(copy).value();
    } else {
      st = copy.status();
    }
  }
  // Batches land in order: the previous one first.
  Status landed = WaitWrite(this);
  if (!landed.ok() || !st.ok()) {
    Reset(this);
    if (!landed.ok()) NoteLostWrite(this, landed.WithContext("writing an earlier batch"));
    return landed.ok() ? st : lost_write;
  }
  if (Status space = CheckFreeSpace(options.path, options.min_free_mb, sorted->GetDataSize()); !space.ok()) {
    Reset(this);
    NoteLostWrite(this, std::move(space));
    return lost_write;
  }
  // The batch before is no longer read; the writing thread clears it for
  // reuse (a small job, off the thread that builds the next batch).
  std::unique_ptr<Layer> done = std::move(pipeline.previous);
  pipeline.previous = std::move(layer);
  // Readers see the batch's progress as soon as it has landed, also when no
  // further batch follows (an idle consumer).
  pipeline.writing = writer_thread.Submit(
      [this, sorted = std::move(sorted), done = std::move(done), landed_view = WriterView()]() mutable {
        RecycleLayer(std::move(done));
        rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
        // Written to the WAL file (which survives the process) without
        // waiting for the disk: the sync runs on sync_thread while the next
        // batch is written, and readers see this batch's progress only once
        // it is synced. A machine crash before the sync loses this batch and
        // the ones after it together with their offsets (the WAL is
        // recovered up to a point in time): they are consumed again.
        rocksdb::WriteOptions wo;
        wo.sync = false;
        rocksdb::Status s = db->Write(wo, sorted.get());
        if (!s.ok()) {
          write_failed = true;
          return Internal(RocksError("writing the batch", s));
        }
        sync_thread.Submit([this, landed_view]() {
          if (write_failed) {
            std::lock_guard lock(sync_mu);
            if (sync_error.ok()) sync_error = Internal("a batch's write failed: the write-ahead log is not synced");
            return sync_error;
          }
          rocksdb::Status synced = db->SyncWAL();
          if (!synced.ok()) {
            std::lock_guard lock(sync_mu);
            if (sync_error.ok()) sync_error = Internal(RocksError("syncing the write-ahead log", synced));
            return sync_error;
          }
          std::lock_guard lock(view_mu);
          view = landed_view;
          return Status::Ok();
        });
        return Status::Ok();
      });
  return Status::Ok();
}

Status StoreImpl::WaitSynced() {
  sync_thread.Submit([] { return Status::Ok(); }).wait();  // after every sync queued before it
  std::lock_guard lock(sync_mu);
  return sync_error;
}

Status StoreImpl::Drain() {
  if (!lost_write.ok()) return lost_write;
  Status st = WaitWrite(this);
  if (st.ok()) st = WaitSynced();
  if (!st.ok()) {
    Reset(this);
    NoteLostWrite(this, st.WithContext("writing an ingest batch"));
    return lost_write;
  }
  pipeline = Pipeline();
  keyring->CommitCreated();  // every batch since the last Drain has landed
  return Status::Ok();
}

}  // namespace timevault::store
