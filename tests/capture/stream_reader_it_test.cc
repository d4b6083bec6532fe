// StreamReader (capture's replication thread) against the real Postgres of
// the testenv: it hands the stream over in order, reports to the server only
// the position the session published (invariant 1), keeps reporting while
// its read-ahead is full, and a broken connection surfaces through Pop after
// everything read before it.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capture/stream_reader.h"
#include "support/testenv.h"
#include "timevault/capture/pgoutput.h"

namespace timevault::capture {
namespace {

using namespace std::chrono_literals;
using testing::TestDatabase;

constexpr int64_t kStatusIntervalMs = 100;

struct Seen {
  std::vector<Lsn> commit_ends;  // in stream order
  int inserts = 0;
};

void Tally(const std::deque<StreamItem>& items, Seen* seen) {
  for (const auto& item : items) {
    const auto* data = std::get_if<pgoutput::XLogData>(&item.message);
    if (data == nullptr || data->payload.empty()) continue;
    auto msg = pgoutput::Decode(data->payload);
    ASSERT_TRUE(msg.ok()) << msg.status().ToString();
    if (const auto* c = std::get_if<pgoutput::Commit>(&*msg)) seen->commit_ends.push_back(c->end_lsn);
    if (std::holds_alternative<pgoutput::Insert>(*msg)) ++seen->inserts;
  }
}

Lsn SlotConfirmed(pg::PgConn& conn, const std::string& slot) {
  auto r = conn.Exec("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  if (!r.ok() || r->rows() != 1) return Lsn();
  return Lsn::Parse(r->GetString(0, 0)).value_or(Lsn());
}

// Waits until the slot's confirmed position is `want` (true) or 10 s pass.
bool WaitConfirmed(pg::PgConn& conn, const std::string& slot, Lsn want) {
  for (int i = 0; i < 200; ++i) {
    if (SlotConfirmed(conn, slot) == want) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

class StreamReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sql_ = db_.Connect();
    ASSERT_TRUE(sql_.Run("CREATE TABLE items (id int PRIMARY KEY, note text)").ok());
    ASSERT_TRUE(sql_.Run("CREATE PUBLICATION pub FOR TABLE items").ok());
    auto repl = PgReplication::Connect(db_.Conninfo());
    ASSERT_TRUE(repl.ok()) << repl.status().ToString();
    repl_ = std::move(*repl);
    auto created = repl_->CreateSlot(slot_, false);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    start_ = created->consistent_point;
    ASSERT_TRUE(repl_->Start(slot_, Lsn(), "pub").ok());
  }

  // Pops until `done` or 20 s pass; the first error Pop returns ends it too.
  Status PopUntil(StreamReader& reader, Seen* seen, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::deque<StreamItem> items;
      Status st = reader.Pop(100, &items);
      Tally(items, seen);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  TestDatabase db_{"streamreader"};
  pg::PgConn sql_;
  std::string slot_ = testing::UniqueName("sr");
  std::unique_ptr<PgReplication> repl_;
  Lsn start_;
};

TEST_F(StreamReaderTest, HandsOverInOrderAndReportsOnlyThePublishedPosition) {
  StreamReader reader(repl_.get(), 1 << 20, kStatusIntervalMs);
  reader.Start(start_);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(sql_.Run("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x')").ok());
  }
  Seen seen;
  ASSERT_TRUE(PopUntil(reader, &seen, [&] { return seen.commit_ends.size() >= 3; }).ok());
  ASSERT_EQ(seen.commit_ends.size(), 3U);
  EXPECT_EQ(seen.inserts, 3);
  EXPECT_LT(seen.commit_ends[0], seen.commit_ends[1]);
  EXPECT_LT(seen.commit_ends[1], seen.commit_ends[2]);
  // Nothing published: many status intervals later the slot has not moved.
  std::this_thread::sleep_for(std::chrono::milliseconds(5 * kStatusIntervalMs));
  EXPECT_EQ(SlotConfirmed(sql_, slot_), start_);
  // Published up to the first commit: the slot moves exactly there.
  reader.Publish(seen.commit_ends[0]);
  EXPECT_TRUE(WaitConfirmed(sql_, slot_, seen.commit_ends[0])) << SlotConfirmed(sql_, slot_).ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * kStatusIntervalMs));
  EXPECT_EQ(SlotConfirmed(sql_, slot_), seen.commit_ends[0]);
  // Publish never goes back.
  reader.Publish(start_);
  reader.Publish(seen.commit_ends[2]);
  EXPECT_TRUE(WaitConfirmed(sql_, slot_, seen.commit_ends[2])) << SlotConfirmed(sql_, slot_).ToString();
  reader.Stop();
  // Stopped: the connection is the caller's again and still works.
  EXPECT_TRUE(repl_->SendStatus(seen.commit_ends[2], false).ok());
}

TEST_F(StreamReaderTest, KeepsReportingWhileTheReadAheadIsFull) {
  StreamReader reader(repl_.get(), 65536, kStatusIntervalMs);
  reader.Start(start_);
  ASSERT_TRUE(sql_.Run("INSERT INTO items VALUES (0, 'first')").ok());
  Seen seen;
  ASSERT_TRUE(PopUntil(reader, &seen, [&] { return !seen.commit_ends.empty(); }).ok());
  ASSERT_EQ(seen.commit_ends.size(), 1U);
  // About 2 MB of stream, far more than the 64 KiB read-ahead: the reader
  // fills it and waits; no one pops.
  ASSERT_TRUE(sql_.Run("INSERT INTO items SELECT g, repeat('y', 200) FROM generate_series(1, 10000) g").ok());
  std::this_thread::sleep_for(1s);
  reader.Publish(seen.commit_ends[0]);
  EXPECT_TRUE(WaitConfirmed(sql_, slot_, seen.commit_ends[0])) << "no status update while the read-ahead was full";
  // Then everything arrives, in one piece.
  ASSERT_TRUE(PopUntil(reader, &seen, [&] { return seen.commit_ends.size() >= 2; }).ok());
  EXPECT_EQ(seen.commit_ends.size(), 2U);
  EXPECT_EQ(seen.inserts, 10001);
}

TEST_F(StreamReaderTest, ABrokenConnectionSurfacesAfterWhatWasReadBeforeIt) {
  StreamReader reader(repl_.get(), 1 << 20, kStatusIntervalMs);
  reader.Start(start_);
  ASSERT_TRUE(sql_.Run("INSERT INTO items VALUES (1, 'before')").ok());
  Seen seen;
  ASSERT_TRUE(PopUntil(reader, &seen, [&] { return !seen.commit_ends.empty(); }).ok());
  ASSERT_TRUE(sql_.Run("INSERT INTO items VALUES (2, 'before the kill')").ok());
  std::this_thread::sleep_for(500ms);  // read by the reader, not popped
  auto killed =
      sql_.Exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'");
  ASSERT_TRUE(killed.ok() && killed->rows() == 1) << killed.status().ToString();
  Status st = PopUntil(reader, &seen, [] { return false; });
  EXPECT_FALSE(st.ok()) << "the walsender's end did not surface";
  EXPECT_EQ(seen.commit_ends.size(), 2U) << "what was read before the error is handed over first";
  EXPECT_EQ(seen.inserts, 2);
  reader.Stop();
}

}  // namespace
}  // namespace timevault::capture
