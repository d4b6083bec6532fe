#include "pg_text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "timevault/wire/java_format.h"

namespace timevault::wire {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;
// Years past this are refused, so that day, second and millisecond counts
// stay far inside int64 (Postgres's own range is 4713 BC .. 5874897 AD).
constexpr int64_t kMaxYear = 99999999;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads 1+ digits into *v; advances *pos. Rejects more than 18 digits.
bool ReadInt(std::string_view s, size_t* pos, int64_t* v, size_t min_digits = 1) {
  size_t start = *pos;
  int64_t acc = 0;
  while (*pos < s.size() && IsDigit(s[*pos])) {
    if (*pos - start >= 18) return false;
    acc = acc * 10 + (s[*pos] - '0');
    ++*pos;
  }
  *v = acc;
  return *pos - start >= min_digits;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

bool EndsWithBc(std::string_view* s) {
  if (s->size() > 3 && s->substr(s->size() - 3) == " BC") {
    s->remove_suffix(3);
    return true;
  }
  return false;
}

// "YYYY-MM-DD" at *pos. `bc` converts year-of-era to a proleptic year.
bool ReadDate(std::string_view s, size_t* pos, bool bc, int64_t* days) {
  int64_t y, m, d;
  if (!ReadInt(s, pos, &y, 4) || !Expect(s, pos, '-') || !ReadInt(s, pos, &m, 2) || !Expect(s, pos, '-') ||
      !ReadInt(s, pos, &d, 2))
    return false;
  if (m < 1 || m > 12 || d < 1 || d > 31 || y > kMaxYear) return false;
  if (bc) y = 1 - y;
  *days = DaysFromCivil(y, static_cast<int>(m), static_cast<int>(d));
  return true;
}

// "HH:MM[:SS[.ffffff]]" at *pos, as microseconds (24:00:00 allowed).
bool ReadTime(std::string_view s, size_t* pos, int64_t* micros) {
  int64_t h, mi, sec = 0, frac = 0;
  if (!ReadInt(s, pos, &h, 1) || !Expect(s, pos, ':') || !ReadInt(s, pos, &mi, 2)) return false;
  if (*pos < s.size() && s[*pos] == ':') {
    ++*pos;
    if (!ReadInt(s, pos, &sec, 2)) return false;
    if (*pos < s.size() && s[*pos] == '.') {
      ++*pos;
      int digits = 0;
      while (*pos < s.size() && IsDigit(s[*pos])) {
        if (digits < 6) frac = frac * 10 + (s[*pos] - '0');
        ++digits;
        ++*pos;
      }
      if (digits == 0) return false;
      for (; digits < 6; ++digits) frac *= 10;
    }
  }
  if (h > 24 || mi > 59 || sec > 60) return false;
  *micros = ((h * 60 + mi) * 60 + sec) * kMicrosPerSecond + frac;
  return *micros <= kMicrosPerDay;
}

// "+HH[:MM[:SS]]" / "-HH..." at *pos, as seconds east of UTC.
bool ReadOffset(std::string_view s, size_t* pos, int32_t* seconds) {
  if (*pos >= s.size() || (s[*pos] != '+' && s[*pos] != '-')) return false;
  const bool neg = s[*pos] == '-';
  ++*pos;
  int64_t h, m = 0, sec = 0;
  if (!ReadInt(s, pos, &h, 2)) return false;
  if (*pos < s.size() && s[*pos] == ':') {
    ++*pos;
    if (!ReadInt(s, pos, &m, 2)) return false;
    if (*pos < s.size() && s[*pos] == ':') {
      ++*pos;
      if (!ReadInt(s, pos, &sec, 2)) return false;
    }
  }
  if (h > 99 || m > 59 || sec > 59) return false;  // Postgres: |offset| < 16 h
  const int64_t total = h * 3600 + m * 60 + sec;
  *seconds = static_cast<int32_t>(neg ? -total : total);
  return true;
}

}  // namespace

bool ParseNumeric(std::string_view text, NumericText* out) {
  *out = NumericText{};
  if (text == "NaN") return out->special = NumericText::Special::kNaN, true;
  if (text == "Infinity") return out->special = NumericText::Special::kPosInf, true;
  if (text == "-Infinity") return out->special = NumericText::Special::kNegInf, true;
  size_t pos = 0;
  if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) out->negative = text[pos++] == '-';
  const size_t int_start = pos;
  while (pos < text.size() && IsDigit(text[pos])) ++pos;
  out->int_digits = text.substr(int_start, pos - int_start);
  if (pos < text.size() && text[pos] == '.') {
    const size_t frac_start = ++pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    out->frac_digits = text.substr(frac_start, pos - frac_start);
  }
  return pos == text.size() && !(out->int_digits.empty() && out->frac_digits.empty());
}

