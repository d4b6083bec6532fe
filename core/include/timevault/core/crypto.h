// Encryption at rest: a master key from a key file, per-tenant data keys
// wrapped under it, AES-256-GCM envelope encryption of values, and SHA-256.
//
// Everything is OpenSSL 3 EVP; nothing here is hand-written cryptography.
//
//   MasterKey  32 raw bytes from a file the operator creates once
//              (`head -c 32 /dev/urandom > key && chmod 600 key`). It only
//              wraps and unwraps data keys; it never encrypts values.
//   DataKey    32 random bytes plus a 32-bit key id, one per tenant (or per
//              rotation of a tenant's key). Stored only wrapped by the master
//              key. Encrypts and decrypts values.
//
// Value format (kValueOverhead = 33 bytes on top of the plaintext):
//
//   [0]      format version (kValueFormatVersion)
//   [1..4]   data key id, big-endian
//   [5..16]  nonce, 12 random bytes, fresh for every Encrypt (drawn from
//            OpenSSL's generator 256 at a time: one RAND_bytes call per
//            value cost more than the AES-GCM itself on small rows)
//   [17..n)  AES-256-GCM ciphertext, as long as the plaintext
//   [n..+16) GCM tag
//
// The tag authenticates the ciphertext, the nonce, the version and key id
// bytes, and the caller's `aad`. The aad is not stored: the caller passes the
// same bytes again to Decrypt. Binding a value to its RocksDB key this way
// (aad = the key) means a value copied or moved under another key fails to
// decrypt, so stored rows cannot be swapped between tenants or rows unnoticed.
//
// Key rotation: random 96-bit nonces are safe for about 2^32 encryptions under
// one data key (NIST SP 800-38D). Generate a new DataKey with a new id well
// before that; PeekKeyId tells a reader which key a stored value needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "timevault/core/status.h"

// OpenSSL's context types, declared so this header needs no OpenSSL include.
struct evp_cipher_ctx_st;
struct evp_md_ctx_st;

namespace timevault::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr uint8_t kValueFormatVersion = 1;
// Version byte + key id + nonce.
inline constexpr size_t kValueHeaderBytes = 1 + 4 + kNonceBytes;
// Bytes an encrypted value has beyond its plaintext.
inline constexpr size_t kValueOverhead = kValueHeaderBytes + kTagBytes;

namespace internal {
// 32 key bytes on the heap, wiped with OPENSSL_cleanse when freed. Keeping
// them behind a pointer means a move hands the one copy over instead of
// leaving the bytes behind in the moved-from object.
struct Secret;
struct SecretDeleter {
  void operator()(Secret* s) const;
};
using SecretPtr = std::unique_ptr<Secret, SecretDeleter>;

struct CipherCtxDeleter {
  void operator()(evp_cipher_ctx_st* ctx) const;
};
using CipherCtxPtr = std::unique_ptr<evp_cipher_ctx_st, CipherCtxDeleter>;

struct MdCtxDeleter {
  void operator()(evp_md_ctx_st* ctx) const;
};
using MdCtxPtr = std::unique_ptr<evp_md_ctx_st, MdCtxDeleter>;

// Nonces drawn from the random generator in blocks (crypto.cc).
struct NoncePool;
struct NoncePoolDeleter {
  void operator()(NoncePool* p) const;
};
using NoncePoolPtr = std::unique_ptr<NoncePool, NoncePoolDeleter>;
}  // namespace internal

// A per-tenant data encryption key (AES-256) and its id.
//
// Thread-safety: a DataKey is NOT thread-safe, not even for two concurrent
// Decrypts: Encrypt and Decrypt reuse the key's two cipher contexts (the AES
// key schedule is computed once, not per value), which is why they are not
// const. Use one DataKey per thread; Clone() gives an independent copy.
//
// Lifetime: movable, not copyable. The key bytes and the contexts' key
// schedules are wiped when the DataKey is destroyed. A moved-from DataKey may
// only be destroyed or assigned to.
//
// If OpenSSL's random generator or cipher fails (a broken installation or an
// OS without entropy), Generate and Encrypt abort the process with a message:
// continuing could produce a guessable key or a repeated nonce.
class DataKey {
 public:
  // A new key of 32 bytes from RAND_bytes.
  static DataKey Generate(uint32_t id);

  DataKey(DataKey&&) = default;
  DataKey& operator=(DataKey&&) = default;
  DataKey(const DataKey&) = delete;
  DataKey& operator=(const DataKey&) = delete;

  uint32_t id() const { return id_; }

  // An independent copy with its own cipher contexts, for another thread.
  DataKey Clone() const;

  // Replaces *out with the encryption of `plaintext` (format above), bound to
  // `aad`. Reuses out's capacity; no intermediate buffers. `plaintext` and
  // `aad` must not point into *out.
  void Encrypt(std::string_view plaintext, std::string_view aad, std::string* out);

