// The published tables capture refuses, computed from the catalog alone, so
// capture, `timevault check` and /v1/health name the same ones.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/pg.h"
#include "timevault/core/status.h"

namespace timevault::capture {

struct RefusedTable {
  std::string schema;
  std::string table;
  std::string topic;   // the topic it would have
  std::string reason;  // one line, naming the other tables
};

// The tables of `publication` whose topic name ("<topic_prefix>.<schema>.<table>"
// after Debezium's sanitising, debezium.h SanitizeTopicName) is another
// published table's too: all of them are refused (which one came first would
// depend on event order); the others stream. Sorted by schema, table.
Result<std::vector<RefusedTable>> FindRefusedTables(pg::PgConn& conn, const std::string& publication,
                                                    const std::string& topic_prefix);

// Tables Debezium 3.6.1's Postgres connector always leaves out
// (PostgresConnectorConfig.SystemTablesPredicate): schemas pg_catalog and
// information_schema and those starting with "pg_temp", and tables named
// spatial_ref_sys (PostGIS's reference table) in any schema; names compared
// lower-cased but the pg_temp prefix. capture leaves them out too: no
// topic, no snapshot, no streamed events.
bool IsDebeziumSystemTable(std::string_view schema, std::string_view table);

// "schema"."table" as Postgres quotes it.
std::string DisplayName(const pg::PgConn& conn, const RefusedTable& t);

}  // namespace timevault::capture
