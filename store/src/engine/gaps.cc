// Gaps (invariant 10; docs/store.md, "Gaps"): the intervals of history the
// store cannot vouch for, the full snapshot that ends each one, the reads
// they refuse, and their acknowledgements.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "engine/impl.h"
#include "engine/ingest.h"
#include "timevault/core/file.h"

namespace timevault::store {
namespace {

constexpr std::string_view kAcksFile = "GAPS-ACKNOWLEDGED.json";

struct Ack {
  std::string by;
  int64_t at_us = 0;
};

// The acknowledgements file: {"acknowledged":[{"id":1,"by":"…","at_us":…}]}.
Result<std::map<uint64_t, Ack>> ReadAcks(const std::string& path) {
  std::map<uint64_t, Ack> acks;
  std::ifstream in(path);
  if (!in) return acks;  // none yet
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("acknowledged") || !doc["acknowledged"].IsArray()) {
    return Corruption(path + ": not a gap acknowledgements file");
  }
  for (const auto& a : doc["acknowledged"].GetArray()) {
    if (!a.IsObject() || !a.HasMember("id") || !a["id"].IsUint64() || !a.HasMember("by") || !a["by"].IsString() ||
        !a.HasMember("at_us") || !a["at_us"].IsInt64()) {
      return Corruption(path + ": a damaged acknowledgement");
    }
    acks[a["id"].GetUint64()] = Ack{a["by"].GetString(), a["at_us"].GetInt64()};
  }
  return acks;
}

std::string AcksJson(const std::map<uint64_t, Ack>& acks) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("acknowledged");
  w.StartArray();
  for (const auto& [id, a] : acks) {
    w.StartObject();
    w.Key("id");
    w.Uint64(id);
    w.Key("by");
    w.String(a.by.c_str(), static_cast<rapidjson::SizeType>(a.by.size()));
    w.Key("at_us");
    w.Int64(a.at_us);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Gap ToGap(const engine::GapRec& g) {
  Gap out;
  out.id = g.id;
  out.from = Point{Lsn(g.from.lsn), CommitTime(g.from.time_us)};
  out.to = Point{Lsn(g.to.lsn), CommitTime(g.to.time_us)};
  out.cause = g.cause;
  out.recorded_at = CommitTime(g.recorded_us);
  return out;
}

}  // namespace

std::string Gap::Describe() const {
  const std::string start =
      "gap #" + std::to_string(id) + " (" + cause + ") between " + from.lsn.ToString() + " (" + from.time.ToIso() + ")";
  if (to.lsn.value() == engine::kOpenGapLsn) return start + " and the next full snapshot";
  return start + " and " + to.lsn.ToString() + " (" + to.time.ToIso() + ")";
}

namespace engine {

// Kafka offsets that jump forward (a topic's retention deleted messages the
// store never read; a topic deleted and recreated): the events in between
// are unknown, and so is every state after the last point vouched for,
// until a full snapshot (a re-snapshot on a new slot) closes the gap. One
// open gap at a time: a second skip while one is open only adds its cause.
void AddOpenGap(std::vector<GapRec>* gaps, const std::optional<PointRec>& recoverable, const std::string& cause) {
  if (!gaps->empty() && gaps->back().to.lsn == kOpenGapLsn) {
    if (gaps->back().cause.size() < 4000) gaps->back().cause += "; " + cause;
    spdlog::error("store: GAP #{} (still open): {}", gaps->back().id, cause);
    return;
  }
  GapRec g;
  g.id = gaps->empty() ? 1 : gaps->back().id + 1;
  g.from = recoverable.value_or(PointRec{});
  g.to = PointRec{kOpenGapLsn, std::numeric_limits<int64_t>::max()};
  g.recorded_us = SystemClock().Now().micros();
  g.cause = cause;
  spdlog::error(
      "store: GAP #{}: {}. History after {} ({}) is unknown until a full snapshot: reads there are refused. Drop "
      "capture's replication slot to have it take one; acknowledge with `timevault gaps ack {}`",
      g.id, cause, Lsn(g.from.lsn).ToString(), CommitTime(g.from.time_us).ToIso(), g.id);
  gaps->push_back(std::move(g));
}

Status Ingest::SkippedOffsets(const KafkaPosition& pos, int64_t expected) {
  AddOpenGap(&s_->gaps, s_->progress.recoverable,
             "Kafka offsets skipped: " + pos.topic + "[" + std::to_string(pos.partition) + "] " +
                 std::to_string(expected) + ".." + std::to_string(pos.offset - 1) +
                 " were never read (the next message read was at " + std::to_string(pos.offset) +
                 "; deleted by the topic's retention before the store read them)");
  return Put(s_->meta, kMetaGaps, EncodeGaps(s_->gaps));
}

}  // namespace engine

Result<int64_t> Store::RecordSkippedOffsets(const std::string& topic, int32_t partition, int64_t stored, int64_t low,
                                            int64_t high) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  const std::string part = topic + "[" + std::to_string(partition) + "]";
  std::string cause = "Kafka offsets skipped: " + part + " ";
  if (stored < low) {
    cause +=
        std::to_string(stored) + ".." + std::to_string(low - 1) +
        " were never read (deleted by the topic's retention before the store read them; it holds " +
        (low < high ? std::to_string(low) + ".." + std::to_string(high - 1) : "none, next " + std::to_string(low)) +
        ")";
  } else {
    cause += "ends at " + std::to_string(high) + ", before the store's next offset " + std::to_string(stored) +
             " (the topic was deleted and recreated, or truncated: its offsets started over; what the old one held "
             "from " +
             std::to_string(stored) + " on was never read)";
  }
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->Drain());
  std::vector<engine::GapRec> gaps = impl_->gaps;
  engine::AddOpenGap(&gaps, impl_->progress.recoverable, cause);
  rocksdb::WriteBatch batch;
  std::string offset;
  engine::PutU64(&offset, static_cast<uint64_t>(low));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (!batch.Put(impl_->meta, engine::kMetaGaps, engine::EncodeGaps(gaps)).ok() ||
      !batch.Put(impl_->meta, engine::OffsetKey(topic, partition), offset).ok()) {
    return Internal("building the gap record");
  }
  // Heartbeats waiting for the partition's lost messages would wait forever
  // (after a recreated topic its offsets may never reach theirs) and hold
  // back every later one, the full snapshot's marker that closes this gap
  // too: they no longer wait for this partition.
  std::map<std::string, engine::PendingHeartbeat> heartbeats = impl_->heartbeats;
  for (auto& [key, h] : heartbeats) {
    const size_t before = h.offsets.size();
    std::erase_if(h.offsets, [&](const auto& o) { return o.partition == partition && o.topic == topic; });
    if (h.offsets.size() != before && !batch.Put(impl_->meta, key, engine::EncodeHeartbeat(h)).ok()) {
      return Internal("building the gap record");
    }
  }
  if (rocksdb::Status st = impl_->db->Write(wo, &batch); !st.ok()) {
    return Internal(RocksError("writing the gap record", st));
  }
  impl_->gaps = std::move(gaps);
  impl_->heartbeats = std::move(heartbeats);
  impl_->offsets[{topic, partition}] = low;
  impl_->Publish();
  return low;
}

