// Store: opening the RocksDB layout, the master-key check, offsets, stats,
// dead letters and the read-only (secondary) mode. See docs/store.md.
#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/impl.h"

namespace timevault::store {
namespace {

using engine::PointRec;

constexpr std::string_view kCheckPlaintext = "timevault store: master key check";
// Memtables per column family: larger ones mean fewer, larger flushes while
// ingesting (the busy families: versions, log, rowtenant, current). Capped
// by the memory budget (Memory below).
constexpr size_t kWriteBufferSize = 128 << 20;

// The writer's RocksDB memory, from Options::memory_budget_mb (docs/store.md,
// "Memory and disk bounds"): every column family's memtables together stay
// under half of it (a shared WriteBufferManager flushes the largest one
// when they reach it), the block cache (shared by all families) takes a
// quarter, and the write-ahead log is kept under the memtables' half:
// RocksDB keeps a WAL file until every family that wrote into it has
// flushed, so without `max_total_wal_size` a quiet family beside the busy
// ones pinned every WAL file (7.7 GB after a 10M-row snapshot).
struct Memory {
  explicit Memory(size_t budget_mb) {
    const size_t budget = std::max<size_t>(budget_mb, 64) << 20;
    memtables = budget / 2;
    write_buffer = std::min(kWriteBufferSize, memtables / 4);
    cache = rocksdb::NewLRUCache(budget / 4);
    manager = std::make_shared<rocksdb::WriteBufferManager>(memtables);
  }
  size_t memtables = 0;
  size_t write_buffer = 0;
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> manager;
};

// Ingest looks keys up that are mostly absent (the duplicate check in `log`
// and `pending`, a transaction's `txns` entry): `point_lookups` adds a
// whole-key bloom filter to the memtable so such a miss costs a few hashes
// instead of a skiplist search.
enum class Lookups { kRare, kPoint };

// Values that are ciphertext (enc(...)) do not compress: compressing their
// blocks costs flush and compaction CPU, and reading them a decompression,
// for nothing.
enum class Values { kPlain, kEncrypted };

bool ZstdSupported() {
  static const bool supported = [] {
    for (auto c : rocksdb::GetSupportedCompressions()) {
      if (c == rocksdb::kZSTD) return true;
    }
    return false;
  }();
  return supported;
}

rocksdb::ColumnFamilyOptions CfOptions(const Memory& memory, std::shared_ptr<const rocksdb::SliceTransform> prefix,
                                       Lookups lookups = Lookups::kRare, Values values = Values::kPlain) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = memory.write_buffer;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = memory.cache;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.whole_key_filtering = true;
  // Block checksums: XXH3 (RocksDB's recommended one) instead of CRC32C,
  // which Debian's portable RocksDB build computes with a lookup table.
  t.checksum = rocksdb::kXXH3;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  if (prefix) {
    o.prefix_extractor = std::move(prefix);
    o.memtable_prefix_bloom_size_ratio = 0.05;
  }
  if (lookups == Lookups::kPoint) {
    o.memtable_prefix_bloom_size_ratio = 0.05;
    o.memtable_whole_key_filtering = true;
  }
  o.compression = values == Values::kEncrypted ? rocksdb::kNoCompression : rocksdb::kLZ4Compression;
  // The last level (most of the bytes once compacted) in zstd: there the
  // keys' repeated parts (tenant, table, key JSON) and the plaintext
  // families compress further, at the cost of compaction CPU only, never on
  // the flush path that ingest waits behind.
  o.bottommost_compression = ZstdSupported() ? rocksdb::kZSTD : o.compression;
  return o;
}

// Writes `batch` and waits for the disk.
Status WriteSynced(rocksdb::DB* db, rocksdb::WriteBatch* batch, std::string_view what) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db->Write(wo, batch);
  return s.ok() ? Status::Ok() : Internal(RocksError(what, s));
}

