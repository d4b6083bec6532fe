#include "timevault/api/jobs.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "json_util.h"
#include "timevault/core/file.h"
#include "timevault/core/json.h"
#include "timevault/core/log.h"

namespace timevault::api {
namespace fs = std::filesystem;

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
  }
  return "failed";
}

namespace {

std::optional<JobState> ParseState(std::string_view s) {
  for (auto st : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed}) {
    if (JobStateName(st) == s) return st;
  }
  return std::nullopt;
}

std::optional<JobRecord> ParseJob(const std::string& text) {
  rapidjson::Document d;
  if (!json::Parse(text, &d).ok() || !d.IsObject()) return std::nullopt;
  auto str = [&d](const char* k) { return d.HasMember(k) && d[k].IsString() ? std::string(d[k].GetString()) : ""; };
  JobRecord r;
  r.id = str("id");
  r.kind = str("kind");
  r.tenant = str("tenant");
  r.actor = str("actor");
  auto state = ParseState(str("state"));
  if (r.id.empty() || !state) return std::nullopt;
  r.state = *state;
  r.phase = str("phase");
  r.progress = d.HasMember("progress") && d["progress"].IsNumber() ? d["progress"].GetDouble() : 0;
  if (d.HasMember("result") && d["result"].IsObject()) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    d["result"].Accept(w);
    r.result_json.assign(buf.GetString(), buf.GetSize());
  }
  if (d.HasMember("error") && d["error"].IsObject()) {
    const auto& e = d["error"];
    if (e.HasMember("code") && e["code"].IsString()) r.error_code = e["code"].GetString();
    if (e.HasMember("message") && e["message"].IsString()) r.error_message = e["message"].GetString();
  }
  r.created = ReadTime(d, "created_at");
  r.started = ReadTime(d, "started_at");
  r.finished = ReadTime(d, "finished_at");
  r.cancel_requested_by = str("cancel_requested_by");
  return r;
}

}  // namespace

std::string JobJson(const JobRecord& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, r.id);
  w.Key("kind");
  WriteString(w, r.kind);
  w.Key("tenant");
  WriteString(w, r.tenant);
  w.Key("actor");
  WriteString(w, r.actor);
  w.Key("state");
  WriteString(w, JobStateName(r.state));
  w.Key("phase");
  WriteString(w, r.phase);
  w.Key("progress");
  w.Double(r.progress);
  w.Key("result");
  WriteRaw(w, r.result_json);
  w.Key("error");
  if (r.state == JobState::kFailed) {
    w.StartObject();
    w.Key("code");
    WriteString(w, r.error_code);
    w.Key("message");
    WriteString(w, r.error_message);
    w.EndObject();
  } else {
    w.Null();
  }
  WriteTime(w, "created_at", r.created);
  WriteTime(w, "started_at", r.started);
  WriteTime(w, "finished_at", r.finished);
  w.Key("cancel_requested_by");
  WriteOptString(w, r.cancel_requested_by.empty() ? std::nullopt : std::optional<std::string>(r.cancel_requested_by));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

class JobRunner::Context final : public JobContext {
 public:
  Context(JobRunner& runner, std::string id) : runner_(runner), id_(std::move(id)) {}
  const std::string& id() const override { return id_; }
  bool CancelRequested() override {
    std::lock_guard lock(runner_.mu_);
    return !runner_.jobs_[id_].cancel_requested_by.empty();
  }
  void Progress(std::string_view phase, double fraction) override {
    std::lock_guard lock(runner_.mu_);
    auto& r = runner_.jobs_[id_];
    bool phase_changed = r.phase != phase;
    r.phase = std::string(phase);
    r.progress = std::clamp(fraction, 0.0, 1.0);
    if (phase_changed) runner_.PersistLocked(r);  // progress alone stays in memory
  }

 private:
  JobRunner& runner_;
  std::string id_;
};

Result<std::unique_ptr<JobRunner>> JobRunner::Open(const std::string& state_dir, int threads, const Clock& clock) {
  std::unique_ptr<JobRunner> r(new JobRunner(state_dir + "/jobs", clock));
  std::error_code ec;
  fs::create_directories(r->dir_, ec);
  if (ec) return Internal("jobs: cannot create " + r->dir_ + ": " + ec.message());
  TV_RETURN_IF_ERROR(r->LoadExisting());
  for (int i = 0; i < threads; ++i) r->workers_.emplace_back([p = r.get()] { p->Worker(); });
  return r;
}

Status JobRunner::LoadExisting() {
  std::lock_guard lock(mu_);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto job = ParseJob(ss.str());
    if (!job) {
      spdlog::warn("jobs: ignoring unreadable record {}", entry.path().string());
      continue;
    }
    if (job->state == JobState::kQueued || job->state == JobState::kRunning) {
      job->state = JobState::kFailed;
      job->error_code = "Aborted";
      job->error_message = "interrupted: the server stopped while the job was " +
                           std::string(job->phase.empty() ? "queued" : "running (phase " + job->phase + ")");
      job->finished = clock_.Now();
      PersistLocked(*job);
    }
    jobs_[job->id] = *job;
  }
  return Status::Ok();
}

JobRunner::~JobRunner() { Shutdown(); }

