#include "timevault/replay/scratch_restore.h"

#include <rapidjson/document.h>

#include <cctype>
#include <optional>

#include "catalog.h"
#include "timevault/store/event.h"
#include "timevault/wire/to_text.h"

namespace timevault::replay {
namespace {

constexpr size_t kCopyChunk = 1 << 20;
constexpr size_t kMaxIdentifier = 63;

// One scope table: its columns in the scratch copies (every column but the
// generated ones, as a restore writes them), their converters (none for a
// type Debezium leaves out) and what Debezium's value loses ("" when exact).
struct ScratchTable {
  const CatalogTable* table = nullptr;
  size_t index = 0;
  std::vector<size_t> cols;
  std::vector<std::optional<ValueConverter>> converters;
  std::vector<std::string> loss;

  std::string Name(ScratchSide side) const {
    return (side == ScratchSide::kBackup ? "b_" : "s_") + std::to_string(index);
  }
  std::string List(const std::string& prefix, const std::vector<size_t>& idx) const {
    std::string out;
    for (size_t i : idx) out += (out.empty() ? "" : ", ") + prefix + table->columns[i].quoted;
    return out;
  }
  std::vector<size_t> Key() const { return table->pk; }
};

}  // namespace

std::string ScratchSchemaName(const std::string& job_id) {
  std::string out = "tv_drtest_";
  for (char c : job_id) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_');
  }
  if (out.size() > kMaxIdentifier) out.resize(kMaxIdentifier);
  return out;
}

struct ScratchRestore::Impl {
  pg::PgConn conn;
  Catalog catalog;
  std::string schema, schema_sql;
  std::vector<std::string> names;
  std::vector<ScratchTable> tables;
  std::map<std::string, size_t> by_name;
  std::map<std::string, uint64_t> loaded[2];
  bool open = false;
  int copying = -1;  // index * 2 + side of the open COPY
  std::string buf;

  ~Impl() {
    if (copying >= 0) conn.CopyAbort("DR test abandoned");
    if (open && conn.connected()) (void)conn.Run("ROLLBACK");
  }

  std::string Sql(const ScratchTable& t, ScratchSide side) const { return schema_sql + "." + t.Name(side); }

  Status Create(const ScratchTable& t) {
    for (auto side : {ScratchSide::kBackup, ScratchSide::kStore}) {
      TV_RETURN_IF_ERROR(conn.Run("CREATE TABLE " + Sql(t, side) + " AS SELECT " + t.List("", t.cols) + " FROM " +
                                  t.table->qualified + " WITH NO DATA"));
    }
    return Status::Ok();
  }

  Status EndCopy() {
    if (copying < 0) return Status::Ok();
    Status s = buf.empty() ? Status::Ok() : conn.CopyPut(buf);
    buf.clear();
    if (!s.ok()) {
      conn.CopyAbort("DR test load failed");
      copying = -1;
      return s;
    }
    copying = -1;
    return conn.CopyEnd();
  }

  Status StartCopy(const ScratchTable& t, ScratchSide side) {
    const int want = static_cast<int>(t.index * 2 + (side == ScratchSide::kStore ? 1 : 0));
    if (copying == want) return Status::Ok();
    TV_RETURN_IF_ERROR(EndCopy());
    TV_RETURN_IF_ERROR(conn.CopyIn("COPY " + Sql(t, side) + " (" + t.List("", t.cols) + ") FROM STDIN"));
    copying = want;
    return Status::Ok();
  }

  Status Line(const ScratchTable& t, const store::Row& row, std::string* line) {
    rapidjson::Document doc;
    doc.Parse<kRowImageParseFlags>(row.json.data(), row.json.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return Corruption("row image of " + row.table + " key " + row.pk + " is not a JSON object");
    }
    // The fidelity texts (store::kTextMember): Postgres's own text of the
    // columns whose Debezium value is lossy or absent, restored as replay does.
    const rapidjson::Value* texts = nullptr;
    if (auto m = doc.FindMember(rapidjson::StringRef(store::kTextMember.data(), store::kTextMember.size()));
        m != doc.MemberEnd()) {
      if (!m->value.IsObject())
        return Corruption("row image of " + row.table + " key " + row.pk + ": its texts are not an object");
      texts = &m->value;
    }
    for (size_t k = 0; k < t.cols.size(); ++k) {
      if (k) line->push_back('\t');
      TV_RETURN_IF_ERROR(Field(t, k, row, doc, texts, line));
    }
    line->push_back('\n');
    return Status::Ok();
  }

