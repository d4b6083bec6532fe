// Jobs: long operations (backups, restores, PITR, rollbacks, DR tests) run by
// a small worker pool. Every record is persisted as JSON under
// <state_dir>/jobs/<id>.json at each state change, so GET /v1/jobs survives a
// restart; jobs queued or running when the process died are marked failed
// ("interrupted") when the runner opens.
//
// Thread-safe. Shutdown() (or the destructor) waits for running jobs; queued
// ones are marked failed "interrupted".
#pragma once

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
};

// Handed to a running job to report its phase and progress (0..1).
class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual const std::string& id() const = 0;
  virtual void Progress(std::string_view phase, double fraction) = 0;
};

// Returns the result as a JSON object, or the error.
using JobFn = std::function<Result<std::string>(JobContext&)>;

class JobRunner {
 public:
  static Result<std::unique_ptr<JobRunner>> Open(const std::string& state_dir, int threads, const Clock& clock);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Queues a job; returns its record (state queued).
  Result<JobRecord> Submit(std::string kind, std::string tenant, std::string actor, JobFn fn);
  std::optional<JobRecord> Get(const std::string& id);
  // Cancels a queued job: it never runs and ends failed ("cancelled by
  // <by> before it started"). FailedPrecondition once it runs or ended (an
  // apply is one Postgres transaction: it commits whole or not at all, and
  // is not interrupted from outside); NotFound for an unknown id.
  Result<JobRecord> Cancel(const std::string& id, const std::string& by);
  // Newest first.
  std::vector<JobRecord> List();
  void Shutdown();

 private:
  JobRunner(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  class Context;
  void Worker();
  void Run(const std::string& id, const JobFn& fn);
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
  std::vector<std::thread> workers_;
};

// The record as the API shows it.
std::string JobJson(const JobRecord& r);

}  // namespace timevault::api
