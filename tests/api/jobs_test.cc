// JobRunner::Cancel: a queued job never runs; a running or finished one is
// not cancelled.
#include "timevault/api/jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "support/process.h"

namespace timevault::api {
namespace {

using namespace std::chrono_literals;

JobState WaitForEnd(JobRunner& jobs, const std::string& id) {
  for (int i = 0; i < 500; ++i) {
    auto j = jobs.Get(id);
    if (j && (j->state == JobState::kSucceeded || j->state == JobState::kFailed)) return j->state;
    std::this_thread::sleep_for(10ms);
  }
  return JobState::kRunning;
}

TEST(Jobs, CancelQueuedJobNeverRunsRunningOneIsRefused) {
  testing::TempDir dir;
  auto jobs = JobRunner::Open(dir.path(), 1, SystemClock());
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false}, second_ran{false};
  auto first = (*jobs)->Submit("backup", "acme", "ops", [&](JobContext&) -> Result<std::string> {
    started = true;
    released.wait();
    return std::string("{}");
  });
  ASSERT_TRUE(first.ok());
  auto second = (*jobs)->Submit("backup", "acme", "ops", [&](JobContext&) -> Result<std::string> {
    second_ran = true;
    return std::string("{}");
  });
  ASSERT_TRUE(second.ok());
  for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(started);  // one worker: the second waits in the queue

  auto running = (*jobs)->Cancel(first->id, "alice");
  EXPECT_EQ(running.status().code(), StatusCode::kFailedPrecondition) << running.status().ToString();
  auto cancelled = (*jobs)->Cancel(second->id, "alice");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_EQ(cancelled->state, JobState::kFailed);
  EXPECT_EQ(cancelled->error_message, "cancelled by alice before it started");
  EXPECT_EQ((*jobs)->Cancel(second->id, "alice").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*jobs)->Cancel("job-nope", "alice").status().code(), StatusCode::kNotFound);

  release.set_value();
  EXPECT_EQ(WaitForEnd(**jobs, first->id), JobState::kSucceeded);
  (*jobs)->Shutdown();
  EXPECT_FALSE(second_ran) << "a cancelled job must never run";
  // The cancellation is persisted: a new runner reads it back.
  auto reopened = JobRunner::Open(dir.path(), 1, SystemClock());
  ASSERT_TRUE(reopened.ok());
  auto again = (*reopened)->Get(second->id);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->state, JobState::kFailed);
  EXPECT_EQ(again->error_message, "cancelled by alice before it started");
}

// A running backup or DR test (cancellable_running) is asked to stop in any
// phase before "done" — also "verify", where an apply is past its last safe
// point; the job sees the request, and its Aborted ends it "cancelled by".
TEST(Jobs, RunningBackupsAndDrTestsAreAskedToStopBeforeDone) {
  testing::TempDir dir;
  auto jobs = JobRunner::Open(dir.path(), 1, SystemClock());
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  for (const std::string kind : {"backup", "dr_test"}) {
    SCOPED_TRACE(kind);
    std::atomic<bool> in_phase{false};
    auto job = (*jobs)->Submit(
        kind, "acme", "ops",
        [&](JobContext& ctx) -> Result<std::string> {
          ctx.Progress("verify", 0.1);
          in_phase = true;
          for (int i = 0; i < 500 && !ctx.CancelRequested(); ++i) std::this_thread::sleep_for(10ms);
          if (ctx.CancelRequested()) return Aborted("cancelled while verifying");
          return std::string("{}");
        },
        /*cancellable_running=*/true);
    ASSERT_TRUE(job.ok());
    for (int i = 0; i < 500 && !in_phase; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(in_phase);
    auto asked = (*jobs)->Cancel(job->id, "alice");
    ASSERT_TRUE(asked.ok()) << asked.status().ToString();
    EXPECT_EQ(asked->state, JobState::kRunning);
    EXPECT_EQ(asked->cancel_requested_by, "alice");
    EXPECT_EQ(WaitForEnd(**jobs, job->id), JobState::kFailed);
    EXPECT_EQ((*jobs)->Get(job->id)->error_message, "cancelled by alice: cancelled while verifying");
  }
  // An apply in "verify" has written: it is not asked to stop.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> verifying{false};
  auto apply = (*jobs)->Submit(
      "restore", "acme", "ops",
      [&](JobContext& ctx) -> Result<std::string> {
        ctx.Progress("verify", 0.9);
        verifying = true;
        released.wait();
        return std::string("{}");
      },
      /*cancellable_running=*/true);
  ASSERT_TRUE(apply.ok());
  for (int i = 0; i < 500 && !verifying; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ((*jobs)->Cancel(apply->id, "alice").status().code(), StatusCode::kFailedPrecondition);
  release.set_value();
  EXPECT_EQ(WaitForEnd(**jobs, apply->id), JobState::kSucceeded);
  (*jobs)->Shutdown();
}

}  // namespace
}  // namespace timevault::api
