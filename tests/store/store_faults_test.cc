// Write errors in the store's own threads (issue #18, item 3): a real file
// system that runs out of space under a store opened in this process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "store/store_test_util.h"

namespace timevault::store::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Text that does not compress (the envelope dictionary and zstd get nothing from it).
std::string Noise(std::mt19937_64& rng, size_t n) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s(n, ' ');
  for (char& c : s) c = kAlphabet[rng() % (sizeof kAlphabet - 1)];
  return s;
}

// Batches are written in the background; a failed write used to be found
// by retention's Drain (the hourly thread), which reset the writer and
// cleared the error: the next batch was written and its offsets stored past
// the lost one's messages. Now the first lost write is kept: every later
// batch and WaitApplied return it until the store is reopened, and a reopen
// with space again has nothing past the last batch that landed.
TEST_F(StoreTest, AWriteErrorFoundByRetentionStopsIngest) {
  Close();
  const std::string mount_point = dir_.path() + "/small";
  fs::create_directories(mount_point);
  ASSERT_EQ(::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=12m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  path_ = mount_point + "/store";
  min_free_mb_ = 0;  // retention's own write must be the one that meets the full volume
  Open();
  ASSERT_NE(store_, nullptr);
  Bootstrap();
  std::mt19937_64 rng(18);
  uint64_t lsn = 100;
  int64_t xid = 10;
  int id = 0;
  int landed_rows = 0;
  // The batch in flight when retention's write failed may have landed before
  // that write (then the lost write is retention's own) or not; either way
  // nothing past it may be stored.
  int64_t in_flight_end = -1;
  Status found_by_retention;
  for (int batch_no = 0; batch_no < 400 && found_by_retention.ok(); ++batch_no) {
    std::vector<IngestItem> batch;
    const int64_t first_offset = next_offset_[{"tv.public.items", 0}];
    for (int i = 0; i < 8; ++i) batch.push_back(Change('c', "a", ++id, Noise(rng, 16000), lsn++, xid));
    batch.push_back(End(xid++, lsn++, 8));
    Status started = store_->ApplyStart(batch);
    ASSERT_TRUE(started.ok()) << "the write before was drained by retention: " << started.ToString();
    found_by_retention = store_->RunRetention(SystemClock().Now());
    if (found_by_retention.ok()) {
      landed_rows = id;
    } else {
      in_flight_end = next_offset_[{"tv.public.items", 0}];
      EXPECT_LT(first_offset, in_flight_end);
    }
  }
  ASSERT_FALSE(found_by_retention.ok()) << "12 MB never filled up";
  std::cout << "retention found: " << found_by_retention.ToString() << " after " << landed_rows << " rows\n";
  EXPECT_THAT(found_by_retention.ToString(), HasSubstr("space"));

  // Space comes back: the store must still refuse, the batch it lost is not
  // in the database, and its messages must be consumed again.
  ASSERT_EQ(::mount("tmpfs", mount_point.c_str(), "tmpfs", MS_REMOUNT, "size=256m"), 0) << std::strerror(errno);
  std::vector<IngestItem> next;
  next.push_back(Change('c', "a", ++id, "after", lsn++, xid));
  next.push_back(End(xid++, lsn++, 1));
  Status after = store_->ApplyStart(next);
  if (after.ok()) after = store_->WaitApplied();
  EXPECT_FALSE(after.ok()) << "a batch was written after a lost one";
  EXPECT_FALSE(store_->WaitApplied().ok());

  Close();
  Open();
  ASSERT_NE(store_, nullptr);
  auto stored = store_->NextOffset("tv.public.items", 0);
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_value());
  EXPECT_LE(**stored, in_flight_end) << "offsets stored past the batch in flight when the write failed";
  auto p = store_->RecoverablePoint();
  ASSERT_TRUE(p.ok());
  const auto rows = State("a", p->lsn.value());
  EXPECT_EQ(static_cast<int64_t>(rows.size()), **stored) << "every row below the stored offset is there, no other";
  Close();
}

}  // namespace
}  // namespace timevault::store::test
