// Health, metrics, jobs, audit and the OpenAPI document.
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "pagination.h"
#include "server_impl.h"
#include "timevault/capture/refusals.h"
#include "timevault/core/pg.h"

namespace timevault::api {

using config::Role;

namespace {

constexpr double kDiskWarning = 0.80;
constexpr double kDiskCritical = 0.95;
// Of kafka.topic_retention_ms: how old the store's unread messages may get.
constexpr double kRetentionWarning = 0.5;
constexpr double kRetentionCritical = 0.8;
constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kThirtyDays = 30LL * 86400 * kMicrosPerSecond;

struct Level {
  int value = 0;  // 0 ok, 1 warning, 2 critical
  std::vector<std::string> problems;
  void Warn(std::string p) {
    value = std::max(value, 1);
    problems.push_back("warning: " + std::move(p));
  }
  void Critical(std::string p) {
    value = 2;
    problems.push_back("critical: " + std::move(p));
  }
};

// A finite kafka.topic_retention_ms against how far the store is behind:
// every message the store has not read was produced after its recoverable
// point's heartbeat (the point only passes a heartbeat once every message
// before it is read), so the recoverable time's age bounds the age of the
// oldest unread message from above. Retention deletes it (a gap,
// docs/store.md) when that age passes the retention: warning from half of
// it, critical from 80%.
void WriteKafkaRetention(ApiState& s, JsonWriter& w, Level& level, const store::StoreStats& st) {
  const int64_t retention_ms = s.cfg.kafka.topic_retention_ms;
  if (retention_ms <= 0) return;  // -1: kept until deleted by hand
  w.Key("kafka_retention");
  w.StartObject();
  w.Key("topic_retention_ms");
  w.Int64(retention_ms);
  w.Key("unread_age_bound_seconds");
  if (!st.recoverable) {
    w.Null();
    w.EndObject();
    return;
  }
  const double age = std::max<double>(0, (s.clock->Now().micros() - st.recoverable->time.micros()) / 1e6);
  const double fraction = age * 1000 / static_cast<double>(retention_ms);
  w.Double(age);
  w.Key("fraction_of_retention");
  w.Double(std::round(fraction * 1000) / 1000);
  w.EndObject();
  const std::string what = "the store's recoverable point is " + std::to_string(static_cast<int64_t>(age)) +
                           " s old and Kafka deletes messages after " + std::to_string(retention_ms / 1000) +
                           " s (kafka.topic_retention_ms): messages the store has not read yet are at risk, and "
                           "deleted ones are a gap";
  if (fraction >= kRetentionCritical) {
    level.Critical(what);
  } else if (fraction >= kRetentionWarning) {
    level.Warn(what);
  }
}

void WriteStore(ApiState& s, JsonWriter& w, Level& level, const store::StoreStats& st, bool all) {
  w.Key("store");
  w.StartObject();
  w.Key("bytes_on_disk");
  w.Uint64(st.bytes_on_disk);
  w.Key("events_stored");
  w.Uint64(st.events_stored);
  w.Key("dead_letters");
  w.Uint64(st.dead_letters);
  w.Key("recoverable_point");
  if (st.recoverable) {
    WritePoint(w, *st.recoverable);
  } else {
    w.Null();
    level.Warn("the store has no recoverable point yet");
  }
  w.Key("oldest_point");  // with recoverable_point: the window a PITR can target
  if (auto oldest = WindowOf(*s.backends.store).oldest) {
    WritePoint(w, *oldest);
  } else {
    w.Null();
  }
  std::vector<std::string> gap_problems;
  WriteGapsHealth(s, w, &gap_problems);
  for (auto& p : gap_problems) level.Critical(std::move(p));
  WriteKafkaRetention(s, w, level, st);
  w.EndObject();
  if (st.dead_letters > 0) {
    level.Warn(std::to_string(st.dead_letters) + " dead letters in the store (GET /v1/dead-letters lists them)");
  }
  struct statvfs vfs {};
  w.Key("disk");
  w.StartObject();
  if (all) {  // where the store lives is for all-tenant tokens only
    w.Key("path");
    WriteString(w, s.cfg.store.path);
  }
  if (statvfs(s.cfg.store.path.c_str(), &vfs) == 0 && vfs.f_blocks > 0) {
    double total = static_cast<double>(vfs.f_blocks) * vfs.f_frsize;
    double avail = static_cast<double>(vfs.f_bavail) * vfs.f_frsize;
    double used = 1.0 - static_cast<double>(vfs.f_bavail) / static_cast<double>(vfs.f_blocks);
    w.Key("total_bytes");
    w.Uint64(static_cast<uint64_t>(total));
    w.Key("free_bytes");
    w.Uint64(static_cast<uint64_t>(avail));
    w.Key("used_fraction");
    w.Double(std::round(used * 10000) / 10000);
    w.Key("warning");
    w.Bool(used > kDiskWarning);
    if (used > kDiskCritical) {
      level.Critical("disk " + std::to_string(static_cast<int>(used * 100)) + "% full");
    } else if (used > kDiskWarning) {
      level.Warn("disk " + std::to_string(static_cast<int>(used * 100)) + "% full");
    }
  } else {
    level.Warn("cannot stat the store's file system");
  }
  w.EndObject();
}

// The published tables capture refuses (their topic names collide after
// Debezium's sanitising): computed from the catalog as capture does, so the
// two name the same tables. Names (schema information) for all-tenant
// tokens only; a scoped token sees the count.
void WriteRefused(ApiState& s, JsonWriter& w, Level& level, pg::PgConn& conn, bool all) {
  auto refused = capture::FindRefusedTables(conn, s.cfg.postgres.publication, s.cfg.kafka.topic_prefix);
  w.Key("refused_table_count");
  if (!refused.ok()) {
    w.Null();
    level.Warn("capture: cannot read the published tables" + (all ? ": " + refused.status().message() : ""));
    return;
  }
  w.Uint64(refused->size());
  if (refused->empty()) return;
  std::string names;
  if (all) {
    w.Key("refused_tables");
    w.StartArray();
    for (const auto& t : *refused) {
      w.StartObject();
      w.Key("table");
      WriteString(w, t.schema + "." + t.table);
      w.Key("topic");
      WriteString(w, t.topic);
      w.Key("reason");
      WriteString(w, t.reason);
      w.EndObject();
      names += (names.empty() ? "" : ", ") + capture::DisplayName(conn, t);
    }
    w.EndArray();
  }
  level.Critical("capture: " + std::to_string(refused->size()) + " published table(s) refused, their changes are NOT " +
                 "captured" + (all ? " (" + names + "; their topic names collide after sanitising)" : ""));
}

void WriteCapture(ApiState& s, JsonWriter& w, Level& level, const store::StoreStats& st, bool all) {
  w.Key("capture");
  w.StartObject();
  w.Key("slot");
  WriteString(w, s.cfg.postgres.slot);
  // Postgres's own error text (host names, users, paths) only for
  // all-tenant tokens; a scoped token learns that capture is failing.
  auto fail = [&](const std::string& why, const std::string& detail) {
    w.Key("reachable");
    w.Bool(false);
    w.Key("error");
    WriteString(w, all ? why + ": " + detail : why);
    w.EndObject();
    level.Critical("capture: " + why);
  };
  auto r = s.health_pg->ExecParams(
      "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
      "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, active, pg_current_wal_lsn()::text "
      "FROM pg_replication_slots WHERE slot_name = $1",
      {s.cfg.postgres.slot});
  if (!r.ok()) return fail("Postgres unreachable or pg_replication_slots unreadable", r.status().message());
  if (r->rows() == 0) return fail("the replication slot does not exist", "'" + s.cfg.postgres.slot + "'");
  int64_t lag = r->IsNull(0, 0) ? 0 : std::stoll(r->GetString(0, 0));
  int64_t retained = r->IsNull(0, 1) ? 0 : std::stoll(r->GetString(0, 1));
  double lag_seconds = 0;
  if (lag > 0 && st.recoverable) {
    lag_seconds = std::max<double>(0, (s.clock->Now().micros() - st.recoverable->time.micros()) / 1e6);
  }
  w.Key("reachable");
  w.Bool(true);
  w.Key("active");
  w.Bool(r->GetString(0, 2) == "t");
  w.Key("current_wal_lsn");
  WriteString(w, r->GetString(0, 3));
  w.Key("lag_bytes");
  w.Int64(lag);
  w.Key("lag_seconds");
  w.Double(lag_seconds);
  w.Key("wal_retained_bytes");
  w.Int64(retained);
  Status used = s.health_pg->Use([&](pg::PgConn& conn) {
    WriteRefused(s, w, level, conn, all);
    return Status::Ok();
  });
  if (!used.ok()) {
    w.Key("refused_table_count");
    w.Null();
    level.Warn("capture: cannot read the published tables" + (all ? ": " + used.message() : ""));
  }
  w.EndObject();
  if (r->GetString(0, 2) != "t") level.Warn("replication slot '" + s.cfg.postgres.slot + "' is not active");
}

void WriteBackups(ApiState& s, JsonWriter& w, Level& level, const Principal& who) {
  CommitTime now = s.clock->Now();
  uint64_t ok = 0, failed = 0;
  std::optional<JobRecord> last;
  for (const auto& j : s.jobs->List()) {  // newest first
    if (j.kind != "backup" || !who.CanAccess(j.tenant)) continue;
    if (!last && (j.state == JobState::kSucceeded || j.state == JobState::kFailed)) last = j;
    if (now.micros() - j.created.micros() > kThirtyDays) continue;
    if (j.state == JobState::kSucceeded) ++ok;
    if (j.state == JobState::kFailed) ++failed;
  }
  w.Key("backups");
  w.StartObject();
  w.Key("succeeded_30d");
  w.Uint64(ok);
  w.Key("failed_30d");
  w.Uint64(failed);
  w.Key("success_rate_30d");
  if (ok + failed > 0) {
    w.Double(static_cast<double>(ok) / static_cast<double>(ok + failed));
  } else {
    w.Null();
  }
  w.Key("last");
  if (last) {
    WriteRaw(w, JobJson(*last));
    if (last->state == JobState::kFailed) level.Warn("the last backup failed: " + last->error_message);
  } else {
    w.Null();
  }
  w.EndObject();
  if (failed > 0) level.Warn(std::to_string(failed) + " backups failed in the last 30 days");
}

// A plan against its objectives: the newest covering backup's data age vs
// the RPO, the last measured restore vs the RTO (unknown until a full or
// deep DR test measured one). Health and /metrics both show it.
struct PlanCompliance {
  std::optional<double> backup_age_seconds;  // none: no backup covers the plan's tenant
  bool rpo_met = false;
  std::optional<double> restore_seconds;
  std::optional<bool> rto_met;
};

PlanCompliance Compliance(ApiState& s, const DrPlan& p, CommitTime now) {
  PlanCompliance out;
  if (replay::BackupCatalog* catalog = s.catalog()) {
    auto list = catalog->List(p.tenant == "*" ? std::nullopt : std::optional<std::string>(p.tenant));
    if (list.ok()) {
      for (const auto& b : *list) {  // newest first
        if (b.tenant == p.tenant || b.tenant == "*") {
          out.backup_age_seconds = static_cast<double>(now.micros() - b.point.time.micros()) / 1e6;
          break;
        }
      }
    }
  }
  out.rpo_met = out.backup_age_seconds && *out.backup_age_seconds <= static_cast<double>(p.rpo_minutes) * 60;
  if (p.last_test && p.last_test->restore_seconds) {
    out.restore_seconds = p.last_test->restore_seconds;
    out.rto_met = *out.restore_seconds <= static_cast<double>(p.rto_minutes) * 60;
  }
  return out;
}

void WritePlans(ApiState& s, JsonWriter& w, Level& level, const Principal& who) {
  CommitTime now = s.clock->Now();
  w.Key("plans");
  w.StartArray();
  for (const auto& p : s.plans->List()) {
    if (!who.CanAccess(p.tenant)) continue;
    const PlanCompliance pc = Compliance(s, p, now);
    w.StartObject();
    w.Key("id");
    WriteString(w, p.id);
    w.Key("name");
    WriteString(w, p.name);
    w.Key("tenant");
    WriteString(w, p.tenant);
    w.Key("rpo_minutes");
    w.Int64(p.rpo_minutes);
    w.Key("newest_backup_age_minutes");
    if (pc.backup_age_seconds) {
      w.Double(*pc.backup_age_seconds / 60);
    } else {
      w.Null();
    }
    w.Key("rpo_ok");
    w.Bool(pc.rpo_met);
    if (!pc.rpo_met)
      level.Critical("plan " + p.name + ": newest backup older than RPO (" + std::to_string(p.rpo_minutes) +
                     " min) or none");
    w.Key("rto_minutes");
    w.Int64(p.rto_minutes);
    w.Key("last_restore_seconds");
    if (pc.restore_seconds) {
      w.Double(*pc.restore_seconds);
    } else {
      w.Null();
    }
    w.Key("rto_ok");
    if (pc.rto_met) {
      w.Bool(*pc.rto_met);
      if (!*pc.rto_met) level.Warn("plan " + p.name + ": last measured restore exceeds the RTO");
    } else {
      w.Null();  // unknown until a full or deep DR test measured a restore
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string HealthJson(ApiState& s, const Principal& who) {
  const bool all = who.AllTenants();
  Level level;
  store::StoreStats st = s.backends.store->Stats();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("time");
  WriteString(w, s.clock->Now().ToIso());
  WriteStore(s, w, level, st, all);
  WriteCapture(s, w, level, st, all);
  WriteBackups(s, w, level, who);
  WritePlans(s, w, level, who);
  w.Key("problems");
  w.StartArray();
  for (const auto& p : level.problems) WriteString(w, p);
  w.EndArray();
  w.Key("status");
  WriteString(w, level.value == 0 ? "ok" : level.value == 1 ? "warning" : "critical");
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {

void Metric(std::string& out, const char* name, const char* type, const char* help, const std::string& samples) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + samples;
}

std::string MetricLine(const std::string& name, double v) {
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", v);
  return name + " " + num + "\n";
}

// A label value, escaped as the text format wants.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

// timevault_job_duration_seconds: every kind with both outcomes, so the
// series exist (at zero) before the first job of a kind ends.
void JobDurationMetrics(ApiState& s, std::string& out) {
  JobDurations d = s.jobs->Durations();
  for (const char* kind : {"backup", "restore", "pitr", "rollback", "dr_test"}) {
    for (const char* outcome : {"succeeded", "failed"}) d.by_kind_outcome.try_emplace(std::make_pair(kind, outcome));
  }
  std::string samples;
  for (const auto& [key, series] : d.by_kind_outcome) {
    const std::string labels = "kind=\"" + LabelValue(key.first) + "\",outcome=\"" + LabelValue(key.second) + "\"";
    for (size_t i = 0; i < JobDurations::kBuckets.size(); ++i) {
      char le[32];
      std::snprintf(le, sizeof le, "%g", JobDurations::kBuckets[i]);
      samples += MetricLine("timevault_job_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"}",
                            static_cast<double>(series.buckets[i]));
    }
    samples += MetricLine("timevault_job_duration_seconds_bucket{" + labels + ",le=\"+Inf\"}",
                          static_cast<double>(series.count));
    samples += MetricLine("timevault_job_duration_seconds_sum{" + labels + "}", series.sum);
    samples += MetricLine("timevault_job_duration_seconds_count{" + labels + "}", static_cast<double>(series.count));
  }
  Metric(out, "timevault_job_duration_seconds", "histogram",
         "How long finished jobs ran (started to finished), by kind and outcome.", samples);
}

// Each plan against its RPO and RTO (what health's compliance table shows).
void PlanMetrics(ApiState& s, std::string& out) {
  std::string age, rpo, rpo_met, rto, restore, rto_met;
  const CommitTime now = s.clock->Now();
  for (const auto& p : s.plans->List()) {
    const PlanCompliance pc = Compliance(s, p, now);
    const std::string l = "{plan=\"" + LabelValue(p.name) + "\",tenant=\"" + LabelValue(p.tenant) + "\"}";
    if (pc.backup_age_seconds) age += MetricLine("timevault_plan_backup_age_seconds" + l, *pc.backup_age_seconds);
    rpo += MetricLine("timevault_plan_rpo_seconds" + l, static_cast<double>(p.rpo_minutes) * 60);
    rpo_met += MetricLine("timevault_plan_rpo_met" + l, pc.rpo_met ? 1 : 0);
    rto += MetricLine("timevault_plan_rto_seconds" + l, static_cast<double>(p.rto_minutes) * 60);
    if (pc.restore_seconds) restore += MetricLine("timevault_plan_restore_seconds" + l, *pc.restore_seconds);
    if (pc.rto_met) rto_met += MetricLine("timevault_plan_rto_met" + l, *pc.rto_met ? 1 : 0);
  }
  Metric(out, "timevault_plan_backup_age_seconds", "gauge",
         "Data age of the newest backup covering the plan's tenant (absent: none).", age);
  Metric(out, "timevault_plan_rpo_seconds", "gauge", "The plan's recovery point objective.", rpo);
  Metric(out, "timevault_plan_rpo_met", "gauge", "1 when the newest backup is within the RPO.", rpo_met);
  Metric(out, "timevault_plan_rto_seconds", "gauge", "The plan's recovery time objective.", rto);
  Metric(out, "timevault_plan_restore_seconds", "gauge",
         "The restore time the plan's last full or deep DR test measured (absent: none yet).", restore);
  Metric(out, "timevault_plan_rto_met", "gauge",
         "1 when the last measured restore is within the RTO (absent until one is measured).", rto_met);
}

std::string MetricsText(ApiState& s) {
  store::StoreStats st = s.backends.store->Stats();
  std::string out;
  const auto& line = MetricLine;
  Metric(out, "timevault_store_bytes", "gauge", "Bytes the store occupies on disk.",
         line("timevault_store_bytes", st.bytes_on_disk));
  Metric(out, "timevault_store_events_stored", "counter", "Change events stored.",
         line("timevault_store_events_stored", st.events_stored));
  Metric(out, "timevault_store_dead_letters", "gauge", "Messages in the dead-letter store.",
         line("timevault_store_dead_letters", st.dead_letters));
  Metric(out, "timevault_store_wal_bytes", "gauge", "Bytes of RocksDB write-ahead log files.",
         line("timevault_store_wal_bytes", st.wal_bytes));
  if (st.events_stored > 0) {
    Metric(out, "timevault_store_bytes_per_event", "gauge", "Bytes on disk per change event stored.",
           line("timevault_store_bytes_per_event",
                static_cast<double>(st.bytes_on_disk) / static_cast<double>(st.events_stored)));
  }
  if (st.recoverable) {
    Metric(out, "timevault_recoverable_point_lsn", "gauge", "WAL position of the recoverable point.",
           line("timevault_recoverable_point_lsn", static_cast<double>(st.recoverable->lsn.value())));
    Metric(out, "timevault_recoverable_point_timestamp_seconds", "gauge", "Commit time of the recoverable point.",
           line("timevault_recoverable_point_timestamp_seconds", st.recoverable->time.micros() / 1e6));
    Metric(out, "timevault_recoverable_point_age_seconds", "gauge",
           "Now minus the recoverable point's commit time (how much a PITR cannot reach yet).",
           line("timevault_recoverable_point_age_seconds",
                static_cast<double>(s.clock->Now().micros() - st.recoverable->time.micros()) / 1e6));
  }
  if (auto oldest = WindowOf(*s.backends.store).oldest) {
    Metric(out, "timevault_oldest_point_timestamp_seconds", "gauge",
           "Commit time of the oldest point a PITR can target (retention floor or first point).",
           line("timevault_oldest_point_timestamp_seconds", oldest->time.micros() / 1e6));
  }
  std::map<std::string, uint64_t> by_state;
  for (auto state : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed}) {
    by_state[std::string(JobStateName(state))] = 0;
  }
  for (const auto& j : s.jobs->List()) ++by_state[std::string(JobStateName(j.state))];
  std::string jobs;
  for (const auto& [state, n] : by_state)
    jobs += line("timevault_jobs{state=\"" + state + "\"}", static_cast<double>(n));
  Metric(out, "timevault_jobs", "gauge", "Jobs by state.", jobs);
  std::string http;
  {
    std::lock_guard lock(s.http.mu);
    for (const auto& [code, n] : s.http.by_status) {
      http += line("timevault_http_requests_total{code=\"" + std::to_string(code) + "\"}", static_cast<double>(n));
    }
  }
  Metric(out, "timevault_http_requests_total", "counter", "HTTP requests answered, by status code.", http);
  Metric(out, "timevault_audit_entries", "counter", "Entries in the audit trail.",
         line("timevault_audit_entries", static_cast<double>(s.audit->entries())));
  Metric(out, "timevault_dr_plans", "gauge", "DR plans configured.",
         line("timevault_dr_plans", static_cast<double>(s.plans->List().size())));
  JobDurationMetrics(s, out);
  PlanMetrics(s, out);
  return out;
}

Result<std::optional<CommitTime>> QueryTime(const Call& c, const char* name) {
  auto v = Query(c, name);
  if (!v) return std::optional<CommitTime>();
  TV_ASSIGN_OR_RETURN(CommitTime t, CallerTime(c, "query parameter '" + std::string(name) + "'", *v));
  return std::optional<CommitTime>(t);
}

// The store's dead letters (topic, partition, offset, reason), oldest first
// per partition; at most ?limit= (1..10000, default 1000) of them.
void ListDeadLetters(ApiState& s, Call& c) {
  constexpr int64_t kMaxLimit = 10000;
  int64_t limit = 1000;
  if (auto q = Query(c, "limit")) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(q->c_str(), &end, 10);
    if (q->empty() || *end != '\0' || errno != 0 || v < 1 || v > kMaxLimit) {
      return SendError(c, InvalidArgument("query parameter 'limit': expected an integer from 1 to " +
                                          std::to_string(kMaxLimit) + ", got '" + *q + "'"));
    }
    limit = v;
  }
  std::string out = "{\"dead_letters\":[";
  int64_t n = 0;
  bool truncated = false;
  Status st = s.backends.store->DeadLetters([&](const store::KafkaPosition& pos, const std::string& reason) {
    if (n == limit) {
      truncated = true;
      return false;
    }
    out += (n++ == 0 ? "" : ",") + store::Store::DeadLetterJson(pos, reason);
    return true;
  });
  if (!st.ok()) return SendError(c, st);
  out += std::string("],\"truncated\":") + (truncated ? "true" : "false") + "}";
  SendJson(c, 200, out);
}

void GetAudit(ApiState& s, Call& c) {
  AuditFilter f;
  auto from = QueryTime(c, "from");
  auto to = QueryTime(c, "to");
  if (!from.ok()) return SendError(c, from.status());
  if (!to.ok()) return SendError(c, to.status());
  f.from = *from;
  f.to = *to;
  f.actor = Query(c, "actor");
  f.tenant = Query(c, "tenant");
  if (f.tenant && f.tenant->empty())
    return SendError(c, InvalidArgument("query parameter 'tenant': must not be empty"));
  auto order = Query(c, "order");
  if (order && *order != "oldest" && *order != "newest") {
    return SendError(c, InvalidArgument("query parameter 'order': expected oldest or newest, got '" + *order + "'"));
  }
  const bool newest_first = order && *order == "newest";
  auto pager = Pager::FromQuery(c, "audit", {"from", "to", "actor", "tenant", "order"}, newest_first);
  if (!pager.ok()) return SendError(c, pager.status());
  // Every matching line with its seq (the sort key), oldest first.
  std::vector<std::pair<std::string, std::string>> lines;
  Status st = s.audit->Read(f, [&](const std::string& line) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    uint64_t seq =
        !d.HasParseError() && d.IsObject() && d.HasMember("seq") && d["seq"].IsUint64() ? d["seq"].GetUint64() : 0;
    lines.emplace_back(NumberKey(seq), line);
  });
  if (!st.ok()) return SendError(c, st);
  if (newest_first) std::reverse(lines.begin(), lines.end());
  std::string out = "{\"entries\":[";
  bool first = true;
  for (const auto& [key, line] : lines) {
    if (!pager->Take(key)) continue;
    out += (first ? "" : ",") + line;
    first = false;
  }
  SendJson(c, 200, out + "],\"next_cursor\":" + pager->NextCursorJson() + "}");
}

void VerifyAudit(ApiState& s, Call& c) {
  auto v = s.audit->Verify();
  if (!v.ok()) return SendError(c, v.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("ok");
  w.Bool(v->ok);
  w.Key("entries");
  w.Uint64(v->entries);
  w.Key("first_bad_line");
  if (v->ok) {
    w.Null();
  } else {
    w.Uint64(v->first_bad_line);
  }
  w.Key("problem");
  WriteOptString(w, v->ok ? std::nullopt : std::optional<std::string>(v->problem));
  w.EndObject();
  SendJson(c, 200, std::string(buf.GetString(), buf.GetSize()));
}

void ListJobs(ApiState& s, Call& c) {
  auto state = Query(c, "state");
  auto kind = Query(c, "kind");
  if (state && *state != "queued" && *state != "running" && *state != "succeeded" && *state != "failed") {
    return SendError(
        c, InvalidArgument("query parameter 'state': expected queued, running, succeeded or failed, got '" + *state +
                           "'"));
  }
  auto pager = Pager::FromQuery(c, "jobs", {"tenant", "state", "kind"}, /*descending=*/true);
  if (!pager.ok()) return SendError(c, pager.status());
  std::string out = "{\"jobs\":[";
  bool first = true;
  for (const auto& j : s.jobs->List()) {  // newest first: created, then id, descending
    if (!Visible(c, j.tenant) || (!c.tenant.empty() && j.tenant != c.tenant)) continue;
    if (state && JobStateName(j.state) != *state) continue;
    if (kind && j.kind != *kind) continue;
    if (!pager->Take(TimeKey(j.created, j.id))) continue;
    out += (first ? "" : ",") + JobJson(j);
    first = false;
  }
  SendJson(c, 200, out + "],\"next_cursor\":" + pager->NextCursorJson() + "}");
}

TenantFn JobTenant(ApiState& s) {
  return [&s](Call& c) -> Result<std::optional<std::string>> {
    auto j = s.jobs->Get(c.params[0]);
    if (!j) return NotFound("no job with id '" + c.params[0] + "'");
    return std::optional<std::string>(j->tenant);
  };
}

}  // namespace

void AddAdminRoutes(ApiState& s, std::vector<Route>& routes) {
  routes.push_back(MakeRoute("GET", "/v1/health", Role::kViewer, false, nullptr,
                             [&s](Call& c) { SendJson(c, 200, HealthJson(s, c.who)); }));
  routes.push_back(MakeRoute("GET", "/metrics", Role::kViewer, false, nullptr, [&s](Call& c) {
    c.res.status = 200;
    c.res.set_content(MetricsText(s), "text/plain; version=0.0.4");
  }));
  auto spec = MakeRoute("GET", "/v1/openapi.yaml", Role::kViewer, false, nullptr, [](Call& c) {
    c.res.status = 200;
    c.res.set_content(std::string(OpenApiYaml()), "application/yaml");
  });
  spec.authenticated = false;  // the API's description is public
  routes.push_back(std::move(spec));
  routes.push_back(
      MakeRoute("GET", "/v1/jobs", Role::kViewer, false, QueryTenant(), [&s](Call& c) { ListJobs(s, c); }));
  routes.push_back(MakeRoute("GET", "/v1/jobs/([A-Za-z0-9._-]+)", Role::kViewer, false, JobTenant(s),
                             [&s](Call& c) { SendJson(c, 200, JobJson(*s.jobs->Get(c.params[0]))); }));
  routes.push_back(MakeRoute("GET", "/v1/audit", Role::kAdmin, false, nullptr, [&s](Call& c) { GetAudit(s, c); }));
  routes.push_back(
      MakeRoute("GET", "/v1/dead-letters", Role::kAdmin, false, nullptr, [&s](Call& c) { ListDeadLetters(s, c); }));
  routes.push_back(
      MakeRoute("GET", "/v1/audit/verify", Role::kAdmin, false, nullptr, [&s](Call& c) { VerifyAudit(s, c); }));
}

}  // namespace timevault::api
