#include "capture/ack_tracker.h"

#include <gtest/gtest.h>

namespace timevault::capture {
namespace {

Lsn L(uint64_t v) { return Lsn(v); }
CommitTime T(int64_t v) { return CommitTime(v); }

TEST(AckTracker, ConfirmsOnlyFullyAckedPrefix) {
  AckTracker t;
  auto a = t.Open();
  t.AddPending(a);
  t.AddPending(a);
  t.Close(a, L(100), T(1));
  auto b = t.Open();
  t.AddPending(b);
  t.Close(b, L(200), T(2));
  EXPECT_EQ(t.Confirmable().lsn, L(0));
  t.Ack(b);  // the later transaction completes first: still nothing
  EXPECT_EQ(t.Confirmable().lsn, L(0));
  t.Ack(a);
  EXPECT_EQ(t.Confirmable().lsn, L(0)) << "a still has one unacked message";
  t.Ack(a);
  auto p = t.Confirmable();
  EXPECT_EQ(p.lsn, L(200));
  EXPECT_EQ(p.time, T(2));
  EXPECT_EQ(t.pending(), 0u);
}

TEST(AckTracker, OpenTransactionBlocksEvenWhenAcked) {
  AckTracker t;
  auto a = t.Open();
  t.AddPending(a);
  t.Ack(a);
  EXPECT_EQ(t.Confirmable().lsn, L(0)) << "not closed: its Commit has not been seen";
  t.Close(a, L(50), T(5));
  EXPECT_EQ(t.Confirmable().lsn, L(50));
}

TEST(AckTracker, KeepaliveMarkerConfirmsWalEndWhenIdle) {
  AckTracker t;
  t.Marker(L(1000), T(9));
  EXPECT_EQ(t.Confirmable().lsn, L(1000));
  auto a = t.Open();
  t.AddPending(a);
  t.Close(a, L(1100), T(10));
  t.Marker(L(5000), T(11));
  EXPECT_EQ(t.Confirmable().lsn, L(1000)) << "marker waits behind the unacked transaction";
  t.Ack(a);
  EXPECT_EQ(t.Confirmable().lsn, L(5000));
}

TEST(AckTracker, NeverGoesBackwards) {
  AckTracker t;
  t.Marker(L(500), T(1));
  EXPECT_EQ(t.Confirmable().lsn, L(500));
  auto a = t.Open();
  t.Close(a, L(400), T(0));  // e.g. a snapshot entry with no LSN
  EXPECT_EQ(t.Confirmable().lsn, L(500));
}

TEST(AckTracker, ConsecutiveMarkersCollapse) {
  AckTracker t;
  auto a = t.Open();
  t.AddPending(a);
  t.Close(a, L(10), T(1));
  for (uint64_t i = 1; i <= 1000; ++i) t.Marker(L(10 + i), T(1));
  EXPECT_LE(t.open_entries(), 2u);
  t.Ack(a);
  EXPECT_EQ(t.Confirmable().lsn, L(1010));
}

}  // namespace
}  // namespace timevault::capture
