// Store format versions and the migration of older stores (docs/store.md,
// "Format versions"); the memory and WAL bounds ("Memory and disk bounds").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "store/store_test_util.h"

namespace timevault::store::test {
namespace {

using ::testing::HasSubstr;

class StoreFormatTest : public StoreTest {
 protected:
  // A store written as format 1 was: row images as JSON text, no stamp.
  void OpenFormat1() { OpenFormat(1); }
  // A store written as the code of an older format wrote it.
  void OpenFormat(uint32_t format) {
    Close();
    std::filesystem::remove_all(path_);  // SetUp's store was stamped
    Store::Options o = Opts();
    o.write_format = format;
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // Rows 1..40 of tenants a and b (snapshot, then updates and deletes in
  // transactions): enough envelopes for the dictionary (24 samples), so the
  // later rows of a format-2 writer are packed.
  // A row as real tables have them: several columns with longer names,
  // which the envelope dictionary holds (it learns names, never values).
  static std::string Wide(const std::string& tenant, int id, const std::string& tag) {
    return "{\"id\":" + std::to_string(id) + ",\"tenant_id\":\"" + tenant + "\",\"customer_name\":\"" + tag +
           "\",\"billing_address\":\"" + std::to_string(id * 7) +
           " Main Street\",\"amount_cents\":" + std::to_string(id * 113) +
           ",\"payment_status\":\"active\",\"created_at\":\"2026-12-07T10:00:00Z\",\"updated_at\":\"2026-12-07T1" +
           std::to_string(id % 10) + ":00:00Z\"}";
  }
  IngestItem WideChange(char op, const std::string& tenant, int id, const std::string& tag, uint64_t lsn, int64_t xid) {
    return At("tv.public.items", 0, RowEvent(op, tenant, id, Wide(tenant, id, tag), lsn, xid, kT0));
  }

  // Rows 1..40 of tenants a and b (snapshot, then updates and deletes in
  // transactions): enough envelopes for the dictionary (24 samples), so the
  // later rows of a format-2 writer are packed.
  void WriteHistory(int first_xid, uint64_t first_lsn, const std::string& tag, int rows = 40) {
    uint64_t lsn = first_lsn;
    std::vector<IngestItem> batch;
    for (int id = 1; id <= rows; ++id) {
      batch.push_back(At("tv.public.items", 0,
                         RowEvent('r', id % 2 ? "a" : "b", id, Wide(id % 2 ? "a" : "b", id, tag), lsn++, 1, kT0)));
    }
    Apply(batch);
    for (int t = 0; t < 5; ++t) {
      const int xid = first_xid + t;
      batch.clear();
      for (int id = 1 + t; id <= rows; id += 5) {
        const char op = (id % 7 == 0) ? 'd' : 'u';
        batch.push_back(WideChange(op, id % 2 ? "a" : "b", id, tag + "-" + std::to_string(t), lsn++, xid));
      }
      const auto n = static_cast<int64_t>(batch.size());
      batch.push_back(End(xid, lsn++, n));
      Apply(batch);
    }
    Apply({Heartbeat(lsn++, kT0)});
  }

  // State of both tenants at every commit up to `to`, and their history.
  std::vector<std::map<std::string, std::string>> Everything(uint64_t to) {
    std::vector<std::map<std::string, std::string>> all;
    for (uint64_t p = 100; p <= to; p += 3) {
      all.push_back(State("a", p));
      all.push_back(State("b", p));
    }
    for (const char* t : {"a", "b"}) {
      std::map<std::string, std::string> h;
      for (const auto& e : Hist(t, 0, to)) h[std::to_string(e.commit_lsn.value()) + " " + e.pk] = e.envelope;
      all.push_back(std::move(h));
    }
    return all;
  }

  uint64_t ValueBytes(const char* family) {
    for (const auto& f : store_->Stats(true).families) {
      if (f.name == family) return f.value_bytes;
    }
    ADD_FAILURE() << "no family " << family;
    return 0;
  }
};

// A store written in format 1 (as today's main wrote it before the format
// stamp) opens with the new code, reads the same, takes new writes in
// format 2 beside the old rows, and `Migrate` packs the old rows: the same
// state and history at every commit, and fewer bytes.
TEST_F(StoreFormatTest, AFormat1StoreReadsTheSameAndIsMigrated) {
  OpenFormat1();
  Bootstrap();
  WriteHistory(7, 100, "old");
  const uint64_t old_end = Recoverable();
  ASSERT_GT(old_end, 140u);
  const auto before = Everything(old_end);
  EXPECT_EQ(store_->Stats().format_version, 1u);
  const uint64_t old_versions = ValueBytes("versions"), old_current = ValueBytes("current");
  Close();

  Open();  // the current format
  EXPECT_EQ(store_->Stats().format_version, 3u);
  EXPECT_FALSE(store_->Stats().rows_packed);
  EXPECT_EQ(Everything(old_end), before);
  WriteHistory(20, old_end + 100, "new", 20);  // packed rows beside unpacked ones; rows 21-40 untouched
  const uint64_t end = Recoverable();
  const auto mixed = Everything(end);
  ASSERT_EQ(std::vector(mixed.begin(), mixed.begin() + static_cast<long>(before.size() - 2)),
            std::vector(before.begin(), before.end() - 2));
  const uint64_t mixed_versions = ValueBytes("versions");

  auto migrated = store_->Migrate();
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  // Every row image of the format-1 writes: 40 snapshot rows and 40
  // updates (a delete marker has none) in versions, and the current
  // entries of rows 21-40 that were not written since (their deletes
  // neither).
  EXPECT_GE(*migrated, 90u);
  EXPECT_TRUE(store_->Stats().rows_packed);
  EXPECT_EQ(Everything(end), mixed);
  EXPECT_LT(ValueBytes("versions"), mixed_versions) << "the old rows take fewer bytes packed";
  EXPECT_LT(ValueBytes("current"), old_current);
  EXPECT_LT(ValueBytes("versions") - (mixed_versions - old_versions), old_versions);
  auto again = store_->Migrate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "nothing left to pack";

  Reopen();
  EXPECT_EQ(Everything(end), mixed);
  EXPECT_TRUE(store_->Stats().rows_packed);
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(StateOf(**ro, "a", end), State("a", end));
  EXPECT_EQ(StateOf(**ro, "b", old_end), State("b", old_end));
}

// A store written in format 2 (history entries repeat the row image of
// their version) opens with the format-3 code and reads the same, takes
// format-3 writes beside the old entries, and `Migrate` drops the repeated
// images from the old entries: the same state and history (byte for byte)
// at every commit, and fewer bytes in `log`.
TEST_F(StoreFormatTest, AFormat2StoreReadsTheSameAndIsMigrated) {
  OpenFormat(2);
  Bootstrap();
  WriteHistory(7, 100, "old");
  const uint64_t old_end = Recoverable();
  const auto before = Everything(old_end);
  EXPECT_EQ(store_->Stats().format_version, 2u);
  const uint64_t old_log = ValueBytes("log");
  Close();

  Open();
  EXPECT_EQ(store_->Stats().format_version, 3u);
  EXPECT_EQ(Everything(old_end), before);
  WriteHistory(20, old_end + 100, "new", 20);
  const uint64_t end = Recoverable();
  const auto mixed = Everything(end);
  ASSERT_EQ(std::vector(mixed.begin(), mixed.begin() + static_cast<long>(before.size() - 2)),
            std::vector(before.begin(), before.end() - 2));
  const uint64_t mixed_log = ValueBytes("log");

  auto migrated = store_->Migrate();
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  // Every c/u/r entry of the format-2 writes: 40 snapshot rows and the
  // updates (the deletes have no version image to share).
  EXPECT_GE(*migrated, 70u);
  EXPECT_EQ(Everything(end), mixed);
  EXPECT_LT(ValueBytes("log"), mixed_log - old_log / 3) << "the old entries lost their row images";
  auto again = store_->Migrate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "nothing left to migrate";

  Reopen();
  EXPECT_EQ(Everything(end), mixed);
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  std::vector<HistoryEvent> seen;
  ASSERT_TRUE((*ro)
                  ->History(TenantId("a"), Lsn(0), Lsn(end), std::nullopt, std::nullopt,
                            [&](const HistoryEvent& e) {
                              seen.push_back(e);
                              return true;
                            })
                  .ok());
  const auto mine = Hist("a", 0, end);
  ASSERT_EQ(seen.size(), mine.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].envelope, mine[i].envelope);
    EXPECT_EQ(seen[i].op, mine[i].op);
  }
}

// The same events written by the format-2 code and by the format-3 code
// give the same state and the same history, byte for byte; format 3 stores
// the snapshot rows' envelopes in a fraction of the bytes.
TEST_F(StoreFormatTest, Format3HistoryIsFormat2sWithoutTheRepeatedRows) {
  std::vector<std::map<std::string, std::string>> seen[2];
  uint64_t log_bytes[2] = {0, 0};
  for (uint32_t format : {2u, 3u}) {
    OpenFormat(format);
    Bootstrap();
    WriteHistory(7, 100, "x");
    seen[format - 2] = Everything(Recoverable());
    log_bytes[format - 2] = ValueBytes("log");
    bool ops_plain = true;
    for (const auto& e : Hist("a", 0, Recoverable()))
      ops_plain = ops_plain && (e.op == 'r' || e.op == 'u' || e.op == 'd');
    EXPECT_TRUE(ops_plain);
  }
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_LT(log_bytes[1] * 3, log_bytes[0] * 2) << "format 2: " << log_bytes[0] << ", format 3: " << log_bytes[1];
}

TEST_F(StoreFormatTest, ANewStoreIsStampedAndAStoreOfANewerFormatIsRefused) {
  Bootstrap();
  const auto st = store_->Stats();
  EXPECT_EQ(st.format_version, 3u);
  EXPECT_TRUE(st.rows_packed);
  Close();
  EditRaw([](const std::string& cf, rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* h) {
    if (cf == "meta") {
      ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), h, "format", std::string("\0\0\0\4", 4)).ok());
    }
  });
  for (bool read_only : {false, true}) {
    auto s = Store::Open(Opts(read_only));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.status().message(), HasSubstr("store format 4, written by a newer timevault"));
  }
  EditRaw([](const std::string& cf, rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* h) {
    if (cf == "meta") {
      ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), h, "format", std::string("\0\0\0\3", 4)).ok());
    }
  });
  Open();
}

