// Retention (RunRetention) and crypto-shredding (ShredTenant). See
// docs/store.md, "Retention" and "Encryption at rest".
#include <spdlog/spdlog.h>

#include "engine/impl.h"
#include "engine/read_context.h"

namespace timevault::store {
namespace {

using namespace engine;

constexpr int64_t kMicrosPerDay = 86'400'000'000;
constexpr size_t kOpsPerWrite = 4096;  // retention writes in chunks; each chunk is safe on its own

// Accumulates deletes and puts, writing every kOpsPerWrite operations.
class ChunkedWriter {
 public:
  explicit ChunkedWriter(rocksdb::DB* db) : db_(db) {}
  Status Delete(rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key) {
    batch_.Delete(cf, key);
    return MaybeFlush();
  }
  Status Put(rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key, const rocksdb::Slice& value) {
    batch_.Put(cf, key, value);
    return MaybeFlush();
  }
  Status Flush() {
    if (batch_.Count() == 0) return Status::Ok();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = db_->Write(wo, &batch_);
    batch_.Clear();
    return s.ok() ? Status::Ok() : Internal(RocksError("retention write", s));
  }

 private:
  Status MaybeFlush() { return batch_.Count() >= kOpsPerWrite ? Flush() : Status::Ok(); }
  rocksdb::DB* db_;
  rocksdb::WriteBatch batch_;
};

// The newest commit (greatest LSN <= limit) with commit time <= t.
std::optional<PointRec> CommitAtOrBefore(ReadContext* ctx, rocksdb::ColumnFamilyHandle* commits, int64_t t,
                                         uint64_t limit, int64_t max_skew_us) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(commits, false));
  std::optional<PointRec> best;
  std::optional<int64_t> window_start;
  for (it->SeekForPrev(CommitKey(t, ~uint64_t{0})); it->Valid(); it->Prev()) {
    if (it->key().size() != 16) continue;
    const auto time = static_cast<int64_t>(DecodeU64(it->key().ToStringView()));
    const uint64_t lsn = DecodeU64(it->key().ToStringView().substr(8));
    if (window_start && time < *window_start) break;
    if (lsn > limit) continue;
    if (!window_start) window_start = time - max_skew_us - 1000;
    if (!best || lsn > best->lsn) best = PointRec{lsn, time};
  }
  return best;
}

// Whether a version is visible at `point` (its transaction committed by then).
bool VisibleAt(ReadContext* ctx, const VersionKeyParts& k, const VersionValue& v, uint64_t point) {
  if (k.change_lsn > point) return false;
  if (v.flags & (kVersionSnapshot | kVersionSettled)) return true;
  auto commit = ctx->CommitOf(v.xid, k.change_lsn);
  return commit && *commit <= point;
}

// Folds one row's versions at the floor: keeps the base (the version visible
// at the floor) unless it is a delete marker or truncated away, deletes every
// other version visible at the floor; the iterator ends past the row. The
// row's `current` entry is rewritten first when its newest version goes or
// changes: a crash between chunks then leaves `current` at what remains (or
// nothing, where the row is gone at the floor), never at a deleted version.
Status FoldRow(StoreImpl* s, ReadContext* ctx, rocksdb::Iterator* it, const std::string& row_prefix, uint64_t floor,
               uint64_t truncated, ChunkedWriter* w, uint64_t* deleted) {
  it->Seek(VersionKey(row_prefix, floor));
  if (!it->Valid() || !it->key().starts_with(row_prefix)) return Status::Ok();
  auto base = ctx->Choose(it, row_prefix, floor);
  bool keep_base = false;
  std::optional<std::string> settled;  // the base's new value
  if (base) {
    auto v = ParseVersionValue(base->value);
    keep_base = v && (v->flags & kVersionRow) && base->change_lsn >= truncated;
    if (keep_base && !(v->flags & (kVersionSnapshot | kVersionSettled))) {
      // Its transaction's txns entry goes: mark it committed before the floor.
      settled = base->value;
      (*settled)[0] = static_cast<char>(v->flags | kVersionSettled);
    }
  }
  std::vector<std::string> doomed;
  bool newest_changes = false;
  std::optional<std::string> newest_kept;  // EncodeCurrent of the newest version that stays
  bool first = true;
  for (it->Seek(row_prefix); it->Valid() && it->key().starts_with(row_prefix); it->Next(), first = false) {
    auto k = ParseVersionKey(it->key().ToStringView());
    auto v = ParseVersionValue(it->value().ToStringView());
    if (!k || !v) return Corruption("versions entry is damaged");
    const bool is_base = base && it->key().ToStringView() == base->key;
    if ((is_base && keep_base) || !VisibleAt(ctx, *k, *v, floor)) {
      if (!newest_kept) {
        const bool rewritten = is_base && settled;
        newest_kept = EncodeCurrent(k->change_lsn, rewritten ? *settled : it->value().ToStringView());
        newest_changes = newest_changes || (first && rewritten);
      }
      continue;
    }
    newest_changes = newest_changes || first;
    doomed.push_back(it->key().ToString());
  }
  if (newest_changes) {
    if (newest_kept) {
      TV_RETURN_IF_ERROR(w->Put(s->current, row_prefix, *newest_kept));
    } else {
      TV_RETURN_IF_ERROR(w->Delete(s->current, row_prefix));
    }
  }
  if (settled) TV_RETURN_IF_ERROR(w->Put(s->versions, base->key, *settled));
  for (const auto& key : doomed) TV_RETURN_IF_ERROR(w->Delete(s->versions, key));
  *deleted += doomed.size();
  return Status::Ok();
}

