#include "pagination.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "server_impl.h"
#include "timevault/core/crypto.h"

namespace timevault::api {

namespace {

constexpr char kCursorVersion[] = "c1";
constexpr size_t kMaxCursorChars = 1024;

std::string Base64Url(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::optional<std::string> FromBase64Url(std::string text) {
  if (text.empty() || text.size() > kMaxCursorChars || text.size() % 4 == 1) return std::nullopt;
  for (char& ch : text) {
    if (ch == '-') {
      ch = '+';
    } else if (ch == '_') {
      ch = '/';
    } else if (!std::isalnum(static_cast<unsigned char>(ch))) {
      return std::nullopt;
    }
  }
  const size_t pad = (4 - text.size() % 4) % 4;
  text.append(pad, '=');
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

// The filters' values, so a cursor cannot silently continue another query.
std::string FilterDigest(const Call& c, const std::vector<const char*>& filters) {
  std::string text;
  for (const char* name : filters) {
    auto v = Query(c, name);
    text += std::string(name) + (v ? "=" + *v : "") + "\n";
  }
  return crypto::Sha256Hex(text).substr(0, 16);
}

Status BadCursor(std::string_view list) {
  return InvalidArgument("query parameter 'cursor': not a cursor of this " + std::string(list) +
                         " list with these filters (take next_cursor from the previous page, with the same filters)");
}

}  // namespace

std::string TimeKey(CommitTime t, std::string_view id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(std::max<int64_t>(0, t.micros())));
  return std::string(buf) + "|" + std::string(id);
}

std::string NumberKey(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

Result<Pager> Pager::FromQuery(const Call& c, std::string_view list, const std::vector<const char*>& filters,
                               bool descending) {
  Pager p;
  p.list_ = std::string(list);
  p.descending_ = descending;
  p.filter_digest_ = FilterDigest(c, filters);
  if (auto q = Query(c, "limit")) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(q->c_str(), &end, 10);
    if (q->empty() || *end != '\0' || errno != 0 || v < 1 || v > static_cast<long long>(kMaxPageLimit)) {
      return InvalidArgument("query parameter 'limit': expected an integer from 1 to " + std::to_string(kMaxPageLimit) +
                             ", got '" + *q + "'");
    }
    p.limit_ = static_cast<size_t>(v);
  }
  if (auto q = Query(c, "cursor")) {
    auto raw = FromBase64Url(*q);
    if (!raw) return BadCursor(list);
    // kCursorVersion \n list \n filter digest \n key
    const std::string prefix = std::string(kCursorVersion) + "\n" + p.list_ + "\n" + p.filter_digest_ + "\n";
    if (raw->rfind(prefix, 0) != 0 || raw->size() == prefix.size()) return BadCursor(list);
    p.after_ = raw->substr(prefix.size());
  }
  return p;
}

bool Pager::Take(const std::string& key) {
  if (after_ && (descending_ ? key >= *after_ : key <= *after_)) return false;
  if (taken_ == limit_) {
    more_ = true;
    return false;
  }
  ++taken_;
  last_key_ = key;
  return true;
}

std::string Pager::NextCursorJson() const {
  if (!more_) return "null";
  return JsonQuote(Base64Url(std::string(kCursorVersion) + "\n" + list_ + "\n" + filter_digest_ + "\n" + last_key_));
}

}  // namespace timevault::api
