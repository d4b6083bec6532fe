// Store engine: encryption at rest, shredding, retention, read-only readers,
// history independence, Debezium's reference events, MemoryStateReader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "store/store_test_util.h"
#include "support/legacy_format.h"
#include "timevault/core/crypto.h"

namespace timevault::store::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kDay = 86'400'000'000;

// Whether any file under `dir` contains `needle`.
bool AnyFileContains(const std::string& dir, const std::string& needle) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().find(needle) != std::string::npos) return true;
  }
  return false;
}

// The RocksDB options file of the store at `path` (any one: the writer
// wrote them all with the same options).
std::string WriterOptions(const std::string& path) {
  std::string options;
  for (const auto& entry : fs::directory_iterator(path)) {
    if (!entry.path().filename().string().starts_with("OPTIONS-")) continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    options = ss.str();
  }
  return options;
}

size_t CountPrefix(const std::map<std::string, std::string>& dump, const std::string& prefix) {
  size_t n = 0;
  for (const auto& [k, v] : dump) n += k.starts_with(prefix);
  return n;
}

TEST_F(StoreTest, ValuesAreEncryptedAtRest) {
  Bootstrap();
  const std::string secret = "SECRET-MARKER-7f3a";
  IngestItem bad;
  bad.position = KafkaPosition{"tv.public.items", 1, 0};
  bad.dead_letter_reason = "not a Debezium envelope";
  bad.raw = "{\"x\":\"" + secret + "\"}";
  Apply({Change('c', "a", 1, secret, 100, 7), End(7, 110, 1), bad});
  Apply({Change('u', "a", 1, secret + "-2", 120, 8)});  // pending: its END is not there yet
  EXPECT_THAT(State("a", 110)[Key(1)], HasSubstr(secret));
  Close();  // the WAL and, after reopen and more writes, SST files
  Open();
  Close();
  EXPECT_TRUE(AnyFileContains(path_, kTable));  // keys are plain: the search does see the data
  EXPECT_FALSE(AnyFileContains(path_, secret));
}

TEST_F(StoreTest, ShreddedTenantReadsEmptyAndOthersAreIntact) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "b", 2, "x", 101, 7), End(7, 110, 2)});
  ASSERT_TRUE(store_->ShredTenant(TenantId("a")).ok());
  EXPECT_TRUE(State("a", 110).empty());
  EXPECT_TRUE(Hist("a", 0, 110).empty());
  EXPECT_EQ(State("b", 110).size(), 1u);
  Close();
  auto dump = RawDump(false);
  const std::string a_prefix = std::string("\0\1a", 3);
  EXPECT_EQ(CountPrefix(dump, "keys|" + a_prefix), 0u);
  EXPECT_EQ(CountPrefix(dump, "versions|" + a_prefix), 0u);
  EXPECT_EQ(CountPrefix(dump, "log|" + a_prefix), 0u);
  EXPECT_EQ(CountPrefix(dump, "versions|" + std::string("\0\1b", 3)), 1u);
  Open();
  // The tenant comes back later: a new key, only the new data.
  Apply({Change('c', "a", 3, "new", 120, 8), End(8, 130, 1)});
  EXPECT_EQ(State("a", 130), (std::map<std::string, std::string>{{Key(3), Json("a", 3, "new")}}));
}

// An event whose END has not arrived waits in `pending`, encrypted under its
// tenant's key. Shredding deletes that key; when the tenant comes back it
// gets a new one, and the END of the old transaction must then drop the
// event as unreadable (as when the tenant has no key at all), not fail on
// it: a value the new key cannot open would stop ingest for good.
TEST_F(StoreTest, AShreddedTenantsPendingEventIsDroppedWhenTheTenantComesBack) {
  Bootstrap();
  Apply({Change('c', "a", 1, "old", 100, 7), Change('c', "b", 2, "x", 101, 7)});  // no END yet: pending
  ASSERT_TRUE(store_->ShredTenant(TenantId("a")).ok());
  Apply({Change('c', "a", 3, "new", 120, 8), End(8, 130, 1)});  // a comes back: a new key
  EXPECT_EQ(Recoverable(), 130u);
  Apply({End(7, 140, 2)});  // transaction 7 commits after 8
  EXPECT_EQ(Recoverable(), 140u);
  EXPECT_EQ(State("a", 140), (std::map<std::string, std::string>{{Key(3), Json("a", 3, "new")}}));
  EXPECT_EQ(State("b", 140).size(), 1u);
  auto h = Hist("a", 0, 140);
  ASSERT_EQ(h.size(), 1u) << "only the event after the shred";
  EXPECT_EQ(h[0].change_lsn, Lsn(120));
  EXPECT_EQ(Hist("b", 0, 140).size(), 1u);
}

