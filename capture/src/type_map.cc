// Debezium's default Postgres type mapping: resolving a column's mapping and
// writing its Connect schema (values are in type_values.cc). Each rule cites
// the Debezium class it reproduces; docs/compat.md lists what was verified where.
#include "type_map.h"

#include <string>
#include <vector>

namespace timevault::capture::internal {
namespace {


// pgjdbc TypeInfoCache.getScale for the datetime types: typmod, or 6 when unset.
int32_t DatetimeScale(int32_t typmod) { return typmod < 0 ? 6 : typmod; }

// Scalar mapping of a base type (PostgresValueConverter.schemaBuilder and the
// JDBC types pgjdbc reports). `typmod` is the column's (arrays: the array's).
ScalarCodec ResolveScalar(uint32_t type_oid, int32_t typmod) {
  ScalarCodec s;
  switch (type_oid) {
    case oid::kBool: s.kind = Kind::kBool; break;
    case oid::kBytea: s.kind = Kind::kBytes; break;
    case oid::kChar:
    case oid::kText:
    case oid::kBpchar:
    case oid::kVarchar:
    case oid::kInet:
    case oid::kCidr:
    case oid::kMacaddr:
    case oid::kMacaddr8:
    case oid::kInt4Range:
    case oid::kNumRange:
    case oid::kTsRange:
    case oid::kTsTzRange:
    case oid::kDateRange:
    case oid::kInt8Range: s.kind = Kind::kString; break;
    case oid::kName: s.kind = Kind::kAlwaysNull; break;
    case oid::kInt2: s.kind = Kind::kInt16; break;
    case oid::kInt4: s.kind = Kind::kInt32; break;
    case oid::kInt8:
    case oid::kOid: s.kind = Kind::kInt64; break;
    case oid::kFloat4: s.kind = Kind::kFloat32; break;
    case oid::kFloat8: s.kind = Kind::kFloat64; break;
    case oid::kJson:
    case oid::kJsonb: s.kind = Kind::kString, s.logical = Logical::kJson; break;
    case oid::kXml: s.kind = Kind::kString, s.logical = Logical::kXml; break;
    case oid::kUuid: s.kind = Kind::kString, s.logical = Logical::kUuid; break;
    case oid::kMoney: s.kind = Kind::kMoney, s.scale = 2; break;
    case oid::kDate: s.kind = Kind::kDate; break;
    case oid::kTime: s.kind = DatetimeScale(typmod) <= 3 ? Kind::kTimeMillis : Kind::kTimeMicros; break;
    case oid::kTimestamp: s.kind = DatetimeScale(typmod) <= 3 ? Kind::kTimestampMillis : Kind::kTimestampMicros; break;
    case oid::kTimestamptz: s.kind = Kind::kZonedTimestamp, s.scale = DatetimeScale(typmod); break;
    case oid::kTimetz: s.kind = Kind::kZonedTime; break;
    case oid::kInterval: s.kind = Kind::kInterval; break;
    case oid::kBit:
    case oid::kVarbit: {
      const int32_t length = typmod < 0 ? INT32_MAX : typmod;  // pgjdbc unknownLength
      s.kind = length > 1 ? Kind::kBits : Kind::kBit;
      s.precision = length;
      break;
    }
    case oid::kNumeric:
      if (typmod < 0) {
        s.kind = Kind::kVariableDecimal;
      } else {
        s.kind = Kind::kDecimal;
        s.precision = ((typmod - 4) >> 16) & 0xFFFF;
        s.scale = (typmod - 4) & 0xFFFF;
      }
      break;
    default: break;
  }
  return s;
}

// Element type of the array types Debezium maps (PostgresValueConverter).
uint32_t ArrayElementOid(uint32_t array_oid) {
  switch (array_oid) {
    case oid::kBoolArray: return oid::kBool;
    case oid::kInt2Array: return oid::kInt2;
    case oid::kInt4Array: return oid::kInt4;
    case oid::kInt8Array: return oid::kInt8;
    case oid::kOidArray: return oid::kOid;
    case oid::kFloat4Array: return oid::kFloat4;
    case oid::kFloat8Array: return oid::kFloat8;
    case oid::kTextArray: return oid::kText;
    case oid::kVarcharArray: return oid::kVarchar;
    case oid::kBpcharArray: return oid::kBpchar;
    case oid::kCharArray: return oid::kChar;
    case oid::kNumericArray: return oid::kNumeric;
    case oid::kDateArray: return oid::kDate;
    case oid::kTimeArray: return oid::kTime;
    case oid::kTimestampArray: return oid::kTimestamp;
    case oid::kTimestamptzArray: return oid::kTimestamptz;
    case oid::kUuidArray: return oid::kUuid;
    case oid::kJsonArray: return oid::kJson;
    case oid::kJsonbArray: return oid::kJsonb;
    case oid::kInetArray: return oid::kInet;
    case oid::kCidrArray: return oid::kCidr;
    case oid::kMacaddrArray: return oid::kMacaddr;
    case oid::kMacaddr8Array: return oid::kMacaddr8;
    case oid::kInt4RangeArray: return oid::kInt4Range;
    case oid::kNumRangeArray: return oid::kNumRange;
    case oid::kTsRangeArray: return oid::kTsRange;
    case oid::kTsTzRangeArray: return oid::kTsTzRange;
    case oid::kDateRangeArray: return oid::kDateRange;
    case oid::kInt8RangeArray: return oid::kInt8Range;
    default: return 0;
  }
}

std::string JoinLabels(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += ',';
    out += l;
  }
  return out;
}

// UnchangedToastedReplicationMessageColumn: the placeholder shape by type name.
ToastForm ResolveToast(const ColumnSchema& col, const ColumnCodec& c) {
  const std::string& t = col.type_name;
  if (c.is_array) {
    if (t == "_text" || t == "_varchar" || t == "_json" || t == "_jsonb") return ToastForm::kStringList;
    if (t == "_int4" || t == "_date" || t == "_int8") return ToastForm::kByteList;
    return ToastForm::kNull;
  }
  if (c.scalar.kind == Kind::kString) return ToastForm::kString;
  if (c.scalar.kind == Kind::kBytes) return ToastForm::kBytes;
  return ToastForm::kNull;
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
    case Kind::kDecimal:
    case Kind::kMoney: return "\"AA==\"";
    case Kind::kVariableDecimal: return "{\"scale\":0,\"value\":\"AA==\"}";
    case Kind::kZonedTimestamp: return "\"1970-01-01T00:00:00Z\"";
    case Kind::kZonedTime: return "\"00:00:00Z\"";
    default: return "0";
  }
}

