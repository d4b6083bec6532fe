// The timevault configuration: one TOML file shared by every command, with
// TIMEVAULT_<SECTION>_<KEY> environment variables overriding single keys
// (TIMEVAULT_KAFKA_LINGER_MS overrides kafka.linger_ms). Every key is
// documented in config/timevault.example.toml.
//
// Loading is strict: an unknown key, a value of the wrong type, a value out of
// range or a missing required key is an InvalidArgument whose message starts
// with the key ("kafka.linger_ms: expected an integer, got a string").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "timevault/core/status.h"

namespace timevault::config {

enum class SnapshotMode { kInitial, kNoData, kInitialOnly, kWhenNeeded };
// What capture does when the replication slot it streamed from is lost or
// replaced (docs/capture.md, "Slot loss"): take a new full snapshot (the
// store records the gap) or stop with an error.
enum class SlotLossAction { kResnapshot, kStop };

struct PostgresConfig {
  std::string conninfo;            // libpq connection string of the captured database
  std::string slot = "timevault";  // logical replication slot (pgoutput)
  std::string publication = "timevault";
  std::vector<std::string> tables;  // "schema.table"; empty: FOR ALL TABLES
  SnapshotMode snapshot_mode = SnapshotMode::kInitial;
  int64_t snapshot_chunk_rows = 10000;
  int64_t status_interval_ms = 10000;
  // capture's read-ahead: stream messages read from the server and not yet
  // encoded (docs/capture.md, "Pipeline"); reading pauses when it is full.
  int64_t read_ahead_bytes = 4 << 20;
  SlotLossAction on_slot_loss = SlotLossAction::kResnapshot;
};

struct KafkaConfig {
  std::string bootstrap;
  std::string topic_prefix = "timevault";
  std::string compression = "lz4";
  int64_t linger_ms = 5;
  bool schemas_enable = false;
  int64_t heartbeat_interval_ms = 5000;
  // capture's idle probe (docs/capture.md, "Idle databases"): a
  // non-transactional `timevault.idle` logical message every heartbeat
  // interval, so the recoverable time follows the clock while nothing commits.
  bool idle_probe = true;
  int64_t topic_partitions = 6;
  std::string consumer_group = "timevault-store";
  // retention.ms of the topics capture creates: -1 keeps every message
  // until the store has it (a gap otherwise; docs/store.md, "Gaps").
  int64_t topic_retention_ms = -1;
  std::map<std::string, std::string> properties;  // passed to librdkafka as is
};

struct StoreConfig {
  std::string path;
  std::string key_file;
  int64_t retention_days = 30;
  // RocksDB's memory in the writer (memtables half, block cache a quarter;
  // the WAL is kept under the memtables' half): docs/store.md, "Memory and
  // disk bounds".
  int64_t memory_mb = 512;
  // Free space kept on the store's volume: a batch that would leave less is
  // not written and the store stops (docs/store.md, "A full volume"); 0 off.
  int64_t min_free_mb = 256;
};

// Replay: where backups and snapshots live and how an apply waits for locks.
// Empty directories default to siblings of store.path ("<store.path>-backups",
// "<store.path>-snapshots").
struct ReplayConfig {
  std::string backup_dir;
  std::string snapshot_dir;
  int64_t snapshot_retention_days = 30;
  int64_t lock_timeout_ms = 10000;  // how long an apply waits for the tenant's row locks
  int64_t backup_workers = 2;       // threads of one backup: tenant readers, and as many block compressors
};

// Signed change events (docs/capture.md, "Signed events"): with a key file,
// capture signs every message and the store checks every signature.
struct SigningConfig {
  std::string key_file;  // 32 raw random bytes, 0600, shared by capture and store only; empty: off
  // With a key: the store dead-letters messages without a signature too (off
  // only while the topics still hold messages from before signing).
  bool require = true;
};

enum class Role { kViewer, kOperator, kAdmin };

struct ApiToken {
  std::string name;
  std::string sha256;  // hex SHA-256 of the bearer token
  Role role = Role::kViewer;
  std::vector<std::string> tenants;  // {"*"}: every tenant
};

struct ApiConfig {
  std::string listen = "127.0.0.1:8080";
  std::string tls_cert;
  std::string tls_key;
  // PEM CA certificates; set: every client must present a certificate they signed.
  std::string tls_client_ca;
  std::vector<ApiToken> tokens;
  // The zone a time typed without one is read in ("UTC", "+02:00"); empty:
  // such a time is refused (CLI: --tz overrides it).
  std::string time_zone;
  // Jobs, DR plans and the audit trail; empty: "<store.path>-api".
  std::string state_dir;
  // A running API ("http://host:port", "https://..."): the command line's
  // replay commands (pitr, rollback, restore) go through it instead of
  // opening the store; empty: they open the store themselves.
  std::string url;
};

struct Config {
  std::string log_level = "info";
  std::string tenant_column = "tenant_id";
  PostgresConfig postgres;
  KafkaConfig kafka;
  StoreConfig store;
  SigningConfig signing;
  ReplayConfig replay;
  ApiConfig api;
};

// Environment as name -> value (tests pass their own; main passes environ).
using Environment = std::map<std::string, std::string>;
Environment ProcessEnvironment();

// Loads `path` (TOML), applies overrides from `env`, validates.
Result<Config> Load(const std::string& path, const Environment& env);

// Same, from TOML text (`origin` names it in errors).
Result<Config> LoadFromString(const std::string& toml_text, const std::string& origin, const Environment& env);

// Every scalar key ("kafka.linger_ms"), for documentation checks.
std::vector<std::string> KnownKeys();

std::string_view SnapshotModeName(SnapshotMode mode);
std::string_view RoleName(Role role);

}  // namespace timevault::config
