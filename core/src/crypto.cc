#include "timevault/core/crypto.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "timevault/core/file.h"

namespace timevault::crypto {

namespace internal {

struct Secret {
  uint8_t bytes[kKeyBytes];
};

void SecretDeleter::operator()(Secret* s) const {
  OPENSSL_cleanse(s, sizeof(*s));
  delete s;
}

// EVP_CIPHER_CTX_free wipes the key schedule along with the context.
void CipherCtxDeleter::operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }

void MdCtxDeleter::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

// Random nonces fetched from RAND_bytes a block at a time and handed out
// once each, in order. Every nonce is still 96 fresh random bits (the
// collision bound of SP 800-38D's random construction is unchanged); only
// the per-call overhead of the generator is shared. A pool belongs to one
// DataKey instance, so no nonce is ever given to two encryptions.
struct NoncePool {
  static constexpr size_t kCount = 256;
  uint8_t bytes[kCount * kNonceBytes];
  size_t next = kCount;  // empty: filled on first use
};

void NoncePoolDeleter::operator()(NoncePool* p) const { delete p; }

}  // namespace internal

namespace {

using internal::CipherCtxPtr;
using internal::Secret;
using internal::SecretPtr;

// Wrapped data keys have their own format version, independent of values'.
// Version 1 (before bindings): no aad. Version 2: the caller's binding is the
// aad, so a wrapped key moved to another owner (tenant) fails to unwrap.
constexpr uint8_t kUnboundWrapVersion = 1;
constexpr uint8_t kBoundWrapVersion = 2;
// Version byte + key id: authenticated as aad in front of the caller's aad.
constexpr size_t kBoundHeaderBytes = 5;
// EVP_CipherUpdate takes an int length; larger inputs go in chunks.
constexpr size_t kMaxUpdateBytes = size_t{1} << 30;

// OpenSSL's reason for the last failure, clearing its error queue.
std::string OpenSslError() {
  char reason[256] = "no OpenSSL error queued";
  if (unsigned long err = ERR_get_error(); err != 0) ERR_error_string_n(err, reason, sizeof(reason));
  ERR_clear_error();
  return reason;
}

// Ends the process after an OpenSSL failure that must not be worked around
// (no randomness for a key or nonce, a cipher that will not run).
[[noreturn]] void Die(const char* what) {
  spdlog::critical("crypto: {} failed: {}; stopping rather than risk a weak key or a repeated nonce", what,
                   OpenSslError());
  std::abort();
}

uint8_t* U8(char* p) { return reinterpret_cast<uint8_t*>(p); }
const uint8_t* U8(const char* p) { return reinterpret_cast<const uint8_t*>(p); }

void FillRandom(uint8_t* p, size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) Die("RAND_bytes");
}

SecretPtr NewRandomSecret() {
  SecretPtr s(new Secret);
  FillRandom(s->bytes, kKeyBytes);
  return s;
}

// Version byte, then the key id big-endian: the first 5 bytes of a value or
// of a wrapped key.
void WriteHeader(uint8_t version, uint32_t id, char* p) {
  p[0] = static_cast<char>(version);
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>(id >> (24 - 8 * i));
}

uint32_t ReadKeyId(const char* p) {
  const uint8_t* u = U8(p + 1);
  return uint32_t{u[0]} << 24 | uint32_t{u[1]} << 16 | uint32_t{u[2]} << 8 | uint32_t{u[3]};
}

CipherCtxPtr NewGcmCtx(const uint8_t* key, bool encrypt) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Die("EVP_CIPHER_CTX_new");
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nullptr, encrypt ? 1 : 0) != 1) {
    Die("AES-256-GCM key setup");
  }
  return ctx;
}

// Runs `in` through the context in int-sized chunks. With out == nullptr the
// bytes are GCM aad; otherwise exactly in.size() bytes go to out (GCM is a
// stream mode and buffers nothing).
bool Update(EVP_CIPHER_CTX* ctx, std::string_view in, char* out) {
  for (size_t pos = 0; pos < in.size();) {
    const int n = static_cast<int>(std::min(kMaxUpdateBytes, in.size() - pos));
    int written = 0;
    if (EVP_CipherUpdate(ctx, out ? U8(out + pos) : nullptr, &written, U8(in.data() + pos), n) != 1) return false;
    pos += static_cast<size_t>(n);
  }
  return true;
}

