// Small, allocation-light helpers that reproduce the exact text Java and
// Kafka Connect produce for Debezium events: base64, Double/Float.toString,
// BigInteger.toByteArray, proleptic Gregorian day arithmetic and
// String.hashCode. Used by the type table's JSON direction (to_json.cc) and
// by capture's envelope encoder; pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "timevault/core/civil.h"

namespace timevault::wire {

// Appends the standard base64 (RFC 4648 alphabet, '=' padding, no line breaks)
// of `bytes` to *out: what Jackson writes for a Kafka Connect BYTES value.
void AppendBase64(std::string_view bytes, std::string* out);

// Java's Double.toString / Float.toString (JDK 19+ shortest-repr algorithm):
// "1.5", "100.0", "0.001", "1.0E7", "1.0E-5", "-0.0". Finite values only.
// `buf` must hold at least 32 bytes; returns the written text.
std::string_view FormatJavaDouble(double value, char* buf);
std::string_view FormatJavaFloat(float value, char* buf);

// Appends BigInteger.toByteArray() of the integer whose decimal magnitude is
// `digits` (ASCII digits, leading zeros allowed, may be empty for zero):
// minimal big-endian two's complement, zero is {0x00}.
void AppendTwosComplement(std::string_view digits, bool negative, std::string* out);

// Calendar arithmetic lives in core (DaysFromCivil, CivilFromDays).
using ::timevault::CivilFromDays;
using ::timevault::DaysFromCivil;

// Floor division and modulo (the divisor is positive).
constexpr int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }
constexpr int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

// java.lang.String.hashCode() of the UTF-16 form of a UTF-8 string.
int32_t JavaStringHash(std::string_view utf8);

}  // namespace timevault::wire
