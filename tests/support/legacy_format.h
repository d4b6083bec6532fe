// The formats today's main wrote before key bindings and archive key rings,
// made with OpenSSL directly from the documented layouts (core/crypto.h,
// docs/replay.md), so tests can check that older stores and archives still
// open without keeping the old writer in the product.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <string>
#include <string_view>

#include "timevault/core/crypto.h"

namespace timevault::testing {

// The format-1 (unbound) form of a bound wrapped key: version 1 | key id |
// nonce | AES-256-GCM(master, key, aad = the 5 header bytes) | tag. Empty if
// `wrapped` does not open under `master` with `binding`.
inline std::string UnboundWrappedKey(std::string_view master, std::string_view wrapped, std::string_view binding) {
  namespace c = timevault::crypto;
  if (wrapped.size() != c::MasterKey::kWrappedKeyBytes || master.size() != c::kKeyBytes) return {};
  const auto* u = reinterpret_cast<const unsigned char*>(wrapped.data());
  const auto* mk = reinterpret_cast<const unsigned char*>(master.data());
  unsigned char key[c::kKeyBytes + 16], tag[c::kTagBytes];
  std::memcpy(tag, u + wrapped.size() - c::kTagBytes, c::kTagBytes);
  int n = 0;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, mk, u + 5) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &n, u, 5) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(binding.data()),
                              static_cast<int>(binding.size())) == 1 &&
            EVP_DecryptUpdate(ctx, key, &n, u + c::kValueHeaderBytes, c::kKeyBytes) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, c::kTagBytes, tag) == 1 &&
            EVP_DecryptFinal_ex(ctx, key + c::kKeyBytes, &n) == 1;
  std::string out(wrapped);
  out[0] = 1;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, mk, o + 5) == 1 &&
       EVP_EncryptUpdate(ctx, nullptr, &n, o, 5) == 1 &&
       EVP_EncryptUpdate(ctx, o + c::kValueHeaderBytes, &n, key, c::kKeyBytes) == 1 &&
       EVP_EncryptFinal_ex(ctx, o + c::kValueHeaderBytes + c::kKeyBytes, &n) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, c::kTagBytes, o + out.size() - c::kTagBytes) == 1;
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof key);
  return ok ? out : std::string();
}

}  // namespace timevault::testing
