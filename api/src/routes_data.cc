// Streamed exports: GET /v1/tenants/{tenant}/state and .../history.
//
// The target is resolved before the first byte is sent, so "past the
// recoverable point" is a 422 with a JSON error. A store error after the
// stream started can no longer change the status: the connection is closed
// without the final chunk, which every HTTP client reports as a truncated
// response rather than a complete one.
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "server_impl.h"
#include "timevault/core/csv.h"

namespace timevault::api {

using config::Role;

Result<CommitTime> CallerTime(const Call& c, const std::string& what, std::string_view text) {
  const std::string zone = c.state != nullptr ? c.state->cfg.api.time_zone : std::string();
  std::optional<int32_t> offset;
  if (!zone.empty()) offset = ParseUtcOffset(zone);  // validated by config
  if (auto t = CommitTime::ParseStrict(text, offset)) return *t;
  return InvalidArgument(what + ": not a valid RFC 3339 time" +
                         (offset ? std::string(" (zone-less times are read at api.time_zone ") + zone + ")"
                                 : std::string(" with a zone (like 2026-11-27T08:00:00Z); a time without a zone is "
                                               "refused unless api.time_zone states one")) +
                         ": '" + std::string(text) + "'");
}

namespace {

constexpr size_t kChunkBytes = 64 * 1024;

Result<std::optional<std::string>> PathTenant(Call& c) { return std::optional<std::string>(c.params[0]); }

// The commit `at` names (time or lsn query parameter); default: the recoverable point.
Result<store::Point> ResolveAt(store::StateReader& reader, const Call& c, const char* time_key, const char* lsn_key) {
  auto at = Query(c, time_key);
  auto lsn = lsn_key ? Query(c, lsn_key) : std::nullopt;
  if (at && lsn) return InvalidArgument("give at most one of '" + std::string(time_key) + "' and '" + lsn_key + "'");
  TV_ASSIGN_OR_RETURN(auto recoverable, reader.RecoverablePoint());
  if (lsn) {
    auto l = Lsn::Parse(*lsn);
    if (!l) return InvalidArgument("query parameter '" + std::string(lsn_key) + "': not an LSN like 16/B374D848");
    if (*l > recoverable.lsn) {
      return OutOfRange(std::string(lsn_key) + " " + l->ToString() + " is past the recoverable point " +
                        recoverable.lsn.ToString());
    }
    return store::Point{*l, CommitTime()};
  }
  if (!at) return recoverable;
  TV_ASSIGN_OR_RETURN(CommitTime t, CallerTime(c, "query parameter '" + std::string(time_key) + "'", *at));
  return reader.ResolveTime(t);
}

// One CSV line from a row image, in `columns` order (strings as is, others as JSON).
std::string CsvLine(const rapidjson::Document& row, const std::vector<std::string>& columns) {
  std::string line;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) line += ',';
    auto it = row.FindMember(columns[i].c_str());
    if (it == row.MemberEnd() || it->value.IsNull()) continue;
    if (it->value.IsString()) {
      line += csv::Field(std::string_view(it->value.GetString(), it->value.GetStringLength()));
    } else {
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      it->value.Accept(w);
      line += csv::Field(std::string_view(buf.GetString(), buf.GetSize()));
    }
  }
  return line + "\r\n";
}

// Buffers output into chunks for the sink; false once the client went away.
class ChunkWriter {
 public:
  explicit ChunkWriter(httplib::DataSink& sink) : sink_(sink) {}
  bool Add(const std::string& s) {
    buf_ += s;
    return buf_.size() < kChunkBytes || Flush();
  }
  bool Flush() {
    if (buf_.empty()) return true;
    bool ok = sink_.write(buf_.data(), buf_.size());
    buf_.clear();
    return ok;
  }

 private:
  httplib::DataSink& sink_;
  std::string buf_;
};

