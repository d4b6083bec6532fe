// The checks of `timevault check` and GET /v1/check (preflight.h).
#include "timevault/api/preflight.h"

#include <librdkafka/rdkafka.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>

#include "json_util.h"
#include "timevault/capture/refusals.h"
#include "timevault/core/crypto.h"
#include "timevault/core/kafka.h"
#include "timevault/core/pg.h"

namespace timevault::api {

std::string_view CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk: return "ok";
    case CheckLevel::kWarning: return "warning";
    case CheckLevel::kError: return "error";
  }
  return "error";
}

CheckLevel WorstLevel(const std::vector<CheckResult>& checks) {
  CheckLevel worst = CheckLevel::kOk;
  for (const auto& c : checks) worst = std::max(worst, c.level);
  return worst;
}

std::string PreflightJson(const std::vector<CheckResult>& checks) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status");
  WriteString(w, CheckLevelName(WorstLevel(checks)));
  w.Key("checks");
  w.StartArray();
  for (const auto& c : checks) {
    w.StartObject();
    w.Key("name");
    WriteString(w, c.name);
    w.Key("level");
    WriteString(w, CheckLevelName(c.level));
    w.Key("detail");
    WriteString(w, c.detail);
    w.Key("fix");
    WriteString(w, c.fix);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {

constexpr int kTimeoutMs = 5000;
constexpr int64_t kWeekMs = 7LL * 24 * 3600 * 1000;
constexpr size_t kMaxNamed = 8;  // tables named in one line

class Report {
 public:
  void Ok(std::string name, std::string detail) { Add(std::move(name), CheckLevel::kOk, std::move(detail), ""); }
  void Warn(std::string name, std::string detail, std::string fix) {
    Add(std::move(name), CheckLevel::kWarning, std::move(detail), std::move(fix));
  }
  void Error(std::string name, std::string detail, std::string fix) {
    Add(std::move(name), CheckLevel::kError, std::move(detail), std::move(fix));
  }
  std::vector<CheckResult> Take() { return std::move(checks_); }

 private:
  void Add(std::string name, CheckLevel level, std::string detail, std::string fix) {
    checks_.push_back({std::move(name), level, std::move(detail), std::move(fix)});
  }
  std::vector<CheckResult> checks_;
};

std::string WithTimeout(const std::string& conninfo) {
  if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
  if (conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0) {
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
  }
  return conninfo + " connect_timeout=5";
}

// "a, b, c and 4 more".
std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxNamed; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kMaxNamed) out += " and " + std::to_string(names.size() - kMaxNamed) + " more";
  return out;
}

std::string Bytes(int64_t n) {
  const std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < units.size()) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string Duration(int64_t ms) {
  if (ms % (24 * 3600 * 1000) == 0) return std::to_string(ms / (24 * 3600 * 1000)) + " days";
  if (ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + " hours";
  return std::to_string(ms / 1000) + " s";
}

// ---- Postgres ---------------------------------------------------------------

// The tables capture publishes: postgres.tables, or every user table (what
// the FOR ALL TABLES publication it creates covers). Partitions are covered
// by their root.
constexpr const char* kScopeSql = R"SQL(
  SELECT n.nspname || '.' || c.relname AS name,
         EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
         c.relreplident AS ident,
         EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1
                 AND a.attnum > 0 AND NOT a.attisdropped) AS has_tenant
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    AND n.nspname NOT LIKE 'tv\_drtest\_%'
    AND ($2 = '' OR n.nspname || '.' || c.relname = ANY (string_to_array($2, ',')))
  ORDER BY 1)SQL";

