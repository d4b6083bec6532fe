// Postgres text -> Debezium JSON (to_json.h): Debezium's conversion of
// Postgres text values (and of column default expressions) to the JSON
// JsonConverter writes, and the Connect schemas, driven by the type table
// (type_table.cc). Each rule cites the Debezium class it reproduces.
#include "timevault/wire/to_json.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "pg_text.h"
#include "timevault/wire/contract.h"
#include "timevault/wire/java_format.h"

namespace timevault::wire {

namespace {

void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void Key(JsonWriter& w, std::string_view s) { w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

}  // namespace

// ----------------------------------------------------------------- values --

namespace {

enum class Outcome { kOk, kNull, kBad };

thread_local std::string tl_bytes;   // decoded bytea / big-integer bytes
thread_local std::string tl_base64;  // their base64

void WriteBase64(JsonWriter& w, std::string_view bytes) {
  tl_base64.clear();
  AppendBase64(bytes, &tl_base64);
  Str(w, tl_base64);
}

// Kafka's JsonConverter (Jackson) writes non-finite floats as quoted strings.
template <typename T>
bool WriteFloating(JsonWriter& w, std::string_view text) {
  T v{};
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ptr != text.data() + text.size()) return false;
  if (r.ec == std::errc::result_out_of_range) {  // Java rounds to 0 or Infinity
    const std::string copy(text);
    v = static_cast<T>(std::strtod(copy.c_str(), nullptr));
  } else if (r.ec != std::errc()) {
    return false;
  }
  if (std::isnan(v)) return Str(w, "NaN"), true;
  if (std::isinf(v)) return Str(w, v > 0 ? "Infinity" : "-Infinity"), true;
  char buf[40];
  const std::string_view s =
      sizeof(T) == 4 ? FormatJavaFloat(static_cast<float>(v), buf) : FormatJavaDouble(static_cast<double>(v), buf);
  w.RawValue(s.data(), s.size(), rapidjson::kNumberType);
  return true;
}

template <typename T>
bool ParseInteger(std::string_view text, T* v) {
  auto r = std::from_chars(text.data(), text.data() + text.size(), *v);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

// The unscaled digits of `n` at `scale`, or false if digits would be lost
// (BigDecimal.setScale without rounding throws; Debezium then drops the value).
bool UnscaledDigits(const NumericText& n, int32_t scale, std::string* digits) {
  digits->assign(n.int_digits);
  const auto frac = static_cast<int32_t>(n.frac_digits.size());
  if (frac <= scale) {
    digits->append(n.frac_digits);
    digits->append(static_cast<size_t>(scale - frac), '0');
    return true;
  }
  for (int32_t k = scale; k < frac; ++k)
    if (n.frac_digits[static_cast<size_t>(k)] != '0') return false;
  digits->append(n.frac_digits.substr(0, static_cast<size_t>(scale)));
  return true;
}

Outcome WriteDecimal(JsonWriter& w, const NumericText& n, int32_t scale) {
  std::string digits;
  if (!UnscaledDigits(n, scale, &digits)) return Outcome::kNull;
  tl_bytes.clear();
  AppendTwosComplement(digits, n.negative, &tl_bytes);
  WriteBase64(w, tl_bytes);
  return Outcome::kOk;
}

// VariableScaleDecimal: stripTrailingZeros(), negative scales set back to 0.
void WriteVariableDecimal(JsonWriter& w, const NumericText& n) {
  std::string_view frac = n.frac_digits;
  while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
  std::string digits(n.int_digits);
  digits.append(frac);
  const bool zero = digits.find_first_not_of('0') == std::string::npos;
  tl_bytes.clear();
  AppendTwosComplement(digits, n.negative && !zero, &tl_bytes);
  w.StartObject();
  Key(w, "scale");
  w.Int(zero ? 0 : static_cast<int>(frac.size()));
  Key(w, "value");
  WriteBase64(w, tl_bytes);
  w.EndObject();
}

// Postgres money text ("$1,234.50", "-$0.99") the way AbstractColumnValue.asMoney
// reads it (sign, one currency character, thousands separators), at scale 2
// rounded HALF_UP.
Outcome WriteMoney(JsonWriter& w, std::string_view text) {
  bool negative = false;
  if (!text.empty() && text[0] == '-') negative = true, text.remove_prefix(1);
  if (!text.empty() && !(text[0] >= '0' && text[0] <= '9')) text.remove_prefix(1);
  std::string plain;
  for (char ch : text)
    if (ch != ',') plain.push_back(ch);
  NumericText n;
  if (!ParseNumeric(plain, &n) || n.special != NumericText::Special::kNone || n.negative) return Outcome::kBad;
  n.negative = negative;
  std::string digits(n.int_digits);
  std::string frac(n.frac_digits);
  const bool round_up = frac.size() > 2 && frac[2] >= '5';
  frac.resize(2, '0');
  digits += frac;
  if (round_up) {  // add one unit in the last place
    size_t k = digits.size();
    while (k-- > 0 && digits[k] == '9') digits[k] = '0';
    if (k == std::string::npos)
      digits.insert(digits.begin(), '1');
    else
      ++digits[k];
  }
  tl_bytes.clear();
  AppendTwosComplement(digits, negative, &tl_bytes);
  WriteBase64(w, tl_bytes);
  return Outcome::kOk;
}

// ISO-8601 instant in UTC as ZonedTimestamp.toIsoString renders it: exactly
// `width` fractional digits for 1 <= width <= 9, else ISO_OFFSET_DATE_TIME's
// trimmed fraction. The instant is given as UTC days and time of day (every
// Postgres timestamp, up to 294276 AD). `offset_seconds` != 0 only for column
// defaults: the local time at that offset is written, with the offset.
void AppendZoned(int64_t utc_days, int64_t utc_micros_of_day, int32_t width, int32_t offset_seconds, std::string* out) {
  const int64_t shifted = utc_micros_of_day + int64_t{offset_seconds} * 1000000;
  const int64_t days = utc_days + FloorDiv(shifted, 86400000000LL);
  const int64_t tod = FloorMod(shifted, 86400000000LL);
  AppendIsoDate(days, out);
  char buf[40];
  const int64_t secs = tod / 1000000, nanos = (tod % 1000000) * 1000;
  int n = std::snprintf(buf, sizeof(buf), "T%02d:%02d:%02d", static_cast<int>(secs / 3600),
                        static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  out->append(buf, static_cast<size_t>(n));
  std::snprintf(buf, sizeof(buf), "%09lld", static_cast<long long>(nanos));
  if (width >= 1 && width <= 9) {
    out->push_back('.');
    out->append(buf, static_cast<size_t>(width));
  } else if (nanos != 0) {
    size_t len = 9;
    while (buf[len - 1] == '0') --len;
    out->push_back('.');
    out->append(buf, len);
  }
  if (offset_seconds == 0) {
    out->push_back('Z');
    return;
  }
  const int32_t a = offset_seconds < 0 ? -offset_seconds : offset_seconds;
  n = std::snprintf(buf, sizeof(buf), "%c%02d:%02d", offset_seconds < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  out->append(buf, static_cast<size_t>(n));
  if (a % 60 != 0) {
    n = std::snprintf(buf, sizeof(buf), ":%02d", a % 60);
    out->append(buf, static_cast<size_t>(n));
  }
}

// ZonedTime.toIsoString of an OffsetTime at UTC (ISO_OFFSET_TIME).
void AppendZonedTime(int64_t micros, std::string* out) {
  char buf[32];
  const int64_t secs = micros / 1000000, frac = micros % 1000000;
  int n = std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d", static_cast<int>(secs / 3600),
                        static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  out->append(buf, static_cast<size_t>(n));
  if (frac != 0) {
    n = std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(frac));
    while (n > 0 && buf[n - 1] == '0') --n;
    out->push_back('.');
    out->append(buf, static_cast<size_t>(n));
  }
  out->push_back('Z');
}

// PostgresValueConverter.convertBits: character i of the bit string is bit
// (len - 1 - i); BitSet.toByteArray() is little-endian and minimal.
bool BitsToBytes(std::string_view bits, std::string* out) {
  out->clear();
  const size_t len = bits.size();
  for (size_t i = 0; i < len; ++i) {
    if (bits[i] != '0' && bits[i] != '1') return false;
    if (bits[i] == '1') {
      const size_t bit = len - 1 - i;
      if (out->size() <= bit / 8) out->resize(bit / 8 + 1, '\0');
      (*out)[bit / 8] = static_cast<char>(static_cast<unsigned char>((*out)[bit / 8]) | (1u << (bit % 8)));
    }
  }
  return true;
}

// Reads one double-quoted hstore string ("a\"b") at *pos into *out.
bool ReadHstoreString(std::string_view text, size_t* pos, std::string* out) {
  if (*pos >= text.size() || text[*pos] != '"') return false;
  out->clear();
  for (size_t i = *pos + 1; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      *out += text[++i];
    } else if (text[i] == '"') {
      *pos = i + 1;
      return true;
    } else {
      *out += text[i];
    }
  }
  return false;
}

void SkipSpaces(std::string_view text, size_t* pos) {
  while (*pos < text.size() && text[*pos] == ' ') ++*pos;
}

// hstore.handling.mode=json: pgjdbc's HStoreConverter.fromString puts the
// pairs into a java.util.HashMap, which Jackson then writes in the map's
// iteration order (bucket of String.hashCode, then insertion order; 16
// buckets, doubled while more than 3/4 full). The JSON object is the value,
// as a string.
bool WriteHstore(JsonWriter& w, std::string_view text) {
  struct Pair {
    std::string key;
    std::optional<std::string> value;
    uint32_t bucket = 0;
  };
  std::vector<Pair> pairs;
  size_t pos = 0;
  SkipSpaces(text, &pos);
  while (pos < text.size()) {
    Pair p;
    if (!ReadHstoreString(text, &pos, &p.key)) return false;
    SkipSpaces(text, &pos);
    if (text.substr(pos, 2) != "=>") return false;
    pos += 2;
    SkipSpaces(text, &pos);
    if (text.substr(pos, 4) == "NULL") {
      pos += 4;
    } else {
      std::string v;
      if (!ReadHstoreString(text, &pos, &v)) return false;
      p.value = std::move(v);
    }
    pairs.push_back(std::move(p));
    SkipSpaces(text, &pos);
    if (pos < text.size()) {
      if (text[pos] != ',') return false;
      ++pos;
      SkipSpaces(text, &pos);
    }
  }
  size_t capacity = 16;
  while (pairs.size() * 4 > capacity * 3) capacity *= 2;
  for (auto& p : pairs) {
    const auto h = static_cast<uint32_t>(JavaStringHash(p.key));
    p.bucket = (h ^ (h >> 16)) & static_cast<uint32_t>(capacity - 1);
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.bucket < b.bucket; });
  rapidjson::StringBuffer buf;
  JsonWriter jw(buf);
  jw.StartObject();
  for (const auto& p : pairs) {
    jw.Key(p.key.data(), static_cast<rapidjson::SizeType>(p.key.size()));
    if (p.value)
      jw.String(p.value->data(), static_cast<rapidjson::SizeType>(p.value->size()));
    else
      jw.Null();
  }
  jw.EndObject();
  w.String(buf.GetString(), static_cast<rapidjson::SizeType>(buf.GetSize()));
  return true;
}

// Little-endian bytes of a double, as java.nio.ByteBuffer in LITTLE_ENDIAN order writes it.
void AppendDoubleLe(double v, std::string* out) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

// io.debezium.data.geometry.Point from point_out's "(x,y)": pgjdbc's PGpoint
// reads both with Double.parseDouble; wkb is Point.buildWKBPoint (byte order
// 1, type 1, x, y little-endian), srid null (PostgresValueConverter).
Outcome WritePoint(JsonWriter& w, std::string_view text) {
  if (text.size() < 5 || text.front() != '(' || text.back() != ')') return Outcome::kBad;
  const std::string_view inner = text.substr(1, text.size() - 2);
  const size_t comma = inner.find(',');
  if (comma == std::string_view::npos) return Outcome::kBad;
  const std::string xs(inner.substr(0, comma)), ys(inner.substr(comma + 1));
  char* end = nullptr;
  const double x = std::strtod(xs.c_str(), &end);
  if (xs.empty() || *end != '\0') return Outcome::kBad;
  const double y = std::strtod(ys.c_str(), &end);
  if (ys.empty() || *end != '\0') return Outcome::kBad;
  w.StartObject();
  Key(w, "x");
  if (!WriteFloating<double>(w, xs)) return Outcome::kBad;
  Key(w, "y");
  if (!WriteFloating<double>(w, ys)) return Outcome::kBad;
  Key(w, "wkb");
  tl_bytes.assign("\x01\x01\x00\x00\x00", 5);
  AppendDoubleLe(x, &tl_bytes);
  AppendDoubleLe(y, &tl_bytes);
  WriteBase64(w, tl_bytes);
  Key(w, "srid");
  w.Null();
  w.EndObject();
  return Outcome::kOk;
}

// io.debezium.data.geometry.Geometry / Geography from PostGIS's text output
// (hex EWKB): PostgisGeometry.fromHexEwkb keeps the bytes as they are and
// reads the SRID when the EWKB type has its flag (0x20000000), else null.
Outcome WriteGeometry(JsonWriter& w, std::string_view text) {
  if (text.size() % 2 != 0 || text.size() < 10) return Outcome::kBad;
  tl_bytes.clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = 0, lo = 0;
    auto nibble = [](char ch, int* v) {
      if (ch >= '0' && ch <= '9') return *v = ch - '0', true;
      if (ch >= 'A' && ch <= 'F') return *v = ch - 'A' + 10, true;
      if (ch >= 'a' && ch <= 'f') return *v = ch - 'a' + 10, true;
      return false;
    };
    if (!nibble(text[i], &hi) || !nibble(text[i + 1], &lo)) return Outcome::kBad;
    tl_bytes.push_back(static_cast<char>(hi * 16 + lo));
  }
  const bool little = tl_bytes[0] == 1;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const auto b = static_cast<uint32_t>(static_cast<unsigned char>(tl_bytes[at + static_cast<size_t>(i)]));
      v |= little ? b << (8 * i) : b << (8 * (3 - i));
    }
    return v;
  };
  w.StartObject();
  Key(w, "wkb");
  WriteBase64(w, tl_bytes);
  Key(w, "srid");
  if ((u32(1) & 0x20000000u) != 0 && tl_bytes.size() >= 9) {
    w.Int(static_cast<int32_t>(u32(5)));
  } else {
    w.Null();
  }
  w.EndObject();
  return Outcome::kOk;
}

