// The ingest pipeline's hand-off from the polling thread to the builder
// (consumer/ingest.cc). Internal to the store; a header of its own so that
// its ordering and failure rules have unit tests (tests/store/applier_test.cc).
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "timevault/core/worker.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::store {

// Builds batches on a second thread (Store::ApplyStart) while the polling
// thread fetches and parses (RapidJSON) the next ones; the store writes the
// batch before on a third (Store::ApplyStart pipelines build and write).
// So polling+parsing, building and writing overlap. The polling thread may
// run kBuildsAhead batches ahead of the builder: a poll that waits for the
// broker, or parses more slowly than usual, then does not leave the builder
// without work (with one batch ahead the builder waited for it 10-15% of
// the time, BENCHMARKS.md). Batches are built and land in the order
// started, each one synced WriteBatch with its offsets, so the exactly-once
// argument is unchanged; after a failed batch none of the later ones is
// applied. Used by the polling thread only.
class Applier {
 public:
  static constexpr size_t kBuildsAhead = 2;

  // Where batches go: Store::ApplyStart and Store::WaitApplied (tests give
  // their own).
  struct Target {
    std::function<Status(const std::vector<IngestItem>&, std::vector<IngestItem>*)> apply_start;
    std::function<Status()> wait_applied;
    static Target Of(Store* store) {
      return {[store](const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back) {
                return store->ApplyStart(batch, held_back);
              },
              [store] { return store->WaitApplied(); }};
    }
  };

  Applier(Target target, IngestMetrics* metrics) : target_(std::move(target)), metrics_(metrics) {}
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;
  ~Applier() { (void)Wait(); }

  // Queues the build of `*batch` behind the batches started before (waiting
  // first while kBuildsAhead of them are unfinished). `*batch` is left
  // empty, holding the capacity of a batch already built.
  Status Start(std::vector<IngestItem>* batch) {
    TV_RETURN_IF_ERROR(WaitBuilt(kBuildsAhead - 1));
    auto items = spare_ ? std::move(spare_) : std::make_unique<std::vector<IngestItem>>();
    items->swap(*batch);
    std::vector<IngestItem>* raw = items.get();
    builds_.push_back({std::move(items), builder_.Submit([this, raw] { return Build(raw); })});
    return Status::Ok();
  }

  // Puts the messages the last batch held back (Store::ApplyStart) in front
  // of `batch`: they precede its messages of the same partitions. On the
  // builder thread, or after Wait. After a failed batch it gives nothing and
  // drops them: they follow messages that were not applied (issue #18: the
  // revoke callback applied them, and their partitions' stored offsets
  // jumped past the failed batch's messages).
  void TakeHeldBack(std::vector<IngestItem>* batch) {
    if (!failed_.ok()) held_back_.clear();
    if (held_back_.empty()) return;
    batch->insert(batch->begin(), std::make_move_iterator(held_back_.begin()),
                  std::make_move_iterator(held_back_.end()));
    held_back_.clear();
  }

  // Nothing new was polled: starts a batch of the held-back messages, if
  // any, so that they age (kMaxHeldBackBatches) even when the END never
  // comes. Waits for the batches being built first.
  Status StartHeldBack() {
    TV_RETURN_IF_ERROR(WaitBuilt(0));
    if (held_back_.empty()) return Status::Ok();
    std::vector<IngestItem> none;
    return Start(&none);
  }

  // Waits until every batch started has landed (OK if there is none). The
  // first failure is kept: every later call returns it, also once the store
  // has reported it (a revoke callback after the poll loop saw it must not
  // take the store for healthy).
  Status Wait() {
    Status st = WaitBuilt(0);
    Status landed = target_.wait_applied();
    if (!st.ok() && failed_.ok()) failed_ = st;
    if (!landed.ok() && failed_.ok()) failed_ = landed.WithContext("writing a batch");
    return failed_;
  }
  // The first failed batch's error (OK if none).
  const Status& failed() const { return failed_; }

 private:
  struct Queued {
    std::unique_ptr<std::vector<IngestItem>> items;  // freed by the polling thread, not the builder
    std::future<Status> done;
  };

  // On the builder thread.
  Status Build(std::vector<IngestItem>* items) {
    if (!failed_.ok()) return failed_;  // its messages follow ones that were not applied
    TakeHeldBack(items);
    Status st = target_.apply_start(*items, &held_back_);
    if (!st.ok()) {
      failed_ = st.WithContext("applying a batch of " + std::to_string(items->size()) + " messages");
      return failed_;
    }
    metrics_->consumed.fetch_add(items->size() - held_back_.size());
    metrics_->applied_batches.fetch_add(1);
    return Status::Ok();
  }

  // Waits until at most `left` batches are still being built (their writes
  // may still be in flight); the first error of those waited for.
  Status WaitBuilt(size_t left) {
    Status first;
    while (builds_.size() > left) {
      Status st = builds_.front().done.get();
      if (first.ok()) first = st;
      builds_.front().items->clear();
      spare_ = std::move(builds_.front().items);
      builds_.pop_front();
    }
    return first;
  }

  Target target_;
  IngestMetrics* metrics_;
  std::deque<Queued> builds_;
  std::unique_ptr<std::vector<IngestItem>> spare_;
  // The builder thread's, and the polling thread's once builds_ is empty:
  std::vector<IngestItem> held_back_;  // by the batch built last
  Status failed_;                      // the first failed batch's error
  SerialWorker builder_;               // destroyed first, after ~Applier's Wait
};

}  // namespace timevault::store
