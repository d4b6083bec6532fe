// Debezium JSON values -> Postgres text input: the inverse of capture's type
// mapping (docs/compat.md §7), so that replay can write the row images the
// store keeps back into Postgres.
//
// The mapping is exact wherever Debezium's is; where Debezium loses
// information (interval months, timetz offsets, varbit length, NULLs replaced
// by column defaults, ...) the result is the closest value Postgres can be
// given, and docs/compat.md §10 "Restore fidelity" lists every such case.
//
// Values are RapidJSON values (rapidjson::Value, i.e. UTF-8 with the default
// MemoryPoolAllocator) taken from a parsed row image. Parse row images with
// kRowImageParseFlags: numbers then stay the exact text capture wrote. A DOM
// parsed with rapidjson::kParseFullPrecisionFlag works as well (doubles are
// then correctly rounded, so float4/float8 stay exact); rapidjson's default
// flags are not correctly rounded and can move a float8 by one ulp. Number
// types (int, date, time, timestamp, interval, ...) are accepted both as JSON
// numbers and as strings holding a JSON number; that is what makes the
// numbers-as-strings DOM work.
//
// Pure functions and immutable objects: thread-safe.
#pragma once

#include <rapidjson/document.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "timevault/core/status.h"
#include "timevault/wire/column_type.h"

namespace timevault::replay {

// The rapidjson parse flags for stored row images (see above).
inline constexpr unsigned kRowImageParseFlags = rapidjson::kParseNumbersAsStringsFlag;

// A column's type from the live catalog of the target table: the wire
// descriptor (wire/column_type.h). Domains are resolved to their base type
// (and the domain's typmod), exactly as capture's schema cache does;
// kColumnTypesSql reads all of it.
using PgColumnType = wire::ColumnType;

// The catalog query for the columns of one table; $1 is read as a regclass:
// the table's oid or its (quoted, qualified) name, '"s"."t"'. One row per
// column pgoutput sends, in attnum order (no dropped, no generated columns):
// attname, then the seven fields ParseColumnTypeRow takes.
extern const std::string_view kColumnTypesSql;

// Builds a PgColumnType from fields 1..7 of a kColumnTypesSql row (text
// format): typid, typmod, typname, typcategory, typelem, element typname,
// element typcategory. InvalidArgument if a number does not parse.
Result<PgColumnType> ParseColumnTypeRow(const std::array<std::string_view, 7>& fields);

// Whether capture emits values of this type at all. Columns of other types
// (point, hstore, tsvector, bytea[], interval[], ...) are left out of row
// images: replay cannot restore them and must not overwrite them.
bool IsCaptured(const PgColumnType& type);

// Why Debezium's value of a column of this type cannot be restored exactly
// in general (docs/compat.md §10.2), or nullopt when it can: interval,
// timetz, varbit, name, xml, unconstrained numeric, money, and every type
// capture leaves out. Such a column comes back only from capture's fidelity
// text (docs/replay.md "Fidelity"); without one, an apply refuses. Losses that
// depend on the value (numeric NaN, multi-dimensional arrays) are not types:
// capture sends a text for those values.
std::optional<std::string_view> DebeziumLoss(const PgColumnType& type);

// The conversion of one column, resolved once and used for every row.
class ValueConverter {
 public:
  // InvalidArgument for a type capture does not emit (!IsCaptured).
  static Result<ValueConverter> Resolve(const PgColumnType& type);

  // The Postgres text input for one JSON value; nullopt = SQL NULL (JSON
  // null). InvalidArgument naming the column type and the value when it is
  // not what capture writes for the type, or is Debezium's unchanged-TOAST
  // placeholder (the store must have resolved it: design invariant 5).
  Result<std::optional<std::string>> ToText(const rapidjson::Value& value) const;

  // Appends the value as one field of COPY's text format (see AppendCopyField)
  // without the delimiter. On error nothing is appended.
  Status AppendCopy(const rapidjson::Value& value, std::string* out) const;

  const PgColumnType& type() const { return type_; }

  // Implementation detail: the Debezium representation of the (element) type.
  enum class Kind : uint8_t;

 private:
  ValueConverter() = default;
  Status Convert(const rapidjson::Value& value, std::string* out, bool* is_null) const;

  PgColumnType type_;
  Kind kind_{};
  bool is_array_ = false;
  int32_t typmod_ = -1;
};

// ValueConverter::Resolve(type) and ToText(value) in one call.
Result<std::optional<std::string>> ToPostgresText(const PgColumnType& type, const rapidjson::Value& value);

// Appends `text` as one field of COPY's text format (without the delimiter):
// backslash, newline, carriage return, tab, backspace, form feed and
// vertical tab are backslash-escaped; nullopt becomes \N. The text must be
// in the connection's client_encoding (row images are UTF-8: use UTF8).
void AppendCopyField(std::string* out, const std::optional<std::string>& text);
// The same for a non-NULL value.
void AppendCopyText(std::string* out, std::string_view text);

}  // namespace timevault::replay