TEST_F(StoreTest, RewrappedMasterKeyOpensTheStoreAndTheOldOneNoLonger) {
  Bootstrap();
  IngestItem bad;  // a dead letter: under the store's own key
  bad.position = KafkaPosition{"tv.public.items", 1, 0};
  bad.dead_letter_reason = "not JSON";
  bad.raw = "\x01\x02";
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "b", 2, "y", 101, 7), End(7, 110, 2), bad});
  const auto a = State("a", 110), b = State("b", 110);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  const std::string old_key = key_file_, new_key = dir_.path() + "/next.key";
  WriteKeyFile(new_key, 2);

  // Refused while a writer has the store, and with a new key that is no key.
  EXPECT_EQ(Store::RewrapMasterKey(Opts(), new_key).code(), StatusCode::kUnavailable);
  Close();
  const std::string junk = dir_.path() + "/junk.key";
  std::ofstream(junk) << "short";
  std::filesystem::permissions(junk, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(Store::RewrapMasterKey(Opts(), junk).code(), StatusCode::kInvalidArgument);
  key_file_ = new_key;  // the new key is not the store's yet
  EXPECT_EQ(Store::RewrapMasterKey(Opts(), old_key).code(), StatusCode::kPermissionDenied);
  key_file_ = old_key;

  ASSERT_TRUE(Store::RewrapMasterKey(Opts(), new_key).ok());
  auto with_old = Store::Open(Opts());
  ASSERT_FALSE(with_old.ok());
  EXPECT_EQ(with_old.status().code(), StatusCode::kPermissionDenied) << with_old.status().ToString();
  key_file_ = new_key;
  Open();
  EXPECT_EQ(State("a", 110), a);
  EXPECT_EQ(State("b", 110), b);
  std::vector<std::string> reasons;
  ASSERT_TRUE(store_
                  ->DeadLetters([&](const KafkaPosition&, const std::string& reason) {
                    reasons.push_back(reason);
                    return true;
                  })
                  .ok());
  EXPECT_EQ(reasons, std::vector<std::string>{"not JSON"});
  // A tenant first seen now gets a key wrapped under the new master key.
  Apply({Change('c', "c", 3, "z", 120, 8), End(8, 130, 1)});
  Reopen();
  EXPECT_EQ(State("c", 130), (std::map<std::string, std::string>{{Key(3), Json("c", 3, "z")}}));
  EXPECT_EQ(State("a", 130), a);
}

TEST_F(StoreTest, RotatedDataKeyEncryptsNewWritesAndOldOnesStayReadable) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 110, 1)});
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  auto& reader = *ro.value();
  EXPECT_EQ(StateOf(reader, "a", 110).size(), 1u);  // the reader has a's key cached now

  auto id = store_->RotateDataKey(TenantId("a"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(store_->RotateDataKey(TenantId("nobody")).status().code(), StatusCode::kNotFound);
  Apply({Change('u', "a", 1, "x2", 120, 8), Change('c', "a", 2, "y", 121, 8), End(8, 130, 2)});
  const std::map<std::string, std::string> at110{{Key(1), Json("a", 1, "x")}},
      at130{{Key(1), Json("a", 1, "x2")}, {Key(2), Json("a", 2, "y")}};
  EXPECT_EQ(State("a", 110), at110);
  EXPECT_EQ(State("a", 130), at130);
  EXPECT_EQ(Hist("a", 0, 130).size(), 3u);
  ASSERT_TRUE(reader.Refresh().ok());
  EXPECT_EQ(StateOf(reader, "a", 110), at110);
  EXPECT_EQ(StateOf(reader, "a", 130), at130) << "the reader reloads the key record when it catches up";
  ro.value().reset();

  // The versions before the rotation name the old key, those after it the new one.
  Close();
  std::set<uint32_t> ids_before, ids_after;
  for (const auto& [k, v] : RawDump(true)) {
    if (!k.starts_with("versions|" + std::string("\0\1a", 3)) || v.size() < 9) continue;
    uint64_t inverted = 0;  // the key ends with ~u64(change_lsn), big-endian
    for (size_t i = k.size() - 8; i < k.size(); ++i) inverted = (inverted << 8) | static_cast<uint8_t>(k[i]);
    auto key_id = timevault::crypto::PeekKeyId(std::string_view(v).substr(9));  // after flags(1) and xid(8)
    ASSERT_TRUE(key_id.ok());
    (~inverted < 110 ? ids_before : ids_after).insert(*key_id);
  }
  ASSERT_EQ(ids_before.size(), 1u);
  EXPECT_EQ(ids_after, std::set<uint32_t>{*id});
  EXPECT_NE(*ids_before.begin(), *id);
  Open();
  EXPECT_EQ(State("a", 130), at130);
}

// Each key record is wrapped bound to its tenant (the binding is the AAD of
// the wrap): whoever writes the store's files and swaps two tenants' records
// gets a clear error on both, not one tenant's data under the other's name.
TEST_F(StoreTest, KeyRecordsSwappedBetweenTenantsDoNotUnwrap) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "b", 1, "y", 101, 7), End(7, 110, 2)});
  Close();
  const std::string key_a("\0\1a", 3), key_b("\0\1b", 3);  // T(tenant)
  for (const auto& [k, v] : RawDump(true)) {
    if (!k.starts_with("keys|")) continue;
    ASSERT_EQ(v.size() % timevault::crypto::MasterKey::kWrappedKeyBytes, 0u) << k;
    EXPECT_TRUE(timevault::crypto::MasterKey::IsBound(v)) << "every record bound (format 2): " << k;
  }
  EditRaw([&](const std::string& cf, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    if (cf != "keys") return;
    std::string a, b;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), h, key_a, &a).ok());
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), h, key_b, &b).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, key_a, b).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, key_b, a).ok());
  });
  Open();  // the store's own key is intact: it opens
  for (const std::string tenant : {"a", "b"}) {
    Status st = store_->StateAt(TenantId(tenant), Lsn(110), {}, [](const Row&) { return true; });
    ASSERT_FALSE(st.ok()) << tenant;
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr("the key record of tenant " + tenant +
                                        " does not unwrap for that tenant under this store's master key"));
    EXPECT_THAT(st.message(), HasSubstr("moved or copied from another tenant's record"));
  }
}

