// Row events of a batch (c/u/r/d): versions, TOAST resolution and the rows'
// timelines across tenants (docs/store.md, "Tenants" and "TOAST").
#include <spdlog/spdlog.h>

#include "engine/ingest.h"
#include "engine/json_fields.h"

namespace timevault::store::engine {
namespace {

bool IsRowOp(char op) { return op == 'c' || op == 'u' || op == 'r' || op == 'd'; }

// Envelopes of a tenant move: the new tenant sees a create (no before: the
// old image is the other tenant's), the old tenant a delete.
void SplitMoveEnvelope(std::string_view envelope, std::string* for_new, std::string* for_old) {
  *for_new = envelope;
  *for_old = envelope;
  auto members = SplitObject(envelope);
  if (!members) return;
  auto edit = [&](std::string_view nulled, std::string_view op) {
    auto m = *members;
    if (auto* v = FindMember(&m, nulled)) *v = "null";
    if (auto* v = FindMember(&m, "op")) *v = JsonQuote(op);
    return JoinObject(m);
  };
  *for_new = edit("before", "c");
  *for_old = edit("after", "d");
}

}  // namespace

Status Ingest::Change(const IngestItem& item, const StoreEvent& ev) {
  if (!IsRowOp(ev.op)) return DeadLetter(item.position, std::string("unknown op '") + ev.op + "'", item.raw);
  // A table without a primary key has a null key: each row image is its own key.
  const std::string pk = ev.pk.empty() ? ev.row : ev.pk;
  if (ev.table.empty() || !FitsT(ev.table) || !FitsT(pk) || !FitsT(ev.tenant) || !FitsT(ev.previous_pk)) {
    return DeadLetter(item.position, "table, key or tenant empty or longer than 65535 bytes", item.raw);
  }
  // Rows without the tenant column belong to the store-wide "" tenant. A
  // delete without its tenant is counted there too (a key that does not
  // depend on what has arrived so far) and filed under the row's owner.
  const std::string tenant = ev.tenant_known ? ev.tenant : "";
  const bool tenantless_delete = ev.op == 'd' && !ev.tenant_known;
  const uint64_t lsn = ev.change_lsn.value();
  TV_ASSIGN_OR_RETURN(TxRef tx, Resolve(ev, !ev.snapshot));
  // Its END has not been applied: wait for it in the next batch rather
  // than go through `pending` (Store::ApplyStart).
  if (tx.mode == TxRef::kPending && HoldBack(item)) return Status::Ok();
  const EntryId main{tenant, ev.table, pk, lsn};
  TV_ASSIGN_OR_RETURN(bool dup, IsDuplicate(tx, main));
  if (dup) {
    ++s_->counters.duplicates;
    return Status::Ok();
  }

  // The tenant owning the row just before this event, if this event ends its
  // ownership (a delete, or a version under another tenant: a move).
  TV_ASSIGN_OR_RETURN(Neighbours around, TimelineNeighbours(ev.table, pk, lsn, tx));
  std::optional<std::string> ended;
  if (around.before && (around.before->flags & kRtVersion) && (tenantless_delete || around.before->tenant != tenant)) {
    ended = around.before->tenant;
  }
  const bool moved = ended && ev.op != 'd';

  std::string_view row = ev.row;
  std::string_view envelope = ev.envelope;
  std::string resolved_row, resolved_envelope;  // with unchanged TOAST values filled in
  bool incomplete = false;
  if (!ev.unavailable_columns.empty()) {
    resolved_row = ev.row;
    resolved_envelope = ev.envelope;
    TV_RETURN_IF_ERROR(ResolveToast(ev, moved ? *ended : tenant, pk, &resolved_row, &resolved_envelope, &incomplete));
    row = resolved_row;
    envelope = resolved_envelope;
  }
  if (ev.op == 'd') {
    auto& recent = s_->recent_deletes;
    recent.push_back({ev.table, lsn, ended.value_or(tenant), pk});
    if (recent.size() > kRecentDeletes) recent.pop_front();
  }

  const bool direct = tx.mode == TxRef::kDirect;
  if (ev.snapshot && direct && !s_->progress.first_point) {
    auto& snap = s_->snapshot_before_first_point;
    if (!snap || lsn > snap->lsn) snap = PointRec{lsn, ev.commit_time.micros()};
  }
  uint8_t flags = ev.op == 'd' ? kVersionDelete : kVersionRow;
  if (direct) flags |= kVersionSnapshot;
  if (incomplete && ev.op != 'd') flags |= kVersionIncomplete;
  if (!tenantless_delete) TV_RETURN_IF_ERROR(PutVersion(tenant, ev.table, pk, lsn, flags, tx.xid, row));
  if (ended) TV_RETURN_IF_ERROR(MarkDeleted(*ended, ev.table, pk, lsn, direct, tx.xid));
  if (ev.keyless && ev.op == 'u' && !ev.previous_pk.empty() && ev.previous_pk != pk) {
    // A keyless row's "key" is its image: the update replaces the old one.
    TV_RETURN_IF_ERROR(MarkDeleted(tenant, ev.table, ev.previous_pk, lsn, direct, tx.xid));
    TV_RETURN_IF_ERROR(PutTimeline(ev.table, ev.previous_pk, lsn,
                                   EncodeRowTenant(kRtDelete | (direct ? kRtDirect : 0), tx.xid, tenant)));
  }
  // A later event of another owner arrived first: this version ends there.
  if (ev.op != 'd' && around.after) TV_RETURN_IF_ERROR(EndBefore(tenant, ev.table, pk, *around.after));

  uint8_t rt_flags = ev.op != 'd' ? kRtVersion : (tenantless_delete ? kRtTenantless : kRtDelete);
  if (direct) rt_flags |= kRtDirect;
  TV_RETURN_IF_ERROR(PutTimeline(ev.table, pk, lsn,
                                 EncodeRowTenant(rt_flags, tx.xid, tenantless_delete ? ended.value_or("") : tenant)));

  std::vector<HistoryEntry> entries;
  std::string for_new, for_old;
  // The row image just written as `main`'s version (a c/u/r event).
  const std::string_view version_row = (ev.op != 'd' && !tenantless_delete) ? row : std::string_view();
  if (moved) {
    SplitMoveEnvelope(envelope, &for_new, &for_old);
    entries.push_back({main, 'c', for_new, 1, version_row});
    entries.push_back({EntryId{*ended, ev.table, pk, lsn}, 'd', for_old, 0});
  } else {
    if (ended) entries.push_back({EntryId{*ended, ev.table, pk, lsn}, 'd', envelope, 0});
    entries.push_back({main, ev.op, envelope, 1, version_row});
  }
  TV_RETURN_IF_ERROR(WriteHistory(tx, entries, ev.commit_time));
  ++s_->counters.events_stored;
  return Status::Ok();
}

// TOAST (invariant 5): unchanged columns take the previous version's value,
// in the row and in the envelope's before and after.
Status Ingest::ResolveToast(const StoreEvent& ev, const std::string& owner, const std::string& pk, std::string* row,
                            std::string* envelope, bool* incomplete) {
  TV_ASSIGN_OR_RETURN(auto prev, PreviousRow(owner, ev, pk));
  if (!prev && ev.op == 'c') {
    TV_ASSIGN_OR_RETURN(prev, OldKeyRow(owner, ev));
  }
  std::vector<std::string> unresolved;
  // Never a guess: a column without a known value keeps the placeholder in
  // the stored row, which is flagged incomplete (StateAt refuses it; item 6
  // of issue #18: replay wrote NULL where the column had been dropped).
  *row = ResolveColumns(*row, prev, ev.unavailable_columns, &unresolved, /*keep_unresolved=*/true);
  if (auto members = SplitObject(*envelope)) {
    std::vector<std::string> ignored;
    for (const char* field : {"before", "after"}) {
      std::string* v = FindMember(&*members, field);
      if (v != nullptr && !v->empty() && (*v)[0] == '{')
        *v = ResolveColumns(*v, prev, ev.unavailable_columns, &ignored);
    }
    *envelope = JoinObject(*members);
  }
  if (!unresolved.empty()) {
    *incomplete = true;
    ++s_->counters.toast_unresolved;
    std::string names;
    for (const auto& c : unresolved) names += (names.empty() ? "" : ", ") + c;
    spdlog::error(
        "store: {} {} at {}: unchanged TOAST column(s) {} without an earlier value in the store; the row version is "
        "stored incomplete and reads of it are refused until a later image of the row sets them",
        ev.table, pk, ev.change_lsn.ToString(), names);
  }
  return Status::Ok();
}

// The row's timeline entries just before and just after `lsn`: in the
// database (batches landed before the previous one; entries sort newest
// first and a row's events mostly arrive in order, so one seek to the row's
// newest entry usually finds `before` at once; a few newer entries
// (out-of-order arrival) are stepped over, beyond that two seeks find both),
// then in this batch and the one before (Layer::timelines).
Result<Neighbours> Ingest::RowNeighbours(const std::string& table, const std::string& pk, uint64_t lsn) {
  constexpr int kMaxSteps = 8;
  Neighbours n;
  const std::string prefix = RowTenantPrefix(table, pk);
  if (!timeline_it_) {
    rocksdb::ReadOptions row_only;  // the row's prefix bloom filters skip what cannot hold it
    row_only.prefix_same_as_start = true;
    timeline_it_.reset(s_->db->NewIterator(row_only, s_->rowtenant));
  }
  rocksdb::Iterator* it = timeline_it_.get();
  it->Seek(prefix);
  for (int steps = 0; it->Valid() && it->key().starts_with(prefix); it->Next(), ++steps) {
    if (steps == kMaxSteps) {
      TV_ASSIGN_OR_RETURN(n, RowNeighboursBySeek(table, pk, lsn));
      break;
    }
    auto e = ParseRowTenant(it->key().ToStringView(), prefix.size(), it->value().ToStringView());
    if (!e) return Corruption("rowtenant entry is damaged");
    if (e->change_lsn < lsn) {
      n.before = std::move(e);
      break;
    }
    if (e->change_lsn > lsn) n.after = std::move(e);  // the last one seen is the oldest newer entry
  }
  if (!it->status().ok()) return Internal(RocksError("reading the row timeline", it->status()));
  for (StoreImpl::Layer* l : {previous_, layer_}) {  // a later layer's entry replaces an earlier one's
    if (l == nullptr) continue;
    TV_RETURN_IF_ERROR(l->timelines.ForEach(l->Data(), prefix, [&](const StoreImpl::RowEntries::Entry& entry) {
      const uint64_t at = entry.lsn;
      const bool is_before = at < lsn && (!n.before || at >= n.before->change_lsn);
      const bool is_after = at > lsn && (!n.after || at <= n.after->change_lsn);
      if (!is_before && !is_after) return Status::Ok();
      auto e = ParseRowTenant(RowTenantKey(table, pk, at), prefix.size(), l->Value(entry));
      if (!e) return Corruption("rowtenant entry is damaged");
      (is_before ? n.before : n.after) = std::move(e);
      return Status::Ok();
    }));
  }
  return n;
}

// The row's timeline entries around an event in the order its changes took
// effect: by change LSN, except that a snapshot version at S comes before
// the entries below S of the transaction that was in flight when the
// snapshot was taken (it holds the row's lock from its first change, below
// S, until its commit, above S; the snapshot shows the row as it was before
// that transaction). Every change streamed by the slot that took the
// snapshot commits after S, so a change whose END is not applied yet counts
// as in flight. Without this a delete without tenant (or a move) by that
// transaction would not end the snapshot owner's row.
Result<Neighbours> Ingest::TimelineNeighbours(const std::string& table, const std::string& pk, uint64_t lsn,
                                              const TxRef& tx) {
  TV_ASSIGN_OR_RETURN(Neighbours n, RowNeighbours(table, pk, lsn));
  if (tx.mode == TxRef::kDirect) {
    // A snapshot version: the in-flight transaction's entries just below
    // it follow it; what comes before them precedes it.
    if (!n.before || (n.before->flags & kRtDirect)) return n;
    TV_ASSIGN_OR_RETURN(bool in_flight, InFlightAt(*n.before, lsn));
    if (!in_flight) return n;
    RowTenantEntry first = *n.before;
    for (;;) {
      TV_ASSIGN_OR_RETURN(Neighbours below, RowNeighbours(table, pk, first.change_lsn));
      if (!below.before || (below.before->flags & kRtDirect) || below.before->xid != first.xid) {
        n.before = std::move(below.before);
        n.after = std::move(first);
        return n;
      }
      first = std::move(*below.before);
    }
  }
  // A streamed change just above a snapshot version: the in-flight
  // transaction's last entry below the snapshot precedes it.
  if (n.before && (n.before->flags & kRtDirect)) {
    const uint64_t snapshot = n.before->change_lsn;
    TV_ASSIGN_OR_RETURN(Neighbours below, RowNeighbours(table, pk, snapshot));
    if (below.before && !(below.before->flags & kRtDirect)) {
      TV_ASSIGN_OR_RETURN(bool in_flight, InFlightAt(*below.before, snapshot));
      if (in_flight) n.before = std::move(below.before);
    }
  }
  // A streamed change with a later entry: past this transaction's own later
  // entries, is there a snapshot version it was in flight at?
  if (!n.after) return n;
  std::optional<RowTenantEntry> own_next;
  RowTenantEntry next = *n.after;
  while (!(next.flags & kRtDirect) && next.xid == tx.xid) {
    if (!own_next) own_next = next;
    TV_ASSIGN_OR_RETURN(Neighbours above, RowNeighbours(table, pk, next.change_lsn));
    if (!above.after) return n;
    next = std::move(*above.after);
  }
  if (!(next.flags & kRtDirect)) return n;
  const uint64_t snapshot = next.change_lsn;
  if (tx.mode == TxRef::kKnown && tx.commit <= snapshot) return n;  // committed before the snapshot
  if (own_next) {
    n.after = std::move(own_next);
  } else {
    TV_ASSIGN_OR_RETURN(Neighbours above, RowNeighbours(table, pk, snapshot));
    n.after = std::move(above.after);
  }
  if (!n.before || (n.before->flags & kRtDirect) || n.before->xid != tx.xid) n.before = std::move(next);
  return n;
}

// Whether the streamed timeline entry `e` (change LSN below `snapshot`) was
// in flight at the snapshot: its transaction commits after it, or its END is
// not applied yet. Entries at or below the retention floor were committed
// long before (their transactions' entries are gone).
Result<bool> Ingest::InFlightAt(const RowTenantEntry& e, uint64_t snapshot) {
  if (s_->progress.floor && e.change_lsn <= s_->progress.floor->lsn) return false;
  TV_ASSIGN_OR_RETURN(auto commit, FindCommit(e.xid, e.change_lsn));
  return !commit || *commit > snapshot;
}

Result<Neighbours> Ingest::RowNeighboursBySeek(const std::string& table, const std::string& pk, uint64_t lsn) {
  Neighbours n;
  const std::string prefix = RowTenantPrefix(table, pk);
  rocksdb::Iterator* it = timeline_it_.get();
  it->Seek(RowTenantKey(table, pk, lsn));
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto e = ParseRowTenant(it->key().ToStringView(), prefix.size(), it->value().ToStringView());
    if (!e) return Corruption("rowtenant entry is damaged");
    if (e->change_lsn < lsn) {
      n.before = std::move(e);
      break;
    }
  }
  if (lsn != ~uint64_t{0}) {
    it->SeekForPrev(RowTenantKey(table, pk, lsn + 1));
    if (it->Valid() && it->key().starts_with(prefix)) {
      auto e = ParseRowTenant(it->key().ToStringView(), prefix.size(), it->value().ToStringView());
      if (!e) return Corruption("rowtenant entry is damaged");
      if (e->change_lsn > lsn) n.after = std::move(e);
    }
  }
  if (!it->status().ok()) return Internal(RocksError("reading the row timeline", it->status()));
  return n;
}

