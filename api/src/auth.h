// Bearer-token authentication and role/tenant authorization. Tokens are
// configured as SHA-256 hashes; the presented token is hashed and compared in
// constant time with every configured hash (no early exit, so timing says
// nothing about which hash came close). Immutable after construction, so
// thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/config/config.h"
#include "timevault/core/status.h"

namespace timevault::api {

// Who is calling: the token's name, role and tenant scope.
struct Principal {
  std::string name;
  config::Role role = config::Role::kViewer;
  std::vector<std::string> tenants;  // {"*"}: every tenant

  // Admins reach every tenant; others their list ("*" in it: every tenant).
  bool AllTenants() const;
  // May this principal touch `tenant` ("*" means every tenant, so only an
  // all-tenant principal may)?
  bool CanAccess(std::string_view tenant) const;
};

class Authenticator {
 public:
  explicit Authenticator(const std::vector<config::ApiToken>& tokens);

  // From the Authorization header value: Unauthenticated when missing, not
  // "Bearer <token>", or no configured token matches.
  Result<Principal> Authenticate(std::string_view authorization) const;

 private:
  std::vector<config::ApiToken> tokens_;
};

// PermissionDenied when the role is below `required` or `tenant` (when set)
// is outside the principal's scope.
Status Authorize(const Principal& who, config::Role required, const std::optional<std::string>& tenant);

}  // namespace timevault::api
