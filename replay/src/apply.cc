#include "apply.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <optional>

#include "timevault/core/crypto.h"

namespace timevault::replay {
namespace {

constexpr size_t kCopyChunk = 1 << 20;
// tv_a_<i>'s hash column: the row an apply wrote (KeyedTable::after).
constexpr const char* kHash = "\"__tv_h\"";
// Characters of a column's text shown in a row sample (SampleChanges).
constexpr int kSampleChars = 256;
constexpr const char* kKind = "\"__tv_kind\"";
// Whole-tenant targets: the row's fidelity texts (json), for the round-trip check.
constexpr const char* kText = "\"__tv_text\"";

// One scope table of the apply: its temporary tables are tv_t_<i> (target
// rows), tv_k_<i> (keyed targets: the keys covered) and tv_o_<i> (the
// operations: kind and key).
struct TableState {
  const CatalogTable* table = nullptr;
  size_t index = 0;
  std::vector<size_t> target;  // columns of tv_t_<i>: indexes into table->columns
  // Whole-tenant targets, per target column: the conversion of Debezium's
  // value (none for a type capture leaves out), why that value is not exact
  // for the type (empty: it is), and whether a fidelity text was loaded.
  std::vector<std::optional<ValueConverter>> converters;
  std::vector<std::string> loss;
  std::vector<bool> texts;
  uint64_t rows = 0;
  std::string staged;  // options.stage: the COPY text loaded into tv_t_<i>
  OperationCounts ops;
  // Keyed targets: the after-images of the apply being undone (tv_a_<i>).
  bool has_after = false;
  std::vector<size_t> after_cols;

  std::string T() const { return "tv_t_" + std::to_string(index); }
  std::string A() const { return "tv_a_" + std::to_string(index); }
  std::string K() const { return "tv_k_" + std::to_string(index); }
  std::string O() const { return "tv_o_" + std::to_string(index); }
  const CatalogColumn& col(size_t i) const { return table->columns[i]; }
  // "p.a, p.b" over the key columns.
  std::string Key(const std::string& p) const {
    std::string out;
    for (size_t i : table->pk) out += (out.empty() ? "" : ", ") + p + col(i).quoted;
    return out;
  }
  // "a.k1 = b.k1 AND a.k2 = b.k2".
  std::string KeyEq(const std::string& a, const std::string& b) const {
    std::string out;
    for (size_t i : table->pk)
      out += (out.empty() ? "" : " AND ") + a + "." + col(i).quoted + " = " + b + "." + col(i).quoted;
    return out;
  }
  std::string Cols(const std::string& p, const std::vector<size_t>& idx) const {
    std::string out;
    for (size_t i : idx) out += (out.empty() ? "" : ", ") + p + col(i).quoted;
    return out;
  }
  // Target columns that are neither key nor tenant: what an update writes.
  std::vector<size_t> Payload() const {
    std::vector<size_t> out;
    for (size_t i : target) {
      if (!col(i).in_pk && i != table->tenant) out.push_back(i);
    }
    return out;
  }
  // "schema.table.column (type t)" for messages.
  std::string Named(size_t i) const {
    const auto& c = col(i);
    return table->name + "." + c.name + " (type " + (c.sql_type.empty() ? c.type.type_name : c.sql_type) + ")";
  }
  // The target columns with their types: what a staged target must match.
  std::string Shape() const {
    std::string out;
    for (size_t i : target) out += col(i).quoted + " " + col(i).sql_type + " " + col(i).type.type_name + "\n";
    return out;
  }
  std::vector<size_t> AllColumns() const {
    std::vector<size_t> out(table->columns.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = i;
    return out;
  }
};

std::string JsonString(const std::function<void(rapidjson::Writer<rapidjson::StringBuffer>&)>& fill) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  fill(w);
  return sb.GetString();
}

Result<Lsn> CurrentLsn(pg::PgConn& conn) {
  TV_ASSIGN_OR_RETURN(auto row, conn.Exec("SELECT pg_current_wal_lsn()::text"));
  auto lsn = Lsn::Parse(row.Get(0, 0));
  if (!lsn) return Internal("postgres returned an unparsable LSN: " + row.GetString(0, 0));
  return *lsn;
}

// Row images carry times as UTC and intervals as ISO; the session's own
// settings must not change how text compares.
constexpr const char* kApplySettings =
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; "
    "SET LOCAL extra_float_digits = 3";

bool IsConstraintViolation(const Status& s) { return s.message().find("[23") != std::string::npos; }

}  // namespace

struct Applier::Impl {
  ApplyOptions opt;
  const Catalog* catalog = nullptr;
  pg::PgConn conn;
  std::string tenant_lit;
  std::vector<TableState> tables;
  std::map<std::string, size_t> by_name;
  int copying = -1;  // the table whose COPY is open
  std::string buf;
  uint64_t skipped = 0;
  bool open = false;  // transaction open
  bool diffed = false;
  bool replica = false;         // session_replication_role may be set (ChoosePath)
  std::string verified_digest;  // set by ApplyAndCommit once the rows equal the target

  ~Impl() {
    if (copying >= 0) conn.CopyAbort("apply abandoned");
    if (open && conn.connected()) (void)conn.Run("ROLLBACK");
  }

  Status Fail(Status s) {
    if (copying >= 0) {
      conn.CopyAbort("apply failed");
      copying = -1;
    }
    return s;
  }

  Status EndCopy() {
    if (copying < 0) return Status::Ok();
    const size_t t = static_cast<size_t>(copying);
    Status s = buf.empty() ? Status::Ok() : conn.CopyPut(buf);
    buf.clear();
    if (!s.ok()) return Fail(CopyError(t, s));
    copying = -1;
    if (Status e = conn.CopyEnd(); !e.ok()) return CopyError(t, e);
    return Status::Ok();
  }

  // A target value Postgres's input function refuses (SQLSTATE class 22,
  // e.g. a fidelity text of a type whose output does not read back): the
  // CONTEXT "COPY tv_t_0, line 3, column c: ..." names the column.
  Status CopyError(size_t t, const Status& s) {
    if (t >= tables.size() || s.message().find("[22") == std::string::npos) return s;
    const TableState& ts = tables[t];
    std::string what = ts.table->name;
    const std::string& m = s.message();
    if (size_t at = m.find(", column "); at != std::string::npos) {
      const size_t start = at + 9;
      const std::string name = m.substr(start, m.find(':', start) - start);
      for (size_t i = 0; i < ts.table->columns.size(); ++i) {
        if (ts.col(i).name == name) what = ts.Named(i);
      }
    }
    return InvalidArgument("cannot restore " + what + ": Postgres refuses the target value (" + m +
                           "); nothing was changed");
  }

  Status StartCopy(size_t t, const std::vector<std::string>& columns_sql, const std::string& into) {
    TV_RETURN_IF_ERROR(EndCopy());
    std::string cols;
    for (const auto& c : columns_sql) cols += (cols.empty() ? "" : ", ") + c;
    TV_RETURN_IF_ERROR(conn.CopyIn("COPY " + into + " (" + cols + ") FROM STDIN"));
    copying = static_cast<int>(t);
    return Status::Ok();
  }

  // Newline-terminated COPY lines.
  Status PutLines(std::string_view lines) {
    buf.append(lines);
    if (buf.size() >= kCopyChunk) {
      Status s = conn.CopyPut(buf);
      buf.clear();
      if (!s.ok()) return Fail(s);
    }
    return Status::Ok();
  }

  Status Put(std::string_view line) {
    buf.append(line);
    buf.push_back('\n');
    if (buf.size() >= kCopyChunk) {
      Status s = conn.CopyPut(buf);
      buf.clear();
      if (!s.ok()) return Fail(s);
    }
    return Status::Ok();
  }