// A store written by the code before bindings (its key records unbound)
// still opens; the first writable open binds every record, in one batch, and
// from then on an unbound record (copied in from an older copy) is refused.
TEST_F(StoreTest, AStoreWithUnboundKeyRecordsOpensAndIsBoundOnce) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), Change('c', "b", 1, "y", 101, 7), End(7, 110, 2)});
  const auto a110 = State("a", 110), b110 = State("b", 110);
  Close();
  std::string master(32, '\0');
  for (size_t i = 0; i < master.size(); ++i) master[i] = static_cast<char>(1 * 7 + i * 13 + 1);  // WriteKeyFile(.., 1)
  constexpr size_t n = timevault::crypto::MasterKey::kWrappedKeyBytes;
  std::string unbound_a;
  EditRaw([&](const std::string& cf, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    if (cf != "keys") return;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    std::vector<std::pair<std::string, std::string>> edits;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString(), record = it->value().ToString();
      std::string binding = "timevault/store-key";
      if (!key.empty()) binding = std::string("timevault/tenant-key\0", 21) + key.substr(2);  // T(tenant): u16 length
      std::string old;
      for (size_t at = 0; at < record.size(); at += n) {
        old += timevault::testing::UnboundWrappedKey(master, record.substr(at, n), binding);
      }
      ASSERT_EQ(old.size(), record.size()) << "every key opens with its binding";
      edits.emplace_back(key, old);
    }
    for (const auto& [k, v] : edits) ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, k, v).ok());
    ASSERT_EQ(edits.size(), 3u);  // the store's, a's and b's
    unbound_a = edits[1].second;
  });
  auto versions = [&] {
    std::string out;
    for (const auto& [k, v] : RawDump(true)) {
      if (k.starts_with("keys|")) out += std::to_string(static_cast<int>(v[0]));
    }
    return out;
  };
  ASSERT_EQ(versions(), "111");
  {
    auto ro = Store::Open(Opts(/*read_only=*/true));
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    EXPECT_EQ(StateOf(**ro, "a", 110), a110) << "a reader reads unbound records";
  }
  EXPECT_EQ(versions(), "111") << "a reader changes nothing";
  Open();
  EXPECT_EQ(State("a", 110), a110);
  EXPECT_EQ(State("b", 110), b110);
  Close();
  EXPECT_EQ(versions(), "222") << "the writer bound every record";
  EditRaw([&](const std::string& cf, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    if (cf == "keys") {
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, std::string("\0\1a", 3), unbound_a).ok());
    }
  });
  Open();
  Status st = store_->StateAt(TenantId("a"), Lsn(110), {}, [](const Row&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("is not bound to its owner (wrapped-key format 1) in a store whose key records "
                                      "are all bound"));
  EXPECT_EQ(State("b", 110), b110);
}