Outcome WriteScalar(JsonWriter& w, const ScalarCodec& s, std::string_view text) {
  switch (s.kind) {
    case Kind::kBool: w.Bool(text.size() == 1 && (text[0] == 't' || text[0] == 'T')); return Outcome::kOk;
    case Kind::kInt16: {
      int16_t v;
      if (!ParseInteger(text, &v)) return Outcome::kBad;
      w.Int(v);
      return Outcome::kOk;
    }
    case Kind::kInt32: {
      int32_t v;
      if (!ParseInteger(text, &v)) return Outcome::kBad;
      w.Int(v);
      return Outcome::kOk;
    }
    case Kind::kInt64: {
      int64_t v;
      if (!ParseInteger(text, &v)) return Outcome::kBad;
      w.Int64(v);
      return Outcome::kOk;
    }
    case Kind::kFloat32: return WriteFloating<float>(w, text) ? Outcome::kOk : Outcome::kBad;
    case Kind::kFloat64: return WriteFloating<double>(w, text) ? Outcome::kOk : Outcome::kBad;
    case Kind::kString: Str(w, text); return Outcome::kOk;
    case Kind::kAlwaysNull: return Outcome::kNull;
    case Kind::kBytes:
      if (!DecodeByteaHex(text, &tl_bytes)) return Outcome::kBad;
      WriteBase64(w, tl_bytes);
      return Outcome::kOk;
    case Kind::kDecimal:
    case Kind::kVariableDecimal: {
      NumericText n;
      if (!ParseNumeric(text, &n)) return Outcome::kBad;
      // Precise mode cannot carry NaN/Infinity: the converter throws and
      // Debezium leaves the field unset.
      if (n.special != NumericText::Special::kNone) return Outcome::kNull;
      if (s.kind == Kind::kDecimal) return WriteDecimal(w, n, s.scale);
      WriteVariableDecimal(w, n);
      return Outcome::kOk;
    }
    case Kind::kMoney: return WriteMoney(w, text);
    case Kind::kDate: {
      int64_t days;
      if (!ParseDate(text, &days)) return Outcome::kBad;
      w.Int(static_cast<int32_t>(days));  // Java's (int) narrowing
      return Outcome::kOk;
    }
    case Kind::kTimeMillis:
    case Kind::kTimeMicros: {
      int64_t micros;
      if (!ParseTimeOfDay(text, &micros)) return Outcome::kBad;
      if (s.kind == Kind::kTimeMillis)
        w.Int(static_cast<int32_t>(micros / 1000));
      else
        w.Int64(micros);
      return Outcome::kOk;
    }
    case Kind::kTimestampMillis:
    case Kind::kTimestampMicros: {
      DateTimeText t;
      if (!ParseDateTime(text, &t) || t.has_offset) return Outcome::kBad;
      if (t.special != DateTimeText::Special::kNone) {
        const int64_t micros = t.special == DateTimeText::Special::kPosInf ? kPosInfinityMicros : kNegInfinityMicros;
        w.Int64(s.kind == Kind::kTimestampMillis ? FloorDiv(micros, 1000) : micros);
        return Outcome::kOk;
      }
      w.Int64(s.kind == Kind::kTimestampMillis ? EpochMillis(t.epoch_days, t.micros_of_day)
                                               : JavaEpochMicros(t.epoch_days, t.micros_of_day));
      return Outcome::kOk;
    }
    case Kind::kZonedTimestamp: {
      DateTimeText t;
      if (!ParseDateTime(text, &t)) return Outcome::kBad;
      if (t.special != DateTimeText::Special::kNone)
        return Str(w, t.special == DateTimeText::Special::kPosInf ? "infinity" : "-infinity"), Outcome::kOk;
      if (!t.has_offset) return Outcome::kBad;
      int64_t days, tod;
      ToUtc(t, &days, &tod);
      std::string iso;
      AppendZoned(days, tod, s.scale, 0, &iso);
      Str(w, iso);
      return Outcome::kOk;
    }
    case Kind::kZonedTime: {
      int64_t micros;
      if (!ParseTimeTz(text, &micros)) return Outcome::kBad;
      std::string iso;
      AppendZonedTime(micros, &iso);
      Str(w, iso);
      return Outcome::kOk;
    }
    case Kind::kInterval: {
      int64_t micros;
      if (!ParseIntervalMicros(text, &micros)) return Outcome::kBad;
      w.Int64(micros);
      return Outcome::kOk;
    }
    case Kind::kBit:
      // An empty varbit(1) (B''): Debezium's convertBits finds no bit, logs
      // "Failed to properly convert data value" and leaves the field unset.
      if (text.empty()) return Outcome::kNull;
      if (text != "0" && text != "1") return Outcome::kBad;
      w.Bool(text == "1");
      return Outcome::kOk;
    case Kind::kBits:
      if (!BitsToBytes(text, &tl_bytes)) return Outcome::kBad;
      WriteBase64(w, tl_bytes);
      return Outcome::kOk;
    case Kind::kHstore: return WriteHstore(w, text) ? Outcome::kOk : Outcome::kBad;
    case Kind::kPoint: return WritePoint(w, text);
    case Kind::kGeometry: return WriteGeometry(w, text);
    case Kind::kSkip: break;
  }
  return Outcome::kBad;
}