  // One column of a whole-tenant target row as a COPY field: its fidelity
  // text when it has one, else Debezium's value when that is exact for the
  // type; refused otherwise, naming the column.
  Status AppendColumn(TableState& ts, size_t k, const rapidjson::Value& image, const rapidjson::Value* texts,
                      const std::string& pk, std::string* line) {
    const auto& c = ts.col(ts.target[k]);
    const rapidjson::SizeType name_size = static_cast<rapidjson::SizeType>(c.name.size());
    if (texts != nullptr) {
      if (auto t = texts->FindMember(rapidjson::StringRef(c.name.data(), name_size)); t != texts->MemberEnd()) {
        if (t->value.IsNull()) {
          AppendCopyField(line, std::nullopt);
        } else if (t->value.IsString()) {
          AppendCopyText(line, std::string_view(t->value.GetString(), t->value.GetStringLength()));
        } else {
          return Fail(Corruption("row image of " + ts.table->name + " key " + pk + ": the text of " + c.name +
                                 " is not a string"));
        }
        ts.texts[k] = true;
        return Status::Ok();
      }
    }
    auto member = image.FindMember(rapidjson::StringRef(c.name.data(), name_size));
    if (member == image.MemberEnd()) {
      if (!ts.loss[k].empty()) {
        return Fail(FailedPrecondition("cannot restore " + ts.Named(ts.target[k]) + ": the row image of key " + pk +
                                       " holds neither a value nor a text for it (" + ts.loss[k] +
                                       "); nothing was changed"));
      }
      // A column added after this row version was written: NULL (the
      // version predates it; docs/replay.md).
      AppendCopyField(line, std::nullopt);
      return Status::Ok();
    }
    if (!ts.loss[k].empty()) {
      return Fail(FailedPrecondition("cannot restore " + ts.Named(ts.target[k]) + " exactly: the row image of key " +
                                     pk + " holds only Debezium's value and no text (" + ts.loss[k] +
                                     "); nothing was changed"));
    }
    if (Status s = ts.converters[k]->AppendCopy(member->value, line); !s.ok()) {
      return Fail(InvalidArgument("cannot restore " + ts.Named(ts.target[k]) + ", key " + pk + ": " + s.message()));
    }
    return Status::Ok();
  }

  Status CreateTempTables() {
    for (auto& ts : tables) {
      const auto& t = *ts.table;
      std::string cols = ts.Cols("", ts.target);
      if (!opt.keyed) cols += std::string(", NULL::json AS ") + kText;
      TV_RETURN_IF_ERROR(conn.Run("CREATE TEMP TABLE " + ts.T() + " ON COMMIT DROP AS SELECT " + cols + " FROM " +
                                  t.qualified + " WITH NO DATA"));
      if (opt.keyed) {
        TV_RETURN_IF_ERROR(conn.Run("CREATE TEMP TABLE " + ts.K() + " ON COMMIT DROP AS SELECT " + ts.Key("") +
                                    " FROM " + t.qualified + " WITH NO DATA"));
      }
    }
    return Status::Ok();
  }

  Status LockRows() {
    TV_RETURN_IF_ERROR(
        conn.ExecParams("SELECT pg_advisory_xact_lock(hashtextextended('timevault.tenant:' || $1, 0))", {opt.tenant})
            .status());
    for (const auto& ts : tables) {  // name order: applies to one tenant lock in the same order
      Status s = conn.Run("SELECT count(*) FROM (SELECT 1 FROM " + ts.table->qualified + " WHERE " +
                          ts.col(ts.table->tenant).quoted + " = " + tenant_lit + " FOR UPDATE) locked");
      if (!s.ok()) {
        if (s.code() == StatusCode::kAborted) {
          return Aborted("the rows of tenant " + opt.tenant + " in " + ts.table->name +
                         " stayed locked by another transaction for longer than replay.lock_timeout_ms (" +
                         std::to_string(opt.lock_timeout_ms) + " ms); nothing was changed, retry later (" +
                         s.message() + ")");
        }
        return s;
      }
    }
    return Status::Ok();
  }

  // hashtextextended of the row text of columns `idx` of `p` (a table
  // alias with its dot): the after-images' hash (KeyedTable::after).
  static std::string RowHash(const std::string& p, const TableState& ts, const std::vector<size_t>& idx) {
    return "hashtextextended(ROW(" + ts.Cols(p, idx) + ")::text, 0)";
  }

  // Keyed targets with after-images: the operations of tv_o_<i> (alias o,
  // live row l) that undo a change made since the apply — a row it wrote
  // that differs now or is gone, a row it deleted that exists again.
  // Needs `a`, tv_a_<i> left-joined on the key (RevertJoin): a join, not
  // EXISTS under OR, which Postgres would run as a subplan per row.
  static std::string RevertWhere(const TableState& ts) {
    const std::string pk = ts.col(ts.table->pk.front()).quoted;
    return "((a." + pk + " IS NOT NULL AND (l." + pk + " IS NULL OR " + RowHash("l.", ts, ts.after_cols) + " <> a." +
           kHash + ")) OR (a." + pk + " IS NULL AND l." + pk + " IS NOT NULL))";
  }
  static std::string RevertJoin(const TableState& ts) { return " LEFT JOIN " + ts.A() + " a ON " + ts.KeyEq("a", "o"); }

  // Up to `limit` rows of tv_o_<i> that satisfy `where` (SQL over `o`, the
  // live row `l` and the target row `t`), in key order, as JSON objects for
  // people (docs/replay.md "Row sample"): {"op", "key", "before" (the live
  // row), "after" (the target row), "changed", "truncated"}; values are the
  // columns' texts, cut to kSampleChars characters (those columns are listed
  // in "truncated"); "changed" lists the columns whose texts differ.
  Status SampleRows(const TableState& ts, const std::string& where, uint64_t limit,
                    const std::function<Status(std::string)>& emit, const std::string& join = "") {
    const auto& t = *ts.table;
    const std::string n = std::to_string(kSampleChars);
    std::string cols;
    for (size_t i : t.pk) cols += ", o." + ts.col(i).quoted + "::text";
    for (const char* side : {"l", "t"}) {
      cols += std::string(", ") + side + "." + ts.col(t.pk.front()).quoted + " IS NOT NULL";
      for (size_t i : ts.target) {
        const std::string v = std::string(side) + "." + ts.col(i).quoted + "::text";
        cols += ", left(" + v + ", " + n + "), length(" + v + ") > " + n;
      }
    }
    for (size_t i : ts.target) {
      cols += ", l." + ts.col(i).quoted + "::text IS DISTINCT FROM t." + ts.col(i).quoted + "::text";
    }
    TV_ASSIGN_OR_RETURN(
        auto r, conn.Exec("SELECT o." + std::string(kKind) + cols + " FROM " + ts.O() + " o LEFT JOIN " + t.qualified +
                          " l ON " + ts.KeyEq("l", "o") + " AND l." + ts.col(t.tenant).quoted + " = " + tenant_lit +
                          " LEFT JOIN " + ts.T() + " t ON " + ts.KeyEq("t", "o") + join + " WHERE " + where +
                          " ORDER BY " + ts.Key("o.") + " LIMIT " + std::to_string(limit)));
    const int width = static_cast<int>(ts.target.size());
    for (int row = 0; row < r.rows(); ++row) {
      std::vector<std::string> truncated;
      std::string json = JsonString([&](auto& w) {
        const std::string kind = r.GetString(row, 0);
        w.StartObject();
        w.Key("op");
        w.String(kind == "i" ? "insert" : kind == "u" ? "update" : "delete");
        w.Key("key");
        w.StartObject();
        int c = 1;
        for (size_t i : t.pk) {
          w.Key(ts.col(i).name.c_str());
          w.String(r.GetString(row, c++).c_str());
        }
        w.EndObject();
        for (const char* side : {"before", "after"}) {
          w.Key(side);
          const bool present = r.GetString(row, c++) == "t";
          if (present) w.StartObject();
          for (size_t i : ts.target) {
            const bool is_null = r.IsNull(row, c);
            const std::string text = is_null ? "" : r.GetString(row, c);
            const bool cut = r.GetString(row, c + 1) == "t";
            c += 2;
            if (!present) continue;
            w.Key(ts.col(i).name.c_str());
            if (is_null) {
              w.Null();
            } else {
              w.String((cut ? text + "\u2026" : text).c_str());
            }
            if (cut && std::find(truncated.begin(), truncated.end(), ts.col(i).name) == truncated.end()) {
              truncated.push_back(ts.col(i).name);
            }
          }
          if (present) {
            w.EndObject();
          } else {
            w.Null();
          }
        }
        w.Key("changed");
        w.StartArray();
        if (kind == "u") {
          for (int k = 0; k < width; ++k) {
            if (r.GetString(row, c + k) == "t") w.String(ts.col(ts.target[static_cast<size_t>(k)]).name.c_str());
          }
        }
        w.EndArray();
        w.Key("truncated");
        w.StartArray();
        for (const auto& name : truncated) w.String(name.c_str());
        w.EndArray();
        w.EndObject();
      });
      TV_RETURN_IF_ERROR(emit(std::move(json)));
    }
    return Status::Ok();
  }

