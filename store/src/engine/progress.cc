#include "engine/progress.h"

#include "engine/encoding.h"

namespace timevault::store::engine {
namespace {

constexpr uint8_t kProgressVersion = 1;

void PutPoint(std::string* out, const std::optional<PointRec>& p) {
  out->push_back(p ? 1 : 0);
  PutU64(out, p ? p->lsn : 0);
  PutU64(out, p ? static_cast<uint64_t>(p->time_us) : 0);
}

bool GetPoint(Reader* r, std::optional<PointRec>* p) {
  uint8_t has = 0;
  uint64_t lsn = 0, time = 0;
  if (!r->U8(&has) || !r->U64(&lsn) || !r->U64(&time)) return false;
  if (has) {
    *p = PointRec{lsn, static_cast<int64_t>(time)};
  } else {
    p->reset();
  }
  return true;
}

}  // namespace

std::string Progress::Encode() const {
  std::string s;
  s.push_back(static_cast<char>(kProgressVersion));
  PutPoint(&s, recoverable);
  PutPoint(&s, complete_through);
  s.push_back(base ? 1 : 0);
  PutPoint(&s, first_point);
  PutPoint(&s, floor);
  PutU64(&s, last_end_lsn);
  PutU64(&s, static_cast<uint64_t>(max_end_time_us));
  PutU64(&s, static_cast<uint64_t>(max_skew_us));
  return s;
}

std::optional<Progress> Progress::Decode(std::string_view s) {
  Reader r(s);
  Progress p;
  uint8_t version = 0, base = 0;
  uint64_t end_time = 0, skew = 0;
  if (!r.U8(&version) || version != kProgressVersion) return std::nullopt;
  if (!GetPoint(&r, &p.recoverable) || !GetPoint(&r, &p.complete_through) || !r.U8(&base) ||
      !GetPoint(&r, &p.first_point) || !GetPoint(&r, &p.floor) || !r.U64(&p.last_end_lsn) || !r.U64(&end_time) ||
      !r.U64(&skew) || !r.empty())
    return std::nullopt;
  p.base = base != 0;
  p.max_end_time_us = static_cast<int64_t>(end_time);
  p.max_skew_us = static_cast<int64_t>(skew);
  return p;
}

std::string InflightKey(uint64_t commit_lsn) {
  std::string k(kMetaInflightPrefix);
  PutU64(&k, commit_lsn);
  return k;
}

std::string EncodeInflight(const InFlightTxn& t) {
  std::string s;
  PutU64(&s, t.xid);
  return s;
}

std::optional<InFlightTxn> DecodeInflight(std::string_view v) {
  Reader r(v);
  InFlightTxn t;
  if (!r.U64(&t.xid) || !r.empty()) return std::nullopt;
  return t;
}

std::string HeartbeatKey(uint64_t lsn, int64_t kafka_offset) {
  std::string k(kMetaHeartbeatPrefix);
  PutU64(&k, lsn);
  PutU64(&k, static_cast<uint64_t>(kafka_offset));
  return k;
}

std::string EncodeHeartbeat(const PendingHeartbeat& h) {
  std::string s;
  PutU64(&s, h.lsn);
  PutU64(&s, static_cast<uint64_t>(h.time_us));
  PutU32(&s, static_cast<uint32_t>(h.offsets.size()));
  for (const auto& o : h.offsets) {
    PutT(&s, o.topic);
    PutU32(&s, static_cast<uint32_t>(o.partition));
    PutU64(&s, static_cast<uint64_t>(o.offset));
  }
  if (!h.image) return s;  // a plain heartbeat: the format before snapshot markers
  s.push_back(static_cast<char>((h.gap ? 1 : 0) | (h.all_tables ? 2 : 0)));
  PutT(&s, h.cause);
  PutU32(&s, static_cast<uint32_t>(h.tables.size()));
  for (const auto& t : h.tables) PutT(&s, t);
  return s;
}

std::optional<PendingHeartbeat> DecodeHeartbeat(std::string_view v) {
  Reader r(v);
  PendingHeartbeat h;
  uint64_t time = 0;
  uint32_t n = 0;
  if (!r.U64(&h.lsn) || !r.U64(&time) || !r.U32(&n)) return std::nullopt;
  h.time_us = static_cast<int64_t>(time);
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view topic;
    uint32_t partition = 0;
    uint64_t offset = 0;
    if (!r.T(&topic) || !r.U32(&partition) || !r.U64(&offset)) return std::nullopt;
    h.offsets.push_back({std::string(topic), static_cast<int32_t>(partition), static_cast<int64_t>(offset)});
  }
  if (r.empty()) return h;
  uint8_t gap = 0;
  std::string_view cause;
  if (!r.U8(&gap) || !r.T(&cause) || !r.U32(&n)) return std::nullopt;
  h.image = true;
  h.gap = (gap & 1) != 0;
  h.all_tables = (gap & 2) != 0;
  h.cause.assign(cause);
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view table;
    if (!r.T(&table)) return std::nullopt;
    h.tables.emplace_back(table);
  }
  if (!r.empty()) return std::nullopt;
  return h;
}