// RocksDB's built-in bytewise-max operator (engine/encoding.h, `current`).
std::shared_ptr<rocksdb::MergeOperator> MaxOperator() {
  std::shared_ptr<rocksdb::MergeOperator> op;
  rocksdb::Status s = rocksdb::MergeOperator::CreateFromString(rocksdb::ConfigOptions(), "max", &op);
  if (!s.ok() || !op) {
    spdlog::critical("rocksdb: the built-in \"max\" merge operator is missing: {}", s.ToString());
    std::abort();  // a RocksDB build without it cannot hold this layout
  }
  return op;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors(const Memory& m) {
  using namespace engine;
  std::vector<rocksdb::ColumnFamilyDescriptor> d;
  d.emplace_back(rocksdb::kDefaultColumnFamilyName, CfOptions(m, nullptr));
  d.emplace_back(kCfVersions, CfOptions(m, NewTenantTablePrefixExtractor(), Lookups::kRare, Values::kEncrypted));
  // (memtable_insert_with_hint_prefix_extractor on `log`, whose keys arrive
  // in commit order per tenant, trips assertions in Debian's RocksDB 7.8
  // skiplist: not used.)
  d.emplace_back(kCfLog, CfOptions(m, NewTenantPrefixExtractor(), Lookups::kPoint, Values::kEncrypted));
  d.emplace_back(kCfTxns, CfOptions(m, nullptr, Lookups::kPoint));
  d.emplace_back(kCfPending, CfOptions(m, nullptr, Lookups::kPoint, Values::kEncrypted));
  for (const char* name : {kCfCommits, kCfTruncates, kCfKeys, kCfMeta, kCfDeadLetter}) {
    d.emplace_back(name, CfOptions(m, nullptr));
  }
  d.emplace_back(kCfRowTenant, CfOptions(m, NewRowPrefixExtractor()));
  auto current = CfOptions(m, NewTenantTablePrefixExtractor(), Lookups::kRare, Values::kEncrypted);
  current.merge_operator = MaxOperator();
  d.emplace_back(kCfCurrent, std::move(current));
  return d;
}

// Flushes and compactions write with O_DIRECT where the file system takes
// it: through the page cache, copying the flushed memtables into it cost the
// kernel ~5% of the store's CPU while ingesting, and filled the cache with
// files only compactions read again. File systems that refuse O_DIRECT (or
// its alignment) keep buffered writes; the probe writes one aligned block
// in the store's directory, as RocksDB's flush would.
bool DirectWritesWork(const std::string& dir) {
  constexpr size_t kBlock = 4096;
  const std::string probe = (std::filesystem::path(dir) / ".direct-io-probe").string();
  const int fd = ::open(probe.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::warn("store: {} does not take O_DIRECT ({}); flushes go through the page cache", dir, std::strerror(errno));
    return false;
  }
  void* block = nullptr;
  bool ok = posix_memalign(&block, kBlock, kBlock) == 0;
  if (ok) {
    std::memset(block, 0, kBlock);
    ok = ::pwrite(fd, block, kBlock, 0) == static_cast<ssize_t>(kBlock);
    if (!ok)
      spdlog::warn("store: an O_DIRECT write in {} failed ({}); flushes go through the page cache", dir,
                   std::strerror(errno));
  }
  std::free(block);
  ::close(fd);
  ::unlink(probe.c_str());
  return ok;
}

Status OpenDb(StoreImpl* impl) {
  const auto& opt = impl->options;
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = !opt.read_only;
  db_opts.create_missing_column_families = !opt.read_only;
  db_opts.max_background_jobs = 4;
  const Memory memory(opt.memory_budget_mb);
  db_opts.write_buffer_manager = memory.manager;
  db_opts.max_total_wal_size = memory.memtables;
  const auto descriptors = Descriptors(memory);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (opt.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(opt.path) / "CURRENT")) {
      return NotFound("store.path " + opt.path + ": no store there (start `timevault store` first)");
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "timevault-secondary-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return Internal("cannot create a directory for the read-only store");
    impl->secondary_dir = tmpl;
    db_opts.max_open_files = -1;  // required by secondaries
    s = rocksdb::DB::OpenAsSecondary(db_opts, opt.path, impl->secondary_dir, descriptors, &impl->handles, &raw);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(opt.path, ec);
    if (ec) return InvalidArgument("store.path " + opt.path + ": cannot create the directory: " + ec.message());
    db_opts.use_direct_io_for_flush_and_compaction = DirectWritesWork(opt.path);
    s = rocksdb::DB::Open(db_opts, opt.path, descriptors, &impl->handles, &raw);
  }
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Unavailable("store.path " + opt.path + " is in use by another writer (" + s.ToString() + ")");
    }
    if (s.IsCorruption()) return Corruption("store.path " + opt.path + ": " + s.ToString());
    return Internal(RocksError("opening " + opt.path, s));
  }
  impl->db.reset(raw);
  auto& h = impl->handles;
  impl->versions = h[1];
  impl->log = h[2];
  impl->txns = h[3];
  impl->pending = h[4];
  impl->commits = h[5];
  impl->truncates = h[6];
  impl->keys = h[7];
  impl->meta = h[8];
  impl->deadletter = h[9];
  impl->rowtenant = h[10];
  impl->current = h[11];
  return Status::Ok();
}