void State(ApiState& s, Call& c) {
  auto format = Query(c, "format").value_or("jsonl");
  if (format != "jsonl" && format != "csv") {
    return SendError(c, InvalidArgument("query parameter 'format': expected jsonl or csv, got '" + format + "'"));
  }
  auto table = Query(c, "table");
  if (table && table->empty()) return SendError(c, InvalidArgument("query parameter 'table': must not be empty"));
  if (format == "csv" && !table) {
    return SendError(c, InvalidArgument("query parameter 'table': required with format=csv (one table, one header)"));
  }
  store::Store* st = s.backends.store;
  auto point = ResolveAt(*st, c, "at", "lsn");
  if (!point.ok()) return SendError(c, point.status());
  std::vector<std::string> tables;
  if (table) tables.push_back(*table);
  TenantId tenant(c.tenant);
  Lsn lsn = point->lsn;
  c.res.status = 200;
  c.res.set_header("X-Timevault-Point-Lsn", lsn.ToString());
  c.res.set_chunked_content_provider(format == "csv" ? "text/csv" : "application/x-ndjson",
                                     [st, tenant, lsn, tables, csv = format == "csv"](size_t, httplib::DataSink& sink) {
                                       ChunkWriter out(sink);
                                       std::vector<std::string> columns;
                                       Status status = st->StateAt(tenant, lsn, tables, [&](const store::Row& row) {
                                         if (!csv)
                                           return out.Add("{\"table\":" + JsonQuote(row.table) + ",\"key\":" + row.pk +
                                                          ",\"row\":" + row.json + "}\n");
                                         rapidjson::Document d;
                                         d.Parse(row.json.data(), row.json.size());
                                         if (d.HasParseError() || !d.IsObject()) return true;
                                         if (columns.empty()) {
                                           std::string header;
                                           for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
                                             columns.emplace_back(it->name.GetString(), it->name.GetStringLength());
                                             header += (header.empty() ? "" : ",") + csv::Field(columns.back());
                                           }
                                           if (!out.Add(header + "\r\n")) return false;
                                         }
                                         return out.Add(CsvLine(d, columns));
                                       });
                                       if (!status.ok()) {
                                         spdlog::error("api: state export of tenant {} failed mid-stream: {}",
                                                       tenant.str(), status.ToString());
                                         return false;  // closes the connection without the final chunk
                                       }
                                       if (!out.Flush()) return false;
                                       sink.done();
                                       return true;
                                     });
}

void History(ApiState& s, Call& c) {
  store::Store* st = s.backends.store;
  auto to = ResolveAt(*st, c, "to", nullptr);
  if (!to.ok()) return SendError(c, to.status());
  Lsn from;
  if (auto f = Query(c, "from")) {
    auto t = CallerTime(c, "query parameter 'from'", *f);
    if (!t.ok()) return SendError(c, t.status());
    auto p = st->ResolveTime(*t);
    if (p.ok()) {
      from = p->lsn;
    } else if (p.status().code() != StatusCode::kNotFound) {  // NotFound: before the first commit
      return SendError(c, p.status());
    }
  }
  if (from > to->lsn) return SendError(c, InvalidArgument("'from' is after 'to'"));
  auto table = Query(c, "table");
  auto key = Query(c, "key");
  if (key && !table) return SendError(c, InvalidArgument("query parameter 'key' needs 'table'"));
  if (key && !IsValidJson(*key)) {
    return SendError(c, InvalidArgument("query parameter 'key': the primary key as JSON, e.g. {\"id\":1}"));
  }
  TenantId tenant(c.tenant);
  Lsn end = to->lsn;
  c.res.status = 200;
  c.res.set_chunked_content_provider(
      "application/x-ndjson", [st, tenant, from, end, table, key](size_t, httplib::DataSink& sink) {
        ChunkWriter out(sink);
        Status status = st->History(tenant, from, end, table, key,
                                    [&](const store::HistoryEvent& e) { return out.Add(e.envelope + "\n"); });
        if (!status.ok()) {
          spdlog::error("api: history export of tenant {} failed mid-stream: {}", tenant.str(), status.ToString());
          return false;
        }
        if (!out.Flush()) return false;
        sink.done();
        return true;
      });
}

}  // namespace

void AddDataRoutes(ApiState& s, std::vector<Route>& routes) {
  const std::string tenant = "/v1/tenants/([^/]+)";
  // Full-tenant exports are audited before the first byte (fail closed).
  routes.push_back(
      MakeRoute("GET", tenant + "/state", Role::kViewer, false, PathTenant, [&s](Call& c) { State(s, c); }));
  routes.back().export_audited = true;
  routes.push_back(
      MakeRoute("GET", tenant + "/history", Role::kViewer, false, PathTenant, [&s](Call& c) { History(s, c); }));
  routes.back().export_audited = true;
}

}  // namespace timevault::api
