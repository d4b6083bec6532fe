// Small readers and writers of the engine's JSON files (plans, snapshot
// manifests, the apply-rate file): a missing or mistyped field reads as
// empty / zero, which the callers check where it matters.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/replay/engine.h"

namespace timevault::replay {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline std::string ToJson(const std::function<void(JsonWriter&)>& fill) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  fill(w);
  return sb.GetString();
}

// "<prefix>-..." of letters, digits and dashes: a plan ('p') or snapshot
// ('s') id that can name a file.
inline bool ValidId(const std::string& id, char prefix) {
  if (id.size() < 3 || id[0] != prefix || id[1] != '-') return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

inline Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + " does not exist");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Str(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : "";
}

inline uint64_t U64(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

inline std::vector<std::string> Strings(const rapidjson::Value& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) return out;
  for (const auto& v : it->value.GetArray()) {
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return out;
}

inline CommitTime TimeField(const rapidjson::Value& obj, const char* key) {
  auto t = CommitTime::Parse(Str(obj, key));
  return t ? *t : CommitTime(0);
}

inline Lsn LsnField(const rapidjson::Value& obj, const char* key) {
  auto l = Lsn::Parse(Str(obj, key));
  return l ? *l : Lsn{};
}

inline OperationCounts ReadOps(const rapidjson::Value& v) {
  OperationCounts ops;
  if (v.HasMember("insert") && v["insert"].IsUint64()) ops.inserts = v["insert"].GetUint64();
  if (v.HasMember("update") && v["update"].IsUint64()) ops.updates = v["update"].GetUint64();
  if (v.HasMember("delete") && v["delete"].IsUint64()) ops.deletes = v["delete"].GetUint64();
  return ops;
}

}  // namespace timevault::replay
