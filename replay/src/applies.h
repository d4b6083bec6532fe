// Running an apply (docs/replay.md "Diff and apply"): lock, load the
// target, diff, check, save the snapshot, apply, verify, commit — the one
// path PITR, restore and rollback share — and the apply rate it measures
// for the previews' estimates.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "apply.h"
#include "catalog.h"
#include "snapshots.h"
#include "timevault/config/config.h"
#include "timevault/core/types.h"
#include "timevault/replay/engine.h"

namespace timevault::replay {

// What an apply does besides its target: recorded in its snapshot and in
// the change stream's message.
struct ApplyJob {
  SnapshotReason reason = SnapshotReason::kPitr;
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

// FailedPrecondition naming a scope table the catalog no longer has as a
// tenant table.
Status CheckScope(const Catalog& catalog, const std::vector<std::string>& scope);

class ApplyRunner {
 public:
  ApplyRunner(const config::Config& cfg, SnapshotStore* snapshots) : cfg_(cfg), snapshots_(snapshots) {}

  // The Applier's options for this configuration.
  ApplyOptions Options(const TenantId& tenant, const std::vector<std::string>& scope, bool keyed) const;

  // Runs the apply; starts it over (at most three times) when the tenant's
  // rows changed between its lock and its diff (kConcurrentChange: nothing
  // was changed). A PITR then meets its plan's digest again.
  Result<ApplyResult> Run(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled);

  // Seconds for applying `ops` operations after a preview that took
  // `preview_seconds`, from the rate measured by earlier applies.
  double Estimate(uint64_t ops, double preview_seconds);

 private:
  Result<ApplyResult> RunOnce(const ApplyJob& job, const ProgressFn& progress, const CancelFn& cancelled);
  void RecordRate(uint64_t ops, double seconds);
  std::string StatsPath() const { return cfg_.replay.snapshot_dir + "/.apply_rate.json"; }

  const config::Config& cfg_;
  SnapshotStore* snapshots_;
  std::mutex rate_mu_;
};

}  // namespace timevault::replay
