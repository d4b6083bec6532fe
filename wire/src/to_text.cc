// Debezium JSON -> Postgres text (to_text.h): the inverse of to_json.cc,
// driven by the same type table (type_table.cc). Each case names the encoder
// rule it inverts; docs/compat.md §10 "Restore fidelity" lists what cannot
// come back.
#include "timevault/wire/to_text.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "pg_text.h"
#include "timevault/core/civil.h"
#include "timevault/wire/contract.h"
#include "timevault/wire/java_format.h"
#include "timevault/wire/oid.h"

namespace timevault::wire {

namespace {

// ------------------------------------------------------------- helpers --

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;
constexpr int64_t kMillisPerDay = 86400 * 1000;

// Postgres's ranges: date 4714-11-24 BC .. 5874897-12-31, timestamp[tz]
// 4714-11-24 00:00:00 BC .. 294276-12-31 23:59:59.999999 (UTC for timestamptz).
constexpr int64_t kMinPgDay = DaysFromCivil(-4713, 11, 24);
constexpr int64_t kMaxPgDateDay = DaysFromCivil(5874897, 12, 31);
constexpr int64_t kMaxPgTimestampDay = DaysFromCivil(294276, 12, 31);

// The values capture writes for Postgres 'infinity' / '-infinity'
// (pg_text.h kPosInfinityMicros / kNegInfinityMicros: pgjdbc's
// DATE_POSITIVE_INFINITY read as microseconds, and Debezium's LocalDate
// stand-ins).
constexpr int64_t kPosInfinityMillis = 9223372036825200LL;   // FloorDiv(kPosInfinityMicros, 1000)
constexpr int64_t kNegInfinityMillis = -9223372036832400LL;  // FloorDiv(kNegInfinityMicros, 1000)
constexpr int64_t kPosInfinityDays = DaysFromCivil(-5877611, 6, 21);
constexpr int64_t kNegInfinityDays = DaysFromCivil(-5877611, 6, 22);
static_assert(kPosInfinityDays == -2147472692 && kNegInfinityDays == -2147472691);
static_assert(kPosInfinityDays < kMinPgDay && kNegInfinityDays < kMinPgDay);

constexpr std::string_view kUnavailable = kUnavailableValue;

std::string_view StringOf(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

void AppendInt(std::string* out, int64_t v, int min_digits = 1) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v < 0 ? -static_cast<uint64_t>(v) : static_cast<uint64_t>(v));
  if (v < 0) out->push_back('-');
  for (auto n = r.ptr - buf; n < min_digits; ++n) out->push_back('0');
  out->append(buf, r.ptr);
}

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s, bool integer_only) {
  size_t p = 0;
  auto digits = [&] {
    const size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    return p > start;
  };
  if (p < s.size() && s[p] == '-') ++p;
  if (p < s.size() && s[p] == '0') {
    ++p;
  } else if (!digits()) {
    return false;
  }
  if (p == s.size()) return true;
  if (integer_only) return false;
  if (s[p] == '.') {
    ++p;
    if (!digits()) return false;
  }
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    ++p;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
    if (!digits()) return false;
  }
  return p == s.size();
}