Status FoldVersions(StoreImpl* s, ReadContext* ctx, uint64_t floor, ChunkedWriter* w, uint64_t* deleted) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->versions, false));
  std::map<std::string, uint64_t> truncated;  // per table
  it->SeekToFirst();
  while (it->Valid()) {
    auto k = ParseVersionKey(it->key().ToStringView());
    if (!k) return Corruption("versions key is damaged");
    const std::string row_prefix(it->key().data(), k->row_prefix_size);
    const std::string table(k->table);
    if (!truncated.count(table)) truncated[table] = ctx->VisibleTruncate(table, floor);
    TV_RETURN_IF_ERROR(FoldRow(s, ctx, it.get(), row_prefix, floor, truncated[table], w, deleted));
    it->Seek(PrefixSuccessor(row_prefix));
  }
  if (!it->status().ok()) return Internal(RocksError("retention scan", it->status()));
  return Status::Ok();
}

// A row's timeline (rowtenant) keeps its entries after the floor and the
// newest one at or before it, unless that one is a delete.
Status FoldTimelines(StoreImpl* s, ReadContext* ctx, uint64_t floor, ChunkedWriter* w) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->rowtenant, false));
  it->SeekToFirst();
  while (it->Valid()) {
    Reader r(it->key().ToStringView());
    std::string_view table, pk;
    if (!r.T(&table) || !r.T(&pk)) return Corruption("rowtenant key is damaged");
    const std::string prefix = RowTenantPrefix(table, pk);
    bool base_seen = false;
    for (it->Seek(RowTenantKey(table, pk, floor)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto e = ParseRowTenant(it->key().ToStringView(), prefix.size(), it->value().ToStringView());
      if (!e) return Corruption("rowtenant entry is damaged");
      if (!base_seen && (e->flags & kRtVersion)) {
        base_seen = true;
        continue;
      }
      base_seen = true;
      TV_RETURN_IF_ERROR(w->Delete(s->rowtenant, it->key()));
    }
    it->Seek(PrefixSuccessor(prefix));
  }
  return Status::Ok();
}

// Truncates committed by the floor hid only versions now deleted.
Status DropTruncates(StoreImpl* s, ReadContext* ctx, uint64_t floor, ChunkedWriter* w) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->truncates, false));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Reader r(it->key().ToStringView());
    std::string_view table;
    uint64_t inv = 0;
    if (!r.T(&table) || !r.U64(&inv) || it->value().size() != 8) continue;
    const uint64_t xid = DecodeU64(it->value().ToStringView());
    const uint64_t lsn = ~inv;
    auto commit = xid == kNoTransaction ? std::optional<uint64_t>(lsn) : ctx->CommitOf(xid, lsn);
    if (commit && *commit <= floor) TV_RETURN_IF_ERROR(w->Delete(s->truncates, it->key()));
  }
  return Status::Ok();
}