void CheckTables(const config::Config& cfg, pg::PgConn& conn, Report& r) {
  std::string list;
  for (const auto& t : cfg.postgres.tables) list += (list.empty() ? "" : ",") + t;
  auto res = conn.ExecParams(kScopeSql, {cfg.tenant_column, list});
  if (!res.ok()) return r.Error("postgres.tables", "cannot read the catalog: " + res.status().message(), "");
  std::vector<std::string> no_key, no_tenant;
  std::set<std::string> seen;
  for (int i = 0; i < res->rows(); ++i) {
    std::string name = res->GetString(i, 0);
    seen.insert(name);
    bool has_pk = res->GetString(i, 1) == "t";
    std::string ident = res->GetString(i, 2);
    if ((!has_pk && ident != "f" && ident != "i") || ident == "n") no_key.push_back(name);
    if (res->GetString(i, 3) != "t") no_tenant.push_back(name);
  }
  std::vector<std::string> missing;
  for (const auto& t : cfg.postgres.tables) {
    if (!seen.count(t)) missing.push_back(t);
  }
  if (!missing.empty()) {
    r.Error("postgres.tables", "configured but not in the database: " + NameList(missing),
            "fix postgres.tables (schema.table) or create the tables");
  }
  if (res->rows() == 0) {
    r.Warn("postgres.tables", "no table to capture", "create the application's tables, or fix postgres.tables");
  } else if (missing.empty()) {
    r.Ok("postgres.tables", std::to_string(res->rows()) + " tables captured");
  }
  if (no_key.empty()) {
    r.Ok("postgres.primary_keys", "every captured table has a primary key or REPLICA IDENTITY FULL");
  } else {
    r.Warn("postgres.primary_keys",
           std::to_string(no_key.size()) +
               " tables without a primary key (UPDATE and DELETE on them fail once "
               "published): " +
               NameList(no_key),
           "add a primary key, or ALTER TABLE … REPLICA IDENTITY FULL, or leave them out of postgres.tables");
  }
  if (no_tenant.empty()) {
    r.Ok("postgres.tenant_column", "every captured table has the column " + cfg.tenant_column);
  } else {
    r.Warn("postgres.tenant_column",
           std::to_string(no_tenant.size()) + " tables without the column " + cfg.tenant_column +
               " (their rows belong to no tenant; only all-tenant backups and restores include them): " +
               NameList(no_tenant),
           "add the column " + cfg.tenant_column + ", set tenant.column, or leave them out of postgres.tables");
  }
}

// Published tables capture refuses (topic names that collide after
// Debezium's sanitising): capture streams the others and logs an error;
// their changes are not captured, so check fails until they are renamed or
// left out.
void CheckRefused(const config::Config& cfg, pg::PgConn& conn, Report& r) {
  auto refused = capture::FindRefusedTables(conn, cfg.postgres.publication, cfg.kafka.topic_prefix);
  if (!refused.ok()) {
    return r.Warn("capture.refused_tables", "cannot read the published tables: " + refused.status().message(), "");
  }
  if (refused->empty()) {
    return r.Ok("capture.refused_tables", "every published table has a topic of its own");
  }
  std::vector<std::string> reasons;
  for (const auto& t : *refused) {
    if (std::find(reasons.begin(), reasons.end(), t.reason) == reasons.end()) reasons.push_back(t.reason);
  }
  std::string detail =
      std::to_string(refused->size()) + " table(s) refused, their changes are NOT captured (the " + "others stream): ";
  for (size_t i = 0; i < reasons.size(); ++i) detail += (i ? "; " : "") + reasons[i];
  r.Error("capture.refused_tables", detail,
          "rename one table of each group, or list the tables to capture in postgres.tables");
}