// Feeds the nonce and the aad (the 5-byte header, then the caller's aad) to a
// context whose key is already set, starting a new message.
bool Begin(EVP_CIPHER_CTX* ctx, const char* sealed, std::string_view aad) {
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, U8(sealed + kBoundHeaderBytes), -1) != 1) return false;
  return Update(ctx, std::string_view(sealed, kBoundHeaderBytes), nullptr) && Update(ctx, aad, nullptr);
}

// Encrypts `plaintext` into `sealed`, which holds kValueOverhead +
// plaintext.size() bytes with the header already written: draws the nonce,
// then writes the ciphertext and the tag. Dies if OpenSSL fails.
void Seal(EVP_CIPHER_CTX* ctx, std::string_view aad, std::string_view plaintext, char* sealed,
          internal::NoncePool* nonces = nullptr) {
  if (nonces == nullptr) {
    FillRandom(U8(sealed + kBoundHeaderBytes), kNonceBytes);
  } else {
    if (nonces->next == internal::NoncePool::kCount) {
      FillRandom(nonces->bytes, sizeof(nonces->bytes));
      nonces->next = 0;
    }
    std::memcpy(sealed + kBoundHeaderBytes, nonces->bytes + nonces->next++ * kNonceBytes, kNonceBytes);
  }
  char* body = sealed + kValueHeaderBytes;
  char* tag = body + plaintext.size();
  int final_len = 0;
  if (!Begin(ctx, sealed, aad) || !Update(ctx, plaintext, body) || EVP_EncryptFinal_ex(ctx, U8(tag), &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) != 1) {
    Die("AES-256-GCM encryption");
  }
}

enum class OpenResult { kOk, kAuthFailed, kLibraryError };

// Decrypts the body of `sealed` (header, body, tag; at least kValueOverhead
// bytes) into `out`, which has room for sealed.size() - kValueOverhead bytes.
// On anything but kOk, `out` holds unauthenticated bytes the caller must wipe.
OpenResult Open(EVP_CIPHER_CTX* ctx, std::string_view sealed, std::string_view aad, char* out) {
  const std::string_view body = sealed.substr(kValueHeaderBytes, sealed.size() - kValueOverhead);
  std::array<char, kTagBytes> tag;
  std::memcpy(tag.data(), sealed.data() + sealed.size() - kTagBytes, kTagBytes);
  if (!Begin(ctx, sealed.data(), aad) || !Update(ctx, body, out) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return OpenResult::kLibraryError;
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx, U8(out + body.size()), &final_len) != 1) return OpenResult::kAuthFailed;
  return OpenResult::kOk;
}

void WipeAndClear(std::string* s) {
  OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

}  // namespace

// ---- DataKey ----

DataKey::DataKey(uint32_t id, SecretPtr key)
    : id_(id),
      key_(std::move(key)),
      encrypt_ctx_(NewGcmCtx(key_->bytes, /*encrypt=*/true)),
      decrypt_ctx_(NewGcmCtx(key_->bytes, /*encrypt=*/false)) {}

DataKey DataKey::Generate(uint32_t id) { return DataKey(id, NewRandomSecret()); }

const uint8_t* DataKey::bytes() const {
  assert(key_ && "use of a moved-from DataKey");
  return key_->bytes;
}

DataKey DataKey::Clone() const {
  SecretPtr copy(new Secret);
  std::memcpy(copy->bytes, bytes(), kKeyBytes);
  return DataKey(id_, std::move(copy));
}

void DataKey::Encrypt(std::string_view plaintext, std::string_view aad, std::string* out) {
  assert(encrypt_ctx_ && "use of a moved-from DataKey");
  out->resize(kValueOverhead + plaintext.size());
  WriteHeader(kValueFormatVersion, id_, out->data());
  if (!nonces_) nonces_.reset(new internal::NoncePool);
  Seal(encrypt_ctx_.get(), aad, plaintext, out->data(), nonces_.get());
}

