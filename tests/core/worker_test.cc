#include "timevault/core/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace timevault {
namespace {

TEST(SerialWorkerTest, RunsTasksOneAtATimeInTheOrderGiven) {
  SerialWorker worker;
  std::vector<int> order;  // touched by the worker thread only, read after the last future
  std::atomic<int> running{0};
  std::atomic<bool> overlapped{false};
  std::vector<std::future<Status>> done;
  for (int i = 0; i < 50; ++i) {
    done.push_back(worker.Submit([&, i] {
      if (running.fetch_add(1) != 0) overlapped = true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      order.push_back(i);
      running.fetch_sub(1);
      return Status::Ok();
    }));
  }
  for (auto& f : done) ASSERT_TRUE(f.get().ok());
  EXPECT_FALSE(overlapped.load());
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(SerialWorkerTest, HandsBackEachTasksStatusAndTakesMoveOnlyTasks) {
  SerialWorker worker;
  auto owned = std::make_unique<int>(7);
  auto ok = worker.Submit([p = std::move(owned)] { return *p == 7 ? Status::Ok() : Internal("lost the value"); });
  auto failed = worker.Submit([] { return Internal("disk full"); });
  EXPECT_TRUE(ok.get().ok());
  Status st = failed.get();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("disk full"), std::string::npos);
}

TEST(SerialWorkerTest, RunsEveryQueuedTaskBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    SerialWorker worker;
    for (int i = 0; i < 20; ++i) {
      worker.Submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ran.fetch_add(1);
        return Status::Ok();
      });
    }
  }
  EXPECT_EQ(ran.load(), 20);
}

TEST(SerialWorkerTest, RunsTasksOnOneThreadThatIsNotTheCallers) {
  SerialWorker worker;
  auto thread_of_a_task = [&worker] {
    std::thread::id id;
    EXPECT_TRUE(worker
                    .Submit([&id] {
                      id = std::this_thread::get_id();
                      return Status::Ok();
                    })
                    .get()
                    .ok());
    return id;
  };
  const std::thread::id first = thread_of_a_task();
  const std::thread::id second = thread_of_a_task();
  EXPECT_EQ(first, second);
  EXPECT_NE(first, std::this_thread::get_id());
}

}  // namespace
}  // namespace timevault
