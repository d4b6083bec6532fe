// The type table (type_table.h): one row per Postgres type Debezium maps,
// and the resolution of a column's mapping from it. Each rule cites the
// Debezium class it reproduces; docs/compat.md §7 lists what was verified
// where, §7.8 and §10 what is lossy and why.
#include "timevault/wire/type_table.h"

#include <climits>
#include <string>
#include <vector>

#include "timevault/wire/oid.h"

namespace timevault::wire {
namespace {

// Losses that hold for every value of a type (docs/compat.md §10.2).
constexpr std::string_view kLeftOut = "Debezium leaves the type out of row images";
constexpr std::string_view kDomainOverArray = "a domain over an array is not Debezium's array";
constexpr std::string_view kUnconstrainedNumeric = "unconstrained numeric loses its display scale";
constexpr std::string_view kVarbitLength = "varbit loses its length";
constexpr std::string_view kExtension =
    "an extension type (its OID differs per database): its text rides in the fidelity header";

constexpr std::string_view kPointStruct = "point is Debezium's Point struct (x, y as doubles, WKB)";

constexpr DefaultRule Default(std::string_view placeholder, bool null_aware) { return {true, placeholder, null_aware}; }

using K = Kind;
using L = Logical;
using T = ToastForm;

// PostgresValueConverter.schemaBuilder / converter by the JDBC type pgjdbc
// reports; the array types of PostgresValueConverter's array cases;
// UnchangedToastedReplicationMessageColumn's placeholders by type name;
// PostgresDefaultValueConverter's default mappers.
// clang-format off
constexpr TypeRow kRows[] = {
  // oid            array_oid               name           kind                 logical     array_toast     loss, default
  {oid::kBool,       oid::kBoolArray,        "bool",        K::kBool,            L::kNone,   T::kNull,       "", Default("false", true)},
  {oid::kBytea,      0,                      "bytea",       K::kBytes,           L::kNone,   T::kNull,       "", {}},
  {oid::kChar,       oid::kCharArray,        "char",        K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kName,       0,                      "name",        K::kAlwaysNull,      L::kNone,   T::kNull,       "Debezium writes null for name", {}},
  {oid::kInt8,       oid::kInt8Array,        "int8",        K::kInt64,           L::kNone,   T::kByteList,   "", Default("0", true)},
  {oid::kInt2,       oid::kInt2Array,        "int2",        K::kInt16,           L::kNone,   T::kNull,       "", Default("0", true)},
  {oid::kInt4,       oid::kInt4Array,        "int4",        K::kInt32,           L::kNone,   T::kByteList,   "", Default("0", true)},
  {oid::kText,       oid::kTextArray,        "text",        K::kString,          L::kNone,   T::kStringList, "", Default("", false)},
  {oid::kOid,        oid::kOidArray,         "oid",         K::kInt64,           L::kNone,   T::kNull,       "", {}},
  {oid::kJson,       oid::kJsonArray,        "json",        K::kString,          L::kJson,   T::kStringList, "", Default("{}", false)},
  {oid::kXml,        0,                      "xml",         K::kString,          L::kXml,    T::kNull,       "xml loses its declaration", Default("", false)},
  {oid::kCidr,       oid::kCidrArray,        "cidr",        K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kFloat4,     oid::kFloat4Array,      "float4",      K::kFloat32,         L::kNone,   T::kNull,       "", Default("0.0", true)},
  {oid::kFloat8,     oid::kFloat8Array,      "float8",      K::kFloat64,         L::kNone,   T::kNull,       "", Default("0.0", true)},
  {oid::kMacaddr8,   oid::kMacaddr8Array,    "macaddr8",    K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kMoney,      0,                      "money",       K::kMoney,           L::kNone,   T::kNull,       "money is Debezium's Decimal read back with lc_monetary", {}},
  {oid::kMacaddr,    oid::kMacaddrArray,     "macaddr",     K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kInet,       oid::kInetArray,        "inet",        K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kBpchar,     oid::kBpcharArray,      "bpchar",      K::kString,          L::kNone,   T::kNull,       "", Default("", false)},
  {oid::kVarchar,    oid::kVarcharArray,     "varchar",     K::kString,          L::kNone,   T::kStringList, "", Default("", false)},
  {oid::kDate,       oid::kDateArray,        "date",        K::kDate,            L::kNone,   T::kByteList,   "", Default("1970-01-01", false)},
  {oid::kTime,       oid::kTimeArray,        "time",        K::kTimeMicros,      L::kNone,   T::kNull,       "", Default("00:00", false)},
  {oid::kTimestamp,  oid::kTimestampArray,   "timestamp",   K::kTimestampMicros, L::kNone,   T::kNull,       "", Default("1970-01-01", false)},
  {oid::kTimestamptz, oid::kTimestamptzArray, "timestamptz", K::kZonedTimestamp, L::kNone,   T::kNull,       "", Default("1970-01-01", false)},
  {oid::kInterval,   0,                      "interval",    K::kInterval,        L::kNone,   T::kNull,       "interval months become 30.4375 days and fields are normalised", Default("epoch", false)},
  {oid::kTimetz,     0,                      "timetz",      K::kZonedTime,       L::kNone,   T::kNull,       "timetz loses its offset", {}},
  {oid::kBit,        0,                      "bit",         K::kBits,            L::kNone,   T::kNull,       "", Default("00", false)},
  {oid::kVarbit,     0,                      "varbit",      K::kBits,            L::kNone,   T::kNull,       "", Default("0", false)},
  {oid::kNumeric,    oid::kNumericArray,     "numeric",     K::kDecimal,         L::kNone,   T::kNull,       "", Default("0.0", true)},
  {oid::kUuid,       oid::kUuidArray,        "uuid",        K::kString,          L::kUuid,   T::kNull,       "", Default("00000000-0000-0000-0000-000000000000", false)},
  {oid::kJsonb,      oid::kJsonbArray,       "jsonb",       K::kString,          L::kJson,   T::kStringList, "", Default("{}", false)},
  {oid::kInt4Range,  oid::kInt4RangeArray,   "int4range",   K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kNumRange,   oid::kNumRangeArray,    "numrange",    K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kTsRange,    oid::kTsRangeArray,     "tsrange",     K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kTsTzRange,  oid::kTsTzRangeArray,   "tstzrange",   K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kDateRange,  oid::kDateRangeArray,   "daterange",   K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kInt8Range,  oid::kInt8RangeArray,   "int8range",   K::kString,          L::kNone,   T::kNull,       "", {}},
  {oid::kTsvector,   0,                      "tsvector",    K::kString,          L::kTsvector, T::kNull,     "", {}},
  {oid::kPoint,      0,                      "point",       K::kPoint,           L::kNone,   T::kNull,       kPointStruct, {}},
  // Extension types Debezium's TypeRegistry finds by name (their OIDs differ
  // per database): PostgresValueConverter's hstore / citext / ltree / isbn
  // cases. Arrays of them are not mapped.
  {0,                0,                      "hstore",      K::kHstore,          L::kNone,   T::kNull,       "hstore becomes a JSON object: key order and escaping", {}},
  {0,                0,                      "citext",      K::kString,          L::kNone,   T::kNull,       kExtension, {}},
  {0,                0,                      "isbn",        K::kString,          L::kNone,   T::kNull,       kExtension, {}},
  {0,                0,                      "ltree",       K::kString,          L::kLtree,  T::kNull,       kExtension, {}},
  // PostGIS (PostgresValueConverter's geometry / geography cases, by name).
  {0,                0,                      "geometry",    K::kGeometry,        L::kNone,   T::kNull,       kExtension, {}},
  {0,                0,                      "geography",   K::kGeometry,        L::kGeography, T::kNull,    kExtension, {}},
};
// clang-format on

const TypeRow* ByOid(uint32_t type_oid) {
  if (type_oid == 0) return nullptr;
  for (const TypeRow& r : kRows)
    if (r.oid == type_oid) return &r;
  return nullptr;
}

const TypeRow* ByArrayOid(uint32_t array_oid) {
  if (array_oid == 0) return nullptr;
  for (const TypeRow& r : kRows)
    if (r.array_oid == array_oid) return &r;
  return nullptr;
}

const TypeRow* ExtensionByName(std::string_view name) {
  for (const TypeRow& r : kRows)
    if (r.oid == 0 && r.name == name) return &r;
  return nullptr;
}

// Arrays of the extension types Debezium maps arrays of (PostgresValueConverter's
// hstore / citext / ltree array cases; tests/compat).
const TypeRow* ExtensionArrayByName(const ColumnType& type) {
  if (type.type_category != 'A') return nullptr;
  // The element's name when the catalog query read it, else the array type's
  // name without Postgres's leading '_' ("_hstore").
  std::string_view e = type.element_type_name;
  if (e.empty() && type.type_name.starts_with('_')) e = std::string_view(type.type_name).substr(1);
  if (e != "hstore" && e != "citext" && e != "ltree") return nullptr;
  return ExtensionByName(e);
}

// pgjdbc TypeInfoCache.getScale for the datetime types: typmod, or 6 when unset.
int32_t DatetimeScale(int32_t typmod) { return typmod < 0 ? 6 : typmod; }

// The row's mapping refined by the column's typmod (arrays: the array's).
ScalarCodec Refine(const TypeRow& row, int32_t typmod) {
  ScalarCodec s;
  s.kind = row.kind;
  s.logical = row.logical;
  s.oid = row.oid;
  switch (row.kind) {
    case Kind::kTimeMicros:
      if (DatetimeScale(typmod) <= 3) s.kind = Kind::kTimeMillis;
      break;
    case Kind::kTimestampMicros:
      if (DatetimeScale(typmod) <= 3) s.kind = Kind::kTimestampMillis;
      break;
    case Kind::kZonedTimestamp: s.scale = DatetimeScale(typmod); break;
    case Kind::kMoney: s.scale = 2; break;
    case Kind::kBits: {
      const int32_t length = typmod < 0 ? INT32_MAX : typmod;  // pgjdbc unknownLength
      s.kind = length > 1 ? Kind::kBits : Kind::kBit;
      s.precision = length;
      break;
    }
    case Kind::kDecimal:
      if (typmod < 0) {
        s.kind = Kind::kVariableDecimal;
      } else {
        s.precision = ((typmod - 4) >> 16) & 0xFFFF;
        s.scale = (typmod - 4) & 0xFFFF;
      }
      break;
    default: break;
  }
  return s;
}

std::string JoinLabels(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += ',';
    out += l;
  }
  return out;
}

// Why Debezium's JSON of the column does not give back its Postgres text,
// for every value ("" if it does for some): docs/compat.md §7.8, §10.2.
std::string_view Loss(const ColumnType& type, const ColumnCodec& c) {
  if (c.scalar.kind == Kind::kSkip) return kLeftOut;
  if (type.is_domain && c.is_array) return kDomainOverArray;  // Debezium maps no domain over an array
  if (c.row != nullptr && !c.row->loss.empty()) return c.row->loss;
  if (c.scalar.kind == Kind::kVariableDecimal) return kUnconstrainedNumeric;  // stripTrailingZeros
  // varbit (and bit without length): leading zeros.
  if (c.scalar.kind == Kind::kBits && (c.scalar.oid == oid::kVarbit || type.type_modifier < 0)) return kVarbitLength;
  return {};
}

Fidelity ResolveFidelity(const ColumnCodec& c) {
  if (!c.loss.empty()) return Fidelity::kLossy;
  if (c.is_array) return Fidelity::kByValue;  // dimensions and bounds
  switch (c.scalar.kind) {
    case Kind::kDecimal:          // NaN, +-Infinity
    case Kind::kTimestampMicros:  // past the last int64 microsecond
    case Kind::kBit:              // an empty varbit(1)
      return Fidelity::kByValue;
    default: return Fidelity::kExact;
  }
}

// UnchangedToastedReplicationMessageColumn: the placeholder shape by type.
ToastForm ResolveToast(const ColumnCodec& c) {
  if (c.is_array) return c.row != nullptr ? c.row->array_toast : ToastForm::kNull;
  if (c.scalar.kind == Kind::kString) return ToastForm::kString;
  if (c.scalar.kind == Kind::kBytes) return ToastForm::kBytes;
  return ToastForm::kNull;
}

}  // namespace

