// What capture knows about one captured table: built from a pgoutput Relation
// message plus the catalog (primary key, NOT NULL, type names, enum labels,
// numeric precision), refreshed on every Relation message so that
// ALTER TABLE mid-stream is picked up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace timevault::capture {

// Well-known Postgres type OIDs (pg_type.dat).
namespace oid {
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kChar = 18;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kJson = 114;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTime = 1083;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kInterval = 1186;
inline constexpr uint32_t kTimetz = 1266;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kUuid = 2950;
inline constexpr uint32_t kJsonb = 3802;
inline constexpr uint32_t kInt2Array = 1005;
inline constexpr uint32_t kInt4Array = 1007;
inline constexpr uint32_t kInt8Array = 1016;
inline constexpr uint32_t kTextArray = 1009;
inline constexpr uint32_t kVarcharArray = 1015;
}  // namespace oid

struct ColumnSchema {
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;            // atttypmod: -1 when the type has none
  std::string type_name;                 // pg_type.typname ("int4", "_text", "mood")
  char type_category = 'U';              // pg_type.typcategory: 'E' enum, 'A' array, 'N' numeric ...
  uint32_t element_type_oid = 0;         // arrays: pg_type.typelem
  std::vector<std::string> enum_labels;  // enums (and arrays of enums): labels in sort order
  // The declared type is a domain (type_oid etc. describe its base type).
  bool is_domain = false;
  // A stored generated column: only in snapshot rows (pgoutput does not send
  // it on Postgres 15; Debezium's snapshot SELECT * reads it).
  bool generated = false;
  // Part of the message key: the primary key, or, for a table without one,
  // the columns of its unique index (Debezium's PgOutputMessageDecoder falls
  // back to readTableUniqueIndices).
  bool primary_key = false;
  // 1-based position in the primary key (pg_index.indkey order, as JDBC's
  // getPrimaryKeys KEY_SEQ): Debezium orders the key's fields by it, not by
  // column position. 0 = unknown (then column order is used).
  int primary_key_position = 0;
  bool not_null = false;          // attnotnull: the Connect schema's optional=false
  bool replica_identity = false;  // pgoutput key flag
  // The column default exactly as JDBC's COLUMN_DEF reports it, i.e.
  // pg_get_expr(pg_attrdef.adbin, adrelid) ("0", "'abc'::text",
  // "nextval('t_id_seq'::regclass)"); nullopt when the column has no default.
  // Debezium turns it into the Connect schema "default" and JsonConverter then
  // writes that default in place of NULL values.
  std::optional<std::string> default_expression;
};

struct TableSchema {
  uint32_t relation_oid = 0;
  std::string schema;
  std::string table;
  char replica_identity = 'd';
  std::vector<ColumnSchema> columns;  // attnum order, no dropped columns; generated ones only in snapshot schemas
  int tenant_column = -1;             // index into columns, -1 if the table has none
  std::string topic;                  // <prefix>.<schema>.<table>

  bool HasPrimaryKey() const {
    for (const auto& c : columns)
      if (c.primary_key) return true;
    return false;
  }
};

}  // namespace timevault::capture
