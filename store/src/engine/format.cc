// The store's format version and the migration of older stores (docs/store.md,
// "Format versions"). Format 1 (no stamp: every store written before it)
// keeps row images in `versions` and `current` as JSON text; format 2 packs
// them with the envelope dictionary before encrypting them, as `log` does
// with envelopes. Readers take both (a packed plaintext starts with zstd's
// magic number, JSON with '{'), so a format-1 store opens and reads at once;
// `Store::Migrate` packs its old rows to reclaim the space. Format 3 keeps
// the history entries of c/u/r events without the row image their version
// holds (encoding.h, kOpSpliced); a format-2 store reads as it is and
// `Store::Migrate` rewrites its entries.
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "engine/impl.h"

namespace timevault::store {
namespace {

using namespace engine;

std::string U32(uint32_t v) {
  std::string s;
  PutU32(&s, v);
  return s;
}

// Whether the family holds no key at all.
bool Empty(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToFirst();
  return !it->Valid();
}

// Packs and re-encrypts the row image of one `versions` value stored under
// `version_key` (the ciphertext's associated data). Nullopt when it is
// packed already, a delete marker, or there is no dictionary to pack with.
Result<std::optional<std::string>> Repack(StoreImpl* s, std::string_view version_key, std::string_view value) {
  auto k = ParseVersionKey(version_key);
  auto v = ParseVersionValue(value);
  if (!k || !v) return Corruption("versions entry is damaged");
  if (v->ciphertext.empty()) return std::optional<std::string>();
  TV_ASSIGN_OR_RETURN(DataKeys * dk, s->keyring->ForWrite(k->tenant, false, nullptr));
  if (dk == nullptr) return std::optional<std::string>();  // shredded: unreadable anyway
  std::string plain;
  TV_RETURN_IF_ERROR(dk->Decrypt(v->ciphertext, version_key, &plain).WithContext("migrating a row"));
  if (EnvelopeCodec::IsPacked(plain)) return std::optional<std::string>();
  std::string buffer;
  const std::string_view packed = s->codec->Pack(plain, &buffer);
  // No dictionary yet, or no smaller packed (a tiny row): stays text.
  if (packed.data() == plain.data() || packed.size() >= plain.size()) return std::optional<std::string>();
  std::string enc;
  dk->Encrypt(packed, version_key, &enc);
  return std::optional<std::string>(EncodeVersionValue(v->flags, v->xid, enc));
}

// Rewrites every unpacked row image of one family (versions or current).
Result<uint64_t> MigrateFamily(StoreImpl* s, rocksdb::ColumnFamilyHandle* cf, bool is_current) {
  constexpr size_t kBatch = 4096;
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions wo;
  uint64_t rewritten = 0;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(s->db->NewIterator(ro, cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    std::optional<std::string> fresh;
    if (is_current) {
      auto c = ParseCurrent(it->value().ToStringView());
      if (!c) return Corruption("current entry is damaged");
      TV_ASSIGN_OR_RETURN(auto value, Repack(s, VersionKey(key, c->change_lsn), c->version_value));
      if (value) fresh = EncodeCurrent(c->change_lsn, *value);
    } else {
      TV_ASSIGN_OR_RETURN(fresh, Repack(s, key, it->value().ToStringView()));
    }
    if (!fresh) continue;
    batch.Put(cf, it->key(), *fresh);
    ++rewritten;
    if (batch.Count() >= kBatch) {
      rocksdb::Status w = s->db->Write(wo, &batch);
      if (!w.ok()) return Internal(RocksError("migrating rows", w));
      batch.Clear();
    }
  }
  if (!it->status().ok()) return Internal(RocksError("migrating rows", it->status()));
  rocksdb::Status w = s->db->Write(wo, &batch);
  if (!w.ok()) return Internal(RocksError("migrating rows", w));
  return rewritten;
}

// Format 2 -> 3: the history entries of c/u/r events whose envelope holds
// their version's row image keep the envelope without it (kOpSpliced), as a
// format-3 writer writes them (Ingest::WriteHistory).
Result<uint64_t> MigrateLog(StoreImpl* s) {
  constexpr size_t kBatch = 4096;
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions wo;
  uint64_t rewritten = 0;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(s->db->NewIterator(ro, s->log));
  std::string packed, envelope, version, row, rest, rest_packed, enc;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    const std::string_view value = it->value().ToStringView();
    auto k = ParseLogKey(key);
    if (!k || value.empty()) return Corruption("log entry is damaged");
    const auto op = static_cast<uint8_t>(value[0]);
    if ((op & kOpSpliced) || (op != 'c' && op != 'u' && op != 'r')) continue;
    TV_ASSIGN_OR_RETURN(DataKeys * dk, s->keyring->ForWrite(std::string(k->tenant), false, nullptr));
    if (dk == nullptr || !dk->Opens(value.substr(1))) continue;  // shredded: unreadable anyway
    const std::string vkey = VersionKey(RowPrefix(k->tenant, k->table, k->pk), k->change_lsn);
    rocksdb::Status got = s->db->Get(ro, s->versions, vkey, &version);
    if (got.IsNotFound()) continue;
    if (!got.ok()) return Internal(RocksError("reading versions", got));
    auto v = ParseVersionValue(version);
    if (!v || !(v->flags & kVersionRow)) continue;
    TV_RETURN_IF_ERROR(dk->Decrypt(v->ciphertext, vkey, &packed).WithContext("migrating a history entry"));
    TV_RETURN_IF_ERROR(s->codec->Unpack(packed, &row).WithContext("migrating a history entry"));
    if (row.size() < kMinSplicedRow) continue;
    TV_RETURN_IF_ERROR(dk->Decrypt(value.substr(1), key, &packed).WithContext("migrating a history entry"));
    TV_RETURN_IF_ERROR(s->codec->Unpack(packed, &envelope).WithContext("migrating a history entry"));
    const size_t at = envelope.find(row);
    if (at == std::string::npos || envelope.size() > std::numeric_limits<uint32_t>::max()) continue;
    rest.assign(envelope, 0, at);
    rest.append(envelope, at + row.size());
    const std::string plain = EncodeSpliced(static_cast<uint32_t>(at), s->codec->Pack(rest, &rest_packed));
    dk->Encrypt(plain, key, &enc);
    std::string fresh(1, static_cast<char>(op | kOpSpliced));
    fresh += enc;
    batch.Put(s->log, it->key(), fresh);
    ++rewritten;
    if (batch.Count() >= kBatch) {
      rocksdb::Status w = s->db->Write(wo, &batch);
      if (!w.ok()) return Internal(RocksError("migrating the history", w));
      batch.Clear();
    }
  }
  if (!it->status().ok()) return Internal(RocksError("migrating the history", it->status()));
  rocksdb::Status w = s->db->Write(wo, &batch);
  if (!w.ok()) return Internal(RocksError("migrating the history", w));
  return rewritten;
}

}  // namespace

Status StoreImpl::LoadFormat() {
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, kMetaFormat, &v);
  if (!s.ok() && !s.IsNotFound()) return Internal(RocksError("reading meta format", s));
  format_version = 1;
  if (s.ok()) {
    Reader r(v);
    if (!r.U32(&format_version) || !r.empty()) return Corruption("meta/format is damaged");
  }
  if (format_version > kFormatVersion) {
    return FailedPrecondition("store.path " + options.path + " is in store format " + std::to_string(format_version) +
                              ", written by a newer timevault; this one reads formats up to " +
                              std::to_string(kFormatVersion));
  }
  rows_packed = db->Get(rocksdb::ReadOptions(), meta, kMetaRowsPacked, &v).ok();
  // Format 1 has no stamp; tests write format 2 as the code of that format did.
  if (options.read_only || options.write_format < 2) return Status::Ok();
  const uint32_t target = std::max(format_version, std::min(options.write_format, kFormatVersion));
  if (format_version == target && rows_packed) return Status::Ok();
  // A writer of this format packs the rows it writes from now on, whatever
  // the store held before: the stamp says so (a newer store refuses an older
  // timevault from now on), and whether anything older is left to migrate.
  rocksdb::WriteBatch batch;
  batch.Put(meta, kMetaFormat, U32(target));
  const bool nothing_old = Empty(db.get(), versions);
  if (nothing_old) batch.Put(meta, kMetaRowsPacked, "");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db->Write(wo, &batch);
  if (!s.ok()) return Internal(RocksError("stamping the store format", s));
  if (format_version < target && !nothing_old) {
    spdlog::warn(
        "store: {} was written in store format {}; it reads as it is and new rows are written in format {}; "
        "`timevault store migrate` (with the store stopped) packs the older rows and drops the row images "
        "repeated in the history to reclaim their space",
        options.path, format_version, target);
  }
  format_version = target;
  rows_packed = rows_packed || nothing_old;
  return Status::Ok();
}

