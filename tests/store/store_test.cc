// Store engine on a real RocksDB in a temp dir: visibility, the recoverable
// point, idempotence, offsets, TOAST, tenants, truncates, history.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "store/store_test_util.h"

namespace timevault::store::test {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// open

TEST_F(StoreTest, ReopenKeepsDataAndWrongMasterKeyIsRefused) {
  Bootstrap();
  Apply({Change('c', "a", 1, "one", 100, 7), End(7, 110, 1)});
  Reopen();
  EXPECT_EQ(State("a", 110), (std::map<std::string, std::string>{{Key(1), Json("a", 1, "one")}}));
  Close();

  const std::string other = dir_.path() + "/other.key";
  WriteKeyFile(other, 2);
  auto opts = Opts();
  opts.key_file = other;
  auto s = Store::Open(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied) << s.status().ToString();
  EXPECT_THAT(s.status().message(), HasSubstr("not the master key"));

  opts.key_file = dir_.path() + "/missing.key";
  s = Store::Open(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("store.key_file"));
}

TEST_F(StoreTest, BytesOnDiskCountsDataNotYetFlushed) {
  Bootstrap();
  const uint64_t before = store_->Stats().bytes_on_disk;
  EXPECT_GT(before, 0u);  // the manifest, options and write-ahead log exist from the start
  std::vector<IngestItem> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(Change('c', "a", i, std::string(500, 'x'), 100 + i, 7));
  batch.push_back(End(7, 400, 200));
  Apply(batch);
  // Still in the memtable: the write-ahead log holds it, and it is counted.
  EXPECT_GT(store_->Stats().bytes_on_disk, before + 100u * 500u);
}

TEST_F(StoreTest, NothingRecoverableBeforeTheFirstHeartbeat) {
  Apply({Snapshot("a", 1, "one", 50), Change('c', "a", 2, "two", 100, 7), End(7, 110, 1)});
  EXPECT_EQ(store_->RecoverablePoint().status().code(), StatusCode::kNotFound);
  Status s = store_->StateAt(TenantId("a"), Lsn(110), {}, [](const Row&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  Apply({Heartbeat(120, kT0 + 5)});
  EXPECT_EQ(Recoverable(), 120u);
  EXPECT_EQ(State("a", 110).size(), 2u);
  EXPECT_EQ(State("a", 60).size(), 1u);  // the snapshot alone
}

// ---------------------------------------------------------------------------
// visibility

// Two transactions on unrelated rows, committed in the other order than their
// changes: each point shows exactly the transactions committed by then.
TEST_F(StoreTest, InterleavedTransactionsCommitOrderNotChangeOrder) {
  Bootstrap();
  Apply({Change('c', "a", 1, "v1", 100, 10), Change('c', "a", 2, "v1", 105, 11), End(10, 110, 1), End(11, 120, 1)});
  // t12 changes row 1 at 130, t13 changes row 2 at 135 then commits first.
  Apply({Change('u', "a", 1, "t12", 130, 12), Change('u', "a", 2, "t13", 135, 13), Change('c', "a", 3, "t13", 136, 13),
         End(13, 140, 2), Change('u', "a", 1, "t14?", 141, 14)});
  EXPECT_EQ(Recoverable(), 140u);  // t12 has no END yet: it commits later
  Apply({End(12, 150, 1)});
  EXPECT_EQ(Recoverable(), 150u);
  auto at140 = State("a", 140);
  EXPECT_EQ(at140[Key(1)], Json("a", 1, "v1"));  // t12 commits at 150
  EXPECT_EQ(at140[Key(2)], Json("a", 2, "t13"));
  EXPECT_EQ(at140[Key(3)], Json("a", 3, "t13"));
  auto at150 = State("a", 150);
  EXPECT_EQ(at150[Key(1)], Json("a", 1, "t12"));  // row 1's 141 change has no END: invisible
  EXPECT_EQ(State("a", 120).size(), 2u);
  EXPECT_EQ(State("a", 110), (std::map<std::string, std::string>{{Key(1), Json("a", 1, "v1")}}));
}

TEST_F(StoreTest, EndBeforeOrAfterItsEventsInSeparateBatches) {
  Bootstrap();
  // END first, events later (the transaction topic is consumed ahead).
  Apply({End(20, 200, 3, kT0 + 100)});
  EXPECT_EQ(Recoverable(), 10u);
  Apply({Change('c', "a", 1, "x", 190, 20, kT0 + 123)});
  EXPECT_EQ(Recoverable(), 10u);
  Apply({Change('c', "a", 2, "x", 191, 20, kT0 + 123)});
  EXPECT_EQ(Recoverable(), 10u);
  Apply({Change('c', "b", 3, "x", 192, 20, kT0 + 123)});
  EXPECT_EQ(Recoverable(), 200u);
  EXPECT_EQ(store_->RecoverablePoint()->time.micros(), kT0 + 123);  // the events' microsecond time
  EXPECT_EQ(State("a", 200).size(), 2u);

  // Events first, END last, a later transaction complete before it.
  Apply({Change('u', "a", 1, "y", 300, 21)});
  Apply({Change('u', "a", 2, "y", 301, 21)});
  EXPECT_EQ(Recoverable(), 200u);
  Apply({End(21, 310, 3), Change('c', "a", 5, "z", 320, 22), End(22, 330, 1)});
  EXPECT_EQ(Recoverable(), 200u);  // t21 still lacks an event: t22 waits behind it
  Apply({Change('u', "b", 3, "y", 302, 21)});
  EXPECT_EQ(Recoverable(), 330u);
  EXPECT_EQ(State("a", 310)[Key(1)], Json("a", 1, "y"));
  EXPECT_EQ(State("a", 310).count(Key(5)), 0u);
  EXPECT_EQ(State("a", 330).count(Key(5)), 1u);
}

// An incomplete transaction's counters and flags (time still END's
// milliseconds) are kept in memory between batches; after a reopen they are
// read back from `txns`. Either way the count completes it exactly once and
// the first event refines its commit time.
TEST_F(StoreTest, InFlightCountersAndCommitTimeSurviveBatchesAndReopens) {
  Bootstrap();
  Apply({End(20, 200, 3, kT0 + 100)});
  Reopen();
  Apply({Change('c', "a", 1, "x", 190, 20, kT0 + 123)});
  Apply({Change('c', "a", 1, "x", 190, 20, kT0 + 123)});  // a re-sent event (new offset) is not counted
  Reopen();
  Apply({Change('c', "a", 2, "x", 191, 20, kT0 + 123)});
  EXPECT_EQ(Recoverable(), 10u);
  EXPECT_EQ(store_->Stats().duplicates, 1u);
  Apply({Change('c', "b", 3, "x", 192, 20, kT0 + 123)});
  EXPECT_EQ(Recoverable(), 200u);
  EXPECT_EQ(store_->RecoverablePoint()->time.micros(), kT0 + 123);
  auto p = store_->ResolveTime(CommitTime(kT0 + 123));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->lsn.value(), 200u);
  Reopen();
  EXPECT_EQ(Recoverable(), 200u);
  EXPECT_EQ(State("a", 200).size(), 2u);
}

TEST_F(StoreTest, OutOfRangePastTheRecoverablePoint) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 0x1A0, 1, kT0)});
  Status s = store_->StateAt(TenantId("a"), Lsn(0x1A1), {}, [](const Row&) { return true; });
  ASSERT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("point 0/1A1 is past the recoverable point 0/1A0 (time 2026-"));
  s = store_->History(TenantId("a"), Lsn(0), Lsn(0x1A1), {}, {}, [](const HistoryEvent&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(store_->ResolveTime(CommitTime(kT0 + 1)).status().code(), StatusCode::kOutOfRange);
}

// ---------------------------------------------------------------------------
// recoverable point and heartbeats

TEST_F(StoreTest, HeartbeatAdvancesWhileIdleAndWaitsForOffsets) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 110, 1)});
  EXPECT_EQ(Recoverable(), 110u);
  Apply({Heartbeat(500, kT0 + 9'000'000)});  // idle: everything listed is consumed
  EXPECT_EQ(Recoverable(), 500u);
  EXPECT_EQ(store_->RecoverablePoint()->time.micros(), kT0 + 9'000'000);

  // A heartbeat listing offsets not consumed yet (a change and its END) waits for them.
  std::vector<HeartbeatOffset> ahead{{"tv.public.items", 0, next_offset_[{"tv.public.items", 0}]},
                                     {kTxnTopic, 0, next_offset_[{kTxnTopic, 0}]}};
  Apply({Heartbeat(600, kT0 + 10'000'000, ahead)});
  EXPECT_EQ(Recoverable(), 500u);
  Apply({Change('c', "a", 2, "y", 550, 8)});  // the END is still to come
  EXPECT_EQ(Recoverable(), 500u);
  Apply({End(8, 560, 1)});
  EXPECT_EQ(Recoverable(), 600u);

  // A heartbeat must not pass an incomplete transaction below its LSN. As
  // capture writes it, it lists the offset of the transaction's event too
  // (acknowledged before the heartbeat's LSN), here not consumed yet.
  const std::vector<HeartbeatOffset> with_event{{"tv.public.items", 0, next_offset_[{"tv.public.items", 0}]},
                                                {kTxnTopic, 0, next_offset_[{kTxnTopic, 0}]}};
  Apply({End(9, 700, 1), Heartbeat(800, kT0 + 11'000'000, with_event)});
  EXPECT_EQ(Recoverable(), 600u);
  Apply({Change('c', "a", 3, "z", 690, 9)});
  EXPECT_EQ(Recoverable(), 800u);
  EXPECT_TRUE(store_->Gaps().empty());
  Reopen();
  EXPECT_EQ(Recoverable(), 800u);
}