Status Ingest::PutTimeline(const std::string& table, const std::string& pk, uint64_t lsn, std::string_view value) {
  const std::string key = RowTenantKey(table, pk, lsn);
  TV_ASSIGN_OR_RETURN(const Kept kept, PutKept(s_->rowtenant, key, lsn, value));
  layer_->timelines.Put(layer_->Data(), std::string_view(key).substr(0, key.size() - 8), kept.key_offset, kept.entry);
  return Status::Ok();
}

// A delete marker under `tenant` at another event's LSN (same transaction).
// Harmless where the tenant has no live row: at an event that is not the
// tenant's own, the tenant cannot own the row.
Status Ingest::MarkDeleted(const std::string& tenant, const std::string& table, const std::string& pk, uint64_t lsn,
                           bool direct, uint64_t xid) {
  TV_ASSIGN_OR_RETURN(bool exists, VersionExists(RowPrefix(tenant, table, pk), lsn));
  if (exists) return Status::Ok();
  return PutVersion(tenant, table, pk, lsn, kVersionDelete | (direct ? kVersionSnapshot : 0), xid, "{}");
}

// A version of `tenant` arrived after `next`, the row's next event: unless
// `next` is the same tenant's, the row stops being the tenant's there.
Status Ingest::EndBefore(const std::string& tenant, const std::string& table, const std::string& pk,
                         const RowTenantEntry& next) {
  if ((next.flags & (kRtVersion | kRtDelete)) && next.tenant == tenant) return Status::Ok();
  const bool direct = next.flags & kRtDirect;
  TV_RETURN_IF_ERROR(MarkDeleted(tenant, table, pk, next.change_lsn, direct, next.xid));
  TxRef tx;
  tx.xid = next.xid;
  tx.commit = next.change_lsn;
  if (!direct) {
    TV_ASSIGN_OR_RETURN(auto commit, FindCommit(next.xid, next.change_lsn));
    tx.mode = commit ? TxRef::kKnown : TxRef::kPending;
    if (commit) tx.commit = *commit;
  }
  const EntryId id{tenant, table, pk, next.change_lsn};
  TV_ASSIGN_OR_RETURN(bool present, IsDuplicate(tx, id));
  if (present) return Status::Ok();
  TV_ASSIGN_OR_RETURN(const std::string envelope, EndEnvelope(table, pk, next, tx));
  return WriteHistory(tx, {{id, 'd', envelope, 0}}, CommitTime());
}

