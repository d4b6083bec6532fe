#include "engine/json_fields.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "timevault/store/event.h"
#include "timevault/wire/contract.h"

namespace timevault::store::engine {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void SkipSpace(std::string_view s, size_t* pos) {
  while (*pos < s.size() && IsSpace(s[*pos])) ++*pos;
}

// Advances past a string token starting at s[*pos] == '"'.
bool SkipString(std::string_view s, size_t* pos) {
  for (size_t i = *pos + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      *pos = i + 1;
      return true;
    }
  }
  return false;
}

// Advances past one JSON value (well-formedness of scalars is not checked:
// the text was validated by the parser that produced it).
bool SkipValue(std::string_view s, size_t* pos) {
  if (*pos >= s.size()) return false;
  char c = s[*pos];
  if (c == '"') return SkipString(s, pos);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (*pos < s.size()) {
      char d = s[*pos];
      if (d == '"') {
        if (!SkipString(s, pos)) return false;
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) {
          ++*pos;
          return true;
        }
      }
      ++*pos;
    }
    return false;
  }
  size_t start = *pos;
  while (*pos < s.size() && s[*pos] != ',' && s[*pos] != '}' && s[*pos] != ']' && !IsSpace(s[*pos])) ++*pos;
  return *pos > start;
}

// The fidelity texts (member kTextMember, docs/store.md "Fidelity texts") of
// the columns just taken from `previous` come along with their values.
void CarryTexts(const std::vector<JsonMember>& previous, const std::vector<std::string_view>& columns,
                std::vector<JsonMember>* row) {
  const std::string* old_texts = FindMember(previous, kTextMember);
  if (old_texts == nullptr) return;
  auto old = SplitObject(*old_texts);
  if (!old) return;
  std::vector<std::pair<std::string_view, std::string>> carried;  // column, its text
  for (std::string_view column : columns) {
    if (const std::string* text = FindMember(*old, column)) carried.emplace_back(column, *text);
  }
  if (carried.empty()) return;
  std::string* texts = FindMember(row, kTextMember);
  std::vector<JsonMember> current;
  if (texts != nullptr) {
    auto parsed = SplitObject(*texts);
    if (!parsed) return;
    current = std::move(*parsed);
  }
  for (auto& [column, text] : carried) {
    if (std::string* v = FindMember(&current, column)) {
      *v = std::move(text);
    } else {
      current.push_back({JsonQuote(column), std::move(text)});
    }
  }
  if (texts == nullptr) {
    row->push_back({JsonQuote(kTextMember), JoinObject(current)});
    return;
  }
  *texts = JoinObject(current);
}

}  // namespace

std::optional<std::vector<JsonMember>> SplitObject(std::string_view json) {
  size_t pos = 0;
  SkipSpace(json, &pos);
  if (pos >= json.size() || json[pos] != '{') return std::nullopt;
  ++pos;
  std::vector<JsonMember> members;
  SkipSpace(json, &pos);
  if (pos < json.size() && json[pos] == '}') return members;
  while (pos < json.size()) {
    SkipSpace(json, &pos);
    size_t key_start = pos;
    if (pos >= json.size() || json[pos] != '"' || !SkipString(json, &pos)) return std::nullopt;
    JsonMember m;
    m.key.assign(json.substr(key_start, pos - key_start));
    SkipSpace(json, &pos);
    if (pos >= json.size() || json[pos] != ':') return std::nullopt;
    ++pos;
    SkipSpace(json, &pos);
    size_t value_start = pos;
    if (!SkipValue(json, &pos)) return std::nullopt;
    m.value.assign(json.substr(value_start, pos - value_start));
    members.push_back(std::move(m));
    SkipSpace(json, &pos);
    if (pos >= json.size()) return std::nullopt;
    if (json[pos] == '}') return members;
    if (json[pos] != ',') return std::nullopt;
    ++pos;
  }
  return std::nullopt;
}

std::string JoinObject(const std::vector<JsonMember>& members) {
  std::string out = "{";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) out += ',';
    out += members[i].key;
    out += ':';
    out += members[i].value;
  }
  out += '}';
  return out;
}

std::string JsonQuote(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

const std::string* FindMember(const std::vector<JsonMember>& members, std::string_view name) {
  const std::string token = JsonQuote(name);
  for (const auto& m : members) {
    if (m.key == token) return &m.value;
  }
  return nullptr;
}

std::string* FindMember(std::vector<JsonMember>* members, std::string_view name) {
  const std::string token = JsonQuote(name);
  for (auto& m : *members) {
    if (m.key == token) return &m.value;
  }
  return nullptr;
}

std::string ResolveColumns(std::string_view row, const std::optional<std::string>& previous,
                           const std::vector<std::string>& columns, std::vector<std::string>* unresolved,
                           bool keep_unresolved) {
  const std::string placeholder = JsonQuote(wire::kUnavailableValue);
  auto members = SplitObject(row);
  if (!members) return std::string(row);
  std::optional<std::vector<JsonMember>> prev;
  if (previous) prev = SplitObject(*previous);
  std::vector<std::string_view> resolved;
  for (const auto& column : columns) {
    std::string* value = FindMember(&*members, column);
    if (value == nullptr) continue;
    const std::string* old = prev ? FindMember(*prev, column) : nullptr;
    if (old != nullptr && *old != placeholder) {
      *value = *old;
      resolved.push_back(column);
      continue;
    }
    if (keep_unresolved) {
      *value = placeholder;  // the one canonical form; the version is flagged incomplete
    } else {
      const std::string token = JsonQuote(column);
      std::erase_if(*members, [&](const JsonMember& m) { return m.key == token; });
    }
    if (std::find(unresolved->begin(), unresolved->end(), column) == unresolved->end()) unresolved->push_back(column);
  }
  if (prev && !resolved.empty()) CarryTexts(*prev, resolved, &*members);
  return JoinObject(*members);
}

}  // namespace timevault::store::engine
