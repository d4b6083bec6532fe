// Backup records, manifests and the replay of a chain (backup_format.h).
#include "backup_format.h"

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <set>

namespace timevault::replay::backup_internal {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) *out += static_cast<char>((v >> shift) & 0xFF);
}
void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) *out += static_cast<char>((v >> shift) & 0xFF);
}
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Bounds-checked reads from the front of a record.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool U64(uint64_t* v) {
    if (s_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>(s_[i]);
    s_.remove_prefix(8);
    return true;
  }
  bool Char(char* c) {
    if (s_.empty()) return false;
    *c = s_[0];
    s_.remove_prefix(1);
    return true;
  }
  bool String(std::string_view* v) {
    if (s_.size() < 4) return false;
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<unsigned char>(s_[i]);
    if (s_.size() - 4 < len) return false;
    *v = s_.substr(4, len);
    s_.remove_prefix(4 + len);
    return true;
  }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

}  // namespace

std::string EncodeRow(const std::string& tenant, const store::Row& row) {
  std::string out;
  out.reserve(8 + tenant.size() + row.pk.size() + row.json.size());
  PutString(&out, tenant);
  PutString(&out, row.pk);
  out += row.json;
  return out;
}

bool DecodeRow(std::string_view record, RowRecord* out) {
  Cursor c(record);
  if (!c.String(&out->tenant) || !c.String(&out->pk)) return false;
  out->json = c.rest();
  return !out->json.empty();
}

std::string EncodeEvent(const std::string& tenant, const store::HistoryEvent& event) {
  std::string out;
  PutU64(&out, event.commit_lsn.value());
  PutU64(&out, event.change_lsn.value());
  out += event.op;
  PutString(&out, tenant);
  PutString(&out, event.pk);
  out += event.envelope;
  return out;
}

bool DecodeEvent(std::string_view record, EventRecord* out) {
  Cursor c(record);
  if (!c.U64(&out->commit_lsn) || !c.U64(&out->change_lsn) || !c.Char(&out->op) || !c.String(&out->tenant) ||
      !c.String(&out->pk)) {
    return false;
  }
  out->envelope = c.rest();
  return true;
}

bool RowOrderLess(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

// ---- envelope images -----------------------------------------------------------

namespace {

// SAX handler that records where the top-level "before" and "after" objects
// start and end in the input.
class ImageFinder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ImageFinder> {
 public:
  explicit ImageFinder(const rapidjson::MemoryStream& is) : is_(is) {}

  bool Default() { return Scalar(false); }
  bool Null() { return Scalar(true); }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    if (depth_ == 1) target_ = Target(std::string_view(s, len));
    return true;
  }
  bool StartObject() {
    if (depth_ == 1 && target_ >= 0) {
      start_ = is_.Tell() - 1;
      capturing_ = target_;
    }
    ++depth_;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    if (depth_ == 1 && capturing_ >= 0) {
      spans_[capturing_] = {start_, is_.Tell()};
      capturing_ = target_ = -1;
    }
    return true;
  }
  bool StartArray() {
    if (depth_ == 1 && target_ >= 0) malformed_ = true;
    ++depth_;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }

  std::optional<std::pair<size_t, size_t>> spans_[2];
  bool malformed_ = false;

 private:
  static int Target(std::string_view name) {
    if (name == "before") return 0;
    if (name == "after") return 1;
    return -1;
  }
  bool Scalar(bool is_null) {
    if (depth_ == 1 && target_ >= 0 && !is_null) malformed_ = true;
    if (depth_ == 1) target_ = -1;
    return true;
  }

  const rapidjson::MemoryStream& is_;
  int depth_ = 0;
  int target_ = -1;
  int capturing_ = -1;
  size_t start_ = 0;
};

}  // namespace

Result<EnvelopeImages> ExtractImages(std::string_view envelope) {
  rapidjson::MemoryStream is(envelope.data(), envelope.size());
  ImageFinder finder(is);
  rapidjson::Reader reader;
  rapidjson::ParseResult ok = reader.Parse(is, finder);
  if (!ok) return Corruption("event envelope is not valid JSON (offset " + std::to_string(ok.Offset()) + ")");
  if (finder.malformed_) return Corruption("event envelope: \"before\" or \"after\" is neither an object nor null");
  EnvelopeImages out;
  if (auto& s = finder.spans_[0]) out.before = envelope.substr(s->first, s->second - s->first);
  if (auto& s = finder.spans_[1]) out.after = envelope.substr(s->first, s->second - s->first);
  return out;
}

