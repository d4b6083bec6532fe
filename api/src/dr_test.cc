// DR test execution (docs/api.md "DR tests"): basic verifies the newest
// backup of the plan's tenant and reads it whole; full restores it into a
// scratch schema and compares row counts with its manifest and per-table
// checksums with the store's reconstruction at the backup's point; deep
// compares every row. Each level measures data age against the RPO and
// (full, deep) the restore time against the RTO.
//
// A "*" plan tests the newest backup of every tenant ("*") and, in it, every
// tenant the store holds rows of at the backup's point.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "timevault/api/plans.h"
#include "timevault/replay/scratch_restore.h"

namespace timevault::api {
namespace {

using replay::ScratchRestore;
using replay::ScratchSide;

constexpr size_t kSampleKeys = 5;
constexpr double kSecondsPerMinute = 60.0;

struct Check {
  std::string name;
  bool passed = false;
  std::string detail;
};

struct Report {
  DrTestLevel level = DrTestLevel::kBasic;
  std::optional<replay::BackupInfo> backup;
  std::optional<double> restore_seconds;
  double rto_seconds = 0, rpo_seconds = 0;
  std::optional<double> data_age_seconds;
  std::vector<Check> checks;
  std::vector<std::string> recommendations;

  void Add(std::string name, bool passed, std::string detail) {
    checks.push_back({std::move(name), passed, std::move(detail)});
  }
  bool passed() const {
    for (const auto& c : checks) {
      if (!c.passed) return false;
    }
    return !checks.empty();
  }
  std::optional<bool> rto_met() const {
    if (!restore_seconds) return std::nullopt;
    return *restore_seconds <= rto_seconds;
  }
  std::optional<bool> rpo_met() const {
    if (!data_age_seconds) return std::nullopt;
    return *data_age_seconds <= rpo_seconds;
  }
};

std::string ToJson(const Report& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  auto opt_num = [&w](const std::optional<double>& v) { v ? w.Double(*v) : w.Null(); };
  auto opt_bool = [&w](const std::optional<bool>& v) { v ? w.Bool(*v) : w.Null(); };
  w.StartObject();
  w.Key("level"), str(DrTestLevelName(r.level));
  w.Key("passed"), w.Bool(r.passed());
  w.Key("backup_id");
  if (r.backup) {
    str(r.backup->id);
  } else {
    w.Null();
  }
  w.Key("backup_point");
  if (r.backup) {
    w.StartObject();
    w.Key("lsn"), str(r.backup->point.lsn.ToString());
    w.Key("time"), str(r.backup->point.time.ToIso());
    w.EndObject();
  } else {
    w.Null();
  }
  if (r.level != DrTestLevel::kBasic) w.Key("restore_seconds"), opt_num(r.restore_seconds);
  w.Key("rto_seconds"), w.Double(r.rto_seconds);
  w.Key("rto_met"), opt_bool(r.rto_met());
  w.Key("data_age_seconds"), opt_num(r.data_age_seconds);
  w.Key("rpo_seconds"), w.Double(r.rpo_seconds);
  w.Key("rpo_met"), opt_bool(r.rpo_met());
  w.Key("checks");
  w.StartArray();
  for (const auto& c : r.checks) {
    w.StartObject();
    w.Key("name"), str(c.name);
    w.Key("passed"), w.Bool(c.passed);
    w.Key("detail"), str(c.detail);
    w.EndObject();
  }
  w.EndArray();
  w.Key("recommendations");
  w.StartArray();
  for (const auto& s : r.recommendations) str(s);
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The newest backup covering the plan: the tenant's own or a "*" one; for a
// "*" plan, the newest "*" backup.
Result<std::optional<replay::BackupInfo>> NewestBackup(replay::BackupCatalog& catalog, const std::string& tenant) {
  TV_ASSIGN_OR_RETURN(auto list, catalog.List(tenant == "*" ? std::nullopt : std::optional<std::string>(tenant)));
  for (auto& b : list) {
    if (tenant != "*" || b.tenant == "*") return std::optional<replay::BackupInfo>(std::move(b));
  }
  return std::optional<replay::BackupInfo>();
}

Result<std::vector<TenantId>> TenantsToTest(replay::Engine& engine, const DrPlan& plan,
                                            const replay::BackupInfo& backup) {
  if (plan.tenant != "*") return std::vector<TenantId>{TenantId(plan.tenant)};
  TV_ASSIGN_OR_RETURN(auto all, engine.store().Tenants(backup.point.lsn));
  std::vector<TenantId> out;
  for (auto& t : all) {
    if (!t.empty()) out.push_back(std::move(t));
  }
  return out;
}

std::string CountsText(const std::map<std::string, uint64_t>& counts) {
  std::string out;
  for (const auto& [table, n] : counts) out += (out.empty() ? "" : ", ") + table + " " + std::to_string(n);
  return out.empty() ? "no rows" : out;
}

// Row counts against the manifest: only a full backup's manifest holds
// rows, and only a test of all the backup's tenants sees all of them.
void CheckManifest(Report& r, const DrPlan& plan, const std::map<std::string, uint64_t>& counts) {
  const auto& b = *r.backup;
  if (b.type != replay::BackupType::kFull || (b.tenant == "*" && plan.tenant != "*")) {
    r.Add("row_counts", true,
          "not compared with the manifest (it holds " +
              std::string(b.type == replay::BackupType::kFull ? "every tenant's rows" : "event counts") +
              "); restored " + CountsText(counts));
    return;
  }
  std::map<std::string, uint64_t> expected;
  for (const auto& [t, n] : b.rows) {
    if (n) expected[t] = n;
  }
  std::map<std::string, uint64_t> got;
  for (const auto& [t, n] : counts) {
    if (n) got[t] = n;
  }
  if (expected == got) return r.Add("row_counts", true, "as in the manifest: " + CountsText(got));
  r.Add("row_counts", false, "manifest says " + CountsText(expected) + "; the backup restored " + CountsText(got));
}

// POST /v1/jobs/{id}/cancel on a running DR test: it stops at its next check
// with Aborted. A DR test changes nothing live (its scratch schema is inside
// a transaction that is rolled back when the ScratchRestore goes), so every
// point is safe; rows are checked every kRowsPerCancelCheck.
constexpr uint64_t kRowsPerCancelCheck = 4096;
Status CheckCancelled(const replay::CancelFn& cancelled, std::string_view while_doing) {
  if (!cancelled || !cancelled()) return Status::Ok();
  return Aborted("cancelled while " + std::string(while_doing) +
                 "; the scratch schema was rolled back and the plan's last test is unchanged");
}

Status LoadBackup(replay::Engine& engine, const replay::BackupInfo& b, const std::vector<TenantId>& tenants,
                  const std::function<Status(const store::Row&)>& sink) {
  for (const auto& t : tenants) {
    Status inner;
    Status st = engine.backups().LoadState(b.id, t, b.tables, [&](const store::Row& row) {
      inner = sink(row);
      return inner.ok();
    });
    TV_RETURN_IF_ERROR(inner);
    TV_RETURN_IF_ERROR(st.WithContext("reading backup " + b.id + " for tenant '" + t.str() + "'"));
  }
  return Status::Ok();
}

Status LoadStore(replay::Engine& engine, const replay::BackupInfo& b, const std::vector<TenantId>& tenants,
                 ScratchRestore& scratch) {
  for (const auto& t : tenants) {
    Status inner;
    Status st = engine.store().StateAt(t, b.point.lsn, b.tables, [&](const store::Row& row) {
      inner = scratch.Add(ScratchSide::kStore, row);
      return inner.ok();
    });
    TV_RETURN_IF_ERROR(inner);
    TV_RETURN_IF_ERROR(
        st.WithContext("reading the store at " + b.point.lsn.ToString() + " for tenant '" + t.str() + "'"));
  }
  return scratch.Flush();
}

// Checksums per table, backup restore against store reconstruction.
Status CompareDigests(Report& r, ScratchRestore& scratch) {
  std::string mismatched;
  uint64_t rows = 0;
  for (const auto& table : scratch.tables()) {
    TV_ASSIGN_OR_RETURN(auto b, scratch.Digest(ScratchSide::kBackup, table));
    TV_ASSIGN_OR_RETURN(auto s, scratch.Digest(ScratchSide::kStore, table));
    rows += b.rows;
    if (b.rows != s.rows || b.md5 != s.md5) {
      mismatched += (mismatched.empty() ? "" : "; ") + table + ": backup " + std::to_string(b.rows) + " rows md5 " +
                    b.md5 + ", store " + std::to_string(s.rows) + " rows md5 " + s.md5;
    }
  }
  if (mismatched.empty()) {
    r.Add("checksums", true,
          std::to_string(scratch.tables().size()) + " table(s), " + std::to_string(rows) +
              " row(s): md5 of the restored rows equals the store's reconstruction at the backup's point");
  } else {
    r.Add("checksums", false, "differs from the store's reconstruction: " + mismatched);
  }
  return Status::Ok();
}

Status CompareRows(Report& r, ScratchRestore& scratch) {
  uint64_t differing = 0;
  std::string detail;
  for (const auto& table : scratch.tables()) {
    TV_ASSIGN_OR_RETURN(auto d, scratch.Diff(table, kSampleKeys));
    if (d.differing == 0) continue;
    differing += d.differing;
    std::string keys;
    for (const auto& k : d.keys) keys += (keys.empty() ? "" : ", ") + k;
    detail += (detail.empty() ? "" : "; ") + table + ": " + std::to_string(d.differing) + " row(s), keys " + keys;
  }
  if (differing == 0) {
    r.Add("rows", true, "every row of the restore equals the store's reconstruction (both ways)");
  } else {
    r.Add("rows", false, std::to_string(differing) + " differing row(s): " + detail);
  }
  return Status::Ok();
}

// Full and deep: the scratch restore, timed, then the comparisons.
Status RunRestore(Report& r, replay::Engine& engine, const DrPlan& plan, const std::vector<TenantId>& tenants,
                  const std::string& job_id, const replay::ProgressFn& progress, const replay::CancelFn& cancelled) {
  const auto& b = *r.backup;
  const auto& cfg = engine.config();
  const auto start = std::chrono::steady_clock::now();
  TV_ASSIGN_OR_RETURN(auto scratch, ScratchRestore::Begin(cfg.postgres.conninfo, cfg.tenant_column,
                                                          cfg.postgres.publication, job_id, b.tables));
  TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "creating the scratch schema"));
  uint64_t rows = 0;
  TV_RETURN_IF_ERROR(LoadBackup(engine, b, tenants, [&](const store::Row& row) {
    if (++rows % kRowsPerCancelCheck == 0) TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "restoring the backup"));
    return scratch->Add(ScratchSide::kBackup, row);
  }));
  TV_RETURN_IF_ERROR(scratch->Flush());
  TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "restoring the backup"));
  r.restore_seconds = Seconds(std::chrono::steady_clock::now() - start);
  r.Add("restore", true,
        "restored into scratch schema " + scratch->schema() + " in " + std::to_string(*r.restore_seconds) + " s");
  CheckManifest(r, plan, scratch->loaded(ScratchSide::kBackup));
  if (progress) progress("reconstruct", 0.5);
  TV_RETURN_IF_ERROR(LoadStore(engine, b, tenants, *scratch));
  TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "reconstructing from the store"));
  if (progress) progress("compare", 0.75);
  TV_RETURN_IF_ERROR(CompareDigests(r, *scratch));
  if (r.level == DrTestLevel::kDeep) TV_RETURN_IF_ERROR(CompareRows(r, *scratch));
  return scratch->Drop();
}