// Does Debezium's JSON give back the column's Postgres text? docs/compat.md
// §7.8 lists each rule and §10.2 what it loses.
Fidelity ResolveFidelity(const ColumnSchema& col, const ColumnCodec& c) {
  if (c.scalar.kind == Kind::kSkip) return Fidelity::kLossy;       // left out of the payload
  if (col.is_domain && c.is_array) return Fidelity::kLossy;        // Debezium maps no domain over an array
  if (c.scalar.logical == Logical::kXml) return Fidelity::kLossy;  // the declaration
  if (c.scalar.kind == Kind::kHstore) return Fidelity::kLossy;     // key order and escaping
  // citext, ltree, isbn: Debezium's string is their text, but they are
  // extension types (found by name, OIDs differ per database) that replay's
  // type table does not know: their text rides in the header.
  if (c.from_extension) return Fidelity::kLossy;
  switch (c.scalar.kind) {
    case Kind::kAlwaysNull:       // name: always null
    case Kind::kVariableDecimal:  // display scale (stripTrailingZeros)
    case Kind::kMoney:            // lc_monetary, fraction digits
    case Kind::kZonedTime:        // the offset
    case Kind::kInterval:         // months as 30.4375 days, normalised fields
      return Fidelity::kLossy;
    case Kind::kBits:  // varbit (and bit without length): leading zeros
      if (col.type_oid == oid::kVarbit || col.type_modifier < 0) return Fidelity::kLossy;
      break;
    default: break;
  }
  if (c.is_array) return Fidelity::kByValue;  // dimensions and bounds
  switch (c.scalar.kind) {
    case Kind::kDecimal:          // NaN, +-Infinity
    case Kind::kTimestampMicros:  // past the last int64 microsecond
    case Kind::kBit:              // an empty varbit(1)
      return Fidelity::kByValue;
    default: return Fidelity::kExact;
  }
}

// Extension types Debezium's TypeRegistry finds by name (their OIDs differ
// per database): PostgresValueConverter's hstore / citext / ltree / isbn cases.
bool ResolveExtension(const ColumnSchema& col, ScalarCodec* s) {
  if (col.type_category == 'A') return false;  // arrays of them: not mapped here
  const std::string& t = col.type_name;
  if (t == "hstore") {
    s->kind = Kind::kHstore;
  } else if (t == "citext" || t == "isbn") {
    s->kind = Kind::kString;
  } else if (t == "ltree") {
    s->kind = Kind::kString, s->logical = Logical::kLtree;
  } else {
    return false;
  }
  return true;
}

}  // namespace

ColumnCodec ResolveCodec(const ColumnSchema& col) {
  ColumnCodec c;
  c.optional = !col.not_null;
  if (ResolveExtension(col, &c.scalar)) {
    c.from_extension = true;
  } else if (const uint32_t elem = ArrayElementOid(col.type_oid); elem != 0) {
    c.is_array = true;
    c.scalar = ResolveScalar(elem, col.type_modifier);
  } else if (col.type_category == 'E') {
    c.scalar.kind = Kind::kString;
    c.scalar.logical = Logical::kEnum;
  } else if (col.type_category == 'A' && !col.enum_labels.empty()) {
    c.is_array = true;
    c.scalar.kind = Kind::kString;
    c.scalar.logical = Logical::kEnum;
  } else {
    c.scalar = ResolveScalar(col.type_oid, col.type_modifier);
  }
  if (c.scalar.logical == Logical::kEnum) c.enum_allowed = JoinLabels(col.enum_labels);
  c.fidelity = ResolveFidelity(col, c);
  if (c.scalar.kind == Kind::kSkip) return c;
  c.toast = ResolveToast(col, c);
  c.default_json = RenderDefaultJson(col, c);
  c.null_json = !c.default_json.empty() ? c.default_json : c.optional ? "null" : FallbackJson(c);
  return c;
}

// ---------------------------------------------------------------- schemas --

namespace {

void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void Key(JsonWriter& w, std::string_view s) { w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

constexpr std::string_view kVariableDecimalFields =
    R"([{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}])";

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

}  // namespace timevault::capture::internal
