// The ingest poll loop's merge of the change partitions by LSN
// (consumer/ingest.cc, docs/store.md). Internal to the store; a header of its
// own so that its rules have unit tests (tests/store/change_merge_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "timevault/store/event.h"
#include "timevault/store/store.h"

namespace timevault::store {

// The change partitions' next messages, parsed, merged by LSN. A round
// starts by taking the next message of every partition whose head is empty
// (without waiting); within the round a partition's head is refilled only
// when taken, so an idle partition costs one look per round, not one per
// message. A message without an LSN of its own (tombstone, heartbeat, dead
// letter) takes its predecessor's and keeps its place in its partition.
// Each partition's messages come out in their order.
class ChangeMerge {
 public:
  // The next message of partition i, parsed (nullopt: none ready now).
  using Pop = std::function<std::optional<IngestItem>(size_t partition)>;

  // Starts a round over `partitions` partitions. A new `generation` (the
  // partitions were reassigned) drops the heads taken so far: they were not
  // applied, and their partitions are fetched again from the stored offsets.
  void StartRound(uint64_t generation, size_t partitions, const Pop& pop) {
    if (generation_ != generation || heads_.size() != partitions) {
      generation_ = generation;
      heads_.assign(partitions, Head{});
    }
    ready_ = {};
    for (size_t i = 0; i < heads_.size(); ++i) {
      if (!heads_[i].item) Refill(i, pop);
      if (heads_[i].item) ready_.emplace(heads_[i].order, i);
    }
  }

  // The ready head with the smallest LSN (null: none left in this round);
  // the caller moves it out, then calls Taken.
  IngestItem* Front() { return ready_.empty() ? nullptr : &*heads_[ready_.top().second].item; }
  void Taken(const Pop& pop) {
    const size_t i = ready_.top().second;
    ready_.pop();
    Head& h = heads_[i];
    h.item.reset();
    h.last = h.order;
    Refill(i, pop);
    if (h.item) ready_.emplace(h.order, i);
  }

 private:
  struct Head {
    std::optional<IngestItem> item;
    uint64_t order = 0;  // its LSN
    uint64_t last = 0;   // the LSN of the partition's message before it
  };

  void Refill(size_t i, const Pop& pop) {
    Head& h = heads_[i];
    h.item = pop(i);
    if (!h.item) return;
    const StoreEvent* ev = h.item->event ? &*h.item->event : nullptr;
    h.order =
        ev != nullptr && ev->kind != EventKind::kHeartbeat && ev->change_lsn.valid() ? ev->change_lsn.value() : h.last;
  }

  uint64_t generation_ = UINT64_MAX;
  std::vector<Head> heads_;
  // (LSN, partition) of the heads ready in this round, smallest first.
  std::priority_queue<std::pair<uint64_t, size_t>, std::vector<std::pair<uint64_t, size_t>>, std::greater<>> ready_;
};

}  // namespace timevault::store
