#include "timevault/config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <variant>

#include "timevault/core/time.h"

extern char** environ;

namespace timevault::config {
namespace {

enum class Kind { kString, kInt, kBool, kStringList };

using Value = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

// One scalar setting: its dotted key, kind, whether required, and how it is
// stored into Config after validation.
struct Spec {
  std::string_view key;
  Kind kind;
  bool required;
  std::function<Status(Config&, const Value&)> apply;
};

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kString: return "a string";
    case Kind::kInt: return "an integer";
    case Kind::kBool: return "a boolean";
    case Kind::kStringList: return "an array of strings";
  }
  return "?";
}

std::string_view NodeTypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

Status KeyError(std::string_view key, std::string_view reason) {
  return InvalidArgument(std::string(key) + ": " + std::string(reason));
}

Status OneOf(std::string_view key, const std::string& v, std::initializer_list<std::string_view> allowed) {
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return Status::Ok();
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return KeyError(key, "'" + v + "' is not one of " + list);
}

template <typename F>
auto Str(F f) {
  return [f](Config& c, const Value& v) { return f(c, std::get<std::string>(v)); };
}
template <typename F>
auto Int(F f) {
  return [f](Config& c, const Value& v) { return f(c, std::get<int64_t>(v)); };
}

Status NonEmpty(std::string_view key, const std::string& v) {
  return v.empty() ? KeyError(key, "must not be empty") : Status::Ok();
}

Status AtLeast(std::string_view key, int64_t v, int64_t min) {
  return v < min ? KeyError(key, "must be at least " + std::to_string(min) + ", got " + std::to_string(v))
                 : Status::Ok();
}

// Identifiers used in SQL and topic names: keep them to a safe alphabet.
Status Identifier(std::string_view key, const std::string& v) {
  TV_RETURN_IF_ERROR(NonEmpty(key, v));
  for (char c : v) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (c >= 'A' && c <= 'Z') || c == '-' || c == '.';
    if (!ok) return KeyError(key, "'" + v + "' may contain only letters, digits, '_', '-' and '.'");
  }
  return Status::Ok();
}

Status SqlName(std::string_view key, const std::string& v) {
  TV_RETURN_IF_ERROR(NonEmpty(key, v));
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return KeyError(key, "'" + v + "' must be a lower-case SQL name ([a-z0-9_])");
  }
  return Status::Ok();
}

