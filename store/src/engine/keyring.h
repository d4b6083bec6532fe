// Keyring: the master key and the data keys it wraps (docs/store.md,
// "Encryption at rest"). Data keys per tenant, the first created on first use
// and more by rotation, kept wrapped in the `keys` column family under
// T(tenant) (the newest last: it encrypts; each value names the key that
// made it); the store's own key (dead letters, the master-key check value)
// under the empty key.
//
// Thread-safety: crypto::DataKey is not thread-safe, so the keyring never
// hands out a shared one. Readers get an independent Clone() per call
// (ForRead); the writer (Apply, retention, shredding: one at a time, under
// the store's write mutex) uses its own instances (ForWrite). The caches are
// guarded by a mutex.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch_base.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/crypto.h"
#include "timevault/core/status.h"

namespace timevault::store::engine {

// One tenant's data keys: the newest encrypts, each decrypts what it made.
// Not thread-safe (as crypto::DataKey); Clone() for another thread.
class DataKeys {
 public:
  explicit DataKeys(std::vector<crypto::DataKey> keys);  // oldest first; not empty
  DataKeys(DataKeys&&) = default;
  DataKeys& operator=(DataKeys&&) = default;

  DataKeys Clone() const;
  bool Has(uint32_t id) const {
    for (const auto& k : keys_) {
      if (k.id() == id) return true;
    }
    return false;
  }

  void Encrypt(std::string_view plaintext, std::string_view aad, std::string* out) {
    keys_.back().Encrypt(plaintext, aad, out);
  }
  // Whether one of these keys made `ciphertext` (by the id it names; true
  // for a value too short to name one, which Decrypt then reports). False
  // for a value made under a key shredded since: the tenant's record was
  // deleted and a new one made when it came back.
  bool Opens(std::string_view ciphertext) const {
    auto id = crypto::PeekKeyId(ciphertext);
    return !id.ok() || Has(*id);
  }
  // As crypto::DataKey::Decrypt, with the key the value names; Corruption if
  // none of these keys has its id.
  Status Decrypt(std::string_view ciphertext, std::string_view aad, std::string* out);

 private:
  std::vector<crypto::DataKey> keys_;
};

class Keyring {
 public:
  Keyring(crypto::MasterKey master, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* keys_cf)
      : master_(std::move(master)), db_(db), keys_cf_(keys_cf) {}
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // Loads the store's own key, or creates it (with `batch`) in a new store.
  // PermissionDenied if it was wrapped by another master key.
  Status LoadStoreKey(rocksdb::WriteBatchBase* create_batch);

  // A private copy of the tenant's data keys (nullopt: the tenant has none,
  // e.g. shredded or never seen). `snapshot` may be null.
  Result<std::optional<DataKeys>> ForRead(std::string_view tenant, const rocksdb::Snapshot* snapshot);
  crypto::DataKey StoreKeyForRead();

  // The writer's instance of the tenant's keys; with `create`, a missing key
  // is generated and its wrapped form added to `batch` (kept until
  // AbortCreated()). Null without `create` when the tenant has no key.
  Result<DataKeys*> ForWrite(std::string_view tenant, bool create, rocksdb::WriteBatchBase* batch);
  crypto::DataKey& StoreKeyForWrite() { return *writer_store_key_; }

  // After the batch holding created keys was written (or was not).
  void CommitCreated();
  void AbortCreated();

  // Drops the tenant's cached keys (shredding: the caller deletes the record;
  // rotation: it changed).
  void Forget(std::string_view tenant);
  // Drops every reader's cached key (a read-only store caught up with its
  // writer, which may have rotated or shredded keys).
  void ForgetReaders();

  // Adds to `batch` the tenant's key record with a new data key appended
  // (the new current key; the old ones stay to decrypt what they made).
  // Returns the new key's id; NotFound if the tenant has no key.
  Result<uint32_t> Rotate(std::string_view tenant, rocksdb::WriteBatch* batch);

  // Adds to `batch` every key record (the store's and each tenant's, all the
  // keys of each) wrapped anew under `next`. Nothing else may use the
  // keyring meanwhile; it keeps the old master key.
  Status Rewrap(const crypto::MasterKey& next, rocksdb::WriteBatch* batch);

  // Key records are bound to their owner (MasterKey::Wrap's binding: the
  // store, or "timevault/tenant-key" NUL tenant), so a record moved to
  // another tenant does not unwrap. A store written before bindings holds
  // unbound records (wrapped-key format 1): `bound()` is false after
  // LoadStoreKey, every record is read either way, and BindRecords adds to
  // `batch` each record with an unbound key wrapped again, bound (the
  // writer, once at open; returns how many). Once the store key is bound
  // (a new store, or after that batch), an unbound tenant record is refused.
  bool bound() const { return bound_; }
  Result<size_t> BindRecords(rocksdb::WriteBatch* batch);
  void MarkBound() { bound_ = true; }

 private:
  // The tenant's key record as stored (nullopt: none). `snapshot` may be null.
  Result<std::optional<std::string>> Record(std::string_view tenant, const rocksdb::Snapshot* snapshot);
  Result<std::optional<DataKeys>> Load(std::string_view tenant, const rocksdb::Snapshot* snapshot);
  Result<size_t> RewrapRecords(const crypto::MasterKey& next, bool only_unbound, rocksdb::WriteBatch* batch);

  crypto::MasterKey master_;
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* keys_cf_;
  bool bound_ = false;  // set by LoadStoreKey; see bound()

  std::mutex mu_;                                         // guards readers_
  std::map<std::string, DataKeys, std::less<>> readers_;  // master copies, only cloned
  uint64_t generation_ = 0;                               // bumped by Forget

  std::optional<crypto::DataKey> reader_store_key_;  // cloned under mu_
  std::optional<crypto::DataKey> writer_store_key_;

  std::map<std::string, DataKeys, std::less<>> writers_;  // writer thread only
  std::vector<std::string> created_;                      // keys created in the current batch
};

}  // namespace timevault::store::engine