// A JSON integer: a number without fraction or exponent, or a string holding
// one (numbers-as-strings DOM).
bool GetInteger(const rapidjson::Value& v, int64_t* out) {
  if (v.IsInt64()) return *out = v.GetInt64(), true;
  if (!v.IsString()) return false;
  const std::string_view s = StringOf(v);
  if (!IsJsonNumber(s, /*integer_only=*/true)) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// float4 / float8: a JSON number (or a string holding one), or Jackson's
// "NaN" / "Infinity" / "-Infinity". Rendered as the shortest text that reads
// back as the same value (float4in/float8in round correctly).
template <typename T>
const char* ConvertFloat(const rapidjson::Value& v, std::string* out) {
  char buf[64];
  std::string_view text;
  if (v.IsString()) {
    text = StringOf(v);
    if (text == "NaN" || text == "Infinity" || text == "-Infinity") return out->append(text), nullptr;
    if (!IsJsonNumber(text, false)) return "not a number";
  } else if (v.IsInt64()) {
    text = {buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof(buf), v.GetInt64()).ptr - buf)};
  } else if (v.IsUint64()) {
    text = {buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof(buf), v.GetUint64()).ptr - buf)};
  } else if (v.IsDouble()) {
    // The shortest text of the double: a float4's text (<= 9 digits) comes
    // back unchanged, so parsing it as T below is exact.
    text = {buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof(buf), v.GetDouble()).ptr - buf)};
  } else {
    return "not a number";
  }
  T value{};
  auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (r.ptr != text.data() + text.size()) return "not a number";
  if (r.ec != std::errc()) {
    // libstdc++ reports subnormal results as out of range but stores them.
    if (!(r.ec == std::errc::result_out_of_range && value != 0 && std::isfinite(value)))
      return "out of range for the type";
  }
  char obuf[64];
  auto w = std::to_chars(obuf, obuf + sizeof(obuf), value);
  out->append(obuf, w.ptr);
  return nullptr;
}

// Standard base64 with padding (what Jackson writes for Connect BYTES).
bool DecodeBase64(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out->reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=') return false;  // "x=y=" is not padding
    int v[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4 - pad; ++k) {
      v[k] = sextet(in[i + static_cast<size_t>(k)]);
      if (v[k] < 0) return false;
    }
    const uint32_t bits = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                          (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out->push_back(static_cast<char>(bits >> 16));
    if (pad < 2) out->push_back(static_cast<char>((bits >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(bits & 0xFF));
    // Canonical encoding only: the bits dropped by the padding are zero.
    if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xF))) return false;
  }
  return true;
}