Outcome WriteArray(JsonWriter& w, const ColumnCodec& c, std::string_view text) {
  thread_local std::vector<ArrayElement> elements;
  thread_local std::string scratch;
  bool multi_dim = false;
  if (!ParseArray(text, &elements, &scratch, &multi_dim)) return Outcome::kBad;
  // Convert into a side buffer first: one failing element (NaN in numeric[])
  // makes Debezium drop the whole field.
  rapidjson::StringBuffer buf;
  JsonWriter aw(buf);
  aw.StartArray();
  for (const auto& e : elements) {
    if (e.is_null || multi_dim) {  // sub-arrays: the element converter yields null
      aw.Null();
      continue;
    }
    const Outcome o = WriteScalar(aw, c.scalar, e.text);
    if (o == Outcome::kBad) return Outcome::kBad;
    if (o == Outcome::kNull) return Outcome::kNull;
  }
  aw.EndArray();
  w.RawValue(buf.GetString(), buf.GetSize(), rapidjson::kArrayType);
  return Outcome::kOk;
}

// LossyValue of one scalar (kByValue kinds only; unparsable text is the
// encoder's error to report, not a loss).
bool LossyScalar(const ScalarCodec& s, std::string_view text) {
  switch (s.kind) {
    case Kind::kDecimal: {
      NumericText n;
      return ParseNumeric(text, &n) && n.special != NumericText::Special::kNone;
    }
    case Kind::kTimestampMicros: {
      DateTimeText t;
      if (!ParseDateTime(text, &t) || t.special != DateTimeText::Special::kNone) return false;
      // Exact epoch microseconds, compared with what MicroTimestamp writes
      // (saturated or wrapped past 294247-01-10 04:00:54.775807), and the
      // value that collides with Debezium's stand-in for infinity.
      const __int128 exact = static_cast<__int128>(t.epoch_days) * 86400000000LL + t.micros_of_day;
      const int64_t written = JavaEpochMicros(t.epoch_days, t.micros_of_day);
      return exact != written || written == kPosInfinityMicros || written == kNegInfinityMicros;
    }
    case Kind::kBit: return text.empty();
    default: return false;
  }
}

}  // namespace

