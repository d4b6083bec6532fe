#include "audit.h"

#include <rapidjson/document.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "json_util.h"
#include "timevault/core/crypto.h"

namespace timevault::api {
namespace {

constexpr std::string_view kHashField = ",\"hash\":\"";
const std::string kGenesis(64, '0');

// An entry line is `<body>,"hash":"<hex>"}` where <body> is the entry's JSON
// object without its closing brace; the hash covers prev_hash + "\n" + body.
std::string EntryHash(const std::string& prev_hash, std::string_view body) {
  return crypto::Sha256Hex(prev_hash + "\n" + std::string(body));
}

struct ParsedLine {
  uint64_t seq = 0;
  std::string prev_hash, hash, time, actor, tenant;
};

// Splits and checks one line's own hash; nullopt with `problem` set if bad.
std::optional<ParsedLine> ParseLine(const std::string& line, std::string* problem) {
  size_t pos = line.rfind(kHashField);
  if (pos == std::string::npos || line.size() < pos + kHashField.size() + 66 || line.back() != '}') {
    *problem = "not an audit entry (no hash)";
    return std::nullopt;
  }
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("seq") || !d["seq"].IsUint64() || !d.HasMember("prev_hash") ||
      !d["prev_hash"].IsString() || !d["hash"].IsString() || !d.HasMember("time") || !d["time"].IsString() ||
      !d["actor"].IsString() || !d["tenant"].IsString()) {
    *problem = "not a well-formed audit entry";
    return std::nullopt;
  }
  ParsedLine p{d["seq"].GetUint64(),  d["prev_hash"].GetString(), d["hash"].GetString(),
               d["time"].GetString(), d["actor"].GetString(),     d["tenant"].GetString()};
  if (EntryHash(p.prev_hash, std::string_view(line).substr(0, pos)) != p.hash) {
    *problem = "hash does not match the entry's content (entry edited)";
    return std::nullopt;
  }
  return p;
}

}  // namespace

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& dir, const Clock& clock, bool read_only) {
  std::unique_ptr<AuditLog> log(new AuditLog(dir, clock));
  log->last_hash_ = kGenesis;
  // Continue the chain from the last entry (verify reports any damage; the
  // service must keep auditing even then).
  std::ifstream in(log->log_path());
  std::string line, problem;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (auto p = ParseLine(line, &problem)) {
      log->seq_ = p->seq;
      log->last_hash_ = p->hash;
    }
  }
  // If the head records more entries than the log holds, entries were
  // removed from the end: continue the chain from the head, so the removal
  // stays visible to verify instead of being papered over.
  std::ifstream head(log->head_path());
  std::stringstream hs;
  hs << head.rdbuf();
  rapidjson::Document h;
  std::string htext = hs.str();
  h.Parse(htext.data(), htext.size());
  if (!h.HasParseError() && h.IsObject() && h.HasMember("seq") && h["seq"].IsUint64() && h.HasMember("hash") &&
      h["hash"].IsString() && h["seq"].GetUint64() > log->seq_) {
    log->seq_ = h["seq"].GetUint64();
    log->last_hash_ = h["hash"].GetString();
  }
  if (read_only) return log;
  log->file_ = std::fopen(log->log_path().c_str(), "a");
  if (!log->file_) return Internal("audit: cannot open " + log->log_path() + ": " + std::strerror(errno));
  TV_RETURN_IF_ERROR(log->WriteHead());
  return log;
}

AuditLog::~AuditLog() {
  if (file_) std::fclose(file_);
}