void Objectives(Report& r, const DrPlan& plan) {
  if (auto met = r.rpo_met()) {
    r.Add("rpo", *met,
          "backup data is " + std::to_string(static_cast<int64_t>(*r.data_age_seconds)) + " s old; RPO " +
              std::to_string(plan.rpo_minutes) + " min");
    if (!*met) r.recommendations.push_back("no backup within RPO: take backups more often");
  }
  if (auto met = r.rto_met()) {
    r.Add(
        "rto", *met,
        "restore took " + std::to_string(*r.restore_seconds) + " s; RTO " + std::to_string(plan.rto_minutes) + " min");
    if (!*met)
      r.recommendations.push_back("restore took longer than RTO: restore fewer tables per tenant or raise RTO");
  }
}

Status Run(Report& r, replay::Engine& engine, const DrPlan& plan, const std::string& job_id,
           const replay::ProgressFn& progress, const replay::CancelFn& cancelled) {
  if (progress) progress("verify", 0.0);
  TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "starting"));
  TV_ASSIGN_OR_RETURN(auto newest, NewestBackup(engine.backups(), plan.tenant));
  if (!newest) {
    r.Add("backup", false, "no backup of tenant '" + plan.tenant + "' exists");
    r.recommendations.push_back("no backup of tenant '" + plan.tenant + "': take a full backup");
    return Status::Ok();
  }
  r.backup = *newest;
  const auto& b = *r.backup;
  r.data_age_seconds = static_cast<double>(SystemClock().Now().micros() - b.point.time.micros()) / 1e6;
  r.Add("backup", true,
        "newest backup " + b.id + " (" + std::string(replay::BackupTypeName(b.type)) + ", tenant '" + b.tenant +
            "') at " + b.point.lsn.ToString() + ", " + b.point.time.ToIso());
  if (Status st = engine.backups().Verify(b.id); !st.ok()) {
    r.Add("verify", false, st.message());
    r.recommendations.push_back("backup " + b.id + " is damaged: take a new full backup and check the backup storage");
    return Status::Ok();
  }
  r.Add("verify", true, "every hash and block of the backup and its chain checks out, decryption included");
  TV_RETURN_IF_ERROR(CheckCancelled(cancelled, "verifying the backup"));
  TV_ASSIGN_OR_RETURN(auto tenants, TenantsToTest(engine, plan, b));
  if (r.level == DrTestLevel::kBasic) {
    std::map<std::string, uint64_t> counts;
    if (Status st = LoadBackup(engine, b, tenants,
                               [&](const store::Row& row) {
                                 ++counts[row.table];
                                 return Status::Ok();
                               });
        !st.ok()) {
      r.Add("readable", false, st.ToString());
      return Status::Ok();
    }
    r.Add("readable", true, "read " + std::to_string(tenants.size()) + " tenant(s): " + CountsText(counts));
    CheckManifest(r, plan, counts);
    return Status::Ok();
  }
  if (progress) progress("restore", 0.25);
  if (Status st = RunRestore(r, engine, plan, tenants, job_id, progress, cancelled); !st.ok()) {
    if (st.code() == StatusCode::kAborted && cancelled && cancelled()) return st;
    r.Add(r.restore_seconds ? "compare" : "restore", false, st.ToString());
    r.recommendations.push_back("the restore failed: fix the cause named in check 'restore' before relying on backups");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RunDrTest(replay::Engine& engine, const DrPlan& plan, DrTestLevel level, const std::string& job_id,
                              const replay::ProgressFn& progress, const replay::CancelFn& cancelled) {
  Report r;
  r.level = level;
  r.rto_seconds = static_cast<double>(plan.rto_minutes) * kSecondsPerMinute;
  r.rpo_seconds = static_cast<double>(plan.rpo_minutes) * kSecondsPerMinute;
  if (Status st = Run(r, engine, plan, job_id, progress, cancelled); !st.ok()) {
    if (st.code() == StatusCode::kAborted && cancelled && cancelled()) return st;  // the job fails: no report
    r.Add("run", false, st.ToString());
  }
  Objectives(r, plan);
  if (progress) progress("done", 1.0);
  return ToJson(r);
}

}  // namespace timevault::api
