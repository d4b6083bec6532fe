// The replay engine (docs/replay.md): PITR preview/execute, restore,
// rollback and snapshots. The engine resolves targets and builds apply jobs;
// plans.h keeps the plans, snapshots.h the snapshots, applies.h runs every
// apply over the one diff-and-apply path of apply.h.
#include "timevault/replay/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "applies.h"
#include "apply.h"
#include "catalog.h"
#include "ids.h"
#include "json_fields.h"
#include "plans.h"
#include "snapshots.h"
#include "timevault/core/crypto.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(const config::Config& cfg, store::StateReader* store, crypto::MasterKey master,
             std::unique_ptr<BackupCatalog> backups)
      : cfg_(cfg),
        store_(store),
        snapshot_keys_(std::make_unique<ArchiveKeyRing>(cfg.replay.snapshot_dir, std::move(master))),
        backups_(std::move(backups)),
        plans_(cfg.replay.snapshot_dir + "/.plans", snapshot_keys_.get()),
        snapshots_(cfg.replay.snapshot_dir, snapshot_keys_.get(), cfg.replay.snapshot_retention_days),
        applies_(cfg_, &snapshots_) {}

  Status Init() { return plans_.Init(); }

  Result<PitrPlan> PreviewPitr(const TenantId& tenant, const PitrTarget& target,
                               const std::vector<std::string>& tables) override {
    if (tenant.empty()) return InvalidArgument("tenant: required");
    TV_ASSIGN_OR_RETURN(store::Point point, Resolve(target));
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_ASSIGN_OR_RETURN(auto scope, ScopeTables(conn, catalog, tables, cfg_.tenant_column));
    if (scope.empty()) return NotFound("no captured table has the tenant column " + cfg_.tenant_column);
    ApplyOptions opt = applies_.Options(tenant, scope, false);
    opt.lock = false;
    opt.stage = true;
    TV_ASSIGN_OR_RETURN(auto applier, Applier::Begin(catalog, opt));
    auto started = std::chrono::steady_clock::now();
    TV_RETURN_IF_ERROR(LoadFromStore(*applier, tenant, point.lsn, scope, [](uint64_t) {}));
    const double loaded_seconds = Seconds(started);
    TV_ASSIGN_OR_RETURN(auto diff, applier->Diff());
    double load_seconds = Seconds(started);
    StoredPlan stored;
    PitrPlan& plan = stored.plan;
    plan.plan_id = NewTimeId("p", SystemClock().Now());
    TV_ASSIGN_OR_RETURN(plan.sampled, plans_.SaveSample(*applier, plan.plan_id, tenant));
    plan.tenant = tenant.str();
    plan.tables = tables;
    plan.target = point;
    plan.ops = diff.ops;
    plan.by_table = diff.by_table;
    plan.created_at = SystemClock().Now();
    plan.estimated_seconds = applies_.Estimate(diff.ops.total(), load_seconds);
    stored.scope = scope;
    stored.digest = diff.digest;
    stored.target_rows = diff.target_rows;
    TV_RETURN_IF_ERROR(plans_.Save(stored));
    plans_.Stage(plan.plan_id, applier->TakeStaged());
    spdlog::info(
        "pitr preview {}: tenant {} to {} ({}): {} inserts, {} updates, {} deletes (load {:.3f}, diff {:.3f}, sample "
        "and plan {:.3f} s)",
        plan.plan_id, tenant.str(), point.lsn.ToString(), point.time.ToIso(), plan.ops.inserts, plan.ops.updates,
        plan.ops.deletes, loaded_seconds, load_seconds - loaded_seconds, Seconds(started) - load_seconds);
    return plan;
  }

  Result<SamplePage> PlanSample(const std::string& plan_id, const std::string& table, uint64_t offset,
                                uint64_t limit) override {
    TV_ASSIGN_OR_RETURN(auto stored, plans_.Load(plan_id));
    return plans_.Sample(stored.plan, table, offset, limit);
  }

  Result<PitrPlan> GetPlan(const std::string& plan_id) override {
    TV_ASSIGN_OR_RETURN(auto stored, plans_.Load(plan_id));
    return stored.plan;
  }

  Result<ApplyResult> ExecutePitr(const std::string& plan_id, const std::string& job_id, const ProgressFn& progress,
                                  const CancelFn& cancelled) override {
    TV_ASSIGN_OR_RETURN(StoredPlan stored, plans_.Load(plan_id));
    const PitrPlan& plan = stored.plan;
    if (!stored.executed_by.empty()) {
      return FailedPrecondition("plan " + plan_id + " was already executed by job " + stored.executed_by +
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
    job.scope = stored.scope;
    job.expected_digest = stored.digest;
    job.expected_rows = stored.target_rows;
    const Lsn lsn = plan.target.lsn;
    std::shared_ptr<const StagedTarget> staged = plans_.Staged(plan_id);
    bool used = false;
    job.load = [this, &job, &staged, &used, lsn](Applier& a, const std::function<void(uint64_t)>& loaded) -> Status {
      used = false;
      if (staged && StoreStillHolds(job.tenant, lsn, job.scope, *staged)) {
        TV_ASSIGN_OR_RETURN(used, a.AddStaged(*staged));
        if (used) {
          spdlog::info("pitr {}: the target ({} rows) comes from the preview's staged target", job.job_id,
                       staged->rows());
          loaded(staged->rows());
          return Status::Ok();
        }
      }
      return LoadFromStore(a, job.tenant, lsn, job.scope, loaded);
    };
    auto result = applies_.Run(job, progress, cancelled);
    if (result.ok()) {
      result->target_staged = used;
      plans_.Unstage(plan_id);
      // A plan runs once: mark it with the job that ran it.
      stored.executed_by = job_id;
      if (Status s = plans_.Save(stored); !s.ok()) {
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
    return applies_.Run(job, progress, cancelled);
  }

  Result<ApplyResult> Rollback(const std::string& snapshot_id, const std::string& job_id, const ProgressFn& progress,
                               const CancelFn& cancelled, const std::string& confirm_reverts) override {
    TV_ASSIGN_OR_RETURN(auto target, snapshots_.LoadRollback(snapshot_id));
    ApplyJob job = RollbackJob(snapshot_id, target);
    job.job_id = job_id;
    job.confirm_reverts = confirm_reverts;
    return applies_.Run(job, progress, cancelled);
  }

  Result<RollbackPreview> PreviewRollback(const std::string& snapshot_id) override {
    TV_ASSIGN_OR_RETURN(auto target, snapshots_.LoadRollback(snapshot_id));
    ApplyJob job = RollbackJob(snapshot_id, target);
    TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
    TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
    TV_RETURN_IF_ERROR(CheckScope(catalog, job.scope));
    ApplyOptions opt = applies_.Options(job.tenant, job.scope, true);
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

  Result<std::vector<SnapshotInfo>> ListSnapshots(const std::optional<std::string>& tenant) override {
    return snapshots_.List(tenant);
  }
  Result<SnapshotInfo> GetSnapshot(const std::string& snapshot_id) override { return snapshots_.Get(snapshot_id); }
  Result<std::vector<std::string>> ExpireSnapshots(CommitTime now) override { return snapshots_.Expire(now); }

  BackupCatalog& backups() override { return *backups_; }
  store::StateReader& store() override { return *store_; }
  const config::Config& config() const override { return cfg_; }

 private:
  // The keyed apply job of a rollback; `target` must outlive it.
  static ApplyJob RollbackJob(const std::string& snapshot_id, const RollbackTarget& target) {
    ApplyJob job;
    job.reason = SnapshotReason::kRollback;
    job.source = snapshot_id;
    job.tenant = target.tenant;
    job.scope = target.scope;
    job.keyed = true;
    job.expected_rows = target.rows;
    job.load = [&target](Applier& a, const std::function<void(uint64_t)>& loaded) {
      uint64_t n = 0;
      for (const auto& [table, kt] : target.tables) {
        TV_RETURN_IF_ERROR(a.AddKeyed(table, kt));
        n += kt.rows.size() + kt.absent.size();
        loaded(n);
      }
      return Status::Ok();
    };
    return job;
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

  // A staged target is used only while the store can still produce it: a
  // tenant shredded (or history expired) since the preview gets from the
  // store what the store now says, never rows kept in memory.
  bool StoreStillHolds(const TenantId& tenant, Lsn lsn, const std::vector<std::string>& scope,
                       const StagedTarget& staged) {
    if (staged.rows() == 0) return true;
    bool any = false;
    Status s = store_->StateAt(tenant, lsn, scope, [&](const store::Row&) {
      any = true;
      return false;  // one row is enough
    });
    return any && s.ok();
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

  config::Config cfg_;
  store::StateReader* store_;
  std::unique_ptr<ArchiveKeyRing> snapshot_keys_;  // the snapshots' and plan samples' per-tenant keys
  std::unique_ptr<BackupCatalog> backups_;
  PlanStore plans_;
  SnapshotStore snapshots_;
  ApplyRunner applies_;
};

}  // namespace

std::string SnapshotIdForJob(std::string_view job_id) {
  std::string id = "s-";
  for (char c : job_id) id.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return id;
}

std::string RollbackPreviewJson(const RollbackPreview& p) {
  return ToJson([&](JsonWriter& w) {
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
  TV_ASSIGN_OR_RETURN(auto backups, BackupCatalog::Open(cfg.replay.backup_dir, cfg.store.key_file,
                                                        static_cast<size_t>(cfg.replay.backup_workers)));
  std::error_code ec;
  fs::create_directories(cfg.replay.snapshot_dir, ec);
  if (ec) return InvalidArgument("replay.snapshot_dir: cannot create " + cfg.replay.snapshot_dir + ": " + ec.message());
  auto engine = std::make_unique<EngineImpl>(cfg, store, std::move(master), std::move(backups));
  TV_RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace timevault::replay