bool ParseDate(std::string_view text, int64_t* epoch_days) {
  if (text == "infinity") return *epoch_days = DaysFromCivil(-5877611, 6, 21), true;
  if (text == "-infinity") return *epoch_days = DaysFromCivil(-5877611, 6, 22), true;
  const bool bc = EndsWithBc(&text);
  size_t pos = 0;
  return ReadDate(text, &pos, bc, epoch_days) && pos == text.size();
}

bool ParseTimeOfDay(std::string_view text, int64_t* micros) {
  size_t pos = 0;
  return ReadTime(text, &pos, micros) && pos == text.size();
}

bool ParseDateTime(std::string_view text, DateTimeText* out) {
  *out = DateTimeText{};
  if (text == "infinity") return out->special = DateTimeText::Special::kPosInf, true;
  if (text == "-infinity") return out->special = DateTimeText::Special::kNegInf, true;
  const bool bc = EndsWithBc(&text);
  size_t pos = 0;
  if (!ReadDate(text, &pos, bc, &out->epoch_days)) return false;
  if (pos < text.size() && (text[pos] == ' ' || text[pos] == 'T')) {
    ++pos;
    if (!ReadTime(text, &pos, &out->micros_of_day)) return false;
    if (pos < text.size()) {
      if (!ReadOffset(text, &pos, &out->offset_seconds)) return false;
      out->has_offset = true;
    }
  }
  return pos == text.size();
}

void ToUtc(const DateTimeText& t, int64_t* epoch_days, int64_t* micros_of_day) {
  // |offset| < 100 hours and micros_of_day <= one day: no overflow.
  const int64_t tod = t.micros_of_day - int64_t{t.offset_seconds} * kMicrosPerSecond;
  *epoch_days = t.epoch_days + FloorDiv(tod, kMicrosPerDay);
  *micros_of_day = FloorMod(tod, kMicrosPerDay);
}

int64_t JavaEpochMicros(int64_t epoch_days, int64_t micros_of_day) {
  // Instant.getEpochSecond() (floor) and the micro-of-second (>= 0).
  const int64_t seconds = epoch_days * 86400 + FloorDiv(micros_of_day, kMicrosPerSecond);
  const int64_t micro_of_second = FloorMod(micros_of_day, kMicrosPerSecond);
  // TimeUnit.SECONDS.toMicros saturates.
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / kMicrosPerSecond;
  int64_t scaled;
  if (seconds > kMaxSeconds)
    scaled = std::numeric_limits<int64_t>::max();
  else if (seconds < -kMaxSeconds)
    scaled = std::numeric_limits<int64_t>::min();
  else
    scaled = seconds * kMicrosPerSecond;
  // Java's long addition wraps; unsigned arithmetic does the same without UB.
  return static_cast<int64_t>(static_cast<uint64_t>(scaled) + static_cast<uint64_t>(micro_of_second));
}

int64_t EpochMillis(int64_t epoch_days, int64_t micros_of_day) {
  return epoch_days * 86400000 + FloorDiv(micros_of_day, 1000);
}

bool ParseTimeTz(std::string_view text, int64_t* utc_micros) {
  size_t pos = 0;
  int64_t local;
  int32_t offset;
  if (!ReadTime(text, &pos, &local) || !ReadOffset(text, &pos, &offset) || pos != text.size()) return false;
  *utc_micros = FloorMod(local - offset * kMicrosPerSecond, kMicrosPerDay);
  return true;
}