// The envelope of the 'd' that ends a tenant's row at `next`, an event that
// arrived before the tenant's last version: what the tenant would have got
// had the events come in order (Change): `next`'s own history entry (a
// delete without tenant: in the "" history), as a delete of the tenant's
// row where it is a version of another tenant (a move: after null, op d).
// That entry is in this batch, the one before or the database, in `log` or
// `pending` as `tx` says. Where it is not there (its tenant shredded, or
// retention folded it), an envelope without source.
Result<std::string> Ingest::EndEnvelope(const std::string& table, const std::string& pk, const RowTenantEntry& next,
                                        const TxRef& tx) {
  std::string envelope = "{\"before\":null,\"after\":null,\"op\":\"d\"}";
  const std::string owner = (next.flags & kRtTenantless) ? std::string() : next.tenant;
  const EntryId own{owner, table, pk, next.change_lsn};
  std::string key;
  std::optional<std::string> value;
  size_t header = 0;  // bytes before the ciphertext
  size_t op_at = 0;   // where the op byte is
  if (tx.mode == TxRef::kPending) {
    key = PendingKey(tx.xid, own);
    TV_ASSIGN_OR_RETURN(value, Get(s_->pending, key));
    header = 1 + 1 + 8;  // weight, op, commit time
    op_at = 1;
  } else {
    key = LogKey(tx.commit, own);
    TV_ASSIGN_OR_RETURN(value, LogValue(owner, key));
    header = 1;  // op
  }
  if (!value || value->size() < header) return envelope;
  TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(owner, false));
  const std::string_view ciphertext = std::string_view(*value).substr(header);
  if (dk == nullptr || !dk->Opens(ciphertext)) return envelope;  // shredded (and back with a new key)
  std::string packed, plain;
  TV_RETURN_IF_ERROR(dk->Decrypt(ciphertext, key, &packed).WithContext("history entry"));
  TV_RETURN_IF_ERROR(EntryEnvelope(own, static_cast<uint8_t>((*value)[op_at]), packed, &plain));
  if (!(next.flags & kRtVersion)) return plain;  // a delete: the tenant's row ends with it
  std::string for_new;
  SplitMoveEnvelope(plain, &for_new, &envelope);
  return envelope;
}