// Issue #18 item 5: a heartbeat whose listed offsets are all consumed while
// a transaction ended below it still lacks an event (dead-lettered): that
// transaction will never complete. Before, the recoverable point stood still
// forever without a word. Now an open gap names the transaction and the
// dead letter, reads after the last point vouched for are refused naming
// it, the point before it stays exact, and a full snapshot closes the gap.
TEST_F(StoreTest, AHeartbeatPastAnIncompleteTransactionsEventsOpensAGapNamingIt) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 110, 1), Heartbeat(120, kT0 + 1'000'000)});
  EXPECT_EQ(Recoverable(), 120u);
  IngestItem bad;  // transaction 8's event, not JSON: dead-lettered
  bad.position = KafkaPosition{"tv.public.items", 0, next_offset_[{"tv.public.items", 0}]++};
  bad.dead_letter_reason = "invalid JSON at offset 1";
  bad.raw = "{not json";
  Apply({bad, End(8, 200, 1), Change('c', "a", 2, "y", 210, 9), End(9, 220, 1)});
  EXPECT_EQ(Recoverable(), 120u);
  EXPECT_TRUE(store_->Gaps().empty());  // no heartbeat past it yet: its event may still come
  Apply({Heartbeat(300, kT0 + 3'000'000), Heartbeat(400, kT0 + 4'000'000)});
  EXPECT_EQ(Recoverable(), 120u);
  auto gaps = store_->Gaps();
  ASSERT_EQ(gaps.size(), 1u);  // one gap, however many heartbeats pass it
  EXPECT_TRUE(gaps[0].open());
  EXPECT_EQ(gaps[0].from.lsn.value(), 120u);
  EXPECT_THAT(gaps[0].cause, HasSubstr("transaction 8 committed at 0/C8"));
  EXPECT_THAT(gaps[0].cause, HasSubstr("will never complete: 0 of 1 event(s) stored"));
  EXPECT_THAT(gaps[0].cause, HasSubstr("tv.public.items[0]@" + std::to_string(bad.position.offset)));
  Status st = store_->StateAt(TenantId("a"), Lsn(220), {}, [](const Row&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(st.message(), HasSubstr("gap #1 (transaction 8"));
  EXPECT_EQ(store_->ResolveTime(CommitTime(kT0 + 3'000'000)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(State("a", 120).size(), 1u);
  Reopen();
  EXPECT_EQ(store_->Gaps().size(), 1u);
  EXPECT_EQ(Recoverable(), 120u);
}

TEST_F(StoreTest, OffsetsRoundTripAndInFlightStateSurvivesReopen) {
  Bootstrap();
  EXPECT_FALSE(store_->NextOffset("tv.public.items", 0)->has_value());
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "a", 2, "x", 101, 7)});
  Apply({End(7, 120, 3)});  // one event still to come
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 0), 2);
  EXPECT_EQ(**store_->NextOffset(kTxnTopic, 0), 1);
  Reopen();
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 0), 2);
  EXPECT_EQ(Recoverable(), 10u);
  Apply({Change('c', "a", 3, "x", 102, 7)});
  EXPECT_EQ(Recoverable(), 120u);
  EXPECT_EQ(State("a", 120).size(), 3u);
}

// Store::ApplyStart with `held_back`: events whose END has not arrived wait
// for the next batch (with the rest of their partition) instead of going
// through `pending`; the partition's stored offset stays at the first one.
TEST_F(StoreTest, HeldBackEventsWaitForTheirEndAndLandLikeTheRest) {
  Bootstrap();
  // t7's two events without their END, then on the same partition an event
  // of t6 whose END is in the batch: it waits behind them (offset order).
  std::vector<IngestItem> first{
      Change('c', "a", 1, "x", 100, 7), Change('c', "a", 2, "x", 101, 7), Change('c', "a", 4, "w", 91, 6),
      At("tv.public.other", 0, RowEvent('c', "b", 9, Json("b", 9, "q"), 90, 6, kT0)), End(6, 95, 2)};
  std::vector<IngestItem> held;
  ASSERT_TRUE(store_->ApplyStart(first, &held).ok());
  ASSERT_TRUE(store_->WaitApplied().ok());
  ASSERT_EQ(held.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(held[i].position.offset, i);
    EXPECT_EQ(held[i].held_back, 1);
  }
  EXPECT_EQ(store_->Stats().events_stored, 1u);              // t6's event on the other partition
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 0), 0);  // consumed again from here if dropped
  EXPECT_EQ(**store_->NextOffset("tv.public.other", 0), 1);
  EXPECT_EQ(Recoverable(), 10u);  // t6 lacks its held event

  std::vector<IngestItem> second = held;
  second.push_back(Change('c', "a", 3, "x", 102, 7));
  second.push_back(End(7, 120, 3));
  held.clear();
  ASSERT_TRUE(store_->ApplyStart(second, &held).ok());
  ASSERT_TRUE(store_->WaitApplied().ok());
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(store_->Stats().events_stored, 5u);
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 0), 4);
  EXPECT_EQ(Recoverable(), 120u);
  EXPECT_EQ(State("a", 95).size(), 1u);
  EXPECT_EQ(State("a", 120).size(), 4u);
  EXPECT_EQ(Hist("a", 0, 120).size(), 4u);
  Close();
  for (const auto& [key, value] : RawDump(true)) EXPECT_NE(key.rfind("pending|", 0), 0u) << key;
}

