#include "idempotency.h"

namespace timevault::api {

bool ValidIdempotencyKey(const std::string& key) {
  if (key.empty() || key.size() > 255) return false;
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

void IdempotencyCache::EvictLocked(std::chrono::steady_clock::time_point now) {
  while (!order_.empty() && (now - order_.front().first > kTtl || order_.size() > kMaxEntries)) {
    auto it = entries_.find(order_.front().second);
    // Only the entry this queue slot was made for (a key re-begun after a
    // 5xx has a newer slot further back).
    if (it != entries_.end() && it->second.at == order_.front().first) entries_.erase(it);
    order_.pop_front();
  }
}

IdempotencyCache::Outcome IdempotencyCache::Begin(const std::string& scope, const std::string& key,
                                                  const std::string& fingerprint, Response* out) {
  const auto now = std::chrono::steady_clock::now();
  const std::string id = scope + '\n' + key;
  std::lock_guard lock(mu_);
  EvictLocked(now);
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    if (it->second.fingerprint != fingerprint) return Outcome::kMismatch;
    if (!it->second.done) return Outcome::kInProgress;
    *out = it->second.response;
    return Outcome::kReplay;
  }
  entries_[id] = Entry{fingerprint, false, {}, now};
  order_.emplace_back(now, id);
  return Outcome::kNew;
}

void IdempotencyCache::Finish(const std::string& scope, const std::string& key, Response response) {
  const std::string id = scope + '\n' + key;
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (response.status >= 500) {
    entries_.erase(it);
    return;
  }
  it->second.done = true;
  it->second.response = std::move(response);
}

}  // namespace timevault::api

// ---- the router's side ----------------------------------------------------------

#include "server_impl.h"
#include "timevault/core/crypto.h"

namespace timevault::api {

void ServeIdempotent(ApiState& s, const HandlerFn& handler, Call& c) {
  const std::string key = c.req.get_header_value("Idempotency-Key");
  if (!ValidIdempotencyKey(key)) {
    return SendError(c, InvalidArgument("header 'Idempotency-Key': 1 to 255 printable ASCII characters"));
  }
  const std::string scope = c.who.name + '\n' + c.req.method + ' ' + c.req.path;
  IdempotencyCache::Response first;
  switch (s.idempotency.Begin(scope, key, crypto::Sha256Hex(c.req.body), &first)) {
    case IdempotencyCache::Outcome::kReplay:
      c.res.set_header("Idempotent-Replayed", "true");
      c.res.status = first.status;
      c.res.set_content(first.body, first.content_type);
      return;
    case IdempotencyCache::Outcome::kInProgress:
      return SendError(c, 409, "aborted",
                       "a request with this Idempotency-Key is still running: retry when it has answered");
    case IdempotencyCache::Outcome::kMismatch:
      return SendError(c, 409, "failed_precondition",
                       "this Idempotency-Key was used with another request body: use a new key for a new request");
    case IdempotencyCache::Outcome::kNew: break;
  }
  handler(c);
  s.idempotency.Finish(scope, key, {c.res.status, c.res.body, c.res.get_header_value("Content-Type")});
}

}  // namespace timevault::api
