#include "snapshots.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "json_fields.h"
#include "timevault/replay/archive.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;

Result<SnapshotReason> ParseReason(const std::string& s) {
  if (s == "pitr") return SnapshotReason::kPitr;
  if (s == "restore") return SnapshotReason::kRestore;
  if (s == "rollback") return SnapshotReason::kRollback;
  return Corruption("unknown snapshot reason '" + s + "'");
}

}  // namespace

bool SnapshotStore::Exists(const std::string& snapshot_id) const { return fs::exists(Path(snapshot_id)); }

Result<std::vector<SnapshotInfo>> SnapshotStore::List(const std::optional<std::string>& tenant) {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string id = entry.path().filename().string();
    if (!entry.is_directory() || !ValidId(id, 's')) continue;
    auto info = Get(id);
    if (!info.ok()) {
      spdlog::warn("snapshots: {} is unreadable: {}", id, info.status().ToString());
      continue;
    }
    if (tenant && info->tenant != *tenant) continue;
    out.push_back(std::move(info).value());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) return Internal("cannot list " + dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_at.micros() != b.created_at.micros() ? a.created_at.micros() > b.created_at.micros() : a.id > b.id;
  });
  return out;
}

Result<SnapshotInfo> SnapshotStore::Get(const std::string& snapshot_id) {
  if (!ValidId(snapshot_id, 's')) return NotFound("no snapshot " + snapshot_id);
  TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(Path(snapshot_id), *keys_));
  rapidjson::Document doc;
  doc.Parse(reader->manifest_json().c_str());
  if (doc.HasParseError() || !doc.IsObject()) return Corruption("snapshot " + snapshot_id + ": bad manifest");
  SnapshotInfo info;
  info.id = snapshot_id;
  info.tenant = Str(doc, "tenant");
  info.lsn = LsnField(doc, "lsn");
  info.created_at = TimeField(doc, "snapshot_created_at");
  info.job_id = Str(doc, "job_id");
  TV_ASSIGN_OR_RETURN(info.reason, ParseReason(Str(doc, "reason")));
  info.source = Str(doc, "source");
  info.rows = U64(doc, "rows");
  info.absent = U64(doc, "absent");
  if (doc.HasMember("tables") && doc["tables"].IsObject()) {
    for (const auto& m : doc["tables"].GetObject()) info.tables.emplace_back(m.name.GetString());
  }
  for (const auto& f : reader->files()) info.bytes += f.bytes;
  return info;
}

Result<std::vector<std::string>> SnapshotStore::Expire(CommitTime now) {
  TV_ASSIGN_OR_RETURN(auto all, List(std::nullopt));
  const int64_t cutoff = now.micros() - retention_days_ * 86400LL * 1000000;
  std::vector<std::string> removed;
  for (const auto& s : all) {
    if (s.created_at.micros() >= cutoff) continue;
    std::error_code ec;
    fs::remove_all(Path(s.id), ec);
    if (ec) return Internal("cannot remove snapshot " + s.id + ": " + ec.message());
    removed.push_back(s.id);
  }
  return removed;
}

Result<RollbackTarget> SnapshotStore::LoadRollback(const std::string& snapshot_id) {
  if (!ValidId(snapshot_id, 's')) return NotFound("no snapshot " + snapshot_id);
  TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(Path(snapshot_id), *keys_));
  rapidjson::Document doc;
  doc.Parse(reader->manifest_json().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tables") || !doc["tables"].IsObject()) {
    return Corruption("snapshot " + snapshot_id + ": manifest lacks its tables");
  }
  RollbackTarget target;
  target.tenant = TenantId(Str(doc, "tenant"));
  for (const auto& m : doc["tables"].GetObject()) {
    std::string table(m.name.GetString(), m.name.GetStringLength());
    KeyedTable kt;
    kt.columns = Strings(m.value, "columns");
    std::string file = Str(m.value, "file");
    auto collect = [&](const std::string& name, std::vector<std::string>* out) -> Status {
      bool listed = std::any_of(reader->files().begin(), reader->files().end(),
                                [&](const ArchiveFileInfo& f) { return f.name == name; });
      if (!listed) return Status::Ok();
      return reader->Read(name, [&](std::string_view record) {
        out->emplace_back(record);
        return true;
      });
    };
    TV_RETURN_IF_ERROR(collect(file + ".rows", &kt.rows));
    TV_RETURN_IF_ERROR(collect(file + ".absent", &kt.absent));
    // After-images (snapshots saved before they existed have none).
    if (m.value.HasMember("after_columns")) {
      kt.has_after = true;
      kt.after_columns = Strings(m.value, "after_columns");
      TV_RETURN_IF_ERROR(collect(file + ".after", &kt.after));
    }
    target.rows += kt.rows.size() + kt.absent.size();
    target.scope.push_back(table);
    target.tables.emplace(table, std::move(kt));
  }
  std::sort(target.scope.begin(), target.scope.end());
  return target;
}

Result<std::string> SnapshotStore::Save(Applier& applier, const SnapshotOrigin& origin) {
  const std::string snapshot_id = SnapshotIdForJob(origin.job_id);
  TV_ASSIGN_OR_RETURN(auto archive, ArchiveWriter::Create(Path(snapshot_id), snapshot_id, *keys_, origin.tenant.str()));
  TV_ASSIGN_OR_RETURN(auto part, applier.SaveSnapshot(archive.get()));
  const std::string created = SystemClock().Now().ToIso();
  std::string meta = ToJson([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("snapshot");
    w.Key("tenant");
    w.String(origin.tenant.str().c_str());
    w.Key("lsn");
    w.String(part.lsn.ToString().c_str());
    w.Key("snapshot_created_at");
    w.String(created.c_str());
    w.Key("job_id");
    w.String(origin.job_id.c_str());
    w.Key("reason");
    w.String(std::string(SnapshotReasonName(origin.reason)).c_str());
    w.Key("source");
    w.String(origin.source.c_str());
    w.Key("rows");
    w.Uint64(part.rows);
    w.Key("absent");
    w.Uint64(part.absent);
    w.Key("tables");
    w.RawValue(part.tables_json.c_str(), part.tables_json.size(), rapidjson::kObjectType);
    w.EndObject();
  });
  TV_RETURN_IF_ERROR(archive->Finish(meta).status());
  return snapshot_id;
}

}  // namespace timevault::replay