std::span<const TypeRow> TypeTable() { return kRows; }

ColumnCodec ResolveCodec(const ColumnType& type) {
  ColumnCodec c;
  const bool enum_elements = type.element_type_category == 'E' || !type.enum_labels.empty();
  if (const TypeRow* ext = type.type_category == 'A' ? nullptr : ExtensionByName(type.type_name)) {
    c.row = ext;
    c.scalar = Refine(*ext, type.type_modifier);
    c.from_extension = true;
  } else if (const TypeRow* elem_ext = ExtensionArrayByName(type)) {
    c.row = elem_ext;
    c.is_array = true;
    c.scalar = Refine(*elem_ext, type.type_modifier);
    c.from_extension = true;
  } else if (const TypeRow* elem = ByArrayOid(type.type_oid)) {
    c.row = elem;
    c.is_array = true;
    c.scalar = Refine(*elem, type.type_modifier);
  } else if (type.type_category == 'E') {
    c.scalar.kind = Kind::kString;
    c.scalar.logical = Logical::kEnum;
  } else if (type.type_category == 'A' && enum_elements) {
    c.is_array = true;
    c.scalar.kind = Kind::kString;
    c.scalar.logical = Logical::kEnum;
  } else if (const TypeRow* row = ByOid(type.type_oid)) {
    c.row = row;
    c.scalar = Refine(*row, type.type_modifier);
  }
  if (c.scalar.logical == Logical::kEnum) c.enum_allowed = JoinLabels(type.enum_labels);
  c.loss = Loss(type, c);
  c.fidelity = ResolveFidelity(c);
  if (c.scalar.kind == Kind::kSkip) return c;
  c.toast = ResolveToast(c);
  c.null_json = "null";  // optional, no default (the capture overload refines it)
  return c;
}

std::string_view TypeNameForErrors(const ColumnType& type) {
  return type.type_name.empty() ? std::string_view("unknown type") : std::string_view(type.type_name);
}

}  // namespace timevault::wire