  // One column as a COPY field: its fidelity text when it has one, else
  // Debezium's value when that is exact for the type; refused otherwise,
  // naming the column (a DR test never passes on a column it ignored).
  static Status Field(const ScratchTable& t, size_t k, const store::Row& row, const rapidjson::Value& image,
                      const rapidjson::Value* texts, std::string* line) {
    const auto& c = t.table->columns[t.cols[k]];
    const auto name = rapidjson::StringRef(c.name.data(), static_cast<rapidjson::SizeType>(c.name.size()));
    const std::string what = row.table + "." + c.name + " (" + c.sql_type + ")";
    if (texts != nullptr) {
      if (auto m = texts->FindMember(name); m != texts->MemberEnd()) {
        if (m->value.IsNull()) {
          AppendCopyField(line, std::nullopt);
        } else if (m->value.IsString()) {
          AppendCopyText(line, std::string_view(m->value.GetString(), m->value.GetStringLength()));
        } else {
          return Corruption("row image of " + row.table + " key " + row.pk + ": the text of " + c.name +
                            " is not a string");
        }
        return Status::Ok();
      }
    }
    auto m = image.FindMember(name);
    if (m == image.MemberEnd()) {
      if (!t.loss[k].empty()) {
        return FailedPrecondition("cannot restore " + what + ": the row image of key " + row.pk +
                                  " holds neither a value nor a text for it (" + t.loss[k] + ")");
      }
      AppendCopyField(line, std::nullopt);  // a column added after the row was written
      return Status::Ok();
    }
    if (!t.loss[k].empty()) {
      return FailedPrecondition("cannot restore " + what + " exactly: the row image of key " + row.pk +
                                " holds only Debezium's value and no text (" + t.loss[k] + ")");
    }
    if (Status s = t.converters[k]->AppendCopy(m->value, line); !s.ok()) {
      return InvalidArgument(row.table + " key " + row.pk + ", column " + c.name + ": " + s.message());
    }
    return Status::Ok();
  }
};

ScratchRestore::ScratchRestore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ScratchRestore::~ScratchRestore() = default;

Result<std::unique_ptr<ScratchRestore>> ScratchRestore::Begin(const std::string& conninfo,
                                                              const std::string& tenant_column,
                                                              const std::string& publication, const std::string& job_id,
                                                              const std::vector<std::string>& tables) {
  auto impl = std::make_unique<Impl>();
  TV_ASSIGN_OR_RETURN(impl->conn, pg::PgConn::Connect(conninfo));
  TV_ASSIGN_OR_RETURN(impl->catalog, LoadCatalog(impl->conn, tenant_column, publication));
  TV_ASSIGN_OR_RETURN(impl->names, ScopeTables(impl->conn, impl->catalog, tables, tenant_column));
  TV_RETURN_IF_ERROR(impl->conn.Run("BEGIN"));
  impl->open = true;
  // Row texts are compared: the session's settings must not vary them.
  TV_RETURN_IF_ERROR(impl->conn.Run(
      "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; "
      "SET LOCAL extra_float_digits = 3"));
  impl->schema = ScratchSchemaName(job_id);
  impl->schema_sql = impl->conn.QuoteIdent(impl->schema);
  TV_RETURN_IF_ERROR(impl->conn.Run("CREATE SCHEMA " + impl->schema_sql));
  for (const auto& name : impl->names) {
    ScratchTable t;
    t.table = &impl->catalog.tables.at(name);
    t.index = impl->tables.size();
    // Every column (generated ones are not in the catalog's list), as
    // replay's apply: one neither the row image nor a fidelity text carries
    // fails the load, naming it.
    for (size_t i = 0; i < t.table->columns.size(); ++i) {
      const auto& c = t.table->columns[i];
      auto conv = ValueConverter::Resolve(c.type);
      std::optional<std::string_view> loss = DebeziumLoss(c.type);
      if (!loss && !conv.ok()) loss = "Debezium leaves the type out";
      t.cols.push_back(i);
      t.converters.push_back(conv.ok() ? std::optional<ValueConverter>(std::move(conv).value()) : std::nullopt);
      t.loss.emplace_back(loss ? *loss : std::string_view());
    }
    TV_RETURN_IF_ERROR(impl->Create(t));
    impl->by_name[name] = t.index;
    impl->tables.push_back(std::move(t));
  }
  return std::unique_ptr<ScratchRestore>(new ScratchRestore(std::move(impl)));
}

