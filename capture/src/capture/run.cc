#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "capture/session.h"
#include "timevault/capture/capture.h"

namespace timevault::capture {
namespace {

// Sleeps up to `ms`, waking early when stopped.
void SleepUnlessStopped(int64_t ms, const std::atomic<bool>* stop) {
  for (int64_t slept = 0; slept < ms && !stop->load(); slept += 50) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool Retryable(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kAborted ||
         st.code() == StatusCode::kInternal;
}

}  // namespace

Status Run(const config::Config& config, CaptureMetrics* metrics, const std::atomic<bool>* stop) {
  constexpr int64_t kMinBackoffMs = 500;
  constexpr int64_t kMaxBackoffMs = 30000;
  int64_t backoff = kMinBackoffMs;
  while (!stop->load()) {
    Status st;
    bool streamed = false;
    {
      Session session(config, metrics, stop);
      st = session.Run();
      streamed = session.reached_streaming();
    }
    if (st.ok() || stop->load()) return st.ok() || st.code() == StatusCode::kAborted ? Status::Ok() : st;
    if (!Retryable(st)) return st;
    if (streamed) backoff = kMinBackoffMs;
    metrics->reconnects.fetch_add(1);
    spdlog::warn("capture: {}; retrying in {} ms", st.ToString(), backoff);
    SleepUnlessStopped(backoff, stop);
    backoff = std::min(backoff * 2, kMaxBackoffMs);
  }
  return Status::Ok();
}

}  // namespace timevault::capture
