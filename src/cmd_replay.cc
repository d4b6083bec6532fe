// Replay commands: pitr preview|execute, snapshots list|show, rollback,
// restore, state, history. They read the store read-only (a RocksDB
// secondary), so they run next to a running `timevault store`. Destructive
// commands print what they would do and exit 2 without --confirm.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api_client.h"
#include "cli_common.h"
#include "timevault/core/csv.h"
#include "timevault/replay/engine.h"

namespace timevault::cli {
namespace {

struct Opened {
  config::Config cfg;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<replay::Engine> engine;
};

// Loads the config, opens the store read-only and (with_engine) the engine;
// on failure prints why and sets *exit_code.
std::optional<Opened> Open(const GlobalOptions& g, int* exit_code, bool with_engine) {
  auto cfg = LoadConfig(g, exit_code);
  if (!cfg) return std::nullopt;
  Opened o;
  o.cfg = *cfg;
  auto st = OpenStore(o.cfg, true);
  if (!st.ok()) {
    std::fprintf(stderr, "timevault: cannot open the store %s: %s\n", o.cfg.store.path.c_str(),
                 st.status().ToString().c_str());
    *exit_code = kExitFailure;
    return std::nullopt;
  }
  o.store = std::move(st).value();
  if (with_engine) {
    auto e = replay::Engine::Open(o.cfg, o.store.get());
    if (!e.ok()) {
      std::fprintf(stderr, "timevault: %s\n", e.status().ToString().c_str());
      *exit_code = kExitFailure;
      return std::nullopt;
    }
    o.engine = std::move(e).value();
  }
  return o;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "timevault: %s\n", s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

std::string CliJobId(const char* kind) {
  return std::string("cli-") + kind + "-" + SystemClock().Now().ToIso() + "-" + std::to_string(::getpid());
}

void Progress(std::string_view phase, double fraction) {
  std::fprintf(stderr, "  %-9s %5.1f%%\n", std::string(phase).c_str(), fraction * 100);
}

template <typename W>
void WriteByTable(W& w, const std::vector<replay::TableOperations>& by_table) {
  w.Key("tables");
  w.StartArray();
  for (const auto& t : by_table) {
    w.StartObject();
    w.Key("table");
    w.String(t.table.c_str());
    replay::WriteOperationCounts(w, t.ops);
    w.EndObject();
  }
  w.EndArray();
}

void PrintPlan(const replay::PitrPlan& plan) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("plan_id");
  w.String(plan.plan_id.c_str());
  w.Key("tenant");
  w.String(plan.tenant.c_str());
  w.Key("target");
  w.StartObject();
  w.Key("lsn");
  w.String(plan.target.lsn.ToString().c_str());
  w.Key("time");
  if (plan.target.time.micros() == 0) {
    w.Null();
  } else {
    w.String(plan.target.time.ToIso().c_str());
  }
  w.EndObject();
  w.Key("operations");
  w.StartObject();
  replay::WriteOperationCounts(w, plan.ops);
  w.EndObject();
  WriteByTable(w, plan.by_table);
  w.Key("estimated_seconds");
  w.Double(plan.estimated_seconds);
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

void PrintApply(const char* what, const replay::ApplyResult& r) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("done");
  w.String(what);
  w.Key("snapshot_id");
  w.String(r.snapshot_id.c_str());
  w.Key("operations");
  w.StartObject();
  replay::WriteOperationCounts(w, r.ops);
  w.EndObject();
  WriteByTable(w, r.by_table);
  w.Key("seconds");
  w.Double(r.seconds);
  w.Key("commit_lsn");
  w.String(r.commit_lsn.ToString().c_str());
  replay::WriteVerification(w, r);
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

int NeedConfirm(const std::string& what) {
  std::fprintf(stderr, "%s\nNothing was changed: add --confirm to do it.\n", what.c_str());
  return kExitUsage;
}

// TIME (ISO 8601) or LSN ("16/B374D848").
std::optional<replay::PitrTarget> ParsePoint(const std::string& text) {
  if (text.find('/') != std::string::npos) {
    if (auto lsn = Lsn::Parse(text)) return replay::PitrTarget(*lsn);
    return std::nullopt;
  }
  if (auto t = ParseCliTime(text)) return replay::PitrTarget(*t);
  return std::nullopt;
}

// A history bound: an LSN as is; a time resolved to its commit (before the
// first commit: 0/0).
Result<Lsn> ResolveBound(store::StateReader& s, const replay::PitrTarget& p) {
  if (const auto* lsn = std::get_if<Lsn>(&p)) return *lsn;
  auto point = s.ResolveTime(std::get<CommitTime>(p));
  if (!point.ok() && point.status().code() == StatusCode::kNotFound) return Lsn{};
  if (!point.ok()) return point.status();
  return point->lsn;
}

struct Args {
  std::string tenant, at, lsn, plan, snapshot, backup, format = "jsonl", from, to, key, table;
  std::vector<std::string> tables;
  bool confirm = false;
  bool preview = false;
  std::string confirm_reverts;
  std::string url, token_file;  // through a running API (api.url)
};

// Through a running API (docs/replay.md, "Through the API"): --url, else
// api.url of the config. The config is loaded first either way (--tz,
// api.time_zone). nullopt: open the store here; *exit_code set on a
// failure (config, token).
struct Remote {
  std::optional<ApiClient> client;
  bool failed = false;
};
Remote ThroughApi(const GlobalOptions& g, const Args& a, int* exit_code) {
  Remote r;
  auto cfg = LoadConfig(g, exit_code);
  if (!cfg) {
    r.failed = true;
    return r;
  }
  const std::string url = !a.url.empty() ? a.url : cfg->api.url;
  if (url.empty()) return r;
  r.client = ApiClient::Make(g, url, a.token_file, exit_code);
  r.failed = !r.client;
  return r;
}

// A JSON object of string fields (and `confirm`: true when set).
std::string JsonBody(const std::vector<std::pair<const char*, std::string>>& fields,
                     const std::vector<std::string>& tables, bool confirm) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  if (!tables.empty()) {
    w.Key("tables");
    w.StartArray();
    for (const auto& t : tables) w.String(t.c_str(), static_cast<rapidjson::SizeType>(t.size()));
    w.EndArray();
  }
  if (confirm) {
    w.Key("confirm");
    w.Bool(true);
  }
  w.EndObject();
  return sb.GetString();
}

// A job submitted through the API (202 with its id), followed until it
// ends; prints its record. Exit 0 only when it succeeded.
int FollowJob(const ApiClient& c, const ApiResponse& submitted) {
  if (submitted.status != 202) return PrintResponse(submitted);
  const std::string job = JsonField(submitted.body, "job_id");
  if (job.empty()) return PrintResponse({500, submitted.body});
  const std::string snapshot = JsonField(submitted.body, "snapshot_id");
  std::fprintf(stderr, "  job %s submitted to %s%s\n", job.c_str(), c.url().c_str(),
               snapshot.empty() ? "" : (" (snapshot " + snapshot + " first)").c_str());
  auto wait = std::chrono::milliseconds(20);
  while (!g_stop.load()) {
    ApiResponse r = c.Call("GET", "/v1/jobs/" + job);
    const std::string state = JsonField(r.body, "state");
    if (r.status != 200 || (state != "queued" && state != "running")) {
      const int printed = PrintResponse(r);
      return printed == kExitOk && state == "succeeded" ? kExitOk : kExitFailure;
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(500));
  }
  std::fprintf(stderr, "timevault: interrupted; job %s goes on in the API (GET /v1/jobs/%s)\n", job.c_str(),
               job.c_str());
  return kExitFailure;
}

int PitrPreview(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  if (a.at.empty() == a.lsn.empty()) {
    std::fprintf(stderr, "timevault pitr preview: give exactly one of --at TIME and --lsn LSN\n");
    return kExitUsage;
  }
  Remote remote = ThroughApi(g, a, &code);  // first: --tz / api.time_zone
  if (remote.failed) return code;
  std::optional<replay::PitrTarget> target;
  if (!a.at.empty()) {
    auto t = ParseCliTime(a.at);
    if (!t) return Fail(InvalidArgument("--at: '" + a.at + "' is not " + CliTimeHint()));
    target = *t;
  } else {
    auto l = Lsn::Parse(a.lsn);
    if (!l) return Fail(InvalidArgument("--lsn: '" + a.lsn + "' is not an LSN (16/B374D848)"));
    target = *l;
  }
  if (remote.client) {
    const auto* t = std::get_if<CommitTime>(&*target);
    return PrintResponse(remote.client->Call(
        "POST", "/v1/pitr/preview",
        JsonBody({{"tenant", a.tenant}, {"target_time", t ? t->ToIso() : ""}, {"target_lsn", t ? "" : a.lsn}}, a.tables,
                 false)));
  }
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto plan = o->engine->PreviewPitr(TenantId(a.tenant), *target, a.tables);
  if (!plan.ok()) return Fail(plan.status());
  PrintPlan(*plan);
  return kExitOk;
}

int PitrExecute(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  Remote remote = ThroughApi(g, a, &code);
  if (remote.failed) return code;
  if (remote.client) {
    if (!a.confirm) {
      return NeedConfirm("This would execute plan " + a.plan + " through the API at " + remote.client->url() +
                         " (its preview lists the operations), saving a snapshot first.");
    }
    return FollowJob(*remote.client,
                     remote.client->Call("POST", "/v1/pitr", JsonBody({{"plan_id", a.plan}}, {}, true)));
  }
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto plan = o->engine->GetPlan(a.plan);
  if (!plan.ok()) return Fail(plan.status());
  if (!a.confirm) {
    PrintPlan(*plan);
    return NeedConfirm("This would make tenant " + plan->tenant + " equal its state at " + plan->target.lsn.ToString() +
                       " (" + std::to_string(plan->ops.total()) + " operations), saving a snapshot first.");
  }
  auto audit = BeginAudit(o->cfg, "pitr execute", plan->tenant, {{"plan", a.plan}});
  if (!audit) return kExitFailure;
  auto r = o->engine->ExecutePitr(a.plan, CliJobId("pitr"), Progress);
  audit->Finish(r.ok() ? Status::Ok() : r.status());
  if (!r.ok()) return Fail(r.status());
  PrintApply("pitr", *r);
  return kExitOk;
}

int Rollback(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  Remote remote = ThroughApi(g, a, &code);
  if (remote.failed) return code;
  if (remote.client) {
    const std::string path = "/v1/snapshots/" + a.snapshot + "/rollback";
    if (!a.confirm || a.preview) {
      ApiResponse p = remote.client->Call("POST", path + "/preview", "{}");
      const int printed = PrintResponse(p);
      if (printed != kExitOk || a.preview) return printed;
      return NeedConfirm("This would put back snapshot " + a.snapshot +
                         " (above: what it would do; what it reverts needs --confirm-reverts with its digest), "
                         "saving a snapshot first.");
    }
    return FollowJob(*remote.client,
                     remote.client->Call("POST", path, JsonBody({{"confirm_reverts", a.confirm_reverts}}, {}, true)));
  }
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto snap = o->engine->GetSnapshot(a.snapshot);
  if (!snap.ok()) return Fail(snap.status());
  if (!a.confirm || a.preview) {
    // What it would do, and what of that reverts changes made since the
    // snapshot's apply (those need --confirm-reverts with the digest).
    auto p = o->engine->PreviewRollback(a.snapshot);
    if (!p.ok()) return Fail(p.status());
    std::printf("%s\n", replay::RollbackPreviewJson(*p).c_str());
    if (a.preview) return kExitOk;
    std::string reverts;
    if (p->reverts > 0) {
      reverts = " It would revert " + std::to_string(p->reverts) +
                " row(s) changed since that apply: add --confirm-reverts " + p->reverts_digest + " to revert them.";
    }
    return NeedConfirm("This would put back " + std::to_string(snap->rows) + " rows and remove " +
                       std::to_string(snap->absent) + " rows of tenant " + snap->tenant + " saved by snapshot " +
                       snap->id + " (job " + snap->job_id + "), saving a snapshot first." + reverts);
  }
  auto audit = BeginAudit(o->cfg, "snapshots rollback", snap->tenant, {{"snapshot", a.snapshot}});
  if (!audit) return kExitFailure;
  auto r = o->engine->Rollback(a.snapshot, CliJobId("rollback"), Progress, nullptr, a.confirm_reverts);
  audit->Finish(r.ok() ? Status::Ok() : r.status());
  if (!r.ok()) return Fail(r.status());
  PrintApply("rollback", *r);
  return kExitOk;
}

int Restore(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  Remote remote = ThroughApi(g, a, &code);
  if (remote.failed) return code;
  if (remote.client) {
    if (!a.confirm) {
      ApiResponse b = remote.client->Call("GET", "/v1/backups/" + a.backup);
      if (b.status != 200) return PrintResponse(b);
      return NeedConfirm("This would make tenant " + (a.tenant.empty() ? JsonField(b.body, "tenant") : a.tenant) +
                         " equal backup " + a.backup + " through the API at " + remote.client->url() +
                         ", saving a snapshot first.");
    }
    return FollowJob(*remote.client,
                     remote.client->Call("POST", "/v1/restores",
                                         JsonBody({{"backup_id", a.backup}, {"tenant", a.tenant}}, a.tables, true)));
  }
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto info = o->engine->backups().Get(a.backup);
  if (!info.ok()) return Fail(info.status());
  if (!a.confirm) {
    return NeedConfirm("This would make tenant " + (a.tenant.empty() ? info->tenant : a.tenant) + " equal backup " +
                       a.backup + " (state at " + info->point.lsn.ToString() + "), saving a snapshot first.");
  }
  auto audit = BeginAudit(o->cfg, "restore", a.tenant.empty() ? info->tenant : a.tenant, {{"backup", a.backup}});
  if (!audit) return kExitFailure;
  auto r = o->engine->Restore(a.backup, TenantId(a.tenant), a.tables, CliJobId("restore"), Progress);
  audit->Finish(r.ok() ? Status::Ok() : r.status());
  if (!r.ok()) return Fail(r.status());
  PrintApply("restore", *r);
  return kExitOk;
}

int SnapshotsList(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto list = o->engine->ListSnapshots(a.tenant.empty() ? std::nullopt : std::optional<std::string>(a.tenant));
  if (!list.ok()) return Fail(list.status());
  std::printf("%-30s %-12s %-9s %-14s %8s %8s  %s\n", "ID", "TENANT", "REASON", "LSN", "ROWS", "ABSENT", "CREATED");
  for (const auto& s : *list) {
    std::printf("%-30s %-12s %-9s %-14s %8llu %8llu  %s\n", s.id.c_str(), s.tenant.c_str(),
                std::string(replay::SnapshotReasonName(s.reason)).c_str(), s.lsn.ToString().c_str(),
                static_cast<unsigned long long>(s.rows), static_cast<unsigned long long>(s.absent),
                s.created_at.ToIso().c_str());
  }
  return kExitOk;
}

int SnapshotsShow(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto s = o->engine->GetSnapshot(a.snapshot);
  if (!s.ok()) return Fail(s.status());
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("id");
  w.String(s->id.c_str());
  w.Key("tenant");
  w.String(s->tenant.c_str());
  w.Key("reason");
  w.String(std::string(replay::SnapshotReasonName(s->reason)).c_str());
  w.Key("source");
  w.String(s->source.c_str());
  w.Key("job_id");
  w.String(s->job_id.c_str());
  w.Key("lsn");
  w.String(s->lsn.ToString().c_str());
  w.Key("created_at");
  w.String(s->created_at.ToIso().c_str());
  w.Key("tables");
  w.StartArray();
  for (const auto& t : s->tables) w.String(t.c_str());
  w.EndArray();
  w.Key("rows");
  w.Uint64(s->rows);
  w.Key("absent");
  w.Uint64(s->absent);
  w.Key("bytes");
  w.Uint64(s->bytes);
  w.EndObject();
  std::printf("%s\n", sb.GetString());
  return kExitOk;
}

int SnapshotsExpire(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  auto o = Open(g, &code, true);
  if (!o) return code;
  auto all = o->engine->ListSnapshots(std::nullopt);
  if (!all.ok()) return Fail(all.status());
  const int64_t cutoff = SystemClock().Now().micros() - o->cfg.replay.snapshot_retention_days * 86400LL * 1000000;
  size_t old = 0;
  for (const auto& s : *all) old += s.created_at.micros() < cutoff ? 1 : 0;
  if (!a.confirm) {
    return NeedConfirm("This would remove " + std::to_string(old) + " of " + std::to_string(all->size()) +
                       " snapshots, those older than replay.snapshot_retention_days (" +
                       std::to_string(o->cfg.replay.snapshot_retention_days) + ").");
  }
  auto audit = BeginAudit(o->cfg, "snapshots expire", "", {});
  if (!audit) return kExitFailure;
  auto removed = o->engine->ExpireSnapshots(SystemClock().Now());
  audit->Finish(removed.ok() ? Status::Ok() : removed.status());
  if (!removed.ok()) return Fail(removed.status());
  for (const auto& id : *removed) std::printf("removed %s\n", id.c_str());
  std::printf("%zu snapshots removed\n", removed->size());
  return kExitOk;
}

int State(const GlobalOptions& g, const Args& a) {
  if (a.format != "jsonl" && a.format != "csv") return Fail(InvalidArgument("--format: jsonl or csv"));
  if (a.format == "csv" && a.tables.size() != 1) {
    return Fail(InvalidArgument("--format csv writes one table: give exactly one --table"));
  }
  int code = kExitOk;
  auto o = Open(g, &code, false);  // first: --tz / api.time_zone
  if (!o) return code;
  auto at = ParsePoint(a.at);
  if (!at) return Fail(InvalidArgument("--at: '" + a.at + "' is neither an LSN nor " + CliTimeHint()));
  Lsn lsn;
  if (const auto* l = std::get_if<Lsn>(&*at)) {
    lsn = *l;
  } else {
    auto p = o->store->ResolveTime(std::get<CommitTime>(*at));
    if (!p.ok()) return Fail(p.status());
    lsn = p->lsn;
  }
  std::vector<std::string> header;
  std::string line;
  Status inner = Status::Ok();
  Status st = o->store->StateAt(TenantId(a.tenant), lsn, a.tables, [&](const store::Row& row) {
    line.clear();
    if (a.format == "jsonl") {
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      w.StartObject();
      w.Key("table");
      w.String(row.table.c_str());
      w.Key("key");
      w.RawValue(row.pk.c_str(), row.pk.size(), rapidjson::kObjectType);
      w.Key("row");
      w.RawValue(row.json.c_str(), row.json.size(), rapidjson::kObjectType);
      w.EndObject();
      line = sb.GetString();
    } else {
      rapidjson::Document d;
      d.Parse(row.json.c_str());
      if (d.HasParseError() || !d.IsObject()) {
        inner = Corruption("row image of " + row.table + " key " + row.pk + " is not a JSON object");
        return false;
      }
      if (header.empty()) {
        for (const auto& m : d.GetObject()) header.emplace_back(m.name.GetString());
        std::string h;
        for (size_t i = 0; i < header.size(); ++i) {
          if (i) h.push_back(',');
          csv::AppendField(&h, header[i]);
        }
        std::printf("%s\n", h.c_str());
      }
      for (size_t i = 0; i < header.size(); ++i) {
        if (i) line.push_back(',');
        auto m = d.FindMember(header[i].c_str());
        if (m == d.MemberEnd() || m->value.IsNull()) continue;  // NULL: an empty field
        if (m->value.IsString()) {
          csv::AppendField(&line, std::string_view(m->value.GetString(), m->value.GetStringLength()));
        } else {
          rapidjson::StringBuffer sb;
          rapidjson::Writer<rapidjson::StringBuffer> w(sb);
          m->value.Accept(w);
          csv::AppendField(&line, sb.GetString());
        }
      }
    }
    line.push_back('\n');
    return std::fwrite(line.data(), 1, line.size(), stdout) == line.size();
  });
  if (!inner.ok()) return Fail(inner);
  if (!st.ok()) return Fail(st);
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

int History(const GlobalOptions& g, const Args& a) {
  int code = kExitOk;
  auto o = Open(g, &code, false);
  if (!o) return code;
  Lsn from, to;
  if (!a.from.empty()) {
    auto p = ParsePoint(a.from);
    if (!p) return Fail(InvalidArgument("--from: '" + a.from + "' is neither an LSN nor " + CliTimeHint()));
    auto l = ResolveBound(*o->store, *p);
    if (!l.ok()) return Fail(l.status());
    from = *l;
  }
  if (a.to.empty()) {
    auto rp = o->store->RecoverablePoint();
    if (!rp.ok()) return Fail(rp.status());
    to = rp->lsn;
  } else {
    auto p = ParsePoint(a.to);
    if (!p) return Fail(InvalidArgument("--to: '" + a.to + "' is neither an LSN nor " + CliTimeHint()));
    auto l = ResolveBound(*o->store, *p);
    if (!l.ok()) return Fail(l.status());
    to = *l;
  }
  std::optional<std::string> table, key;
  if (!a.table.empty()) table = a.table;
  if (!a.key.empty()) key = a.key;
  Status st = o->store->History(TenantId(a.tenant), from, to, table, key, [&](const store::HistoryEvent& e) {
    std::fwrite(e.envelope.data(), 1, e.envelope.size(), stdout);
    return std::fputc('\n', stdout) != EOF;
  });
  if (!st.ok()) return Fail(st);
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void RegisterReplayCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  static Args a;  // the parsed options live as long as the app
  // Through a running API instead of opening the store (api.url).
  const auto through_api = [](CLI::App* sub) {
    sub->add_option("--url", a.url, "Go through the API at this base URL (default: api.url; empty: open the store)");
    sub->add_option("--token-file", a.token_file, "Through the API: file whose first line is the bearer token");
  };

  auto* pitr = app.add_subcommand("pitr", "Point-in-time recovery of a tenant: preview|execute");
  pitr->require_subcommand(1);
  auto* preview = pitr->add_subcommand("preview", "Dry run: what a PITR would do, as a plan with an id");
  preview->add_option("--tenant", a.tenant, "Tenant (value of the tenant column)")->required();
  preview->add_option("--at", a.at, "Target time (ISO 8601): the last commit at or before it");
  preview->add_option("--lsn", a.lsn, "Target LSN instead of a time");
  preview->add_option("--table", a.tables, "Only these tables (schema.table; repeatable)");
  through_api(preview);
  preview->callback([&g, exit_code] { *exit_code = PitrPreview(g, a); });
  auto* execute = pitr->add_subcommand("execute", "Execute a previewed plan (snapshot first)");
  execute->add_option("--plan", a.plan, "Plan id from `pitr preview`")->required();
  execute->add_flag("--confirm", a.confirm, "Really change the live data");
  through_api(execute);
  execute->callback([&g, exit_code] { *exit_code = PitrExecute(g, a); });

  auto* snapshots = app.add_subcommand("snapshots", "List and inspect the snapshots taken before every apply");
  snapshots->require_subcommand(1);
  auto* list = snapshots->add_subcommand("list", "Snapshots, newest first");
  list->add_option("--tenant", a.tenant, "Only this tenant's");
  list->callback([&g, exit_code] { *exit_code = SnapshotsList(g, a); });
  auto* show = snapshots->add_subcommand("show", "One snapshot");
  show->add_option("snapshot", a.snapshot, "Snapshot id")->required();
  show->callback([&g, exit_code] { *exit_code = SnapshotsShow(g, a); });

  auto* expire = snapshots->add_subcommand("expire", "Remove snapshots older than replay.snapshot_retention_days");
  expire->add_flag("--confirm", a.confirm, "Really remove them");
  expire->callback([&g, exit_code] { *exit_code = SnapshotsExpire(g, a); });

  auto* rollback = app.add_subcommand("rollback", "Put a snapshot back (takes its own snapshot first)");
  rollback->add_option("--snapshot", a.snapshot, "Snapshot id")->required();
  rollback->add_flag("--confirm", a.confirm, "Really change the live data");
  rollback->add_flag("--preview", a.preview, "Only show what it would do and revert (JSON), change nothing");
  rollback->add_option("--confirm-reverts", a.confirm_reverts,
                       "The preview's reverts_digest: also revert rows changed since the snapshot's apply");
  through_api(rollback);
  rollback->callback([&g, exit_code] { *exit_code = Rollback(g, a); });

  auto* restore = app.add_subcommand("restore", "Restore a tenant from a backup (diff and apply, snapshot first)");
  restore->add_option("--backup", a.backup, "Backup id (full or incremental)")->required();
  restore->add_option("--tenant", a.tenant, "Tenant (required for a backup of every tenant)");
  restore->add_option("--table", a.tables, "Only these tables (repeatable)");
  restore->add_flag("--confirm", a.confirm, "Really change the live data");
  through_api(restore);
  restore->callback([&g, exit_code] { *exit_code = Restore(g, a); });

  auto* state = app.add_subcommand("state", "Write a tenant's rows as of a time (jsonl or csv)");
  state->add_option("--tenant", a.tenant, "Tenant")->required();
  state->add_option("--at", a.at, "Time (ISO 8601) or LSN")->required();
  state->add_option("--table", a.tables, "Only these tables (repeatable; csv: exactly one)");
  state->add_option("--format", a.format, "jsonl (default) or csv");
  state->callback([&g, exit_code] { *exit_code = State(g, a); });

  auto* history = app.add_subcommand("history", "Write a tenant's change events in commit order");
  history->add_option("--tenant", a.tenant, "Tenant")->required();
  history->add_option("--from", a.from, "After this time or LSN (default: the beginning)");
  history->add_option("--to", a.to, "Up to this time or LSN (default: the recoverable point)");
  history->add_option("--table", a.table, "Only this table (schema.table)");
  history->add_option("--key", a.key, "Only this key (its JSON, as in the Kafka key)");
  history->callback([&g, exit_code] { *exit_code = History(g, a); });
}

}  // namespace timevault::cli