Status Ingest::EntryEnvelope(const EntryId& id, uint8_t op, std::string_view plain, std::string* envelope) {
  if (!(op & kOpSpliced)) return s_->codec->Unpack(plain, envelope).WithContext("history entry");
  auto spliced = ParseSpliced(plain);
  if (!spliced) return Corruption("history entry is damaged");
  std::string rest;
  TV_RETURN_IF_ERROR(s_->codec->Unpack(spliced->rest, &rest).WithContext("history entry"));
  // The version: in this batch, the one before, or the database.
  const std::string prefix = RowPrefix(id.tenant, id.table, id.pk);
  std::optional<std::string> value;
  for (StoreImpl::Layer* l : {layer_, previous_}) {
    if (l == nullptr || value) continue;
    TV_RETURN_IF_ERROR(l->versions.ForEach(l->Data(), prefix, [&](const StoreImpl::RowEntries::Entry& e) {
      if (e.lsn == id.change_lsn) value = std::string(l->Value(e));
      return Status::Ok();
    }));
  }
  const std::string key = VersionKey(prefix, id.change_lsn);
  if (!value) {
    TV_ASSIGN_OR_RETURN(value, GetInDb(s_->versions, key));
  }
  auto v = value ? ParseVersionValue(*value) : std::nullopt;
  if (!v || !(v->flags & kVersionRow)) return Corruption("history entry without its version");
  TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(id.tenant, false));
  if (dk == nullptr) return Corruption("history entry of a shredded tenant");
  std::string packed, row;
  TV_RETURN_IF_ERROR(dk->Decrypt(v->ciphertext, key, &packed).WithContext("version of a history entry"));
  TV_RETURN_IF_ERROR(s_->codec->Unpack(packed, &row).WithContext("version of a history entry"));
  if (!Unsplice(rest, spliced->offset, row, envelope)) return Corruption("history entry is damaged");
  return Status::Ok();
}

