// The StateReader side of Store: RecoverablePoint, ResolveTime, StateAt,
// History (docs/store.md, "Visibility" and "Resolving a time"). Every call
// reads one RocksDB snapshot, so it is consistent and safe while Apply or
// retention runs on another thread.
#include <algorithm>
#include <functional>

#include "engine/impl.h"
#include "engine/json_fields.h"
#include "engine/read_context.h"
#include "timevault/wire/contract.h"

namespace timevault::store {
namespace {

using namespace engine;

// The tenant's tables in key order (T(table) byte order).
Result<std::vector<std::string>> TenantTables(ReadContext* ctx, rocksdb::ColumnFamilyHandle* versions,
                                              const std::string& tenant) {
  std::vector<std::string> tables;
  std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(versions, false));
  const std::string prefix = TenantPrefix(tenant);
  it->Seek(prefix);
  while (it->Valid() && it->key().starts_with(prefix)) {
    auto k = ParseVersionKey(it->key().ToStringView());
    if (!k) return Corruption("versions key is damaged");
    tables.emplace_back(k->table);
    it->Seek(PrefixSuccessor(TablePrefix(tenant, k->table)));
  }
  if (!it->status().ok()) return Internal(RocksError("listing tables", it->status()));
  return tables;
}

std::vector<std::string> SortedTables(std::vector<std::string> tables) {
  auto by_key = [](const std::string& a, const std::string& b) { return TenantPrefix(a) < TenantPrefix(b); };
  std::sort(tables.begin(), tables.end(), by_key);
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
  return tables;
}

// The row's version visible at `point`, given its newest version (from
// `current`): that one itself when it is a streamed or settled version
// committed by `point` — exactly what the walk in `versions` would choose
// first — else the walk (a row changed after `point`, or whose newest version
// is a snapshot version, which may yield to an older in-flight transaction).
std::optional<Candidate> VisibleVersion(StoreImpl* s, ReadContext* ctx, std::unique_ptr<rocksdb::Iterator>* versions,
                                        std::string_view row_prefix, const CurrentValue& newest, uint64_t point) {
  auto v = ParseVersionValue(newest.version_value);
  if (newest.change_lsn <= point && v && !(v->flags & kVersionSnapshot)) {
    bool committed = (v->flags & kVersionSettled) != 0;
    if (!committed) {
      auto commit = ctx->CommitOf(v->xid, newest.change_lsn);
      committed = commit && *commit <= point;
    }
    if (committed) {
      return Candidate{VersionKey(row_prefix, newest.change_lsn), std::string(newest.version_value), newest.change_lsn};
    }
  }
  if (!*versions) versions->reset(ctx->NewIterator(s->versions, true));
  (*versions)->Seek(VersionKey(row_prefix, point));
  s->read_seeks.fetch_add(1, std::memory_order_relaxed);
  return ctx->Choose(versions->get(), row_prefix, point);
}

// A row version whose unchanged TOAST columns had no earlier value in the
// store (flagged kVersionIncomplete; they hold the placeholder): refused,
// never served with the column missing (which replay wrote as NULL).
Status IncompleteRow(const std::string& table, std::string_view pk, const std::string& json, Lsn point) {
  std::string columns;
  const std::string placeholder = JsonQuote(wire::kUnavailableValue);
  if (auto members = SplitObject(json)) {
    for (const auto& m : *members) {
      if (m.value == placeholder) columns += (columns.empty() ? "" : ", ") + m.key;
    }
  }
  return FailedPrecondition("row " + std::string(pk) + " of " + table + " at " + point.ToString() +
                            ": the value of column(s) " + columns +
                            " is unknown (an unchanged TOAST value with no earlier version in the store: the table "
                            "was added to the publication after its snapshot, or the snapshot was skipped); choose a "
                            "point after the row's next update that sets them");
}

// Calls `visit` with the version of each of the tenant's rows live at
// `point` in `tables` (key order), until it returns false. A scan of
// `current` (one entry per row) plus a seek into `versions` for the rows
// changed after `point`: the cost follows the rows, not the history
// (docs/store.md, "Visibility").
Status VisitLiveRows(StoreImpl* s, ReadContext* ctx, const std::string& tenant, uint64_t point,
                     const std::vector<std::string>& tables,
                     const std::function<bool(const std::string& table, const Candidate& chosen)>& visit) {
  for (const auto& table : tables) {
    const uint64_t truncated = ctx->VisibleTruncate(table, point);
    const std::string table_prefix = TablePrefix(tenant, table);
    std::unique_ptr<rocksdb::Iterator> it(ctx->NewIterator(s->current, true));
    std::unique_ptr<rocksdb::Iterator> versions;  // opened for the first row that needs it
    it->Seek(table_prefix);
    s->read_seeks.fetch_add(1, std::memory_order_relaxed);
    for (; it->Valid() && it->key().starts_with(table_prefix); it->Next()) {
      s->read_steps.fetch_add(1, std::memory_order_relaxed);
      auto newest = ParseCurrent(it->value().ToStringView());
      if (!newest) return Corruption("current entry is damaged");
      auto chosen = VisibleVersion(s, ctx, &versions, it->key().ToStringView(), *newest, point);
      if (!chosen || chosen->change_lsn < truncated) continue;
      auto v = ParseVersionValue(chosen->value);
      if (v && (v->flags & kVersionRow) && !visit(table, *chosen)) return Status::Ok();
    }
    if (!it->status().ok()) return Internal(RocksError("reading current", it->status()));
    if (versions && !versions->status().ok()) return Internal(RocksError("reading versions", versions->status()));
  }
  return ctx->status();
}

}  // namespace