std::string StoreImpl::GapAcksPath() const { return (std::filesystem::path(options.path) / kAcksFile).string(); }

Status StoreImpl::CheckGap(Lsn point, const ReadView& v, std::string_view what) const {
  for (const auto& g : v.gaps) {
    if (point.value() > g.from.lsn && point.value() < g.to.lsn) {
      return OutOfRange(std::string(what) + " " + point.ToString() + " is inside " + ToGap(g).Describe() +
                        ": the store cannot vouch for history there; choose a point at or before " +
                        Lsn(g.from.lsn).ToString() +
                        (g.to.lsn == engine::kOpenGapLsn ? std::string(" (or wait for a full snapshot)")
                                                         : " or at or after " + Lsn(g.to.lsn).ToString()));
    }
  }
  return Status::Ok();
}

Status StoreImpl::CheckCoverage(Lsn point, const std::vector<std::string>& tables, const ReadView& v) const {
  if (v.first_point && point.value() < v.first_point->lsn) {
    return OutOfRange("point " + point.ToString() + " is before the store's coverage, which starts at " +
                      DescribePoint(*v.first_point) + " (its first full snapshot): the state before it is unknown");
  }
  if (!v.coverage) return Status::Ok();  // no full snapshot marker met (a store written before coverage)
  for (const auto& table : tables) {
    auto it = v.coverage->tables.find(table);
    const std::optional<engine::PointRec> start = it != v.coverage->tables.end() ? it->second : v.coverage->others;
    if (!start) {
      return OutOfRange("table " + table +
                        " is not covered: it was added to the publication after the store's full snapshot, so its "
                        "rows that did not change since are unknown; no point of it is served until a full snapshot "
                        "on a new slot reads it");
    }
    if (point.value() < start->lsn) {
      return OutOfRange("point " + point.ToString() + " is before the coverage of table " + table +
                        ", which starts at " + DescribePoint(*start) +
                        " (its first full snapshot): its state before that is unknown");
    }
  }
  return Status::Ok();
}

