// Disaster-recovery plans: RTO/RPO targets, backup frequencies and retention
// for a tenant (or "*"), stored as one JSON file (<state_dir>/plans.json,
// replaced atomically on every change), and the DR test entry point.
//
// PlanStore is thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/replay/engine.h"

namespace timevault::api {

struct DrTestSummary {
  std::string job_id;
  std::string level;
  bool passed = false;
  std::optional<double> restore_seconds;  // measured (full and deep tests)
  CommitTime finished_at;
};

struct DrPlan {
  std::string id;
  std::string name;
  std::string tenant;  // a tenant, or "*"
  int64_t rto_minutes = 0;
  int64_t rpo_minutes = 0;
  int64_t full_backup_every = 0;  // minutes between full backups
  int64_t incremental_every = 0;  // minutes between incremental backups (0: none)
  int64_t retention_days = 0;     // backups of the tenant older than this are expired
  CommitTime created_at, updated_at;
  // Scheduler bookkeeping.
  CommitTime last_full_at, last_incremental_at;
  std::optional<DrTestSummary> last_test;
};

// Validation limits (minutes / days): a year at most.
inline constexpr int64_t kMaxMinutes = 525600;
inline constexpr int64_t kMaxRetentionDays = 3650;

class PlanStore {
 public:
  // Loads <state_dir>/plans.json if present.
  static Result<std::unique_ptr<PlanStore>> Open(const std::string& state_dir);

  std::vector<DrPlan> List();
  Result<DrPlan> Get(const std::string& id);
  // Assigns id (when empty) and timestamps; AlreadyExists for a taken name.
  Result<DrPlan> Create(DrPlan plan, CommitTime now);
  // Replaces the user fields of plan `id`.
  Result<DrPlan> Update(const std::string& id, const DrPlan& fields, CommitTime now);
  Status Delete(const std::string& id);
  // Changes one plan under the lock (scheduler bookkeeping, test results).
  Status Mutate(const std::string& id, const std::function<void(DrPlan&)>& change);

 private:
  explicit PlanStore(std::string path) : path_(std::move(path)) {}
  Status SaveLocked();

  std::string path_;
  std::mutex mu_;
  std::vector<DrPlan> plans_;
};

std::string PlanJson(const DrPlan& plan);

enum class DrTestLevel { kBasic, kFull, kDeep };
std::optional<DrTestLevel> ParseDrTestLevel(std::string_view s);
std::string_view DrTestLevelName(DrTestLevel level);

// Runs a DR test of `plan` at `level` and returns its report as a JSON object
// (passed, measured restore seconds vs RTO, data age vs RPO, each check with
// its outcome, recommendations); a missing or damaged backup is a failed check
// in the report, not an error (api/src/dr_test.cc, docs/api.md "DR tests").
// `cancelled` is asked at each step and every few thousand rows: once true,
// the test stops with Aborted (its scratch schema rolled back) instead of a
// report.
Result<std::string> RunDrTest(replay::Engine& engine, const DrPlan& plan, DrTestLevel level, const std::string& job_id,
                              const replay::ProgressFn& progress, const replay::CancelFn& cancelled = nullptr);

}  // namespace timevault::api
