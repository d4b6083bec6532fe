// The column-type descriptor: what capture (schema cache) and replay
// (catalog) read from pg_attribute/pg_type about a column's type, and all the
// type table (type_table.h) needs to map it. Domains are resolved to their
// base type (type_oid, type_modifier, type_name describe the base type;
// is_domain says it was one), as Debezium maps them. A plain value type.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"

namespace timevault::wire {

struct ColumnType {
  uint32_t type_oid = 0;                 // pg_type.oid of the (base) type
  int32_t type_modifier = -1;            // atttypmod (domain: typtypmod); -1 when the type has none
  std::string type_name;                 // pg_type.typname ("int4", "_text", "mood")
  char type_category = 'U';              // pg_type.typcategory: 'E' enum, 'A' array, 'N' numeric ...
  uint32_t element_type_oid = 0;         // arrays: pg_type.typelem
  std::string element_type_name;         // arrays: the element type's typname ("" if unknown)
  char element_type_category = 0;        // arrays: the element type's typcategory (0 if unknown)
  std::vector<std::string> enum_labels;  // enums (and arrays of enums): labels in sort order, if read
  bool is_domain = false;                // the declared type is a domain over type_oid
};

// The catalog query for the columns of one table; $1 is read as a regclass:
// the table's oid or its (quoted, qualified) name, '"s"."t"'. One row per
// column pgoutput sends, in attnum order (no dropped, no generated columns):
// attname, then the eight fields ParseColumnTypeRow takes.
extern const std::string_view kColumnTypesSql;

// Builds a ColumnType from fields 1..8 of a kColumnTypesSql row (text
// format): typid, typmod, typname, typcategory, typelem, element typname,
// element typcategory, is_domain ("t"; empty or "f": not a domain).
// InvalidArgument if a number does not parse.
Result<ColumnType> ParseColumnTypeRow(const std::array<std::string_view, 8>& fields);

}  // namespace timevault::wire
