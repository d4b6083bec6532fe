// JSON helpers for the API: reading request bodies with errors that name the
// field, and writing responses with RapidJSON. Private to api/.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::api {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// A parsed JSON object body. Every accessor fails with InvalidArgument naming
// the field ("field 'tenant': expected a string, got a number").
class JsonBody {
 public:
  // Parses `text` (empty text is an empty object). Fields not in `allowed`
  // are refused, so a misspelt "confrim" is an error rather than ignored.
  static Result<JsonBody> Parse(std::string_view text, const std::vector<std::string_view>& allowed);

  bool Has(const char* name) const;
  Result<std::string> RequiredString(const char* name) const;
  Result<std::optional<std::string>> OptionalString(const char* name) const;
  // Integers within [min, max].
  Result<int64_t> RequiredInt(const char* name, int64_t min, int64_t max) const;
  Result<std::optional<int64_t>> OptionalInt(const char* name, int64_t min, int64_t max) const;
  Result<bool> OptionalBool(const char* name, bool default_value) const;
  Result<std::vector<std::string>> OptionalStringList(const char* name) const;
  // The body as compact JSON (for the audit trail).
  std::string Compact() const;

 private:
  explicit JsonBody(std::shared_ptr<rapidjson::Document> doc) : doc_(std::move(doc)) {}
  const rapidjson::Value* Find(const char* name) const;
  std::shared_ptr<rapidjson::Document> doc_;
};

std::string_view JsonTypeName(const rapidjson::Value& v);

// Writes s as a JSON string, or null when empty/absent.
void WriteOptString(JsonWriter& w, const std::optional<std::string>& s);
void WriteString(JsonWriter& w, std::string_view s);
// Writes raw, already valid JSON text as a value.
void WriteRaw(JsonWriter& w, std::string_view json);
// s escaped as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);
bool IsValidJson(std::string_view text);

// A time as ISO 8601, null for CommitTime() (never set); and back (absent,
// null or unparsable: CommitTime()).
void WriteTime(JsonWriter& w, const char* key, CommitTime t);
CommitTime ReadTime(const rapidjson::Value& d, const char* key);

// Hex of n random bytes (OpenSSL RAND_bytes), for ids.
std::string RandomHex(size_t n);

}  // namespace timevault::api