const std::vector<Spec>& Specs() {
  static const std::vector<Spec> specs = {
      {"log_level", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(OneOf("log_level", v, {"trace", "debug", "info", "warn", "error", "critical", "off"}));
         c.log_level = v;
         return Status::Ok();
       })},
      {"tenant.column", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(SqlName("tenant.column", v));
         c.tenant_column = v;
         return Status::Ok();
       })},
      {"postgres.conninfo", Kind::kString, true, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(NonEmpty("postgres.conninfo", v));
         c.postgres.conninfo = v;
         return Status::Ok();
       })},
      {"postgres.slot", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(SqlName("postgres.slot", v));
         c.postgres.slot = v;
         return Status::Ok();
       })},
      {"postgres.publication", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(SqlName("postgres.publication", v));
         c.postgres.publication = v;
         return Status::Ok();
       })},
      {"postgres.tables", Kind::kStringList, false,
       [](Config& c, const Value& v) {
         const auto& list = std::get<std::vector<std::string>>(v);
         for (const auto& t : list) {
           if (t.find('.') == std::string::npos || t.front() == '.' || t.back() == '.') {
             return KeyError("postgres.tables", "'" + t + "' is not of the form schema.table");
           }
         }
         c.postgres.tables = list;
         return Status::Ok();
       }},
      {"postgres.snapshot_mode", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(OneOf("postgres.snapshot_mode", v, {"initial", "no_data", "initial_only", "when_needed"}));
         c.postgres.snapshot_mode = v == "initial"        ? SnapshotMode::kInitial
                                    : v == "no_data"      ? SnapshotMode::kNoData
                                    : v == "initial_only" ? SnapshotMode::kInitialOnly
                                                          : SnapshotMode::kWhenNeeded;
         return Status::Ok();
       })},
      {"postgres.on_slot_loss", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(OneOf("postgres.on_slot_loss", v, {"resnapshot", "stop"}));
         c.postgres.on_slot_loss = v == "stop" ? SlotLossAction::kStop : SlotLossAction::kResnapshot;
         return Status::Ok();
       })},
      {"kafka.topic_retention_ms", Kind::kInt, false, Int([](Config& c, int64_t v) {
         if (v != -1 && v < 3600000)
           return KeyError("kafka.topic_retention_ms", "must be -1 (keep) or at least one hour");
         c.kafka.topic_retention_ms = v;
         return Status::Ok();
       })},
      {"postgres.snapshot_chunk_rows", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("postgres.snapshot_chunk_rows", v, 1));
         c.postgres.snapshot_chunk_rows = v;
         return Status::Ok();
       })},
      {"postgres.read_ahead_bytes", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("postgres.read_ahead_bytes", v, 65536));
         c.postgres.read_ahead_bytes = v;
         return Status::Ok();
       })},
      {"postgres.status_interval_ms", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("postgres.status_interval_ms", v, 100));
         c.postgres.status_interval_ms = v;
         return Status::Ok();
       })},
      {"kafka.bootstrap", Kind::kString, true, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(NonEmpty("kafka.bootstrap", v));
         c.kafka.bootstrap = v;
         return Status::Ok();
       })},
      {"kafka.topic_prefix", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(Identifier("kafka.topic_prefix", v));
         c.kafka.topic_prefix = v;
         return Status::Ok();
       })},
      {"kafka.compression", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(OneOf("kafka.compression", v, {"none", "gzip", "snappy", "lz4", "zstd"}));
         c.kafka.compression = v;
         return Status::Ok();
       })},
      {"kafka.linger_ms", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("kafka.linger_ms", v, 0));
         c.kafka.linger_ms = v;
         return Status::Ok();
       })},
      {"kafka.schemas_enable", Kind::kBool, false,
       [](Config& c, const Value& v) {
         c.kafka.schemas_enable = std::get<bool>(v);
         return Status::Ok();
       }},
      {"kafka.heartbeat_interval_ms", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("kafka.heartbeat_interval_ms", v, 100));
         c.kafka.heartbeat_interval_ms = v;
         return Status::Ok();
       })},
      {"kafka.idle_probe", Kind::kBool, false,
       [](Config& c, const Value& v) {
         c.kafka.idle_probe = std::get<bool>(v);
         return Status::Ok();
       }},
      {"kafka.topic_partitions", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("kafka.topic_partitions", v, 1));
         c.kafka.topic_partitions = v;
         return Status::Ok();
       })},
      {"kafka.consumer_group", Kind::kString, false, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(Identifier("kafka.consumer_group", v));
         c.kafka.consumer_group = v;
         return Status::Ok();
       })},
      {"store.path", Kind::kString, true, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(NonEmpty("store.path", v));
         c.store.path = v;
         return Status::Ok();
       })},
      {"store.key_file", Kind::kString, true, Str([](Config& c, const std::string& v) {
         TV_RETURN_IF_ERROR(NonEmpty("store.key_file", v));
         c.store.key_file = v;
         return Status::Ok();
       })},
      {"store.retention_days", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("store.retention_days", v, 1));
         c.store.retention_days = v;
         return Status::Ok();
       })},
      {"store.memory_mb", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("store.memory_mb", v, 64));
         c.store.memory_mb = v;
         return Status::Ok();
       })},
      {"store.min_free_mb", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("store.min_free_mb", v, 0));
         c.store.min_free_mb = v;
         return Status::Ok();
       })},
      {"signing.key_file", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.signing.key_file = v;
         return Status::Ok();
       })},
      {"signing.require", Kind::kBool, false,
       [](Config& c, const Value& v) {
         c.signing.require = std::get<bool>(v);
         return Status::Ok();
       }},
      {"replay.backup_dir", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.replay.backup_dir = v;
         return Status::Ok();
       })},
      {"replay.snapshot_dir", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.replay.snapshot_dir = v;
         return Status::Ok();
       })},
      {"replay.snapshot_retention_days", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("replay.snapshot_retention_days", v, 1));
         c.replay.snapshot_retention_days = v;
         return Status::Ok();
       })},
      {"replay.backup_workers", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("replay.backup_workers", v, 1));
         if (v > 64) return InvalidArgument("replay.backup_workers: at most 64, got " + std::to_string(v));
         c.replay.backup_workers = v;
         return Status::Ok();
       })},
      {"replay.lock_timeout_ms", Kind::kInt, false, Int([](Config& c, int64_t v) {
         TV_RETURN_IF_ERROR(AtLeast("replay.lock_timeout_ms", v, 1));
         c.replay.lock_timeout_ms = v;
         return Status::Ok();
       })},
      {"api.state_dir", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.api.state_dir = v;
         return Status::Ok();
       })},
      {"api.listen", Kind::kString, false, Str([](Config& c, const std::string& v) {
         auto colon = v.rfind(':');
         if (colon == std::string::npos || colon + 1 == v.size()) {
           return KeyError("api.listen", "'" + v + "' is not host:port");
         }
         int port = 0;
         auto tail = std::string_view(v).substr(colon + 1);
         auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), port);
         if (ec != std::errc() || p != tail.data() + tail.size() || port < 0 || port > 65535) {
           return KeyError("api.listen", "'" + std::string(tail) + "' is not a port number");
         }
         c.api.listen = v;
         return Status::Ok();
       })},
      {"api.url", Kind::kString, false, Str([](Config& c, const std::string& v) {
         const bool http = v.rfind("http://", 0) == 0, https = v.rfind("https://", 0) == 0;
         const size_t host = http ? 7 : 8;
         if (!v.empty() &&
             (!(http || https) || v.size() == host || v.find_first_of("/?# ", host) != std::string::npos)) {
           return KeyError("api.url", "'" + v + "' is not http://host:port or https://host:port (no path)");
         }
         c.api.url = v;
         return Status::Ok();
       })},
      {"api.time_zone", Kind::kString, false, Str([](Config& c, const std::string& v) {
         if (!v.empty() && !ParseUtcOffset(v)) {
           return KeyError("api.time_zone", "'" + v +
                                                "' is not UTC or a fixed offset like +02:00 (named zones are "
                                                "refused: across a DST change a local time is ambiguous)");
         }
         c.api.time_zone = v;
         return Status::Ok();
       })},
      {"api.tls_cert", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.api.tls_cert = v;
         return Status::Ok();
       })},
      {"api.tls_key", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.api.tls_key = v;
         return Status::Ok();
       })},
      {"api.tls_client_ca", Kind::kString, false, Str([](Config& c, const std::string& v) {
         c.api.tls_client_ca = v;
         return Status::Ok();
       })},
  };
  return specs;
}

