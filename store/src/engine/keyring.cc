#include "engine/keyring.h"

#include <random>

#include "engine/encoding.h"

namespace timevault::store::engine {
namespace {

uint32_t NewKeyId() {
  std::random_device rd;
  uint32_t id = 0;
  while (id == 0) id = rd();
  return id;
}

// A key record holds one or more wrapped keys, oldest first; the last one is
// current.
Status CheckRecord(std::string_view record, std::string_view what) {
  constexpr size_t n = crypto::MasterKey::kWrappedKeyBytes;
  if (record.empty() || record.size() % n != 0) {
    return Corruption("key record of " + std::string(what) + " is " + std::to_string(record.size()) +
                      " bytes, not a multiple of " + std::to_string(n));
  }
  return Status::Ok();
}

Result<crypto::DataKey> Unwrap(const crypto::MasterKey& master, std::string_view wrapped, std::string_view what) {
  auto key = master.Unwrap(wrapped);
  if (!key.ok()) {
    if (key.status().code() == StatusCode::kPermissionDenied) {
      return PermissionDenied("the master key does not open the " + std::string(what) +
                              ": this store was created with another master key (store.key_file)");
    }
    return key.status().WithContext(what);
  }
  return std::move(key).value();
}

Result<crypto::DataKey> UnwrapCurrent(const crypto::MasterKey& master, std::string_view record, std::string_view what) {
  TV_RETURN_IF_ERROR(CheckRecord(record, what));
  return Unwrap(master, record.substr(record.size() - crypto::MasterKey::kWrappedKeyBytes), what);
}

Result<DataKeys> UnwrapAll(const crypto::MasterKey& master, std::string_view record, std::string_view what) {
  TV_RETURN_IF_ERROR(CheckRecord(record, what));
  std::vector<crypto::DataKey> keys;
  for (size_t at = 0; at < record.size(); at += crypto::MasterKey::kWrappedKeyBytes) {
    TV_ASSIGN_OR_RETURN(auto key, Unwrap(master, record.substr(at, crypto::MasterKey::kWrappedKeyBytes), what));
    keys.push_back(std::move(key));
  }
  return DataKeys(std::move(keys));
}

}  // namespace

DataKeys::DataKeys(std::vector<crypto::DataKey> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) std::abort();  // a key record holds at least one key: a bug
}

DataKeys DataKeys::Clone() const {
  std::vector<crypto::DataKey> copies;
  copies.reserve(keys_.size());
  for (const auto& k : keys_) copies.push_back(k.Clone());
  return DataKeys(std::move(copies));
}

Status DataKeys::Decrypt(std::string_view ciphertext, std::string_view aad, std::string* out) {
  if (keys_.size() == 1) return keys_.front().Decrypt(ciphertext, aad, out);
  TV_ASSIGN_OR_RETURN(const uint32_t id, crypto::PeekKeyId(ciphertext));
  for (auto& k : keys_) {
    if (k.id() == id) return k.Decrypt(ciphertext, aad, out);
  }
  out->clear();
  return Corruption("value is encrypted under data key " + std::to_string(id) +
                    ", which is not in the tenant's key record");
}

Status Keyring::LoadStoreKey(rocksdb::WriteBatchBase* create_batch) {
  std::string record;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), keys_cf_, rocksdb::Slice(kStoreKeyKey.data(), 0), &record);
  if (s.IsNotFound()) {
    if (create_batch == nullptr) return FailedPrecondition("the store has no key record (not a timevault store?)");
    crypto::DataKey key = crypto::DataKey::Generate(NewKeyId());
    auto ws = create_batch->Put(keys_cf_, rocksdb::Slice(kStoreKeyKey.data(), 0), master_.Wrap(key));
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
    writer_store_key_ = key.Clone();
    reader_store_key_ = std::move(key);
    return Status::Ok();
  }
  if (!s.ok()) return Internal("rocksdb: reading the store key: " + s.ToString());
  TV_ASSIGN_OR_RETURN(crypto::DataKey key, UnwrapCurrent(master_, record, "store key"));
  writer_store_key_ = key.Clone();
  reader_store_key_ = std::move(key);
  return Status::Ok();
}

crypto::DataKey Keyring::StoreKeyForRead() {
  std::lock_guard lock(mu_);
  return reader_store_key_->Clone();
}

Result<std::optional<std::string>> Keyring::Record(std::string_view tenant, const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string record;
  rocksdb::Status s = db_->Get(ro, keys_cf_, TenantKeyKey(tenant), &record);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return Internal("rocksdb: reading the key of tenant " + std::string(tenant) + ": " + s.ToString());
  return std::optional<std::string>(std::move(record));
}

