#include "json_util.h"

#include <openssl/rand.h>
#include <rapidjson/error/en.h>

#include <cstdio>
#include <cstdlib>

#include "timevault/core/json.h"

namespace timevault::api {

Result<JsonBody> JsonBody::Parse(std::string_view text, const std::vector<std::string_view>& allowed) {
  auto doc = std::make_shared<rapidjson::Document>();
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    doc->SetObject();
    return JsonBody(doc);
  }
  if (Status st = json::Parse(text, doc.get()); !st.ok()) {
    return InvalidArgument("request body is not valid JSON: " + st.message());
  }
  if (!doc->IsObject())
    return InvalidArgument("request body must be a JSON object, got " + std::string(JsonTypeName(*doc)));
  for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    bool known = false;
    for (auto a : allowed) known = known || a == name;
    if (!known) return InvalidArgument("unknown field '" + std::string(name) + "'");
  }
  return JsonBody(doc);
}

const rapidjson::Value* JsonBody::Find(const char* name) const {
  auto it = doc_->FindMember(name);
  if (it == doc_->MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

bool JsonBody::Has(const char* name) const { return Find(name) != nullptr; }

std::string_view JsonTypeName(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  return "an object";
}

namespace {
Status WrongType(const char* name, std::string_view expected, const rapidjson::Value& v) {
  return InvalidArgument("field '" + std::string(name) + "': expected " + std::string(expected) + ", got " +
                         std::string(JsonTypeName(v)));
}
}  // namespace

Result<std::string> JsonBody::RequiredString(const char* name) const {
  TV_ASSIGN_OR_RETURN(auto s, OptionalString(name));
  if (!s) return InvalidArgument("missing required field '" + std::string(name) + "'");
  return *s;
}

Result<std::optional<std::string>> JsonBody::OptionalString(const char* name) const {
  const auto* v = Find(name);
  if (!v) return std::optional<std::string>();
  if (!v->IsString()) return WrongType(name, "a string", *v);
  std::string s(v->GetString(), v->GetStringLength());
  if (s.empty()) return InvalidArgument("field '" + std::string(name) + "': must not be empty");
  return std::optional<std::string>(std::move(s));
}

Result<int64_t> JsonBody::RequiredInt(const char* name, int64_t min, int64_t max) const {
  TV_ASSIGN_OR_RETURN(auto v, OptionalInt(name, min, max));
  if (!v) return InvalidArgument("missing required field '" + std::string(name) + "'");
  return *v;
}

Result<std::optional<int64_t>> JsonBody::OptionalInt(const char* name, int64_t min, int64_t max) const {
  const auto* v = Find(name);
  if (!v) return std::optional<int64_t>();
  if (!v->IsInt64()) return WrongType(name, "an integer", *v);
  int64_t x = v->GetInt64();
  if (x < min || x > max) {
    return InvalidArgument("field '" + std::string(name) + "': " + std::to_string(x) + " is out of range [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return std::optional<int64_t>(x);
}

Result<bool> JsonBody::OptionalBool(const char* name, bool default_value) const {
  const auto* v = Find(name);
  if (!v) return default_value;
  if (!v->IsBool()) return WrongType(name, "a boolean", *v);
  return v->GetBool();
}

Result<std::vector<std::string>> JsonBody::OptionalStringList(const char* name) const {
  std::vector<std::string> out;
  const auto* v = Find(name);
  if (!v) return out;
  if (!v->IsArray()) return WrongType(name, "an array of strings", *v);
  for (const auto& e : v->GetArray()) {
    if (!e.IsString() || e.GetStringLength() == 0) {
      return InvalidArgument("field '" + std::string(name) + "': every element must be a non-empty string");
    }
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

std::string JsonBody::Compact() const {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  doc_->Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

void WriteString(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void WriteOptString(JsonWriter& w, const std::optional<std::string>& s) {
  if (s && !s->empty()) {
    WriteString(w, *s);
  } else {
    w.Null();
  }
}

void WriteRaw(JsonWriter& w, std::string_view json) {
  if (json.empty()) {
    w.Null();
    return;
  }
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

std::string JsonQuote(std::string_view s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteString(w, s);
  return std::string(buf.GetString(), buf.GetSize());
}

bool IsValidJson(std::string_view text) { return json::IsValid(text); }

std::string RandomHex(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    std::fprintf(stderr, "timevault: OpenSSL RAND_bytes failed\n");
    std::abort();  // an id from a broken generator could collide with another job's
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

void WriteTime(JsonWriter& w, const char* key, CommitTime t) {
  w.Key(key);
  if (t.micros() == 0) {
    w.Null();
  } else {
    WriteString(w, t.ToIso());
  }
}

CommitTime ReadTime(const rapidjson::Value& d, const char* key) {
  if (!d.HasMember(key) || !d[key].IsString()) return CommitTime();
  return CommitTime::Parse(d[key].GetString()).value_or(CommitTime());
}

}  // namespace timevault::api