namespace {

// pgjdbc's PGInterval fields after setValue(...): seconds are kept as whole
// seconds plus Math.round(seconds * 1e6) microseconds.
struct IntervalFields {
  int64_t years = 0, months = 0, days = 0, hours = 0, minutes = 0;
  double seconds = 0;
};

bool ParseIntervalFields(std::string_view text, IntervalFields* f) {
  if (!text.empty() && text[0] == 'P') return false;  // IntervalStyle=iso_8601 is not parsed
  std::string_view value_token;
  bool have_value = false;
  size_t pos = 0;
  for (int index = 1;; ++index) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '+' || text[pos] == '@')) ++pos;
    if (pos >= text.size()) break;
    size_t end = pos;
    while (end < text.size() && text[end] != ' ' && text[end] != '+' && text[end] != '@') ++end;
    std::string_view token = text.substr(pos, end - pos);
    pos = end;
    auto int_value = [&](int64_t* v) {
      if (!have_value) return *v = 0, true;  // pgjdbc's nullSafeIntGet(null) == 0
      auto r = std::from_chars(value_token.data(), value_token.data() + value_token.size(), *v);
      return r.ec == std::errc() && r.ptr == value_token.data() + value_token.size();
    };
    if (index & 1) {
      const size_t colon = token.find(':');
      if (colon == std::string_view::npos) {
        if (token.find('-', 1) != std::string_view::npos) return false;  // sql_standard "1-2"
        value_token = token;
        have_value = true;
        continue;
      }
      const bool neg = token[0] == '-';
      size_t p = neg ? 1 : 0;
      int64_t h, m;
      if (!ReadInt(token, &p, &h) || !Expect(token, &p, ':') || !ReadInt(token, &p, &m)) return false;
      double s = 0;
      if (p < token.size()) {
        if (token[p] != ':') return false;
        s = std::strtod(std::string(token.substr(p + 1)).c_str(), nullptr);
      }
      f->hours = neg ? -h : h;
      f->minutes = neg ? -m : m;
      f->seconds = neg ? -s : s;
      have_value = false;
    } else if (token.starts_with("year")) {
      if (!int_value(&f->years)) return false;
    } else if (token.starts_with("mon")) {
      if (!int_value(&f->months)) return false;
    } else if (token.starts_with("day")) {
      if (!int_value(&f->days)) return false;
    } else if (token.starts_with("hour")) {
      if (!int_value(&f->hours)) return false;
    } else if (token.starts_with("min")) {
      if (!int_value(&f->minutes)) return false;
    } else if (token.starts_with("sec")) {
      f->seconds = have_value ? std::strtod(std::string(value_token).c_str(), nullptr) : 0;
    }
  }
  return true;
}

}  // namespace

bool ParseIntervalMicros(std::string_view text, int64_t* micros) {
  IntervalFields f;
  if (!ParseIntervalFields(text, &f)) return false;
  // PGInterval.setSeconds / getSeconds: Math.round(seconds * 1e6) split into
  // whole seconds and micros, read back as whole + micros / 1e6.
  const double scaled = std::floor(f.seconds * 1e6 + 0.5);
  if (!(std::fabs(scaled) < 9.2e18)) return false;
  const auto total = static_cast<int64_t>(scaled);
  const double seconds = static_cast<double>(total / kMicrosPerSecond) +
                         static_cast<double>(total % kMicrosPerSecond) / static_cast<double>(kMicrosPerSecond);
  // MicroDuration.durationMicros, same operation order and double arithmetic.
  const int32_t months_total = static_cast<int32_t>(f.years * 12 + f.months);
  const double days = months_total * (365.25 / 12.0) + static_cast<double>(f.days);
  const double secs =
      (((days * 24 + static_cast<double>(f.hours)) * 60) + static_cast<double>(f.minutes)) * 60 + seconds;
  const double result = secs * 1e6 + 0;
  if (std::isnan(result)) return *micros = 0, true;
  if (result >= 9.223372036854775807e18) return *micros = INT64_MAX, true;
  if (result <= -9.223372036854775808e18) return *micros = INT64_MIN, true;
  *micros = static_cast<int64_t>(result);  // Java (long) cast: truncation
  return true;
}

