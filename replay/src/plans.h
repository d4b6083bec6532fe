// PITR plans on disk (docs/replay.md "Plans"): a preview's plan is a JSON
// file <snapshot_dir>/.plans/<plan id>.json with what the preview showed
// (PitrPlan) and what its execute checks (scope, digest of the operations,
// target rows, the job that ran it), and its row sample, an encrypted
// archive <plan id>.sample next to it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apply.h"
#include "timevault/core/status.h"
#include "timevault/core/types.h"
#include "timevault/replay/archive_keys.h"
#include "timevault/replay/engine.h"

namespace timevault::replay {

// How long after its preview a plan may be executed.
inline constexpr int64_t kPlanLifetimeMicros = 3600LL * 1000000;
// At most this many bytes of staged targets are kept (the oldest go first).
inline constexpr size_t kStagedTargetBytes = 256u << 20;

// A plan as saved: the preview's answer and what the execute checks.
struct StoredPlan {
  PitrPlan plan;
  std::vector<std::string> scope;  // the tables the diff covered
  std::string digest;              // DiffResult::digest of the preview
  uint64_t target_rows = 0;
  std::string executed_by;  // the job that ran it; empty until then
};

class PlanStore {
 public:
  // `dir`: the plans' directory; `keys`: the per-tenant keys the samples
  // are encrypted with (the snapshots').
  PlanStore(std::string dir, ArchiveKeyRing* keys) : dir_(std::move(dir)), keys_(keys) {}

  // Creates the directory.
  Status Init();
  Status Save(const StoredPlan& plan);
  // NotFound for an id no preview made; Corruption for a damaged file.
  Result<StoredPlan> Load(const std::string& plan_id);

  // Saves `applier`'s row sample (kPreviewSampleRows per table) for the plan:
  // row data, so encrypted like snapshots. Returns the changes per table.
  Result<std::map<std::string, uint64_t>> SaveSample(Applier& applier, const std::string& plan_id,
                                                     const TenantId& tenant);
  // A page of the sample of `plan`'s table.
  Result<SamplePage> Sample(const PitrPlan& plan, const std::string& table, uint64_t offset, uint64_t limit);

  // The preview's loaded target, kept in memory (never on disk) for the
  // plan's execute: at most kStagedTargetBytes in all and kPlanLifetimeMicros
  // each; a process that did not preview the plan has none.
  void Stage(const std::string& plan_id, std::shared_ptr<const StagedTarget> target);
  std::shared_ptr<const StagedTarget> Staged(const std::string& plan_id);
  void Unstage(const std::string& plan_id);

 private:
  struct StagedEntry {
    std::shared_ptr<const StagedTarget> target;
    int64_t staged_at = 0;  // micros
    uint64_t order = 0;
  };
  std::string PlanPath(const std::string& id) const { return dir_ + "/" + id + ".json"; }
  std::string SamplePath(const std::string& id) const { return dir_ + "/" + id + ".sample"; }

  std::string dir_;
  ArchiveKeyRing* keys_;
  std::mutex staged_mu_;
  std::map<std::string, StagedEntry> staged_;  // by plan id
  uint64_t staged_order_ = 0;
};

}  // namespace timevault::replay
