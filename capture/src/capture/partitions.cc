#include "capture/partitions.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>

namespace timevault::capture {
namespace {

constexpr int kRowsPerMessage = 1000;

uint32_t ParseOid(std::string_view s) {
  uint32_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

Result<PartitionLeaves> ReadPartitionLeaves(pg::PgConn& conn, const std::string& publication) {
  TV_ASSIGN_OR_RETURN(auto res, conn.ExecParams(R"SQL(
      SELECT c.oid, t.relid::oid FROM pg_publication_tables pt
      JOIN pg_namespace n ON n.nspname = pt.schemaname
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      CROSS JOIN LATERAL pg_partition_tree(c.oid) t
      WHERE pt.pubname = $1 AND c.relkind = 'p' AND t.isleaf)SQL",
                                                {publication}));
  PartitionLeaves out;
  for (int r = 0; r < res.rows(); ++r) out[ParseOid(res.Get(r, 0))].insert(ParseOid(res.Get(r, 1)));
  // A root without any partition has no leaf rows but is still watched.
  TV_ASSIGN_OR_RETURN(auto roots, conn.ExecParams(R"SQL(
      SELECT c.oid FROM pg_publication_tables pt
      JOIN pg_namespace n ON n.nspname = pt.schemaname
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND c.relkind = 'p')SQL",
                                                  {publication}));
  for (int r = 0; r < roots.rows(); ++r) out[ParseOid(roots.Get(r, 0))];
  return out;
}

std::string SerializeLeaves(const PartitionLeaves& leaves) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [root, set] : leaves) {
    const std::string key = std::to_string(root);
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    w.StartArray();
    for (uint32_t leaf : set) w.Uint(leaf);
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<PartitionLeaves> ParseLeaves(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  PartitionLeaves out;
  for (const auto& member : d.GetObject()) {
    if (!member.value.IsArray()) return std::nullopt;
    auto& set = out[ParseOid(member.name.GetString())];
    for (const auto& leaf : member.value.GetArray()) {
      if (!leaf.IsUint()) return std::nullopt;
      set.insert(leaf.GetUint());
    }
  }
  return out;
}

Result<PartitionRows> ParsePartitionMessage(std::string_view content) {
  rapidjson::Document d;
  d.Parse(content.data(), content.size());
  auto bad = [](std::string_view why) {
    return Corruption("logical message " + std::string(kPartitionMessagePrefix) + ": " + std::string(why));
  };
  if (d.HasParseError() || !d.IsObject()) return bad("not a JSON object");
  if (!d.HasMember("root") || !d["root"].IsUint()) return bad("no root oid");
  if (!d.HasMember("op") || !d["op"].IsString() || d["op"].GetStringLength() != 1) return bad("no op");
  if (!d.HasMember("rows") || !d["rows"].IsArray()) return bad("no rows");
  PartitionRows out;
  out.root = d["root"].GetUint();
  out.op = d["op"].GetString()[0];
  if (out.op != 'c' && out.op != 'd') return bad("op must be c or d");
  if (d.HasMember("leaf") && d["leaf"].IsString()) out.leaf = d["leaf"].GetString();
  for (const auto& row : d["rows"].GetArray()) {
    if (!row.IsArray()) return bad("a row is not an array");
    auto& values = out.rows.emplace_back();
    for (const auto& v : row.GetArray()) {
      if (v.IsNull()) {
        values.emplace_back(std::nullopt);
      } else if (v.IsString()) {
        values.emplace_back(std::string(v.GetString(), v.GetStringLength()));
      } else {
        return bad("a value is neither text nor null");
      }
    }
  }
  return out;
}

Result<int64_t> EmitPartitionRows(pg::PgConn& conn, const TableSchema& root, uint32_t leaf, char op) {
  TV_ASSIGN_OR_RETURN(auto name, conn.ExecParams(R"SQL(
      SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = $1)SQL",
                                                 {std::to_string(leaf)}));
  if (name.rows() == 0) return NotFound("partition " + std::to_string(leaf) + " no longer exists");
  const std::string leaf_name = name.GetString(0, 0) + "." + name.GetString(0, 1);
  const std::string qualified = pg::QualifiedName(conn, name.GetString(0, 0), name.GetString(0, 1));
  std::string values;
  for (const auto& c : root.columns) values += (values.empty() ? "" : ", ") + conn.QuoteIdent(c.name) + "::text";
  TV_RETURN_IF_ERROR(conn.Run("LOCK TABLE ONLY " + qualified + " IN SHARE MODE"));
  // One message per kRowsPerMessage rows: {"root","op","leaf","rows":[[text|null,...],...]}.
  const std::string sql = "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n, pg_logical_emit_message(true, " +
                          conn.QuoteLiteral(kPartitionMessagePrefix) + ", json_build_object('root', " +
                          std::to_string(root.relation_oid) + ", 'op', " + conn.QuoteLiteral(std::string(1, op)) +
                          ", 'leaf', " + conn.QuoteLiteral(leaf_name) +
                          ", 'rows', json_agg(r))::text) FROM (SELECT json_build_array(" + values +
                          ") AS r, (row_number() OVER () - 1) / " + std::to_string(kRowsPerMessage) +
                          " AS chunk FROM ONLY " + qualified + ") s GROUP BY chunk) m";
  TV_ASSIGN_OR_RETURN(auto res, conn.Exec(sql));
  int64_t rows = 0;
  const std::string_view text = res.Get(0, 0);
  std::from_chars(text.data(), text.data() + text.size(), rows);
  return rows;
}

}  // namespace timevault::capture
