// The replay engine: PITR preview/execute, restore, rollback and snapshots
// over the one diff-and-apply path of apply.h (docs/replay.md).
#include "timevault/replay/engine.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "apply.h"
#include "catalog.h"
#include "ids.h"
#include "timevault/core/crypto.h"
#include "timevault/core/file.h"
#include "timevault/replay/archive.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr int64_t kPlanLifetimeMicros = 3600LL * 1000000;

bool ValidId(const std::string& id, char prefix) {
  if (id.size() < 3 || id[0] != prefix || id[1] != '-') return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + " does not exist");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ToJson(const std::function<void(Writer&)>& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  fill(w);
  return sb.GetString();
}

OperationCounts ReadOps(const rapidjson::Value& v) {
  OperationCounts ops;
  if (v.HasMember("insert") && v["insert"].IsUint64()) ops.inserts = v["insert"].GetUint64();
  if (v.HasMember("update") && v["update"].IsUint64()) ops.updates = v["update"].GetUint64();
  if (v.HasMember("delete") && v["delete"].IsUint64()) ops.deletes = v["delete"].GetUint64();
  return ops;
}

std::string Str(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : "";
}

uint64_t U64(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

std::vector<std::string> Strings(const rapidjson::Value& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) return out;
  for (const auto& v : it->value.GetArray()) {
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return out;
}

CommitTime TimeField(const rapidjson::Value& obj, const char* key) {
  auto t = CommitTime::Parse(Str(obj, key));
  return t ? *t : CommitTime(0);
}

Lsn LsnField(const rapidjson::Value& obj, const char* key) {
  auto l = Lsn::Parse(Str(obj, key));
  return l ? *l : Lsn{};
}

Result<SnapshotReason> ParseReason(const std::string& s) {
  if (s == "pitr") return SnapshotReason::kPitr;
  if (s == "restore") return SnapshotReason::kRestore;
  if (s == "rollback") return SnapshotReason::kRollback;
  return Corruption("unknown snapshot reason '" + s + "'");
}

// What an apply does besides its target: recorded in its snapshot and in
// the change stream's message.
struct ApplyJob {
  SnapshotReason reason;
  std::string job_id;
  std::string source;  // plan, backup or snapshot id
  TenantId tenant;
  std::vector<std::string> scope;
  bool keyed = false;
  std::optional<std::string> expected_digest;  // PITR: the plan's
  // Rollback: the reverts digest the caller confirmed (empty: none).
  std::optional<std::string> confirm_reverts;
  uint64_t expected_rows = 0;  // for load progress
  // Feeds the target to the applier.
  std::function<Status(Applier&, const std::function<void(uint64_t)>& loaded)> load;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const config::Config& cfg, store::StateReader* store, crypto::MasterKey master,
             std::unique_ptr<BackupCatalog> backups)
      : cfg_(cfg),
        store_(store),
        snapshot_keys_(std::make_unique<ArchiveKeyRing>(cfg.replay.snapshot_dir, std::move(master))),
        backups_(std::move(backups)) {}

  Status Init() {
    std::error_code ec;
    fs::create_directories(PlansDir(), ec);
    if (ec) return Internal("cannot create " + PlansDir() + ": " + ec.message());
    return Status::Ok();
  }

  Result<PitrPlan> PreviewPitr(const TenantId& tenant, const PitrTarget& target,
                               const std::vector<std::string>& tables) override {
    if (tenant.empty()) return InvalidArgument("tenant: required");
    TV_ASSIGN_OR_RETURN(store::Point point, Resolve(target));
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_ASSIGN_OR_RETURN(auto scope, ScopeTables(conn, catalog, tables, cfg_.tenant_column));
    if (scope.empty()) return NotFound("no captured table has the tenant column " + cfg_.tenant_column);
    ApplyOptions opt = Options(tenant, scope, false);
    opt.lock = false;
    TV_ASSIGN_OR_RETURN(auto applier, Applier::Begin(catalog, opt));
    auto started = std::chrono::steady_clock::now();
    TV_RETURN_IF_ERROR(LoadFromStore(*applier, tenant, point.lsn, scope, [](uint64_t) {}));
    TV_ASSIGN_OR_RETURN(auto diff, applier->Diff());
    double load_seconds = Seconds(started);
    const std::string plan_id = NewTimeId("p", SystemClock().Now());
    TV_ASSIGN_OR_RETURN(auto sampled, SaveSample(*applier, plan_id, tenant));

    PitrPlan plan;
    plan.plan_id = plan_id;
    plan.tenant = tenant.str();
    plan.sampled = std::move(sampled);
    plan.tables = tables;
    plan.target = point;
    plan.ops = diff.ops;
    plan.by_table = diff.by_table;
    plan.created_at = SystemClock().Now();
    plan.estimated_seconds = Estimate(diff.target_rows, diff.ops.total(), load_seconds);
    std::string json = ToJson([&](Writer& w) {
      w.StartObject();
      WritePlanFields(w, plan);
      w.Key("scope");
      w.StartArray();
      for (const auto& t : scope) w.String(t.c_str());
      w.EndArray();
      w.Key("digest");
      w.String(diff.digest.c_str());
      w.Key("target_rows");
      w.Uint64(diff.target_rows);
      w.EndObject();
    });
    TV_RETURN_IF_ERROR(WriteFileAtomically(PlanPath(plan.plan_id), json));
    spdlog::info("pitr preview {}: tenant {} to {} ({}): {} inserts, {} updates, {} deletes", plan.plan_id,
                 tenant.str(), point.lsn.ToString(), point.time.ToIso(), plan.ops.inserts, plan.ops.updates,
                 plan.ops.deletes);
    return plan;
  }

  Result<SamplePage> PlanSample(const std::string& plan_id, const std::string& table, uint64_t offset,
                                uint64_t limit) override {
    TV_ASSIGN_OR_RETURN(auto plan, GetPlan(plan_id));
    SamplePage page;
    page.plan_id = plan_id;
    page.table = table;
    auto ops = std::find_if(plan.by_table.begin(), plan.by_table.end(),
                            [&](const TableOperations& t) { return t.table == table; });
    if (ops == plan.by_table.end()) return NotFound("plan " + plan_id + " changes no rows of table " + table);
    page.operations = ops->ops.total();
    TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(SamplePath(plan_id), *snapshot_keys_));
    rapidjson::Document doc;
    doc.Parse(reader->manifest_json().c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tables") || !doc["tables"].IsObject()) {
      return Corruption("the row sample of plan " + plan_id + ": manifest lacks its tables");
    }
    auto entry = doc["tables"].FindMember(table.c_str());
    if (entry == doc["tables"].MemberEnd()) return page;  // nothing sampled (a plan made before samples)
    page.sampled = U64(entry->value, "rows");
    uint64_t at = 0;
    TV_RETURN_IF_ERROR(reader->Read(Str(entry->value, "file"), [&](std::string_view change) {
      if (at >= offset && page.changes.size() < limit) page.changes.emplace_back(change);
      ++at;
      return page.changes.size() < limit || at <= offset;
    }));
    if (offset + page.changes.size() < page.sampled && !page.changes.empty()) page.next = offset + page.changes.size();
    return page;
  }

  Result<PitrPlan> GetPlan(const std::string& plan_id) override {
    TV_ASSIGN_OR_RETURN(auto doc, LoadPlanDoc(plan_id));
    return PlanFrom(*doc);
  }

  Result<ApplyResult> ExecutePitr(const std::string& plan_id, const std::string& job_id, const ProgressFn& progress,
                                  const CancelFn& cancelled) override {
    TV_ASSIGN_OR_RETURN(auto doc, LoadPlanDoc(plan_id));
    const auto& d = *doc;
    PitrPlan plan = PlanFrom(d);
    if (d.HasMember("executed_by")) {
      return FailedPrecondition("plan " + plan_id + " was already executed by job " + Str(d, "executed_by") +
                                "; preview again for a new plan");
    }
    if (SystemClock().Now().micros() - plan.created_at.micros() > kPlanLifetimeMicros) {
      return FailedPrecondition("plan " + plan_id +
                                " expired (plans are valid for one hour after the preview, it is from " +
                                plan.created_at.ToIso() + "); preview again");
    }
    TV_ASSIGN_OR_RETURN(auto recoverable, store_->RecoverablePoint());
    if (recoverable.lsn < plan.target.lsn) {
      return OutOfRange("the plan's target " + plan.target.lsn.ToString() + " is past the recoverable point " +
                        recoverable.lsn.ToString());
    }
    ApplyJob job;
    job.reason = SnapshotReason::kPitr;
    job.job_id = job_id;
    job.source = plan_id;
    job.tenant = TenantId(plan.tenant);
    job.scope = Strings(d, "scope");
    job.expected_digest = Str(d, "digest");
    job.expected_rows = U64(d, "target_rows");
    const Lsn lsn = plan.target.lsn;
    job.load = [this, &job, lsn](Applier& a, const std::function<void(uint64_t)>& loaded) {
      return LoadFromStore(a, job.tenant, lsn, job.scope, loaded);
    };
    auto result = RunApply(job, progress, cancelled);
    if (result.ok()) {
      // A plan runs once: mark it with the job that ran it.
      rapidjson::Document updated;
      updated.CopyFrom(d, updated.GetAllocator());
      updated.AddMember("executed_by", rapidjson::Value(job_id.c_str(), updated.GetAllocator()),
                        updated.GetAllocator());
      rapidjson::StringBuffer sb;
      Writer w(sb);
      updated.Accept(w);
      if (Status s = WriteFileAtomically(PlanPath(plan_id), sb.GetString()); !s.ok()) {
        spdlog::warn("pitr {}: could not mark the plan executed: {}", plan_id, s.ToString());
      }
    }
    return result;
  }

  Result<ApplyResult> Restore(const std::string& backup_id, const TenantId& tenant,
                              const std::vector<std::string>& tables, const std::string& job_id,
                              const ProgressFn& progress, const CancelFn& cancelled) override {
    TV_ASSIGN_OR_RETURN(auto info, backups_->Get(backup_id));
    const std::string who = tenant.empty() ? info.tenant : tenant.str();
    if (who == "*" || who.empty()) {
      return InvalidArgument("backup " + backup_id + " holds every tenant: name the tenant to restore");
    }
    if (info.tenant != "*" && who != info.tenant) {
      return InvalidArgument("backup " + backup_id + " is of tenant " + info.tenant + ", not " + who);
    }
    std::vector<std::string> requested = tables.empty() ? info.tables : tables;
    if (!info.tables.empty()) {
      for (const auto& t : requested) {
        if (std::find(info.tables.begin(), info.tables.end(), t) == info.tables.end()) {
          return InvalidArgument("table " + t + " is not in backup " + backup_id);
        }
      }
    }
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_ASSIGN_OR_RETURN(auto scope, ScopeTables(conn, catalog, requested, cfg_.tenant_column));
    ApplyJob job;
    job.reason = SnapshotReason::kRestore;
    job.job_id = job_id;
    job.source = backup_id;
    job.tenant = TenantId(who);
    job.scope = scope;
    for (const auto& [t, n] : info.rows) job.expected_rows += n;
    job.load = [this, &job, backup_id](Applier& a, const std::function<void(uint64_t)>& loaded) {
      uint64_t n = 0;
      Status inner = Status::Ok();
      Status s = backups_->LoadState(backup_id, job.tenant, job.scope, [&](const store::Row& row) {
        inner = a.AddRow(row);
        if ((++n & 0xfff) == 0) loaded(n);
        return inner.ok();
      });
      return inner.ok() ? s : inner;
    };
    return RunApply(job, progress, cancelled);
  }

  Result<ApplyResult> Rollback(const std::string& snapshot_id, const std::string& job_id, const ProgressFn& progress,
                               const CancelFn& cancelled, const std::string& confirm_reverts) override {
    std::map<std::string, KeyedTable> keyed;
    ApplyJob job;
    TV_RETURN_IF_ERROR(LoadSnapshotJob(snapshot_id, &job, &keyed));
    job.job_id = job_id;
    job.confirm_reverts = confirm_reverts;
    return RunApply(job, progress, cancelled);
  }

  Result<RollbackPreview> PreviewRollback(const std::string& snapshot_id) override {
    std::map<std::string, KeyedTable> keyed;
    ApplyJob job;
    TV_RETURN_IF_ERROR(LoadSnapshotJob(snapshot_id, &job, &keyed));
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_RETURN_IF_ERROR(CheckScope(catalog, job.scope));
    ApplyOptions opt = Options(job.tenant, job.scope, true);
    opt.lock = false;
    TV_ASSIGN_OR_RETURN(auto applier, Applier::Begin(catalog, opt));
    TV_RETURN_IF_ERROR(job.load(*applier, [](uint64_t) {}));
    TV_ASSIGN_OR_RETURN(auto diff, applier->Diff());
    RollbackPreview out;
    out.snapshot_id = snapshot_id;
    out.tenant = job.tenant.str();
    out.ops = diff.ops;
    out.by_table = diff.by_table;
    TV_ASSIGN_OR_RETURN(auto reverts, applier->FindReverts(kRevertSampleRows, [&](const std::string& t, std::string c) {
      out.revert_sample.emplace_back(t, std::move(c));
      return Status::Ok();
    }));
    out.reverts_known = reverts.known;
    out.reverts = reverts.count;
    out.reverts_by_table = std::move(reverts.by_table);
    out.reverts_digest = reverts.digest;
    return out;
  }

  // A rollback of `snapshot_id`: reads the snapshot's rows, absent keys and
  // after-images into `keyed`, which `job->load` refers to (so `keyed`
  // outlives the job).
  Status LoadSnapshotJob(const std::string& snapshot_id, ApplyJob* out, std::map<std::string, KeyedTable>* keyed_out) {
    if (!ValidId(snapshot_id, 's')) return NotFound("no snapshot " + snapshot_id);
    TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(SnapshotPath(snapshot_id), *snapshot_keys_));
    rapidjson::Document doc;
    doc.Parse(reader->manifest_json().c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tables") || !doc["tables"].IsObject()) {
      return Corruption("snapshot " + snapshot_id + ": manifest lacks its tables");
    }
    ApplyJob& job = *out;
    job.reason = SnapshotReason::kRollback;
    job.source = snapshot_id;
    job.tenant = TenantId(Str(doc, "tenant"));
    job.keyed = true;
    std::map<std::string, KeyedTable>& keyed = *keyed_out;
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
      job.expected_rows += kt.rows.size() + kt.absent.size();
      job.scope.push_back(table);
      keyed.emplace(table, std::move(kt));
    }
    std::sort(job.scope.begin(), job.scope.end());
    job.load = [keyed_out](Applier& a, const std::function<void(uint64_t)>& loaded) {
      uint64_t n = 0;
      for (const auto& [table, kt] : *keyed_out) {
        TV_RETURN_IF_ERROR(a.AddKeyed(table, kt));
        n += kt.rows.size() + kt.absent.size();
        loaded(n);
      }
      return Status::Ok();
    };
    return Status::Ok();
  }

  Result<std::vector<SnapshotInfo>> ListSnapshots(const std::optional<std::string>& tenant) override {
    std::vector<SnapshotInfo> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cfg_.replay.snapshot_dir, ec)) {
      std::string id = entry.path().filename().string();
      if (!entry.is_directory() || !ValidId(id, 's')) continue;
      auto info = GetSnapshot(id);
      if (!info.ok()) {
        spdlog::warn("snapshots: {} is unreadable: {}", id, info.status().ToString());
        continue;
      }
      if (tenant && info->tenant != *tenant) continue;
      out.push_back(std::move(info).value());
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Internal("cannot list " + cfg_.replay.snapshot_dir + ": " + ec.message());
    }
    std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
      return a.created_at.micros() != b.created_at.micros() ? a.created_at.micros() > b.created_at.micros()
                                                            : a.id > b.id;
    });
    return out;
  }

  Result<SnapshotInfo> GetSnapshot(const std::string& snapshot_id) override {
    if (!ValidId(snapshot_id, 's')) return NotFound("no snapshot " + snapshot_id);
    TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(SnapshotPath(snapshot_id), *snapshot_keys_));
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

  Result<std::vector<std::string>> ExpireSnapshots(CommitTime now) override {
    TV_ASSIGN_OR_RETURN(auto all, ListSnapshots(std::nullopt));
    const int64_t cutoff = now.micros() - cfg_.replay.snapshot_retention_days * 86400LL * 1000000;
    std::vector<std::string> removed;
    for (const auto& s : all) {
      if (s.created_at.micros() >= cutoff) continue;
      std::error_code ec;
      fs::remove_all(SnapshotPath(s.id), ec);
      if (ec) return Internal("cannot remove snapshot " + s.id + ": " + ec.message());
      removed.push_back(s.id);
    }
    return removed;
  }

  BackupCatalog& backups() override { return *backups_; }
  store::StateReader& store() override { return *store_; }
  const config::Config& config() const override { return cfg_; }

 private:
  std::string PlansDir() const { return cfg_.replay.snapshot_dir + "/.plans"; }
  std::string PlanPath(const std::string& id) const { return PlansDir() + "/" + id + ".json"; }
  std::string SamplePath(const std::string& id) const { return PlansDir() + "/" + id + ".sample"; }

  // Saves the preview's row sample (kPreviewSampleRows per table) as an
  // archive next to the plan: row data, so encrypted like snapshots.
  // Returns how many changes of each table it holds.
  Result<std::map<std::string, uint64_t>> SaveSample(Applier& applier, const std::string& plan_id,
                                                     const TenantId& tenant) {
    TV_ASSIGN_OR_RETURN(auto archive,
                        ArchiveWriter::Create(SamplePath(plan_id), plan_id, *snapshot_keys_, tenant.str()));
    std::map<std::string, std::string> files;
    std::map<std::string, uint64_t> counts;
    TV_RETURN_IF_ERROR(applier.SampleChanges(kPreviewSampleRows, [&](const std::string& table, std::string change) {
      auto [it, added] = files.emplace(table, "t" + std::to_string(files.size()));
      ++counts[table];
      return archive->Add(it->second, change);
    }));
    std::string meta = ToJson([&](Writer& w) {
      w.StartObject();
      w.Key("kind");
      w.String("plan-sample");
      w.Key("plan_id");
      w.String(plan_id.c_str());
      w.Key("tables");
      w.StartObject();
      for (const auto& [table, file] : files) {
        w.Key(table.c_str());
        w.StartObject();
        w.Key("file");
        w.String(file.c_str());
        w.Key("rows");
        w.Uint64(counts[table]);
        w.EndObject();
      }
      w.EndObject();
      w.EndObject();
    });
    TV_RETURN_IF_ERROR(archive->Finish(meta).status());
    return counts;
  }
  std::string SnapshotPath(const std::string& id) const { return cfg_.replay.snapshot_dir + "/" + id; }
  std::string StatsPath() const { return cfg_.replay.snapshot_dir + "/.apply_rate.json"; }

  static double Seconds(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  }

  ApplyOptions Options(const TenantId& tenant, const std::vector<std::string>& scope, bool keyed) const {
    ApplyOptions opt;
    opt.conninfo = cfg_.postgres.conninfo;
    opt.tenant_column = cfg_.tenant_column;
    opt.tenant = tenant.str();
    opt.tables = scope;
    opt.lock_timeout_ms = cfg_.replay.lock_timeout_ms;
    opt.keyed = keyed;
    return opt;
  }

  Result<store::Point> Resolve(const PitrTarget& target) {
    if (const auto* t = std::get_if<CommitTime>(&target)) return store_->ResolveTime(*t);
    const Lsn lsn = std::get<Lsn>(target);
    TV_ASSIGN_OR_RETURN(auto recoverable, store_->RecoverablePoint());
    if (recoverable.lsn < lsn) {
      return OutOfRange("LSN " + lsn.ToString() + " is past the recoverable point " + recoverable.lsn.ToString());
    }
    // The time of an LSN target is the recoverable point's when they are
    // the same commit, unknown (0) otherwise.
    return store::Point{lsn, recoverable.lsn == lsn ? recoverable.time : CommitTime(0)};
  }

  Status LoadFromStore(Applier& a, const TenantId& tenant, Lsn lsn, const std::vector<std::string>& scope,
                       const std::function<void(uint64_t)>& loaded) {
    uint64_t n = 0;
    Status inner = Status::Ok();
    Status s = store_->StateAt(tenant, lsn, scope, [&](const store::Row& row) {
      inner = a.AddRow(row);
      if ((++n & 0xfff) == 0) loaded(n);
      return inner.ok();
    });
    return inner.ok() ? s : inner;
  }

  // Seconds for loading `rows` target rows and applying `ops` operations,
  // from the rates measured by earlier applies (the preview's own load time
  // when none were measured yet).
  double Estimate(uint64_t rows, uint64_t ops, double preview_seconds) {
    std::lock_guard<std::mutex> lock(rate_mu_);
    double ops_per_second = 5000;  // until measured: a conservative rate for this machine kind
    if (auto text = ReadFile(StatsPath()); text.ok()) {
      rapidjson::Document d;
      d.Parse(text->c_str());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("ops_per_second") && d["ops_per_second"].IsNumber()) {
        ops_per_second = std::max(1.0, d["ops_per_second"].GetDouble());
      }
    }
    (void)rows;
    return preview_seconds + static_cast<double>(ops) / ops_per_second;
  }

  void RecordRate(uint64_t ops, double seconds) {
    if (ops < 100 || seconds <= 0) return;  // too small to say anything about the rate
    std::lock_guard<std::mutex> lock(rate_mu_);
    double rate = static_cast<double>(ops) / seconds;
    if (auto text = ReadFile(StatsPath()); text.ok()) {
      rapidjson::Document d;
      d.Parse(text->c_str());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("ops_per_second") && d["ops_per_second"].IsNumber()) {
        rate = 0.7 * d["ops_per_second"].GetDouble() + 0.3 * rate;  // smoothed over applies
      }
    }
    (void)WriteFileAtomically(StatsPath(), ToJson([&](Writer& w) {
                                w.StartObject();
                                w.Key("ops_per_second");
                                w.Double(rate);
                                w.EndObject();
                              }));
  }

  // Runs the apply; starts it over (at most kApplyAttempts times) when the
  // tenant's rows changed between its lock and its diff (kConcurrentChange:
  // nothing was changed). A PITR then meets its plan's digest again.
  Result<ApplyResult> RunApply(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled) {
    constexpr int kApplyAttempts = 3;
    for (int attempt = 1;; ++attempt) {
      auto result = RunApplyOnce(job, progress, cancelled);
      if (result.ok() || attempt == kApplyAttempts || result.status().code() != StatusCode::kAborted ||
          !result.status().message().starts_with(kConcurrentChange)) {
        return result;
      }
      spdlog::warn("{} {}: {}; starting over (attempt {})", SnapshotReasonName(job.reason), job.job_id,
                   result.status().message(), attempt + 1);
    }
  }

  Result<ApplyResult> RunApplyOnce(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled) {
    auto report = [&](std::string_view phase, double fraction) {
      if (progress) progress(phase, fraction);
    };
    // Before the snapshot nothing is written: a cancel stops the apply there
    // (the transaction rolls back when `applier` goes).
    auto check_cancel = [&](std::string_view phase) -> Status {
      if (cancelled && cancelled()) {
        return Aborted("cancelled while " + std::string(phase) + ", before anything was written; nothing changed");
      }
      return Status::Ok();
    };
    if (job.job_id.empty()) return InvalidArgument("job id: required (it names the apply's snapshot)");
    if (fs::exists(SnapshotPath(SnapshotIdForJob(job.job_id)))) {
      return AlreadyExists("job " + job.job_id + " already saved snapshot " + SnapshotIdForJob(job.job_id) +
                           ": job ids must be unique");
    }
    const auto started = std::chrono::steady_clock::now();
    report("lock", 0.02);
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_RETURN_IF_ERROR(CheckScope(catalog, job.scope));
    TV_ASSIGN_OR_RETURN(auto applier, Applier::Begin(catalog, Options(job.tenant, job.scope, job.keyed)));
    report("load", 0.05);
    const double expected = static_cast<double>(std::max<uint64_t>(job.expected_rows, 1));
    TV_RETURN_IF_ERROR(check_cancel("locking"));
    TV_RETURN_IF_ERROR(job.load(
        *applier, [&](uint64_t n) { report("load", 0.05 + 0.45 * std::min(1.0, static_cast<double>(n) / expected)); }));
    TV_RETURN_IF_ERROR(check_cancel("loading the target"));
    report("diff", 0.5);
    TV_ASSIGN_OR_RETURN(auto diff, applier->Diff());
    TV_RETURN_IF_ERROR(check_cancel("diffing"));
    if (job.expected_digest && *job.expected_digest != diff.digest) {
      return FailedPrecondition("tenant " + job.tenant.str() + " changed since the preview of plan " + job.source +
                                ": its operations are now " + std::to_string(diff.ops.inserts) + " inserts, " +
                                std::to_string(diff.ops.updates) + " updates, " + std::to_string(diff.ops.deletes) +
                                " deletes, not those previewed; nothing was changed — preview again");
    }
    if (job.confirm_reverts) TV_RETURN_IF_ERROR(CheckReverts(*applier, job));
    report("snapshot", 0.6);
    const std::string snapshot_id = SnapshotIdForJob(job.job_id);
    TV_ASSIGN_OR_RETURN(
        auto archive, ArchiveWriter::Create(SnapshotPath(snapshot_id), snapshot_id, *snapshot_keys_, job.tenant.str()));
    TV_ASSIGN_OR_RETURN(auto part, applier->SaveSnapshot(archive.get()));
    const std::string created = SystemClock().Now().ToIso();
    std::string meta = ToJson([&](Writer& w) {
      w.StartObject();
      w.Key("kind");
      w.String("snapshot");
      w.Key("tenant");
      w.String(job.tenant.str().c_str());
      w.Key("lsn");
      w.String(part.lsn.ToString().c_str());
      w.Key("snapshot_created_at");
      w.String(created.c_str());
      w.Key("job_id");
      w.String(job.job_id.c_str());
      w.Key("reason");
      w.String(std::string(SnapshotReasonName(job.reason)).c_str());
      w.Key("source");
      w.String(job.source.c_str());
      w.Key("rows");
      w.Uint64(part.rows);
      w.Key("absent");
      w.Uint64(part.absent);
      w.Key("tables");
      w.RawValue(part.tables_json.c_str(), part.tables_json.size(), rapidjson::kObjectType);
      w.EndObject();
    });
    TV_RETURN_IF_ERROR(archive->Finish(meta).status());
    report("apply", 0.7);
    std::string message = ToJson([&](Writer& w) {
      w.StartObject();
      w.Key("job_id");
      w.String(job.job_id.c_str());
      w.Key("kind");
      w.String(std::string(SnapshotReasonName(job.reason)).c_str());
      w.Key("tenant");
      w.String(job.tenant.str().c_str());
      w.Key("snapshot_id");
      w.String(snapshot_id.c_str());
      w.Key("source");
      w.String(job.source.c_str());
      w.EndObject();
    });
    const auto apply_started = std::chrono::steady_clock::now();
    TV_ASSIGN_OR_RETURN(Lsn commit_lsn, applier->ApplyAndCommit(message, [&] { report("verify", 0.9); }));
    RecordRate(diff.ops.total(), Seconds(apply_started));
    report("done", 1.0);
    ApplyResult result;
    result.snapshot_id = snapshot_id;
    result.ops = diff.ops;
    result.by_table = diff.by_table;
    result.seconds = Seconds(started);
    result.commit_lsn = commit_lsn;
    result.verified = true;
    result.verified_digest = applier->verified_digest();
    spdlog::info("{} {} for tenant {}: {} inserts, {} updates, {} deletes in {:.2f}s (snapshot {})",
                 SnapshotReasonName(job.reason), job.job_id, job.tenant.str(), diff.ops.inserts, diff.ops.updates,
                 diff.ops.deletes, result.seconds, snapshot_id);
    return result;
  }

  static Status CheckScope(const Catalog& catalog, const std::vector<std::string>& scope) {
    for (const auto& t : scope) {
      if (!catalog.tables.count(t)) {
        return FailedPrecondition("table " + t + " is no longer recoverable (dropped, lost its tenant column or key)");
      }
    }
    return Status::Ok();
  }

  // Under the apply's locks: a rollback that would revert rows changed since
  // the apply it undoes runs only with the digest of exactly those reverts.
  static Status CheckReverts(Applier& applier, const ApplyJob& job) {
    std::string first;
    TV_ASSIGN_OR_RETURN(auto reverts, applier.FindReverts(1, [&](const std::string& table, std::string change) {
      if (first.empty()) first = table + " " + change;
      return Status::Ok();
    }));
    if (reverts.count == 0) return Status::Ok();
    const std::string what = "rolling back snapshot " + job.source + " would revert " + std::to_string(reverts.count) +
                             " row(s) of tenant " + job.tenant.str() + " changed since its apply (first: " + first +
                             ")";
    if (job.confirm_reverts->empty()) {
      return FailedPrecondition(what + "; preview the rollback and confirm its reverts_digest (" + reverts.digest +
                                ") to revert them; nothing was changed");
    }
    if (*job.confirm_reverts != reverts.digest) {
      return FailedPrecondition(what + ", not those confirmed (the reverts_digest is now " + reverts.digest +
                                "); preview again; nothing was changed");
    }
    return Status::Ok();
  }

  static void WritePlanFields(Writer& w, const PitrPlan& plan) {
    w.Key("plan_id");
    w.String(plan.plan_id.c_str());
    w.Key("tenant");
    w.String(plan.tenant.c_str());
    w.Key("tables");
    w.StartArray();
    for (const auto& t : plan.tables) w.String(t.c_str());
    w.EndArray();
    w.Key("target_lsn");
    w.String(plan.target.lsn.ToString().c_str());
    w.Key("target_time");
    w.String(plan.target.time.ToIso().c_str());
    w.Key("ops");
    w.StartObject();
    WriteOperationCounts(w, plan.ops, /*with_total=*/false);
    w.EndObject();
    w.Key("by_table");
    w.StartArray();
    for (const auto& t : plan.by_table) {
      w.StartObject();
      w.Key("table");
      w.String(t.table.c_str());
      WriteOperationCounts(w, t.ops, /*with_total=*/false);
      w.EndObject();
    }
    w.EndArray();
    w.Key("estimated_seconds");
    w.Double(plan.estimated_seconds);
    w.Key("created_at");
    w.String(plan.created_at.ToIso().c_str());
    w.Key("sampled");
    w.StartObject();
    for (const auto& [table, n] : plan.sampled) {
      w.Key(table.c_str());
      w.Uint64(n);
    }
    w.EndObject();
  }

  static PitrPlan PlanFrom(const rapidjson::Document& d) {
    PitrPlan plan;
    plan.plan_id = Str(d, "plan_id");
    plan.tenant = Str(d, "tenant");
    plan.tables = Strings(d, "tables");
    plan.target = store::Point{LsnField(d, "target_lsn"), TimeField(d, "target_time")};
    if (d.HasMember("ops")) plan.ops = ReadOps(d["ops"]);
    if (d.HasMember("by_table") && d["by_table"].IsArray()) {
      for (const auto& t : d["by_table"].GetArray()) plan.by_table.push_back({Str(t, "table"), ReadOps(t)});
    }
    if (d.HasMember("estimated_seconds") && d["estimated_seconds"].IsNumber()) {
      plan.estimated_seconds = d["estimated_seconds"].GetDouble();
    }
    plan.created_at = TimeField(d, "created_at");
    if (auto it = d.FindMember("sampled"); it != d.MemberEnd() && it->value.IsObject()) {
      for (const auto& m : it->value.GetObject()) {
        if (m.value.IsUint64()) plan.sampled[m.name.GetString()] = m.value.GetUint64();
      }
    }
    return plan;
  }

  Result<std::unique_ptr<rapidjson::Document>> LoadPlanDoc(const std::string& plan_id) {
    if (!ValidId(plan_id, 'p')) return NotFound("no plan " + plan_id + " (plan ids come from a preview)");
    auto text = ReadFile(PlanPath(plan_id));
    if (!text.ok()) return NotFound("no plan " + plan_id + " (plan ids come from a preview)");
    auto doc = std::make_unique<rapidjson::Document>();
    doc->Parse(text->c_str());
    if (doc->HasParseError() || !doc->IsObject()) return Corruption("plan " + plan_id + " is damaged");
    return doc;
  }

  config::Config cfg_;
  store::StateReader* store_;
  std::unique_ptr<ArchiveKeyRing> snapshot_keys_;  // the snapshots' per-tenant keys
  std::unique_ptr<BackupCatalog> backups_;
  std::mutex rate_mu_;
};

}  // namespace

