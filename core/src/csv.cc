#include "timevault/core/csv.h"

namespace timevault::csv {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [+-] digits [. digits] [(e|E) [+-] digits], nothing else.
bool IsPlainNumber(std::string_view v) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < v.size() && IsDigit(v[i])) ++i;
    return i > start;
  };
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
  if (!digits()) return false;
  if (i < v.size() && v[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == v.size();
}

bool StartsLikeAFormula(std::string_view v) {
  if (v.empty()) return false;
  switch (v.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r': return !IsPlainNumber(v);
    default: return false;
  }
}

}  // namespace

void AppendField(std::string* out, std::string_view v) {
  const bool neutralise = StartsLikeAFormula(v);
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) {
    if (neutralise) out->push_back('\'');
    out->append(v);
    return;
  }
  out->push_back('"');
  if (neutralise) out->push_back('\'');
  for (char c : v) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string Field(std::string_view v) {
  std::string out;
  AppendField(&out, v);
  return out;
}

}  // namespace timevault::csv
