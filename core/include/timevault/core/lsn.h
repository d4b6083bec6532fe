// Lsn: a Postgres WAL position (XLogRecPtr), written "X/Y" in hex as Postgres
// prints it (high 32 bits / low 32 bits). A distinct type so an LSN never
// mixes with a Kafka offset or a time. Trivially copyable, ordered.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace timevault {

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  // Parses "16/B374D848". Returns nullopt for anything else (empty halves,
  // non-hex digits, more than 8 hex digits per half, missing slash).
  static std::optional<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }  // InvalidXLogRecPtr is 0
  std::string ToString() const;

  constexpr auto operator<=>(const Lsn&) const = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace timevault