// A store written before key records were bound to their tenant: the writer
// wraps every unbound record again, bound, in one synced batch (a crash
// before it leaves the store as it was; readers read both formats meanwhile).
Status BindKeyRecords(StoreImpl* impl) {
  if (impl->options.read_only || impl->keyring->bound()) return Status::Ok();
  rocksdb::WriteBatch batch;
  TV_ASSIGN_OR_RETURN(const size_t records, impl->keyring->BindRecords(&batch));
  TV_RETURN_IF_ERROR(WriteSynced(impl->db.get(), &batch, "binding the key records to their tenants"));
  impl->keyring->MarkBound();
  spdlog::info("store: {} key records wrapped again, bound to their tenant (a store from before bindings)", records);
  return Status::Ok();
}

// A new store gets its own key and a check value encrypted under it; an
// existing one must decrypt its check value with the key the master key
// unwraps, so a wrong master key fails here and never yields garbage.
Status InitKeys(StoreImpl* impl) {
  rocksdb::WriteBatch batch;
  Status loaded = impl->keyring->LoadStoreKey(impl->options.read_only ? nullptr : &batch);
  if (loaded.code() == StatusCode::kPermissionDenied) {
    return PermissionDenied("store.key_file " + impl->options.key_file + " is not the master key of the store at " +
                            impl->options.path + " (" + loaded.message() + ")");
  }
  TV_RETURN_IF_ERROR(loaded);
  std::string check;
  rocksdb::Status s = impl->db->Get(rocksdb::ReadOptions(), impl->meta, engine::kMetaCheck, &check);
  if (s.IsNotFound() && batch.Count() > 0) {
    impl->keyring->StoreKeyForWrite().Encrypt(kCheckPlaintext, engine::kMetaCheck, &check);
    batch.Put(impl->meta, engine::kMetaCheck, check);
    return WriteSynced(impl->db.get(), &batch, "creating the store's key");
  }
  if (!s.ok()) return Corruption("store.path " + impl->options.path + ": the master-key check value is missing");
  std::string plain;
  if (!impl->keyring->StoreKeyForWrite().Decrypt(check, engine::kMetaCheck, &plain).ok() || plain != kCheckPlaintext) {
    return PermissionDenied("store.key_file " + impl->options.key_file + " is not the master key of the store at " +
                            impl->options.path);
  }
  return BindKeyRecords(impl);
}