// Held back at most kMaxHeldBackBatches times: then the event is stored as
// pending (its END may never come in this order), and nothing is lost.
TEST_F(StoreTest, AnEventHeldBackTooOftenIsStoredAsPending) {
  Bootstrap();
  std::vector<IngestItem> batch{Change('c', "a", 1, "x", 100, 7)};
  for (int round = 0; round < kMaxHeldBackBatches; ++round) {
    std::vector<IngestItem> held;
    ASSERT_TRUE(store_->ApplyStart(batch, &held).ok());
    ASSERT_EQ(held.size(), 1u) << round;
    batch = held;
  }
  std::vector<IngestItem> held;
  ASSERT_TRUE(store_->ApplyStart(batch, &held).ok());
  ASSERT_TRUE(store_->WaitApplied().ok());
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 0), 1);
  Apply({End(7, 120, 1)});
  Apply({Heartbeat(130, kT0 + 1)});
  EXPECT_EQ(Recoverable(), 130u);
  EXPECT_EQ(State("a", 120).size(), 1u);
  EXPECT_EQ(store_->Stats().events_stored, 1u);
}

TEST_F(StoreTest, ReappliedBatchChangesNothingAndCountsDuplicates) {
  Bootstrap();
  std::vector<IngestItem> batch{Change('c', "a", 1, "x", 100, 7), Change('u', "a", 1, "y", 101, 7),
                                Change('c', "b", 2, "x", 102, 7), End(7, 110, 3), Heartbeat(120, kT0 + 1)};
  Apply(batch);
  const auto stats = store_->Stats();
  EXPECT_EQ(stats.events_stored, 3u);
  Close();
  const auto before = RawDump(/*skip_meta=*/false);
  Open();
  Apply(batch);  // re-delivered by Kafka: same offsets
  EXPECT_EQ(store_->Stats().duplicates, batch.size());
  // Re-sent by a restarted capture: same events, new offsets.
  std::vector<IngestItem> resent;
  for (auto item : batch) resent.push_back(At(item.position.topic, item.position.partition, *item.event));
  Apply(resent);
  const auto stats2 = store_->Stats();
  EXPECT_EQ(stats2.events_stored, 3u);
  EXPECT_EQ(stats2.duplicates, batch.size() + 4);  // 3 events + the END (the heartbeat is simply old)
  Close();
  auto after = RawDump(/*skip_meta=*/true);
  auto before_data = before;
  std::erase_if(before_data, [](const auto& kv) { return kv.first.starts_with("meta|"); });
  EXPECT_EQ(after, before_data);
  Open();
  EXPECT_EQ(State("a", 110)[Key(1)], Json("a", 1, "y"));
}

TEST_F(StoreTest, DuplicatesWithinOneBatchAroundTheirEnd) {
  Bootstrap();
  StoreEvent c1 = RowEvent('c', "a", 1, Json("a", 1, "x"), 100, 7, kT0);
  StoreEvent c2 = RowEvent('c', "a", 2, Json("a", 2, "x"), 101, 7, kT0);
  // c1 twice before its END (pending), c2 once before and once after it.
  Apply({At("tv.public.items", 0, c1), At("tv.public.items", 0, c1), At("tv.public.items", 0, c2), End(7, 110, 2),
         At("tv.public.items", 0, c2), End(7, 110, 2)});
  const auto stats = store_->Stats();
  EXPECT_EQ(stats.events_stored, 2u);
  EXPECT_EQ(stats.duplicates, 3u);
  EXPECT_EQ(Recoverable(), 110u);
  EXPECT_EQ(Hist("a", 0, 110).size(), 2u);
}

// ---------------------------------------------------------------------------
// rows: snapshot, delete, truncate, key change, tenant move

TEST_F(StoreTest, SnapshotRowsAndATransactionInFlightDuringTheSnapshot) {
  // Snapshot at LSN 1000; transaction 5 changed row 1 at 990 (before the
  // snapshot point) and commits at 1010, after it: it is newer.
  Apply({Snapshot("a", 1, "snap", 1000), Snapshot("a", 2, "snap", 1000), Change('u', "a", 1, "inflight", 990, 5),
         End(5, 1010, 1), Heartbeat(1020, kT0)});
  EXPECT_EQ(Recoverable(), 1020u);
  EXPECT_EQ(State("a", 1000)[Key(1)], Json("a", 1, "snap"));
  EXPECT_EQ(State("a", 1010)[Key(1)], Json("a", 1, "inflight"));
  EXPECT_EQ(State("a", 1010)[Key(2)], Json("a", 2, "snap"));
  EXPECT_EQ(Hist("a", 0, 1020).size(), 3u);
}

TEST_F(StoreTest, DeletesTombstonesAndDeletesWithoutTenant) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "a", 2, "x", 101, 7), End(7, 110, 2)});
  StoreEvent tomb;
  tomb.kind = EventKind::kTombstone;
  // Row 2's delete carries no tenant (REPLICA IDENTITY DEFAULT, tenant not in the key).
  StoreEvent del2 = RowEvent('d', "", 2, "{\"id\":2,\"tenant_id\":\"\"}", 121, 8, kT0);
  Apply({Change('d', "a", 1, "x", 120, 8), At("tv.public.items", 0, tomb), At("tv.public.items", 0, del2),
         End(8, 130, 2)});
  EXPECT_EQ(State("a", 110).size(), 2u);
  EXPECT_TRUE(State("a", 130).empty());
  EXPECT_TRUE(State("", 130).empty());
  auto h = Hist("a", 110, 130);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].op, 'd');
  EXPECT_EQ(h[1].pk, Pk(2));
  // Re-created later.
  Apply({Change('c', "a", 1, "again", 140, 9), End(9, 150, 1)});
  EXPECT_EQ(State("a", 150).size(), 1u);
}

TEST_F(StoreTest, TruncateHidesOlderRowsOfEveryTenant) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "b", 2, "x", 101, 7), End(7, 110, 2)});
  StoreEvent t;
  t.kind = EventKind::kChange;
  t.op = 't';
  t.table = kTable;
  t.envelope = "{\"op\":\"t\"}";
  t.change_lsn = Lsn(120);
  t.xid = 8;
  t.commit_time = CommitTime(kT0);
  Apply({At("tv.public.items", 0, t), Change('c', "a", 3, "after", 121, 8)});
  EXPECT_EQ(Recoverable(), 110u);
  Apply({End(8, 130, 2)});
  EXPECT_EQ(State("a", 110).size(), 1u);
  EXPECT_EQ(State("a", 130), (std::map<std::string, std::string>{{Key(3), Json("a", 3, "after")}}));
  EXPECT_TRUE(State("b", 130).empty());
  EXPECT_EQ(State("b", 110).size(), 1u);
  auto hb = Hist("b", 110, 130);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].op, 't');
  EXPECT_EQ(Hist("", 110, 130).size(), 1u);  // the store-wide history
  Apply({Change('c', "b", 2, "new", 140, 9), End(9, 150, 1)});
  EXPECT_EQ(State("b", 150).size(), 1u);
}