// The decimal digits of BigInteger(bytes) (big-endian two's complement, as
// BigInteger.toByteArray() wrote them): *negative and the magnitude.
bool BigIntegerDigits(std::string_view bytes, bool* negative, std::string* digits) {
  if (bytes.empty()) return false;  // new BigInteger(new byte[0]) throws
  std::vector<uint8_t> mag(bytes.begin(), bytes.end());
  *negative = (mag[0] & 0x80) != 0;
  if (*negative) {  // magnitude = ~x + 1
    bool carry = true;
    for (size_t k = mag.size(); k-- > 0;) {
      unsigned v = static_cast<uint8_t>(~mag[k]);
      if (carry) {
        v = (v + 1) & 0xFF;
        carry = v == 0;
      }
      mag[k] = static_cast<uint8_t>(v);
    }
  }
  // Big-endian bytes -> little-endian base-2^32 limbs.
  std::vector<uint32_t> limbs((mag.size() + 3) / 4, 0);
  for (size_t k = 0; k < mag.size(); ++k) {
    const size_t bit = (mag.size() - 1 - k) * 8;
    limbs[bit / 32] |= static_cast<uint32_t>(mag[k]) << (bit % 32);
  }
  while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  // Repeated division by 10^9; chunks come out least significant first.
  std::vector<uint32_t> chunks;
  while (!limbs.empty()) {
    uint64_t rem = 0;
    for (size_t k = limbs.size(); k-- > 0;) {
      const uint64_t cur = (rem << 32) | limbs[k];
      limbs[k] = static_cast<uint32_t>(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    chunks.push_back(static_cast<uint32_t>(rem));
    while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  }
  digits->clear();
  if (chunks.empty()) {
    digits->push_back('0');
    *negative = false;
    return true;
  }
  char buf[16];
  for (size_t k = chunks.size(); k-- > 0;) {
    const auto r = std::to_chars(buf, buf + sizeof(buf), chunks[k]);
    const auto n = static_cast<size_t>(r.ptr - buf);
    if (k + 1 != chunks.size()) digits->append(9 - n, '0');
    digits->append(buf, n);
  }
  return true;
}

// unscaled * 10^-scale as numeric text ("-0.005", "1200", "12.50").
void AppendScaled(bool negative, const std::string& digits, int64_t scale, std::string* out) {
  if (negative) out->push_back('-');
  if (scale <= 0) {
    out->append(digits);
    if (digits != "0") out->append(static_cast<size_t>(-scale), '0');
    return;
  }
  const auto s = static_cast<size_t>(scale);
  if (digits.size() <= s) {
    out->append("0.");
    out->append(s - digits.size(), '0');
    out->append(digits);
  } else {
    out->append(digits, 0, digits.size() - s);
    out->push_back('.');
    out->append(digits, digits.size() - s, s);
  }
}

const char* ConvertDecimal(std::string_view base64, int64_t scale, std::string* out) {
  std::string bytes, digits;
  bool negative = false;
  if (!DecodeBase64(base64, &bytes)) return "not valid base64";
  if (!BigIntegerDigits(bytes, &negative, &digits)) return "no bytes: not a Decimal";
  AppendScaled(negative, digits, scale, out);
  return nullptr;
}

// "YYYY-MM-DD" of a day, as Postgres prints it: year of era with at least
// four digits; *bc for years <= 0 (the caller appends " BC").
void AppendDate(int64_t days, std::string* out, bool* bc) {
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  *bc = y <= 0;
  AppendInt(out, *bc ? 1 - y : y, 4);
  out->push_back('-');
  AppendInt(out, m, 2);
  out->push_back('-');
  AppendInt(out, d, 2);
}

// "HH:MM:SS[.ffffff]" (trailing fraction zeros trimmed), 0 <= micros <= 24h.
void AppendTime(int64_t micros, std::string* out) {
  const int64_t secs = micros / kMicrosPerSecond, frac = micros % kMicrosPerSecond;
  AppendInt(out, secs / 3600, 2);
  out->push_back(':');
  AppendInt(out, secs / 60 % 60, 2);
  out->push_back(':');
  AppendInt(out, secs % 60, 2);
  if (frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(frac));
    size_t n = 6;
    while (buf[n - 1] == '0') --n;
    out->push_back('.');
    out->append(buf, n);
  }
}

// A timestamp given as a day and the time of day: "YYYY-MM-DD HH:MM:SS[.f][offset][ BC]".
const char* AppendTimestamp(int64_t days, int64_t tod_micros, std::string_view offset, std::string* out) {
  if (days < kMinPgDay || days > kMaxPgTimestampDay) return "outside Postgres's timestamp range";
  bool bc;
  AppendDate(days, out, &bc);
  out->push_back(' ');
  AppendTime(tod_micros, out);
  out->append(offset);
  if (bc) out->append(" BC");
  return nullptr;
}

// Reads exactly `n` digits (n > 0) or, with n == 0, one or more.
bool ReadDigits(std::string_view s, size_t* p, size_t n, int64_t* v) {
  const size_t start = *p;
  int64_t acc = 0;
  while (*p < s.size() && s[*p] >= '0' && s[*p] <= '9' && (n == 0 || *p - start < n)) {
    if (*p - start >= 12) return false;
    acc = acc * 10 + (s[*p] - '0');
    ++*p;
  }
  *v = acc;
  return *p > start && (n == 0 || *p - start == n);
}

bool Consume(std::string_view s, size_t* p, char c) {
  if (*p >= s.size() || s[*p] != c) return false;
  ++*p;
  return true;
}

// "HH:MM[:SS[.fffffffff]]" (java.time ISO_LOCAL_TIME) as microseconds;
// sub-microsecond digits must be zero (capture never writes them).
bool ReadIsoTime(std::string_view s, size_t* p, int64_t* micros) {
  int64_t h, m, sec = 0, frac = 0;
  if (!ReadDigits(s, p, 2, &h) || !Consume(s, p, ':') || !ReadDigits(s, p, 2, &m)) return false;
  if (Consume(s, p, ':')) {
    if (!ReadDigits(s, p, 2, &sec)) return false;
    if (Consume(s, p, '.')) {
      int digits = 0;
      while (*p < s.size() && s[*p] >= '0' && s[*p] <= '9') {
        if (digits < 6)
          frac = frac * 10 + (s[*p] - '0');
        else if (s[*p] != '0' || digits >= 9)
          return false;
        ++digits;
        ++*p;
      }
      if (digits == 0) return false;
      for (; digits < 6; ++digits) frac *= 10;
    }
  }
  if (h > 23 || m > 59 || sec > 59) return false;
  *micros = ((h * 60 + m) * 60 + sec) * kMicrosPerSecond + frac;
  return true;
}

// "Z" or "+HH:MM[:SS]" / "-HH:MM[:SS]" (ISO_OFFSET_*), as seconds east of UTC.
bool ReadIsoOffset(std::string_view s, size_t* p, int32_t* seconds) {
  if (Consume(s, p, 'Z')) return *seconds = 0, true;
  if (*p >= s.size() || (s[*p] != '+' && s[*p] != '-')) return false;
  const bool neg = s[(*p)++] == '-';
  int64_t h, m = 0, sec = 0;
  if (!ReadDigits(s, p, 2, &h)) return false;
  if (Consume(s, p, ':')) {
    if (!ReadDigits(s, p, 2, &m)) return false;
    if (Consume(s, p, ':') && !ReadDigits(s, p, 2, &sec)) return false;
  }
  if (h > 18 || m > 59 || sec > 59) return false;
  const int64_t total = h * 3600 + m * 60 + sec;
  *seconds = static_cast<int32_t>(neg ? -total : total);
  return true;
}

// ZonedTimestamp (ISO_OFFSET_DATE_TIME; years beyond 4 digits signed, as
// ISO_LOCAL_DATE prints them) -> Postgres text in UTC.
const char* ConvertTimestamptz(std::string_view s, std::string* out) {
  if (s == "infinity" || s == "-infinity") return out->append(s), nullptr;
  size_t p = 0;
  bool negative_year = false;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) negative_year = s[p++] == '-';
  const size_t year_start = p;
  int64_t y, mo, d, tod;
  int32_t offset;
  if (!ReadDigits(s, &p, 0, &y) || p - year_start < 4 || !Consume(s, &p, '-') || !ReadDigits(s, &p, 2, &mo) ||
      !Consume(s, &p, '-') || !ReadDigits(s, &p, 2, &d) || !Consume(s, &p, 'T') || !ReadIsoTime(s, &p, &tod) ||
      !ReadIsoOffset(s, &p, &offset) || p != s.size())
    return "not an ISO-8601 timestamp with offset";
  if (negative_year) y = -y;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return "not a valid date";
  int64_t days = DaysFromCivil(y, static_cast<int>(mo), static_cast<int>(d));
  int64_t cy;
  int cm, cd;
  CivilFromDays(days, &cy, &cm, &cd);
  if (cy != y || cm != mo || cd != d) return "not a valid date";
  int64_t utc = tod - int64_t{offset} * kMicrosPerSecond;
  days += FloorDiv(utc, kMicrosPerDay);
  utc = FloorMod(utc, kMicrosPerDay);
  return AppendTimestamp(days, utc, "+00", out);
}