// 61 days of daily transactions updating 10 rows, with deletes, re-creates and
// a truncate; retention at day 61 keeps 30 days.
TEST_F(StoreTest, RetentionKeepsTheWindowExactAndDeletesOlderVersions) {
  Bootstrap();
  std::vector<uint64_t> commits;
  uint64_t lsn = 1000;
  for (int day = 0; day <= 60; ++day) {
    const int64_t xid = 100 + day;
    const int64_t t = kT0 + day * kDay;
    std::vector<IngestItem> batch;
    int count = 0;
    for (int id = 1; id <= 10; ++id) {
      if (id == 10 && day >= 5) continue;              // row 10 deleted on day 5, never back
      if (id == 9 && day >= 20 && day < 40) continue;  // row 9 deleted on day 20, back on day 40
      char op = day == 0 || (id == 9 && day == 40) ? 'c' : 'u';
      if ((id == 10 && day == 4) || (id == 9 && day == 19)) op = 'd';
      batch.push_back(Change(op, "a", id, "d" + std::to_string(day), lsn++, xid, t));
      ++count;
    }
    if (day == 45) {  // a truncate of another table
      StoreEvent tr;
      tr.kind = EventKind::kChange;
      tr.op = 't';
      tr.table = "public.other";
      tr.envelope = "{\"op\":\"t\"}";
      tr.change_lsn = Lsn(lsn++);
      tr.xid = xid;
      tr.commit_time = CommitTime(t);
      batch.push_back(At("tv.public.other", 0, tr));
      ++count;
    }
    batch.push_back(End(xid, lsn++, count, t));
    commits.push_back(lsn - 1);
    Apply(batch);
  }
  Apply({At("tv.public.other", 0,
            RowEvent('c', "a", 1, Json("a", 1, "o"), lsn++, 200, kT0 + 60 * kDay + 1, "public.other")),
         End(200, lsn++, 1, kT0 + 60 * kDay + 1)});
  std::map<uint64_t, std::map<std::string, std::string>> expected;
  for (int day = 31; day <= 60; ++day) expected[commits[day]] = State("a", commits[day]);
  expected[lsn - 1] = State("a", lsn - 1);
  Close();
  const size_t versions_before = CountPrefix(RawDump(false), "versions|");
  Open();

  ASSERT_TRUE(store_->RunRetention(CommitTime(kT0 + 61 * kDay)).ok());
  for (const auto& [point, rows] : expected) EXPECT_EQ(State("a", point), rows) << point;
  Status s = store_->StateAt(TenantId("a"), Lsn(commits[30]), {}, [](const Row&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("before the retention window"));
  EXPECT_EQ(store_->ResolveTime(CommitTime(kT0 + 10 * kDay)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(store_->ResolveTime(CommitTime(kT0 + 31 * kDay + 5))->lsn.value(), commits[31]);
  // Days 32..60: 9 rows a day (row 10 is gone), row 9 absent on days 32..39.
  EXPECT_EQ(Hist("a", commits[31], commits[60]).size(), 29u * 9 - 8);
  // Retention again, and new data after it, change nothing of the window.
  ASSERT_TRUE(store_->RunRetention(CommitTime(kT0 + 61 * kDay)).ok());
  Apply({Change('u', "a", 1, "late", lsn++, 300, kT0 + 62 * kDay), End(300, lsn++, 1, kT0 + 62 * kDay)});
  for (const auto& [point, rows] : expected) EXPECT_EQ(State("a", point), rows) << point;
  Close();
  const auto dump = RawDump(false);
  const size_t versions_after = CountPrefix(dump, "versions|");
  // Before: 10 rows x 61 days (less the deleted days) + 1; after: about 30 days' worth.
  EXPECT_GT(versions_before, 500u);
  EXPECT_LT(versions_after, versions_before / 2 + 10);
  // The rows' timelines shrink alike: one entry per version left (row 10 and
  // row 9's delete before the floor are gone).
  EXPECT_EQ(CountPrefix(dump, "rowtenant|"), versions_after);
  Open();
  EXPECT_EQ(State("a", lsn - 1)[Key(1)], Json("a", 1, "late"));
}

// A store written before the `current` column family existed: the writer's
// next open indexes every row's newest version; a reader refuses it until then.
TEST_F(StoreTest, StoreWithoutCurrentIsIndexedAtTheWritersOpen) {
  Bootstrap();
  Apply({Snapshot("a", 1, "snap", 50), Change('c', "a", 2, "x", 100, 7), Change('c', "b", 3, "x", 101, 7),
         End(7, 110, 2)});
  Apply({Change('u', "a", 2, "y", 120, 8), Change('d', "b", 3, "x", 121, 8), End(8, 130, 2)});
  const auto a110 = State("a", 110), a130 = State("a", 130), b110 = State("b", 110);
  ASSERT_EQ(a130.size(), 2u);
  Close();
  // As an older build left it: no `current` entries, no marker.
  EditRaw([](const std::string& cf, rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* h) {
    if (cf == "current") {
      ASSERT_TRUE(raw->DeleteRange(rocksdb::WriteOptions(), h, "", "\xff\xff").ok());
    }
    if (cf == "meta") {
      ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), h, "current-ready").ok());
    }
  });
  EXPECT_EQ(CountPrefix(RawDump(false), "current|"), 0u);
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_FALSE(ro.ok());
  EXPECT_EQ(ro.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(ro.status().message(), HasSubstr("open it once with `timevault store`"));
  Open();
  EXPECT_EQ(State("a", 110), a110);
  EXPECT_EQ(State("a", 130), a130);
  EXPECT_EQ(State("b", 110), b110);
  EXPECT_TRUE(State("b", 130).empty());
  Close();
  EXPECT_EQ(CountPrefix(RawDump(false), "current|"), 3u);  // rows a/1, a/2, b/3
  Open();
}

TEST_F(StoreTest, ReadOnlyStoreSeesTheWritersDataAfterRefresh) {
  Bootstrap();
  Apply({Change('c', "a", 1, "x", 100, 7), End(7, 110, 1)});
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  auto& reader = *ro.value();
  EXPECT_EQ(reader.RecoverablePoint()->lsn.value(), 110u);
  Apply({Change('c', "a", 2, "y", 120, 8), End(8, 130, 1)});
  EXPECT_EQ(reader.RecoverablePoint()->lsn.value(), 110u);
  ASSERT_TRUE(reader.Refresh().ok());
  EXPECT_EQ(reader.RecoverablePoint()->lsn.value(), 130u);
  size_t n = 0;
  ASSERT_TRUE(reader.StateAt(TenantId("a"), Lsn(130), {}, [&](const Row&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(reader.Apply({}).code(), StatusCode::kFailedPrecondition);
}

// History envelopes are compressed with a dictionary trained from the first
// ones with their row values blanked (docs/store.md, "Envelope
// compression"): History returns them byte for byte, before and after a
// reopen and through a read-only reader; the dictionary holds no row value;
// the envelopes take less room than their text.
TEST_F(StoreTest, EnvelopesAreCompressedWithADictionaryThatHoldsNoRowValue) {
  // Envelopes as capture writes them: source metadata around the row images.
  auto envelope = [](char op, int id, const std::string& before, const std::string& after, uint64_t lsn, int64_t xid) {
    const std::string ts = std::to_string(1'795'837'904'865 + lsn);
    return "{\"before\":" + before + ",\"after\":" + after +
           ",\"source\":{\"version\":\"3.6.1.Final\",\"connector\":\"postgresql\",\"name\":\"tv\","
           "\"ts_ms\":" +
           ts + ",\"snapshot\":\"false\",\"db\":\"app\",\"sequence\":\"[\\\"" + std::to_string(lsn - 1) + "\\\",\\\"" +
           std::to_string(lsn) + "\\\"]\",\"ts_us\":" + ts + "123,\"ts_ns\":" + ts +
           "123000,\"schema\":\"public\",\"table\":\"items\",\"txId\":" + std::to_string(xid) +
           ",\"lsn\":" + std::to_string(lsn) +
           ",\"xmin\":null,\"origin\":null,\"origin_lsn\":null},\"transaction\":{\"id\":\"" + std::to_string(xid) +
           ":" + std::to_string(lsn) + "\",\"total_order\":" + std::to_string(id) +
           ",\"data_collection_order\":" + std::to_string(id) + "},\"op\":\"" + std::string(1, op) +
           "\",\"ts_ms\":" + ts + "}";
  };
  std::vector<std::vector<IngestItem>> batches = {{Heartbeat(10, kT0 - 1'000'000, std::vector<HeartbeatOffset>{})}};
  std::vector<std::string> written;  // the envelopes, in commit order
  std::map<int, std::string> rows;
  uint64_t lsn = 100;
  for (int64_t xid = 7; xid < 7 + 40; ++xid) {
    std::vector<IngestItem> batch;
    for (int id = 1; id <= 5; ++id) {
      const char op = rows.count(id) ? 'u' : 'c';
      const std::string name = "ROWVALUE-" + std::to_string(xid) + "-" + std::to_string(id);
      batch.push_back(Change(op, "a", id, name, ++lsn, xid));
      const std::string before = op == 'u' ? rows[id] : "null";
      rows[id] = Json("a", id, name);
      batch.back().event->envelope = envelope(op, id, before, rows[id], lsn, xid);
      written.push_back(batch.back().event->envelope);
    }
    int64_t count = 5;
    if (xid == 7) {  // a logical message among the samples: its content is data too
      StoreEvent m;
      m.kind = EventKind::kMessage;
      m.op = 'm';
      m.envelope = "{\"op\":\"m\",\"message\":{\"prefix\":\"app\",\"content\":\"MSGCONTENT-secret\"}}";
      m.change_lsn = Lsn(++lsn);
      m.xid = xid;
      m.transactional = true;
      m.commit_time = CommitTime(kT0);
      batch.push_back(At("tv.message", 0, m));
      ++count;
    }
    batch.push_back(End(xid, ++lsn, count));
    batches.push_back(std::move(batch));
  }
  for (const auto& batch : batches) Apply(batch);
  ASSERT_EQ(Hist("", 0, lsn).size(), 1u);
  EXPECT_THAT(Hist("", 0, lsn)[0].envelope, HasSubstr("MSGCONTENT-secret"));
  auto envelopes = [&](Store& store) {
    std::vector<std::string> got;
    EXPECT_TRUE(store
                    .History(TenantId("a"), Lsn(0), Lsn(lsn), {}, {},
                             [&](const HistoryEvent& e) {
                               got.push_back(e.envelope);
                               return true;
                             })
                    .ok());
    return got;
  };
  EXPECT_EQ(envelopes(*store_), written);
  Reopen();  // the writer loads the dictionary; later envelopes use it
  auto last = Change('u', "a", 1, "ROWVALUE-after-reopen", ++lsn, 100);
  last.event->envelope = envelope('u', 1, rows[1], Json("a", 1, "ROWVALUE-after-reopen"), lsn, 100);
  written.push_back(last.event->envelope);
  Apply({last, End(100, ++lsn, 1)});
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(envelopes(*ro.value()), written);
  ro.value().reset();
  Close();

  // What the log takes, and what it took without compression.
  auto log_bytes = [](const std::map<std::string, std::string>& dump) {
    size_t n = 0;
    for (const auto& [k, v] : dump) n += k.starts_with("log|") ? v.size() : 0;
    return n;
  };
  const auto dump = RawDump(false);
  size_t dictionaries = 0;
  for (const auto& [k, v] : dump) {
    if (!k.starts_with("meta|dict/")) continue;
    ++dictionaries;
    EXPECT_THAT(v, ::testing::Not(HasSubstr("ROWVALUE")));
    EXPECT_THAT(v, ::testing::Not(HasSubstr("MSGCONTENT")));
    EXPECT_THAT(v, HasSubstr("postgresql"));  // source metadata is what it holds
  }
  EXPECT_EQ(dictionaries, 1u);
  EXPECT_EQ(dump.count("meta|dict-active"), 1u);
  const size_t compressed = log_bytes(dump);
  const std::string compressed_path = path_;
  path_ = dir_.path() + "/uncompressed";
  {
    Store::Options o = Opts();
    o.envelope_dictionary_samples = 0;
    auto plain = Store::Open(o);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    for (const auto& batch : batches) ASSERT_TRUE(plain.value()->Apply(batch).ok());
  }
  const auto plain_dump = RawDump(false);
  EXPECT_EQ(plain_dump.count("meta|dict-active"), 0u);
  const size_t uncompressed = log_bytes(plain_dump);
  // The first kDictionarySamples envelopes of 200 are stored as they are.
  EXPECT_LT(compressed, uncompressed * 6 / 10) << compressed << " against " << uncompressed;
  path_ = compressed_path;
  Open();
}

// Flushes and compactions write with O_DIRECT where the file system takes it
// (docs/store.md, "Files"): the writer's RocksDB options say so, and what
// went through it reads back after a full flush and compaction and a reopen.
TEST_F(StoreTest, FlushesWriteWithDirectIoAndReadBack) {
  Bootstrap();
  Apply({Change('c', "a", 1, "flushed-row", 100, 7), End(7, 110, 1)});
  ASSERT_TRUE(store_->Compact().ok());
  EXPECT_THAT(WriterOptions(path_), HasSubstr("use_direct_io_for_flush_and_compaction=true"));
  EXPECT_FALSE(fs::exists(fs::path(path_) / ".direct-io-probe"));
  Close();
  Open();
  EXPECT_THAT(State("a", 110)[Key(1)], HasSubstr("flushed-row"));
}

// A store whose envelope dictionary is gone (a damaged copy): the writer
// refuses to open it, and a reader's History stops at the first packed
// envelope, with errors naming the dictionary, never garbage.
TEST_F(StoreTest, AMissingEnvelopeDictionaryIsAClearError) {
  Bootstrap();
  constexpr int kEvents = static_cast<int>(kDictionarySamples) + 6;
  std::vector<IngestItem> batch;
  for (int id = 1; id <= kEvents; ++id) batch.push_back(Change('c', "a", id, "row", 100 + id, 7));
  batch.push_back(End(7, 200, kEvents));
  Apply(batch);
  ASSERT_EQ(Hist("a", 0, 200).size(), static_cast<size_t>(kEvents));
  Close();
  EditRaw([](const std::string& cf, rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* h) {
    if (cf != "meta") return;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), h));
    for (it->Seek("dict/"); it->Valid() && it->key().starts_with("dict/"); it->Next()) {
      ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), h, it->key()).ok());
    }
  });
  auto writer = Store::Open(Opts());
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(writer.status().message(), HasSubstr("active envelope dictionary"));
  auto ro = Store::Open(Opts(/*read_only=*/true));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  size_t read = 0;
  Status s = ro.value()->History(TenantId("a"), Lsn(0), Lsn(200), {}, {}, [&](const HistoryEvent& e) {
    EXPECT_THAT(e.envelope, HasSubstr("\"name\":\"row\""));
    return ++read, true;
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("is missing"));
  // The envelopes stored before the dictionary: the one that completed the
  // samples is the first packed.
  EXPECT_EQ(read, kDictionarySamples - 1);
}

