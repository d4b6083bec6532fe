// Parsers for the Postgres text output format of column values (what pgoutput
// sends for 't' columns with the server defaults DateStyle=ISO and
// IntervalStyle=postgres), producing the numbers Debezium derives from them.
// Pure functions; thread-safe. Each returns false on malformed input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace timevault::wire {

// Debezium's stand-ins for Postgres 'infinity' / '-infinity' (pgjdbc's
// PGStatement.DATE_POSITIVE_INFINITY read as microseconds, and the LocalDate
// constants of PostgresValueConverter).
inline constexpr int64_t kPosInfinityMicros = 9223372036825200000LL;
inline constexpr int64_t kNegInfinityMicros = -9223372036832400000LL;

// numeric: sign, digits before and after the point. `special` is set for
// NaN / Infinity / -Infinity (then the digit views are empty).
struct NumericText {
  enum class Special { kNone, kNaN, kPosInf, kNegInf };
  Special special = Special::kNone;
  bool negative = false;
  std::string_view int_digits;
  std::string_view frac_digits;
};
bool ParseNumeric(std::string_view text, NumericText* out);

// date ("2024-02-29", "0044-03-15 BC", "infinity") as days since 1970-01-01.
bool ParseDate(std::string_view text, int64_t* epoch_days);

// time ("13:45:00", "24:00:00", "07:05:09.123456", also "07:05") as
// microseconds after midnight.
bool ParseTimeOfDay(std::string_view text, int64_t* micros);

// A date-time as wall-clock fields plus an optional UTC offset. Kept as days
// and time of day, never as one count of microseconds: Postgres timestamps
// reach 294276-12-31, past the last int64 microsecond (294247-01-10).
struct DateTimeText {
  int64_t epoch_days = 0;     // the date (wall clock), days since 1970-01-01
  int64_t micros_of_day = 0;  // [0, 86400000000]
  bool has_offset = false;
  int32_t offset_seconds = 0;  // east of UTC
  enum class Special { kNone, kPosInf, kNegInf };
  Special special = Special::kNone;
};
// timestamp / timestamptz text ("2024-01-02 03:04:05.678+01", "... BC",
// "infinity", "2024-01-02" for defaults). Years beyond +-99999999 are refused
// (Postgres stops at 5874897 AD / 4713 BC).
bool ParseDateTime(std::string_view text, DateTimeText* out);

// The instant `t` names, shifted to UTC (offset removed): days and time of day.
void ToUtc(const DateTimeText& t, int64_t* epoch_days, int64_t* micros_of_day);

// Epoch microseconds of a wall-clock time read as UTC, computed as Debezium's
// MicroTimestamp does (Conversions.toEpochMicros:
// TimeUnit.SECONDS.toMicros(epochSecond) + microOfSecond): the seconds'
// product saturates at Long.MAX_VALUE/MIN_VALUE and the sum wraps as Java's
// long addition does. Exact up to 294247-01-10 04:00:54.775807; later times
// give what Debezium writes (Long.MAX_VALUE, or wrapped negatives), never UB.
int64_t JavaEpochMicros(int64_t epoch_days, int64_t micros_of_day);

// Epoch milliseconds, floored (Instant.toEpochMilli): exact for every
// timestamp Postgres accepts.
int64_t EpochMillis(int64_t epoch_days, int64_t micros_of_day);

// timetz ("13:45:00.5+05:30") normalised to UTC, microseconds after midnight
// in [0, 86400000000).
bool ParseTimeTz(std::string_view text, int64_t* utc_micros);

// interval in IntervalStyle=postgres ("1 year 2 mons -3 days +04:05:06.5"),
// as Debezium's io.debezium.time.MicroDuration: months count 365.25/12 days,
// computed in IEEE double exactly as MicroDuration.durationMicros does.
bool ParseIntervalMicros(std::string_view text, int64_t* micros);

// bytea hex output ("\x0a0b") decoded into *out (replacing its content).
bool DecodeByteaHex(std::string_view text, std::string* out);

// One element of a one-dimensional array literal.
struct ArrayElement {
  bool is_null = false;
  std::string_view text;  // points into the input or into *scratch
};
// Parses "{1,NULL,\"a,b\",\"q\\\"\"}". Quoted elements are unescaped into
// *scratch (reserved so views stay valid). Sets *multi_dim for nested arrays
// (then elements hold the top-level sub-array texts).
bool ParseArray(std::string_view text, std::vector<ArrayElement>* elements, std::string* scratch, bool* multi_dim);

// Formats days since epoch as ISO-8601 year-month-day the way Java's
// ISO_LOCAL_DATE does ("2024-01-02", "-0043-03-15", "+10000-01-01").
void AppendIsoDate(int64_t epoch_days, std::string* out);

}  // namespace timevault::wire
