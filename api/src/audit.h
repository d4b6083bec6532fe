// The audit trail: an append-only file (state_dir/audit.log), one JSON line per
// entry, each carrying the MAC of the previous entry and its own MAC
// (HMAC-SHA256 under a key derived from the store's master key, over the
// previous MAC and the entry's text). Editing, removing, inserting or
// rewriting entries cannot be hidden without that key. state_dir/audit.head
// holds the last sequence number and MAC, itself MAC'ed, so cutting entries
// from the end is detected too.
//
// Entries are written by RapidJSON's writer from fields and a canonical
// parameter document (never raw request bytes), so no entry can contain a
// raw newline or smuggle a second line.
//
// Several processes may append (the server, the command line): each append
// takes an exclusive flock on audit.log and continues from audit.head.
// Thread-safe: appends are serialized; each is fdatasync'ed, then the head is
// replaced (written, synced, renamed, directory synced) before Append returns.
// Files are created 0600.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::api {

struct AuditRecord {
  std::string kind;    // intent | result | refused | denied | export | scheduler | cli
  std::string actor;   // token name, "scheduler", "cli:<user>"; "" when no valid token
  std::string source;  // client address, "" for in-process callers
  std::string method;
  std::string path;
  std::string tenant;       // "" when the call names none
  std::string params_json;  // canonical JSON object (CanonicalParams); never raw request bytes
  int status = 0;           // HTTP status of the answer (0: not answered yet)
  std::string outcome;      // started | ok | error | denied
  std::string message;      // the error message, if any
  uint64_t ref = 0;         // for a result: the seq of its intent
  uint64_t count = 1;       // for aggregated denials: how many
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

// The largest canonical body an entry keeps; larger ones are replaced by
// their size and SHA-256.
inline constexpr size_t kAuditMaxBodyBytes = 4096;

// {"bytes":N,"sha256":"..."} plus the body re-serialized from its parsed
// document when it is JSON and at most kAuditMaxBodyBytes long.
std::string CanonicalBody(std::string_view raw);

class AuditLog {
 public:
  // `key`: the MAC key (MasterKey::DeriveKey("audit/v1")).
  // read_only: for checking a trail offline (nothing written).
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& dir, std::string key, const Clock& clock,
                                                bool read_only = false);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends and syncs one entry; its seq. Internal if it could not be
  // written durably (callers refuse the operation: fail closed).
  Result<uint64_t> Append(const AuditRecord& record);
  // Emits the matching entries' lines (as stored), oldest first.
  Status Read(const AuditFilter& filter, const std::function<void(const std::string& line)>& emit);
  // Re-checks the whole chain and the head (and, in a writing process, that
  // the file still holds every entry this process appended).
  Result<AuditVerification> Verify();

  uint64_t entries();

 private:
  AuditLog(std::string dir, std::string key, const Clock& clock)
      : dir_(std::move(dir)), key_(std::move(key)), clock_(clock) {}
  void AdoptHead();
  Status WriteHead();
  std::string log_path() const { return dir_ + "/audit.log"; }
  std::string head_path() const { return dir_ + "/audit.head"; }

  std::string dir_;
  std::string key_;
  const Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t seq_ = 0;
  std::string last_mac_;
  uint64_t appended_high_ = 0;  // highest seq this process wrote
};

}  // namespace timevault::api