const std::vector<std::string>& ScratchRestore::tables() const { return impl_->names; }
const std::string& ScratchRestore::schema() const { return impl_->schema; }

Status ScratchRestore::Add(ScratchSide side, const store::Row& row) {
  Impl& m = *impl_;
  auto it = m.by_name.find(row.table);
  if (it == m.by_name.end()) {
    return NotFound("table " + row.table + " is not a tenant table of the publication in the live database");
  }
  const ScratchTable& t = m.tables[it->second];
  TV_RETURN_IF_ERROR(m.StartCopy(t, side));
  if (Status s = m.Line(t, row, &m.buf); !s.ok()) {
    m.buf.clear();
    m.conn.CopyAbort("DR test load failed");
    m.copying = -1;
    return s;
  }
  ++m.loaded[side == ScratchSide::kStore ? 1 : 0][row.table];
  if (m.buf.size() >= kCopyChunk) {
    Status s = m.conn.CopyPut(m.buf);
    m.buf.clear();
    if (!s.ok()) {
      m.conn.CopyAbort("DR test load failed");
      m.copying = -1;
      return s;
    }
  }
  return Status::Ok();
}

Status ScratchRestore::Flush() { return impl_->EndCopy(); }

const std::map<std::string, uint64_t>& ScratchRestore::loaded(ScratchSide side) const {
  return impl_->loaded[side == ScratchSide::kStore ? 1 : 0];
}

Result<TableDigest> ScratchRestore::Digest(ScratchSide side, const std::string& table) {
  Impl& m = *impl_;
  auto it = m.by_name.find(table);
  if (it == m.by_name.end()) return NotFound("table " + table + " is not in the DR test's scope");
  const ScratchTable& t = m.tables[it->second];
  TV_ASSIGN_OR_RETURN(auto r, m.conn.Exec("SELECT count(*), coalesce(md5(string_agg(x::text, E'\\n' ORDER BY " +
                                          t.List("x.", t.Key()) + ")), '') FROM " + m.Sql(t, side) + " x"));
  return TableDigest{std::stoull(r.GetString(0, 0)), r.GetString(0, 1)};
}

Result<TableDiff> ScratchRestore::Diff(const std::string& table, size_t max_keys) {
  Impl& m = *impl_;
  auto it = m.by_name.find(table);
  if (it == m.by_name.end()) return NotFound("table " + table + " is not in the DR test's scope");
  const ScratchTable& t = m.tables[it->second];
  // Rows compared as (key text, row text): every captured type has a text
  // form, while some (json) have no equality operator for EXCEPT.
  auto side = [&](ScratchSide s) {
    return "SELECT ROW(" + t.List("x.", t.Key()) + ")::text AS k, x::text AS r FROM " + m.Sql(t, s) + " x";
  };
  const std::string b = side(ScratchSide::kBackup), s = side(ScratchSide::kStore);
  TV_ASSIGN_OR_RETURN(auto r,
                      m.conn.Exec("WITH d AS ((" + b + " EXCEPT ALL " + s + ") UNION ALL (" + s + " EXCEPT ALL " + b +
                                  ")) SELECT (SELECT count(*) FROM d), k FROM "
                                  "(SELECT DISTINCT k FROM d ORDER BY k LIMIT " +
                                  std::to_string(max_keys) + ") keys RIGHT JOIN (SELECT 1) one ON true"));
  TableDiff out;
  for (int i = 0; i < r.rows(); ++i) {
    out.differing = std::stoull(r.GetString(i, 0));
    if (!r.IsNull(i, 1)) out.keys.push_back(r.GetString(i, 1));
  }
  return out;
}

Status ScratchRestore::Drop() {
  Impl& m = *impl_;
  if (m.copying >= 0) {
    m.conn.CopyAbort("DR test finished");
    m.copying = -1;
  }
  if (!m.open) return Status::Ok();
  m.open = false;
  return m.conn.Run("ROLLBACK");
}

}  // namespace timevault::replay