  // Which apply path this session can take: replica mode needs the
  // privilege to set session_replication_role (probed under a savepoint: a
  // refused SET would abort the transaction). Without it, the ordered path
  // fires foreign-key actions and user triggers, which can change rows
  // outside the snapshot — other tables, other tenants — that neither the
  // snapshot nor the verification covers: refused, naming them (issue 18,
  // item 8).
  // SQL for "schema.table" of the relation whose oid is `oid_sql`.
  static std::string RelName(const std::string& oid_sql) {
    return "(SELECT n.nspname || '.' || r.relname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace "
           "WHERE r.oid = " +
           oid_sql + ")";
  }

  Status ChoosePath() {
    TV_RETURN_IF_ERROR(conn.Run("SAVEPOINT tv_role"));
    replica = conn.Run("SET LOCAL session_replication_role = replica").ok();
    TV_RETURN_IF_ERROR(conn.Run("ROLLBACK TO SAVEPOINT tv_role"));
    TV_RETURN_IF_ERROR(conn.Run("RELEASE SAVEPOINT tv_role"));
    if (replica) return Status::Ok();
    std::vector<std::string> reasons;
    for (const auto& ts : tables) {
      const OperationCounts& o = ts.ops;
      if (o.total() == 0) continue;
      const std::string oid = std::to_string(ts.table->oid);
      // Referential actions other than NO ACTION / RESTRICT, on the events
      // this apply causes on the referenced table.
      TV_ASSIGN_OR_RETURN(auto fks,
                          conn.Exec("SELECT c.conname, " + RelName("c.conrelid") +
                                    ", c.confdeltype, c.confupdtype FROM "
                                    "pg_constraint c WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = " +
                                    oid + " AND ((" + (o.deletes > 0 ? "true" : "false") +
                                    " AND c.confdeltype IN ('c', 'n', 'd')) OR (" + (o.updates > 0 ? "true" : "false") +
                                    " AND c.confupdtype IN ('c', 'n', 'd'))) ORDER BY 1"));
      for (int r = 0; r < fks.rows(); ++r) {
        const bool del = o.deletes > 0 && std::string("cnd").find(fks.GetString(r, 2)) != std::string::npos;
        const std::string action = del ? fks.GetString(r, 2) : fks.GetString(r, 3);
        reasons.push_back("foreign key " + fks.GetString(r, 0) + " (" + fks.GetString(r, 1) + " -> " + ts.table->name +
                          ") ON " + (del ? "DELETE " : "UPDATE ") +
                          (action == "c"   ? "CASCADE"
                           : action == "n" ? "SET NULL"
                                           : "SET DEFAULT"));
      }
      // User triggers that fire in the default role ('O' origin, 'A'
      // always) for the events this apply causes, on the table or any of
      // its partitions (pg_trigger.tgtype: 4 insert, 8 delete, 16 update).
      const int events = (o.inserts > 0 ? 4 : 0) | (o.deletes > 0 ? 8 : 0) | (o.updates > 0 ? 16 : 0);
      TV_ASSIGN_OR_RETURN(
          auto triggers,
          conn.Exec("SELECT t.tgname, " + RelName("t.tgrelid") +
                    " FROM pg_trigger t WHERE NOT "
                    "t.tgisinternal AND t.tgparentid = 0 AND t.tgenabled IN ('O', 'A') AND "
                    "(t.tgtype::int & " +
                    std::to_string(events) + ") <> 0 AND (t.tgrelid = " + oid +
                    " OR t.tgrelid IN (SELECT relid FROM pg_partition_tree(" + oid + "::regclass))) ORDER BY 2, 1"));
      for (int r = 0; r < triggers.rows(); ++r) {
        reasons.push_back("trigger " + triggers.GetString(r, 0) + " on " + triggers.GetString(r, 1));
      }
    }
    if (reasons.empty()) return Status::Ok();
    std::string list;
    for (const auto& r : reasons) list += (list.empty() ? "" : "; ") + r;
    return FailedPrecondition(
        "the apply cannot set session_replication_role (grant SET ON PARAMETER session_replication_role to the "
        "replay user, or make it superuser), and without it Postgres would fire " +
        list +
        ", which can change rows outside the snapshot (other tables, other tenants) that rollback could not put "
        "back; nothing was changed");
  }

  // Runs `f` (queries joining the tenant's live rows with tv_o) with nested
  // loops off: tv_o has no statistics, and the live table's may predate the
  // rows just written (the PITR a rollback undoes inserted them), so the
  // planner took a nested loop with a sequential scan of tv_o per live row:
  // quadratic, a 200k-row rollback sat in its row lock for minutes
  // (BENCHMARKS.md, "replay through the API"). The diff already reads every
  // row of the tenant, so a hash join costs no more than it did.
  // A failing `f` leaves the transaction failed, with its SET LOCAL.
  Status WithoutNestedLoops(const std::function<Status()>& f) {
    TV_RETURN_IF_ERROR(conn.Run("SET LOCAL enable_nestloop = off"));
    TV_RETURN_IF_ERROR(f());
    return conn.Run("SET LOCAL enable_nestloop = on");
  }

  // Invariant 6 for rows that appeared after LockRows: READ COMMITTED lets
  // the diff see a row another transaction inserted into the tenant since
  // the lock, which nothing locked. Every row the apply will update or
  // delete is locked here, after the diff and before the snapshot reads it,
  // so the snapshot holds exactly the version the DML replaces and no write
  // can slip in between (it waits for the apply's commit, then finds the
  // apply's result). A row the diff saw that is gone by now makes the apply
  // start over (kConcurrentChange). Rows inserted after the diff are not in
  // it: the verification finds them and the apply is refused, unchanged.
  Status LockChangedRows(const TableState& ts) {
    const uint64_t want = ts.ops.updates + ts.ops.deletes;
    if (want == 0) return Status::Ok();
    const auto& t = *ts.table;
    std::optional<Result<pg::PgResult>> locked;
    const Status run = WithoutNestedLoops([&] {
      locked = conn.Exec("SELECT count(*) FROM (SELECT 1 FROM " + t.qualified + " l JOIN " + ts.O() + " o ON " +
                         ts.KeyEq("l", "o") + " WHERE o." + kKind + " IN ('u', 'd') AND l." + ts.col(t.tenant).quoted +
                         " = " + tenant_lit + " FOR UPDATE OF l) locked");
      return locked->ok() ? Status::Ok() : locked->status();
    });
    if (!locked) return run;
    const Result<pg::PgResult>& n = *locked;
    if (!n.ok()) {
      if (n.status().code() != StatusCode::kAborted) return n.status();
      return Aborted("rows of tenant " + opt.tenant + " in " + t.name +
                     " that the apply changes stayed locked by another transaction for longer than "
                     "replay.lock_timeout_ms (" +
                     std::to_string(opt.lock_timeout_ms) + " ms); nothing was changed, retry later (" +
                     n.status().message() + ")");
    }
    TV_RETURN_IF_ERROR(run);
    if (n->GetString(0, 0) != std::to_string(want)) {
      return Aborted(std::string(kConcurrentChange) + ": " + t.name + " has " + n->GetString(0, 0) + " of the " +
                     std::to_string(want) + " rows of tenant " + opt.tenant +
                     " the diff would update or delete (rows inserted or deleted since the lock); nothing was changed");
    }
    return Status::Ok();
  }