// ZonedTime "HH:mm:ss[.f]Z" -> "HH:MM:SS[.f]+00" (or the given offset).
const char* ConvertTimetz(std::string_view s, std::string* out) {
  size_t p = 0;
  int64_t micros;
  int32_t offset;
  if (!ReadIsoTime(s, &p, &micros) || !ReadIsoOffset(s, &p, &offset) || p != s.size())
    return "not an ISO-8601 time with offset";
  AppendTime(micros, out);
  const int32_t a = offset < 0 ? -offset : offset;
  out->push_back(offset < 0 ? '-' : '+');
  AppendInt(out, a / 3600, 2);
  if (a % 3600 != 0) {
    out->push_back(':');
    AppendInt(out, a / 60 % 60, 2);
    if (a % 60 != 0) {
      out->push_back(':');
      AppendInt(out, a % 60, 2);
    }
  }
  return nullptr;
}

// ------------------------------------------------------------ interval --

// An interval as "days + time of the same sign, |time| < 24 h": how Postgres
// prints one that has no months and a normalised time part.
struct DayTime {
  int64_t days;
  int64_t micros;  // same sign as days (or either is zero)
};
DayTime SplitMicros(int64_t micros) { return {micros / kMicrosPerDay, micros % kMicrosPerDay}; }

