#include "audit.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <rapidjson/document.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "json_util.h"
#include "timevault/core/crypto.h"
#include "timevault/core/file.h"
#include "timevault/core/json.h"

namespace timevault::api {
namespace {

constexpr std::string_view kMacField = ",\"mac\":\"";
const std::string kGenesis(64, '0');

// Constant-time comparison of two MACs (hex strings).
bool SameMac(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// An entry line is `<body>,"mac":"<hex>"}` where <body> is the entry's JSON
// object without its closing brace; the MAC covers prev_mac + "\n" + body.
std::string EntryMac(const std::string& key, const std::string& prev_mac, std::string_view body) {
  return crypto::HmacSha256Hex(key, prev_mac + "\n" + std::string(body));
}

std::string HeadMac(const std::string& key, uint64_t seq, const std::string& mac) {
  return crypto::HmacSha256Hex(key, "audit.head\n" + std::to_string(seq) + "\n" + mac);
}

struct ParsedLine {
  uint64_t seq = 0;
  std::string prev_mac, mac;
};

// Splits and checks one line's own MAC; nullopt with `problem` set if bad.
std::optional<ParsedLine> ParseLine(const std::string& key, const std::string& line, std::string* problem) {
  size_t pos = line.rfind(kMacField);
  if (pos == std::string::npos || line.size() != pos + kMacField.size() + 66 || line.back() != '}') {
    *problem = "not an audit entry (no mac)";
    return std::nullopt;
  }
  rapidjson::Document d;
  if (!json::Parse(line, &d).ok() || !d.IsObject() || !d.HasMember("seq") || !d["seq"].IsUint64() ||
      !d.HasMember("prev_mac") || !d["prev_mac"].IsString() || !d["mac"].IsString()) {
    *problem = "not a well-formed audit entry";
    return std::nullopt;
  }
  ParsedLine p{d["seq"].GetUint64(), d["prev_mac"].GetString(), d["mac"].GetString()};
  if (!SameMac(EntryMac(key, p.prev_mac, std::string_view(line).substr(0, pos)), p.mac)) {
    *problem = "MAC does not match the entry's content (entry edited, or written without the key)";
    return std::nullopt;
  }
  return p;
}

struct Head {
  uint64_t seq = 0;
  std::string mac;
};

// The head, if present and authentic.
std::optional<Head> ReadHead(const std::string& key, const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document h;
  if (!json::Parse(ss.str(), &h).ok() || !h.IsObject() || !h.HasMember("seq") || !h["seq"].IsUint64() ||
      !h.HasMember("mac") || !h["mac"].IsString() || !h.HasMember("head_mac") || !h["head_mac"].IsString()) {
    return std::nullopt;
  }
  Head head{h["seq"].GetUint64(), h["mac"].GetString()};
  if (!SameMac(HeadMac(key, head.seq, head.mac), std::string(h["head_mac"].GetString()))) return std::nullopt;
  return head;
}

}  // namespace

std::string CanonicalBody(std::string_view raw) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("bytes");
  w.Uint64(raw.size());
  w.Key("sha256");
  WriteString(w, crypto::Sha256Hex(raw));
  rapidjson::Document d;
  bool is_json = json::Parse(raw, &d).ok();
  w.Key("json");
  w.Bool(is_json);
  if (is_json) {
    rapidjson::StringBuffer body;
    JsonWriter bw(body);
    d.Accept(bw);
    if (body.GetSize() <= kAuditMaxBodyBytes) {
      w.Key("value");
      d.Accept(w);
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& dir, std::string key, const Clock& clock,
                                                 bool read_only) {
  if (key.size() < 32) return InvalidArgument("audit: the MAC key is missing");
  std::unique_ptr<AuditLog> log(new AuditLog(dir, std::move(key), clock));
  log->last_mac_ = kGenesis;
  // Continue the chain from the last authentic entry (verify reports any
  // damage; the service must keep auditing even then).
  std::ifstream in(log->log_path());
  std::string line, problem;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (auto p = ParseLine(log->key_, line, &problem)) {
      log->seq_ = p->seq;
      log->last_mac_ = p->mac;
    }
  }
  // If the head records more entries than the log holds, entries were cut
  // from the end: continue from the head so the removal stays visible.
  log->AdoptHead();
  if (read_only) return log;
  log->fd_ = ::open(log->log_path().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log->fd_ < 0) return Internal("audit: cannot open the audit log: " + std::string(std::strerror(errno)));
  if (::fchmod(log->fd_, 0600) != 0) return Internal("audit: cannot restrict the audit log to mode 0600");
  if (::flock(log->fd_, LOCK_EX) != 0) return Internal("audit: cannot lock the audit log");
  log->AdoptHead();
  Status st = log->WriteHead();
  ::flock(log->fd_, LOCK_UN);
  TV_RETURN_IF_ERROR(st);
  return log;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::AdoptHead() {
  auto head = ReadHead(key_, head_path());
  if (head && head->seq > seq_) {
    seq_ = head->seq;
    last_mac_ = head->mac;
  }
}

Status AuditLog::WriteHead() {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("seq");
  w.Uint64(seq_);
  w.Key("mac");
  WriteString(w, last_mac_);
  w.Key("head_mac");
  WriteString(w, HeadMac(key_, seq_, last_mac_));
  w.EndObject();
  Status st = WriteFileAtomically(head_path(), std::string(buf.GetString(), buf.GetSize()) + "\n");
  if (!st.ok()) return Internal("audit: cannot write audit.head");
  return Status::Ok();
}

Result<uint64_t> AuditLog::Append(const AuditRecord& r) {
  std::lock_guard lock(mu_);
  if (fd_ < 0) return FailedPrecondition("audit: opened read-only");
  if (::flock(fd_, LOCK_EX) != 0) return Internal("audit: cannot lock the audit log");
  struct Unlock {
    int fd;
    ~Unlock() { ::flock(fd, LOCK_UN); }
  } unlock{fd_};
  AdoptHead();  // another process (the command line) may have appended
  // Only a document this process built may be embedded; anything else (or
  // anything with a raw line break) is replaced, never copied.
  std::string params = r.params_json;
  if (params.empty() || params.find_first_of("\r\n") != std::string::npos || !json::IsValid(params)) params = "{}";
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("seq");
  w.Uint64(seq_ + 1);
  w.Key("time");
  WriteString(w, clock_.Now().ToIso());
  w.Key("kind");
  WriteString(w, r.kind);
  w.Key("actor");
  WriteString(w, r.actor);
  w.Key("source");
  WriteString(w, r.source);
  w.Key("method");
  WriteString(w, r.method);
  w.Key("path");
  WriteString(w, r.path);
  w.Key("tenant");
  WriteString(w, r.tenant);
  w.Key("params");
  WriteRaw(w, params);
  w.Key("status");
  w.Int(r.status);
  w.Key("outcome");
  WriteString(w, r.outcome);
  w.Key("message");
  WriteString(w, r.message);
  if (r.ref != 0) {
    w.Key("ref");
    w.Uint64(r.ref);
  }
  if (r.count != 1) {
    w.Key("count");
    w.Uint64(r.count);
  }
  w.Key("prev_mac");
  WriteString(w, last_mac_);
  w.EndObject();
  std::string body(buf.GetString(), buf.GetSize() - 1);  // without the closing brace
  std::string mac = EntryMac(key_, last_mac_, body);
  std::string line = body + std::string(kMacField) + mac + "\"}\n";
  if (!WriteAll(fd_, line, "audit.log").ok() || ::fdatasync(fd_) != 0) {
    return Internal("audit: cannot append to the audit log: " + std::string(std::strerror(errno)));
  }
  ++seq_;
  last_mac_ = mac;
  appended_high_ = seq_;
  TV_RETURN_IF_ERROR(WriteHead());
  return seq_;
}

uint64_t AuditLog::entries() {
  std::lock_guard lock(mu_);
  return seq_;
}

Status AuditLog::Read(const AuditFilter& f, const std::function<void(const std::string&)>& emit) {
  std::ifstream in(log_path());
  if (!in) return Status::Ok();  // no entry yet
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    if (!json::Parse(line, &d).ok() || !d.IsObject()) continue;  // verify names damaged lines
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
  std::string line, problem, prev = kGenesis;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto p = ParseLine(key_, line, &problem);
    if (!p) return fail(n, problem);
    if (p->seq != n) {
      return fail(n, "sequence number " + std::to_string(p->seq) + " where " + std::to_string(n) +
                         " was expected (entry inserted or removed)");
    }
    if (p->prev_mac != prev) return fail(n, "prev_mac does not match the previous entry (entry removed or inserted)");
    prev = p->mac;
  }
  v.entries = n;
  auto head = ReadHead(key_, head_path());
  if (!head) return fail(n + 1, "audit.head is missing, damaged or not written with the key");
  if (head->seq != n || head->mac != prev) {
    return fail(n + 1, "the log ends at entry " + std::to_string(n) + " but audit.head records entry " +
                           std::to_string(head->seq) + " (entries removed from the end)");
  }
  if (appended_high_ > n) {
    return fail(n + 1, "the log ends at entry " + std::to_string(n) + " but this server appended entry " +
                           std::to_string(appended_high_) + " (entries removed from the end, head rewritten)");
  }
  return v;
}

}  // namespace timevault::api
