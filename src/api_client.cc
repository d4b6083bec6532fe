#include "api_client.h"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "timevault/core/json.h"

namespace timevault::cli {

std::optional<ApiClient> ApiClient::Make(const GlobalOptions& g, const std::string& url, const std::string& token_file,
                                         int* exit_code) {
  ApiClient c;
  c.url_ = url;
  if (c.url_.empty()) {
    auto cfg = LoadConfig(g, exit_code);
    if (!cfg) return std::nullopt;
    c.url_ =
        !cfg->api.url.empty() ? cfg->api.url : (cfg->api.tls_cert.empty() ? "http://" : "https://") + cfg->api.listen;
  }
  // Never from the command line (argv is visible to every user in ps):
  // from --token-file, or from TIMEVAULT_TOKEN.
  if (const char* env = std::getenv("TIMEVAULT_TOKEN")) c.token_ = env;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) {
      std::fprintf(stderr, "timevault: cannot read --token-file %s\n", token_file.c_str());
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    std::getline(in, c.token_);
  }
  if (c.token_.empty()) {
    std::fprintf(stderr,
                 "timevault: an API bearer token is required for %s: --token-file FILE or the environment variable "
                 "TIMEVAULT_TOKEN (never on the command line)\n",
                 c.url_.c_str());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return c;
}

ApiResponse ApiClient::Call(const std::string& method, const std::string& path, const std::string& body) const {
  httplib::Client client(url_);
  client.set_connection_timeout(10);
  client.set_read_timeout(300);
  client.set_bearer_token_auth(token_);
  httplib::Result r = method == "GET"      ? client.Get(path)
                      : method == "DELETE" ? client.Delete(path, body, "application/json")
                      : method == "PUT"    ? client.Put(path, body, "application/json")
                                           : client.Post(path, body, "application/json");
  if (!r) return {0, "cannot reach the API at " + url_ + ": " + httplib::to_string(r.error())};
  return {r->status, r->body};
}

std::string PrettyJson(const std::string& json) {
  rapidjson::Document d;
  if (!timevault::json::Parse(json, &d).ok()) return json;
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  d.Accept(w);
  return sb.GetString();
}

int PrintResponse(const ApiResponse& r) {
  if (r.status == 0) {
    std::fprintf(stderr, "timevault: %s\n", r.body.c_str());
    return kExitFailure;
  }
  std::FILE* out = r.status / 100 == 2 ? stdout : stderr;
  std::fprintf(out, "%s\n", PrettyJson(r.body).c_str());
  return r.status / 100 == 2 ? kExitOk : kExitFailure;
}

std::string JsonField(const std::string& json, const char* key) {
  rapidjson::Document d;
  if (!timevault::json::Parse(json, &d).ok() || !d.IsObject() || !d.HasMember(key) || !d[key].IsString()) return "";
  return d[key].GetString();
}

}  // namespace timevault::cli