// A file system that refuses O_DIRECT (ramfs: the tests run as root, as
// they must for Postgres's own user) keeps buffered flushes: without the
// probe the store does not even open there (RocksDB: "Direct I/O is not
// supported by the specified DB").
TEST_F(StoreTest, FlushesStayBufferedWhereTheFileSystemRefusesDirectIo) {
  Close();
  const std::string mount_point = dir_.path() + "/ramfs";
  fs::create_directories(mount_point);
  ASSERT_EQ(::mount("none", mount_point.c_str(), "ramfs", 0, nullptr), 0) << std::strerror(errno);
  struct Unmount {
    std::string at;
    ~Unmount() { ::umount(at.c_str()); }
  } unmount{mount_point};
  path_ = mount_point + "/store";
  Open();
  ASSERT_NE(store_, nullptr);
  Bootstrap();
  Apply({Change('c', "a", 1, "buffered-row", 100, 7), End(7, 110, 1)});
  ASSERT_TRUE(store_->Compact().ok());
  Apply({Change('u', "a", 1, "after-the-flush", 120, 8), End(8, 130, 1)});
  ASSERT_TRUE(store_->Compact().ok());
  EXPECT_THAT(WriterOptions(path_), HasSubstr("use_direct_io_for_flush_and_compaction=false"));
  Close();
  Open();
  EXPECT_THAT(State("a", 110)[Key(1)], HasSubstr("buffered-row"));
  EXPECT_THAT(State("a", 130)[Key(1)], HasSubstr("after-the-flush"));
  Close();
}

