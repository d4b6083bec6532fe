#include "timevault/capture/refusals.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "timevault/capture/debezium.h"

namespace timevault::capture {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool IsDebeziumSystemTable(std::string_view schema, std::string_view table) {
  const std::string s = Lower(schema);
  return s == "pg_catalog" || s == "information_schema" || schema.starts_with("pg_temp") ||
         Lower(table) == "spatial_ref_sys";
}

Result<std::vector<RefusedTable>> FindRefusedTables(pg::PgConn& conn, const std::string& publication,
                                                    const std::string& topic_prefix) {
  TV_ASSIGN_OR_RETURN(auto res, conn.ExecParams("SELECT schemaname, tablename FROM pg_publication_tables "
                                                "WHERE pubname = $1 ORDER BY 1, 2",
                                                {publication}));
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_topic;
  for (int r = 0; r < res.rows(); ++r) {
    std::string schema = res.GetString(r, 0), table = res.GetString(r, 1);
    if (IsDebeziumSystemTable(schema, table)) continue;
    by_topic[SanitizeTopicName(topic_prefix + "." + schema + "." + table)].emplace_back(std::move(schema),
                                                                                        std::move(table));
  }
  std::vector<RefusedTable> out;
  for (const auto& [topic, tables] : by_topic) {
    if (tables.size() < 2) continue;
    std::string names;
    for (const auto& [schema, table] : tables) {
      names += (names.empty() ? "" : " and ") + pg::QualifiedName(conn, schema, table);
    }
    for (const auto& [schema, table] : tables) {
      out.push_back({schema, table, topic, "tables " + names + " all map to topic " + topic});
    }
  }
  std::sort(out.begin(), out.end(), [](const RefusedTable& a, const RefusedTable& b) {
    return std::tie(a.schema, a.table) < std::tie(b.schema, b.table);
  });
  return out;
}

std::string DisplayName(const pg::PgConn& conn, const RefusedTable& t) {
  return pg::QualifiedName(conn, t.schema, t.table);
}

}  // namespace timevault::capture