Status DataKey::Decrypt(std::string_view ciphertext, std::string_view aad, std::string* out) {
  assert(decrypt_ctx_ && "use of a moved-from DataKey");
  out->clear();
  TV_ASSIGN_OR_RETURN(const uint32_t id, PeekKeyId(ciphertext));
  if (id != id_) {
    return Corruption("value is encrypted under data key " + std::to_string(id) + " but was given data key " +
                      std::to_string(id_) + " (choose the key with PeekKeyId)");
  }
  out->resize(ciphertext.size() - kValueOverhead);
  switch (Open(decrypt_ctx_.get(), ciphertext, aad, out->data())) {
    case OpenResult::kOk: return Status::Ok();
    case OpenResult::kAuthFailed:
      WipeAndClear(out);
      ERR_clear_error();
      return Corruption(
          "authentication failed: value damaged or encrypted under another key (or read with other aad than it was "
          "written with, e.g. moved to another row key)");
    case OpenResult::kLibraryError: break;
  }
  WipeAndClear(out);
  return Internal("AES-256-GCM decryption failed in OpenSSL: " + OpenSslError());
}

Result<uint32_t> PeekKeyId(std::string_view ciphertext) {
  if (ciphertext.size() < kValueOverhead) {
    return Corruption("encrypted value is " + std::to_string(ciphertext.size()) + " bytes, shorter than the " +
                      std::to_string(kValueOverhead) + "-byte minimum (header and tag): truncated or not encrypted");
  }
  if (const auto version = static_cast<uint8_t>(ciphertext[0]); version != kValueFormatVersion) {
    return Corruption("encrypted value has format version " + std::to_string(version) + "; this build reads version " +
                      std::to_string(kValueFormatVersion));
  }
  return ReadKeyId(ciphertext.data());
}

// ---- MasterKey ----