// The row as it was just before `ev` (for TOAST): normally the next older
// version. A snapshot version sorts by its snapshot LSN, but a transaction in
// flight when the snapshot was taken can have older change LSNs and still be
// newer than the snapshot: such a version (commit after the snapshot LSN, or
// not known yet, which is the same for a streamed one) wins over it.
// Candidates: the newest version older than `ev` and the newest snapshot
// version newer than it, in the database (walked newest first) and in this
// batch and the one before (Layer::versions; a layer's entry replaces the
// database's of the same LSN).
Result<std::optional<std::string>> Ingest::PreviousRow(const std::string& tenant, const StoreEvent& ev,
                                                       const std::string& pk) {
  const std::string prefix = RowPrefix(tenant, ev.table, pk);
  const uint64_t lsn = ev.change_lsn.value();
  std::optional<Stored> snap, older;
  auto consider = [&](std::string_view key, std::string_view value, uint64_t at) -> Status {
    auto v = ParseVersionValue(value);
    if (!v) return Corruption("versions entry is damaged");
    if (at < lsn && (!older || at >= older->change_lsn)) {
      older = Stored{std::string(key), std::string(value), at, v->flags, v->xid};
    } else if (at > lsn && (v->flags & kVersionSnapshot) && (!snap || at >= snap->change_lsn)) {
      snap = Stored{std::string(key), std::string(value), at, v->flags, v->xid};
    }
    return Status::Ok();
  };
  rocksdb::Iterator* it = VersionsInDb();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto k = ParseVersionKey(it->key().ToStringView());
    if (!k) return Corruption("versions entry is damaged");
    if (k->change_lsn > lsn && snap) continue;  // only the newest snapshot version counts
    TV_RETURN_IF_ERROR(consider(it->key().ToStringView(), it->value().ToStringView(), k->change_lsn));
    if (older) break;
  }
  if (!it->status().ok()) return Internal(RocksError("reading versions", it->status()));
  for (StoreImpl::Layer* l : {previous_, layer_}) {
    if (l == nullptr) continue;
    TV_RETURN_IF_ERROR(l->versions.ForEach(l->Data(), prefix, [&](const StoreImpl::RowEntries::Entry& e) {
      return consider(VersionKey(prefix, e.lsn), l->Value(e), e.lsn);
    }));
  }
  std::optional<Stored>* chosen = older ? &older : &snap;
  if (older && snap) {
    chosen = &snap;
    if (!(older->flags & (kVersionSnapshot | kVersionSettled))) {
      TV_ASSIGN_OR_RETURN(auto c, FindCommit(older->xid, older->change_lsn));
      if (!c || *c > snap->change_lsn) chosen = &older;
    }
  }
  if (!*chosen || ((*chosen)->flags & kVersionDelete)) return std::optional<std::string>();
  TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(tenant, false));
  if (dk == nullptr) return std::optional<std::string>();
  auto v = ParseVersionValue((*chosen)->value);
  std::string packed, plain;
  TV_RETURN_IF_ERROR(dk->Decrypt(v->ciphertext, (*chosen)->key, &packed).WithContext("previous version"));
  TV_RETURN_IF_ERROR(s_->codec->Unpack(packed, &plain).WithContext("previous version"));
  return std::optional<std::string>(std::move(plain));
}

