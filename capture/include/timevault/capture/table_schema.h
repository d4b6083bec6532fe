// What capture knows about one captured table: built from a pgoutput Relation
// message plus the catalog (primary key, NOT NULL, type names, enum labels,
// numeric precision), refreshed on every Relation message so that
// ALTER TABLE mid-stream is picked up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "timevault/wire/column_type.h"
#include "timevault/wire/oid.h"

namespace timevault::capture {

// Type OIDs: wire/oid.h.
namespace oid = ::timevault::wire::oid;

// One column: its type (the wire descriptor: type_oid, type_modifier,
// type_name, type_category, element_type_oid, enum_labels, is_domain; domains
// resolved to their base type) and what capture needs beyond it.
struct ColumnSchema : wire::ColumnType {
  std::string name;
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
