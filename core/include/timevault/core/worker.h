// SerialWorker: one long-lived thread that runs the tasks given to it, one at
// a time, in the order given. For pipelines that hand every batch to another
// thread: a thread per task (std::async) costs its creation and, worse, a
// fresh allocator thread cache each time, so every batch's memory came from
// and went back to the allocator's shared lists (measured: ~5% of store
// ingest, BENCHMARKS.md "issue #4 round 5").
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "timevault/core/status.h"

namespace timevault {

class SerialWorker {
 public:
  SerialWorker() = default;
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;
  // Runs the tasks still queued, then joins the thread.
  ~SerialWorker() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // Queues `task` (any callable returning Status, move-only ones too); its
  // result arrives through the future. The thread starts with the first task.
  template <class Task>
  std::future<Status> Submit(Task&& task) {
    std::packaged_task<Status()> job(std::forward<Task>(task));
    std::future<Status> result = job.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(job));
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    }
    cv_.notify_one();
    return result;
  }

 private:
  void Run() {
    for (;;) {
      std::packaged_task<Status()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Status()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace timevault