// Tenants(point): the tenants with a row live at the point, sorted, the
// store-wide "" among them; not those whose rows are deleted, uncommitted,
// truncated away or shredded.
TEST_F(StoreTest, TenantsListsThoseWithLiveRowsAtThePoint) {
  Bootstrap();
  auto ids = [&](uint64_t lsn) {
    auto t = store_->Tenants(Lsn(lsn));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    std::vector<std::string> out;
    if (t.ok()) {
      for (const auto& id : *t) out.push_back(id.str());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(10), V{});
  Apply({Change('c', "b", 1, "x", 100, 7), Change('c', "a", 2, "x", 101, 7), Change('c', "", 3, "x", 102, 7),
         Change('c', "c", 4, "x", 103, 7), Change('c', "d", 5, "x", 104, 7), End(7, 110, 5)});
  Apply({Change('d', "c", 4, "x", 120, 8), End(8, 130, 1), Change('c', "e", 6, "x", 140, 9)});
  EXPECT_EQ(ids(10), V{});
  EXPECT_EQ(ids(110), (V{"", "a", "b", "c", "d"}));
  EXPECT_EQ(ids(130), (V{"", "a", "b", "d"}));  // c's only row is deleted; e's transaction has no END
  EXPECT_EQ(store_->Tenants(Lsn(150)).status().code(), StatusCode::kOutOfRange);
  Apply({End(9, 150, 1)});
  EXPECT_EQ(ids(150), (V{"", "a", "b", "d", "e"}));
  ASSERT_TRUE(store_->ShredTenant(TenantId("d")).ok());
  EXPECT_EQ(ids(150), (V{"", "a", "b", "e"}));
  StoreEvent t;
  t.kind = EventKind::kChange;
  t.op = 't';
  t.table = kTable;
  t.envelope = "{\"op\":\"t\"}";
  t.change_lsn = Lsn(160);
  t.xid = 10;
  t.commit_time = CommitTime(kT0);
  Apply({At("tv.public.items", 0, t), End(10, 170, 1)});
  EXPECT_EQ(ids(170), V{});
  EXPECT_EQ(ids(150), (V{"", "a", "b", "e"}));

  MemoryStateReader m;
  m.Put(TenantId("y"), Point{Lsn(10), CommitTime(100)}, "t", "{\"id\":1}", "{}");
  m.Put(TenantId("x"), Point{Lsn(20), CommitTime(200)}, "t", "{\"id\":2}", "{}");
  m.Put(TenantId("y"), Point{Lsn(30), CommitTime(300)}, "t", "{\"id\":1}", "");
  auto mem = [&](uint64_t lsn) {
    V out;
    auto t = m.Tenants(Lsn(lsn));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) {
      for (const auto& id : *t) out.push_back(id.str());
    }
    return out;
  };
  EXPECT_EQ(mem(10), V{"y"});
  EXPECT_EQ(mem(20), (V{"x", "y"}));
  EXPECT_EQ(mem(30), V{"x"});
  EXPECT_EQ(m.Tenants(Lsn(31)).status().code(), StatusCode::kOutOfRange);
}

TEST_F(StoreTest, PrimaryKeyChangeAndTenantMove) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 110, 1)});
  // Key change 1 -> 9: delete and create at the same LSN.
  Apply({Change('d', "a", 1, "x", 120, 8), Change('c', "a", 9, "x", 120, 8), End(8, 130, 2)});
  EXPECT_EQ(State("a", 130), (std::map<std::string, std::string>{{Key(9), Json("a", 9, "x")}}));
  // Row 9 moves to tenant b.
  Apply({Change('u', "b", 9, "moved", 140, 9), End(9, 150, 1)});
  EXPECT_TRUE(State("a", 150).empty());
  EXPECT_EQ(State("b", 150), (std::map<std::string, std::string>{{Key(9), Json("b", 9, "moved")}}));
  EXPECT_EQ(State("a", 130).size(), 1u);
  auto ha = Hist("a", 130, 150);
  ASSERT_EQ(ha.size(), 1u);
  EXPECT_EQ(ha[0].op, 'd');
  auto hb = Hist("b", 0, 150);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].op, 'c');
  EXPECT_THAT(hb[0].envelope, HasSubstr("\"before\":null"));  // tenant a's image never reaches b
  EXPECT_THAT(hb[0].envelope, HasSubstr("\"op\":\"c\""));
  // A delete without tenant finds the row under b.
  Apply({At("tv.public.items", 0, RowEvent('d', "", 9, "{\"id\":9}", 160, 10, kT0)), End(10, 170, 1)});
  EXPECT_TRUE(State("b", 170).empty());
}

// Capture partitions a delete without tenant by key and a moved row by its
// new tenant: a row's events can arrive in any order across partitions.
TEST_F(StoreTest, DeleteWithoutTenantArrivingBeforeTheRowItDeletes) {
  Bootstrap();
  StoreEvent del = RowEvent('d', "", 1, "{\"id\":1,\"tenant_id\":\"\"}", 200, 8, kT0);
  Apply({End(7, 110, 1), End(8, 210, 1), At("tv.public.items", 5, del)});
  Apply({Change('c', "a", 1, "x", 100, 7)});
  EXPECT_EQ(Recoverable(), 210u);
  EXPECT_EQ(State("a", 110).size(), 1u);
  EXPECT_TRUE(State("a", 210).empty());
  auto h = Hist("a", 0, 210);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].op, 'd');
  EXPECT_EQ(h[1].envelope, del.envelope) << "the delete as it came, source and all";
}

TEST_F(StoreTest, RowEventsOfSeveralTenantsInAnyArrivalOrder) {
  Bootstrap();
  // a creates row 1 (100), it is deleted without tenant (200), b creates it
  // again (300), then it moves to c (400). Every arrival order gives the same states.
  auto events = [&] {
    return std::vector<IngestItem>{Change('c', "a", 1, "a", 100, 7),
                                   At("tv.public.items", 5, RowEvent('d', "", 1, "{\"id\":1}", 200, 8, kT0)),
                                   At("tv.public.items", 1, RowEvent('c', "b", 1, Json("b", 1, "b"), 300, 9, kT0)),
                                   At("tv.public.items", 2, RowEvent('u', "c", 1, Json("c", 1, "c"), 400, 10, kT0))};
  };
  std::vector<int> order{0, 1, 2, 3};
  do {
    Close();
    std::filesystem::remove_all(path_);
    next_offset_.clear();
    Open();
    Bootstrap();
    auto ev = events();
    Apply({End(7, 110, 1), End(8, 210, 1), End(9, 310, 1), End(10, 410, 1)});
    for (int i : order) Apply({ev[static_cast<size_t>(i)]});
    ASSERT_EQ(Recoverable(), 410u);
    auto count = [&](const std::string& t, uint64_t l) { return State(t, l).size(); };
    const std::string o =
        std::to_string(order[0]) + std::to_string(order[1]) + std::to_string(order[2]) + std::to_string(order[3]);
    EXPECT_EQ(count("a", 110), 1u) << o;
    EXPECT_EQ(count("a", 210), 0u) << o;
    EXPECT_EQ(count("b", 210), 0u) << o;
    EXPECT_EQ(count("b", 310), 1u) << o;
    EXPECT_EQ(count("a", 410), 0u) << o;
    EXPECT_EQ(count("b", 410), 0u) << o;
    EXPECT_EQ(count("c", 410), 1u) << o;
    EXPECT_EQ(count("c", 310), 0u) << o;
    // History: whichever came first, a's row ends with the delete and b's
    // with the move to c, each an envelope with its event's source.
    bool a_deleted = false, b_moved = false;
    for (const std::string& t : {std::string("a"), std::string("b"), std::string("c")}) {
      for (const HistoryEvent& e : Hist(t, 0, 410)) {
        EXPECT_NE(e.envelope.find("\"source\":{\"lsn\":" + std::to_string(e.change_lsn.value())), std::string::npos)
            << o << " " << t << ": " << e.envelope;
        if (t == "a" && e.change_lsn == Lsn(200)) {
          a_deleted = e.op == 'd' && e.envelope == ev[1].event->envelope;
        }
        if (t == "b" && e.change_lsn == Lsn(400)) {
          b_moved =
              e.op == 'd' && e.envelope == R"({"before":null,"after":null,"source":{"lsn":400,"txId":10},"op":"d"})";
        }
      }
    }
    EXPECT_TRUE(a_deleted) << o;
    EXPECT_TRUE(b_moved) << o;
  } while (std::next_permutation(order.begin(), order.end()));
}