void CheckPostgres(const config::Config& cfg, Report& r) {
  auto conn = pg::PgConn::Connect(WithTimeout(cfg.postgres.conninfo));
  if (!conn.ok()) {
    return r.Error("postgres.connect", "cannot connect: " + conn.status().message(),
                   "check postgres.conninfo (host, port, user, dbname, password) and that Postgres runs");
  }
  auto info = conn->Exec(
      "SELECT current_user, current_database(), current_setting('server_version_num')::int, "
      "current_setting('wal_level'), r.rolreplication, r.rolsuper, "
      "current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots), "
      "current_setting('max_wal_senders')::int "
      "FROM pg_roles r WHERE r.rolname = current_user");
  if (!info.ok() || info->rows() != 1) {
    return r.Error("postgres.connect", "connected, but cannot read the settings: " + info.status().message(), "");
  }
  std::string user = info->GetString(0, 0), db = info->GetString(0, 1);
  int version = std::stoi(info->GetString(0, 2));
  r.Ok("postgres.connect", "connected to " + db + " as " + user + " (server " + std::to_string(version / 10000) + ")");
  std::string wal_level = info->GetString(0, 3);
  if (wal_level == "logical") {
    r.Ok("postgres.wal_level", "wal_level = logical");
  } else {
    r.Error("postgres.wal_level", "wal_level = " + wal_level + ": logical replication is off",
            "ALTER SYSTEM SET wal_level = logical; then restart Postgres");
  }
  bool superuser = info->GetString(0, 5) == "t";
  if (info->GetString(0, 4) == "t" || superuser) {
    r.Ok("postgres.replication", user + (superuser ? " is a superuser" : " has REPLICATION"));
  } else {
    r.Error("postgres.replication", user + " lacks the REPLICATION attribute (capture cannot stream changes)",
            "ALTER ROLE " + user + " REPLICATION;");
  }
  // The slot: ours, in this database, with pgoutput; or room for it.
  auto slot = conn->ExecParams(
      "SELECT database, plugin, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
      "FROM pg_replication_slots WHERE slot_name = $1",
      {cfg.postgres.slot});
  if (!slot.ok()) {
    r.Error("postgres.slot", "cannot read pg_replication_slots: " + slot.status().message(), "");
  } else if (slot->rows() == 0) {
    int max_slots = std::stoi(info->GetString(0, 6)), used = std::stoi(info->GetString(0, 7));
    if (used >= max_slots) {
      r.Error("postgres.slot",
              "slot " + cfg.postgres.slot + " does not exist and all " + std::to_string(max_slots) +
                  " replication slots are used",
              "raise max_replication_slots (restart) or drop an unused slot with pg_drop_replication_slot");
    } else {
      r.Ok("postgres.slot", "slot " + cfg.postgres.slot + " will be created at the first start (" +
                                std::to_string(max_slots - used) + " of " + std::to_string(max_slots) + " free)");
    }
  } else if (slot->GetString(0, 0) != db) {
    r.Error("postgres.slot", "slot " + cfg.postgres.slot + " belongs to database " + slot->GetString(0, 0),
            "choose another postgres.slot, or point postgres.conninfo at " + slot->GetString(0, 0));
  } else if (slot->GetString(0, 1) != "pgoutput") {
    r.Error("postgres.slot", "slot " + cfg.postgres.slot + " uses the plugin " + slot->GetString(0, 1),
            "choose another postgres.slot (capture needs pgoutput)");
  } else {
    int64_t retained = slot->IsNull(0, 3) ? 0 : std::stoll(slot->GetString(0, 3));
    std::string what = "slot " + cfg.postgres.slot + (slot->GetString(0, 2) == "t" ? " (active)" : " (inactive)") +
                       ", " + Bytes(retained) + " of WAL retained";
    if (slot->GetString(0, 2) != "t" && retained > (1LL << 30)) {
      r.Warn("postgres.slot", what + ": an idle slot keeps WAL until capture runs",
             "start capture, or drop the slot if it is abandoned (pg_drop_replication_slot)");
    } else {
      r.Ok("postgres.slot", what);
    }
  }
  auto publication =
      conn->ExecParams("SELECT puballtables FROM pg_publication WHERE pubname = $1", {cfg.postgres.publication});
  if (publication.ok() && publication->rows() == 1) {
    r.Ok("postgres.publication", "publication " + cfg.postgres.publication + " exists" +
                                     (publication->GetString(0, 0) == "t" ? " (FOR ALL TABLES)" : ""));
  } else if (publication.ok() && cfg.postgres.tables.empty() && !superuser) {
    r.Error(
        "postgres.publication",
        "publication " + cfg.postgres.publication + " does not exist and creating it FOR ALL TABLES needs a superuser",
        "as a superuser: CREATE PUBLICATION " + cfg.postgres.publication +
            " FOR ALL TABLES WITH (publish_via_partition_root = true);");
  } else if (publication.ok()) {
    r.Ok("postgres.publication", "publication " + cfg.postgres.publication + " will be created at the first start");
  }
  // Applies run with session_replication_role = replica (no triggers, any
  // row order); without the right they fall back to foreign-key order with
  // user triggers firing.
  bool can_set = superuser;
  if (!can_set && version >= 150000) {
    auto p = conn->Exec("SELECT has_parameter_privilege(current_user, 'session_replication_role', 'SET')");
    can_set = p.ok() && p->rows() == 1 && p->GetString(0, 0) == "t";
  }
  if (can_set) {
    r.Ok("postgres.session_replication_role", user + " may set session_replication_role (applies skip triggers)");
  } else {
    r.Warn("postgres.session_replication_role",
           user + " may not set session_replication_role: restores run with user triggers firing",
           "GRANT SET ON PARAMETER session_replication_role TO " + user + ";  (Postgres 15+)");
  }
  CheckTables(cfg, *conn, r);
  CheckRefused(cfg, *conn, r);
}