// Fills `current` from `versions` in a store written before `current`
// existed: each row's first versions entry is its newest.
Status FillCurrent(StoreImpl* impl) {
  std::string ready;
  rocksdb::Status s = impl->db->Get(rocksdb::ReadOptions(), impl->meta, engine::kMetaCurrentReady, &ready);
  if (s.ok()) return Status::Ok();
  if (!s.IsNotFound()) return Internal(RocksError("reading meta", s));
  if (impl->options.read_only) {
    return FailedPrecondition("store.path " + impl->options.path +
                              ": the store predates the `current` column family; open it once with `timevault "
                              "store` (the writer) to upgrade it");
  }
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions(), impl->versions));
  uint64_t rows = 0;
  for (it->SeekToFirst(); it->Valid();) {
    auto k = engine::ParseVersionKey(it->key().ToStringView());
    if (!k) return Corruption("versions key is damaged");
    const std::string row_prefix(it->key().data(), k->row_prefix_size);
    batch.Put(impl->current, row_prefix, engine::EncodeCurrent(k->change_lsn, it->value().ToStringView()));
    ++rows;
    if (batch.Count() >= 4096) {
      s = impl->db->Write(wo, &batch);
      if (!s.ok()) return Internal(RocksError("filling current", s));
      batch.Clear();
    }
    it->Seek(engine::PrefixSuccessor(row_prefix));
  }
  if (!it->status().ok()) return Internal(RocksError("filling current", it->status()));
  batch.Put(impl->meta, engine::kMetaCurrentReady, "");
  s = impl->db->Write(wo, &batch);
  if (!s.ok()) return Internal(RocksError("filling current", s));
  if (rows > 0) spdlog::info("store: indexed the newest version of {} rows (`current`)", rows);
  return Status::Ok();
}

}  // namespace

std::string Counters::Encode() const {
  std::string s;
  for (uint64_t v : {events_stored, duplicates, dead_letters, toast_unresolved}) engine::PutU64(&s, v);
  return s;
}

Counters Counters::Decode(std::string_view s) {
  Counters c;
  engine::Reader r(s);
  (void)(r.U64(&c.events_stored) && r.U64(&c.duplicates) && r.U64(&c.dead_letters) && r.U64(&c.toast_unresolved));
  return c;
}

std::string DescribePoint(const PointRec& p) {
  return Lsn(p.lsn).ToString() + " (time " + CommitTime(p.time_us).ToIso() + ")";
}

StoreImpl::~StoreImpl() {
  // A batch still being written lands (or fails) before the database closes;
  // its result is lost to nobody: the caller that stops without WaitApplied
  // re-reads the offsets the store holds at the next open.
  if (pipeline.writing.valid()) pipeline.writing.wait();
  if (db) (void)WaitSynced();
  if (db) {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    handles.clear();
    db->Close().PermitUncheckedError();
    db.reset();
  }
  if (!secondary_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary_dir, ec);
  }
}

namespace {

Result<std::vector<engine::GapRec>> LoadGaps(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, engine::kMetaGaps, &v);
  if (s.IsNotFound()) return std::vector<engine::GapRec>();
  if (!s.ok()) return Internal(RocksError("reading meta gaps", s));
  auto gaps = engine::DecodeGaps(v);
  if (!gaps) return Corruption("meta/gaps is damaged");
  return std::move(*gaps);
}

Result<std::optional<engine::Coverage>> LoadCoverage(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, engine::kMetaCoverage, &v);
  if (s.IsNotFound()) return std::optional<engine::Coverage>();
  if (!s.ok()) return Internal(RocksError("reading meta coverage", s));
  auto c = engine::DecodeCoverage(v);
  if (!c) return Corruption("meta/coverage is damaged");
  return c;
}

}  // namespace

ReadView StoreImpl::WriterView() const {
  ReadView v;
  v.recoverable = progress.recoverable;
  v.floor = progress.floor;
  v.first_point = progress.first_point;
  v.max_skew_us = progress.max_skew_us;
  v.counters = counters;
  v.gaps = gaps;
  v.coverage = coverage;
  return v;
}

void StoreImpl::Publish() {
  ReadView v = WriterView();
  std::lock_guard lock(view_mu);
  view = v;
}

Status StoreImpl::LoadView() {
  std::string v;
  ReadView fresh;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, engine::kMetaProgress, &v);
  if (s.ok()) {
    auto p = engine::Progress::Decode(v);
    if (!p) return Corruption("meta/recoverable is damaged");
    fresh.recoverable = p->recoverable;
    fresh.floor = p->floor;
    fresh.first_point = p->first_point;
    fresh.max_skew_us = p->max_skew_us;
  } else if (!s.IsNotFound()) {
    return Internal(RocksError("reading meta", s));
  }
  if (db->Get(rocksdb::ReadOptions(), meta, engine::kMetaCounters, &v).ok()) fresh.counters = Counters::Decode(v);
  TV_ASSIGN_OR_RETURN(fresh.gaps, LoadGaps(db.get(), meta));
  TV_ASSIGN_OR_RETURN(fresh.coverage, LoadCoverage(db.get(), meta));
  std::lock_guard lock(view_mu);
  view = fresh;
  return Status::Ok();
}