// A transaction in flight when the snapshot was taken (changes below the
// snapshot's LSN, commit above it) comes after the snapshot rows: its
// deletes without tenant and its moves end the snapshot owner's rows, in
// every arrival order (each event on its own partition, so that any order
// is a valid delivery).
TEST_F(StoreTest, ATransactionInFlightAtTheSnapshotEndsTheSnapshotOwnersRows) {
  auto rows = [&] {
    return std::vector<std::vector<IngestItem>>{
        {Snapshot("a", 1, "snap", 1000), At("tv.public.items", 5, RowEvent('d', "", 1, "{\"id\":1}", 990, 5, kT0))},
        {Snapshot("a", 2, "snap", 1000),
         At("tv.public.items", 1, RowEvent('u', "b", 2, Json("b", 2, "moved"), 991, 5, kT0))},
        {Snapshot("a", 3, "snap", 1000),
         At("tv.public.items", 3, RowEvent('u', "a", 3, Json("a", 3, "updated"), 992, 5, kT0)),
         At("tv.public.items", 5, RowEvent('d', "", 3, "{\"id\":3}", 995, 5, kT0))}};
  };
  for (int first = 0; first < 2; ++first) {
    std::vector<int> order3{0, 1, 2};
    do {
      const std::string o = std::to_string(first) + "/" + std::to_string(order3[0]) + std::to_string(order3[1]) +
                            std::to_string(order3[2]);
      SCOPED_TRACE("order " + o);
      Close();
      std::filesystem::remove_all(path_);
      next_offset_.clear();
      Open();
      auto r = rows();
      Apply({End(5, 1010, 4)});
      for (int row = 0; row < 2; ++row) {
        Apply({r[row][first]});
        Apply({r[row][1 - first]});
      }
      for (int i : order3) Apply({r[2][static_cast<size_t>(i)]});
      Apply({Heartbeat(1020, kT0)});
      ASSERT_EQ(Recoverable(), 1020u);
      EXPECT_EQ(State("a", 1000),
                (std::map<std::string, std::string>{
                    {Key(1), Json("a", 1, "snap")}, {Key(2), Json("a", 2, "snap")}, {Key(3), Json("a", 3, "snap")}}));
      EXPECT_TRUE(State("b", 1000).empty());
      EXPECT_TRUE(State("a", 1010).empty());
      EXPECT_EQ(State("b", 1010), (std::map<std::string, std::string>{{Key(2), Json("b", 2, "moved")}}));
      // a's history: the three snapshot rows, then the transaction's end of each.
      auto h = Hist("a", 0, 1020);
      std::string ops;
      for (const auto& e : h) ops += e.op;
      EXPECT_EQ(ops.substr(0, 3), "rrr");
      EXPECT_EQ(std::count(ops.begin(), ops.end(), 'd'), 3) << ops;
    } while (std::next_permutation(order3.begin(), order3.end()));
  }
}

// A store that joined its consumer group late meets capture's first
// snapshot and, after a lost slot, its second one in one batch: the history
// the first vouched for ends at it, and the interval up to the second is a
// gap (it was recorded only when the markers came in separate batches).
TEST_F(StoreTest, TwoSnapshotMarkersInOneBatchStillRecordTheGap) {
  auto marker = [&](uint64_t lsn, bool gap) {
    IngestItem item = Heartbeat(lsn, kT0 + static_cast<int64_t>(lsn));
    item.event->snapshot_image = true;
    item.event->snapshot_gap = gap;
    item.event->snapshot_tables = {kTable};
    item.event->snapshot_cause = gap ? "replication slot 's' is missing" : "snapshot on new slot s";
    return item;
  };
  std::vector<IngestItem> batch;
  batch.push_back(Snapshot("a", 1, "first", 100));
  batch.push_back(Snapshot("a", 2, "first", 100));
  batch.push_back(marker(100, false));
  batch.push_back(Snapshot("a", 2, "second", 500));
  batch.push_back(marker(500, true));
  Apply(batch);
  auto gaps = store_->Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].from.lsn.value(), 100u);
  EXPECT_EQ(gaps[0].to.lsn.value(), 500u);
  EXPECT_NE(gaps[0].cause.find("is missing"), std::string::npos) << gaps[0].cause;
  ASSERT_EQ(Recoverable(), 500u);
  EXPECT_EQ(State("a", 100),
            (std::map<std::string, std::string>{{Key(1), Json("a", 1, "first")}, {Key(2), Json("a", 2, "first")}}));
  EXPECT_EQ(State("a", 500), (std::map<std::string, std::string>{{Key(2), Json("a", 2, "second")}}));
}

// ---------------------------------------------------------------------------
// TOAST (invariant 5)

TEST_F(StoreTest, ToastResolvedAcrossManyUpdatesNeverThePlaceholder) {
  Bootstrap();
  const std::string body(3000, 'q');
  auto row = [&](int n, const std::string& b) {
    return "{\"id\":1,\"tenant_id\":\"a\",\"n\":" + std::to_string(n) + ",\"body\":\"" + b +
           "\",\"tags\":" + (b == body ? "[\"t\"]" : "[\"__debezium_unavailable_value\"]") + "}";
  };
  Apply({At("tv.public.items", 0, RowEvent('c', "a", 1, row(0, body), 100, 7, kT0)), End(7, 101, 1)});
  uint64_t lsn = 200;
  for (int n = 1; n <= 30; ++n) {
    std::vector<IngestItem> batch;
    // Two updates in one transaction every third time, each in its own batch otherwise.
    const int updates = n % 3 == 0 ? 2 : 1;
    for (int u = 0; u < updates; ++u) {
      StoreEvent e = RowEvent('u', "a", 1, row(n * 10 + u, "__debezium_unavailable_value"), lsn + u, 100 + n, kT0);
      e.unavailable_columns = {"body", "tags"};
      batch.push_back(At("tv.public.items", 0, std::move(e)));
    }
    batch.push_back(End(100 + n, lsn + 10, updates));
    Apply(batch);
    lsn += 100;
  }
  for (uint64_t point = 101; point <= Recoverable(); point += 50) {
    auto state = State("a", point);
    ASSERT_EQ(state.size(), 1u);
    EXPECT_EQ(state[Key(1)].find("__debezium_unavailable_value"), std::string::npos) << point;
    EXPECT_NE(state[Key(1)].find(body), std::string::npos) << point;
    EXPECT_NE(state[Key(1)].find("\"tags\":[\"t\"]"), std::string::npos) << point;
  }
  auto history = Hist("a", 0, Recoverable());
  EXPECT_EQ(history.size(), 41u);
  for (const auto& e : history) EXPECT_EQ(e.envelope.find("__debezium_unavailable_value"), std::string::npos);
  EXPECT_EQ(store_->Stats().toast_unresolved, 0u);
}