// A primary-key change is a delete of the old key and a create of the new
// one at the same LSN; the create's unchanged TOAST columns are the old row's.
Result<std::optional<std::string>> Ingest::OldKeyRow(const std::string& tenant, const StoreEvent& ev) {
  std::string old_tenant = tenant, old_pk = ev.old_pk;
  if (old_pk.empty()) {
    for (auto it = s_->recent_deletes.rbegin(); it != s_->recent_deletes.rend(); ++it) {
      if (it->change_lsn == ev.change_lsn.value() && it->table == ev.table) {
        old_tenant = it->tenant;
        old_pk = it->pk;
        break;
      }
    }
  } else if (FitsT(old_pk)) {
    TV_ASSIGN_OR_RETURN(Neighbours around, RowNeighbours(ev.table, old_pk, ev.change_lsn.value()));
    if (around.before && (around.before->flags & kRtVersion)) old_tenant = around.before->tenant;
  }
  if (old_pk.empty() || !FitsT(old_pk)) return std::optional<std::string>();
  return PreviousRow(old_tenant, ev, old_pk);
}

Status Ingest::PutVersion(const std::string& tenant, const std::string& table, const std::string& pk, uint64_t lsn,
                          uint8_t flags, uint64_t xid, std::string_view row) {
  TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(tenant, true));
  const std::string key = VersionKey(RowPrefix(tenant, table, pk), lsn);
  std::string enc;
  // Format 2: the row image packed with the envelope dictionary (it holds
  // the column names) before it is encrypted (engine/format.cc).
  // A packed form no smaller than the text (a tiny row: the frame's header)
  // is not kept.
  thread_local std::string packed;
  std::string_view plain = row;
  if (s_->options.write_format >= 2) {
    const std::string_view p = s_->codec->Pack(row, &packed);
    if (p.size() < row.size()) plain = p;
  }
  dk->Encrypt(plain, key, &enc);
  TV_ASSIGN_OR_RETURN(const Kept stored, PutKept(s_->versions, key, lsn, EncodeVersionValue(flags, xid, enc)));
  const std::string_view prefix = std::string_view(key).substr(0, key.size() - 8);
  layer_->versions.Put(layer_->Data(), prefix, stored.key_offset, stored.entry);
  layer_->version_tables.insert(TablePrefix(tenant, table));
  // `current` keeps the newest version by change LSN, whatever the arrival
  // order (RocksDB's bytewise max of `u64(lsn) value`). Within the batch
  // only the greatest operand per row is kept (RowEntries' newest), so a row
  // changed n times in a batch costs one merge, not n (written in Finish).
  return Status::Ok();
}

