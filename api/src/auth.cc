#include "auth.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "timevault/core/crypto.h"

namespace timevault::api {

bool Principal::AllTenants() const {
  return role == config::Role::kAdmin || std::find(tenants.begin(), tenants.end(), "*") != tenants.end();
}

bool Principal::CanAccess(std::string_view tenant) const {
  if (AllTenants()) return true;
  if (tenant == "*") return false;
  return std::find(tenants.begin(), tenants.end(), tenant) != tenants.end();
}

Authenticator::Authenticator(const std::vector<config::ApiToken>& tokens) : tokens_(tokens) {
  for (auto& t : tokens_) {
    std::transform(t.sha256.begin(), t.sha256.end(), t.sha256.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
}

Result<Principal> Authenticator::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) return Unauthenticated("missing Authorization header (expected 'Bearer <token>')");
  if (authorization.size() <= kBearer.size() || authorization.substr(0, kBearer.size()) != kBearer) {
    return Unauthenticated("Authorization header must be 'Bearer <token>'");
  }
  std::string presented = crypto::Sha256Hex(authorization.substr(kBearer.size()));
  const config::ApiToken* match = nullptr;
  for (const auto& t : tokens_) {
    // Every hash is compared (no break) in constant time.
    bool same =
        t.sha256.size() == presented.size() && CRYPTO_memcmp(t.sha256.data(), presented.data(), presented.size()) == 0;
    if (same && match == nullptr) match = &t;
  }
  if (match == nullptr) return Unauthenticated("invalid bearer token");
  return Principal{match->name, match->role, match->tenants};
}

Status Authorize(const Principal& who, config::Role required, const std::optional<std::string>& tenant) {
  if (static_cast<int>(who.role) < static_cast<int>(required)) {
    return PermissionDenied("token '" + who.name + "' has role " + std::string(config::RoleName(who.role)) +
                            "; this call needs " + std::string(config::RoleName(required)));
  }
  if (tenant && !who.CanAccess(*tenant)) {
    // The tenant is not named: when it was resolved from an id (a backup, a
    // plan, a job) its name is exactly what the caller may not learn.
    return PermissionDenied("token '" + who.name + "' may not act on the tenant this call touches");
  }
  return Status::Ok();
}

}  // namespace timevault::api
