// MemoryStateReader: the StateReader contract over a vector, for replay's
// unit tests. Same orders as the RocksDB store: rows in (table, pk) order of
// their T() encodings, history in (commit, table, pk) order. Without
// SetRecoverable, the recoverable point is the newest commit Put.
#include <algorithm>
#include <map>
#include <set>

#include "engine/encoding.h"
#include "timevault/store/store.h"

namespace timevault::store {
namespace {

std::string RowOrderKey(const std::string& table, const std::string& pk) {
  std::string k;
  engine::PutT(&k, table);
  engine::PutT(&k, pk);
  return k;
}

std::string Envelope(const std::string* before, const std::string& after, char op) {
  std::string e = "{\"before\":";
  e += before != nullptr && !before->empty() ? *before : "null";
  e += ",\"after\":";
  e += after.empty() ? "null" : after;
  e += ",\"op\":\"";
  e += op;
  e += "\"}";
  return e;
}

}  // namespace

void MemoryStateReader::Put(const TenantId& tenant, Point commit, const std::string& table, const std::string& pk,
                            const std::string& json) {
  versions_.push_back(Version{tenant, commit, table, pk, json});
}

Result<Point> MemoryStateReader::RecoverablePoint() {
  if (recoverable_) return *recoverable_;
  if (versions_.empty()) return NotFound("nothing is recoverable yet");
  auto newest = std::max_element(versions_.begin(), versions_.end(),
                                 [](const Version& a, const Version& b) { return a.commit.lsn < b.commit.lsn; });
  return newest->commit;
}

Result<Point> MemoryStateReader::ResolveTime(CommitTime t) {
  TV_ASSIGN_OR_RETURN(Point r, RecoverablePoint());
  if (t > r.time) return OutOfRange("time " + t.ToIso() + " is past the recoverable point " + r.lsn.ToString());
  std::optional<Point> best;
  for (const auto& v : versions_) {
    if (v.commit.time <= t && v.commit.lsn <= r.lsn && (!best || v.commit.lsn > best->lsn)) best = v.commit;
  }
  if (!best) return NotFound("no commit at or before " + t.ToIso());
  return *best;
}

Status MemoryStateReader::StateAt(const TenantId& tenant, Lsn point, const std::vector<std::string>& tables,
                                  const std::function<bool(const Row&)>& emit) {
  TV_ASSIGN_OR_RETURN(Point r, RecoverablePoint());
  if (point > r.lsn) {
    return OutOfRange("point " + point.ToString() + " is past the recoverable point " + r.lsn.ToString());
  }
  std::map<std::string, const Version*> newest;  // by row order key
  for (const auto& v : versions_) {
    if (v.tenant != tenant || v.commit.lsn > point) continue;
    if (!tables.empty() && std::find(tables.begin(), tables.end(), v.table) == tables.end()) continue;
    auto& slot = newest[RowOrderKey(v.table, v.pk)];
    if (slot == nullptr || slot->commit.lsn <= v.commit.lsn) slot = &v;
  }
  for (const auto& [key, v] : newest) {
    if (v->json.empty()) continue;
    if (!emit(Row{v->table, v->pk, v->json})) break;
  }
  return Status::Ok();
}

Result<std::vector<TenantId>> MemoryStateReader::Tenants(Lsn point) {
  auto r = RecoverablePoint();
  if (!r.ok() || point > r->lsn) return OutOfRange("point " + point.ToString() + " is past the recoverable point");
  std::set<TenantId> ids;
  for (const auto& v : versions_) ids.insert(v.tenant);
  std::vector<TenantId> live;
  for (const auto& id : ids) {
    bool any = false;
    TV_RETURN_IF_ERROR(StateAt(id, point, {}, [&](const Row&) { return any = true, false; }));
    if (any) live.push_back(id);
  }
  return live;
}

Status MemoryStateReader::History(const TenantId& tenant, Lsn from, Lsn to, const std::optional<std::string>& table,
                                  const std::optional<std::string>& pk,
                                  const std::function<bool(const HistoryEvent&)>& emit) {
  TV_ASSIGN_OR_RETURN(Point r, RecoverablePoint());
  if (to > r.lsn) return OutOfRange("history end " + to.ToString() + " is past the recoverable point");
  std::vector<const Version*> rows;
  for (const auto& v : versions_) {
    if (v.tenant == tenant) rows.push_back(&v);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Version* a, const Version* b) {
    if (a->commit.lsn != b->commit.lsn) return a->commit.lsn < b->commit.lsn;
    return RowOrderKey(a->table, a->pk) < RowOrderKey(b->table, b->pk);
  });
  std::map<std::string, const std::string*> current;  // row -> its image so far
  for (const Version* v : rows) {
    auto& prev = current[RowOrderKey(v->table, v->pk)];
    const bool in_range =
        v->commit.lsn > from && v->commit.lsn <= to && (!table || *table == v->table) && (!pk || *pk == v->pk);
    const bool existed = prev != nullptr && !prev->empty();
    const char op = v->json.empty() ? 'd' : (existed ? 'u' : 'c');
    if (in_range && (existed || !v->json.empty())) {
      HistoryEvent e{v->commit.lsn, v->commit.lsn, v->table, v->pk, op, Envelope(prev, v->json, op)};
      if (!emit(e)) break;
    }
    prev = &v->json;
  }
  return Status::Ok();
}

}  // namespace timevault::store