Status StoreImpl::CheckRecoverable(Lsn point, const ReadView& v, std::string_view what) const {
  if (!v.recoverable) {
    return OutOfRange(std::string(what) + " " + point.ToString() +
                      " is past the recoverable point: nothing is recoverable yet (the initial snapshot, or the "
                      "first heartbeat after it, is not stored)");
  }
  if (point.value() > v.recoverable->lsn) {
    return OutOfRange(std::string(what) + " " + point.ToString() + " is past the recoverable point " +
                      DescribePoint(*v.recoverable));
  }
  return Status::Ok();
}

Status StoreImpl::CheckFloor(Lsn point, const ReadView& v, std::string_view what) const {
  if (v.floor && point.value() < v.floor->lsn) {
    return OutOfRange(std::string(what) + " " + point.ToString() + " is before the retention window, which starts at " +
                      DescribePoint(*v.floor));
  }
  return Status::Ok();
}

Result<Point> Store::RecoverablePoint() {
  const ReadView v = impl_->View();
  if (!v.recoverable) {
    return NotFound("nothing is recoverable yet: the initial snapshot, or the first heartbeat after it, is not stored");
  }
  return Point{Lsn(v.recoverable->lsn), CommitTime(v.recoverable->time_us)};
}

// The newest commit (greatest LSN) whose commit time is <= t. Commit times
// step back now and then in LSN order; every step back seen is at most
// max_skew_us (plus 1 ms for times first known in milliseconds), so the
// answer lies within that distance before the latest commit time <= t.
Result<Point> Store::ResolveTime(CommitTime t) {
  const ReadView v = impl_->View();
  std::optional<PointRec> unused;
  TV_RETURN_IF_ERROR(AdjustForGaps(v.gaps, t, &unused));  // an open gap names why the point stands still
  if (!v.recoverable)
    return OutOfRange("time " + t.ToIso() + " is past the recoverable point: nothing is recoverable yet");
  if (t.micros() > v.recoverable->time_us) {
    return OutOfRange("time " + t.ToIso() + " is past the recoverable point " + DescribePoint(*v.recoverable));
  }
  ReadContext ctx(impl_.get());
  if (auto floor = impl_->View().floor; floor && t.micros() < floor->time_us) {
    return OutOfRange("time " + t.ToIso() + " is before the retention window, which starts at " +
                      DescribePoint(*floor));
  }
  std::unique_ptr<rocksdb::Iterator> it(ctx.NewIterator(impl_->commits, false));
  std::optional<PointRec> best;
  std::optional<int64_t> window_start;
  for (it->SeekForPrev(CommitKey(t.micros(), ~uint64_t{0})); it->Valid(); it->Prev()) {
    if (it->key().size() != 16) continue;
    const auto time = static_cast<int64_t>(DecodeU64(it->key().ToStringView()));
    const uint64_t lsn = DecodeU64(it->key().ToStringView().substr(8));
    if (window_start && time < *window_start) break;
    if (lsn > v.recoverable->lsn) continue;
    if (!window_start) window_start = time - v.max_skew_us - 1000;
    if (!best || lsn > best->lsn) best = PointRec{lsn, time};
  }
  if (v.first_point && v.first_point->time_us <= t.micros() && (!best || v.first_point->lsn > best->lsn)) {
    best = v.first_point;
  }
  TV_RETURN_IF_ERROR(AdjustForGaps(v.gaps, t, &best));
  if (v.first_point && (!best || best->lsn < v.first_point->lsn)) {
    return OutOfRange("time " + t.ToIso() + " is before the store's coverage, which starts at " +
                      DescribePoint(*v.first_point) + " (its first full snapshot): the state before it is unknown");
  }
  if (!best) return NotFound("no commit at or before " + t.ToIso());
  return Point{Lsn(best->lsn), CommitTime(best->time_us)};
}

