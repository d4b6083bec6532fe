#include "capture/schema_cache.h"

#include <charconv>

#include "timevault/capture/debezium.h"

namespace timevault::capture {
namespace {

// One row per live column, in attnum order (pgoutput's order); stored
// generated columns only when $2 (Debezium's snapshot reads them with
// SELECT *; pgoutput on Postgres 15 does not send them).
// Domains are resolved to their base type, as Debezium maps them.
constexpr const char* kColumnsSql = R"SQL(
WITH key_index AS (
  -- The message key: the primary key, else the first unique index without
  -- expressions or predicate (as Debezium falls back to unique indices).
  SELECT i.indkey::int2[] AS cols FROM pg_index i
  WHERE i.indrelid = $1 AND (i.indisprimary OR (i.indisunique AND i.indpred IS NULL AND 0 <> ALL (i.indkey::int2[])))
  ORDER BY i.indisprimary DESC, i.indexrelid LIMIT 1)
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS typid,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       a.attnotnull,
       bt.typname, bt.typcategory, bt.typelem,
       coalesce((SELECT k.ord FROM key_index, unnest(key_index.cols) WITH ORDINALITY AS k(attnum, ord)
                 WHERE k.attnum = a.attnum), 0) AS key_position,
       n.nspname, c.relname, c.relreplident,
       (SELECT string_agg(e.enumlabel, chr(31) ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE bt.oid END) AS labels,
       a.atttypid AS declared_typid,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       t.typtype = 'd' AS is_domain,
       a.attgenerated <> '' AS generated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND (a.attgenerated = '' OR $2::bool)
ORDER BY a.attnum
)SQL";

uint32_t ParseU32(std::string_view s) {
  uint32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

int32_t ParseI32(std::string_view s) {
  int32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::vector<std::string> SplitLabels(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\x1f', start);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

SchemaCache::SchemaCache(pg::PgConn* catalog, std::string tenant_column, std::string topic_prefix)
    : catalog_(catalog), tenant_column_(std::move(tenant_column)), topic_prefix_(std::move(topic_prefix)) {}

Result<std::vector<ColumnSchema>> SchemaCache::ReadColumns(uint32_t oid, std::string* schema, std::string* table,
                                                           char* replica_identity,
                                                           std::vector<uint32_t>* declared_types, bool with_generated) {
  TV_ASSIGN_OR_RETURN(auto res,
                      catalog_->ExecParams(kColumnsSql, {std::to_string(oid), with_generated ? "true" : "false"}));
  std::vector<ColumnSchema> cols;
  cols.reserve(static_cast<size_t>(res.rows()));
  for (int r = 0; r < res.rows(); ++r) {
    ColumnSchema c;
    c.name = res.GetString(r, 0);
    c.type_oid = ParseU32(res.Get(r, 1));
    c.type_modifier = ParseI32(res.Get(r, 2));
    c.not_null = res.Get(r, 3) == "t";
    c.type_name = res.GetString(r, 4);
    c.type_category = res.Get(r, 5).empty() ? 'U' : res.Get(r, 5)[0];
    c.element_type_oid = ParseU32(res.Get(r, 6));
    c.primary_key_position = ParseI32(res.Get(r, 7));
    c.primary_key = c.primary_key_position > 0;
    if (!res.IsNull(r, 13)) c.default_expression = res.GetString(r, 13);
    c.is_domain = res.Get(r, 14) == "t";
    c.generated = res.Get(r, 15) == "t";
    if (!res.IsNull(r, 11)) c.enum_labels = SplitLabels(res.Get(r, 11));
    if (declared_types) declared_types->push_back(ParseU32(res.Get(r, 12)));
    cols.push_back(std::move(c));
    if (r == 0) {
      *schema = res.GetString(r, 8);
      *table = res.GetString(r, 9);
      *replica_identity = res.Get(r, 10).empty() ? 'd' : res.Get(r, 10)[0];
    }
  }
  return cols;
}

void SchemaCache::Finish(TableSchema* t) const {
  t->tenant_column = -1;
  for (size_t i = 0; i < t->columns.size(); ++i) {
    if (t->columns[i].name == tenant_column_) t->tenant_column = static_cast<int>(i);
  }
  t->topic = SanitizeTopicName(topic_prefix_ + "." + t->schema + "." + t->table);
}

Result<TableSchema> SchemaCache::Load(uint32_t oid, bool with_generated) {
  TableSchema t;
  t.relation_oid = oid;
  TV_ASSIGN_OR_RETURN(t.columns, ReadColumns(oid, &t.schema, &t.table, &t.replica_identity, nullptr, with_generated));
  if (t.columns.empty()) return NotFound("relation " + std::to_string(oid) + " has no columns or does not exist");
  Finish(&t);
  return t;
}

Status SchemaCache::Update(const pgoutput::Relation& rel) {
  TableSchema t;
  t.relation_oid = rel.oid;
  t.schema = rel.schema;
  t.table = rel.name;
  t.replica_identity = rel.replica_identity;
  std::string cat_schema, cat_table;
  char cat_ident = 'd';
  std::vector<uint32_t> declared;
  TV_ASSIGN_OR_RETURN(auto catalog, ReadColumns(rel.oid, &cat_schema, &cat_table, &cat_ident, &declared, false));
  t.columns.reserve(rel.columns.size());
  for (const auto& rc : rel.columns) {
    ColumnSchema c;
    bool matched = false;
    for (size_t i = 0; i < catalog.size() && !matched; ++i) {
      if (catalog[i].name == rc.name && declared[i] == rc.type_oid) {
        c = catalog[i];
        matched = true;
      }
    }
    // The message is authoritative for what the WAL holds: if the catalog has
    // moved on (column dropped or retyped since), keep the message's type.
    if (!matched) {
      c.name = rc.name;
      c.type_oid = rc.type_oid;
      c.type_modifier = rc.type_modifier;
    }
    c.replica_identity = rc.is_key;
    t.columns.push_back(std::move(c));
  }
  Finish(&t);
  tables_[rel.oid] = std::move(t);
  return Status::Ok();
}

const TableSchema* SchemaCache::Find(uint32_t oid) const {
  auto it = tables_.find(oid);
  return it == tables_.end() ? nullptr : &it->second;
}

}  // namespace timevault::capture