std::string SnapshotIdForJob(std::string_view job_id) {
  std::string id = "s-";
  for (char c : job_id) id.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return id;
}

std::string RollbackPreviewJson(const RollbackPreview& p) {
  return ToJson([&](Writer& w) {
    w.StartObject();
    w.Key("snapshot_id");
    w.String(p.snapshot_id.c_str());
    w.Key("tenant");
    w.String(p.tenant.c_str());
    w.Key("operations");
    w.StartObject();
    WriteOperationCounts(w, p.ops);
    w.EndObject();
    w.Key("tables");
    w.StartArray();
    for (const auto& t : p.by_table) {
      w.StartObject();
      w.Key("table");
      w.String(t.table.c_str());
      w.Key("operations");
      w.StartObject();
      WriteOperationCounts(w, t.ops);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.Key("reverts_known");
    w.Bool(p.reverts_known);
    w.Key("reverts");
    w.Uint64(p.reverts);
    w.Key("reverts_by_table");
    w.StartArray();
    for (const auto& [table, n] : p.reverts_by_table) {
      w.StartObject();
      w.Key("table");
      w.String(table.c_str());
      w.Key("count");
      w.Uint64(n);
      w.EndObject();
    }
    w.EndArray();
    w.Key("reverts_digest");
    w.String(p.reverts_digest.c_str());
    w.Key("confirm_required");
    w.Bool(p.reverts > 0);
    w.Key("revert_sample");
    w.StartArray();
    for (const auto& [table, change] : p.revert_sample) {
      w.StartObject();
      w.Key("table");
      w.String(table.c_str());
      w.Key("change");
      w.RawValue(change.data(), change.size(), rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  });
}

std::string_view SnapshotReasonName(SnapshotReason reason) {
  switch (reason) {
    case SnapshotReason::kPitr: return "pitr";
    case SnapshotReason::kRestore: return "restore";
    case SnapshotReason::kRollback: return "rollback";
  }
  return "unknown";
}

Result<std::unique_ptr<Engine>> Engine::Open(const config::Config& cfg, store::StateReader* store) {
  TV_ASSIGN_OR_RETURN(auto master, crypto::MasterKey::Load(cfg.store.key_file));
  TV_ASSIGN_OR_RETURN(auto backups, BackupCatalog::Open(cfg.replay.backup_dir, cfg.store.key_file));
  std::error_code ec;
  fs::create_directories(cfg.replay.snapshot_dir, ec);
  if (ec) return InvalidArgument("replay.snapshot_dir: cannot create " + cfg.replay.snapshot_dir + ": " + ec.message());
  auto engine = std::make_unique<EngineImpl>(cfg, store, std::move(master), std::move(backups));
  TV_RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace timevault::replay