Status StoreImpl::CheckGapRange(Lsn from, Lsn to, const ReadView& v) const {
  for (const auto& g : v.gaps) {
    if (from.value() < g.to.lsn && to.value() > g.from.lsn) {
      return OutOfRange("history from " + from.ToString() + " to " + to.ToString() + " reaches into " +
                        ToGap(g).Describe() + ": the changes there are unknown");
    }
  }
  return Status::Ok();
}

namespace engine {

// A time inside a gap has no known state; at or after a gap's end, the
// full snapshot that ended it is the newest point when no later commit is.
Status AdjustForGaps(const std::vector<GapRec>& gaps, CommitTime t, std::optional<PointRec>* best) {
  for (const auto& g : gaps) {
    if (t.micros() > g.from.time_us && t.micros() < g.to.time_us) {
      return OutOfRange("time " + t.ToIso() + " is inside " + ToGap(g).Describe() +
                        ": the store cannot vouch for history there; choose a time at or before " +
                        CommitTime(g.from.time_us).ToIso() +
                        (g.to.lsn == kOpenGapLsn ? std::string(" (or wait for a full snapshot)")
                                                 : " or at or after " + CommitTime(g.to.time_us).ToIso()));
    }
    if (t.micros() >= g.to.time_us && (!*best || (*best)->lsn < g.to.lsn)) *best = g.to;
  }
  return Status::Ok();
}

// A heartbeat closing a full snapshot on a new slot was met: every event
// before it is stored. Transactions still in flight below it will never
// complete (the new slot starts at the snapshot), so they are given up;
// rows of the snapshot's tables absent from it end at its LSN; and when the
// store vouched for history before, the interval in between is a gap.
Status Ingest::SnapshotImage(const PendingHeartbeat& h) {
  auto& p = s_->progress;
  size_t abandoned = 0;
  while (!s_->inflight.empty() && s_->inflight.begin()->first < h.lsn) {
    auto it = s_->inflight.begin();
    if (inflight_new_.erase(it->first) == 0) TV_RETURN_IF_ERROR(Delete(s_->meta, InflightKey(it->first)));
    for (auto [x, end] = s_->inflight_by_xid.equal_range(it->second.xid); x != end; ++x) {
      if (x->second == it->first) {
        s_->inflight_by_xid.erase(x);
        break;
      }
    }
    s_->inflight.erase(it);
    ++abandoned;
  }
  TV_ASSIGN_OR_RETURN(size_t ended, EndRowsAbsentFrom(h));
  // Coverage: each listed table's history starts at its first full snapshot.
  if (!s_->coverage) s_->coverage = Coverage{};
  for (const auto& t : h.tables) s_->coverage->tables.try_emplace(t, PointRec{h.lsn, h.time_us});
  if (h.all_tables && !s_->coverage->others) s_->coverage->others = PointRec{h.lsn, h.time_us};
  TV_RETURN_IF_ERROR(Put(s_->meta, kMetaCoverage, EncodeCoverage(*s_->coverage)));
  if (!s_->gaps.empty() && s_->gaps.back().open() && s_->gaps.back().from.lsn < h.lsn) {
    // Skipped Kafka offsets, a transaction that will never complete: the
    // snapshot ends what they left unknown.
    GapRec& g = s_->gaps.back();
    g.to = PointRec{h.lsn, h.time_us};
    g.cause += "; closed by a full snapshot (" + h.cause + ")";
    spdlog::warn("store: gap #{} closed by the full snapshot at {}: points from there on are exact", g.id,
                 Lsn(h.lsn).ToString());
    TV_RETURN_IF_ERROR(Put(s_->meta, kMetaGaps, EncodeGaps(s_->gaps)));
  } else if (p.recoverable && p.recoverable->lsn < h.lsn) {
    GapRec g;
    g.id = s_->gaps.empty() ? 1 : s_->gaps.back().id + 1;
    g.from = *p.recoverable;
    g.to = PointRec{h.lsn, h.time_us};
    g.recorded_us = SystemClock().Now().micros();
    g.cause =
        h.gap ? h.cause : "a new full snapshot (" + h.cause + ") after history up to " + Lsn(g.from.lsn).ToString();
    if (abandoned > 0) g.cause += "; " + std::to_string(abandoned) + " transaction(s) that will never complete";
    spdlog::error(
        "store: GAP #{}: history between {} ({}) and {} ({}) is unknown: {}. Reads there are refused; "
        "acknowledge with `timevault gaps ack {}`",
        g.id, Lsn(g.from.lsn).ToString(), CommitTime(g.from.time_us).ToIso(), Lsn(g.to.lsn).ToString(),
        CommitTime(g.to.time_us).ToIso(), g.cause, g.id);
    s_->gaps.push_back(std::move(g));
    TV_RETURN_IF_ERROR(Put(s_->meta, kMetaGaps, EncodeGaps(s_->gaps)));
  }
  spdlog::info("store: full snapshot at {} of {} table(s): {} row(s) absent from it ended there", Lsn(h.lsn).ToString(),
               h.tables.size(), ended);
  return Status::Ok();
}

bool Ingest::OffsetsPassed(const PendingHeartbeat& h) const {
  for (const auto& o : h.offsets) {
    auto it = s_->offsets.find({o.topic, o.partition});
    if (it == s_->offsets.end() || it->second <= o.offset) return false;
  }
  return true;
}

// Capture produced every event of every transaction committed up to a
// heartbeat before it, and the heartbeat lists the offsets they end at. Once
// the store has consumed past all of them, a transaction ended below the
// heartbeat that is still incomplete has lost an event for good: one was
// dead-lettered (or never produced). It is not known which row that event
// changed, so no point after the last one vouched for is exact: the gap
// stays open (every later point refused) until a full snapshot on a new
// slot ends it (SnapshotImage). The recoverable point stays where it is.
Result<bool> Ingest::DropStalled(const std::string& key, const PendingHeartbeat& h) {
  if (h.image || s_->inflight.empty() || s_->inflight.begin()->first > h.lsn || !OffsetsPassed(h)) return false;
  const auto& [commit, t] = *s_->inflight.begin();
  if (t.stored >= t.expected) return false;  // complete: PopComplete takes it
  const std::string which = "transaction " + std::to_string(t.xid) + " committed at " + Lsn(commit).ToString();
  // Once per transaction: every later heartbeat below it would name it again.
  if (s_->gaps.empty() || !s_->gaps.back().open() || s_->gaps.back().cause.find(which) == std::string::npos) {
    AddOpenGap(&s_->gaps, s_->progress.recoverable,
               which + " (" + CommitTime(t.commit_time_us).ToIso() +
                   ") will never complete: " + std::to_string(t.stored) + " of " + std::to_string(t.expected) +
                   " event(s) stored, every message up to heartbeat " + Lsn(h.lsn).ToString() + " consumed; " +
                   DeadLettersOf(t.xid));
    TV_RETURN_IF_ERROR(Put(s_->meta, kMetaGaps, EncodeGaps(s_->gaps)));
  }
  TV_RETURN_IF_ERROR(Delete(s_->meta, key));
  s_->heartbeats.erase(s_->heartbeats.begin());
  return true;
}

// The dead letters that took the transaction's events: those whose message
// names it (source.txId), else this run's latest ones that name no
// transaction (a message that is not JSON cannot say which it was).
std::string Ingest::DeadLettersOf(uint64_t xid) const {
  std::vector<const StoreImpl::RecentDeadLetter*> named, unnamed;
  for (const auto& d : s_->recent_dead_letters) {
    if (d.xid && static_cast<uint64_t>(*d.xid) == xid) named.push_back(&d);
    if (!d.xid) unnamed.push_back(&d);
  }
  const auto& list = named.empty() ? unnamed : named;
  if (list.empty()) return "no dead letter of this run names it (`timevault store dead-letters` lists them all)";
  std::string out = named.empty() ? "dead letter(s) that name no transaction: " : "dead letter(s) of it: ";
  size_t n = 0;
  for (auto it = list.rbegin(); it != list.rend() && n < 3; ++it, ++n) {
    const auto& d = **it;
    out += (n ? "; " : "") + d.position.topic + "[" + std::to_string(d.position.partition) + "]@" +
           std::to_string(d.position.offset) + ": " + d.reason;
  }
  return out;
}

void NoteDeadLetter(StoreImpl* s, const KafkaPosition& pos, std::string_view reason, std::string_view raw) {
  constexpr size_t kKept = 16;
  if (pos.topic.starts_with("__debezium-heartbeat")) return;
  StoreImpl::RecentDeadLetter d{pos, std::string(reason.substr(0, 500)), std::nullopt};
  rapidjson::Document doc;
  doc.Parse(raw.data(), raw.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    const rapidjson::Value* v = &doc;
    if (v->HasMember("payload") && (*v)["payload"].IsObject()) v = &(*v)["payload"];
    if (v->HasMember("source") && (*v)["source"].IsObject() && (*v)["source"].HasMember("txId") &&
        (*v)["source"]["txId"].IsInt64()) {
      d.xid = (*v)["source"]["txId"].GetInt64();
    }
  }
  s->recent_dead_letters.push_back(std::move(d));
  if (s->recent_dead_letters.size() > kKept) s->recent_dead_letters.pop_front();
}

// Every row of the snapshot's tables whose newest version (in the database
// or in the two batches not landed yet) is older than the snapshot and not
// a delete gets a delete marker at the snapshot's LSN, visible from there
// (a snapshot version: a transaction in flight at the snapshot that wrote
// the row still wins, as for any snapshot version).
Result<size_t> Ingest::EndRowsAbsentFrom(const PendingHeartbeat& h) {
  const std::set<std::string> tables(h.tables.begin(), h.tables.end());
  struct Newest {
    uint64_t lsn = 0;
    bool deleted = false;
  };
  std::map<std::string, Newest> rows;  // by RowPrefix
  auto note = [&](std::string_view row, uint64_t lsn, std::string_view version_value) {
    auto v = ParseVersionValue(version_value);
    Newest& n = rows[std::string(row)];
    if (lsn >= n.lsn) n = Newest{lsn, v && (v->flags & kVersionDelete)};
  };
  auto wanted = [&](std::string_view row) {
    const std::string key = VersionKey(row, 0);  // outlives the views ParseVersionKey returns
    auto k = ParseVersionKey(key);
    return k && tables.count(std::string(k->table)) > 0;
  };
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(base_ro_, s_->current));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!wanted(it->key().ToStringView())) continue;
    auto c = ParseCurrent(it->value().ToStringView());
    if (!c) return Corruption("current entry is damaged");
    note(it->key().ToStringView(), c->change_lsn, c->version_value);
  }
  if (!it->status().ok()) return Internal(RocksError("reading current", it->status()));
  for (StoreImpl::Layer* l : {previous_, layer_}) {
    if (l == nullptr) continue;
    TV_RETURN_IF_ERROR(
        l->versions.ForEachNewest(l->Data(), [&](std::string_view row, const StoreImpl::RowEntries::Entry& e) {
          if (wanted(row)) note(row, e.lsn, l->Value(e));
          return Status::Ok();
        }));
  }
  size_t ended = 0;
  for (const auto& [row, n] : rows) {
    if (n.lsn >= h.lsn || n.deleted) continue;
    const std::string key = VersionKey(row, 0);
    auto k = ParseVersionKey(key);
    if (!k) return Corruption("a row key is damaged");
    const std::string tenant(k->tenant), table(k->table), pk(k->pk);
    TV_ASSIGN_OR_RETURN(DataKeys * dk, Key(tenant, false));
    if (dk == nullptr) continue;  // shredded
    TV_RETURN_IF_ERROR(MarkDeleted(tenant, table, pk, h.lsn, /*direct=*/true, 0));
    ++ended;
  }
  return ended;
}

}  // namespace engine