bool LossyValue(const ColumnCodec& c, std::string_view text) {
  if (!c.is_array) return LossyScalar(c.scalar, text);
  // Postgres writes explicit bounds as "[0:1]={...}" and a multi-dimensional
  // array as "{{...}}" (a first element starting with '{' is quoted).
  if (text.starts_with('[') || text.starts_with("{{")) return true;
  if (c.scalar.kind != Kind::kDecimal && c.scalar.kind != Kind::kTimestampMicros) return false;
  thread_local std::vector<ArrayElement> elements;
  thread_local std::string scratch;
  bool multi_dim = false;
  if (!ParseArray(text, &elements, &scratch, &multi_dim)) return false;
  for (const auto& e : elements)
    if (!e.is_null && LossyScalar(c.scalar, e.text)) return true;
  return false;
}

bool WriteValue(JsonWriter& w, const ColumnCodec& c, std::string_view text) {
  const Outcome o = c.is_array ? WriteArray(w, c, text) : WriteScalar(w, c.scalar, text);
  if (o == Outcome::kNull) WriteNull(w, c);
  return o != Outcome::kBad;
}

void WriteNull(JsonWriter& w, const ColumnCodec& c) {
  w.RawValue(c.null_json.data(), c.null_json.size(), rapidjson::kNullType);
}