Result<uint64_t> Store::Migrate() {
  if (impl_->options.read_only) return FailedPrecondition("the store is open read-only");
  if (impl_->options.write_format < engine::kFormatVersion) {
    return FailedPrecondition("this store was opened to write format " + std::to_string(impl_->options.write_format));
  }
  std::lock_guard lock(impl_->write_mu);
  TV_RETURN_IF_ERROR(impl_->Drain());
  TV_ASSIGN_OR_RETURN(const uint64_t versions, MigrateFamily(impl_.get(), impl_->versions, false));
  TV_ASSIGN_OR_RETURN(const uint64_t current, MigrateFamily(impl_.get(), impl_->current, true));
  TV_ASSIGN_OR_RETURN(const uint64_t history, MigrateLog(impl_.get()));
  rocksdb::WriteBatch batch;
  batch.Put(impl_->meta, engine::kMetaFormat, U32(engine::kFormatVersion));
  batch.Put(impl_->meta, engine::kMetaRowsPacked, "");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Write(wo, &batch);
  if (!s.ok()) return Internal(RocksError("finishing the migration", s));
  impl_->format_version = engine::kFormatVersion;
  impl_->rows_packed = true;
  if (versions + current + history > 0) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (auto* cf : {impl_->versions, impl_->current, impl_->log}) {
      s = impl_->db->CompactRange(co, cf, nullptr, nullptr);
      if (!s.ok()) return Internal(RocksError("compacting after the migration", s));
    }
  }
  spdlog::info(
      "store: migrated to format {}: {} versions and {} current values packed, {} history entries without their "
      "repeated row image",
      engine::kFormatVersion, versions, current, history);
  return versions + current + history;
}

}  // namespace timevault::store