Status AuditLog::WriteHead() {
  std::string tmp = head_path() + ".tmp";
  std::string text = "{\"seq\":" + std::to_string(seq_) + ",\"hash\":\"" + last_hash_ + "\"}\n";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return Internal("audit: cannot write " + tmp + ": " + std::strerror(errno));
  bool ok =
      std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && fdatasync(fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), head_path().c_str()) != 0) {
    return Internal("audit: cannot write " + head_path() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status AuditLog::Append(const AuditRecord& r) {
  std::lock_guard lock(mu_);
  if (!file_) return FailedPrecondition("audit: opened read-only");
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("seq");
  w.Uint64(seq_ + 1);
  w.Key("time");
  WriteString(w, clock_.Now().ToIso());
  w.Key("actor");
  WriteString(w, r.actor);
  w.Key("method");
  WriteString(w, r.method);
  w.Key("path");
  WriteString(w, r.path);
  w.Key("tenant");
  WriteString(w, r.tenant);
  w.Key("params");
  WriteRaw(w, r.params_json.empty() || !IsValidJson(r.params_json) ? "{}" : r.params_json);
  w.Key("status");
  w.Int(r.status);
  w.Key("outcome");
  WriteString(w, r.outcome);
  w.Key("message");
  WriteString(w, r.message);
  w.Key("prev_hash");
  WriteString(w, last_hash_);
  w.EndObject();
  std::string body(buf.GetString(), buf.GetSize() - 1);  // without the closing brace
  std::string hash = EntryHash(last_hash_, body);
  std::string line = body + std::string(kHashField) + hash + "\"}\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0 ||
      fdatasync(fileno(file_)) != 0) {
    return Internal("audit: cannot append to " + log_path() + ": " + std::strerror(errno));
  }
  ++seq_;
  last_hash_ = hash;
  return WriteHead();
}

uint64_t AuditLog::entries() {
  std::lock_guard lock(mu_);
  return seq_;
}

Status AuditLog::Read(const AuditFilter& f, const std::function<void(const std::string&)>& emit) {
  std::ifstream in(log_path());
  if (!in) return Internal("audit: cannot read " + log_path());
  std::string line, problem;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    if (d.HasParseError() || !d.IsObject()) continue;  // verify names damaged lines
    auto str = [&d](const char* k) { return d.HasMember(k) && d[k].IsString() ? std::string(d[k].GetString()) : ""; };
    auto t = CommitTime::Parse(str("time"));
    if (f.from && (!t || *t < *f.from)) continue;
    if (f.to && (!t || *t > *f.to)) continue;
    if (f.actor && str("actor") != *f.actor) continue;
    if (f.tenant && str("tenant") != *f.tenant) continue;
    emit(line);
  }
  return Status::Ok();
}

Result<AuditVerification> AuditLog::Verify() {
  std::lock_guard lock(mu_);
  AuditVerification v;
  auto fail = [&v](uint64_t line, std::string problem) {
    v.ok = false;
    v.first_bad_line = line;
    v.problem = "line " + std::to_string(line) + ": " + std::move(problem);
    return v;
  };
  std::ifstream in(log_path());
  if (!in) return Internal("audit: cannot read " + log_path());
  std::string line, problem, prev = kGenesis;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto p = ParseLine(line, &problem);
    if (!p) return fail(n, problem);
    if (p->seq != n) {
      return fail(n, "sequence number " + std::to_string(p->seq) + " where " + std::to_string(n) +
                         " was expected (entry inserted or removed)");
    }
    if (p->prev_hash != prev) return fail(n, "prev_hash does not match the previous entry (entry removed or inserted)");
    prev = p->hash;
  }
  v.entries = n;
  std::ifstream head(head_path());
  std::stringstream hs;
  hs << head.rdbuf();
  rapidjson::Document h;
  std::string htext = hs.str();
  h.Parse(htext.data(), htext.size());
  if (h.HasParseError() || !h.IsObject() || !h.HasMember("seq") || !h["seq"].IsUint64() || !h.HasMember("hash") ||
      !h["hash"].IsString()) {
    return fail(n + 1, "audit.head is missing or damaged");
  }
  if (h["seq"].GetUint64() != n || h["hash"].GetString() != prev) {
    return fail(n + 1, "the log ends at entry " + std::to_string(n) + " but audit.head records entry " +
                           std::to_string(h["seq"].GetUint64()) + " (entries removed from the end)");
  }
  return v;
}

}  // namespace timevault::api

#include "timevault/api/audit_check.h"

namespace timevault::api {

Result<std::string> VerifyAuditTrail(const std::string& state_dir) {
  TV_ASSIGN_OR_RETURN(auto log, AuditLog::Open(state_dir, SystemClock(), true));
  TV_ASSIGN_OR_RETURN(auto v, log->Verify());
  if (v.ok) return "ok: " + std::to_string(v.entries) + " entries";
  return "broken: " + v.problem;
}

}  // namespace timevault::api
