// The live database's catalog as the apply sees it: the captured tables that
// carry the tenant column, their columns and primary keys, and the foreign
// keys between them (docs/replay.md "Diff and apply").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "timevault/core/pg.h"
#include "timevault/core/status.h"
#include "timevault/wire/column_type.h"
#include "timevault/wire/to_text.h"

namespace timevault::replay {

// The type table's replay direction (wire/to_text.h), as replay names it.
using PgColumnType = wire::ColumnType;
using wire::AppendCopyField;
using wire::AppendCopyText;
using wire::DebeziumLoss;
using wire::kRowImageParseFlags;
using wire::ValueConverter;

struct CatalogColumn {
  std::string name;
  std::string quoted;  // the quoted identifier
  PgColumnType type;
  bool captured = false;  // row images carry Debezium's value and it converts back (wire::HasJsonInverse)
  bool in_pk = false;
  std::string sql_type;  // format_type of the declared type ("interval", "my_domain"), for messages
  char identity = 0;     // pg_attribute.attidentity: 'a' ALWAYS, 'd' BY DEFAULT, 0 none
};

struct CatalogTable {
  std::string name;       // "schema.table", as capture names it
  std::string qualified;  // "schema"."table", quoted for SQL
  uint32_t oid = 0;
  std::vector<CatalogColumn> columns;  // attnum order, no dropped or generated columns
  std::vector<std::string> generated;  // stored generated columns: Postgres computes them, an apply never writes them
  std::vector<size_t> pk;              // indexes into columns, in key order
  size_t tenant = 0;                   // index of the tenant column
};

// A foreign key with at least one side in the catalog.
struct ForeignKey {
  std::string name;
  std::string child;                                 // table name ("schema.table")
  std::string parent;                                // table name
  std::string child_sql, parent_sql;                 // the tables, quoted for SQL
  std::vector<std::string> child_cols, parent_cols;  // quoted column names, in key order
  bool deferrable = false;
};

struct Catalog {
  std::map<std::string, CatalogTable> tables;  // by name: captured tables with the tenant column
  std::vector<ForeignKey> foreign_keys;        // with the child or the parent in `tables`
};

// Reads the catalog: tables of `publication` (FOR ALL TABLES: every user
// table) that have `tenant_column` and a primary key, partition roots only.
Result<Catalog> LoadCatalog(pg::PgConn& conn, const std::string& tenant_column, const std::string& publication);

// The tables an operation covers: `requested` (each must be in the catalog:
// NotFound naming it otherwise, with a reason when it exists but lacks the
// tenant column or a primary key) or, when empty, all of them; sorted.
Result<std::vector<std::string>> ScopeTables(pg::PgConn& conn, const Catalog& catalog,
                                             const std::vector<std::string>& requested,
                                             const std::string& tenant_column);

// Orders `tables` so that every table comes after the tables it references
// through non-deferrable foreign keys (parents first). Self-references and
// deferrable keys do not constrain the order. Tables on a cycle of
// non-deferrable keys are appended in name order; `cycle` (if not null) gets
// their names.
std::vector<std::string> ParentsFirst(const Catalog& catalog, const std::vector<std::string>& tables,
                                      std::vector<std::string>* cycle);

}  // namespace timevault::replay
