// Idempotency-Key on POST (the IETF httpapi idempotency-key header): the
// first request with a key runs; a retry with the same key, caller and path
// gets the first response again (with "Idempotent-Replayed: true") instead
// of starting a second job. Keys are kept 24 h, at most 10000 of them, in
// memory (a restart forgets them). Private to api/. Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace timevault::api {

class IdempotencyCache {
 public:
  struct Response {
    int status = 0;
    std::string body;
    std::string content_type;
  };
  enum class Outcome {
    kNew,         // run the request, then Finish or Abandon
    kReplay,      // *out holds the first response
    kInProgress,  // the first request with this key is still running
    kMismatch,    // the key was used with another body
  };

  // `scope` names the caller and the endpoint ("actor\nPOST /v1/backups");
  // `fingerprint` identifies the body.
  Outcome Begin(const std::string& scope, const std::string& key, const std::string& fingerprint, Response* out);
  // Remembers the response of a kNew request (a 5xx is forgotten instead, so
  // a retry runs again).
  void Finish(const std::string& scope, const std::string& key, Response response);

  static constexpr size_t kMaxEntries = 10000;
  static constexpr std::chrono::hours kTtl{24};

 private:
  struct Entry {
    std::string fingerprint;
    bool done = false;
    Response response;
    std::chrono::steady_clock::time_point at;
  };
  void EvictLocked(std::chrono::steady_clock::time_point now);

  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> order_;  // oldest first
};

// A key the header may carry: 1 to 255 printable ASCII characters.
bool ValidIdempotencyKey(const std::string& key);

}  // namespace timevault::api
