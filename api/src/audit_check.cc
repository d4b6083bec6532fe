#include "timevault/api/audit_check.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>

#include "audit.h"
#include "timevault/core/crypto.h"

namespace timevault::api {
namespace {

Result<std::unique_ptr<AuditLog>> OpenTrail(const std::string& state_dir, const std::string& key_file, bool read_only) {
  auto master = crypto::MasterKey::Load(key_file);
  if (!master.ok()) return master.status();
  return AuditLog::Open(state_dir, master->DeriveKey("audit/v1"), SystemClock(), read_only);
}

std::string UserName() {
  struct passwd* pw = getpwuid(geteuid());
  return pw ? pw->pw_name : std::to_string(geteuid());
}

}  // namespace

Result<std::string> VerifyAuditTrail(const std::string& state_dir, const std::string& key_file) {
  TV_ASSIGN_OR_RETURN(auto log, OpenTrail(state_dir, key_file, true));
  TV_ASSIGN_OR_RETURN(auto v, log->Verify());
  if (v.ok) return "ok: " + std::to_string(v.entries) + " entries";
  return "broken: " + v.problem;
}

struct CliAudit::Impl {
  std::unique_ptr<AuditLog> log;
  AuditRecord record;
  uint64_t intent = 0;
  bool finished = false;
};

CliAudit::CliAudit(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CliAudit::~CliAudit() {
  if (!impl_->finished) Finish(Internal("the command ended without reporting its outcome"));
}

Result<std::unique_ptr<CliAudit>> CliAudit::Begin(const config::Config& cfg, const std::string& command,
                                                  const std::string& tenant, const std::string& params_json) {
  std::error_code ec;
  std::filesystem::create_directories(cfg.api.state_dir, ec);
  if (ec) return Internal("audit: cannot create api.state_dir: " + ec.message());
  auto log = OpenTrail(cfg.api.state_dir, cfg.store.key_file, false);
  if (!log.ok()) return Internal("audit: cannot open the audit trail: " + log.status().message());
  auto impl = std::make_unique<Impl>();
  impl->log = std::move(log).value();
  impl->record.kind = "cli";
  impl->record.actor = "cli:" + UserName();
  impl->record.method = "CLI";
  impl->record.path = command;
  impl->record.tenant = tenant;
  impl->record.params_json = params_json;
  impl->record.outcome = "started";
  auto seq = impl->log->Append(impl->record);
  if (!seq.ok()) return Internal("audit: cannot write the audit trail: " + seq.status().message());
  impl->intent = *seq;
  return std::unique_ptr<CliAudit>(new CliAudit(std::move(impl)));
}

void CliAudit::Finish(const Status& outcome) {
  impl_->finished = true;
  AuditRecord r = impl_->record;
  r.kind = "result";
  r.params_json = "{}";
  r.ref = impl_->intent;
  r.outcome = outcome.ok() ? "ok" : "error";
  r.message = outcome.ok() ? "" : outcome.message();
  if (auto seq = impl_->log->Append(r); !seq.ok()) spdlog::error("audit: {}", seq.status().ToString());
}

}  // namespace timevault::api