Status Store::StateAt(const TenantId& tenant, Lsn point, const std::vector<std::string>& tables,
                      const std::function<bool(const Row&)>& emit) {
  // The recoverable point is read before the snapshot (everything up to it is
  // in the snapshot), the retention floor after it (retention publishes its
  // floor before deleting anything).
  // A gap first: past the recoverable point because of an open gap, the gap
  // is the reason to name.
  TV_RETURN_IF_ERROR(impl_->CheckGap(point, impl_->View(), "point"));
  TV_RETURN_IF_ERROR(impl_->CheckRecoverable(point, impl_->View(), "point"));
  ReadContext ctx(impl_.get());
  TV_RETURN_IF_ERROR(impl_->CheckFloor(point, impl_->View(), "point"));
  TV_RETURN_IF_ERROR(impl_->CheckCoverage(point, {}, impl_->View()));  // the store's first point
  TV_ASSIGN_OR_RETURN(auto key, impl_->keyring->ForRead(tenant.str(), ctx.snapshot()));
  if (!key) return Status::Ok();  // never seen, or shredded
  std::vector<std::string> list = SortedTables(tables);
  if (tables.empty()) {
    TV_ASSIGN_OR_RETURN(list, TenantTables(&ctx, impl_->versions, tenant.str()));
  }
  TV_RETURN_IF_ERROR(impl_->CheckCoverage(point, list, impl_->View()));
  std::string packed, json;
  Status decrypted;
  TV_RETURN_IF_ERROR(VisitLiveRows(impl_.get(), &ctx, tenant.str(), point.value(), list,
                                   [&](const std::string& table, const Candidate& chosen) {
                                     auto v = ParseVersionValue(chosen.value);
                                     decrypted = key->Decrypt(v->ciphertext, chosen.key, &packed);
                                     if (decrypted.ok()) decrypted = impl_->codec->Unpack(packed, &json);
                                     if (!decrypted.ok()) {
                                       decrypted = decrypted.WithContext("row of " + table);
                                       return false;
                                     }
                                     auto parts = ParseVersionKey(chosen.key);
                                     if (v->flags & kVersionIncomplete) {
                                       decrypted = IncompleteRow(table, parts->pk, json, point);
                                       return false;
                                     }
                                     return emit(Row{table, std::string(parts->pk), json});
                                   }));
  return decrypted;
}

Result<std::vector<TenantId>> Store::Tenants(Lsn point) {
  // A gap first: past the recoverable point because of an open gap, the gap
  // is the reason to name.
  TV_RETURN_IF_ERROR(impl_->CheckGap(point, impl_->View(), "point"));
  TV_RETURN_IF_ERROR(impl_->CheckRecoverable(point, impl_->View(), "point"));
  ReadContext ctx(impl_.get());
  TV_RETURN_IF_ERROR(impl_->CheckFloor(point, impl_->View(), "point"));
  TV_RETURN_IF_ERROR(impl_->CheckCoverage(point, {}, impl_->View()));
  // Every tenant that has a data key (shredded ones have none), in id order.
  std::vector<std::string> candidates;
  std::unique_ptr<rocksdb::Iterator> it(ctx.NewIterator(impl_->keys, false));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Reader r(it->key().ToStringView());
    std::string_view tenant;
    if (it->key().empty() || !r.T(&tenant) || !r.empty()) continue;  // the store's own key
    candidates.emplace_back(tenant);
  }
  if (!it->status().ok()) return Internal(RocksError("listing tenants", it->status()));
  std::sort(candidates.begin(), candidates.end());
  std::vector<TenantId> live;
  for (const auto& tenant : candidates) {
    TV_ASSIGN_OR_RETURN(auto tables, TenantTables(&ctx, impl_->versions, tenant));
    bool any = false;
    TV_RETURN_IF_ERROR(VisitLiveRows(impl_.get(), &ctx, tenant, point.value(), tables,
                                     [&](const std::string&, const Candidate&) { return any = true, false; }));
    if (any) live.emplace_back(tenant);
  }
  return live;
}