void JobRunner::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard lock(mu_);
  for (auto& [id, fn] : queue_) {
    auto& r = jobs_[id];
    r.state = JobState::kFailed;
    r.error_code = "Aborted";
    r.error_message = "interrupted: the server stopped before the job started";
    r.finished = clock_.Now();
    PersistLocked(r);
  }
  queue_.clear();
}

void JobRunner::PersistLocked(const JobRecord& r) {
  const std::string path = dir_ + "/" + r.id + ".json";
  if (Status s = WriteFileAtomically(path, JobJson(r) + "\n"); !s.ok()) {
    spdlog::error("jobs: cannot persist {}: {}", r.id, s.ToString());
  }
}

Result<JobRecord> JobRunner::Submit(std::string kind, std::string tenant, std::string actor, JobFn fn,
                                    bool cancellable_running) {
  JobRecord r;
  r.cancellable_running = cancellable_running;
  r.id = "job-" + RandomHex(8);
  r.kind = std::move(kind);
  r.tenant = std::move(tenant);
  r.actor = std::move(actor);
  r.created = clock_.Now();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Unavailable("the server is stopping; no new jobs");
    jobs_[r.id] = r;
    PersistLocked(r);
    queue_.emplace_back(r.id, std::move(fn));
  }
  cv_.notify_one();
  return r;
}

Result<JobRecord> JobRunner::Cancel(const std::string& id, const std::string& by) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no job with id '" + id + "'");
  auto queued = std::find_if(queue_.begin(), queue_.end(), [&id](const auto& q) { return q.first == id; });
  if (queued == queue_.end()) return CancelRunningLocked(it->second, by);
  queue_.erase(queued);
  JobRecord& r = it->second;
  r.state = JobState::kFailed;
  r.error_code = "Aborted";
  r.error_message = "cancelled by " + by + " before it started";
  r.finished = clock_.Now();
  PersistLocked(r);
  return r;
}

Result<JobRecord> JobRunner::CancelRunningLocked(JobRecord& r, const std::string& by) {
  if (r.state != JobState::kRunning) {
    return FailedPrecondition("job " + r.id + " is " + std::string(JobStateName(r.state)) + ": nothing to cancel");
  }
  if (!r.cancellable_running) {
    return FailedPrecondition("job " + r.id + " (" + r.kind +
                              ") is running and cannot be stopped; only a queued job of this kind can be cancelled");
  }
  // Past the diff an apply saves its snapshot and writes: it runs to its
  // commit (one transaction, whole or not at all). A backup keeps nothing
  // until it seals its archive and a DR test never writes live data, so
  // either stops at any phase before "done".
  const bool writes_live = r.kind != "backup" && r.kind != "dr_test";
  const std::vector<std::string_view> late_phases =
      writes_live ? std::vector<std::string_view>{"snapshot", "apply", "verify", "commit", "done"}
                  : std::vector<std::string_view>{"done"};
  for (std::string_view late : late_phases) {
    if (r.phase == late) {
      return FailedPrecondition("job " + r.id + " is in phase '" + r.phase +
                                "': past the last point where it can stop, it commits whole or not at all");
    }
  }
  if (r.cancel_requested_by.empty()) {
    r.cancel_requested_by = by;
    PersistLocked(r);
  }
  return r;
}

std::optional<JobRecord> JobRunner::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

void JobDurations::Series::Observe(double seconds) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++buckets[i];
  }
  ++count;
  sum += seconds;
}

JobDurations JobRunner::Durations() {
  std::lock_guard lock(mu_);
  return durations_;
}

std::vector<JobRecord> JobRunner::List() {
  std::vector<JobRecord> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, r] : jobs_) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const JobRecord& a, const JobRecord& b) {
    return a.created != b.created ? a.created > b.created : a.id > b.id;
  });
  return out;
}

void JobRunner::Worker() {
  while (true) {
    std::pair<std::string, JobFn> item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Run(item.first, item.second);
  }
}

void JobRunner::Run(const std::string& id, const JobFn& fn) {
  const ScopedLogContext log_job("job", id);  // every log line of the job names it (JSON logs)
  {
    std::lock_guard lock(mu_);
    auto& r = jobs_[id];
    r.state = JobState::kRunning;
    r.started = clock_.Now();
    PersistLocked(r);
  }
  Context ctx(*this, id);
  Result<std::string> out = fn(ctx);
  std::lock_guard lock(mu_);
  auto& r = jobs_[id];
  r.finished = clock_.Now();
  if (out.ok()) {
    r.state = JobState::kSucceeded;
    r.progress = 1;
    r.result_json = IsValidJson(*out) ? *out : "{}";
  } else {
    r.state = JobState::kFailed;
    r.error_code = std::string(StatusCodeName(out.status().code()));
    r.error_message = out.status().message();
    if (!r.cancel_requested_by.empty() && out.status().code() == StatusCode::kAborted) {
      r.error_message = "cancelled by " + r.cancel_requested_by + ": " + r.error_message;
    }
  }
  durations_.by_kind_outcome[{r.kind, std::string(JobStateName(r.state))}].Observe(
      static_cast<double>(r.finished.micros() - r.started.micros()) / 1e6);
  PersistLocked(r);
  spdlog::info("job {} ({} {}): {}", id, r.kind, r.tenant, JobStateName(r.state));
}

}  // namespace timevault::api