// What capture (pg_text.cc ParseIntervalMicros, i.e. pgjdbc's PGInterval and
// Debezium's MicroDuration.durationMicros in IEEE doubles) makes of the text
// Postgres prints for `micros` split as SplitMicros does.
int64_t DebeziumMicros(int64_t micros) {
  const DayTime dt = SplitMicros(micros);
  const int64_t t = dt.micros < 0 ? -dt.micros : dt.micros;
  const int64_t sign = dt.micros < 0 ? -1 : 1;
  const int64_t hours = sign * (t / 3600000000LL);
  const int64_t minutes = sign * (t / 60000000LL % 60);
  // "SS.ffffff" read with strtod: the correctly rounded quotient.
  const double text_seconds = static_cast<double>(sign * (t % 60000000LL)) / 1e6;
  const double scaled = std::floor(text_seconds * 1e6 + 0.5);  // Math.round
  const auto total = static_cast<int64_t>(scaled);
  const double seconds = static_cast<double>(total / kMicrosPerSecond) +
                         static_cast<double>(total % kMicrosPerSecond) / static_cast<double>(kMicrosPerSecond);
  const double days = 0 * (365.25 / 12.0) + static_cast<double>(dt.days);
  const double secs = (((days * 24 + static_cast<double>(hours)) * 60) + static_cast<double>(minutes)) * 60 + seconds;
  const double result = secs * 1e6 + 0;
  if (result >= 9.223372036854775807e18) return INT64_MAX;
  if (result <= -9.223372036854775808e18) return INT64_MIN;
  return static_cast<int64_t>(result);
}

int TrailingZeros(int64_t v) {
  if (v == 0) return 19;
  int n = 0;
  while (v % 10 == 0) v /= 10, ++n;
  return n;
}

// The interval whose MicroDuration is `w`. Debezium truncates a double, so an
// interval with fractional seconds can arrive one microsecond closer to zero
// ('-3 days -02:25:07.583' -> -267907582999). Of w and w +- 1, the candidates that capture
// maps to w (for the normalised day/time form) are kept and the one with the
// most trailing decimal zeros wins (ties: w itself): that recovers every
// interval with at most millisecond digits and most others (docs/compat.md).
int64_t RecoverIntervalMicros(int64_t w) {
  if (w == 0 || w == INT64_MAX || w == INT64_MIN) return w;
  const int64_t neighbour = w > 0 ? w + 1 : w - 1;
  const bool w_ok = DebeziumMicros(w) == w;
  const bool n_ok = DebeziumMicros(neighbour) == w;
  if (n_ok && (!w_ok || TrailingZeros(neighbour) > TrailingZeros(w))) return neighbour;
  return w;
}

void AppendInterval(int64_t micros, std::string* out) {
  const DayTime dt = SplitMicros(micros);
  if (dt.days != 0) {
    AppendInt(out, dt.days);
    out->append(" days");
    if (dt.micros == 0) return;
    out->push_back(' ');
  }
  if (dt.micros < 0) out->push_back('-');
  AppendTime(dt.micros < 0 ? -dt.micros : dt.micros, out);
}

// ----------------------------------------------------------------- bits --

// io.debezium.data.Bits: BitSet.toByteArray(), little-endian; bit i of the
// set is character (length - 1 - i) of the bit string.
const char* ConvertBits(std::string_view base64, int64_t fixed_length, int64_t max_length, std::string* out) {
  std::string bytes;
  if (!DecodeBase64(base64, &bytes)) return "not valid base64";
  int64_t highest = -1;
  for (size_t i = bytes.size(); i-- > 0 && highest < 0;) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    for (int k = 7; k >= 0; --k) {
      if (b & (1u << k)) {
        highest = static_cast<int64_t>(i) * 8 + k;
        break;
      }
    }
  }
  const int64_t length = fixed_length >= 0 ? fixed_length : highest + 1;
  if (highest >= length || length > max_length) return "more bits than the type holds";
  const size_t start = out->size();
  out->append(static_cast<size_t>(length), '0');
  for (int64_t bit = 0; bit <= highest; ++bit) {
    if (static_cast<uint8_t>(bytes[static_cast<size_t>(bit / 8)]) & (1u << (bit % 8)))
      (*out)[start + static_cast<size_t>(length - 1 - bit)] = '1';
  }
  return nullptr;
}