  // Every fidelity text loaded must read back as itself: a type whose text
  // output does not round-trip cannot be restored exactly (invariant 9).
  // Compared under the server's default output settings, which are the
  // ones capture's walsender wrote the texts with.
  Status CheckTextsRoundTrip(const TableState& ts) {
    bool any = false;
    for (bool t : ts.texts) any = any || t;
    if (!any) return Status::Ok();
    TV_RETURN_IF_ERROR(
        conn.Run("SET LOCAL TimeZone TO DEFAULT; SET LOCAL DateStyle TO DEFAULT; SET LOCAL IntervalStyle TO DEFAULT; "
                 "SET LOCAL extra_float_digits TO DEFAULT"));
    for (size_t k = 0; k < ts.target.size(); ++k) {
      if (!ts.texts[k]) continue;
      const auto& c = ts.col(ts.target[k]);
      const std::string text = std::string("t.") + kText + " ->> " + conn.QuoteLiteral(c.name);
      TV_ASSIGN_OR_RETURN(auto bad,
                          conn.Exec("SELECT " + text + ", t." + c.quoted + "::text, count(*) OVER () FROM " + ts.T() +
                                    " t WHERE t." + kText + " -> " + conn.QuoteLiteral(c.name) + " IS NOT NULL AND t." +
                                    c.quoted + "::text IS DISTINCT FROM " + text + " LIMIT 1"));
      if (bad.rows() > 0) {
        return FailedPrecondition("cannot restore " + ts.Named(ts.target[k]) +
                                  " exactly: its text output does not read back as itself (" +
                                  Quoted(bad.GetString(0, 0)) + " reads back as " + Quoted(bad.GetString(0, 1)) + ", " +
                                  bad.GetString(0, 2) + " row(s)); nothing was changed");
      }
    }
    return conn.Run(kApplySettings);
  }

  static std::string Quoted(const std::string& s) {
    return "\"" + (s.size() > 200 ? s.substr(0, 200) + "..." : s) + "\"";
  }

  // Postgres lets no UPDATE set a GENERATED ALWAYS identity column (INSERT
  // has OVERRIDING SYSTEM VALUE, UPDATE nothing): an update that must change
  // one is refused before anything changes.
  Status CheckIdentityUpdates(const TableState& ts) {
    for (size_t i : ts.Payload()) {
      if (ts.col(i).identity != 'a') continue;
      const std::string& q = ts.col(i).quoted;
      TV_ASSIGN_OR_RETURN(
          auto n, conn.Exec("SELECT count(*) FROM " + ts.O() + " o JOIN " + ts.T() + " t ON " + ts.KeyEq("t", "o") +
                            " JOIN " + ts.table->qualified + " l ON " + ts.KeyEq("l", "o") + " WHERE o." + kKind +
                            " = 'u' AND l." + q + " IS DISTINCT FROM t." + q));
      if (n.Get(0, 0) != "0") {
        return FailedPrecondition("cannot restore " + ts.Named(i) + ": it is GENERATED ALWAYS AS IDENTITY and " +
                                  n.GetString(0, 0) +
                                  " row(s) must change it, which no UPDATE may do; nothing was changed");
      }
    }
    return Status::Ok();
  }

  // The tenant's rows in scope, now, against the target, in every target
  // column: a count and two sums of 64-bit hashes of the rows' text
  // (order-independent), computed in SQL on both sides. Returns the
  // target's digest; FailedPrecondition naming a differing row otherwise.
  Status VerifyTable(const TableState& ts, crypto::Sha256* digest) {
    const auto& t = *ts.table;
    const std::string row = "ROW(" + ts.Cols("x.", ts.target) + ")::text";
    std::string live =
        "SELECT " + row + " AS r FROM " + t.qualified + " x WHERE x." + ts.col(t.tenant).quoted + " = " + tenant_lit;
    if (opt.keyed) live += " AND (" + ts.Key("x.") + ") IN (SELECT " + ts.Key("") + " FROM " + ts.K() + ")";
    const std::string target = "SELECT " + row + " AS r FROM " + ts.T() + " x";
    // hashtextextended: Postgres's own 64-bit text hash (hash partitioning's),
    // two seeds for 128 bits; far cheaper than md5 and hex conversions.
    auto sums = [&](const std::string& rows) {
      return "SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(r, 0)::numeric), 0) || ':' || "
             "coalesce(sum(hashtextextended(r, 1)::numeric), 0) FROM (" +
             rows + ") q";
    };
    TV_ASSIGN_OR_RETURN(auto both, conn.Exec("SELECT (" + sums(live) + "), (" + sums(target) + ")"));
    const std::string now = both.GetString(0, 0), want = both.GetString(0, 1);
    if (now != want) {
      TV_ASSIGN_OR_RETURN(auto diff, conn.Exec("(SELECT 'now', r FROM (" + live + " EXCEPT ALL " + target +
                                               ") a LIMIT 1) UNION ALL (SELECT 'target', r FROM (" + target +
                                               " EXCEPT ALL " + live + ") b LIMIT 1)"));
      std::string example;
      for (int r = 0; r < diff.rows(); ++r) example += " " + diff.GetString(r, 0) + ": " + Quoted(diff.GetString(r, 1));
      return FailedPrecondition("verification failed: after the apply the rows of tenant " + opt.tenant + " in " +
                                t.name + " differ from the target (" + now + " against " + want + ";" + example +
                                "); rolled back, nothing was changed");
    }
    digest->Update(t.name);
    digest->Update(std::string_view("\n", 1));
    digest->Update(want);
    digest->Update(std::string_view("\n", 1));
    return Status::Ok();
  }