Status StoreImpl::LoadWriterState() {
  progress = engine::Progress();
  inflight.clear();
  inflight_by_xid.clear();
  heartbeats.clear();
  offsets.clear();
  counters = Counters();
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, engine::kMetaProgress, &v);
  if (s.ok()) {
    auto p = engine::Progress::Decode(v);
    if (!p) return Corruption("meta/recoverable is damaged");
    progress = *p;
  }
  if (db->Get(rocksdb::ReadOptions(), meta, engine::kMetaCounters, &v).ok()) counters = Counters::Decode(v);
  TV_ASSIGN_OR_RETURN(gaps, LoadGaps(db.get(), meta));
  TV_ASSIGN_OR_RETURN(coverage, LoadCoverage(db.get(), meta));
  TV_RETURN_IF_ERROR(codec->LoadForWrite());
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), meta));
  for (it->Seek(engine::kMetaInflightPrefix); it->Valid() && it->key().starts_with(engine::kMetaInflightPrefix);
       it->Next()) {
    auto t = engine::DecodeInflight(it->value().ToStringView());
    std::string_view k = it->key().ToStringView().substr(engine::kMetaInflightPrefix.size());
    if (!t || k.size() != 8) return Corruption("meta inflight entry is damaged");
    const uint64_t commit = engine::DecodeU64(k);
    std::string tv;
    s = db->Get(rocksdb::ReadOptions(), txns, engine::TxnKey(t->xid, commit), &tv);
    auto txn = s.ok() ? engine::ParseTxnValue(tv) : std::nullopt;
    if (!txn) return Corruption("txns entry of in-flight transaction " + std::to_string(t->xid) + " is missing");
    t->commit_time_us = txn->commit_time_us;
    t->expected = txn->expected;
    t->stored = txn->stored;
    t->txn_flags = txn->flags;
    inflight[commit] = *t;
    inflight_by_xid.emplace(t->xid, commit);
  }
  for (it->Seek(engine::kMetaHeartbeatPrefix); it->Valid() && it->key().starts_with(engine::kMetaHeartbeatPrefix);
       it->Next()) {
    auto h = engine::DecodeHeartbeat(it->value().ToStringView());
    if (!h) return Corruption("meta heartbeat entry is damaged");
    heartbeats[it->key().ToString()] = std::move(*h);
  }
  for (it->Seek(engine::kMetaOffsetPrefix); it->Valid() && it->key().starts_with(engine::kMetaOffsetPrefix);
       it->Next()) {
    std::string_view k = it->key().ToStringView().substr(engine::kMetaOffsetPrefix.size());
    const size_t slash = k.rfind('/');
    if (slash == std::string_view::npos || it->value().size() != 8) return Corruption("meta offset entry is damaged");
    offsets[{std::string(k.substr(0, slash)), std::atoi(std::string(k.substr(slash + 1)).c_str())}] =
        static_cast<int64_t>(engine::DecodeU64(it->value().ToStringView()));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  if (options.path.empty()) return InvalidArgument("store.path: empty");
  auto master = crypto::MasterKey::Load(options.key_file);
  if (!master.ok()) return master.status().WithContext("store.key_file");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  TV_RETURN_IF_ERROR(OpenDb(impl.get()));
  impl->keyring = std::make_unique<engine::Keyring>(std::move(master).value(), impl->db.get(), impl->keys);
  TV_RETURN_IF_ERROR(InitKeys(impl.get()));
  impl->codec =
      std::make_unique<engine::EnvelopeCodec>(impl->db.get(), impl->meta, options.envelope_dictionary_samples);
  TV_RETURN_IF_ERROR(FillCurrent(impl.get()));
  TV_RETURN_IF_ERROR(impl->LoadFormat());
  if (options.read_only) {
    TV_RETURN_IF_ERROR(impl->LoadView());
  } else {
    TV_RETURN_IF_ERROR(impl->LoadWriterState());
    impl->Publish();
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Status Store::Apply(const std::vector<IngestItem>& batch) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->StartBatch(batch));
  return impl_->Drain();
}