// ---- Kafka ------------------------------------------------------------------

struct KafkaAdmin {
  kafka::Handle rk;
  rd_kafka_queue_t* queue = nullptr;
  ~KafkaAdmin() {
    if (queue) rd_kafka_queue_destroy(queue);
  }
};

// name -> value of each config of each resource, or the error.
Result<std::vector<std::pair<std::string, std::map<std::string, std::string>>>> DescribeConfigs(
    rd_kafka_t* rk, rd_kafka_ResourceType_t type, const std::vector<std::string>& names) {
  std::vector<rd_kafka_ConfigResource_t*> res;
  for (const auto& n : names) res.push_back(rd_kafka_ConfigResource_new(type, n.c_str()));
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(opt, kTimeoutMs, errstr, sizeof errstr);
  rd_kafka_DescribeConfigs(rk, res.data(), res.size(), opt, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, kTimeoutMs * 2);
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> out;
  Status st = Status::Ok();
  if (ev == nullptr) {
    st = Unavailable("DescribeConfigs timed out");
  } else if (rd_kafka_event_error(ev)) {
    st = Unavailable(std::string("DescribeConfigs: ") + rd_kafka_event_error_string(ev));
  } else {
    const rd_kafka_DescribeConfigs_result_t* result = rd_kafka_event_DescribeConfigs_result(ev);
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
    for (size_t i = 0; i < n; ++i) {
      std::map<std::string, std::string> values;
      size_t cn = 0;
      const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &cn);
      for (size_t j = 0; j < cn; ++j) {
        const char* v = rd_kafka_ConfigEntry_value(entries[j]);
        if (v != nullptr) values[rd_kafka_ConfigEntry_name(entries[j])] = v;
      }
      out.emplace_back(rd_kafka_ConfigResource_name(rs[i]), std::move(values));
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_ConfigResource_destroy_array(res.data(), res.size());
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
  if (!st.ok()) return st;
  return out;
}

std::optional<int64_t> ParseInt(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return std::nullopt;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return std::nullopt;
  }
}

void JudgeRetention(Report& r, const std::string& what, int64_t ms) {
  if (ms < 0) return r.Ok("kafka.retention", what + " keeps messages forever (retention.ms = -1)");
  std::string text = what + " keeps messages " + Duration(ms);
  if (ms < kWeekMs) {
    return r.Warn("kafka.retention", text + ": a store stopped longer than that loses history (recorded as a gap)",
                  "kafka-configs --alter --entity-type topics --entity-name TOPIC --add-config retention.ms=-1 "
                  "(or at least 7 days)");
  }
  r.Ok("kafka.retention", text);
}