// Issue #18 item 6: an unchanged TOAST column whose row has no earlier
// version in the store. Before, the column was dropped from the row image and
// replay wrote NULL for it. Now the version is stored incomplete: reads of
// it are refused naming the table, the key and the column, until an update
// that sets the column; an update that leaves it unchanged stays incomplete.
TEST_F(StoreTest, ToastWithoutPreviousVersionIsRefusedNamingTheColumnNeverServedWithout) {
  Bootstrap();
  auto update = [&](const std::string& body, uint64_t lsn, int64_t xid) {
    StoreEvent e = RowEvent(
        'u', "a", 1, "{\"id\":1,\"tenant_id\":\"a\",\"n\":" + std::to_string(xid) + ",\"body\":\"" + body + "\"}", lsn,
        xid, kT0);
    if (body == "__debezium_unavailable_value") e.unavailable_columns = {"body"};
    return At("tv.public.items", 0, std::move(e));
  };
  Apply({update("__debezium_unavailable_value", 100, 7), End(7, 110, 1)});
  EXPECT_EQ(store_->Stats().toast_unresolved, 1u);
  auto refused = [&](uint64_t point) {
    return store_->StateAt(TenantId("a"), Lsn(point), {}, [](const Row&) { return true; });
  };
  Status st = refused(110);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("row " + Pk(1) + " of public.items"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("column(s) \"body\" is unknown"), std::string::npos) << st.ToString();
  // Still unchanged: still unknown (the placeholder is not a value to carry).
  Apply({update("__debezium_unavailable_value", 200, 8), End(8, 210, 1)});
  EXPECT_EQ(refused(210).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Stats().toast_unresolved, 2u);
  // An update that sets it: the row is whole again from there.
  Apply({update("new body", 300, 9), End(9, 310, 1)});
  EXPECT_EQ(State("a", 310)[Key(1)], "{\"id\":1,\"tenant_id\":\"a\",\"n\":9,\"body\":\"new body\"}");
  EXPECT_EQ(refused(210).code(), StatusCode::kFailedPrecondition);
  // The history never carries the placeholder either.
  for (const auto& e : Hist("a", 0, 310)) EXPECT_EQ(e.envelope.find("__debezium_unavailable_value"), std::string::npos);
}

// An unchanged-TOAST column is never in the fidelity texts of the update
// (capture has no value to take a text from): its text, like its value,
// comes from the previous version; the update's own texts stay.
TEST_F(StoreTest, ToastResolutionCarriesThePreviousVersionsFidelityText) {
  Bootstrap();
  const std::string big(3000, 'x');
  const std::string first = "{\"id\":1,\"tenant_id\":\"a\",\"h\":null,\"d\":0,\"body\":\"" + big +
                            "\",\"\":{\"h\":\"\\\"k\\\"=>\\\"" + big + "\\\"\",\"d\":\"1 mon\"}}";
  Apply({At("tv.public.items", 0, RowEvent('c', "a", 1, first, 100, 7, kT0)), End(7, 110, 1)});
  StoreEvent u = RowEvent('u', "a", 1,
                          "{\"id\":1,\"tenant_id\":\"a\",\"h\":\"__debezium_unavailable_value\",\"d\":86400000000,"
                          "\"body\":\"__debezium_unavailable_value\",\"\":{\"d\":\"1 day\"}}",
                          200, 8, kT0 + 10);
  u.unavailable_columns = {"h", "body"};
  Apply({At("tv.public.items", 0, u), End(8, 210, 1)});
  const std::string want = "{\"id\":1,\"tenant_id\":\"a\",\"h\":null,\"d\":86400000000,\"body\":\"" + big +
                           "\",\"\":{\"d\":\"1 day\",\"h\":\"\\\"k\\\"=>\\\"" + big + "\\\"\"}}";
  EXPECT_EQ(State("a", 210)[Key(1)], want);
  EXPECT_EQ(State("a", 110)[Key(1)], first);
  auto history = Hist("a", 110, 210);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_NE(history[0].envelope.find("\"after\":" + want), std::string::npos) << history[0].envelope;
  // Without texts in the update, the resolved column's text is the member.
  StoreEvent v = RowEvent('u', "a", 1,
                          "{\"id\":1,\"tenant_id\":\"a\",\"h\":\"__debezium_unavailable_value\",\"d\":5,"
                          "\"body\":\"y\"}",
                          300, 9, kT0 + 20);
  v.unavailable_columns = {"h"};
  Apply({At("tv.public.items", 0, v), End(9, 310, 1)});
  EXPECT_EQ(State("a", 310)[Key(1)],
            "{\"id\":1,\"tenant_id\":\"a\",\"h\":null,\"d\":5,\"body\":\"y\",\"\":{\"h\":\"\\\"k\\\"=>\\\"" + big +
                "\\\"\"}}");
  EXPECT_EQ(store_->Stats().toast_unresolved, 0u);
}

// ---------------------------------------------------------------------------
// time and history

TEST_F(StoreTest, ResolveTimeTakesTheNewestCommitEvenWhenTimesStepBack) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7, kT0 + 1000), End(7, 110, 1), Change('c', "a", 2, "x", 120, 8, kT0 + 3000),
         End(8, 130, 1), Change('c', "a", 3, "x", 140, 9, kT0 + 2500), End(9, 150, 1),  // commit time steps back
         Change('c', "a", 4, "x", 160, 10, kT0 + 5000), End(10, 170, 1)});
  auto at = [&](int64_t t) {
    auto p = store_->ResolveTime(CommitTime(t));
    return p.ok() ? p->lsn.value() : 0;
  };
  EXPECT_EQ(at(kT0 + 1000), 110u);
  EXPECT_EQ(at(kT0 + 2499), 110u);
  EXPECT_EQ(at(kT0 + 2500), 150u);  // the last transaction with commit time <= t
  EXPECT_EQ(at(kT0 + 3000), 150u);
  EXPECT_EQ(at(kT0 + 4999), 150u);
  EXPECT_EQ(at(kT0 + 5000), 170u);
  EXPECT_EQ(store_->ResolveTime(CommitTime(kT0 + 5001)).status().code(), StatusCode::kOutOfRange);
  // Before the first commit: the first recoverable point (the bootstrap heartbeat).
  EXPECT_EQ(at(kT0 - 1'000'000), 10u);
  // Before it: refused, naming where the store's coverage starts (issue #18 item 9).
  auto before = store_->ResolveTime(CommitTime(kT0 - 2'000'000));
  EXPECT_EQ(before.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(before.status().message().find("before the store's coverage, which starts at 0/A"), std::string::npos)
      << before.status().ToString();
}

TEST_F(StoreTest, HistoryInCommitOrderWithFilters) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "a", 2, "x", 105, 8), End(8, 110, 1), End(7, 120, 1),
         Change('u', "a", 1, "y", 130, 9), Change('c', "b", 3, "x", 131, 9), End(9, 140, 2)});
  auto h = Hist("a", 0, 140);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].pk, Pk(2));
  EXPECT_EQ(h[0].commit_lsn.value(), 110u);
  EXPECT_EQ(h[1].pk, Pk(1));
  EXPECT_EQ(h[1].change_lsn.value(), 100u);
  EXPECT_EQ(h[2].op, 'u');
  EXPECT_THAT(h[2].envelope, HasSubstr("\"name\":\"y\""));
  EXPECT_EQ(Hist("a", 110, 140).size(), 2u);
  EXPECT_EQ(Hist("a", 0, 140, std::string(kTable), Pk(1)).size(), 2u);
  EXPECT_EQ(Hist("a", 0, 140, std::string("public.other")).size(), 0u);
  EXPECT_EQ(Hist("b", 0, 140).size(), 1u);
}

TEST_F(StoreTest, MessagesAreStoreWideHistoryAndCountInTheirTransaction) {
  Bootstrap();
  StoreEvent m;
  m.kind = EventKind::kMessage;
  m.op = 'm';
  m.envelope = "{\"op\":\"m\",\"message\":{\"prefix\":\"timevault\"}}";
  m.change_lsn = Lsn(101);
  m.xid = 7;
  m.transactional = true;
  m.commit_time = CommitTime(kT0);
  Apply({Change('c', "a", 1, "x", 100, 7), At("tv.message", 0, m), End(7, 110, 2)});
  EXPECT_EQ(Recoverable(), 110u);
  auto h = Hist("", 0, 110);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].op, 'm');
  EXPECT_EQ(h[0].commit_lsn.value(), 110u);
}