// ---- manifests -----------------------------------------------------------------

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& w, const std::string& s) { w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size())); }

void WritePoint(Writer& w, const store::Point& p) {
  w.StartObject();
  w.Key("lsn");
  WriteString(w, p.lsn.ToString());
  w.Key("time");
  if (p.time.micros() == 0) {
    w.Null();  // given by LSN only: its commit time is not known
  } else {
    WriteString(w, p.time.ToIso());
  }
  w.EndObject();
}

std::string Str(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<store::Point> ParsePoint(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsObject()) return std::nullopt;
  auto lsn = Lsn::Parse(Str(it->value, "lsn"));
  if (!lsn) return std::nullopt;
  store::Point p{*lsn, CommitTime()};
  std::string time = Str(it->value, "time");
  if (!time.empty()) {
    auto t = CommitTime::Parse(time);
    if (!t) return std::nullopt;
    p.time = *t;
  }
  return p;
}

}  // namespace

std::string BuildMeta(const BackupInfo& info, const std::vector<std::pair<std::string, std::string>>& table_files,
                      const std::optional<TenantBlocks>& tenant_blocks) {
  const bool full = info.type == BackupType::kFull;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("kind");
  w.String("backup");
  w.Key("type");
  w.String(std::string(BackupTypeName(info.type)).c_str());
  w.Key("tenant");
  WriteString(w, info.tenant);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : info.tables) WriteString(w, t);
  w.EndArray();
  w.Key("point");
  WritePoint(w, info.point);
  if (!full) {
    w.Key("base_id");
    WriteString(w, info.base_id.value_or(""));
    w.Key("base_point");
    WritePoint(w, info.base_point.value_or(store::Point{}));
  }
  w.Key("name");
  WriteString(w, info.name);
  w.Key("description");
  WriteString(w, info.description);
  w.Key(full ? "rows" : "events");
  w.StartObject();
  for (const auto& [table, n] : info.rows) {
    WriteString(w, table);
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("table_files");
  w.StartArray();
  for (const auto& [table, file] : table_files) {
    w.StartObject();
    w.Key("table");
    WriteString(w, table);
    w.Key("file");
    WriteString(w, file);
    w.EndObject();
  }
  w.EndArray();
  if (tenant_blocks) {
    w.Key("tenant_blocks");
    w.StartObject();
    for (const auto& [file, tenants] : *tenant_blocks) {
      WriteString(w, file);
      w.StartObject();
      for (const auto& [tenant, range] : tenants) {
        WriteString(w, tenant);
        w.StartArray();
        w.Uint64(range.first);
        w.Uint64(range.second);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<Manifest> ParseManifest(const std::string& manifest_json, const std::string& where) {
  rapidjson::Document doc;
  doc.Parse(manifest_json.c_str(), manifest_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Corruption(where + ": manifest.json is not a JSON object");
  auto bad = [&](const std::string& what) { return Corruption(where + ": manifest.json: " + what); };
  if (Str(doc, "kind") != "backup") return bad("not a backup archive (\"kind\" is not \"backup\")");
  Manifest m;
  BackupInfo& info = m.info;
  info.id = Str(doc, "id");
  const std::string type = Str(doc, "type");
  if (type != "full" && type != "incremental") return bad("unknown \"type\" '" + type + "'");
  info.type = type == "full" ? BackupType::kFull : BackupType::kIncremental;
  info.tenant = Str(doc, "tenant");
  info.name = Str(doc, "name");
  info.description = Str(doc, "description");
  auto created = CommitTime::Parse(Str(doc, "created_at"));
  if (!created) return bad("missing or invalid \"created_at\"");
  info.created_at = *created;
  auto point = ParsePoint(doc, "point");
  if (!point) return bad("missing or invalid \"point\"");
  info.point = *point;
  if (info.type == BackupType::kIncremental) {
    info.base_id = Str(doc, "base_id");
    info.base_point = ParsePoint(doc, "base_point");
    if (info.base_id->empty() || !info.base_point)
      return bad("an incremental backup without \"base_id\"/\"base_point\"");
  }
  if (auto it = doc.FindMember("tables"); it != doc.MemberEnd() && it->value.IsArray()) {
    for (const auto& t : it->value.GetArray()) {
      if (t.IsString()) info.tables.emplace_back(t.GetString(), t.GetStringLength());
    }
  }
  if (auto it = doc.FindMember(info.type == BackupType::kFull ? "rows" : "events");
      it != doc.MemberEnd() && it->value.IsObject()) {
    for (const auto& c : it->value.GetObject()) {
      if (c.value.IsUint64())
        info.rows[std::string(c.name.GetString(), c.name.GetStringLength())] = c.value.GetUint64();
    }
  }
  auto files = doc.FindMember("table_files");
  if (files == doc.MemberEnd() || !files->value.IsArray()) return bad("no \"table_files\"");
  for (const auto& tf : files->value.GetArray()) {
    if (!tf.IsObject() || Str(tf, "table").empty() || Str(tf, "file").empty()) return bad("malformed \"table_files\"");
    m.table_files.emplace_back(Str(tf, "table"), Str(tf, "file"));
  }
  if (auto tb = doc.FindMember("tenant_blocks"); tb != doc.MemberEnd()) {
    if (!tb->value.IsObject()) return bad("\"tenant_blocks\" is not an object");
    TenantBlocks index;
    for (const auto& f : tb->value.GetObject()) {
      if (!f.value.IsObject()) return bad("malformed \"tenant_blocks\"");
      auto& tenants = index[std::string(f.name.GetString(), f.name.GetStringLength())];
      for (const auto& t : f.value.GetObject()) {
        if (!t.value.IsArray() || t.value.Size() != 2 || !t.value[0].IsUint64() || !t.value[1].IsUint64() ||
            t.value[0].GetUint64() > t.value[1].GetUint64()) {
          return bad("malformed \"tenant_blocks\" entry");
        }
        tenants[std::string(t.name.GetString(), t.name.GetStringLength())] = {t.value[0].GetUint64(),
                                                                              t.value[1].GetUint64()};
      }
    }
    m.tenant_blocks = std::move(index);
  }
  return m;
}

Status ReadTenantRecords(const ChainLink& link, const std::string& file, const std::string& tenant,
                         const std::function<bool(std::string_view record)>& emit) {
  if (!link.manifest.tenant_blocks) return link.reader->Read(file, emit);
  auto f = link.manifest.tenant_blocks->find(file);
  if (f == link.manifest.tenant_blocks->end()) return Status::Ok();  // no tenant has records in it
  auto t = f->second.find(tenant);
  if (t == f->second.end()) return Status::Ok();
  return link.reader->ReadBlocks(file, t->second.first, t->second.second, emit);
}

// ---- replaying a chain ---------------------------------------------------------------

namespace {

using Overlay = std::map<std::string, std::optional<std::string>, RowOrder>;  // pk -> row (nullopt: deleted)

struct OwnedEvent {
  uint64_t commit_lsn, change_lsn;
  char op;
  std::string pk, envelope;
};

// The net effect of the chain's incrementals on one table: the rows they
// set or delete, and whether a truncate wiped the base's rows.
struct TableChanges {
  Overlay overlay;
  bool truncated = false;

  Status Apply(const OwnedEvent& e) {
    if (e.op == 't') {
      overlay.clear();
      truncated = true;
      return Status::Ok();
    }
    if (e.op == 'd') {
      overlay[e.pk] = std::nullopt;
      return Status::Ok();
    }
    if (e.op != 'c' && e.op != 'u' && e.op != 'r') return Status::Ok();
    TV_ASSIGN_OR_RETURN(EnvelopeImages images, ExtractImages(e.envelope));
    if (!images.after) return Corruption(std::string("a '") + e.op + "' event of " + e.pk + " without an after image");
    // A table without a primary key keys a row by its image: an update
    // (REPLICA IDENTITY FULL) replaces the old image's row.
    if (e.op == 'u' && images.before && *images.after == e.pk && *images.before != e.pk) {
      overlay[std::string(*images.before)] = std::nullopt;
    }
    overlay[e.pk] = std::string(*images.after);
    return Status::Ok();
  }

  // Events of one commit apply in change-LSN order (History gives a commit's
  // events in key order; a truncate and inserts in one transaction need it).
  Status ApplyCommit(std::vector<OwnedEvent>* group) {
    std::stable_sort(group->begin(), group->end(),
                     [](const OwnedEvent& a, const OwnedEvent& b) { return a.change_lsn < b.change_lsn; });
    for (const auto& e : *group) TV_RETURN_IF_ERROR(Apply(e));
    group->clear();
    return Status::Ok();
  }
};

std::optional<std::string> FileOf(const Manifest& m, const std::string& table) {
  for (const auto& [t, f] : m.table_files) {
    if (t == table) return f;
  }
  return std::nullopt;
}

Status CollectChanges(const ChainLink& link, const std::string& tenant, const std::string& table,
                      TableChanges* changes) {
  auto file = FileOf(link.manifest, table);
  if (!file) return Status::Ok();
  const std::string where = "backup " + link.manifest.info.id + ": file " + *file;
  std::vector<OwnedEvent> group;
  Status inner;
  Status st = ReadTenantRecords(link, *file, tenant, [&](std::string_view record) {
    EventRecord r;
    if (!DecodeEvent(record, &r)) {
      inner = Corruption(where + ": malformed event record");
      return false;
    }
    if (r.tenant != tenant) return true;
    if (!group.empty() && group.back().commit_lsn != r.commit_lsn) {
      inner = changes->ApplyCommit(&group);
      if (!inner.ok()) return false;
    }
    group.push_back(OwnedEvent{r.commit_lsn, r.change_lsn, r.op, std::string(r.pk), std::string(r.envelope)});
    return true;
  });
  TV_RETURN_IF_ERROR(st);
  if (!inner.ok()) return inner.WithContext(where);
  return changes->ApplyCommit(&group);
}

// Streams the base's rows of `table` merged with the changes, in key order.
// Returns false when `emit` asked to stop.
Result<bool> MergeTable(const ChainLink& base, const std::string& tenant, const std::string& table,
                        const TableChanges& changes, const std::function<bool(const store::Row&)>& emit) {
  auto next = changes.overlay.begin();
  bool go_on = true;
  auto emit_overlay_before = [&](const std::string* limit) {
    for (; go_on && next != changes.overlay.end() && (limit == nullptr || RowOrderLess(next->first, *limit)); ++next) {
      if (next->second) go_on = emit(store::Row{table, next->first, *next->second});
    }
  };
  auto file = FileOf(base.manifest, table);
  if (file && !changes.truncated) {
    const std::string where = "backup " + base.manifest.info.id + ": file " + *file;
    Status inner;
    std::string previous;
    Status st = ReadTenantRecords(base, *file, tenant, [&](std::string_view record) {
      RowRecord r;
      if (!DecodeRow(record, &r)) {
        inner = Corruption(where + ": malformed row record");
        return false;
      }
      if (r.tenant != tenant) return true;
      std::string pk(r.pk);
      if (!previous.empty() && !RowOrderLess(previous, pk)) {
        inner = Corruption(where + ": rows out of key order");
        return false;
      }
      emit_overlay_before(&pk);
      if (!go_on) return false;
      if (next != changes.overlay.end() && next->first == pk) {
        if (next->second) go_on = emit(store::Row{table, pk, *next->second});
        ++next;
      } else {
        go_on = emit(store::Row{table, pk, std::string(r.json)});
      }
      previous = std::move(pk);
      return go_on;
    });
    TV_RETURN_IF_ERROR(st);
    TV_RETURN_IF_ERROR(inner);
  }
  emit_overlay_before(nullptr);
  return go_on;
}

}  // namespace

Status LoadChain(const std::vector<ChainLink>& chain, const std::string& tenant, const std::vector<std::string>& tables,
                 const std::function<bool(const store::Row&)>& emit) {
  std::set<std::string> wanted(tables.begin(), tables.end());
  std::vector<std::string> order;
  for (const auto& link : chain) {
    for (const auto& [table, file] : link.manifest.table_files) {
      if (!wanted.empty() && wanted.count(table) == 0) continue;
      if (std::find(order.begin(), order.end(), table) == order.end()) order.push_back(table);
    }
  }
  std::sort(order.begin(), order.end(), RowOrderLess);
  for (const auto& table : order) {
    TableChanges changes;
    for (size_t i = 1; i < chain.size(); ++i) TV_RETURN_IF_ERROR(CollectChanges(chain[i], tenant, table, &changes));
    TV_ASSIGN_OR_RETURN(bool go_on, MergeTable(chain[0], tenant, table, changes, emit));
    if (!go_on) break;
  }
  return Status::Ok();
}

}  // namespace timevault::replay::backup_internal
