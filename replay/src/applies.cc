#include "applies.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "json_fields.h"
#include "timevault/core/file.h"

namespace timevault::replay {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Under the apply's locks: a rollback that would revert rows changed since
// the apply it undoes runs only with the digest of exactly those reverts.
Status CheckReverts(Applier& applier, const ApplyJob& job) {
  std::string first;
  TV_ASSIGN_OR_RETURN(auto reverts, applier.FindReverts(1, [&](const std::string& table, std::string change) {
    if (first.empty()) first = table + " " + change;
    return Status::Ok();
  }));
  if (reverts.count == 0) return Status::Ok();
  const std::string what = "rolling back snapshot " + job.source + " would revert " + std::to_string(reverts.count) +
                           " row(s) of tenant " + job.tenant.str() + " changed since its apply (first: " + first + ")";
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

std::optional<double> ReadRate(const std::string& path) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return std::nullopt;
  rapidjson::Document d;
  d.Parse(text->c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("ops_per_second") || !d["ops_per_second"].IsNumber()) {
    return std::nullopt;
  }
  return d["ops_per_second"].GetDouble();
}

}  // namespace

Status CheckScope(const Catalog& catalog, const std::vector<std::string>& scope) {
  for (const auto& t : scope) {
    if (!catalog.tables.count(t)) {
      return FailedPrecondition("table " + t + " is no longer recoverable (dropped, lost its tenant column or key)");
    }
  }
  return Status::Ok();
}

ApplyOptions ApplyRunner::Options(const TenantId& tenant, const std::vector<std::string>& scope, bool keyed) const {
  ApplyOptions opt;
  opt.conninfo = cfg_.postgres.conninfo;
  opt.tenant_column = cfg_.tenant_column;
  opt.tenant = tenant.str();
  opt.tables = scope;
  opt.lock_timeout_ms = cfg_.replay.lock_timeout_ms;
  opt.keyed = keyed;
  return opt;
}

double ApplyRunner::Estimate(uint64_t ops, double preview_seconds) {
  std::lock_guard<std::mutex> lock(rate_mu_);
  double ops_per_second = 5000;  // until measured: a conservative rate for this machine kind
  if (auto rate = ReadRate(StatsPath())) ops_per_second = std::max(1.0, *rate);
  return preview_seconds + static_cast<double>(ops) / ops_per_second;
}

void ApplyRunner::RecordRate(uint64_t ops, double seconds) {
  if (ops < 100 || seconds <= 0) return;  // too small to say anything about the rate
  std::lock_guard<std::mutex> lock(rate_mu_);
  double rate = static_cast<double>(ops) / seconds;
  if (auto before = ReadRate(StatsPath())) rate = 0.7 * *before + 0.3 * rate;  // smoothed over applies
  (void)WriteFileAtomically(StatsPath(), ToJson([&](JsonWriter& w) {
                              w.StartObject();
                              w.Key("ops_per_second");
                              w.Double(rate);
                              w.EndObject();
                            }));
}

Result<ApplyResult> ApplyRunner::Run(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled) {
  constexpr int kApplyAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    auto result = RunOnce(job, progress, cancelled);
    if (result.ok() || attempt == kApplyAttempts || result.status().code() != StatusCode::kAborted ||
        !result.status().message().starts_with(kConcurrentChange)) {
      return result;
    }
    spdlog::warn("{} {}: {}; starting over (attempt {})", SnapshotReasonName(job.reason), job.job_id,
                 result.status().message(), attempt + 1);
  }
}

Result<ApplyResult> ApplyRunner::RunOnce(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled) {
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
  if (snapshots_->Exists(SnapshotIdForJob(job.job_id))) {
    return AlreadyExists("job " + job.job_id + " already saved snapshot " + SnapshotIdForJob(job.job_id) +
                         ": job ids must be unique");
  }
  const auto started = std::chrono::steady_clock::now();
  report("lock", 0.02);
  TV_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(cfg_.postgres.conninfo));
  TV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(conn, cfg_.tenant_column, cfg_.postgres.publication));
  TV_RETURN_IF_ERROR(CheckScope(catalog, job.scope));
  TV_ASSIGN_OR_RETURN(auto applier, Applier::Begin(catalog, Options(job.tenant, job.scope, job.keyed)));
  const double lock_s = Seconds(started);
  report("load", 0.05);
  const double expected = static_cast<double>(std::max<uint64_t>(job.expected_rows, 1));
  TV_RETURN_IF_ERROR(check_cancel("locking"));
  TV_RETURN_IF_ERROR(job.load(
      *applier, [&](uint64_t n) { report("load", 0.05 + 0.45 * std::min(1.0, static_cast<double>(n) / expected)); }));
  TV_RETURN_IF_ERROR(check_cancel("loading the target"));
  const double load_s = Seconds(started);
  report("diff", 0.5);
  TV_ASSIGN_OR_RETURN(auto diff, applier->Diff());
  const double diff_s = Seconds(started);
  TV_RETURN_IF_ERROR(check_cancel("diffing"));
  if (job.expected_digest && *job.expected_digest != diff.digest) {
    return FailedPrecondition("tenant " + job.tenant.str() + " changed since the preview of plan " + job.source +
                              ": its operations are now " + std::to_string(diff.ops.inserts) + " inserts, " +
                              std::to_string(diff.ops.updates) + " updates, " + std::to_string(diff.ops.deletes) +
                              " deletes, not those previewed; nothing was changed — preview again");
  }
  if (job.confirm_reverts) TV_RETURN_IF_ERROR(CheckReverts(*applier, job));
  report("snapshot", 0.6);
  TV_ASSIGN_OR_RETURN(const std::string snapshot_id,
                      snapshots_->Save(*applier, SnapshotOrigin{job.job_id, job.reason, job.source, job.tenant}));
  const double snapshot_s = Seconds(started);
  report("apply", 0.7);
  std::string message = ToJson([&](JsonWriter& w) {
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
  spdlog::info(
      "{} {} for tenant {}: {} inserts, {} updates, {} deletes in {:.2f}s (snapshot {}; lock {:.3f}, load {:.3f}, "
      "diff {:.3f}, snapshot {:.3f}, apply + verify + commit {:.3f} s)",
      SnapshotReasonName(job.reason), job.job_id, job.tenant.str(), diff.ops.inserts, diff.ops.updates,
      diff.ops.deletes, result.seconds, snapshot_id, lock_s, load_s - lock_s, diff_s - load_s, snapshot_s - diff_s,
      result.seconds - snapshot_s);
  return result;
}

}  // namespace timevault::replay
