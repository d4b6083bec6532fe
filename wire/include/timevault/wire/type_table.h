// The type table: how Debezium's Postgres connector (3.6.1, default settings:
// decimal.handling.mode=precise, time.precision.mode=adaptive,
// binary.handling.mode=bytes, interval.handling.mode=numeric,
// hstore.handling.mode=json) maps each column type, as Kafka Connect's
// JsonConverter renders it, and what that mapping loses. One row per type in
// type_table.cc; both directions read it: Postgres text -> Debezium JSON
// (to_json.h, capture) and Debezium JSON -> Postgres text (to_text.h,
// replay). A new type is one row there plus its tests in tests/wire/.
//
// A ColumnCodec is resolved once per column and then used for every row; it
// is immutable and may be shared between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "timevault/wire/column_type.h"

namespace timevault::wire {

// The Debezium representation of a value (of an array: of its elements).
enum class Kind : uint8_t {
  kSkip,             // no Debezium mapping: the column is left out of schema and payload
  kBool,             // boolean
  kInt16,            // int16
  kInt32,            // int32
  kInt64,            // int64 (int8, oid)
  kFloat32,          // float; "NaN" / "Infinity" / "-Infinity" as strings
  kFloat64,          // double; same
  kString,           // string: the text itself (optionally a logical string type, see Logical)
  kAlwaysNull,       // string schema, value always null (Debezium reads `name` as unknown)
  kBytes,            // bytes (base64)
  kDecimal,          // org.apache.kafka.connect.data.Decimal (scale, precision): base64 two's complement
  kVariableDecimal,  // io.debezium.data.VariableScaleDecimal struct {scale, value}
  kMoney,            // Decimal with scale 2, no precision parameter
  kDate,             // io.debezium.time.Date (int32 days since 1970-01-01)
  kTimeMillis,       // io.debezium.time.Time (int32 ms after midnight)
  kTimeMicros,       // io.debezium.time.MicroTime (int64 us after midnight)
  kTimestampMillis,  // io.debezium.time.Timestamp (int64 ms, wall clock read as UTC)
  kTimestampMicros,  // io.debezium.time.MicroTimestamp (int64 us)
  kZonedTimestamp,   // io.debezium.time.ZonedTimestamp (ISO string, UTC)
  kZonedTime,        // io.debezium.time.ZonedTime (ISO string "HH:mm:ss[.f]Z")
  kInterval,         // io.debezium.time.MicroDuration (int64 us, months as 30.4375 days)
  kBit,              // bit(1) / varbit(1): boolean
  kBits,             // io.debezium.data.Bits (bytes, little-endian BitSet)
  kHstore,           // io.debezium.data.Json string: the hstore as a JSON object (hstore.handling.mode=json)
  kPoint,            // io.debezium.data.geometry.Point struct {x, y, wkb, srid}
  kGeometry,         // io.debezium.data.geometry.Geometry / Geography struct {wkb, srid} (PostGIS, hex EWKB)
};

enum class Logical : uint8_t { kNone, kUuid, kJson, kXml, kEnum, kLtree, kTsvector, kGeography };

// What Debezium emits for an unchanged-TOAST ('u') column of this type
// (UnchangedToastedReplicationMessageColumn; contract.h kUnavailableValue).
enum class ToastForm : uint8_t {
  kNull,        // the conversion fails and Debezium leaves the field unset
  kString,      // "__debezium_unavailable_value"
  kBytes,       // the placeholder's UTF-8 bytes, base64
  kStringList,  // ["__debezium_unavailable_value"]
  kByteList,    // the placeholder's bytes as numbers: [95,95,100,...]
};

// Whether Debezium's JSON of a column gives back Postgres's value exactly
// (docs/compat.md §7.8): if not, capture carries the column's Postgres text
// in the kTextHeader of each change event (contract.h).
enum class Fidelity : uint8_t {
  kExact,    // the JSON restores the same text
  kLossy,    // always carried: left out by Debezium, or lossy for the type (ColumnCodec::loss says why)
  kByValue,  // carried when the value is one Debezium cannot hold (LossyValue in to_json.h)
};

// The default-value rule of a type (PostgresDefaultValueConverter): the
// placeholder a function default becomes, and whether "NULL::..." means no
// default. Types without a rule get no Connect schema default.
struct DefaultRule {
  bool present = false;
  std::string_view placeholder;
  bool null_aware = false;
};

// One row of the type table.
struct TypeRow {
  uint32_t oid = 0;         // pg_type.oid; 0 for an extension type (found by name: its OID differs per database)
  uint32_t array_oid = 0;   // its array type when Debezium maps arrays of it; 0 otherwise
  std::string_view name;    // pg_type.typname
  Kind kind = Kind::kSkip;  // before the typmod refines it (time, timestamp, numeric, bit: see ResolveCodec)
  Logical logical = Logical::kNone;
  ToastForm array_toast = ToastForm::kNull;  // the unchanged-TOAST placeholder of its array type
  std::string_view loss;                     // why Debezium's value is lossy for every value of it; "" if exact
  DefaultRule default_rule;
};

// The whole table, for tests and documentation.
std::span<const TypeRow> TypeTable();

// The scalar part of a column's mapping (for arrays: of the elements).
struct ScalarCodec {
  Kind kind = Kind::kSkip;
  Logical logical = Logical::kNone;
  uint32_t oid = 0;       // the row's type (element type for arrays); 0 for enums and extension types
  int32_t scale = 0;      // Decimal scale; ZonedTimestamp fractional digits
  int32_t precision = 0;  // Decimal precision; Bits length
};

struct ColumnCodec {
  ScalarCodec scalar;
  bool is_array = false;
  bool optional = true;
  ToastForm toast = ToastForm::kNull;
  Fidelity fidelity = Fidelity::kExact;
  std::string_view loss;         // kLossy: why Debezium's value of the column is not exact (static text)
  bool from_extension = false;   // an extension type mapped by its name (hstore, citext, ltree, isbn)
  const TypeRow* row = nullptr;  // the table row (of the element type for arrays); null for enums and kSkip
  std::string enum_allowed;      // comma-joined labels, for Logical::kEnum
  std::string default_json;      // the Connect schema "default" as JSON text; empty if none
  std::string null_json;         // what a NULL value becomes (default, fallback or null)
};

// The mapping of a column of this type: optional, no default (what replay
// needs). Capture's overload adds the column's nullability and its default
// expression as JDBC's COLUMN_DEF reports it (pg_get_expr of pg_attrdef),
// which give the Connect schema "default" and what a NULL becomes.
ColumnCodec ResolveCodec(const ColumnType& type);
ColumnCodec ResolveCodec(const ColumnType& type, bool not_null, const std::optional<std::string>& default_expression);

// Postgres type name for error messages ("int4", "numeric").
std::string_view TypeNameForErrors(const ColumnType& type);

}  // namespace timevault::wire