Result<std::optional<DataKeys>> Keyring::Load(std::string_view tenant, const rocksdb::Snapshot* snapshot) {
  TV_ASSIGN_OR_RETURN(auto record, Record(tenant, snapshot));
  if (!record) return std::optional<DataKeys>();
  TV_ASSIGN_OR_RETURN(DataKeys keys, UnwrapAll(master_, *record, "data key of tenant " + std::string(tenant)));
  return std::optional<DataKeys>(std::move(keys));
}

Result<std::optional<DataKeys>> Keyring::ForRead(std::string_view tenant, const rocksdb::Snapshot* snapshot) {
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = readers_.find(tenant); it != readers_.end()) return std::optional(it->second.Clone());
    generation = generation_;
  }
  TV_ASSIGN_OR_RETURN(auto keys, Load(tenant, snapshot));
  if (!keys) return keys;
  std::lock_guard lock(mu_);
  if (generation != generation_) return keys;  // a key was forgotten meanwhile: do not cache a stale one
  auto [it, inserted] = readers_.try_emplace(std::string(tenant), std::move(*keys));
  return std::optional(it->second.Clone());
}

Result<DataKeys*> Keyring::ForWrite(std::string_view tenant, bool create, rocksdb::WriteBatchBase* batch) {
  if (auto it = writers_.find(tenant); it != writers_.end()) return &it->second;
  TV_ASSIGN_OR_RETURN(auto keys, Load(tenant, nullptr));
  if (!keys) {
    if (!create) return static_cast<DataKeys*>(nullptr);
    crypto::DataKey key = crypto::DataKey::Generate(NewKeyId());
    auto ws = batch->Put(keys_cf_, TenantKeyKey(tenant), master_.Wrap(key));
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
    created_.emplace_back(tenant);
    std::vector<crypto::DataKey> one;
    one.push_back(std::move(key));
    keys.emplace(std::move(one));
  }
  auto [it, inserted] = writers_.try_emplace(std::string(tenant), std::move(*keys));
  return &it->second;
}

Result<uint32_t> Keyring::Rotate(std::string_view tenant, rocksdb::WriteBatch* batch) {
  TV_ASSIGN_OR_RETURN(auto record, Record(tenant, nullptr));
  if (!record) return NotFound("tenant " + std::string(tenant) + " has no data key (never seen, or shredded)");
  TV_ASSIGN_OR_RETURN(DataKeys keys, UnwrapAll(master_, *record, "data key of tenant " + std::string(tenant)));
  uint32_t id = NewKeyId();
  while (keys.Has(id)) id = NewKeyId();  // values name their key by id: ids are unique per tenant
  *record += master_.Wrap(crypto::DataKey::Generate(id));
  auto ws = batch->Put(keys_cf_, TenantKeyKey(tenant), *record);
  if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
  return id;
}

Status Keyring::Rewrap(const crypto::MasterKey& next, rocksdb::WriteBatch* batch) {
  constexpr size_t n = crypto::MasterKey::kWrappedKeyBytes;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view record = it->value().ToStringView();
    std::string what = "store key";
    if (!it->key().empty()) {
      Reader r(it->key().ToStringView());
      std::string_view tenant;
      if (!r.T(&tenant) || !r.empty()) return Corruption("a key record's key is damaged");
      what = "data key of tenant " + std::string(tenant);
    }
    TV_RETURN_IF_ERROR(CheckRecord(record, what));
    std::string rewrapped;
    for (size_t at = 0; at < record.size(); at += n) {
      TV_ASSIGN_OR_RETURN(auto key, Unwrap(master_, record.substr(at, n), what));
      rewrapped += next.Wrap(key);
    }
    auto ws = batch->Put(keys_cf_, it->key(), rewrapped);
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
  }
  if (!it->status().ok()) return Internal("rocksdb: reading the key records: " + it->status().ToString());
  return Status::Ok();
}

void Keyring::CommitCreated() { created_.clear(); }

void Keyring::AbortCreated() {
  for (const auto& t : created_) writers_.erase(t);
  created_.clear();
}

void Keyring::Forget(std::string_view tenant) {
  writers_.erase(std::string(tenant));
  std::lock_guard lock(mu_);
  readers_.erase(std::string(tenant));
  ++generation_;
}

void Keyring::ForgetReaders() {
  std::lock_guard lock(mu_);
  readers_.clear();
  ++generation_;
}

}  // namespace timevault::store::engine