TEST_F(StoreTest, DeadLettersAreStoredEncryptedAndCounted) {
  Bootstrap();
  IngestItem bad;
  bad.position = KafkaPosition{"tv.public.items", 3, 42};
  bad.dead_letter_reason = "invalid JSON at offset 1";
  bad.raw = "{not json DEADLETTER-MARKER";
  Apply({bad});
  Apply({bad});
  EXPECT_EQ(store_->Stats().dead_letters, 1u);
  std::vector<std::pair<KafkaPosition, std::string>> got;
  ASSERT_TRUE(store_
                  ->DeadLetters([&](const KafkaPosition& p, const std::string& reason) {
                    got.emplace_back(p, reason);
                    return true;
                  })
                  .ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first.offset, 42);
  EXPECT_EQ(got[0].second, "invalid JSON at offset 1");
  EXPECT_EQ(**store_->NextOffset("tv.public.items", 3), 43);
}

TEST_F(StoreTest, ReadsRunConcurrentlyWithApply) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "a", 2, "x", 101, 7), End(7, 110, 2)});
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    while (!stop) {
      auto p = store_->RecoverablePoint();
      if (!p.ok()) continue;
      size_t n = 0;
      Status s = store_->StateAt(TenantId("a"), p->lsn, {}, [&](const Row&) {
        ++n;
        return true;
      });
      if (!s.ok() || n != 2) ++bad;
      ++reads;
    }
  });
  for (int i = 0; i < 200; ++i) {
    const uint64_t base = 1000 + i * 10;
    Apply({Change('u', "a", 1 + i % 2, "v" + std::to_string(i), base, 100 + i), End(100 + i, base + 5, 1)});
  }
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad.load(), 0);
}

// ---------------------------------------------------------------------------
// pipelined apply: Store::ApplyStart builds a batch while the one before is
// being written, reading that batch's records through its index.

// What a store holds, as seen through its readers.
struct Observed {
  uint64_t recoverable = 0, events_stored = 0, duplicates = 0;
  std::map<std::string, std::map<std::string, std::string>> states;  // "tenant@commit" -> rows
  std::map<std::string, std::vector<std::string>> history;           // tenant -> events
  bool operator==(const Observed&) const = default;
};

// A valid delivery of partitions' messages: runs of 1..max_run messages of
// a partition picked at random, then `last`, cut into batches of
// 1..max_batch messages.
std::vector<std::vector<IngestItem>> Deliver(const std::vector<std::vector<IngestItem>>& parts, IngestItem last,
                                             const std::function<int(int)>& pick, int max_run, int max_batch) {
  std::vector<IngestItem> stream;
  std::vector<size_t> next(parts.size(), 0);
  for (;;) {
    std::vector<size_t> open;
    for (size_t p = 0; p < parts.size(); ++p)
      if (next[p] < parts[p].size()) open.push_back(p);
    if (open.empty()) break;
    const size_t p = open[pick(static_cast<int>(open.size()))];
    for (int k = 1 + pick(max_run); k > 0 && next[p] < parts[p].size(); --k) stream.push_back(parts[p][next[p]++]);
  }
  stream.push_back(std::move(last));
  std::vector<std::vector<IngestItem>> batches;
  for (size_t i = 0; i < stream.size();) {
    const size_t n = std::min<size_t>(1 + pick(max_batch), stream.size() - i);
    batches.emplace_back(stream.begin() + i, stream.begin() + i + n);
    i += n;
  }
  return batches;
}

TEST_F(StoreTest, PipelinedApplyEqualsApplyingOneBatchAtATime) {
  // A random multi-tenant stream as capture produces it: each tenant's row
  // events on its own partition (tenantless deletes on the key's), ENDs on
  // the transaction topic, tenant moves, deletes without tenant, transactions
  // re-sent after their END; the partitions interleaved at random and cut
  // into batches of 1-15 messages, so events, their ENDs and their
  // duplicates fall into different, adjacent batches.
  std::mt19937 rng(20261127);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> tenants{"a", "b", "c"};
  std::vector<std::vector<IngestItem>> parts(5);             // 0-2: tenants' rows, 3: tenantless deletes, 4: ENDs
  std::map<int, std::pair<std::string, std::string>> truth;  // id -> (tenant, row)
  std::vector<uint64_t> commits;
  uint64_t lsn = 100;
  int64_t time = kT0;
  const IngestItem bootstrap = Heartbeat(10, kT0 - 1'000'000, std::vector<HeartbeatOffset>{});
  for (int x = 0; x < 80; ++x) {
    const int64_t xid = 1000 + x;
    std::vector<std::pair<int, StoreEvent>> events;
    const int n = 1 + pick(5);
    for (int i = 0; i < n; ++i) {
      const int id = 1 + pick(12);
      const uint64_t at = ++lsn;
      auto live = truth.find(id);
      if (live == truth.end()) {
        const std::string& t = tenants[pick(3)];
        const std::string row = Json(t, id, "c" + std::to_string(at));
        events.emplace_back(&t - tenants.data(), RowEvent('c', t, id, row, at, xid, time));
        truth[id] = {t, row};
      } else if (pick(6) == 0) {
        const bool tenantless = pick(3) == 0;
        const std::string t = tenantless ? "" : live->second.first;
        const int part =
            tenantless ? 3 : static_cast<int>(std::find(tenants.begin(), tenants.end(), t) - tenants.begin());
        events.emplace_back(part, RowEvent('d', t, id, live->second.second, at, xid, time));
        truth.erase(live);
      } else {
        const int ti =
            pick(8) == 0
                ? pick(3)  // a move, sometimes to the same tenant
                : static_cast<int>(std::find(tenants.begin(), tenants.end(), live->second.first) - tenants.begin());
        const std::string row = Json(tenants[ti], id, "u" + std::to_string(at));
        events.emplace_back(ti, RowEvent('u', tenants[ti], id, row, at, xid, time));
        live->second = {tenants[ti], row};
      }
    }
    const uint64_t commit = ++lsn;
    commits.push_back(commit);
    for (int copies = pick(6) == 0 ? 2 : 1; copies > 0; --copies) {
      for (const auto& [part, ev] : events) parts[part].push_back(At("tv.public.items", part, ev));
      parts[4].push_back(End(xid, commit, n, time));
    }
    time += 1000;
  }
  // The heartbeat lists every partition's last offset.
  const auto batches = Deliver(parts, Heartbeat(lsn + 10, time), pick, 4, 15);

  auto observe = [&] {
    Observed o;
    o.recoverable = Recoverable();
    const auto stats = store_->Stats();
    o.events_stored = stats.events_stored;
    o.duplicates = stats.duplicates;
    for (const std::string t : {"", "a", "b", "c"}) {
      for (uint64_t c : commits) o.states[t + "@" + std::to_string(c)] = State(t, c);
      for (const auto& e : Hist(t, 0, o.recoverable)) {
        o.history[t].push_back(std::to_string(e.commit_lsn.value()) + " " + std::to_string(e.change_lsn.value()) + " " +
                               e.op + " " + e.pk + " " + e.envelope);
      }
    }
    return o;
  };
  // mode 0: Apply per batch; 1: ApplyStart per batch, WaitApplied at the
  // end; 2: ApplyStart with WaitApplied at random and a reopen half-way.
  std::vector<Observed> seen;
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE("mode " + std::to_string(mode));
    Close();
    path_ = dir_.path() + "/store" + std::to_string(mode);
    Open();
    Apply({bootstrap});
    for (size_t b = 0; b < batches.size(); ++b) {
      Status st = mode == 0 ? store_->Apply(batches[b]) : store_->ApplyStart(batches[b]);
      ASSERT_TRUE(st.ok()) << "batch " << b << ": " << st.ToString();
      if (mode == 2 && pick(4) == 0) {
        ASSERT_TRUE(store_->WaitApplied().ok());
      }
      if (mode == 2 && b == batches.size() / 2) {
        ASSERT_TRUE(store_->WaitApplied().ok());
        Reopen();
      }
    }
    ASSERT_TRUE(store_->WaitApplied().ok());
    seen.push_back(observe());
  }
  // The reference itself is right: everything recoverable, every event
  // stored once, the final state of every tenant equal to the truth.
  EXPECT_EQ(seen[0].recoverable, lsn + 10);
  EXPECT_GT(seen[0].duplicates, 0u);
  for (const std::string t : {"a", "b", "c"}) {
    std::map<std::string, std::string> want;
    for (const auto& [id, v] : truth)
      if (v.first == t) want[Key(id)] = v.second;
    EXPECT_EQ(seen[0].states[t + "@" + std::to_string(commits.back())], want) << "tenant " << t;
  }
  EXPECT_TRUE(seen[1] == seen[0]) << "pipelined apply differs from one batch at a time";
  EXPECT_TRUE(seen[2] == seen[0]) << "pipelined apply with waits and a reopen differs";
}