  // Builds tv_o_<i> and checks the operations it can know to fail.
  Status DiffTable(TableState& ts) {
    const auto& t = *ts.table;
    const std::string tenant_col = ts.col(t.tenant).quoted;
    TV_ASSIGN_OR_RETURN(auto foreign, conn.Exec("SELECT count(*) FROM " + ts.T() + " WHERE " + tenant_col +
                                                " IS DISTINCT FROM " + tenant_lit));
    if (foreign.Get(0, 0) != "0") {
      return Internal("target rows of " + t.name + " belong to another tenant than " + opt.tenant +
                      " (refused: a tenant's apply never writes another tenant's rows)");
    }
    if (opt.keyed) {
      TV_RETURN_IF_ERROR(conn.Run("INSERT INTO " + ts.K() + " SELECT " + ts.Key("") + " FROM " + ts.T()));
      TV_RETURN_IF_ERROR(conn.Run("ANALYZE " + ts.K()));
    }
    // Temporary tables have no statistics until analyzed; without them the
    // joins below can get nested-loop plans that are quadratic in the rows.
    TV_RETURN_IF_ERROR(conn.Run("ANALYZE " + ts.T()));
    std::vector<size_t> payload = ts.Payload();
    std::string live_cols = ts.Cols("", t.pk);
    for (size_t i : payload) live_cols += ", " + ts.col(i).quoted;
    std::string live = "SELECT " + live_cols + " FROM " + t.qualified + " WHERE " + tenant_col + " = " + tenant_lit;
    if (opt.keyed) live += " AND (" + ts.Key("") + ") IN (SELECT " + ts.Key("") + " FROM " + ts.K() + ")";
    std::string first_key = ts.col(t.pk.front()).quoted;
    std::string keys;
    for (size_t i : t.pk) {
      keys += ", coalesce(l." + ts.col(i).quoted + ", t." + ts.col(i).quoted + ") AS " + ts.col(i).quoted;
    }
    std::string differ = "false";
    if (!payload.empty()) {
      std::string l, r;
      for (size_t i : payload) {
        l += (l.empty() ? "" : ", ") + std::string("l.") + ts.col(i).quoted + "::text";
        r += (r.empty() ? "" : ", ") + std::string("t.") + ts.col(i).quoted + "::text";
      }
      differ = "ROW(" + l + ") IS DISTINCT FROM ROW(" + r + ")";
    }
    // The live table may have no statistics for rows written just before
    // (a 200k-row rollback's keyed diff then ran minutes as a nested loop
    // over tv_k): the diff is a set-based join, hash or merge, never that.
    TV_RETURN_IF_ERROR(conn.Run("SET LOCAL enable_nestloop = off"));
    TV_RETURN_IF_ERROR(conn.Run("CREATE TEMP TABLE " + ts.O() + " ON COMMIT DROP AS SELECT CASE WHEN l." + first_key +
                                " IS NULL THEN 'i' WHEN t." + first_key + " IS NULL THEN 'd' ELSE 'u' END AS " + kKind +
                                keys + " FROM (" + live + ") l FULL JOIN " + ts.T() + " t ON " + ts.KeyEq("l", "t") +
                                " WHERE l." + first_key + " IS NULL OR t." + first_key + " IS NULL OR " + differ));
    TV_RETURN_IF_ERROR(conn.Run("SET LOCAL enable_nestloop = on"));
    // A key the tenant had at the target that another tenant holds now
    // cannot be inserted without touching that tenant's row: refuse.
    TV_ASSIGN_OR_RETURN(auto taken, conn.Exec("SELECT count(*), min(ROW(" + ts.Cols("x.", t.pk) + ")::text) FROM " +
                                              ts.O() + " o JOIN " + t.qualified + " x ON " + ts.KeyEq("x", "o") +
                                              " WHERE o." + kKind + " = 'i'"));
    if (taken.Get(0, 0) != "0") {
      return FailedPrecondition(std::string(taken.Get(0, 0)) + " row(s) of " + t.name + " that tenant " + opt.tenant +
                                " must get back now belong to another tenant (first key " +
                                std::string(taken.Get(0, 1)) +
                                "); timevault never writes another tenant's rows, so nothing was changed");
    }
    return Status::Ok();
  }

  Status ApplyReplicaMode() {
    std::vector<const TableState*> all;
    for (const auto& ts : tables) all.push_back(&ts);
    TV_RETURN_IF_ERROR(RunPhase('d', all));
    TV_RETURN_IF_ERROR(RunPhase('u', all));
    TV_RETURN_IF_ERROR(RunPhase('i', all));
    TV_RETURN_IF_ERROR(conn.Run("SET LOCAL session_replication_role = origin"));
    for (const auto& fk : catalog->foreign_keys) TV_RETURN_IF_ERROR(CheckForeignKey(fk));
    return Status::Ok();
  }

  // After a replica-mode apply: no row the apply wrote references a missing
  // parent, and no row anywhere references a row the apply deleted.
  Status CheckForeignKey(const ForeignKey& fk) {
    auto eq = [&](const std::string& a, const std::vector<std::string>& ac, const std::string& b,
                  const std::vector<std::string>& bc) {
      std::string out;
      for (size_t i = 0; i < ac.size() && i < bc.size(); ++i) {
        out += (out.empty() ? "" : " AND ") + a + "." + ac[i] + " = " + b + "." + bc[i];
      }
      return out;
    };
    std::string child_set;
    for (const auto& c : fk.child_cols)
      child_set += (child_set.empty() ? "" : " AND ") + std::string("c.") + c + " IS NOT NULL";
    const std::string missing_parent = child_set + " AND NOT EXISTS (SELECT 1 FROM " + fk.parent_sql + " p WHERE " +
                                       eq("p", fk.parent_cols, "c", fk.child_cols) + ")";
    auto violation = [&](const std::string& sql, const std::string& what) -> Status {
      TV_ASSIGN_OR_RETURN(auto r, conn.Exec(sql));
      if (r.rows() == 0) return Status::Ok();
      return FailedPrecondition("the result would break foreign key " + fk.name + " (" + fk.child + " -> " + fk.parent +
                                "): " + what + " " + r.GetString(0, 0) +
                                "; nothing was changed (PITR or restore the related tables together)");
    };
    std::string key_text = "ROW(";
    for (size_t i = 0; i < fk.child_cols.size(); ++i) key_text += (i ? ", c." : "c.") + fk.child_cols[i];
    key_text += ")::text";
    if (auto it = by_name.find(fk.child); it != by_name.end()) {
      const TableState& ts = tables[it->second];
      if (ts.ops.inserts + ts.ops.updates > 0) {
        TV_RETURN_IF_ERROR(violation("SELECT " + key_text + " FROM " + ts.O() + " o JOIN " + fk.child_sql + " c ON " +
                                         ts.KeyEq("c", "o") + " WHERE o." + kKind + " IN ('i', 'u') AND " +
                                         missing_parent + " LIMIT 1",
                                     "a restored row references the missing key"));
      }
    }
    if (auto it = by_name.find(fk.parent); it != by_name.end()) {
      const TableState& ts = tables[it->second];
      if (ts.ops.deletes + ts.ops.updates == 0) return Status::Ok();
      // Referenced columns that are the primary key: only deleted keys can
      // be missing, and tv_o_<i> has them. Otherwise: check the whole child.
      std::vector<std::string> pk;
      for (size_t i : ts.table->pk) pk.push_back(ts.col(i).quoted);
      std::vector<std::string> sorted_ref = fk.parent_cols, sorted_pk = pk;
      std::sort(sorted_ref.begin(), sorted_ref.end());
      std::sort(sorted_pk.begin(), sorted_pk.end());
      if (sorted_ref == sorted_pk) {
        if (ts.ops.deletes == 0) return Status::Ok();
        return violation("SELECT " + key_text + " FROM " + ts.O() + " o JOIN " + fk.child_sql + " c ON " +
                             eq("o", fk.parent_cols, "c", fk.child_cols) + " WHERE o." + kKind + " = 'd' LIMIT 1",
                         "a row of " + fk.child + " still references the deleted key");
      }
      return violation("SELECT " + key_text + " FROM " + fk.child_sql + " c WHERE " + missing_parent + " LIMIT 1",
                       "a row of " + fk.child + " references the missing key");
    }
    return Status::Ok();
  }

