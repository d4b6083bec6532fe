// Debezium JSON -> Postgres text (replay's direction of the type table,
// type_table.h): the inverse of to_json.h, so that replay can write the row
// images the store keeps back into Postgres.
//
// The mapping is exact wherever Debezium's is; where Debezium loses
// information (interval months, timetz offsets, varbit length, NULLs replaced
// by column defaults, ...) DebeziumLoss names it, and the column comes back
// from capture's fidelity text instead (docs/compat.md §10, docs/replay.md).
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

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "timevault/core/status.h"
#include "timevault/wire/column_type.h"
#include "timevault/wire/type_table.h"

namespace timevault::wire {

// The rapidjson parse flags for stored row images (see above).
inline constexpr unsigned kRowImageParseFlags = rapidjson::kParseNumbersAsStringsFlag;

// Whether Debezium's JSON of this type can be turned back into Postgres text
// at all (the type table knows it by OID and capture writes it). Columns of
// other types (point, tsvector, bytea[], interval[], composite types, ...)
// are left out of row images, and extension types (hstore, citext, ...) come
// back only from capture's fidelity text: replay must not convert them.
bool HasJsonInverse(const ColumnType& type);

// Why Debezium's value of a column of this type cannot be restored exactly
// in general (docs/compat.md §10.2; the type table's loss, ColumnCodec::loss),
// or nullopt when it can: interval, timetz, varbit, name, xml, unconstrained
// numeric, money, hstore and extension types, domains over arrays, and every
// type capture leaves out. Such a column comes back only from capture's fidelity
// text (docs/replay.md "Fidelity"); without one, an apply refuses. Losses that
// depend on the value (numeric NaN, multi-dimensional arrays) are not types:
// capture sends a text for those values.
std::optional<std::string_view> DebeziumLoss(const ColumnType& type);

// The conversion of one column, resolved once and used for every row.
class ValueConverter {
 public:
  // InvalidArgument for a type without a JSON inverse (!HasJsonInverse).
  static Result<ValueConverter> Resolve(const ColumnType& type);

  // The Postgres text input for one JSON value; nullopt = SQL NULL (JSON
  // null). InvalidArgument naming the column type and the value when it is
  // not what capture writes for the type, or is Debezium's unchanged-TOAST
  // placeholder (the store must have resolved it: design invariant 5).
  Result<std::optional<std::string>> ToText(const rapidjson::Value& value) const;

  // Appends the value as one field of COPY's text format (see AppendCopyField)
  // without the delimiter. On error nothing is appended.
  Status AppendCopy(const rapidjson::Value& value, std::string* out) const;

  const ColumnType& type() const { return type_; }

 private:
  ValueConverter() = default;
  Status Convert(const rapidjson::Value& value, std::string* out, bool* is_null) const;

  ColumnType type_;
  ColumnCodec codec_;
};

// ValueConverter::Resolve(type) and ToText(value) in one call.
Result<std::optional<std::string>> ToPostgresText(const ColumnType& type, const rapidjson::Value& value);

// Appends `text` as one field of COPY's text format (without the delimiter):
// backslash, newline, carriage return, tab, backspace, form feed and
// vertical tab are backslash-escaped; nullopt becomes \N. The text must be
// in the connection's client_encoding (row images are UTF-8: use UTF8).
void AppendCopyField(std::string* out, const std::optional<std::string>& text);
// The same for a non-NULL value.
void AppendCopyText(std::string* out, std::string_view text);

}  // namespace timevault::wire
