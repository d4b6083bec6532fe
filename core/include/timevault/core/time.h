// CommitTime (microseconds since the Unix epoch, UTC) and the Clock interface
// through which every component reads the time, so tests can control it.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace timevault {

class CommitTime {
 public:
  constexpr CommitTime() = default;
  constexpr explicit CommitTime(int64_t micros) : micros_(micros) {}

  // Postgres TimestampTz counts microseconds from 2000-01-01 00:00:00 UTC.
  static constexpr int64_t kPostgresEpochOffsetMicros = 946684800LL * 1000000LL;
  static constexpr CommitTime FromPostgres(int64_t pg_micros) {
    return CommitTime(pg_micros + kPostgresEpochOffsetMicros);
  }

  // Parses RFC 3339 / ISO 8601 UTC or with offset ("2026-11-27T03:20:57.123456Z",
  // "2026-11-27 03:20:57+01:00", "2026-11-27"). A bare number is rejected: it
  // is too easy to mistake seconds for microseconds.
  // Impossible dates (2026-02-31) are refused.
  static std::optional<CommitTime> Parse(std::string_view text);
  // For times a person types (PITR targets, exports, audit filters): a date,
  // a time and a zone ("Z" or an offset) are all required, so a zone-less
  // time is refused rather than silently read as UTC.
  static std::optional<CommitTime> ParseStrict(std::string_view text);
  // ParseStrict, except that a date and time without a zone is read at
  // `zone_offset_s` (seconds east of UTC) when the operator stated one
  // (api.time_zone, --tz; ParseUtcOffset). nullopt: refused as above.
  static std::optional<CommitTime> ParseStrict(std::string_view text, std::optional<int32_t> zone_offset_s);

  constexpr int64_t micros() const { return micros_; }
  constexpr int64_t millis() const { return micros_ / 1000; }
  // "2026-11-27T03:20:57.123456Z"
  std::string ToIso() const;

  constexpr auto operator<=>(const CommitTime&) const = default;

 private:
  int64_t micros_ = 0;
};

// The zone an operator states for zone-less times (api.time_zone, --tz):
// "UTC", "Z", or a fixed offset "+HH:MM" / "-HH:MM" (up to 23:59). Seconds
// east of UTC; nullopt for anything else. Named zones ("Europe/Paris") are
// not accepted: across a daylight-saving change a local time is ambiguous or
// does not exist, which for a PITR target is the footgun a stated zone is
// meant to remove.
std::optional<int32_t> ParseUtcOffset(std::string_view text);

// Source of the current time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual CommitTime Now() const = 0;
};

// The system's real-time clock; a process-wide instance.
const Clock& SystemClock();

}  // namespace timevault