  Status ApplyOrdered() {
    std::vector<std::string> names;
    for (const auto& ts : tables) names.push_back(ts.table->name);
    std::vector<std::string> cycle;
    std::vector<const TableState*> parents_first;
    for (const auto& name : ParentsFirst(*catalog, names, &cycle)) parents_first.push_back(&tables[by_name[name]]);
    TV_RETURN_IF_ERROR(conn.Run("SET CONSTRAINTS ALL DEFERRED"));
    TV_RETURN_IF_ERROR(conn.Run("SAVEPOINT tv_apply"));
    Status first = RunOrder(parents_first, false);
    if (first.ok()) return first;
    if (!IsConstraintViolation(first)) return first;
    // Inserting before deleting fails when a row to delete holds a unique
    // value a row to insert needs; the other order handles that.
    TV_RETURN_IF_ERROR(conn.Run("ROLLBACK TO SAVEPOINT tv_apply"));
    Status second = RunOrder(parents_first, true);
    if (second.ok()) return second;
    std::string hint;
    if (!cycle.empty()) {
      hint = " (tables on a cycle of non-deferrable foreign keys: ";
      for (const auto& c : cycle) hint += c + " ";
      hint += "- declare one of those keys DEFERRABLE)";
    }
    return FailedPrecondition("the changes violate a constraint in either order; nothing was changed: " +
                              first.message() + "; deletes first: " + second.message() + hint);
  }

  Status RunPhase(char kind, const std::vector<const TableState*>& order) {
    for (const TableState* ts : order) {
      const auto& t = *ts->table;
      const std::string tenant_col = ts->col(t.tenant).quoted;
      uint64_t expected = kind == 'i' ? ts->ops.inserts : kind == 'u' ? ts->ops.updates : ts->ops.deletes;
      if (expected == 0) continue;
      std::string sql;
      if (kind == 'i') {
        sql = "INSERT INTO " + t.qualified + " (" + ts->Cols("", ts->target) + ") OVERRIDING SYSTEM VALUE SELECT " +
              ts->Cols("t.", ts->target) + " FROM " + ts->T() + " t JOIN " + ts->O() + " o ON " + ts->KeyEq("t", "o") +
              " WHERE o." + kKind + " = 'i'";
      } else if (kind == 'u') {
        std::string set;
        for (size_t i : ts->Payload()) {
          if (ts->col(i).identity == 'a') continue;  // never writable by UPDATE; equal (CheckIdentityUpdates)
          set += (set.empty() ? "" : ", ") + ts->col(i).quoted + " = t." + ts->col(i).quoted;
        }
        if (set.empty()) continue;  // only always-identity columns, equal (CheckIdentityUpdates)
        sql = "UPDATE " + t.qualified + " l SET " + set + " FROM " + ts->T() + " t JOIN " + ts->O() + " o ON " +
              ts->KeyEq("t", "o") + " WHERE o." + kKind + " = 'u' AND " + ts->KeyEq("l", "o") + " AND l." + tenant_col +
              " = " + tenant_lit;
      } else {
        sql = "DELETE FROM " + t.qualified + " l USING " + ts->O() + " o WHERE o." + kKind + " = 'd' AND " +
              ts->KeyEq("l", "o") + " AND l." + tenant_col + " = " + tenant_lit;
      }
      // Update and delete join the tenant's live rows with tv_o.
      Status s = kind == 'i' ? conn.Run(sql) : WithoutNestedLoops([&] { return conn.Run(sql); });
      if (!s.ok()) {
        return Status(s.code(), std::string(kind == 'i'   ? "inserting into "
                                            : kind == 'u' ? "updating "
                                                          : "deleting from ") +
                                    t.name + ": " + s.message());
      }
    }
    return Status::Ok();
  }

