// A client of a running API (`timevault serve` or `run`) for the command
// line: `health` and `plan ...` always, and the replay commands (`pitr`,
// `rollback`, `restore`) when api.url or --url names one, so they go
// through the same roles, tenant scopes and audit trail as every other
// caller and need not open the store (docs/replay.md, "Through the API").
#pragma once

#include <optional>
#include <string>

#include "cli_common.h"

namespace timevault::cli {

struct ApiResponse {
  int status = 0;  // 0: no answer (body says why)
  std::string body;
};

class ApiClient {
 public:
  // `url`: the API's base URL; empty: api.url, else api.listen of the
  // config. The token from --token-file (`token_file`), else the
  // environment's TIMEVAULT_TOKEN; never from the command line. nullopt,
  // with the reason on stderr and *exit_code set, when there is none.
  static std::optional<ApiClient> Make(const GlobalOptions& g, const std::string& url, const std::string& token_file,
                                       int* exit_code);

  ApiResponse Call(const std::string& method, const std::string& path, const std::string& body = "") const;
  const std::string& url() const { return url_; }

 private:
  std::string url_, token_;
};

// The body indented (as is when it is not JSON).
std::string PrettyJson(const std::string& json);
// Prints the body (stdout for 2xx, stderr otherwise); exit 0 for 2xx, 1
// otherwise (the API's error names why).
int PrintResponse(const ApiResponse& r);
// A top-level string field of a JSON object; "" when absent.
std::string JsonField(const std::string& json, const char* key);

}  // namespace timevault::cli
