#include "timevault/core/signing.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "timevault/core/file.h"

namespace timevault::signing {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr std::string_view kLabel = "timevault/signed-event/v1";
constexpr std::string_view kVersion = "v1";
constexpr char kHex[] = "0123456789abcdef";

std::string Hex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

std::string CreateHint(const std::string& path) {
  return "create one with: head -c 32 /dev/urandom > " + path + " && chmod 600 " + path +
         " (capture and store need the same file)";
}

bool AllPrintable(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x20 || p[i] > 0x7e) return false;
  }
  return true;
}

// Reads the whole key file (at most 33 bytes, to tell "longer") after the
// checks that keep others from reading or swapping it.
Result<std::string> ReadKeyFile(const std::string& path) {
  const std::string what = "signing.key_file " + path;
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(what + " does not exist; " + CreateHint(path));
    if (err == ELOOP) return InvalidArgument(what + " is a symbolic link; name the key file itself");
    if (err == EACCES || err == EPERM) return PermissionDenied("cannot read " + what + ": " + std::strerror(err));
    return InvalidArgument("cannot open " + what + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return InvalidArgument("cannot stat " + what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + " is not a regular file");
  if (st.st_uid != ::geteuid()) {
    return PermissionDenied(what + " is owned by uid " + std::to_string(st.st_uid) + ", not by the running user (uid " +
                            std::to_string(::geteuid()) + "); whoever owns it can replace the key");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(what + " has mode " + mode +
                            "; others who can read it can forge change events: chmod 600 " + path);
  }
  std::string buf(kKeyBytes + 1, '\0');
  size_t total = 0;
  while (total < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + total, buf.size() - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      OPENSSL_cleanse(buf.data(), buf.size());
      return InvalidArgument("cannot read " + what + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  const bool text = AllPrintable(reinterpret_cast<const unsigned char*>(buf.data()), total);
  if (total != kKeyBytes || text) {
    OPENSSL_cleanse(buf.data(), buf.size());
    return InvalidArgument(what + (total != kKeyBytes ? " is not exactly 32 bytes" : " holds 32 bytes of text") +
                           "; a signing key is 32 raw random bytes (no hex, base64 or passphrase); " +
                           CreateHint(path));
  }
  buf.resize(kKeyBytes);
  return buf;
}

void Field(EVP_MAC_CTX* ctx, const std::optional<std::string_view>& v) {
  unsigned char head[9] = {0};
  if (!v) {
    EVP_MAC_update(ctx, head, 1);
    return;
  }
  head[0] = 1;
  const uint64_t n = v->size();
  for (int i = 0; i < 8; ++i) head[1 + i] = static_cast<unsigned char>(n >> (56 - 8 * i));
  EVP_MAC_update(ctx, head, sizeof head);
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(v->data()), v->size());
}

}  // namespace

bool SignedMessage::SetHeader(std::string_view name, std::string_view v) {
  for (size_t i = 0; i < kCoveredHeaders.size(); ++i) {
    if (kCoveredHeaders[i] == name) {
      headers[i] = v;
      return true;
    }
  }
  return false;
}

void EventSigner::CtxDeleter::operator()(evp_mac_ctx_st* ctx) const { EVP_MAC_CTX_free(ctx); }

EventSigner::EventSigner(EventSigner&&) noexcept = default;
EventSigner& EventSigner::operator=(EventSigner&&) noexcept = default;
EventSigner::~EventSigner() {
  if (!key_.empty()) OPENSSL_cleanse(key_.data(), key_.size());
}

Result<EventSigner> EventSigner::Load(const std::string& path) {
  if (path.empty()) return InvalidArgument("signing.key_file is empty");
  TV_ASSIGN_OR_RETURN(std::string key, ReadKeyFile(path));
  auto signer = FromKey(key);
  OPENSSL_cleanse(key.data(), key.size());
  return signer;
}

Result<EventSigner> EventSigner::FromKey(std::string_view key) {
  if (key.size() != kKeyBytes) return InvalidArgument("a signing key is 32 bytes");
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return Internal("OpenSSL has no HMAC");
  EventSigner s;
  s.ctx_.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context keeps its own reference
  if (!s.ctx_) return Internal("OpenSSL could not create an HMAC context");
  s.key_.assign(key);
  // The key id: the first 4 bytes of the HMAC of a fixed label.
  SignedMessage label;
  label.topic = "timevault/signing-key-id";
  const auto id = s.Mac(label);
  s.key_id_ = Hex(id.data(), 4);
  return s;
}

std::array<unsigned char, 32> EventSigner::Mac(const SignedMessage& m) {
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  EVP_MAC_CTX* ctx = ctx_.get();
  std::array<unsigned char, 32> out{};
  size_t len = 0;
  // Failures here mean a broken OpenSSL: the all-zero MAC then matches no
  // signature, so every message is refused rather than accepted.
  if (EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key_.data()), key_.size(), params) != 1) return out;
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size());
  const unsigned char zero = 0;
  EVP_MAC_update(ctx, &zero, 1);
  Field(ctx, m.topic);
  Field(ctx, m.key);
  Field(ctx, m.value);
  for (const auto& h : m.headers) Field(ctx, h);
  if (EVP_MAC_final(ctx, out.data(), &len, out.size()) != 1 || len != out.size()) out.fill(0);
  return out;
}

std::string EventSigner::Sign(const SignedMessage& m) {
  const auto mac = Mac(m);
  std::string out;
  out.reserve(kVersion.size() + 1 + key_id_.size() + 1 + 64);
  out.append(kVersion).append(":").append(key_id_).append(":").append(Hex(mac.data(), mac.size()));
  return out;
}

Status EventSigner::Verify(const SignedMessage& m, std::optional<std::string_view> header) {
  if (!header) {
    return PermissionDenied("unsigned: no " + std::string(kSignatureHeader) +
                            " header, and signing.require is on (only capture holds the signing key)");
  }
  const std::string_view h = *header;
  const bool shaped = h.size() == kVersion.size() + 1 + 8 + 1 + 64 && h.starts_with(kVersion) &&
                      h[kVersion.size()] == ':' && h[kVersion.size() + 9] == ':';
  if (!shaped) {
    return PermissionDenied("forged: the " + std::string(kSignatureHeader) +
                            " header is not a timevault signature (v1:<key id>:<64 hex digits>)");
  }
  const std::string_view id = h.substr(kVersion.size() + 1, 8);
  if (id != key_id_) {
    return PermissionDenied("forged or foreign: signed with key id " + std::string(id) +
                            ", and this store verifies with key id " + key_id_ +
                            " (signing.key_file must be the same file for capture and store)");
  }
  const std::string expected = Hex(Mac(m).data(), 32);
  const std::string_view given = h.substr(h.size() - 64);
  if (CRYPTO_memcmp(expected.data(), given.data(), expected.size()) != 0) {
    return PermissionDenied(
        "forged: the signature does not match the message (its topic, key, value or a "
        "timevault header differs from what capture signed)");
  }
  return Status::Ok();
}

}  // namespace timevault::signing