// -------------------------------------------------------------- scalars --

// Converts one non-null value of the (element) type `s`; returns the reason
// when it cannot.
const char* ConvertScalar(const ScalarCodec& s, const rapidjson::Value& v, std::string* out) {
  const Kind kind = s.kind;
  int64_t n = 0;
  switch (kind) {
    case Kind::kBool:
    case Kind::kBit:
      if (!v.IsBool()) return "not a boolean";
      out->push_back(kind == Kind::kBool ? (v.GetBool() ? 't' : 'f') : (v.GetBool() ? '1' : '0'));
      return nullptr;
    case Kind::kInt16:
    case Kind::kInt32:
    case Kind::kInt64: {
      if (!GetInteger(v, &n)) return "not an integer";
      const bool fits = kind == Kind::kInt16   ? n >= INT16_MIN && n <= INT16_MAX
                        : kind == Kind::kInt32 ? n >= INT32_MIN && n <= INT32_MAX
                        : s.oid == oid::kOid   ? n >= 0 && n <= UINT32_MAX
                                               : true;
      if (!fits) return "out of range for the type";
      AppendInt(out, n);
      return nullptr;
    }
    case Kind::kFloat32: return ConvertFloat<float>(v, out);
    case Kind::kFloat64: return ConvertFloat<double>(v, out);
    case Kind::kString:
    case Kind::kAlwaysNull:
      if (!v.IsString()) return "not a string";
      out->append(StringOf(v));
      return nullptr;
    case Kind::kBytes: {
      if (!v.IsString()) return "not a base64 string";
      std::string bytes;
      if (!DecodeBase64(StringOf(v), &bytes)) return "not valid base64";
      static constexpr char kHex[] = "0123456789abcdef";
      out->reserve(out->size() + 2 + bytes.size() * 2);
      out->append("\\x");
      for (unsigned char c : bytes) {
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
      }
      return nullptr;
    }
    case Kind::kDecimal:
      // pgjdbc's scale: (typmod - 4) & 0xFFFF, as capture uses it. A Postgres
      // 15 negative scale shows up as 2048 - |scale| (the value is then
      // exact, with that many zero fraction digits): trim them.
      if (!v.IsString()) return "not a base64 string";
      {
        const int64_t scale = s.scale;
        if (const char* e = ConvertDecimal(StringOf(v), scale, out)) return e;
        if (scale > 1000) {  // Postgres scales are in [-1000, 1000]
          while (out->back() == '0') out->pop_back();
          if (out->back() == '.') out->pop_back();
        }
      }
      return nullptr;
    case Kind::kMoney:
      if (!v.IsString()) return "not a base64 string";
      return ConvertDecimal(StringOf(v), 2, out);
    case Kind::kVariableDecimal: {
      if (!v.IsObject()) return "not a VariableScaleDecimal {\"scale\", \"value\"}";
      const auto scale = v.FindMember("scale");
      const auto value = v.FindMember("value");
      if (scale == v.MemberEnd() || value == v.MemberEnd() || !GetInteger(scale->value, &n) ||
          !value->value.IsString() || v.MemberCount() != 2)
        return "not a VariableScaleDecimal {\"scale\", \"value\"}";
      if (n < -131072 || n > 16383) return "scale out of range";
      return ConvertDecimal(StringOf(value->value), n, out);
    }
    case Kind::kDate: {
      if (!GetInteger(v, &n)) return "not an integer (days since 1970-01-01)";
      if (n == kPosInfinityDays) return out->append("infinity"), nullptr;
      if (n == kNegInfinityDays) return out->append("-infinity"), nullptr;
      if (n < kMinPgDay || n > kMaxPgDateDay) return "outside Postgres's date range";
      bool bc;
      AppendDate(n, out, &bc);
      if (bc) out->append(" BC");
      return nullptr;
    }
    case Kind::kTimeMillis:
    case Kind::kTimeMicros: {
      if (!GetInteger(v, &n)) return "not an integer (time after midnight)";
      if (kind == Kind::kTimeMillis) {
        if (n < 0 || n > kMillisPerDay) return "outside 00:00:00 .. 24:00:00";
        n *= 1000;
      }
      if (n < 0 || n > kMicrosPerDay) return "outside 00:00:00 .. 24:00:00";
      AppendTime(n, out);
      return nullptr;
    }
    case Kind::kTimestampMillis:
      if (!GetInteger(v, &n)) return "not an integer (milliseconds since 1970-01-01)";
      if (n == kPosInfinityMillis) return out->append("infinity"), nullptr;
      if (n == kNegInfinityMillis) return out->append("-infinity"), nullptr;
      return AppendTimestamp(FloorDiv(n, kMillisPerDay), FloorMod(n, kMillisPerDay) * 1000, "", out);
    case Kind::kTimestampMicros:
      if (!GetInteger(v, &n)) return "not an integer (microseconds since 1970-01-01)";
      if (n == kPosInfinityMicros) return out->append("infinity"), nullptr;
      if (n == kNegInfinityMicros) return out->append("-infinity"), nullptr;
      return AppendTimestamp(FloorDiv(n, kMicrosPerDay), FloorMod(n, kMicrosPerDay), "", out);
    case Kind::kZonedTimestamp:
      if (!v.IsString()) return "not an ISO-8601 string";
      return ConvertTimestamptz(StringOf(v), out);
    case Kind::kZonedTime:
      if (!v.IsString()) return "not an ISO-8601 string";
      return ConvertTimetz(StringOf(v), out);
    case Kind::kInterval:
      if (!GetInteger(v, &n)) return "not an integer (microseconds)";
      AppendInterval(RecoverIntervalMicros(n), out);
      return nullptr;
    case Kind::kBits:
      // bit(n) has a fixed length (the typmod); varbit and bit without one do not.
      if (!v.IsString()) return "not a base64 string";
      return ConvertBits(StringOf(v), s.oid == oid::kBit && s.precision != INT32_MAX ? s.precision : -1, s.precision,
                         out);
    case Kind::kSkip:
    case Kind::kHstore:
    case Kind::kPoint:
    case Kind::kGeometry: break;
  }
  return "unsupported type";
}