Status Store::ApplyStart(const std::vector<IngestItem>& batch, std::vector<IngestItem>* held_back) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  std::lock_guard lock(impl_->write_mu);
  return impl_->StartBatch(batch, held_back);
}

Status Store::WaitApplied() {
  if (impl_->options.read_only) return Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  return impl_->Drain();
}

Result<std::optional<int64_t>> Store::NextOffset(const std::string& topic, int32_t partition) {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->meta, engine::OffsetKey(topic, partition), &v);
  if (s.IsNotFound()) return std::optional<int64_t>();
  if (!s.ok()) return Internal(RocksError("reading an offset", s));
  if (v.size() != 8) return Corruption("meta offset of " + topic + "[" + std::to_string(partition) + "] is damaged");
  return std::optional<int64_t>(static_cast<int64_t>(engine::DecodeU64(v)));
}

Status Store::Compact() {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  rocksdb::FlushOptions fo;
  rocksdb::Status s = impl_->db->Flush(fo, impl_->handles);
  if (!s.ok()) return Internal(RocksError("flushing", s));
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : impl_->handles) {
    s = impl_->db->CompactRange(co, cf, nullptr, nullptr);
    if (!s.ok()) return Internal(RocksError("compacting", s));
  }
  return Status::Ok();
}

Status Store::Refresh() {
  if (!impl_->options.read_only) return Status::Ok();
  std::unique_lock lock(impl_->refresh_mu);
  rocksdb::Status s = impl_->db->TryCatchUpWithPrimary();
  if (!s.ok()) return Internal(RocksError("catching up with the writer", s));
  impl_->keyring->ForgetReaders();  // the writer may have rotated or shredded keys
  return impl_->LoadView();
}

std::string Store::DeadLetterJson(const KafkaPosition& pos, const std::string& reason) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("topic");
  w.String(pos.topic.data(), static_cast<rapidjson::SizeType>(pos.topic.size()));
  w.Key("partition");
  w.Int(pos.partition);
  w.Key("offset");
  w.Int64(pos.offset);
  w.Key("reason");
  w.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status Store::DeadLetters(const std::function<bool(const KafkaPosition&, const std::string& reason)>& emit) {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->deadletter));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    engine::Reader k(it->key().ToStringView());
    engine::Reader v(it->value().ToStringView());
    std::string_view topic, reason;
    uint32_t partition = 0;
    uint64_t offset = 0;
    if (!k.T(&topic) || !k.U32(&partition) || !k.U64(&offset) || !v.T(&reason)) {
      return Corruption("dead-letter entry is damaged");
    }
    KafkaPosition pos{std::string(topic), static_cast<int32_t>(partition), static_cast<int64_t>(offset)};
    if (!emit(pos, std::string(reason))) break;
  }
  if (!it->status().ok()) return Internal(RocksError("reading dead letters", it->status()));
  return Status::Ok();
}

namespace {

uint64_t IntProperty(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& name) {
  uint64_t v = 0;
  return db->GetIntProperty(cf, name, &v) ? v : 0;
}

// The family's keys and key/value bytes, counted by a scan (no cache fill).
Status ScanFamily(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, FamilyStats* f) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  f->keys = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++f->keys;
    f->key_bytes += it->key().size();
    f->value_bytes += it->value().size();
  }
  return it->status().ok() ? Status::Ok() : Internal(RocksError("scanning " + f->name, it->status()));
}

}  // namespace

