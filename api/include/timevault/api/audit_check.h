// The API's audit trail from outside the server: offline verification
// (`timevault audit verify`) and the entries the command line writes for its
// own mutations (backup expire, restore, pitr execute, store shred/rekey).
#pragma once

#include <memory>
#include <string>

#include "timevault/config/config.h"
#include "timevault/core/status.h"

namespace timevault::api {

// Verifies <state_dir>/audit.log against its keyed chain and audit.head; the
// key is derived from the master key in `key_file`.
// Returns "ok: N entries" or "broken: line L: <problem>".
Result<std::string> VerifyAuditTrail(const std::string& state_dir, const std::string& key_file);

// One command-line mutation in the trail: Begin writes and syncs an intent
// entry (the caller must not run the mutation if it fails: fail closed),
// Finish the outcome. Safe next to a running server (the file is locked
// for each append).
class CliAudit {
 public:
  // `command` as typed ("backup expire"), `params_json` a JSON object of its
  // arguments (secrets left out).
  static Result<std::unique_ptr<CliAudit>> Begin(const config::Config& cfg, const std::string& command,
                                                 const std::string& tenant, const std::string& params_json);
  ~CliAudit();
  void Finish(const Status& outcome);

 private:
  struct Impl;
  explicit CliAudit(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace timevault::api