// Debezium's unchanged-TOAST placeholder in the shape capture writes it for
// the column (the codec's ToastForm; docs/compat.md §7.5).
bool IsToastPlaceholder(ToastForm form, const rapidjson::Value& v) {
  switch (form) {
    case ToastForm::kString: return v.IsString() && StringOf(v) == kUnavailable;
    case ToastForm::kBytes: return v.IsString() && StringOf(v) == kUnavailableBase64;
    case ToastForm::kStringList:
      return v.IsArray() && v.Size() == 1 && v[0].IsString() && StringOf(v[0]) == kUnavailable;
    case ToastForm::kByteList:
      if (!v.IsArray() || v.Size() != kUnavailable.size()) return false;
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        int64_t b;
        if (!GetInteger(v[i], &b) || b != static_cast<unsigned char>(kUnavailable[i])) return false;
      }
      return true;
    case ToastForm::kNull: return false;
  }
  return false;
}

// The value as compact JSON for messages, cut at 100 characters.
std::string JsonForMessage(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  std::string s(buf.GetString(), buf.GetSize());
  if (s.size() > 100) {
    s.resize(100);
    s += "...";
  }
  return s;
}

// The codec has an inverse: a type the table knows by OID (or an enum),
// which capture writes as Debezium's JSON. Extension types are mapped by
// name for capture but restored from their fidelity text only.
bool HasJsonInverse(const ColumnCodec& c) {
  return c.scalar.kind != Kind::kSkip && c.scalar.kind != Kind::kHstore && c.scalar.kind != Kind::kPoint &&
         !c.from_extension;
}

}  // namespace