// Commits before the floor (but the floor's own) and their transactions.
Status DropCommits(StoreImpl* s, ReadContext* ctx, const PointRec& floor, int64_t cutoff_us, ChunkedWriter* w) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->commits, false));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 16 || it->value().size() < 8) continue;
    const auto time = static_cast<int64_t>(DecodeU64(it->key().ToStringView()));
    const uint64_t lsn = DecodeU64(it->key().ToStringView().substr(8));
    if (time >= cutoff_us) break;
    if (lsn >= floor.lsn || s->inflight.count(lsn)) continue;
    TV_RETURN_IF_ERROR(w->Delete(s->commits, it->key()));
    TV_RETURN_IF_ERROR(w->Delete(s->txns, TxnKey(DecodeU64(it->value().ToStringView()), lsn)));
  }
  return Status::Ok();
}

Status DropLog(StoreImpl* s, ReadContext* ctx, uint64_t floor) {
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->keys, false));
  rocksdb::WriteBatch batch;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Reader r(it->key().ToStringView());
    std::string_view tenant;
    if (it->key().empty() || !r.T(&tenant) || !r.empty()) continue;
    std::string end = TenantPrefix(tenant);
    PutU64(&end, floor + 1);
    batch.DeleteRange(s->log, TenantPrefix(tenant), end);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status st = s->db->Write(wo, &batch);
  return st.ok() ? Status::Ok() : Internal(RocksError("retention of the log", st));
}

}  // namespace

Status StoreImpl::Retention(CommitTime now) {
  if (!progress.recoverable) return Status::Ok();
  const int64_t cutoff_us = now.micros() - options.retention_days * kMicrosPerDay;
  std::optional<PointRec> floor;
  {
    ReadContext ctx(this);
    floor = CommitAtOrBefore(&ctx, commits, cutoff_us, progress.recoverable->lsn, progress.max_skew_us);
  }
  if (!floor || (progress.floor && floor->lsn <= progress.floor->lsn)) return Status::Ok();

  // Publish the floor first: from now on no read asks for a point before it
  // (readers check it after taking their snapshot).
  progress.floor = floor;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status st = db->Put(wo, meta, kMetaProgress, progress.Encode());
  if (!st.ok()) return Internal(RocksError("writing the retention floor", st));
  Publish();

  ReadContext ctx(this);
  ChunkedWriter w(db.get());
  uint64_t deleted = 0;
  TV_RETURN_IF_ERROR(FoldVersions(this, &ctx, floor->lsn, &w, &deleted));
  TV_RETURN_IF_ERROR(FoldTimelines(this, &ctx, floor->lsn, &w));
  TV_RETURN_IF_ERROR(DropTruncates(this, &ctx, floor->lsn, &w));
  TV_RETURN_IF_ERROR(ctx.status());
  TV_RETURN_IF_ERROR(w.Flush());
  TV_RETURN_IF_ERROR(DropCommits(this, &ctx, *floor, cutoff_us, &w));
  TV_RETURN_IF_ERROR(w.Flush());
  TV_RETURN_IF_ERROR(DropLog(this, &ctx, floor->lsn));
  spdlog::info("store: retention to {}: {} versions deleted", DescribePoint(*floor), deleted);
  return Status::Ok();
}

Status StoreImpl::Shred(const TenantId& tenant) {
  const std::string begin = TenantPrefix(tenant.str());
  const std::string end = PrefixSuccessor(begin);
  rocksdb::WriteBatch batch;
  batch.Delete(keys, TenantKeyKey(tenant.str()));
  batch.DeleteRange(versions, begin, end);
  batch.DeleteRange(current, begin, end);
  batch.DeleteRange(log, begin, end);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status st = db->Write(wo, &batch);
  if (!st.ok()) return Internal(RocksError("shredding tenant " + tenant.str(), st));
  keyring->Forget(tenant.str());
  // Rewrite the files that held the wrapped key and the data, so no live file
  // keeps them (backups made before stay readable with the master key).
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : {keys, versions, current, log}) {
    rocksdb::Slice b(begin), e(end);
    st = db->CompactRange(co, cf, &b, &e);
    if (!st.ok()) return Internal(RocksError("compacting after shredding", st));
  }
  spdlog::info("store: tenant {} shredded", tenant.str());
  return Status::Ok();
}

}  // namespace timevault::store