  // Replaces *out with the plaintext of `ciphertext`, checking that it was
  // made by this key with the same `aad`. Errors, all Corruption:
  //   - too short to be a value, or an unknown format version;
  //   - encrypted under another key id (the message names both ids);
  //   - authentication failed: the value was changed, encrypted under
  //     another key with the same id, or bound to other aad.
  // On error *out is empty: no unauthenticated plaintext is ever returned.
  // `ciphertext` must not point into *out.
  Status Decrypt(std::string_view ciphertext, std::string_view aad, std::string* out);

 private:
  friend class MasterKey;
  DataKey(uint32_t id, internal::SecretPtr key);
  const uint8_t* bytes() const;

  uint32_t id_ = 0;
  internal::SecretPtr key_;
  internal::CipherCtxPtr encrypt_ctx_;
  internal::CipherCtxPtr decrypt_ctx_;
  internal::NoncePoolPtr nonces_;  // created by the first Encrypt
};

// The id of the data key that encrypted `ciphertext`, so a reader can pick it
// from a keyring. Corruption if the bytes are too short to be a value or carry
// an unknown format version. The id is not authenticated until Decrypt.
Result<uint32_t> PeekKeyId(std::string_view ciphertext);

// The master key: wraps data keys for storage and unwraps them at start.
//
// Thread-safety: immutable after Load; Wrap and Unwrap may run concurrently
// (each call uses its own cipher context; they are rare).
// Lifetime: movable, not copyable; the key bytes are wiped on destruction.
class MasterKey {
 public:
  // Reads a key file holding exactly 32 raw bytes; nothing else is accepted
  // (no hex, base64 or passphrase: a person-chosen secret is not a key).
  // The file must be owned by the effective user and have mode 0600 or
  // 0400; a symbolic link is not followed (the last path component; the
  // directories above are the operator's).
  // Errors:
  //   NotFound          the file does not exist (the message says how to make one)
  //   PermissionDenied  the file (or a directory on its path) cannot be read;
  //                     it is a symbolic link; it is owned by another user; its
  //                     mode is not 0600 or 0400 (each message says the fix)
  //   InvalidArgument   a directory or other non-regular file, an OS error
  //                     (with strerror), not exactly 32 bytes long, or 32
  //                     bytes that are all printable text (a passphrase or
  //                     hex; random bytes are that with odds below 1e-13)
  static Result<MasterKey> Load(const std::string& path);

  MasterKey(MasterKey&&) = default;
  MasterKey& operator=(MasterKey&&) = default;
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;

  // The data key encrypted under this master key (AES-256-GCM; the format
  // version, the key id and `binding` authenticated), kWrappedKeyBytes long;
  // safe to store anywhere. `binding` names the key's owner and purpose
  // (e.g. "timevault/tenant-key" + NUL + tenant): it is not stored, and the
  // same bytes must be given to Unwrap, so a wrapped key copied under another
  // owner does not unwrap.
  std::string Wrap(const DataKey& key, std::string_view binding) const;

  // The data key inside `wrapped`, checked against `binding`. A key wrapped
  // before bindings existed (format version 1) carries none and unwraps
  // whatever `binding` is: callers that have migrated their records refuse
  // those with IsBound. Corruption if it is not a wrapped key (length or
  // version); PermissionDenied if it does not authenticate, which means the
  // wrong master key, a damaged record, or another binding.
  Result<DataKey> Unwrap(std::string_view wrapped, std::string_view binding) const;

  // Whether `wrapped` was made by Wrap with a binding (format version 2).
  static bool IsBound(std::string_view wrapped);

  // A 32-byte key for one purpose, derived from the master key as
  // HMAC-SHA256(master, "timevault/" + label): the same master key and label
  // always give the same key; knowing it reveals nothing of the master key or
  // of another label's key. Used for the API's keyed audit chain ("audit/v1").
  std::string DeriveKey(std::string_view label) const;

  // Version + key id + nonce + encrypted key + tag.
  static constexpr size_t kWrappedKeyBytes = kValueHeaderBytes + kKeyBytes + kTagBytes;

 private:
  explicit MasterKey(internal::SecretPtr key);

  internal::SecretPtr key_;
};

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// Lower-case hex HMAC-SHA256 of `data` under `key` (64 characters).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// Streaming SHA-256, for data that does not fit in memory (backup archives).
// Thread-safety: one thread at a time. Movable, not copyable.
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) = default;
  Sha256& operator=(Sha256&&) = default;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);

  // Lower-case hex digest of everything passed to Update since construction or
  // the previous FinishHex; the hasher then starts over, ready for reuse.
  std::string FinishHex();

 private:
  internal::MdCtxPtr ctx_;
};

}  // namespace timevault::crypto