std::string Store::GapJson(const Gap& gap) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const char* key, const std::string& v) {
    w.Key(key);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  auto point = [&](const char* key, const Point& p) {
    w.Key(key);
    w.StartObject();
    str("lsn", p.lsn.ToString());
    str("time", p.time.ToIso());
    w.EndObject();
  };
  w.StartObject();
  w.Key("id");
  w.Uint64(gap.id);
  str("cause", gap.cause);
  point("from", gap.from);
  if (gap.open()) {
    w.Key("to");
    w.Null();  // open: until the next full snapshot
  } else {
    point("to", gap.to);
  }
  w.Key("open");
  w.Bool(gap.open());
  str("recorded_at", gap.recorded_at.ToIso());
  w.Key("acknowledged");
  w.Bool(gap.acknowledged);
  if (gap.acknowledged) {
    str("acknowledged_by", gap.acknowledged_by);
    str("acknowledged_at", gap.acknowledged_at.ToIso());
  }
  str("description", gap.Describe());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::vector<Gap> Store::Gaps() {
  const ReadView v = impl_->View();
  auto acks = ReadAcks(impl_->GapAcksPath());
  if (!acks.ok()) spdlog::warn("store: {}", acks.status().ToString());
  std::vector<Gap> out;
  for (const auto& g : v.gaps) {
    Gap gap = ToGap(g);
    if (acks.ok()) {
      if (auto a = acks->find(g.id); a != acks->end()) {
        gap.acknowledged = true;
        gap.acknowledged_by = a->second.by;
        gap.acknowledged_at = CommitTime(a->second.at_us);
      }
    }
    out.push_back(std::move(gap));
  }
  return out;
}

Status Store::AcknowledgeGap(uint64_t id, const std::string& by) {
  const ReadView v = impl_->View();
  bool known = false;
  for (const auto& g : v.gaps) known = known || g.id == id;
  if (!known) return NotFound("no gap #" + std::to_string(id) + " is recorded");
  const std::string path = impl_->GapAcksPath();
  TV_ASSIGN_OR_RETURN(auto acks, ReadAcks(path));
  if (acks.count(id)) return Status::Ok();
  acks[id] = Ack{by.empty() ? "unknown" : by, SystemClock().Now().micros()};
  spdlog::warn("store: gap #{} acknowledged by {}", id, acks[id].by);
  return WriteFileAtomically(path, AcksJson(acks));
}

}  // namespace timevault::store