  Status RunOrder(const std::vector<const TableState*>& parents_first, bool deletes_first) {
    std::vector<const TableState*> children_first(parents_first.rbegin(), parents_first.rend());
    if (deletes_first) {
      TV_RETURN_IF_ERROR(RunPhase('d', children_first));
      TV_RETURN_IF_ERROR(RunPhase('i', parents_first));
      return RunPhase('u', parents_first);
    }
    TV_RETURN_IF_ERROR(RunPhase('i', parents_first));
    TV_RETURN_IF_ERROR(RunPhase('u', parents_first));
    return RunPhase('d', children_first);
  }
};

Applier::Applier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Applier::~Applier() = default;

uint64_t Applier::skipped_rows() const { return impl_->skipped; }
const std::string& Applier::verified_digest() const { return impl_->verified_digest; }

Result<std::unique_ptr<Applier>> Applier::Begin(const Catalog& catalog, const ApplyOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->catalog = &catalog;
  TV_ASSIGN_OR_RETURN(impl->conn, pg::PgConn::Connect(options.conninfo));
  auto& conn = impl->conn;
  impl->tenant_lit = conn.QuoteLiteral(options.tenant);
  TV_RETURN_IF_ERROR(conn.Run("SET client_encoding = 'UTF8'"));
  TV_RETURN_IF_ERROR(
      conn.Run(options.lock ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ"));
  impl->open = true;
  TV_RETURN_IF_ERROR(conn.Run("SET LOCAL lock_timeout = " + std::to_string(options.lock_timeout_ms)));
  TV_RETURN_IF_ERROR(conn.Run(kApplySettings));
  for (const auto& name : options.tables) {
    auto it = catalog.tables.find(name);
    if (it == catalog.tables.end()) return NotFound("table " + name + " is not in the catalog");
    TableState ts;
    ts.table = &it->second;
    ts.index = impl->tables.size();
    // Every column (generated ones are not in the catalog's list): one
    // neither the row image nor a fidelity text carries is refused, never
    // left out of the comparison (invariant 9).
    for (size_t i = 0; i < ts.table->columns.size(); ++i) ts.target.push_back(i);
    if (!options.keyed) {
      for (size_t i : ts.target) {
        const auto& c = ts.table->columns[i];
        auto conv = ValueConverter::Resolve(c.type);
        ts.converters.push_back(conv.ok() ? std::optional<ValueConverter>(std::move(conv).value()) : std::nullopt);
        std::optional<std::string_view> loss = DebeziumLoss(c.type);
        ts.loss.emplace_back(loss ? *loss : std::string_view());
      }
      ts.texts.assign(ts.target.size(), false);
    }
    impl->by_name[name] = ts.index;
    impl->tables.push_back(std::move(ts));
  }
  if (options.lock) TV_RETURN_IF_ERROR(impl->LockRows());
  TV_RETURN_IF_ERROR(impl->CreateTempTables());
  return std::unique_ptr<Applier>(new Applier(std::move(impl)));
}

Status Applier::AddRow(const store::Row& row) {
  auto& m = *impl_;
  auto it = m.by_name.find(row.table);
  if (it == m.by_name.end()) {
    ++m.skipped;
    return Status::Ok();
  }
  TableState& ts = m.tables[it->second];
  if (m.copying != static_cast<int>(ts.index)) {
    std::vector<std::string> cols;
    for (size_t i : ts.target) cols.push_back(ts.col(i).quoted);
    cols.emplace_back(kText);
    TV_RETURN_IF_ERROR(m.StartCopy(ts.index, cols, ts.T()));
  }
  rapidjson::Document doc;
  doc.Parse<kRowImageParseFlags>(row.json.data(), row.json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return m.Fail(Corruption("row image of " + row.table + " key " + row.pk + " is not a JSON object"));
  }
  // The fidelity texts (store::kTextMember): Postgres's own text of the
  // columns whose Debezium value is lossy or absent.
  const rapidjson::Value* texts = nullptr;
  if (auto t = doc.FindMember(rapidjson::StringRef(store::kTextMember.data(), store::kTextMember.size()));
      t != doc.MemberEnd()) {
    if (!t->value.IsObject()) {
      return m.Fail(Corruption("row image of " + row.table + " key " + row.pk + ": its texts are not an object"));
    }
    texts = &t->value;
  }
  std::string line;
  for (size_t k = 0; k < ts.target.size(); ++k) {
    if (k) line.push_back('\t');
    TV_RETURN_IF_ERROR(m.AppendColumn(ts, k, doc, texts, row.pk, &line));
  }
  line.push_back('\t');
  if (texts == nullptr) {
    AppendCopyField(&line, std::nullopt);
  } else {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    texts->Accept(w);
    AppendCopyText(&line, std::string_view(sb.GetString(), sb.GetSize()));
  }
  ++ts.rows;
  line.push_back('\n');
  if (m.opt.stage) ts.staged.append(line);
  return m.PutLines(line);
}

Result<bool> Applier::AddStaged(const StagedTarget& staged) {
  auto& m = *impl_;
  if (m.opt.keyed) return Internal("AddStaged: a keyed target");
  for (const auto& [name, table] : staged.tables) {
    auto it = m.by_name.find(name);
    if (it == m.by_name.end() || m.tables[it->second].Shape() != table.columns) return false;
  }
  for (const auto& [name, table] : staged.tables) {
    TableState& ts = m.tables[m.by_name.at(name)];
    std::vector<std::string> cols;
    for (size_t i : ts.target) cols.push_back(ts.col(i).quoted);
    cols.emplace_back(kText);
    TV_RETURN_IF_ERROR(m.StartCopy(ts.index, cols, ts.T()));
    for (size_t at = 0; at < table.copy.size(); at += kCopyChunk) {
      if (Status s = m.conn.CopyPut(std::string_view(table.copy).substr(at, kCopyChunk)); !s.ok()) {
        return m.Fail(m.CopyError(ts.index, s));
      }
    }
    TV_RETURN_IF_ERROR(m.EndCopy());
    ts.rows = table.rows;
    if (table.texts.size() == ts.texts.size()) ts.texts = table.texts;
    if (m.opt.stage) ts.staged = table.copy;
  }
  m.skipped = staged.skipped;
  return true;
}

std::shared_ptr<const StagedTarget> Applier::TakeStaged() {
  auto& m = *impl_;
  if (!m.opt.stage || m.opt.keyed || !m.diffed) return nullptr;
  auto out = std::make_shared<StagedTarget>();
  for (auto& ts : m.tables) {
    StagedTarget::Table t;
    t.columns = ts.Shape();
    t.copy = std::move(ts.staged);
    t.rows = ts.rows;
    t.texts = ts.texts;
    ts.staged.clear();
    out->tables.emplace(ts.table->name, std::move(t));
  }
  out->skipped = m.skipped;
  return out;
}

Status Applier::AddKeyed(const std::string& table, const KeyedTable& keyed) {
  auto& m = *impl_;
  auto it = m.by_name.find(table);
  if (it == m.by_name.end()) return NotFound("table " + table + " is not in the apply's scope");
  TableState& ts = m.tables[it->second];
  // The snapshot's columns must all still exist; the target table gets
  // exactly those (columns added since are left as they are).
  std::vector<size_t> target;
  std::vector<std::string> cols;
  for (const auto& name : keyed.columns) {
    auto c = std::find_if(ts.table->columns.begin(), ts.table->columns.end(),
                          [&](const CatalogColumn& col) { return col.name == name; });
    if (c == ts.table->columns.end()) {
      return FailedPrecondition("column " + name + " of " + table +
                                " no longer exists; the snapshot cannot be put back");
    }
    target.push_back(static_cast<size_t>(c - ts.table->columns.begin()));
    cols.push_back(c->quoted);
  }
  for (size_t i : ts.table->pk) {
    if (std::find(target.begin(), target.end(), i) == target.end()) {
      return FailedPrecondition("the snapshot of " + table + " lacks key column " + ts.col(i).name);
    }
  }
  if (target != ts.target) {
    TV_RETURN_IF_ERROR(m.EndCopy());
    TV_RETURN_IF_ERROR(m.conn.Run("DROP TABLE " + ts.T()));
    ts.target = target;
    TV_RETURN_IF_ERROR(m.conn.Run("CREATE TEMP TABLE " + ts.T() + " ON COMMIT DROP AS SELECT " + ts.Cols("", target) +
                                  " FROM " + ts.table->qualified + " WITH NO DATA"));
  }
  TV_RETURN_IF_ERROR(m.StartCopy(ts.index, cols, ts.T()));
  for (const auto& line : keyed.rows) TV_RETURN_IF_ERROR(m.Put(line));
  ts.rows += keyed.rows.size();
  TV_RETURN_IF_ERROR(m.EndCopy());
  std::vector<std::string> key_cols;
  for (size_t i : ts.table->pk) key_cols.push_back(ts.col(i).quoted);
  TV_RETURN_IF_ERROR(m.StartCopy(ts.index, key_cols, ts.K()));
  for (const auto& line : keyed.absent) TV_RETURN_IF_ERROR(m.Put(line));
  TV_RETURN_IF_ERROR(m.EndCopy());
  if (!keyed.has_after) return Status::Ok();
  ts.after_cols.clear();
  for (const auto& name : keyed.after_columns) {
    auto c = std::find_if(ts.table->columns.begin(), ts.table->columns.end(),
                          [&](const CatalogColumn& col) { return col.name == name; });
    if (c == ts.table->columns.end()) {
      return FailedPrecondition("column " + name + " of " + table +
                                " no longer exists; the snapshot cannot be put back");
    }
    ts.after_cols.push_back(static_cast<size_t>(c - ts.table->columns.begin()));
  }
  TV_RETURN_IF_ERROR(m.conn.Run("CREATE TEMP TABLE " + ts.A() + " ON COMMIT DROP AS SELECT " + ts.Key("") +
                                ", 0::bigint AS " + kHash + " FROM " + ts.table->qualified + " WITH NO DATA"));
  key_cols.emplace_back(kHash);
  TV_RETURN_IF_ERROR(m.StartCopy(ts.index, key_cols, ts.A()));
  for (const auto& line : keyed.after) TV_RETURN_IF_ERROR(m.Put(line));
  TV_RETURN_IF_ERROR(m.EndCopy());
  ts.has_after = true;
  return m.conn.Run("ANALYZE " + ts.A());
}

Result<DiffResult> Applier::Diff() {
  auto& m = *impl_;
  TV_RETURN_IF_ERROR(m.EndCopy());
  DiffResult out;
  crypto::Sha256 digest;
  for (auto& ts : m.tables) {
    if (!m.opt.keyed) TV_RETURN_IF_ERROR(m.CheckTextsRoundTrip(ts));
    TV_RETURN_IF_ERROR(m.DiffTable(ts));
    out.target_rows += ts.rows;
    digest.Update(ts.table->name);
    digest.Update(std::string_view("\n", 1));
    TV_RETURN_IF_ERROR(m.conn.CopyOut("COPY (SELECT " + std::string(kKind) + ", " + ts.Key("") + " FROM " + ts.O() +
                                          " ORDER BY " + ts.Key("") + ") TO STDOUT",
                                      [&](std::string_view line) {
                                        digest.Update(line);
                                        switch (line.empty() ? 0 : line[0]) {
                                          case 'i': ++ts.ops.inserts; break;
                                          case 'u': ++ts.ops.updates; break;
                                          case 'd': ++ts.ops.deletes; break;
                                          default: return Internal("diff: unexpected operation line");
                                        }
                                        return Status::Ok();
                                      }));
    TV_RETURN_IF_ERROR(m.CheckIdentityUpdates(ts));
    if (m.opt.lock) TV_RETURN_IF_ERROR(m.LockChangedRows(ts));
    if (ts.ops.total() > 0) out.by_table.push_back({ts.table->name, ts.ops});
    out.ops.inserts += ts.ops.inserts;
    out.ops.updates += ts.ops.updates;
    out.ops.deletes += ts.ops.deletes;
  }
  out.digest = digest.FinishHex();
  TV_RETURN_IF_ERROR(m.ChoosePath());
  m.diffed = true;
  return out;
}

Status Applier::SampleChanges(uint64_t limit,
                              const std::function<Status(const std::string& table, std::string change)>& emit) {
  auto& m = *impl_;
  if (!m.diffed) return Internal("SampleChanges before Diff");
  for (const auto& ts : m.tables) {
    if (ts.ops.total() == 0) continue;
    TV_RETURN_IF_ERROR(
        m.SampleRows(ts, "true", limit, [&](std::string change) { return emit(ts.table->name, std::move(change)); }));
  }
  return Status::Ok();
}

Result<Reverts> Applier::FindReverts(uint64_t limit,
                                     const std::function<Status(const std::string& table, std::string change)>& emit) {
  auto& m = *impl_;
  if (!m.diffed || !m.opt.keyed) return Internal("FindReverts before Diff, or of a whole-tenant target");
  Reverts out;
  crypto::Sha256 digest;
  for (const auto& ts : m.tables) {
    if (ts.ops.total() == 0) continue;
    if (!ts.has_after) {
      out.known = false;
      continue;
    }
    const auto& t = *ts.table;
    const std::string where = Impl::RevertWhere(ts);
    uint64_t n = 0;
    digest.Update(t.name);
    digest.Update(std::string_view("\n", 1));
    TV_RETURN_IF_ERROR(m.conn.CopyOut("COPY (SELECT o." + std::string(kKind) + ", " + ts.Key("o.") + ", " +
                                          Impl::RowHash("l.", ts, ts.after_cols) + " FROM " + ts.O() + " o LEFT JOIN " +
                                          t.qualified + " l ON " + ts.KeyEq("l", "o") + " AND l." +
                                          ts.col(t.tenant).quoted + " = " + m.tenant_lit + Impl::RevertJoin(ts) +
                                          " WHERE " + where + " ORDER BY " + ts.Key("o.") + ") TO STDOUT",
                                      [&](std::string_view line) {
                                        digest.Update(line);
                                        ++n;
                                        return Status::Ok();
                                      }));
    if (n == 0) continue;
    out.count += n;
    out.by_table[t.name] = n;
    TV_RETURN_IF_ERROR(m.SampleRows(
        ts, where, limit, [&](std::string change) { return emit(t.name, std::move(change)); }, Impl::RevertJoin(ts)));
  }
  out.digest = digest.FinishHex();
  return out;
}

Result<Applier::SnapshotPart> Applier::SaveSnapshot(ArchiveWriter* archive) {
  auto& m = *impl_;
  if (!m.diffed) return Internal("SaveSnapshot before Diff");
  SnapshotPart part;
  TV_ASSIGN_OR_RETURN(part.lsn, CurrentLsn(m.conn));
  std::vector<std::pair<std::string, std::string>> tables_meta;  // name -> json
  for (const auto& ts : m.tables) {
    if (ts.ops.total() == 0) continue;
    const auto& t = *ts.table;
    const std::string file = "t" + std::to_string(ts.index);
    std::vector<size_t> all = ts.AllColumns();
    uint64_t rows = 0, absent = 0;
    auto add = [&](const std::string& name, uint64_t* count) {
      return [&, name, count](std::string_view line) {
        if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        ++*count;
        return archive->Add(name, line);
      };
    };
    if (ts.ops.updates + ts.ops.deletes > 0) {
      TV_RETURN_IF_ERROR(m.WithoutNestedLoops([&] {
        return m.conn.CopyOut("COPY (SELECT " + ts.Cols("l.", all) + " FROM " + t.qualified + " l JOIN " + ts.O() +
                                  " o ON " + ts.KeyEq("l", "o") + " WHERE o." + kKind + " IN ('u', 'd') AND l." +
                                  ts.col(t.tenant).quoted + " = " + m.tenant_lit + " ORDER BY " + ts.Key("l.") +
                                  ") TO STDOUT",
                              add(file + ".rows", &rows));
      }));
    }
    if (ts.ops.inserts > 0) {
      TV_RETURN_IF_ERROR(m.conn.CopyOut("COPY (SELECT " + ts.Key("") + " FROM " + ts.O() + " WHERE " + kKind +
                                            " = 'i' ORDER BY " + ts.Key("") + ") TO STDOUT",
                                        add(file + ".absent", &absent)));
    }
    // What the apply will leave in each row it inserts or updates: the
    // target row, which the verification proves the live row equals. A
    // rollback preview compares the live rows with it (FindReverts).
    uint64_t after = 0;
    if (ts.ops.inserts + ts.ops.updates > 0) {
      TV_RETURN_IF_ERROR(m.conn.CopyOut("COPY (SELECT " + ts.Key("t.") + ", " + Impl::RowHash("t.", ts, ts.target) +
                                            " FROM " + ts.T() + " t JOIN " + ts.O() + " o ON " + ts.KeyEq("t", "o") +
                                            " WHERE o." + kKind + " IN ('i', 'u') ORDER BY " + ts.Key("t.") +
                                            ") TO STDOUT",
                                        add(file + ".after", &after)));
    }
    part.rows += rows;
    part.absent += absent;
    tables_meta.emplace_back(t.name, JsonString([&](auto& w) {
                               w.StartObject();
                               w.Key("file");
                               w.String(file.c_str());
                               w.Key("columns");
                               w.StartArray();
                               for (size_t i : all) w.String(ts.col(i).name.c_str());
                               w.EndArray();
                               w.Key("key");
                               w.StartArray();
                               for (size_t i : t.pk) w.String(ts.col(i).name.c_str());
                               w.EndArray();
                               w.Key("rows");
                               w.Uint64(rows);
                               w.Key("absent");
                               w.Uint64(absent);
                               w.Key("after");
                               w.Uint64(after);
                               w.Key("after_columns");
                               w.StartArray();
                               for (size_t i : ts.target) w.String(ts.col(i).name.c_str());
                               w.EndArray();
                               w.EndObject();
                             }));
  }
  part.tables_json = "{";
  for (size_t i = 0; i < tables_meta.size(); ++i) {
    if (i) part.tables_json += ",";
    part.tables_json += JsonString([&](auto& w) { w.String(tables_meta[i].first.c_str()); });
    part.tables_json += ":" + tables_meta[i].second;
  }
  part.tables_json += "}";
  return part;
}

Result<Lsn> Applier::ApplyAndCommit(const std::string& message_json, const std::function<void()>& verifying) {
  auto& m = *impl_;
  if (!m.diffed) return Internal("ApplyAndCommit before Diff");
  // Replica mode: neither user triggers (an "updated = now()" trigger would
  // change the restored values) nor foreign-key triggers fire, so rows can
  // be written in the order unique constraints need (deletes, updates,
  // inserts); every foreign key touching the scope is then checked
  // explicitly. Without the privilege to set it, the ordered path below.
  if (m.replica) {
    TV_RETURN_IF_ERROR(m.conn.Run("SET LOCAL session_replication_role = replica"));
    TV_RETURN_IF_ERROR(m.ApplyReplicaMode());
  } else {
    spdlog::warn(
        "replay: cannot set session_replication_role (grant SET ON PARAMETER session_replication_role, or "
        "superuser); applying in foreign-key order with triggers firing");
    TV_RETURN_IF_ERROR(m.ApplyOrdered());
  }
  // Invariant 9: the apply proves itself before it commits.
  if (verifying) verifying();
  crypto::Sha256 digest;
  for (const auto& ts : m.tables) {
    if (Status s = m.VerifyTable(ts, &digest); !s.ok()) {
      (void)m.conn.Run("ROLLBACK");
      m.open = false;
      return s;
    }
  }
  m.verified_digest = digest.FinishHex();
  TV_RETURN_IF_ERROR(
      m.conn.ExecParams("SELECT pg_logical_emit_message(true, 'timevault', $1)", {message_json}).status());
  if (Status s = m.conn.Run("COMMIT"); !s.ok()) {
    m.open = false;
    return Status(s.code(), "commit failed, nothing was changed: " + s.message());
  }
  m.open = false;
  return CurrentLsn(m.conn);
}

}  // namespace timevault::replay
