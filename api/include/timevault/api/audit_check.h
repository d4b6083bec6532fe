// Offline check of an API audit trail (for `timevault audit verify`).
#pragma once

#include <string>

#include "timevault/core/status.h"

namespace timevault::api {

// Verifies <state_dir>/audit.log against its hash chain and audit.head.
// Returns "ok: N entries" or "broken: line L: <problem>".
Result<std::string> VerifyAuditTrail(const std::string& state_dir);

}  // namespace timevault::api