Status Store::History(const TenantId& tenant, Lsn from, Lsn to, const std::optional<std::string>& table,
                      const std::optional<std::string>& pk, const std::function<bool(const HistoryEvent&)>& emit) {
  TV_RETURN_IF_ERROR(impl_->CheckGapRange(from, to, impl_->View()));
  TV_RETURN_IF_ERROR(impl_->CheckRecoverable(to, impl_->View(), "history end"));
  ReadContext ctx(impl_.get());
  TV_RETURN_IF_ERROR(impl_->CheckFloor(from, impl_->View(), "history start"));
  if (from >= to) return Status::Ok();
  TV_ASSIGN_OR_RETURN(auto key, impl_->keyring->ForRead(tenant.str(), ctx.snapshot()));
  if (!key) return Status::Ok();
  const std::string prefix = TenantPrefix(tenant.str());
  std::string start = prefix;
  PutU64(&start, from.value() + 1);
  std::unique_ptr<rocksdb::Iterator> it(ctx.NewIterator(impl_->log, true));
  std::string packed, plain, version, row;
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto k = ParseLogKey(it->key().ToStringView());
    if (!k || it->value().empty()) return Corruption("log entry is damaged");
    if (k->commit_lsn > to.value()) break;
    if ((table && k->table != *table) || (pk && k->pk != *pk)) continue;
    std::string_view value = it->value().ToStringView();
    const auto op = static_cast<uint8_t>(value[0]);
    TV_RETURN_IF_ERROR(key->Decrypt(value.substr(1), it->key().ToStringView(), &packed).WithContext("history"));
    if (op & kOpSpliced) {
      // Format 3: the row image is the version's under the same key and LSN.
      auto spliced = ParseSpliced(packed);
      if (!spliced) return Corruption("log entry is damaged");
      std::string rest;
      TV_RETURN_IF_ERROR(impl_->codec->Unpack(spliced->rest, &rest).WithContext("history"));
      const std::string vkey = VersionKey(RowPrefix(tenant.str(), k->table, k->pk), k->change_lsn);
      rocksdb::Status got = impl_->db->Get(ctx.read_options(), impl_->versions, vkey, &version);
      if (!got.ok() && !got.IsNotFound()) return Internal(RocksError("reading versions", got));
      auto v = got.ok() ? ParseVersionValue(version) : std::nullopt;
      if (!v || !(v->flags & kVersionRow)) {
        return Corruption("history entry at " + Lsn(k->change_lsn).ToString() + " without its version");
      }
      TV_RETURN_IF_ERROR(key->Decrypt(v->ciphertext, vkey, &packed).WithContext("history"));
      TV_RETURN_IF_ERROR(impl_->codec->Unpack(packed, &row).WithContext("history"));
      if (!Unsplice(rest, spliced->offset, row, &plain)) return Corruption("log entry is damaged");
    } else {
      TV_RETURN_IF_ERROR(impl_->codec->Unpack(packed, &plain).WithContext("history"));
    }
    HistoryEvent e{Lsn(k->commit_lsn),
                   Lsn(k->change_lsn),
                   std::string(k->table),
                   std::string(k->pk),
                   static_cast<char>(op & ~kOpSpliced),
                   std::move(plain)};
    if (!emit(e)) return Status::Ok();
  }
  if (!it->status().ok()) return Internal(RocksError("reading the log", it->status()));
  return Status::Ok();
}

}  // namespace timevault::store