// Invariant 4: the keys a StateAt touches depend on the rows, not on how many
// versions each row has (docs/store.md, "Visibility").
TEST_F(StoreTest, StateAtCostDoesNotGrowWithHistory) {
  Bootstrap();
  constexpr int kRows = 200;
  constexpr int kVersions = 50;
  uint64_t lsn = 100;
  int64_t xid = 10;
  std::vector<IngestItem> batch;
  for (int id = 0; id < kRows; ++id) batch.push_back(Change('c', "one", id, "v", lsn++, xid));
  batch.push_back(End(xid++, lsn++, kRows));
  Apply(batch);
  uint64_t middle = 0;
  for (int v = 0; v < kVersions; ++v) {
    batch.clear();
    for (int id = kRows; id < 2 * kRows; ++id) {  // other rows than tenant "one"'s
      batch.push_back(Change(v == 0 ? 'c' : 'u', "fifty", id, "v" + std::to_string(v), lsn++, xid));
    }
    batch.push_back(End(xid++, lsn++, kRows));
    Apply(batch);
    if (v == kVersions / 2) middle = lsn - 1;
  }
  auto cost = [&](const std::string& tenant, uint64_t point) {
    const auto before = store_->Stats();
    EXPECT_EQ(State(tenant, point).size(), static_cast<size_t>(kRows));
    const auto after = store_->Stats();
    return (after.read_seeks - before.read_seeks) + (after.read_steps - before.read_steps);
  };
  const uint64_t one = cost("one", lsn - 1);
  const uint64_t fifty_now = cost("fifty", lsn - 1);
  const uint64_t fifty_middle = cost("fifty", middle);
  EXPECT_LE(one, kRows + 10u);  // one `current` entry per row
  EXPECT_LE(fifty_now, one + 10);
  // A row changed after the point: one seek into its versions and a step.
  EXPECT_LE(fifty_middle, 3u * kRows + 10);
}