Result<std::vector<std::string>> Ingest::TenantsWithRows(const std::string& table) {
  std::vector<std::string> tenants;
  std::vector<std::string> all;
  rocksdb::Iterator* kit = Iter(s_->keys);
  for (kit->SeekToFirst(); kit->Valid(); kit->Next()) {
    Reader r(kit->key().ToStringView());
    std::string_view tenant;
    if (kit->key().empty() || !r.T(&tenant) || !r.empty()) continue;  // the store's own key
    all.emplace_back(tenant);
  }
  rocksdb::Iterator* vit = VersionsInDb();
  for (auto& t : all) {
    const std::string prefix = TablePrefix(t, table);
    bool has = false;
    for (StoreImpl::Layer* l : {previous_, layer_}) has = has || (l != nullptr && l->version_tables.count(prefix) > 0);
    if (!has) {
      vit->Seek(prefix);
      has = vit->Valid() && vit->key().starts_with(prefix);
      if (!vit->status().ok()) return Internal(RocksError("reading versions", vit->status()));
    }
    if (has) tenants.push_back(std::move(t));
  }
  return tenants;
}

// In this batch, the one before, or the database.
Result<bool> Ingest::VersionExists(const std::string& row_prefix, uint64_t lsn) {
  for (StoreImpl::Layer* l : {layer_, previous_}) {
    if (l != nullptr && l->versions.Has(l->Data(), row_prefix, lsn)) return true;
  }
  return InDb(s_->versions, VersionKey(row_prefix, lsn));
}

// Batches landed before the previous one (which, with this one, is in
// Layer::versions).
rocksdb::Iterator* Ingest::VersionsInDb() {
  if (!versions_it_) versions_it_.reset(s_->db->NewIterator(base_ro_, s_->versions));
  return versions_it_.get();
}

}  // namespace timevault::store::engine