std::string EncodeGaps(const std::vector<GapRec>& gaps) {
  std::string s;
  PutU32(&s, static_cast<uint32_t>(gaps.size()));
  for (const auto& g : gaps) {
    PutU64(&s, g.id);
    PutU64(&s, g.from.lsn);
    PutU64(&s, static_cast<uint64_t>(g.from.time_us));
    PutU64(&s, g.to.lsn);
    PutU64(&s, static_cast<uint64_t>(g.to.time_us));
    PutU64(&s, static_cast<uint64_t>(g.recorded_us));
    PutT(&s, g.cause.substr(0, 60000));
  }
  return s;
}

std::string EncodeCoverage(const Coverage& c) {
  std::string s;
  s.push_back(c.others ? 1 : 0);
  PutU64(&s, c.others ? c.others->lsn : 0);
  PutU64(&s, c.others ? static_cast<uint64_t>(c.others->time_us) : 0);
  PutU32(&s, static_cast<uint32_t>(c.tables.size()));
  for (const auto& [table, p] : c.tables) {
    PutT(&s, table);
    PutU64(&s, p.lsn);
    PutU64(&s, static_cast<uint64_t>(p.time_us));
  }
  return s;
}

std::optional<Coverage> DecodeCoverage(std::string_view v) {
  Reader r(v);
  Coverage c;
  uint8_t has_others = 0;
  uint64_t lsn = 0, time = 0;
  uint32_t n = 0;
  if (!r.U8(&has_others) || !r.U64(&lsn) || !r.U64(&time) || !r.U32(&n)) return std::nullopt;
  if (has_others) c.others = PointRec{lsn, static_cast<int64_t>(time)};
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view table;
    if (!r.T(&table) || !r.U64(&lsn) || !r.U64(&time)) return std::nullopt;
    c.tables[std::string(table)] = PointRec{lsn, static_cast<int64_t>(time)};
  }
  if (!r.empty()) return std::nullopt;
  return c;
}

std::optional<std::vector<GapRec>> DecodeGaps(std::string_view v) {
  Reader r(v);
  uint32_t n = 0;
  if (!r.U32(&n)) return std::nullopt;
  std::vector<GapRec> gaps;
  for (uint32_t i = 0; i < n; ++i) {
    GapRec g;
    uint64_t from_time = 0, to_time = 0, recorded = 0;
    std::string_view cause;
    if (!r.U64(&g.id) || !r.U64(&g.from.lsn) || !r.U64(&from_time) || !r.U64(&g.to.lsn) || !r.U64(&to_time) ||
        !r.U64(&recorded) || !r.T(&cause))
      return std::nullopt;
    g.from.time_us = static_cast<int64_t>(from_time);
    g.to.time_us = static_cast<int64_t>(to_time);
    g.recorded_us = static_cast<int64_t>(recorded);
    g.cause.assign(cause);
    gaps.push_back(std::move(g));
  }
  if (!r.empty()) return std::nullopt;
  return gaps;
}

}  // namespace timevault::store::engine