void CheckKafka(const config::Config& cfg, Report& r) {
  kafka::Conf conf;
  Status st = conf.SetAll(cfg.kafka.properties);
  if (st.ok()) st = conf.Set("bootstrap.servers", cfg.kafka.bootstrap);
  if (st.ok()) st = conf.Set("socket.timeout.ms", std::to_string(kTimeoutMs));
  // The outcome is the check's line; librdkafka's own connection logs would only repeat it.
  if (st.ok()) st = conf.Set("log_level", "0");
  if (!st.ok()) return r.Error("kafka.reachable", st.message(), "fix kafka.properties");
  auto handle = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
  if (!handle.ok()) return r.Error("kafka.reachable", handle.status().message(), "fix the kafka section");
  rd_kafka_t* rk = handle->get();
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, kTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return r.Error("kafka.reachable", "no answer from " + cfg.kafka.bootstrap + " within 5 s: " + rd_kafka_err2str(err),
                   "check kafka.bootstrap and that the brokers run and are reachable from here");
  }
  std::vector<std::string> topics;
  const std::string prefix = cfg.kafka.topic_prefix + ".";
  for (int i = 0; i < md->topic_cnt; ++i) {
    std::string name = md->topics[i].topic;
    if (name.rfind(prefix, 0) == 0) topics.push_back(name);
  }
  int broker = md->broker_cnt > 0 ? md->brokers[0].id : -1;
  r.Ok("kafka.reachable", std::to_string(md->broker_cnt) + " broker(s) at " + cfg.kafka.bootstrap + "; " +
                              std::to_string(topics.size()) + " topics with prefix " + cfg.kafka.topic_prefix);
  rd_kafka_metadata_destroy(md);

  if (topics.empty()) {
    if (broker < 0) return;
    auto configs = DescribeConfigs(rk, RD_KAFKA_RESOURCE_BROKER, {std::to_string(broker)});
    if (!configs.ok() || configs->empty()) {
      return r.Warn("kafka.retention", "cannot read the broker's retention: " + configs.status().message(),
                    "check that the user may DescribeConfigs");
    }
    const auto& m = configs->front().second;
    std::optional<int64_t> ms = ParseInt(m, "log.retention.ms");
    if (!ms) {
      if (auto min = ParseInt(m, "log.retention.minutes")) ms = *min * 60 * 1000;
    }
    if (!ms) {
      if (auto hours = ParseInt(m, "log.retention.hours")) ms = *hours * 3600 * 1000;
    }
    if (!ms) return r.Warn("kafka.retention", "the broker does not report its retention", "");
    return JudgeRetention(r, "the broker's default for new topics", *ms);
  }
  std::sort(topics.begin(), topics.end());
  if (topics.size() > 100) topics.resize(100);
  auto configs = DescribeConfigs(rk, RD_KAFKA_RESOURCE_TOPIC, topics);
  if (!configs.ok()) {
    return r.Warn("kafka.retention", "cannot read the topics' retention: " + configs.status().message(),
                  "check that the user may DescribeConfigs");
  }
  std::optional<std::pair<int64_t, std::string>> shortest;
  std::vector<std::string> compacted;
  for (const auto& [name, m] : *configs) {
    auto ms = ParseInt(m, "retention.ms");
    if (ms && *ms >= 0 && (!shortest || *ms < shortest->first)) shortest = {*ms, name};
    auto policy = m.find("cleanup.policy");
    if (policy != m.end() && policy->second.find("compact") != std::string::npos) compacted.push_back(name);
  }
  if (shortest) {
    JudgeRetention(r, "topic " + shortest->second + " (the shortest of " + std::to_string(configs->size()) + ")",
                   shortest->first);
  } else {
    JudgeRetention(r, "every " + cfg.kafka.topic_prefix + " topic", -1);
  }
  if (!compacted.empty()) {
    r.Warn("kafka.cleanup_policy",
           "compacted topics keep only the newest message per key, older versions can vanish before the store "
           "reads them: " +
               NameList(compacted),
           "kafka-configs --alter --entity-type topics --entity-name TOPIC --add-config cleanup.policy=delete");
  }
}

