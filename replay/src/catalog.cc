#include "catalog.h"

#include <algorithm>
#include <array>
#include <functional>
#include <set>

namespace timevault::replay {
namespace {

// Partition roots and plain tables of the publication (every user table for
// FOR ALL TABLES) that carry the tenant column.
constexpr std::string_view kTablesSql = R"SQL(
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = $1 AND a.attnum > 0 AND NOT a.attisdropped)
  AND (coalesce((SELECT puballtables FROM pg_publication WHERE pubname = $2), false)
       OR EXISTS (SELECT 1 FROM pg_publication_tables pt
                  WHERE pt.pubname = $2 AND pt.schemaname = n.nspname AND pt.tablename = c.relname))
ORDER BY n.nspname, c.relname
)SQL";

constexpr std::string_view kPrimaryKeySql = R"SQL(
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::oid AND i.indisprimary
ORDER BY k.ord
)SQL";

constexpr std::string_view kForeignKeysSql = R"SQL(
SELECT con.conname, con.conrelid::text, con.confrelid::text, con.condeferrable,
       cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname,
       quote_ident(cn.nspname) || '.' || quote_ident(c.relname), quote_ident(pn.nspname) || '.' || quote_ident(p.relname),
       (SELECT string_agg(quote_ident(a.attname), chr(1) ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(n, ord)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n),
       (SELECT string_agg(quote_ident(a.attname), chr(1) ORDER BY k.ord)
          FROM unnest(con.confkey) WITH ORDINALITY AS k(n, ord)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0
)SQL";

// What kColumnTypesSql leaves out or resolves away: generated columns, the
// declared type's name, identity.
constexpr std::string_view kColumnExtrasSql = R"SQL(
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity, a.attgenerated
FROM pg_attribute a
WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
)SQL";