// --------------------------------------------------------------- public --

bool HasJsonInverse(const ColumnType& type) { return HasJsonInverse(ResolveCodec(type)); }

std::optional<std::string_view> DebeziumLoss(const ColumnType& type) {
  const ColumnCodec c = ResolveCodec(type);
  if (c.loss.empty()) return std::nullopt;
  return c.loss;
}

Result<ValueConverter> ValueConverter::Resolve(const ColumnType& type) {
  ValueConverter c;
  c.codec_ = ResolveCodec(type);
  if (!HasJsonInverse(c.codec_)) {
    return InvalidArgument("type " +
                           (type.type_name.empty() ? "oid " + std::to_string(type.type_oid) : type.type_name) +
                           " is not captured: Debezium leaves such columns out of row images (docs/compat.md §7)");
  }
  c.type_ = type;
  return c;
}

Status ValueConverter::Convert(const rapidjson::Value& value, std::string* out, bool* is_null) const {
  const size_t start = out->size();
  auto fail = [&](std::string_view reason) {
    out->resize(start);
    return InvalidArgument("cannot restore " + JsonForMessage(value) + " as " + type_.type_name + ": " +
                           std::string(reason));
  };
  *is_null = value.IsNull();
  if (*is_null) return Status::Ok();
  if (IsToastPlaceholder(codec_.toast, value))
    return fail("Debezium's unchanged-TOAST placeholder, which the store must have resolved");
  if (!codec_.is_array) {
    if (const char* e = ConvertScalar(codec_.scalar, value, out)) return fail(e);
  } else {
    if (!value.IsArray()) return fail("not an array");
    // Postgres array literal: every element double-quoted with \ and "
    // escaped, so no element text needs further analysis.
    thread_local std::string element;
    out->push_back('{');
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      if (i > 0) out->push_back(',');
      const rapidjson::Value& e = value[i];
      if (e.IsNull()) {
        out->append("NULL");
        continue;
      }
      element.clear();
      if (const char* reason = ConvertScalar(codec_.scalar, e, &element))
        return fail("element " + std::to_string(i + 1) + ": " + reason);
      out->push_back('"');
      for (char ch : element) {
        if (ch == '"' || ch == '\\') out->push_back('\\');
        out->push_back(ch);
      }
      out->push_back('"');
    }
    out->push_back('}');
  }
  if (std::memchr(out->data() + start, '\0', out->size() - start) != nullptr)
    return fail("contains a NUL character, which Postgres text cannot hold");
  return Status::Ok();
}

Result<std::optional<std::string>> ValueConverter::ToText(const rapidjson::Value& value) const {
  std::string text;
  bool is_null = false;
  TV_RETURN_IF_ERROR(Convert(value, &text, &is_null));
  if (is_null) return std::optional<std::string>();
  return std::optional<std::string>(std::move(text));
}

Status ValueConverter::AppendCopy(const rapidjson::Value& value, std::string* out) const {
  thread_local std::string text;
  text.clear();
  bool is_null = false;
  TV_RETURN_IF_ERROR(Convert(value, &text, &is_null));
  if (is_null)
    out->append("\\N");
  else
    AppendCopyText(out, text);
  return Status::Ok();
}

Result<std::optional<std::string>> ToPostgresText(const ColumnType& type, const rapidjson::Value& value) {
  TV_ASSIGN_OR_RETURN(const ValueConverter c, ValueConverter::Resolve(type));
  return c.ToText(value);
}

void AppendCopyText(std::string* out, std::string_view text) {
  out->reserve(out->size() + text.size());
  for (char ch : text) {
    switch (ch) {
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\v': out->append("\\v"); break;
      default: out->push_back(ch);
    }
  }
}

void AppendCopyField(std::string* out, const std::optional<std::string>& text) {
  if (!text)
    out->append("\\N");
  else
    AppendCopyText(out, *text);
}

}  // namespace timevault::wire