const Spec* FindSpec(std::string_view key) {
  for (const auto& s : Specs()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

// TIMEVAULT_KAFKA_LINGER_MS for kafka.linger_ms.
std::string EnvName(std::string_view key) {
  std::string out = "TIMEVAULT_";
  for (char c : key) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Result<Value> FromNode(std::string_view key, Kind kind, const toml::node& n) {
  auto wrong = [&]() {
    return KeyError(key, "expected " + std::string(KindName(kind)) + ", got " + std::string(NodeTypeName(n)));
  };
  switch (kind) {
    case Kind::kString:
      if (auto v = n.value_exact<std::string>()) return Value(*v);
      return wrong();
    case Kind::kInt:
      if (auto v = n.value_exact<int64_t>()) return Value(*v);
      return wrong();
    case Kind::kBool:
      if (auto v = n.value_exact<bool>()) return Value(*v);
      return wrong();
    case Kind::kStringList: {
      const auto* arr = n.as_array();
      if (!arr) return wrong();
      std::vector<std::string> out;
      for (size_t i = 0; i < arr->size(); ++i) {
        auto s = (*arr)[i].value_exact<std::string>();
        if (!s) {
          return KeyError(
              key, "element " + std::to_string(i) + ": expected a string, got " + std::string(NodeTypeName((*arr)[i])));
        }
        out.push_back(*s);
      }
      return Value(std::move(out));
    }
  }
  return wrong();
}

Result<Value> FromEnv(std::string_view key, Kind kind, const std::string& name, const std::string& text) {
  auto bad = [&](std::string_view what) {
    return KeyError(key, "environment variable " + name + "='" + text + "' is not " + std::string(what));
  };
  switch (kind) {
    case Kind::kString: return Value(text);
    case Kind::kInt: {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return bad("an integer");
      return Value(v);
    }
    case Kind::kBool:
      if (text == "true" || text == "1") return Value(true);
      if (text == "false" || text == "0") return Value(false);
      return bad("a boolean (true/false)");
    case Kind::kStringList: {
      std::vector<std::string> out;
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
      }
      return Value(std::move(out));
    }
  }
  return bad("valid");
}

Result<Role> ParseRole(std::string_view key, const std::string& v) {
  if (v == "viewer") return Role::kViewer;
  if (v == "operator") return Role::kOperator;
  if (v == "admin") return Role::kAdmin;
  return KeyError(key, "'" + v + "' is not one of viewer, operator, admin");
}

Status LoadToken(const toml::node& node, size_t index, ApiToken* out) {
  std::string base = "api.tokens[" + std::to_string(index) + "]";
  const auto* t = node.as_table();
  if (!t) return KeyError(base, "expected a table, got " + std::string(NodeTypeName(node)));
  bool seen_role = false;
  for (const auto& [k, v] : *t) {
    std::string key = base + "." + std::string(k.str());
    if (k == "tenants") {
      TV_ASSIGN_OR_RETURN(auto list, FromNode(key, Kind::kStringList, v));
      out->tenants = std::get<std::vector<std::string>>(list);
      continue;
    }
    if (k != "name" && k != "sha256" && k != "role") return KeyError(key, "unknown key");
    TV_ASSIGN_OR_RETURN(auto s, FromNode(key, Kind::kString, v));
    const auto& str = std::get<std::string>(s);
    if (k == "name") out->name = str;
    if (k == "sha256") out->sha256 = str;
    if (k == "role") {
      TV_ASSIGN_OR_RETURN(out->role, ParseRole(key, str));
      seen_role = true;
    }
  }
  if (out->name.empty()) return KeyError(base + ".name", "missing required value");
  if (out->sha256.size() != 64 || out->sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return KeyError(base + ".sha256", "must be 64 lower-case hex digits (sha256sum of the token)");
  }
  if (out->sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
    return KeyError(base + ".sha256", "is the SHA-256 of the empty token; choose a random token");
  }
  if (!seen_role) return KeyError(base + ".role", "missing required value");
  if (out->tenants.empty()) return KeyError(base + ".tenants", "missing required value (a list, or [\"*\"])");
  return Status::Ok();
}

bool IsSection(std::string_view key) {
  return key == "postgres" || key == "kafka" || key == "tenant" || key == "store" || key == "replay" || key == "api" ||
         key == "signing";
}

struct Collected {
  std::map<std::string, Value> values;
  std::map<std::string, std::string> kafka_properties;
  std::vector<ApiToken> tokens;
};

Status CollectTable(const toml::table& table, const std::string& prefix, Collected* out);

// kafka.properties that would let capture skip a message or the store lose
// one (invariant 1): refused, naming the key. Idempotence, acks=all and an
// infinite delivery timeout are what makes "never skips" hold.
Status CheckDeliveryProperties(const std::map<std::string, std::string>& props) {
  auto refuse = [](const std::string& key, const std::string& v, std::string_view why) {
    return KeyError("kafka.properties." + key, "'" + v + "' weakens delivery: " + std::string(why));
  };
  for (const auto& [key, v] : props) {
    if (key == "enable.idempotence" && v != "true") {
      return refuse(key, v, "capture's producer must be idempotent (no duplicates, no reordering)");
    }
    if ((key == "acks" || key == "request.required.acks") && v != "all" && v != "-1") {
      return refuse(key, v, "every message must be acknowledged by all in-sync replicas");
    }
    if ((key == "message.timeout.ms" || key == "delivery.timeout.ms") && v != "0") {
      return refuse(key, v, "a message that times out is skipped; capture retries forever (0)");
    }
    if (key == "max.in.flight.requests.per.connection" || key == "max.in.flight") {
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 3 || std::stoi(v) > 5) {
        return refuse(key, v, "the idempotent producer keeps order only with at most 5 requests in flight");
      }
    }
    if (key == "message.send.max.retries" || key == "retries") {
      return refuse(key, v, "the idempotent producer retries until delivered");
    }
    if (key == "auto.offset.reset" && v != "error") {
      return refuse(key, v,
                    "a fetch out of range (a topic recreated, retention past the store) would start the partition "
                    "over without a word; the store catches it and records the gap (\"error\")");
    }
    if ((key == "enable.auto.commit" || key == "enable.auto.offset.store") && v != "false") {
      return refuse(key, v, "the store keeps its offsets with its data, in one write");
    }
  }
  return Status::Ok();
}

Status CollectEntry(const std::string& key, const toml::node& node, Collected* out) {
  if (key == "kafka.properties") {
    const auto* t = node.as_table();
    if (!t) return KeyError(key, "expected a table, got " + std::string(NodeTypeName(node)));
    for (const auto& [k, v] : *t) {
      std::string sub = key + "." + std::string(k.str());
      TV_ASSIGN_OR_RETURN(auto s, FromNode(sub, Kind::kString, v));
      out->kafka_properties[std::string(k.str())] = std::get<std::string>(s);
    }
    return Status::Ok();
  }
  if (key == "api.tokens") {
    const auto* arr = node.as_array();
    if (!arr) return KeyError(key, "expected an array of tables, got " + std::string(NodeTypeName(node)));
    for (size_t i = 0; i < arr->size(); ++i) {
      ApiToken token;
      TV_RETURN_IF_ERROR(LoadToken((*arr)[i], i, &token));
      out->tokens.push_back(std::move(token));
    }
    return Status::Ok();
  }
  if (const Spec* spec = FindSpec(key)) {
    TV_ASSIGN_OR_RETURN(auto v, FromNode(key, spec->kind, node));
    out->values[key] = std::move(v);
    return Status::Ok();
  }
  if (const auto* t = node.as_table(); t && IsSection(key)) {
    return CollectTable(*t, key + ".", out);
  }
  return KeyError(key, "unknown key");
}

Status CollectTable(const toml::table& table, const std::string& prefix, Collected* out) {
  for (const auto& [k, v] : table) {
    TV_RETURN_IF_ERROR(CollectEntry(prefix + std::string(k.str()), v, out));
  }
  return Status::Ok();
}

Status ApplyEnvironment(const Environment& env, Collected* out) {
  for (const auto& [name, text] : env) {
    if (name.rfind("TIMEVAULT_", 0) != 0) continue;
    // The command line's own variables (src/cli.cc, src/api_client.cc), not
    // settings: with them set, every command refused its config.
    static const std::set<std::string> kCommandLine = {"TIMEVAULT_CONFIG", "TIMEVAULT_TOKEN", "TIMEVAULT_TZ",
                                                       "TIMEVAULT_LOG_FORMAT", "TIMEVAULT_METRICS_LISTEN"};
    if (kCommandLine.count(name) != 0) continue;
    const Spec* found = nullptr;
    for (const auto& spec : Specs()) {
      if (EnvName(spec.key) == name) found = &spec;
    }
    if (!found) {
      return InvalidArgument(name +
                             ": unknown setting (environment overrides are TIMEVAULT_<SECTION>_<KEY>, "
                             "e.g. TIMEVAULT_KAFKA_LINGER_MS for kafka.linger_ms)");
    }
    TV_ASSIGN_OR_RETURN(auto v, FromEnv(found->key, found->kind, name, text));
    out->values[std::string(found->key)] = std::move(v);
  }
  return Status::Ok();
}

Result<Config> Build(Collected collected) {
  Config config;
  for (const auto& spec : Specs()) {
    auto it = collected.values.find(std::string(spec.key));
    if (it == collected.values.end()) {
      if (spec.required) {
        return KeyError(spec.key, "missing required value (set it in the file or in " + EnvName(spec.key) + ")");
      }
      continue;
    }
    TV_RETURN_IF_ERROR(spec.apply(config, it->second));
  }
  TV_RETURN_IF_ERROR(CheckDeliveryProperties(collected.kafka_properties));
  config.kafka.properties = std::move(collected.kafka_properties);
  config.api.tokens = std::move(collected.tokens);
  // Two entries with one name would make the audit trail ambiguous; two with
  // one hash would make the first one win silently.
  for (size_t i = 0; i < config.api.tokens.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const auto& a = config.api.tokens[j];
      const auto& b = config.api.tokens[i];
      std::string key = "api.tokens[" + std::to_string(i) + "]";
      if (a.name == b.name)
        return KeyError(key + ".name", "'" + b.name + "' is also api.tokens[" + std::to_string(j) + "]'s name");
      if (a.sha256 == b.sha256)
        return KeyError(key + ".sha256", "the same token as api.tokens[" + std::to_string(j) + "]");
    }
  }
  if (config.replay.backup_dir.empty()) config.replay.backup_dir = config.store.path + "-backups";
  if (config.replay.snapshot_dir.empty()) config.replay.snapshot_dir = config.store.path + "-snapshots";
  if (config.api.state_dir.empty()) config.api.state_dir = config.store.path + "-api";
  if (!config.api.tls_client_ca.empty() && config.api.tls_cert.empty()) {
    return KeyError("api.tls_client_ca", "client certificates need TLS: set api.tls_cert and api.tls_key too");
  }
  if (config.api.tls_cert.empty() != config.api.tls_key.empty()) {
    return KeyError(config.api.tls_cert.empty() ? "api.tls_cert" : "api.tls_key",
                    "api.tls_cert and api.tls_key must be set together");
  }
  return config;
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Result<Config> LoadFromString(const std::string& toml_text, const std::string& origin, const Environment& env) {
  toml::table table;
  try {
    table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return InvalidArgument(origin + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                           ": not valid TOML: " + std::string(e.description()));
  }
  Collected collected;
  TV_RETURN_IF_ERROR(CollectTable(table, "", &collected));
  TV_RETURN_IF_ERROR(ApplyEnvironment(env, &collected));
  return Build(std::move(collected));
}

Result<Config> Load(const std::string& path, const Environment& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("config file " + path + ": cannot be read: " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  return LoadFromString(buf.str(), path, env);
}

std::vector<std::string> KnownKeys() {
  std::vector<std::string> keys;
  for (const auto& s : Specs()) keys.emplace_back(s.key);
  return keys;
}

std::string_view SnapshotModeName(SnapshotMode mode) {
  switch (mode) {
    case SnapshotMode::kInitial: return "initial";
    case SnapshotMode::kNoData: return "no_data";
    case SnapshotMode::kInitialOnly: return "initial_only";
    case SnapshotMode::kWhenNeeded: return "when_needed";
  }
  return "?";
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

}  // namespace timevault::config
