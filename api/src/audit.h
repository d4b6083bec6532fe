// The audit trail: an append-only file (state_dir/audit.log), one JSON line per
// entry, each carrying the hash of the previous entry and its own hash
// (SHA-256 over the previous hash and the entry's text), so editing, removing
// or inserting a line breaks the chain. state_dir/audit.head holds the last
// sequence number and hash, so removing the newest entries is detected too.
//
// Thread-safe: appends are serialized by a mutex; each is flushed and
// fdatasync'ed before Append returns.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::api {

struct AuditRecord {
  std::string actor;  // token name ("" when no valid token)
  std::string method;
  std::string path;
  std::string tenant;       // "" when the call names none
  std::string params_json;  // request parameters as a JSON object (never the token)
  int status = 0;           // HTTP status of the answer
  std::string outcome;      // "ok", "denied", "error"
  std::string message;      // the error message, if any
};

struct AuditFilter {
  std::optional<CommitTime> from, to;
  std::optional<std::string> actor, tenant;
};

struct AuditVerification {
  bool ok = true;
  uint64_t entries = 0;
  uint64_t first_bad_line = 0;  // 1-based; 0 when ok
  std::string problem;
};

class AuditLog {
 public:
  // read_only: for checking a trail offline (no appends, nothing written).
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& dir, const Clock& clock, bool read_only = false);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  Status Append(const AuditRecord& record);
  // Emits the matching entries' lines (as stored), oldest first.
  Status Read(const AuditFilter& filter, const std::function<void(const std::string& line)>& emit);
  // Re-checks the whole chain and the head.
  Result<AuditVerification> Verify();

  uint64_t entries();

 private:
  AuditLog(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  Status WriteHead();
  std::string log_path() const { return dir_ + "/audit.log"; }
  std::string head_path() const { return dir_ + "/audit.head"; }

  std::string dir_;
  const Clock& clock_;
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  uint64_t seq_ = 0;
  std::string last_hash_;
};

}  // namespace timevault::api
