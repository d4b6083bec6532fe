#include "engine/keyring.h"

#include <optional>
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

// What a wrapped key is bound to (MasterKey::Wrap's binding): the store's
// own key, or one tenant's, so a key record copied under another tenant's
// key (or the store's) does not unwrap.
std::string BindingOf(const std::optional<std::string_view>& tenant) {
  if (!tenant) return "timevault/store-key";
  std::string binding("timevault/tenant-key\0", 21);
  binding += *tenant;
  return binding;
}

std::string What(const std::optional<std::string_view>& tenant) {
  return tenant ? "data key of tenant " + std::string(*tenant) : std::string("store key");
}

// `require_bound`: the store's records were all bound when it was opened, so
// an unbound one (format 1) was put there since, e.g. copied in from an older
// copy of the store.
Result<crypto::DataKey> Unwrap(const crypto::MasterKey& master, std::string_view wrapped,
                               const std::optional<std::string_view>& tenant, bool require_bound) {
  const std::string what = What(tenant);
  if (require_bound && !crypto::MasterKey::IsBound(wrapped)) {
    return Corruption("the " + what +
                      " is not bound to its owner (wrapped-key format 1) in a store whose key records are all bound: "
                      "it was copied in from an older copy of the store; restore the store from a backup");
  }
  auto key = master.Unwrap(wrapped, BindingOf(tenant));
  if (!key.ok()) {
    if (key.status().code() != StatusCode::kPermissionDenied) return key.status().WithContext(what);
    if (!tenant) {
      return PermissionDenied(
          "the master key does not open the store key: this store was created with another "
          "master key (store.key_file)");
    }
    // The store key opened with this master key (and its check value
    // decrypted), so the master key is right: the record is the problem.
    return Corruption("the key record of tenant " + std::string(*tenant) +
                      " does not unwrap for that tenant under this store's master key: it is damaged, or it was "
                      "moved or copied from another tenant's record");
  }
  return std::move(key).value();
}

Result<DataKeys> UnwrapAll(const crypto::MasterKey& master, std::string_view record,
                           const std::optional<std::string_view>& tenant, bool require_bound) {
  TV_RETURN_IF_ERROR(CheckRecord(record, What(tenant)));
  std::vector<crypto::DataKey> keys;
  for (size_t at = 0; at < record.size(); at += crypto::MasterKey::kWrappedKeyBytes) {
    TV_ASSIGN_OR_RETURN(auto key,
                        Unwrap(master, record.substr(at, crypto::MasterKey::kWrappedKeyBytes), tenant, require_bound));
    keys.push_back(std::move(key));
  }
  return DataKeys(std::move(keys));
}

bool AllBound(std::string_view record) {
  for (size_t at = 0; at + crypto::MasterKey::kWrappedKeyBytes <= record.size();
       at += crypto::MasterKey::kWrappedKeyBytes) {
    if (!crypto::MasterKey::IsBound(record.substr(at, crypto::MasterKey::kWrappedKeyBytes))) return false;
  }
  return true;
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
    auto ws = create_batch->Put(keys_cf_, rocksdb::Slice(kStoreKeyKey.data(), 0), master_.Wrap(key, BindingOf({})));
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
    bound_ = true;
    writer_store_key_ = key.Clone();
    reader_store_key_ = std::move(key);
    return Status::Ok();
  }
  if (!s.ok()) return Internal("rocksdb: reading the store key: " + s.ToString());
  TV_RETURN_IF_ERROR(CheckRecord(record, "store key"));
  TV_ASSIGN_OR_RETURN(crypto::DataKey key,
                      Unwrap(master_, record.substr(record.size() - crypto::MasterKey::kWrappedKeyBytes), std::nullopt,
                             /*require_bound=*/false));
  bound_ = AllBound(record);
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
  TV_ASSIGN_OR_RETURN(DataKeys keys, UnwrapAll(master_, *record, tenant, bound_));
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
    auto ws = batch->Put(keys_cf_, TenantKeyKey(tenant), master_.Wrap(key, BindingOf(tenant)));
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
  TV_ASSIGN_OR_RETURN(DataKeys keys, UnwrapAll(master_, *record, tenant, bound_));
  uint32_t id = NewKeyId();
  while (keys.Has(id)) id = NewKeyId();  // values name their key by id: ids are unique per tenant
  *record += master_.Wrap(crypto::DataKey::Generate(id), BindingOf(tenant));
  auto ws = batch->Put(keys_cf_, TenantKeyKey(tenant), *record);
  if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
  return id;
}

Result<size_t> Keyring::RewrapRecords(const crypto::MasterKey& next, bool only_unbound, rocksdb::WriteBatch* batch) {
  constexpr size_t n = crypto::MasterKey::kWrappedKeyBytes;
  size_t rewrapped_records = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view record = it->value().ToStringView();
    std::optional<std::string_view> tenant;
    if (!it->key().empty()) {
      Reader r(it->key().ToStringView());
      std::string_view t;
      if (!r.T(&t) || !r.empty()) return Corruption("a key record's key is damaged");
      tenant = t;
    }
    TV_RETURN_IF_ERROR(CheckRecord(record, What(tenant)));
    if (only_unbound && AllBound(record)) continue;
    std::string rewrapped;
    for (size_t at = 0; at < record.size(); at += n) {
      TV_ASSIGN_OR_RETURN(auto key, Unwrap(master_, record.substr(at, n), tenant, bound_));
      rewrapped += next.Wrap(key, BindingOf(tenant));
    }
    auto ws = batch->Put(keys_cf_, it->key(), rewrapped);
    if (!ws.ok()) return Internal("rocksdb: " + ws.ToString());
    ++rewrapped_records;
  }
  if (!it->status().ok()) return Internal("rocksdb: reading the key records: " + it->status().ToString());
  return rewrapped_records;
}

Status Keyring::Rewrap(const crypto::MasterKey& next, rocksdb::WriteBatch* batch) {
  return RewrapRecords(next, /*only_unbound=*/false, batch).status();
}

Result<size_t> Keyring::BindRecords(rocksdb::WriteBatch* batch) {
  if (bound_) return size_t{0};
  return RewrapRecords(master_, /*only_unbound=*/true, batch);
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
