#include "timevault/core/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "timevault/core/civil.h"

namespace timevault {
namespace {

class RealClock final : public Clock {
 public:
  CommitTime Now() const override {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return CommitTime(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  }
};

// Reads exactly `n` digits from `s` at `*pos`.
bool Digits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// `zone`: the offset a zone-less strict time is read at (nullopt: refused).
std::optional<CommitTime> ParseTime(std::string_view s, bool strict, std::optional<int32_t> zone = std::nullopt);

}  // namespace

std::optional<CommitTime> CommitTime::Parse(std::string_view s) { return ParseTime(s, false); }
std::optional<CommitTime> CommitTime::ParseStrict(std::string_view s) { return ParseTime(s, true); }
std::optional<CommitTime> CommitTime::ParseStrict(std::string_view s, std::optional<int32_t> zone_offset_s) {
  return ParseTime(s, true, zone_offset_s);
}

std::optional<int32_t> ParseUtcOffset(std::string_view s) {
  if (s == "UTC" || s == "Z") return 0;
  int h = 0, m = 0;
  size_t pos = 1;
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || !Digits(s, &pos, 2, &h) || !Expect(s, &pos, ':') ||
      !Digits(s, &pos, 2, &m) || h > 23 || m > 59) {
    return std::nullopt;
  }
  return (h * 3600 + m * 60) * (s[0] == '+' ? 1 : -1);
}

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

namespace {
std::optional<CommitTime> ParseTime(std::string_view s, bool strict, std::optional<int32_t> zone) {
  if (s.empty()) return std::nullopt;
  size_t pos = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, &pos, 4, &y) || !Expect(s, &pos, '-') || !Digits(s, &pos, 2, &mo) || !Expect(s, &pos, '-') ||
      !Digits(s, &pos, 2, &d))
    return std::nullopt;
  // 2026-02-31 is refused, never read as 3 March.
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo)) return std::nullopt;
  int64_t frac = 0;
  if (strict && (pos >= s.size() || (s[pos] != 'T' && s[pos] != ' '))) return std::nullopt;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    ++pos;
    if (!Digits(s, &pos, 2, &h) || !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &mi) || !Expect(s, &pos, ':') ||
        !Digits(s, &pos, 2, &sec))
      return std::nullopt;
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int64_t scale = 100000;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 0) frac += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start) return std::nullopt;
    }
  }
  int64_t offset_s = 0;
  if (strict && pos >= s.size()) {
    if (!zone) return std::nullopt;  // no zone: refused, never silently UTC
    offset_s = *zone;                // the zone the operator stated
  }
  if (pos < s.size()) {
    char c = s[pos];
    if (c == 'Z' || c == 'z') {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      int oh, om = 0;
      if (!Digits(s, &pos, 2, &oh)) return std::nullopt;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (pos < s.size() && !Digits(s, &pos, 2, &om)) return std::nullopt;
      if (oh > 23 || om > 59) return std::nullopt;
      offset_s = (oh * 3600 + om * 60) * (c == '+' ? 1 : -1);
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, mo, d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return CommitTime(secs * 1000000 + frac);
}
}  // namespace

std::string CommitTime::ToIso() const {
  int64_t secs = micros_ / 1000000;
  int64_t us = micros_ % 1000000;
  if (us < 0) {
    us += 1000000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us));
  return buf;
}

}  // namespace timevault