std::vector<std::string> SplitNames(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\x01') {
      out.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Status LoadColumns(pg::PgConn& conn, CatalogTable* table, const std::string& tenant_column) {
  TV_ASSIGN_OR_RETURN(auto cols, conn.ExecParams(wire::kColumnTypesSql, {std::to_string(table->oid)}));
  for (int r = 0; r < cols.rows(); ++r) {
    std::array<std::string_view, 8> fields;
    for (int f = 0; f < 8; ++f) fields[f] = cols.Get(r, f + 1);
    TV_ASSIGN_OR_RETURN(auto type, wire::ParseColumnTypeRow(fields));
    CatalogColumn c;
    c.name = cols.GetString(r, 0);
    c.quoted = conn.QuoteIdent(c.name);
    c.captured = wire::HasJsonInverse(type);
    c.type = std::move(type);
    if (c.name == tenant_column) table->tenant = table->columns.size();
    table->columns.push_back(std::move(c));
  }
  TV_ASSIGN_OR_RETURN(auto extras, conn.ExecParams(kColumnExtrasSql, {std::to_string(table->oid)}));
  for (int r = 0; r < extras.rows(); ++r) {
    auto name = extras.Get(r, 0);
    if (!extras.Get(r, 3).empty()) {
      table->generated.push_back(std::string(name));
      continue;
    }
    for (auto& c : table->columns) {
      if (c.name != name) continue;
      c.sql_type = extras.GetString(r, 1);
      c.identity = extras.Get(r, 2).empty() ? 0 : extras.Get(r, 2)[0];
    }
  }
  TV_ASSIGN_OR_RETURN(auto pk, conn.ExecParams(kPrimaryKeySql, {std::to_string(table->oid)}));
  for (int r = 0; r < pk.rows(); ++r) {
    auto name = pk.Get(r, 0);
    for (size_t i = 0; i < table->columns.size(); ++i) {
      if (table->columns[i].name == name) {
        table->columns[i].in_pk = true;
        table->pk.push_back(i);
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Catalog> LoadCatalog(pg::PgConn& conn, const std::string& tenant_column, const std::string& publication) {
  Catalog catalog;
  TV_ASSIGN_OR_RETURN(auto tables, conn.ExecParams(kTablesSql, {tenant_column, publication}));
  std::map<std::string, std::string> by_oid;
  for (int r = 0; r < tables.rows(); ++r) {
    CatalogTable t;
    t.oid = static_cast<uint32_t>(std::stoul(tables.GetString(r, 0)));
    t.name = tables.GetString(r, 1) + "." + tables.GetString(r, 2);
    t.qualified = pg::QualifiedName(conn, tables.Get(r, 1), tables.Get(r, 2));
    TV_RETURN_IF_ERROR(LoadColumns(conn, &t, tenant_column));
    if (t.pk.empty()) continue;  // no key: rows cannot be matched; ScopeTables says so when asked for
    by_oid[std::to_string(t.oid)] = t.name;
    catalog.tables.emplace(t.name, std::move(t));
  }
  TV_ASSIGN_OR_RETURN(auto fks, conn.Exec(kForeignKeysSql));
  for (int r = 0; r < fks.rows(); ++r) {
    bool child_in = by_oid.count(fks.GetString(r, 1)) > 0;
    bool parent_in = by_oid.count(fks.GetString(r, 2)) > 0;
    if (!child_in && !parent_in) continue;
    ForeignKey fk;
    fk.name = fks.GetString(r, 0);
    fk.deferrable = fks.Get(r, 3) == "t";
    fk.child = fks.GetString(r, 4);
    fk.parent = fks.GetString(r, 5);
    fk.child_sql = fks.GetString(r, 6);
    fk.parent_sql = fks.GetString(r, 7);
    fk.child_cols = SplitNames(fks.Get(r, 8));
    fk.parent_cols = SplitNames(fks.Get(r, 9));
    catalog.foreign_keys.push_back(std::move(fk));
  }
  return catalog;
}

Result<std::vector<std::string>> ScopeTables(pg::PgConn& conn, const Catalog& catalog,
                                             const std::vector<std::string>& requested,
                                             const std::string& tenant_column) {
  std::set<std::string> out;
  if (requested.empty()) {
    for (const auto& [name, t] : catalog.tables) out.insert(name);
    return std::vector<std::string>(out.begin(), out.end());
  }
  for (const auto& name : requested) {
    if (catalog.tables.count(name)) {
      out.insert(name);
      continue;
    }
    // Say why: missing, no tenant column, no primary key, not captured.
    auto dot = name.find('.');
    std::string regclass = dot == std::string::npos
                               ? conn.QuoteIdent(name)
                               : pg::QualifiedName(conn, name.substr(0, dot), name.substr(dot + 1));
    TV_ASSIGN_OR_RETURN(auto exists, conn.ExecParams("SELECT to_regclass($1)::oid::text", {regclass}));
    if (exists.IsNull(0, 0)) return NotFound("table " + name + " does not exist (name it as schema.table)");
    TV_ASSIGN_OR_RETURN(
        auto has_tenant,
        conn.ExecParams("SELECT 1 FROM pg_attribute WHERE attrelid = $1::oid AND attname = $2 AND NOT attisdropped",
                        {exists.GetString(0, 0), tenant_column}));
    if (has_tenant.rows() == 0) {
      return NotFound("table " + name + " has no tenant column " + tenant_column +
                      ": timevault never touches tables without it");
    }
    return NotFound("table " + name + " is not recoverable: it has no primary key or is not in the publication");
  }
  return std::vector<std::string>(out.begin(), out.end());
}

std::vector<std::string> ParentsFirst(const Catalog& catalog, const std::vector<std::string>& tables,
                                      std::vector<std::string>* cycle) {
  std::set<std::string> in(tables.begin(), tables.end());
  std::map<std::string, std::set<std::string>> parents;  // child -> parents it must follow
  for (const auto& fk : catalog.foreign_keys) {
    if (fk.deferrable || fk.child == fk.parent || !in.count(fk.child) || !in.count(fk.parent)) continue;
    parents[fk.child].insert(fk.parent);
  }
  std::vector<std::string> order;
  std::set<std::string> done;
  // Kahn's algorithm in name order, so the result is deterministic.
  bool progress = true;
  while (progress) {
    progress = false;
    for (const auto& t : in) {
      if (done.count(t)) continue;
      const auto& ps = parents[t];
      if (std::all_of(ps.begin(), ps.end(), [&](const std::string& p) { return done.count(p) > 0; })) {
        order.push_back(t);
        done.insert(t);
        progress = true;
      }
    }
  }
  for (const auto& t : in) {
    if (done.count(t)) continue;
    order.push_back(t);
    if (cycle) cycle->push_back(t);
  }
  return order;
}

}  // namespace timevault::replay