namespace {

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string CreateHint(const std::string& path) {
  return "create one with: head -c 32 /dev/urandom > " + path + " && chmod 600 " + path;
}

Status OpenError(const std::string& path, int err) {
  if (err == ENOENT) return NotFound("master key file " + path + " does not exist; " + CreateHint(path));
  if (err == ELOOP) {
    return PermissionDenied("master key file " + path +
                            " is a symbolic link, which is not followed; point store.key_file at the file itself");
  }
  if (err == EACCES || err == EPERM) {
    return PermissionDenied("cannot read master key file " + path + ": " + ErrnoText(err));
  }
  return InvalidArgument("cannot open master key file " + path + ": " + ErrnoText(err));
}

// Reads up to `cap` bytes (stopping at end of file) into buf; -1 on error.
ssize_t ReadUpTo(int fd, uint8_t* buf, size_t cap) {
  size_t total = 0;
  while (total < cap) {
    const ssize_t n = ::read(fd, buf + total, cap - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(total);
}

bool LooksLikeText(const uint8_t* p, size_t n) {
  return n > 0 && std::all_of(p, p + n, [](uint8_t c) { return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r'; });
}

// The key file must be the running user's and readable by nobody else: mode
// 0600 or 0400, owned by the effective user. Refused otherwise (a warning
// would be logged once and forgotten while the key stays exposed).
Status CheckOwnerAndMode(const std::string& path, const struct stat& st) {
  if (st.st_uid != ::geteuid()) {
    return PermissionDenied("master key file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                            ", not by the user running timevault (uid " + std::to_string(::geteuid()) +
                            "); give it to that user: chown " + std::to_string(::geteuid()) + " " + path);
  }
  const auto mode = static_cast<unsigned>(st.st_mode & 07777);
  if (mode != 0600 && mode != 0400) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", mode);
    return PermissionDenied("master key file " + path + " has mode " + octal +
                            "; it must be readable by its owner only (0600 or 0400): chmod 600 " + path);
  }
  return Status::Ok();
}

}  // namespace

MasterKey::MasterKey(SecretPtr key) : key_(std::move(key)) {}

Result<MasterKey> MasterKey::Load(const std::string& path) {
  if (path.empty()) return InvalidArgument("master key file path is empty");
  // O_NONBLOCK so a FIFO at the path is rejected below instead of blocking;
  // O_NOFOLLOW so a symbolic link is refused (ELOOP) rather than followed to
  // a file whose owner and mode were never checked.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW));
  if (fd.get() < 0) return OpenError(path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return InvalidArgument("cannot stat master key file " + path + ": " + ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("master key file " + path + " is a directory; it must be a file of exactly 32 random bytes");
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument("master key file " + path + " is not a regular file");
  TV_RETURN_IF_ERROR(CheckOwnerAndMode(path, st));

  // One byte more than a key, to tell "exactly 32" from "longer". Wiped on return.
  struct Buffer {
    uint8_t bytes[kKeyBytes + 1];
    ~Buffer() { OPENSSL_cleanse(bytes, sizeof(bytes)); }
  } buf;
  const ssize_t n = ReadUpTo(fd.get(), buf.bytes, sizeof(buf.bytes));
  if (n < 0) return OpenError(path, errno);
  const auto len = static_cast<size_t>(n);
  const bool text = LooksLikeText(buf.bytes, len);
  if (len != kKeyBytes) {
    const auto size = len > kKeyBytes ? static_cast<uint64_t>(st.st_size) : len;
    return InvalidArgument(
        "master key file " + path + " is " + std::to_string(size) + " bytes; a master key is exactly 32 random bytes" +
        (text ? " (this file holds text; hex, base64 or passphrases are not accepted)" : "") + "; " + CreateHint(path));
  }
  // 32 random bytes are all printable with probability (97/256)^32 < 1e-13.
  if (text) {
    return InvalidArgument("master key file " + path +
                           " holds 32 bytes of text; a master key is 32 raw random bytes, not a passphrase or hex; " +
                           CreateHint(path));
  }
  SecretPtr key(new Secret);
  std::memcpy(key->bytes, buf.bytes, kKeyBytes);
  return MasterKey(std::move(key));
}

std::string MasterKey::Wrap(const DataKey& key, std::string_view binding) const {
  assert(key_ && "use of a moved-from MasterKey");
  std::string out(kWrappedKeyBytes, '\0');
  WriteHeader(kBoundWrapVersion, key.id(), out.data());
  const CipherCtxPtr ctx = NewGcmCtx(key_->bytes, /*encrypt=*/true);
  Seal(ctx.get(), binding, std::string_view(reinterpret_cast<const char*>(key.bytes()), kKeyBytes), out.data());
  return out;
}

bool MasterKey::IsBound(std::string_view wrapped) {
  return !wrapped.empty() && static_cast<uint8_t>(wrapped[0]) == kBoundWrapVersion;
}

Result<DataKey> MasterKey::Unwrap(std::string_view wrapped, std::string_view binding) const {
  assert(key_ && "use of a moved-from MasterKey");
  if (wrapped.size() != kWrappedKeyBytes) {
    return Corruption("wrapped data key is " + std::to_string(wrapped.size()) + " bytes, expected " +
                      std::to_string(kWrappedKeyBytes) + ": not a key record, or truncated");
  }
  const auto version = static_cast<uint8_t>(wrapped[0]);
  if (version != kBoundWrapVersion && version != kUnboundWrapVersion) {
    return Corruption("wrapped data key has format version " + std::to_string(version) +
                      "; this build reads versions " + std::to_string(kUnboundWrapVersion) + " and " +
                      std::to_string(kBoundWrapVersion));
  }
  const uint32_t id = ReadKeyId(wrapped.data());
  SecretPtr key(new Secret);
  const CipherCtxPtr ctx = NewGcmCtx(key_->bytes, /*encrypt=*/false);
  const std::string_view aad = version == kBoundWrapVersion ? binding : std::string_view();
  switch (Open(ctx.get(), wrapped, aad, reinterpret_cast<char*>(key->bytes))) {
    case OpenResult::kOk: return DataKey(id, std::move(key));
    case OpenResult::kAuthFailed:
      ERR_clear_error();
      return PermissionDenied("data key " + std::to_string(id) +
                              " cannot be unwrapped: wrong master key, damaged key record, or a key record bound to "
                              "another owner (moved from another tenant)");
    case OpenResult::kLibraryError: break;
  }
  return Internal("AES-256-GCM unwrap failed in OpenSSL: " + OpenSslError());
}

// ---- SHA-256 ----

namespace {

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string MasterKey::DeriveKey(std::string_view label) const {
  assert(key_ && "use of a moved-from MasterKey");
  std::string info = "timevault/" + std::string(label);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_->bytes, static_cast<int>(kKeyBytes), reinterpret_cast<const unsigned char*>(info.data()),
       info.size(), out, &len);
  std::string key(reinterpret_cast<const char*>(out), len);
  OPENSSL_cleanse(out, sizeof out);
  return key;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinishHex();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) Die("SHA-256 setup");
}

void Sha256::Update(std::string_view data) {
  assert(ctx_ && "use of a moved-from Sha256");
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) Die("SHA-256 update");
}

std::string Sha256::FinishHex() {
  assert(ctx_ && "use of a moved-from Sha256");
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest, &len) != 1 || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    Die("SHA-256 finish");
  }
  return Hex(digest, len);
}

}  // namespace timevault::crypto
