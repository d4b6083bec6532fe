// SchemaCache: the TableSchema of every relation capture has seen, built from
// pgoutput Relation messages and enriched from the catalog (primary key,
// NOT NULL, type names and categories, enum labels). Catalog facts are read
// at the time the Relation message is processed; the column list and types
// come from the message itself, so they match the WAL being decoded.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "timevault/capture/pgoutput.h"
#include "timevault/capture/table_schema.h"
#include "timevault/core/pg.h"
#include "timevault/core/status.h"

namespace timevault::capture {

class SchemaCache {
 public:
  // `catalog` must outlive the cache and not be in a transaction owned by others.
  SchemaCache(pg::PgConn* catalog, std::string tenant_column, std::string topic_prefix);

  // Replaces the schema of `relation.oid` from a Relation message.
  Status Update(const pgoutput::Relation& relation);
  // Loads a table straight from the catalog; `with_generated`: with its
  // stored generated columns (the initial snapshot, as Debezium's SELECT *).
  Result<TableSchema> Load(uint32_t relation_oid, bool with_generated = false);

  const TableSchema* Find(uint32_t relation_oid) const;

 private:
  Result<std::vector<ColumnSchema>> ReadColumns(uint32_t relation_oid, std::string* schema, std::string* table,
                                                char* replica_identity, std::vector<uint32_t>* declared_types,
                                                bool with_generated);
  void Finish(TableSchema* t) const;

  pg::PgConn* catalog_;
  std::string tenant_column_;
  std::string topic_prefix_;
  std::unordered_map<uint32_t, TableSchema> tables_;
};

}  // namespace timevault::capture