void WriteToastPlaceholder(JsonWriter& w, const ColumnCodec& c) {
  switch (c.toast) {
    case ToastForm::kString: Str(w, kUnavailableValue); return;
    case ToastForm::kBytes: WriteBase64(w, kUnavailableValue); return;
    case ToastForm::kStringList:
      w.StartArray();
      Str(w, kUnavailableValue);
      w.EndArray();
      return;
    case ToastForm::kByteList:
      w.StartArray();
      for (char ch : kUnavailableValue) w.Int(static_cast<signed char>(ch));
      w.EndArray();
      return;
    case ToastForm::kNull: WriteNull(w, c); return;
  }
}

// --------------------------------------------------------------- defaults --

namespace {

// PostgresDefaultValueConverter.FUNCTION_DEFAULT_PATTERN,
// "^[(]?[A-Za-z0-9_]+\((?:.+(?:, ?.+)*)?\)" with find(): an identifier
// followed by '(' and, later on the same line, a ')'.
bool LooksLikeFunction(std::string_view e) {
  size_t p = 0;
  if (p < e.size() && e[p] == '(') ++p;
  const size_t ident = p;
  while (p < e.size() && (std::isalnum(static_cast<unsigned char>(e[p])) || e[p] == '_')) ++p;
  if (p == ident || p >= e.size() || e[p] != '(') return false;
  for (++p; p < e.size() && e[p] != '\n'; ++p)
    if (e[p] == ')') return true;
  return false;
}

// extractDefault(value, placeholder): the placeholder for function defaults,
// else the text inside the first pair of quotes ("'(.*?)'"), else the text.
std::string ExtractDefault(std::string_view e, std::string_view placeholder) {
  if (LooksLikeFunction(e)) return std::string(placeholder);
  const size_t open = e.find('\'');
  if (open == std::string_view::npos) return std::string(e);
  const size_t close = e.find('\'', open + 1);
  if (close == std::string_view::npos) return std::string(e);  // Matcher.group fails: no default
  return std::string(e.substr(open + 1, close - open - 1));
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// Converts a default literal the way the named mapper and the column's value
// converter do; false when Debezium ends up with no default.
bool WriteDefault(JsonWriter& w, std::string_view mapper, const ColumnCodec& c, std::string literal) {
  const ScalarCodec& s = c.scalar;
  if (mapper == "bool")
    return w.Bool(literal.size() == 4 && (literal[0] | 0x20) == 't' && (literal[1] | 0x20) == 'r' &&
                  (literal[2] | 0x20) == 'u' && (literal[3] | 0x20) == 'e'),
           true;
  if (mapper == "bit") {
    if (literal.size() == 1 && s.kind == Kind::kBit) return w.Bool(literal == "1"), true;
    return s.kind == Kind::kBits && WriteScalar(w, s, literal) == Outcome::kOk;
  }
  if (mapper == "varbit") return WriteScalar(w, s, literal) == Outcome::kOk;
  if (mapper == "uuid") {
    if (!IsUuid(literal)) return false;
    for (char& ch : literal) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    Str(w, literal);
    return true;
  }
  if (mapper == "numeric") {  // a VariableScaleDecimal default is a Struct: dropped (KAFKA-12694)
    if (s.kind != Kind::kDecimal) return false;
    if (!literal.empty() && literal[0] == '.') literal.insert(literal.begin(), '0');
    NumericText n;
    return ParseNumeric(literal, &n) && n.special == NumericText::Special::kNone &&
           WriteDecimal(w, n, s.scale) == Outcome::kOk;
  }
  if (mapper == "date") {
    DateTimeText t;
    if (!ParseDateTime(literal, &t) || t.special != DateTimeText::Special::kNone) return false;
    w.Int(static_cast<int32_t>(t.epoch_days));
    return true;
  }
  if (mapper == "timestamp") {  // the wall clock (toLocalDateTime)
    DateTimeText t;
    if (!ParseDateTime(literal, &t) || t.special != DateTimeText::Special::kNone) return false;
    w.Int64(s.kind == Kind::kTimestampMillis ? EpochMillis(t.epoch_days, t.micros_of_day)
                                             : JavaEpochMicros(t.epoch_days, t.micros_of_day));
    return true;
  }
  if (mapper == "timestamptz") {
    DateTimeText t;
    if (!ParseDateTime(literal, &t) || t.special != DateTimeText::Special::kNone) return false;
    int64_t days, tod;
    ToUtc(t, &days, &tod);
    std::string iso;  // keeps the literal's offset (OffsetDateTime.toZonedDateTime)
    AppendZoned(days, tod, s.scale, t.offset_seconds, &iso);
    Str(w, iso);
    return true;
  }
  return WriteScalar(w, s, literal) == Outcome::kOk;  // ints, floats, strings, time, interval
}

// The Connect schema "default" of the column as JSON text (empty if none):
// PostgresDefaultValueConverter's parse of the default expression (the type
// row's DefaultRule) followed by the column's value conversion.
std::string RenderDefaultJson(const std::optional<std::string>& default_expression, const ColumnCodec& c) {
  if (!default_expression || c.is_array || c.row == nullptr || !c.row->default_rule.present) return {};
  const std::string_view e = *default_expression;
  const DefaultRule& rule = c.row->default_rule;
  if (rule.null_aware && e.starts_with("NULL::")) return {};
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  if (!WriteDefault(w, c.row->name, c, ExtractDefault(e, rule.placeholder))) return {};
  return std::string(buf.GetString(), buf.GetSize());
}

// JdbcValueConverters / PostgresValueConverter fallbacks: what a NULL in a
// NOT NULL column without default becomes (convertValue's `fallback`).
std::string FallbackJson(const ColumnCodec& c) {
  if (c.is_array) return "[]";
  switch (c.scalar.kind) {
    case Kind::kBool:
    case Kind::kBit: return "false";
    case Kind::kFloat32:
    case Kind::kFloat64: return "0.0";
    case Kind::kString:
    case Kind::kAlwaysNull:
    case Kind::kBytes:
    case Kind::kBits: return "\"\"";
    case Kind::kHstore: return "\"{}\"";
    case Kind::kPoint:
    case Kind::kGeometry: return "null";
    case Kind::kDecimal:
    case Kind::kMoney: return "\"AA==\"";
    case Kind::kVariableDecimal: return "{\"scale\":0,\"value\":\"AA==\"}";
    case Kind::kZonedTimestamp: return "\"1970-01-01T00:00:00Z\"";
    case Kind::kZonedTime: return "\"00:00:00Z\"";
    default: return "0";
  }
}

}  // namespace

ColumnCodec ResolveCodec(const ColumnType& type, bool not_null, const std::optional<std::string>& default_expression) {
  ColumnCodec c = ResolveCodec(type);
  c.optional = !not_null;
  if (c.scalar.kind == Kind::kSkip) return c;
  c.default_json = RenderDefaultJson(default_expression, c);
  c.null_json = !c.default_json.empty() ? c.default_json : c.optional ? "null" : FallbackJson(c);
  return c;
}

// ---------------------------------------------------------------- schemas --

namespace {

constexpr std::string_view kVariableDecimalFields =
    R"([{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}])";

constexpr std::string_view kPointFields =
    R"([{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},)"
    R"({"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}])";
