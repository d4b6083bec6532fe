// The poll loop's merge of the change partitions (store/src/consumer/
// change_merge.h): changes come out in LSN order across partitions, each
// partition in its own order; a message without an LSN keeps its place; an
// idle partition is asked once per round; a new generation drops the heads.
#include "consumer/change_merge.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

namespace timevault::store {
namespace {

// A change at `lsn` (0: a message without an LSN, as a tombstone) at the
// partition's next offset.
struct Partitions {
  std::vector<std::deque<IngestItem>> queues;
  std::vector<int> pops;  // Pop calls per partition

  explicit Partitions(size_t n) : queues(n), pops(n, 0) {}
  void Add(size_t partition, uint64_t lsn) {
    IngestItem item;
    item.position.topic = "p.public.t";
    item.position.partition = static_cast<int32_t>(partition);
    item.position.offset = static_cast<int64_t>(queues[partition].size()) + offset_base[partition];
    StoreEvent ev;
    ev.kind = lsn == 0 ? EventKind::kTombstone : EventKind::kChange;
    ev.change_lsn = Lsn(lsn);
    item.event = std::move(ev);
    queues[partition].push_back(std::move(item));
  }
  ChangeMerge::Pop Pop() {
    return [this](size_t i) -> std::optional<IngestItem> {
      ++pops[i];
      if (queues[i].empty()) return std::nullopt;
      IngestItem item = std::move(queues[i].front());
      queues[i].pop_front();
      return item;
    };
  }
  std::vector<int64_t> offset_base = std::vector<int64_t>(8, 0);
};

struct Taken {
  int32_t partition;
  int64_t offset;
  uint64_t lsn;
  bool operator==(const Taken&) const = default;
};

// Takes everything the rounds give (at most `round` per round).
std::vector<Taken> Drain(ChangeMerge* merge, Partitions* parts, size_t round = 256, uint64_t generation = 1) {
  std::vector<Taken> out;
  const ChangeMerge::Pop pop = parts->Pop();
  while (true) {
    merge->StartRound(generation, parts->queues.size(), pop);
    size_t n = 0;
    for (; n < round; ++n) {
      IngestItem* item = merge->Front();
      if (item == nullptr) break;
      out.push_back({item->position.partition, item->position.offset, item->event->change_lsn.value()});
      merge->Taken(pop);
    }
    if (n == 0) return out;
  }
}

TEST(ChangeMerge, ChangesComeOutInLsnOrderEachPartitionInItsOrder) {
  Partitions parts(3);
  // Partition 0 far ahead in the queue, as librdkafka's shared queue handed
  // them out: interleaved LSNs across the three partitions.
  for (uint64_t lsn = 100; lsn < 400; lsn += 3) {
    parts.Add(0, lsn);
    parts.Add(1, lsn + 1);
    parts.Add(2, lsn + 2);
  }
  ChangeMerge merge;
  std::vector<Taken> out = Drain(&merge, &parts, 16);
  ASSERT_EQ(out.size(), 300u);
  for (size_t k = 1; k < out.size(); ++k) ASSERT_LT(out[k - 1].lsn, out[k].lsn) << "at " << k;
  std::vector<int64_t> next(3, 0);
  for (const Taken& t : out) EXPECT_EQ(t.offset, next[t.partition]++) << "partition " << t.partition;
}

TEST(ChangeMerge, AMessageWithoutLsnKeepsItsPlaceInItsPartition) {
  Partitions parts(2);
  parts.Add(0, 10);
  parts.Add(0, 0);  // the tombstone after the delete at 10
  parts.Add(0, 30);
  parts.Add(1, 20);
  parts.Add(1, 40);
  ChangeMerge merge;
  std::vector<Taken> out = Drain(&merge, &parts);
  const std::vector<Taken> want = {{0, 0, 10}, {0, 1, 0}, {1, 0, 20}, {0, 2, 30}, {1, 1, 40}};
  EXPECT_EQ(out, want);
}

TEST(ChangeMerge, AnIdlePartitionIsAskedOncePerRound) {
  Partitions parts(3);
  for (uint64_t lsn = 1; lsn <= 100; ++lsn) parts.Add(0, lsn);
  ChangeMerge merge;
  std::vector<Taken> out = Drain(&merge, &parts, 10);
  ASSERT_EQ(out.size(), 100u);
  // 10 rounds of 10 and a last, empty one: partitions 1 and 2 are asked at
  // the start of each round only.
  EXPECT_EQ(parts.pops[1], 11);
  EXPECT_EQ(parts.pops[2], 11);
  EXPECT_EQ(parts.pops[0], 101 + 1);  // each message, the empty look after the last, the last round's
}

TEST(ChangeMerge, ANewGenerationDropsTheHeadsTaken) {
  Partitions parts(2);
  parts.Add(0, 10);
  parts.Add(0, 30);
  parts.Add(1, 20);
  ChangeMerge merge;
  const ChangeMerge::Pop pop = parts.Pop();
  merge.StartRound(1, 2, pop);
  ASSERT_NE(merge.Front(), nullptr);
  EXPECT_EQ(merge.Front()->event->change_lsn.value(), 10u);
  merge.Taken(pop);  // partition 0's head is now 30, partition 1's 20
  // A rebalance: the partitions restart from the stored offsets, so what the
  // queues give next is fetched again; the heads taken before are dropped.
  parts.offset_base = {1, 0, 0, 0, 0, 0, 0, 0};
  parts.Add(0, 30);
  parts.Add(1, 20);
  std::vector<Taken> out = Drain(&merge, &parts, 256, /*generation=*/2);
  const std::vector<Taken> want = {{1, 0, 20}, {0, 1, 30}};
  EXPECT_EQ(out, want);
}

}  // namespace
}  // namespace timevault::store
