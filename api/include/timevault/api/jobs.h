// Jobs: long operations (backups, restores, PITR, rollbacks, DR tests) run by
// a small worker pool. Every record is persisted as JSON under
// <state_dir>/jobs/<id>.json at each state change, so GET /v1/jobs survives a
// restart; jobs queued or running when the process died are marked failed
// ("interrupted") when the runner opens.
//
// Thread-safe. Shutdown() (or the destructor) waits for running jobs; queued
// ones are marked failed "interrupted".
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::api {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
std::string_view JobStateName(JobState s);

struct JobRecord {
  std::string id;
  std::string kind;    // "backup", "restore", "pitr", "rollback", "dr_test"
  std::string tenant;  // "*" for every tenant
  std::string actor;
  JobState state = JobState::kQueued;
  std::string phase;
  double progress = 0;
  std::string result_json;  // a JSON object once succeeded
  std::string error_code;   // StatusCode name once failed
  std::string error_message;
  CommitTime created, started, finished;  // 0: not yet
  bool cancellable_running = false;       // may be stopped while running (applies, before they write)
  std::string cancel_requested_by;        // a token asked to cancel it while it ran
};

// Handed to a running job to report its phase and progress (0..1).
class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual const std::string& id() const = 0;
  virtual void Progress(std::string_view phase, double fraction) = 0;
  // True once Cancel() was asked for this running job: the job stops at its
  // next safe point (replay::CancelFn), or finishes if it is past them.
  virtual bool CancelRequested() = 0;
};

// How long finished jobs took (started to finished), per kind and outcome
// ("succeeded", "failed"), as a Prometheus histogram (GET /metrics:
// timevault_job_duration_seconds). Counted since the process started.
struct JobDurations {
  static constexpr std::array<double, 12> kBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
  struct Series {
    std::array<uint64_t, kBuckets.size()> buckets{};  // observations <= kBuckets[i] (cumulative)
    uint64_t count = 0;
    double sum = 0;
    void Observe(double seconds);
  };
  std::map<std::pair<std::string, std::string>, Series> by_kind_outcome;  // (kind, outcome)
};

// Returns the result as a JSON object, or the error.
using JobFn = std::function<Result<std::string>(JobContext&)>;

class JobRunner {
 public:
  static Result<std::unique_ptr<JobRunner>> Open(const std::string& state_dir, int threads, const Clock& clock);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Queues a job; returns its record (state queued). `cancellable_running`:
  // the job checks CancelRequested() and may be cancelled while it runs.
  Result<JobRecord> Submit(std::string kind, std::string tenant, std::string actor, JobFn fn,
                           bool cancellable_running = false);
  std::optional<JobRecord> Get(const std::string& id);
  // Cancels a queued job: it never runs and ends failed ("cancelled by
  // <by> before it started"). A running job submitted cancellable (an
  // apply) is asked to stop: the record comes back still running, with
  // cancel_requested_by set; it ends failed ("cancelled by <by> ...") if
  // it reaches its next safe point before the one where it starts writing,
  // else it finishes. FailedPrecondition for a job that ended, a running
  // job that is not cancellable, or one whose phase is past its last safe
  // point (snapshot, apply, verify, commit); NotFound for an unknown id.
  Result<JobRecord> Cancel(const std::string& id, const std::string& by);
  // Newest first.
  std::vector<JobRecord> List();
  // A copy of the duration histograms.
  JobDurations Durations();
  void Shutdown();

 private:
  JobRunner(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  class Context;
  void Worker();
  void Run(const std::string& id, const JobFn& fn);
  Result<JobRecord> CancelRunningLocked(JobRecord& r, const std::string& by);
  // Writes the record of `id` (call with mu_ held).
  void PersistLocked(const JobRecord& r);
  Status LoadExisting();

  std::string dir_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, JobRecord> jobs_;
  std::deque<std::pair<std::string, JobFn>> queue_;
  JobDurations durations_;
  std::vector<std::thread> workers_;
};

// The record as the API shows it.
std::string JobJson(const JobRecord& r);

}  // namespace timevault::api
