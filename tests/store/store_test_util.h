// Helpers for the store's unit tests: a store in a temp dir with a master
// key, builders of parsed events (StoreEvent) with consecutive Kafka offsets,
// and readers of the state as plain maps.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"
#include "timevault/store/store.h"

namespace timevault::store::test {

inline constexpr const char* kTable = "public.items";
inline constexpr const char* kTxnTopic = "tv.transaction";
inline constexpr const char* kHeartbeatTopic = "__debezium-heartbeat.tv";
inline constexpr int64_t kT0 = 1'780'000'000'000'000;  // a commit time, in microseconds

inline std::string Pk(int id) { return "{\"id\":" + std::to_string(id) + "}"; }

// Writes 32 non-text bytes derived from `seed`.
inline void WriteKeyFile(const std::string& path, uint8_t seed) {
  std::string bytes(32, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(seed * 7 + i * 13 + 1);
  std::ofstream(path, std::ios::binary) << bytes;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

class StoreTest : public ::testing::Test {
 protected:
  static constexpr size_t kDictionarySamples = 24;
  // The full-volume guard's reserve (Store::Options::min_free_mb); tests of
  // RocksDB's own write errors on a small volume turn it off.
  size_t min_free_mb_ = 256;

  StoreTest() {
    key_file_ = dir_.path() + "/master.key";
    WriteKeyFile(key_file_, 1);
    path_ = dir_.path() + "/store";
  }

  Store::Options Opts(bool read_only = false) const {
    Store::Options o;
    o.path = path_;
    o.key_file = key_file_;
    o.read_only = read_only;
    o.retention_days = 30;
    // Every test past a few dozen envelopes reads compressed ones (the
    // production default is 1000).
    o.envelope_dictionary_samples = kDictionarySamples;
    o.min_free_mb = min_free_mb_;
    return o;
  }

  void Open() {
    auto s = Store::Open(Opts());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Close() { store_.reset(); }
  void Reopen() {
    Close();
    Open();
  }
  void SetUp() override { Open(); }

  // ---- item builders: each takes the next offset of its partition ----
  IngestItem At(const std::string& topic, int32_t partition, StoreEvent ev) {
    IngestItem item;
    item.position = KafkaPosition{topic, partition, next_offset_[{topic, partition}]++};
    item.event = std::move(ev);
    return item;
  }

  static StoreEvent RowEvent(char op, const std::string& tenant, int id, const std::string& row, uint64_t lsn,
                             std::optional<int64_t> xid, int64_t time_us, const std::string& table = kTable) {
    StoreEvent e;
    e.kind = EventKind::kChange;
    e.op = op;
    e.table = table;
    e.tenant = tenant;
    e.tenant_known = !tenant.empty();
    e.pk = Pk(id);
    e.row = row;
    const std::string before = op == 'd' ? row : "null";
    const std::string after = op == 'd' ? "null" : row;
    e.envelope = "{\"before\":" + before + ",\"after\":" + after + ",\"source\":{\"lsn\":" + std::to_string(lsn) +
                 ",\"txId\":" + (xid ? std::to_string(*xid) : "null") + "},\"op\":\"" + std::string(1, op) + "\"}";
    e.change_lsn = Lsn(lsn);
    e.xid = xid;
    e.commit_time = CommitTime(time_us);
    e.snapshot = op == 'r';
    return e;
  }

  static std::string Json(const std::string& tenant, int id, const std::string& name) {
    return "{\"id\":" + std::to_string(id) + ",\"tenant_id\":\"" + tenant + "\",\"name\":\"" + name + "\"}";
  }

  // A change on the data topic (partition 0).
  IngestItem Change(char op, const std::string& tenant, int id, const std::string& name, uint64_t lsn, int64_t xid,
                    int64_t time_us = kT0) {
    return At("tv.public.items", 0, RowEvent(op, tenant, id, Json(tenant, id, name), lsn, xid, time_us));
  }
  IngestItem Snapshot(const std::string& tenant, int id, const std::string& name, uint64_t lsn) {
    return At("tv.public.items", 0, RowEvent('r', tenant, id, Json(tenant, id, name), lsn, 1, kT0));
  }
  IngestItem End(int64_t xid, uint64_t commit_lsn, int64_t count, int64_t time_us = kT0) {
    StoreEvent e;
    e.kind = EventKind::kTransactionEnd;
    e.tx_xid = xid;
    e.tx_lsn = Lsn(commit_lsn);
    e.event_count = count;
    e.tx_time = CommitTime(time_us / 1000 * 1000);
    return At(kTxnTopic, 0, std::move(e));
  }
  IngestItem Begin(int64_t xid, uint64_t lsn) {
    StoreEvent e;
    e.kind = EventKind::kTransactionBegin;
    e.tx_xid = xid;
    e.tx_lsn = Lsn(lsn);
    return At(kTxnTopic, 0, std::move(e));
  }
  // A heartbeat listing the last offset of every partition used so far
  // (what capture had acknowledged), or the given ones.
  IngestItem Heartbeat(uint64_t lsn, int64_t time_us, std::optional<std::vector<HeartbeatOffset>> offsets = {}) {
    StoreEvent e;
    e.kind = EventKind::kHeartbeat;
    e.heartbeat_lsn = Lsn(lsn);
    e.heartbeat_time = CommitTime(time_us);
    if (offsets) {
      e.heartbeat_offsets = *offsets;
    } else {
      for (const auto& [part, next] : next_offset_) e.heartbeat_offsets.push_back({part.first, part.second, next - 1});
    }
    return At(kHeartbeatTopic, 0, std::move(e));
  }

  void Apply(const std::vector<IngestItem>& items) {
    Status s = store_->Apply(items);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // Establishes the recoverable point (a heartbeat with nothing to wait for).
  void Bootstrap(uint64_t lsn = 10) { Apply({Heartbeat(lsn, kT0 - 1'000'000, std::vector<HeartbeatOffset>{})}); }

  // ---- readers ----
  std::map<std::string, std::string> State(const std::string& tenant, uint64_t lsn,
                                           const std::vector<std::string>& tables = {}) {
    return StateOf(*store_, tenant, lsn, tables);
  }
  // The same, read from `store` (a read-only one, say).
  static std::map<std::string, std::string> StateOf(Store& store, const std::string& tenant, uint64_t lsn,
                                                    const std::vector<std::string>& tables = {}) {
    std::map<std::string, std::string> rows;
    Status s = store.StateAt(TenantId(tenant), Lsn(lsn), tables, [&](const Row& r) {
      rows[r.table + " " + r.pk] = r.json;
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return rows;
  }
  std::vector<HistoryEvent> Hist(const std::string& tenant, uint64_t from, uint64_t to,
                                 std::optional<std::string> table = {}, std::optional<std::string> pk = {}) {
    std::vector<HistoryEvent> out;
    Status s = store_->History(TenantId(tenant), Lsn(from), Lsn(to), table, pk, [&](const HistoryEvent& e) {
      out.push_back(e);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  uint64_t Recoverable() {
    auto p = store_->RecoverablePoint();
    return p.ok() ? p->lsn.value() : 0;
  }
  static std::string Key(int id) { return std::string(kTable) + " " + Pk(id); }

  // Every key and value of every column family (the store must be closed).
  std::map<std::string, std::string> RawDump(bool skip_meta);
  // Calls `edit` with each column family of the closed store, opened for
  // writing (as a damaged or older store would be).
  void EditRaw(const std::function<void(const std::string& cf, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h)>& edit);

  testing::TempDir dir_;
  std::string key_file_, path_;
  std::unique_ptr<Store> store_;
  std::map<std::pair<std::string, int32_t>, int64_t> next_offset_;
};

// The column families of the closed store at `path`, each with RocksDB's
// "max" merge operator (`current` is written with it).
inline std::vector<rocksdb::ColumnFamilyDescriptor> RawFamilies(const std::string& path) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::shared_ptr<rocksdb::MergeOperator> max;
  EXPECT_TRUE(rocksdb::MergeOperator::CreateFromString(rocksdb::ConfigOptions(), "max", &max).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) {
    rocksdb::ColumnFamilyOptions o;
    o.merge_operator = max;
    cfs.emplace_back(n, o);
  }
  return cfs;
}

inline void StoreTest::EditRaw(
    const std::function<void(const std::string& cf, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h)>& edit) {
  const auto cfs = RawFamilies(path_);
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path_, cfs, &h, &raw).ok());
  for (size_t i = 0; i < cfs.size(); ++i) edit(cfs[i].name, raw, h[i]);
  for (auto* x : h) raw->DestroyColumnFamilyHandle(x);
  delete raw;
}

inline std::map<std::string, std::string> StoreTest::RawDump(bool skip_meta) {
  const auto cfs = RawFamilies(path_);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path_, cfs, &handles, &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::map<std::string, std::string> out;
  if (!s.ok()) return out;
  for (size_t i = 0; i < handles.size(); ++i) {
    const std::string& name = cfs[i].name;
    if (skip_meta && name == "meta") continue;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) out[name + "|" + it->key().ToString()] = it->value().ToString();
    EXPECT_TRUE(it->status().ok()) << name << ": " << it->status().ToString();
  }
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
  delete raw;
  return out;
}

}  // namespace timevault::store::test