constexpr std::string_view kGeometryFields =
    R"([{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}])";

void NameVersion(JsonWriter& w, std::string_view name) {
  Key(w, "name");
  Str(w, name);
  Key(w, "version");
  w.Int(1);
}

// The schema body of a scalar (type .. parameters), as JsonConverter.asJsonSchema
// orders keys: type, fields, optional, name, version, doc, parameters.
void ScalarSchemaBody(JsonWriter& w, const ScalarCodec& s, bool optional, const std::string& allowed) {
  auto type = [&](std::string_view t) {
    Key(w, "type");
    Str(w, t);
  };
  auto opt = [&] {
    Key(w, "optional");
    w.Bool(optional);
  };
  switch (s.kind) {
    case Kind::kVariableDecimal:
      type("struct");
      Key(w, "fields");
      w.RawValue(kVariableDecimalFields.data(), kVariableDecimalFields.size(), rapidjson::kArrayType);
      opt();
      NameVersion(w, "io.debezium.data.VariableScaleDecimal");
      Key(w, "doc");
      Str(w, "Variable scaled decimal");
      return;
    case Kind::kDecimal:
    case Kind::kMoney: {
      type("bytes");
      opt();
      NameVersion(w, "org.apache.kafka.connect.data.Decimal");
      Key(w, "parameters");
      w.StartObject();
      Key(w, "scale");
      Str(w, std::to_string(s.scale));
      if (s.kind == Kind::kDecimal) {
        Key(w, "connect.decimal.precision");
        Str(w, std::to_string(s.precision));
      }
      w.EndObject();
      return;
    }
    case Kind::kPoint:
      type("struct");
      Key(w, "fields");
      w.RawValue(kPointFields.data(), kPointFields.size(), rapidjson::kArrayType);
      opt();
      NameVersion(w, "io.debezium.data.geometry.Point");
      Key(w, "doc");
      Str(w, "Geometry (POINT)");
      return;
    case Kind::kGeometry: {
      const bool geography = s.logical == Logical::kGeography;
      type("struct");
      Key(w, "fields");
      w.RawValue(kGeometryFields.data(), kGeometryFields.size(), rapidjson::kArrayType);
      opt();
      NameVersion(w, geography ? "io.debezium.data.geometry.Geography" : "io.debezium.data.geometry.Geometry");
      Key(w, "doc");
      Str(w, geography ? "Geography" : "Geometry");
      return;
    }
    case Kind::kBits:
      type("bytes");
      opt();
      NameVersion(w, "io.debezium.data.Bits");
      Key(w, "parameters");
      w.StartObject();
      Key(w, "length");
      Str(w, std::to_string(s.precision));
      w.EndObject();
      return;
    default: break;
  }
  std::string_view t = "string", name;
  switch (s.kind) {
    case Kind::kBool:
    case Kind::kBit: t = "boolean"; break;
    case Kind::kInt16: t = "int16"; break;
    case Kind::kInt32: t = "int32"; break;
    case Kind::kInt64: t = "int64"; break;
    case Kind::kFloat32: t = "float"; break;
    case Kind::kFloat64: t = "double"; break;
    case Kind::kBytes: t = "bytes"; break;
    case Kind::kDate: t = "int32", name = "io.debezium.time.Date"; break;
    case Kind::kTimeMillis: t = "int32", name = "io.debezium.time.Time"; break;
    case Kind::kTimeMicros: t = "int64", name = "io.debezium.time.MicroTime"; break;
    case Kind::kTimestampMillis: t = "int64", name = "io.debezium.time.Timestamp"; break;
    case Kind::kTimestampMicros: t = "int64", name = "io.debezium.time.MicroTimestamp"; break;
    case Kind::kZonedTimestamp: name = "io.debezium.time.ZonedTimestamp"; break;
    case Kind::kZonedTime: name = "io.debezium.time.ZonedTime"; break;
    case Kind::kInterval: t = "int64", name = "io.debezium.time.MicroDuration"; break;
    case Kind::kHstore: name = "io.debezium.data.Json"; break;
    default: break;
  }
  switch (s.logical) {
    case Logical::kUuid: name = "io.debezium.data.Uuid"; break;
    case Logical::kJson: name = "io.debezium.data.Json"; break;
    case Logical::kXml: name = "io.debezium.data.Xml"; break;
    case Logical::kEnum: name = "io.debezium.data.Enum"; break;
    case Logical::kLtree: name = "io.debezium.data.Ltree"; break;
    case Logical::kTsvector: name = "io.debezium.data.Tsvector"; break;
    case Logical::kGeography:
    case Logical::kNone: break;
  }
  type(t);
  opt();
  if (!name.empty()) NameVersion(w, name);
  if (s.logical == Logical::kEnum) {
    Key(w, "parameters");
    w.StartObject();
    Key(w, "allowed");
    Str(w, allowed);
    w.EndObject();
  }
}

}  // namespace

void WriteFieldSchema(JsonWriter& w, const ColumnCodec& c, std::string_view field_name) {
  w.StartObject();
  if (c.is_array) {
    Key(w, "type");
    Str(w, "array");
    Key(w, "items");
    w.StartObject();
    ScalarSchemaBody(w, c.scalar, /*optional=*/true, c.enum_allowed);
    w.EndObject();
    Key(w, "optional");
    w.Bool(c.optional);
  } else {
    ScalarSchemaBody(w, c.scalar, c.optional, c.enum_allowed);
  }
  if (!c.default_json.empty()) {
    Key(w, "default");
    w.RawValue(c.default_json.data(), c.default_json.size(), rapidjson::kObjectType);
  }
  Key(w, "field");
  Str(w, field_name);
  w.EndObject();
}

}  // namespace timevault::wire