// The write-ahead log stays under the memory budget's bound although a
// quiet column family (one dead letter) wrote into its first file: RocksDB
// keeps a WAL file until every family that wrote into it has flushed, so
// without `max_total_wal_size` every file from the first on stays.
TEST_F(StoreFormatTest, TheWalStaysBoundedBesideAQuietColumnFamily) {
  Close();
  Store::Options o = Opts();
  o.memory_budget_mb = 64;  // memtables 32 MB, so the WAL is kept under about 32 MB
  auto opened = Store::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(opened).value();
  IngestItem bad;
  bad.position = KafkaPosition{"tv.public.items", 1, 0};
  bad.dead_letter_reason = "not a Debezium envelope";
  bad.raw = "{}";
  Apply({bad});
  // ~96 MB through the WAL: rows of 4 KB that do not compress, three
  // records each (versions, current, log).
  std::string noise;
  uint64_t x = 88172645463325252ull;
  uint64_t lsn = 100;
  for (int b = 0; b < 16; ++b) {
    std::vector<IngestItem> batch;
    for (int i = 0; i < 500; ++i) {
      noise.clear();
      for (int k = 0; k < 512; ++k) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        noise += "0123456789abcdef"[x & 15];
        noise += "ghijklmnopqrstuv"[(x >> 8) & 15];
        noise += "wxyzABCDEFGHIJKL"[(x >> 16) & 15];
        noise += "MNOPQRSTUVWXYZ01"[(x >> 24) & 15];
        noise += "23456789!#$%&()*"[(x >> 32) & 15];
        noise += "+,-./:;<=>?@[]^_"[(x >> 40) & 15];
        noise += "abcdefghijklmnop"[(x >> 48) & 15];
        noise += "qrstuvwxyzABCDEF"[(x >> 56) & 15];
      }
      batch.push_back(Snapshot("a", b * 500 + i, noise, lsn++));
    }
    Apply(batch);
  }
  const auto st = store_->Stats();
  EXPECT_LT(st.wal_bytes, 48u << 20) << "WAL " << st.wal_bytes << " bytes";
  EXPECT_GT(st.sst_bytes, 24u << 20) << "the busy families were flushed";
  EXPECT_EQ(store_->Stats().dead_letters, 1u);
}

}  // namespace
}  // namespace timevault::store::test