// ---------------------------------------------------------------------------
// Debezium 3.6.1's own output for the compat workload, parsed here (the real
// parser is ParseEvent's job) into StoreEvents.

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

bool IsPlaceholder(const rapidjson::Value& v) {
  constexpr std::string_view kText = "__debezium_unavailable_value";
  if (v.IsString()) {
    std::string_view s(v.GetString(), v.GetStringLength());
    return s == kText || s == "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";
  }
  return v.IsArray() && v.Size() == 1 && v[0].IsString() && std::string_view(v[0].GetString()) == kText;
}

std::optional<StoreEvent> ParseReference(const rapidjson::Value& line) {
  const std::string topic = line["topic"].GetString();
  const rapidjson::Value& value = line["value"];
  StoreEvent e;
  if (topic.starts_with("__debezium-heartbeat")) return std::nullopt;  // Debezium's carry no LSN
  if (value.IsNull()) {
    e.kind = EventKind::kTombstone;
    return e;
  }
  if (topic == "compat.transaction") {
    const std::string id = value["id"].GetString();
    e.kind =
        std::string(value["status"].GetString()) == "END" ? EventKind::kTransactionEnd : EventKind::kTransactionBegin;
    e.tx_xid = std::stoll(id.substr(0, id.find(':')));
    e.tx_lsn = Lsn(std::stoull(id.substr(id.find(':') + 1)));
    if (value["event_count"].IsInt64()) e.event_count = value["event_count"].GetInt64();
    e.tx_time = CommitTime(value["ts_ms"].GetInt64() * 1000);
    return e;
  }
  const rapidjson::Value& source = value["source"];
  e.change_lsn = Lsn(source["lsn"].GetUint64());
  if (source["txId"].IsInt64()) e.xid = source["txId"].GetInt64();
  e.commit_time = CommitTime(source["ts_us"].GetInt64());
  e.envelope = Compact(value);
  e.op = value["op"].GetString()[0];
  if (topic == "compat.message") {
    e.kind = EventKind::kMessage;
    e.transactional = !value["transaction"].IsNull();
    return e;
  }
  e.kind = EventKind::kChange;
  e.snapshot = std::string(source["snapshot"].GetString()) != "false";
  e.table = std::string(source["schema"].GetString()) + "." + source["table"].GetString();
  if (e.op == 't') return e;
  e.pk = Compact(line["key"]);
  const rapidjson::Value& row = e.op == 'd' ? value["before"] : value["after"];
  e.row = Compact(row);
  if (row.HasMember("tenant_id") && row["tenant_id"].IsString() && row["tenant_id"].GetStringLength() > 0) {
    e.tenant = row["tenant_id"].GetString();
    e.tenant_known = true;
  }
  for (auto m = row.MemberBegin(); m != row.MemberEnd(); ++m) {
    if (IsPlaceholder(m->value)) e.unavailable_columns.emplace_back(m->name.GetString());
  }
  for (const auto& h : line["headers"].GetArray()) {
    if (std::string_view(h[0].GetString()) == "__debezium.oldkey") e.old_pk = h[1].GetString();
  }
  return e;
}

