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

}  // namespace
}  // namespace timevault::api