StoreStats Store::Stats(bool scan) {
  StoreStats st;
  const ReadView v = impl_->View();
  // Every file of the store directory: SST files, the write-ahead log (which
  // holds what is still in the memtables), manifests. SST sizes alone read 0
  // until the first flush.
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(impl_->options.path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      auto n = it->file_size(size_ec);
      if (size_ec) continue;
      st.bytes_on_disk += n;
      if (it->path().extension() == ".log") st.wal_bytes += n;
    }
  }
  rocksdb::DB* db = impl_->db.get();
  for (auto* cf : impl_->handles) {
    FamilyStats f;
    f.name = cf->GetName();
    f.keys = IntProperty(db, cf, rocksdb::DB::Properties::kEstimateNumKeys);
    f.live_sst_bytes = IntProperty(db, cf, rocksdb::DB::Properties::kLiveSstFilesSize);
    f.total_sst_bytes = IntProperty(db, cf, rocksdb::DB::Properties::kTotalSstFilesSize);
    f.memtable_bytes = IntProperty(db, cf, rocksdb::DB::Properties::kSizeAllMemTables);
    if (scan) {
      if (Status s = ScanFamily(db, cf, &f); !s.ok()) spdlog::warn("store stats: {}", s.ToString());
    }
    st.sst_bytes += f.live_sst_bytes;
    st.families.push_back(std::move(f));
  }
  st.format_version = impl_->format_version;
  st.rows_packed = impl_->rows_packed;
  st.dead_letters = v.counters.dead_letters;
  st.events_stored = v.counters.events_stored;
  st.duplicates = v.counters.duplicates;
  st.toast_unresolved = v.counters.toast_unresolved;
  st.read_seeks = impl_->read_seeks.load();
  st.read_steps = impl_->read_steps.load();
  if (v.recoverable) st.recoverable = Point{Lsn(v.recoverable->lsn), CommitTime(v.recoverable->time_us)};
  return st;
}

Status Store::RunRetention(CommitTime now) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->Drain());
  return impl_->Retention(now);
}

Result<uint32_t> Store::RotateDataKey(const TenantId& tenant) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->Drain());
  rocksdb::WriteBatch batch;
  TV_ASSIGN_OR_RETURN(const uint32_t id, impl_->keyring->Rotate(tenant.str(), &batch));
  TV_RETURN_IF_ERROR(WriteSynced(impl_->db.get(), &batch, "writing the rotated key record"));
  impl_->keyring->Forget(tenant.str());  // the writer encrypts with the new key from the next batch on
  spdlog::info("store: tenant {} has a new data key ({})", tenant.str(), id);
  return id;
}

Status Store::RewrapMasterKey(const Options& options, const std::string& new_key_file) {
  if (options.read_only) return InvalidArgument("rewrapping the master key needs the store open for writing");
  auto next = crypto::MasterKey::Load(new_key_file);
  if (!next.ok()) return next.status().WithContext("the new master key " + new_key_file);
  {
    TV_ASSIGN_OR_RETURN(auto store, Open(options));  // the old key must open it (its check value)
    StoreImpl* impl = store->impl_.get();
    std::lock_guard lock(impl->write_mu);
    TV_RETURN_IF_ERROR(impl->Drain());
    rocksdb::WriteBatch batch;
    TV_RETURN_IF_ERROR(impl->keyring->Rewrap(*next, &batch));
    TV_RETURN_IF_ERROR(WriteSynced(impl->db.get(), &batch, "writing the rewrapped keys"));
    spdlog::info("store: {} key records rewrapped under the master key in {}", batch.Count(), new_key_file);
  }
  Options reopened = options;
  reopened.key_file = new_key_file;
  auto check = Open(reopened);
  if (!check.ok()) return check.status().WithContext("opening the store with the new master key after rewrapping");
  return Status::Ok();
}

Status Store::ShredTenant(const TenantId& tenant) {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->Drain());
  TV_ASSIGN_OR_RETURN(engine::DataKeys * keys, impl_->keyring->ForWrite(tenant.str(), false, nullptr));
  if (keys == nullptr) {
    return NotFound("tenant " + tenant.str() + " has no data key (never seen, or shredded already)");
  }
  return impl_->Shred(tenant);
}

}  // namespace timevault::store