TEST_F(StoreTest, DebeziumReferenceEventsEndToEnd) {
  std::ifstream in(std::string(TV_SOURCE_DIR) + "/tests/compat/debezium-reference/schemas-false.jsonl");
  ASSERT_TRUE(in.good());
  std::vector<IngestItem> items;
  std::vector<uint64_t> commits;
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_FALSE(d.HasParseError());
    auto ev = ParseReference(d);
    if (!ev) continue;
    if (ev->kind == EventKind::kTransactionEnd) commits.push_back(ev->tx_lsn.value());
    items.push_back(At(d["topic"].GetString(), 0, std::move(*ev)));
  }
  // Applied in small batches, then a heartbeat at the last commit.
  for (size_t i = 0; i < items.size(); i += 7) {
    Apply(std::vector<IngestItem>(items.begin() + i, items.begin() + std::min(items.size(), i + 7)));
  }
  Apply({Heartbeat(commits.back(), kT0)});
  EXPECT_EQ(Recoverable(), commits.back());
  EXPECT_EQ(store_->Stats().dead_letters, 0u);
  EXPECT_EQ(store_->Stats().toast_unresolved, 0u);

  std::string snapshot_body;
  for (const auto& item : items) {
    if (item.event->op == 'r' && item.event->table == "public.documents" && item.event->tenant == "tenant-a") {
      rapidjson::Document row;
      row.Parse(item.event->row.c_str());
      snapshot_body = row["body"].GetString();
    }
  }
  ASSERT_GT(snapshot_body.size(), 2000u);
  for (const std::string tenant : {"tenant-a", "tenant-b", "tenant-c"}) {
    for (uint64_t point : commits) {
      for (const auto& [key, json] : State(tenant, point)) {
        EXPECT_EQ(json.find("__debezium_unavailable_value"), std::string::npos) << key << " at " << point;
      }
    }
    for (const auto& e : Hist(tenant, 0, commits.back())) {
      EXPECT_EQ(e.envelope.find("__debezium_unavailable_value"), std::string::npos) << e.pk;
    }
  }
  auto a = State("tenant-a", commits.back());
  // documents 1 -> 2 (key change in the same statement as an unchanged TOAST body).
  EXPECT_EQ(a.count("public.documents {\"tenant_id\":\"tenant-a\",\"doc_id\":1}"), 0u);
  EXPECT_THAT(a["public.documents {\"tenant_id\":\"tenant-a\",\"doc_id\":2}"], HasSubstr(snapshot_body));
  EXPECT_EQ(a.count("public.all_types {\"id\":3}"), 0u);  // key change 3 -> 100, delete without tenant
  EXPECT_EQ(a.count("public.all_types {\"id\":100}"), 1u);
  EXPECT_EQ(a.count("public.line_items {\"item_id\":1}"), 0u);  // truncated
  auto b = State("tenant-b", commits.back());
  EXPECT_EQ(b.count("public.line_items {\"item_id\":5}"), 1u);
  EXPECT_EQ(b.count("public.line_items {\"item_id\":8}"), 0u);  // deleted, tenant "" in before
  EXPECT_EQ(b.count("billing.invoices {\"tenant_id\":\"tenant-b\",\"invoice_id\":2001}"), 0u);
  auto c = State("tenant-c", commits.back());
  EXPECT_EQ(c.count("public.documents {\"tenant_id\":\"tenant-c\",\"doc_id\":7}"), 1u);
}

// ---------------------------------------------------------------------------

TEST(MemoryStateReaderTest, StateHistoryAndTime) {
  MemoryStateReader m;
  const TenantId a("a");
  m.Put(a, Point{Lsn(10), CommitTime(100)}, "t", "{\"id\":1}", "{\"v\":1}");
  m.Put(a, Point{Lsn(20), CommitTime(200)}, "t", "{\"id\":1}", "{\"v\":2}");
  m.Put(a, Point{Lsn(20), CommitTime(200)}, "t", "{\"id\":2}", "{\"v\":9}");
  m.Put(a, Point{Lsn(30), CommitTime(300)}, "t", "{\"id\":2}", "");
  m.Put(TenantId("b"), Point{Lsn(30), CommitTime(300)}, "t", "{\"id\":3}", "{}");
  EXPECT_EQ(m.RecoverablePoint()->lsn.value(), 30u);
  EXPECT_EQ(m.ResolveTime(CommitTime(250))->lsn.value(), 20u);
  std::vector<std::string> rows;
  ASSERT_TRUE(m.StateAt(a, Lsn(20), {}, [&](const Row& r) { return rows.push_back(r.json), true; }).ok());
  EXPECT_EQ(rows, (std::vector<std::string>{"{\"v\":2}", "{\"v\":9}"}));
  rows.clear();
  ASSERT_TRUE(m.StateAt(a, Lsn(30), {}, [&](const Row& r) { return rows.push_back(r.json), true; }).ok());
  EXPECT_EQ(rows, (std::vector<std::string>{"{\"v\":2}"}));
  std::string ops;
  ASSERT_TRUE(m.History(a, Lsn(0), Lsn(30), {}, {}, [&](const HistoryEvent& e) { return ops += e.op, true; }).ok());
  EXPECT_EQ(ops, "cucd");
  m.SetRecoverable(Point{Lsn(20), CommitTime(200)});
  EXPECT_EQ(m.StateAt(a, Lsn(30), {}, [](const Row&) { return true; }).code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace timevault::store::test