bool DecodeByteaHex(std::string_view text, std::string* out) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || (text.size() % 2) != 0) return false;
  out->resize((text.size() - 2) / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 2, o = 0; i < text.size(); i += 2, ++o) {
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[o] = static_cast<char>((hi << 4) | lo);
  }
  return true;
}

namespace {

// Skips a balanced "{...}" starting at *pos (which is at '{'), honouring quotes.
bool SkipSubArray(std::string_view s, size_t* pos) {
  int depth = 0;
  bool quoted = false;
  for (; *pos < s.size(); ++*pos) {
    const char c = s[*pos];
    if (quoted) {
      if (c == '\\')
        ++*pos;
      else if (c == '"')
        quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      ++*pos;
      return true;
    }
  }
  return false;
}

}  // namespace

bool ParseArray(std::string_view text, std::vector<ArrayElement>* elements, std::string* scratch, bool* multi_dim) {
  elements->clear();
  scratch->clear();
  scratch->reserve(text.size());
  *multi_dim = false;
  size_t pos = 0;
  if (!text.empty() && text[0] == '[') {  // explicit bounds: "[0:1]={...}"
    pos = text.find('=');
    if (pos == std::string_view::npos) return false;
    ++pos;
  }
  if (!Expect(text, &pos, '{')) return false;
  if (pos < text.size() && text[pos] == '}') return pos + 1 == text.size();
  for (;;) {
    ArrayElement e;
    if (pos < text.size() && text[pos] == '{') {
      const size_t start = pos;
      if (!SkipSubArray(text, &pos)) return false;
      e.text = text.substr(start, pos - start);
      *multi_dim = true;
    } else if (pos < text.size() && text[pos] == '"') {
      const size_t start = scratch->size();
      for (++pos;; ++pos) {
        if (pos >= text.size()) return false;
        char c = text[pos];
        if (c == '"') break;
        if (c == '\\') {
          if (++pos >= text.size()) return false;
          c = text[pos];
        }
        scratch->push_back(c);
      }
      ++pos;
      e.text = std::string_view(scratch->data() + start, scratch->size() - start);
    } else {
      const size_t start = pos;
      while (pos < text.size() && text[pos] != ',' && text[pos] != '}') ++pos;
      e.text = text.substr(start, pos - start);
      if (e.text.empty()) return false;
      e.is_null = e.text.size() == 4 && (e.text[0] | 0x20) == 'n' && (e.text[1] | 0x20) == 'u' &&
                  (e.text[2] | 0x20) == 'l' && (e.text[3] | 0x20) == 'l';
    }
    elements->push_back(e);
    if (pos >= text.size()) return false;
    if (text[pos] == '}') return pos + 1 == text.size();
    if (text[pos] != ',') return false;
    ++pos;
  }
}

void AppendIsoDate(int64_t epoch_days, std::string* out) {
  int64_t y;
  int m, d;
  CivilFromDays(epoch_days, &y, &m, &d);
  char buf[32];
  char* p = buf;
  if (y > 9999) *p++ = '+';
  if (y < 0) *p++ = '-';
  const int64_t ay = y < 0 ? -y : y;
  char ybuf[24];
  auto r = std::to_chars(ybuf, ybuf + sizeof(ybuf), ay);
  for (auto n = r.ptr - ybuf; n < 4; ++n) *p++ = '0';
  for (char* q = ybuf; q < r.ptr; ++q) *p++ = *q;
  *p++ = '-';
  *p++ = static_cast<char>('0' + m / 10);
  *p++ = static_cast<char>('0' + m % 10);
  *p++ = '-';
  *p++ = static_cast<char>('0' + d / 10);
  *p++ = static_cast<char>('0' + d % 10);
  out->append(buf, static_cast<size_t>(p - buf));
}

}  // namespace timevault::wire
