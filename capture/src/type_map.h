// Debezium's default type mapping for the Postgres connector
// (decimal.handling.mode=precise, time.precision.mode=adaptive,
// binary.handling.mode=bytes, interval.handling.mode=numeric), as Kafka
// Connect's JsonConverter renders it: the Connect schema of a column and the
// JSON of a value given in Postgres text format.
//
// A ColumnCodec is resolved once per column (per Relation) and then used for
// every row; it is immutable and may be shared between threads.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "timevault/capture/table_schema.h"

namespace timevault::capture::internal {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

enum class Kind : uint8_t {
  kSkip,             // no Debezium mapping: the column is left out of schema and payload
  kBool,             // boolean
  kInt16,            // int16
  kInt32,            // int32
  kInt64,            // int64 (int8, oid)
  kFloat32,          // float
  kFloat64,          // double
  kString,           // string (optionally a logical string type, see Logical)
  kAlwaysNull,       // string schema, value always null (Debezium reads `name` as unknown)
  kBytes,            // bytes (base64)
  kDecimal,          // org.apache.kafka.connect.data.Decimal (scale, precision)
  kVariableDecimal,  // io.debezium.data.VariableScaleDecimal struct
  kMoney,            // Decimal with scale 2, no precision parameter
  kDate,             // io.debezium.time.Date (int32 days)
  kTimeMillis,       // io.debezium.time.Time (int32 ms)
  kTimeMicros,       // io.debezium.time.MicroTime (int64 us)
  kTimestampMillis,  // io.debezium.time.Timestamp (int64 ms)
  kTimestampMicros,  // io.debezium.time.MicroTimestamp (int64 us)
  kZonedTimestamp,   // io.debezium.time.ZonedTimestamp (ISO string, UTC)
  kZonedTime,        // io.debezium.time.ZonedTime (ISO string, UTC)
  kInterval,         // io.debezium.time.MicroDuration (int64 us)
  kBit,              // bit(1) / varbit(1): boolean
  kBits,             // io.debezium.data.Bits (bytes, little-endian)
  kHstore,           // io.debezium.data.Json string: the hstore as a JSON object (hstore.handling.mode=json)
};

enum class Logical : uint8_t { kNone, kUuid, kJson, kXml, kEnum, kLtree };

// What Debezium emits for an unchanged-TOAST ('u') column of this type.
enum class ToastForm : uint8_t {
  kNull,        // the conversion fails and Debezium leaves the field unset
  kString,      // "__debezium_unavailable_value"
  kBytes,       // the placeholder's UTF-8 bytes, base64
  kStringList,  // ["__debezium_unavailable_value"]
  kByteList,    // the placeholder's bytes as numbers: [95,95,100,...]
};

// Whether Debezium's JSON of a column gives back Postgres's value exactly
// (docs/compat.md §7.8): if not, capture carries the column's Postgres text
// in the kTextHeader of each change event.
enum class Fidelity : uint8_t {
  kExact,    // the JSON restores the same text
  kLossy,    // always carried: left out by Debezium, or lossy for the type
  kByValue,  // carried when the value is one Debezium cannot hold (LossyValue)
};

// The scalar part of a column's mapping (for arrays: of the elements).
struct ScalarCodec {
  Kind kind = Kind::kSkip;
  Logical logical = Logical::kNone;
  int32_t scale = 0;      // Decimal scale; ZonedTimestamp fractional digits
  int32_t precision = 0;  // Decimal precision; Bits length
};

struct ColumnCodec {
  ScalarCodec scalar;
  bool is_array = false;
  bool optional = true;
  ToastForm toast = ToastForm::kNull;
  Fidelity fidelity = Fidelity::kExact;
  bool from_extension = false;  // an extension type mapped by its name (hstore, citext, ltree, isbn)
  std::string enum_allowed;     // comma-joined labels, for Logical::kEnum
  std::string default_json;     // the Connect schema "default" as JSON text; empty if none
  std::string null_json;        // what a NULL value becomes (default, fallback or null)
};

// Resolves the mapping of one column, including its default value.
ColumnCodec ResolveCodec(const ColumnSchema& column);

// Writes the Connect field schema of the column (ending with "field": name).
void WriteFieldSchema(JsonWriter& w, const ColumnCodec& codec, std::string_view field_name);

// Writes the JSON of a value in Postgres text format. Returns false when the
// text cannot be parsed for the type (nothing usable was written).
bool WriteValue(JsonWriter& w, const ColumnCodec& codec, std::string_view text);

// For a kByValue column: is this (non-NULL) text one whose JSON loses
// information (numeric NaN/Infinity, a timestamp past the last int64
// microsecond, an empty varbit(1), a multi-dimensional array or one with
// explicit bounds, an array holding such an element)?
bool LossyValue(const ColumnCodec& codec, std::string_view text);

// Writes what a NULL becomes, and the unchanged-TOAST placeholder.
void WriteNull(JsonWriter& w, const ColumnCodec& codec);
void WriteToastPlaceholder(JsonWriter& w, const ColumnCodec& codec);

// The Connect schema "default" of the column as JSON text (empty if none):
// PostgresDefaultValueConverter's parse of ColumnSchema::default_expression
// followed by the column's value conversion.
std::string RenderDefaultJson(const ColumnSchema& column, const ColumnCodec& codec);

// Postgres type name for error messages ("int4", "numeric").
std::string_view TypeNameForErrors(const ColumnSchema& column);

}  // namespace timevault::capture::internal