// ---- files and the API --------------------------------------------------------

void CheckKeyFile(const config::Config& cfg, Report& r) {
  auto key = crypto::MasterKey::Load(cfg.store.key_file);
  if (!key.ok() && key.status().code() == StatusCode::kPermissionDenied) {
    return r.Error("store.key_file", key.status().message(),
                   "chmod 600 " + cfg.store.key_file + " and chown it to the user running timevault (not a link)");
  }
  if (!key.ok()) {
    return r.Error("store.key_file", key.status().message(),
                   "umask 077; head -c 32 /dev/urandom > " + cfg.store.key_file + "  (a new store only)");
  }
  r.Ok("store.key_file", cfg.store.key_file + ": 32 bytes, readable by its owner only");
}

void CheckDisk(const config::Config& cfg, Report& r) {
  std::filesystem::path p = cfg.store.path;
  std::error_code ec;
  while (!p.empty() && !std::filesystem::exists(p, ec)) p = p.parent_path();
  struct statvfs vfs {};
  if (p.empty() || statvfs(p.c_str(), &vfs) != 0 || vfs.f_blocks == 0) {
    return r.Warn("store.disk", "cannot stat the file system of " + cfg.store.path, "check store.path");
  }
  double used = 1.0 - static_cast<double>(vfs.f_bavail) / static_cast<double>(vfs.f_blocks);
  std::string text = "the file system of " + cfg.store.path + " is " + std::to_string(static_cast<int>(used * 100)) +
                     "% full (" + Bytes(static_cast<int64_t>(vfs.f_bavail * vfs.f_frsize)) + " free)";
  if (used > 0.8) return r.Warn("store.disk", text, "free space or move store.path: keep it below 80%");
  r.Ok("store.disk", text);
}

// Tokens whose hash is a placeholder from the docs or a guessable word.
void CheckTokens(const config::Config& cfg, Report& r) {
  if (cfg.api.tokens.empty()) {
    return r.Warn("api.tokens", "no token is configured: every API call and the console are refused",
                  "add [[api.tokens]] with sha256 = $(printf %s TOKEN | sha256sum)");
  }
  std::set<std::string> weak = {std::string(64, '0'), std::string(64, 'f')};
  for (const char* word : {"", "changeme", "change-me", "token", "secret", "password", "admin", "timevault", "test",
                           "example", "TOKEN", "demo"}) {
    weak.insert(crypto::Sha256Hex(word));
  }
  std::vector<std::string> bad;
  for (const auto& t : cfg.api.tokens) {
    std::string h = t.sha256;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (weak.count(h)) bad.push_back(t.name);
  }
  if (!bad.empty()) {
    return r.Error("api.tokens", "placeholder or guessable token hashes: " + NameList(bad),
                   "token=$(openssl rand -hex 24); put $(printf %s \"$token\" | sha256sum) in their sha256");
  }
  r.Ok("api.tokens", std::to_string(cfg.api.tokens.size()) + " token(s), none a placeholder");
}

void CheckListen(const config::Config& cfg, Report& r) {
  const std::string& listen = cfg.api.listen;
  std::string host = listen.substr(0, listen.rfind(':'));
  bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
  if (!loopback && cfg.api.tls_cert.empty()) {
    return r.Warn("api.tls", "the API listens on " + listen + " without TLS: tokens cross the network in clear",
                  "set api.tls_cert and api.tls_key, or listen on 127.0.0.1 behind a TLS proxy");
  }
  r.Ok("api.tls", loopback ? "listens on loopback (" + listen + ")" : "TLS on " + listen);
}

}  // namespace

std::vector<CheckResult> RunPreflight(const config::Config& cfg) {
  Report r;
  CheckPostgres(cfg, r);
  CheckKafka(cfg, r);
  CheckKeyFile(cfg, r);
  CheckDisk(cfg, r);
  CheckTokens(cfg, r);
  CheckListen(cfg, r);
  return r.Take();
}

}  // namespace timevault::api
