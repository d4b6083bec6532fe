// The ingest pipeline's hand-off (store/src/consumer/applier.h): the polling
// thread runs ahead of the builder, batches are applied in the order
// started with the held-back messages first, and nothing after a failed
// batch is applied (its offsets would skip the failed batch's messages).
#include "consumer/applier.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

namespace timevault::store {
namespace {

using namespace std::chrono_literals;

std::vector<IngestItem> Batch(int64_t first, int64_t count) {
  std::vector<IngestItem> batch;
  for (int64_t o = first; o < first + count; ++o) {
    IngestItem item;
    item.position.topic = "p.public.t";
    item.position.partition = 0;
    item.position.offset = o;
    batch.push_back(std::move(item));
  }
  return batch;
}

// A target that records the offsets of every batch it is given, and whose
// first batch waits for `release`.
struct Recorder {
  std::mutex mu;
  std::vector<std::vector<int64_t>> applied;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool hold_back_last_of_first = false;
  bool fail_first = false;

  Applier::Target Target() {
    return {[this](const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back) {
              bool first = false;
              {
                std::lock_guard lock(mu);
                first = applied.empty();
                applied.emplace_back();
                for (const auto& item : batch) applied.back().push_back(item.position.offset);
              }
              if (!first) return Status::Ok();
              released.wait();
              if (hold_back_last_of_first) held_back->push_back(batch.back());
              if (fail_first) return Internal("disk full");
              return Status::Ok();
            },
            [] { return Status::Ok(); }};
  }
  size_t Count() {
    std::lock_guard lock(mu);
    return applied.size();
  }
};

TEST(Applier, RunsAheadOfTheBuilderAndAppliesInOrderWithHeldBackMessagesFirst) {
  static_assert(Applier::kBuildsAhead == 2, "the test starts two batches before the first is built");
  Recorder rec;
  rec.hold_back_last_of_first = true;
  IngestMetrics metrics;
  Applier applier(rec.Target(), &metrics);

  auto b1 = Batch(0, 3), b2 = Batch(3, 2), b3 = Batch(5, 2);
  ASSERT_TRUE(applier.Start(&b1).ok());
  EXPECT_TRUE(b1.empty());
  // The first batch is still being built: the second is queued, not waited for.
  ASSERT_TRUE(applier.Start(&b2).ok());
  // The third waits until the first is built.
  auto third = std::async(std::launch::async, [&] { return applier.Start(&b3); });
  EXPECT_EQ(third.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(rec.Count(), 1u);
  rec.release.set_value();
  ASSERT_TRUE(third.get().ok());
  ASSERT_TRUE(applier.Wait().ok());

  std::vector<std::vector<int64_t>> want = {{0, 1, 2}, {2, 3, 4}, {5, 6}};
  EXPECT_EQ(rec.applied, want);  // offset 2, held back by the first batch, leads the second
  EXPECT_EQ(metrics.consumed.load(), 7u);
  EXPECT_EQ(metrics.applied_batches.load(), 3u);
}

TEST(Applier, NothingAfterAFailedBatchIsApplied) {
  Recorder rec;
  rec.fail_first = true;
  IngestMetrics metrics;
  Applier applier(rec.Target(), &metrics);

  auto b1 = Batch(0, 3), b2 = Batch(3, 2), b3 = Batch(5, 2);
  ASSERT_TRUE(applier.Start(&b1).ok());
  ASSERT_TRUE(applier.Start(&b2).ok());  // queued behind the batch that will fail
  rec.release.set_value();
  Status st = applier.Start(&b3);  // waits for the first: its error
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("disk full"), std::string::npos) << st.ToString();
  EXPECT_FALSE(applier.Wait().ok());  // the second batch reports the failure too

  ASSERT_EQ(rec.Count(), 1u) << "a batch after the failed one reached the store";
  EXPECT_EQ(metrics.consumed.load(), 0u);
  EXPECT_EQ(metrics.applied_batches.load(), 0u);
  // Still refused later: the messages after the failed batch are consumed
  // again from the stored offsets, never applied past it.
  auto b4 = Batch(7, 1);
  EXPECT_TRUE(applier.Start(&b4).ok());
  EXPECT_FALSE(applier.Wait().ok());
  EXPECT_EQ(rec.Count(), 1u);
}

// Issue #18 item 2: a batch fails after holding back messages (they were
// behind messages of their partition that it did not apply); the store
// reports a failed write once. The revoke callback that runs when the
// consumer closes asks Wait and TakeHeldBack: it must be told of the
// failure again and get nothing to apply (it applied the held-back
// messages, whose partitions' stored offsets then skipped the failed
// batch's messages).
TEST(Applier, AFailedBatchsHeldBackMessagesAreNeverHandedOut) {
  Recorder rec;
  rec.fail_first = true;
  rec.hold_back_last_of_first = true;
  rec.release.set_value();
  IngestMetrics metrics;
  int write_errors = 1;  // the store reports a lost write once, then resets
  Applier::Target target = rec.Target();
  target.wait_applied = [&write_errors] { return write_errors-- > 0 ? Internal("no space left") : Status::Ok(); };
  Applier applier(std::move(target), &metrics);

  auto b1 = Batch(0, 3);
  ASSERT_TRUE(applier.Start(&b1).ok());
  EXPECT_FALSE(applier.Wait().ok());  // the poll loop sees the failure
  Status again = applier.Wait();      // the revoke callback, as the consumer closes
  EXPECT_FALSE(again.ok()) << "the revoke callback took the store for healthy";
  EXPECT_NE(again.message().find("disk full"), std::string::npos) << again.ToString();
  std::vector<IngestItem> to_apply;
  applier.TakeHeldBack(&to_apply);
  EXPECT_TRUE(to_apply.empty()) << "a failed batch's held-back message was handed out to be applied";
  EXPECT_EQ(metrics.consumed.load(), 0u);
}

}  // namespace
}  // namespace timevault::store
