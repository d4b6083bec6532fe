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

// A key record holds one or more wrapped keys; the last one is current.
Result<crypto::DataKey> UnwrapCurrent(const crypto::MasterKey& master, std::string_view record, std::string_view what) {
  constexpr size_t n = crypto::MasterKey::kWrappedKeyBytes;
  if (record.empty() || record.size() % n != 0) {
    return Corruption("key record of " + std::string(what) + " is " + std::to_string(record.size()) +
                      " bytes, not a multiple of " + std::to_string(n));
  }
  auto key = master.Unwrap(record.substr(record.size() - n));
  if (!key.ok()) {
    if (key.status().code() == StatusCode::kPermissionDenied) {
      return PermissionDenied("the master key does not open the " + std::string(what) +
                              ": this store was created with another master key (store.key_file)");
    }
    return key.status().WithContext(what);
  }
  return std::move(key).value();
}

}  // namespace

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

Result<std::optional<crypto::DataKey>> Keyring::Load(std::string_view tenant, const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string record;
  rocksdb::Status s = db_->Get(ro, keys_cf_, TenantKeyKey(tenant), &record);
  if (s.IsNotFound()) return std::optional<crypto::DataKey>();
  if (!s.ok()) return Internal("rocksdb: reading the key of tenant " + std::string(tenant) + ": " + s.ToString());
  TV_ASSIGN_OR_RETURN(crypto::DataKey key, UnwrapCurrent(master_, record, "data key of tenant " + std::string(tenant)));
  return std::optional<crypto::DataKey>(std::move(key));
}

Result<std::optional<crypto::DataKey>> Keyring::ForRead(std::string_view tenant, const rocksdb::Snapshot* snapshot) {
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = readers_.find(tenant); it != readers_.end()) return std::optional(it->second.Clone());
    generation = generation_;
  }
  TV_ASSIGN_OR_RETURN(auto key, Load(tenant, snapshot));
  if (!key) return key;
  std::lock_guard lock(mu_);
  if (generation != generation_) return key;  // a key was forgotten meanwhile: do not cache a stale one
  auto [it, inserted] = readers_.try_emplace(std::string(tenant), std::move(*key));
  return std::optional(it->second.Clone());
}

Result<crypto::DataKey*> Keyring::ForWrite(std::string_view tenant, bool create, rocksdb::WriteBatchBase* batch) {
  if (auto it = writers_.find(tenant); it != writers_.end()) return &it->second;
  TV_ASSIGN_OR_RETURN(auto key, Load(tenant, nullptr));
  if (!key) {
    if (!create) return static_cast<crypto::DataKey*>(nullptr);
    key = crypto::DataKey::Generate(NewKeyId());
    auto ws = batch->Put(keys_cf_, TenantKeyKey(tenant), master_.Wrap(*key));
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
    created_.emplace_back(tenant);
  }
  auto [it, inserted] = writers_.try_emplace(std::string(tenant), std::move(*key));
  return &it->second;
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
    if (record.empty() || record.size() % n != 0) {
      return Corruption(what + " is " + std::to_string(record.size()) + " bytes, not a multiple of " +
                        std::to_string(n));
    }
    std::string rewrapped;
    for (size_t at = 0; at < record.size(); at += n) {
      auto key = master_.Unwrap(record.substr(at, n));
      if (!key.ok()) return key.status().WithContext(what);
      rewrapped += next.Wrap(*key);
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

}  // namespace timevault::store::engine