// Many random streams, each with snapshot rows (and sometimes transactions
// in flight at the snapshot), concurrent transactions
// (interleaved change LSNs, committed in either order), tenant moves and
// deletes without tenant on the key's partition, re-sent transactions, and
// partitions interleaved at random: the state of every tenant at every
// commit must equal the truth recorded when that commit was generated, one
// batch at a time and pipelined.
TEST_F(StoreTest, RandomStreamsGiveTheTruthAtEveryCommit) {
  const std::vector<std::string> tenants{"a", "b", "c"};
  using Rows = std::map<std::string, std::string>;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    auto tenant_part = [&](const std::string& t) {
      return static_cast<int>(std::find(tenants.begin(), tenants.end(), t) - tenants.begin());
    };
    next_offset_.clear();
    const IngestItem bootstrap = Heartbeat(10, kT0 - 1'000'000, std::vector<HeartbeatOffset>{});
    std::vector<std::vector<IngestItem>> parts(5);            // 0-2: tenants' rows, 3: tenantless deletes, 4: ENDs
    std::map<int, std::pair<std::string, std::string>> live;  // id -> (tenant, row)
    std::map<uint64_t, std::map<std::string, Rows>> truth;    // commit -> tenant -> rows
    auto record = [&](uint64_t at) {
      auto& t = truth[at];
      for (const auto& name : tenants) t[name];
      for (const auto& [id, v] : live) t[v.first][Key(id)] = v.second;
    };
    // The initial snapshot at LSN 50.
    for (int id = 1; id <= 6; ++id) {
      const std::string& t = tenants[pick(3)];
      const std::string row = Json(t, id, "snap");
      parts[tenant_part(t)].push_back(At("tv.public.items", tenant_part(t), RowEvent('r', t, id, row, 50, {}, kT0)));
      live[id] = {t, row};
    }
    // Sometimes the first transactions were in flight at the snapshot:
    // changes below its LSN, commits above it.
    const bool in_flight_at_snapshot = pick(2) == 0;
    uint64_t lsn = in_flight_at_snapshot ? 40 : 100;
    int64_t time = kT0;
    int64_t xid = 1000;
    for (int group = 0; group < 40; ++group) {
      // One transaction, or two running at once on disjoint rows.
      const int ntx = pick(3) == 0 ? 2 : 1;
      struct Tx {
        int64_t xid;
        std::vector<std::pair<int, StoreEvent>> events;
        std::map<int, std::optional<std::pair<std::string, std::string>>> writes;  // id -> row after, or gone
      };
      std::vector<Tx> txs(ntx);
      std::set<int> touched_by_other[2];
      for (auto& tx : txs) tx.xid = ++xid;
      const int nchanges = 1 + pick(6);
      for (int i = 0; i < nchanges; ++i) {
        const int which = pick(ntx);
        Tx& tx = txs[which];
        int id = 1 + pick(12);
        if (touched_by_other[which].count(id)) continue;  // row locks: the other transaction holds it
        touched_by_other[1 - which].insert(id);
        const uint64_t at = ++lsn;
        std::optional<std::pair<std::string, std::string>> now;
        if (auto w = tx.writes.find(id); w != tx.writes.end()) {
          now = w->second;
        } else if (auto l = live.find(id); l != live.end()) {
          now = l->second;
        }
        if (!now) {
          const std::string& t = tenants[pick(3)];
          const std::string row = Json(t, id, "c" + std::to_string(at));
          tx.events.emplace_back(tenant_part(t), RowEvent('c', t, id, row, at, tx.xid, time));
          tx.writes[id] = std::make_pair(t, row);
        } else if (pick(5) == 0) {
          const bool tenantless = pick(2) == 0;
          const std::string t = tenantless ? "" : now->first;
          tx.events.emplace_back(tenantless ? 3 : tenant_part(t), RowEvent('d', t, id, now->second, at, tx.xid, time));
          tx.writes[id] = std::nullopt;
        } else {
          const std::string& t = pick(6) == 0 ? tenants[pick(3)] : now->first;
          const std::string row = Json(t, id, "u" + std::to_string(at));
          tx.events.emplace_back(tenant_part(t), RowEvent('u', t, id, row, at, tx.xid, time));
          tx.writes[id] = std::make_pair(t, row);
        }
      }
      if (ntx == 2 && pick(2) == 0) std::swap(txs[0], txs[1]);  // commit order independent of change order
      lsn = std::max<uint64_t>(lsn, 100);
      for (auto& tx : txs) {
        if (tx.events.empty()) continue;
        const uint64_t commit = ++lsn;
        for (const auto& [id, w] : tx.writes) {
          if (w) {
            live[id] = *w;
          } else {
            live.erase(id);
          }
        }
        record(commit);
        const int copies = pick(8) == 0 ? 2 : 1;
        for (int c = 0; c < copies; ++c) {
          for (const auto& [part, ev] : tx.events) parts[part].push_back(At("tv.public.items", part, ev));
          parts[4].push_back(End(tx.xid, commit, static_cast<int64_t>(tx.events.size()), time));
        }
        time += 1000;
      }
    }
    const auto batches = Deliver(parts, Heartbeat(lsn + 10, time), pick, 6, 20);
    for (int mode = 0; mode < 3; ++mode) {
      SCOPED_TRACE(mode == 0 ? "one batch at a time" : mode == 1 ? "pipelined" : "pipelined, holding back");
      Close();
      path_ = dir_.path() + "/seed" + std::to_string(seed) + "-" + std::to_string(mode);
      Open();
      Apply({bootstrap});
      std::vector<IngestItem> held;  // mode 2: put in front of the next batch, as the consumer does
      for (const auto& b : batches) {
        if (mode < 2) {
          Status st = mode == 0 ? store_->Apply(b) : store_->ApplyStart(b);
          ASSERT_TRUE(st.ok()) << st.ToString();
          continue;
        }
        std::vector<IngestItem> next = held;
        next.insert(next.end(), b.begin(), b.end());
        held.clear();
        Status st = store_->ApplyStart(next, &held);
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      while (!held.empty()) {  // nothing more arrives: they age into `pending`
        std::vector<IngestItem> next;
        next.swap(held);
        Status st = store_->ApplyStart(next, &held);
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      ASSERT_TRUE(store_->WaitApplied().ok());
      ASSERT_EQ(Recoverable(), lsn + 10);
      for (const auto& [commit, want] : truth) {
        for (const auto& [t, rows] : want) {
          ASSERT_EQ(State(t, commit), rows) << "tenant " << t << " at commit " << commit;
        }
      }
    }
    Close();
  }
}

}  // namespace
}  // namespace timevault::store::test
