// `timevault capture` and `timevault store`: the two long-running services.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "cli_common.h"
#include "metrics_http.h"
#include "timevault/capture/capture.h"
#include "timevault/core/time.h"
#include "timevault/replay/archive_keys.h"
#include "timevault/store/ingest.h"

namespace timevault::cli {
namespace {

int RunCapture(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  InstallStopHandlers();
  capture::CaptureMetrics metrics;
  pg::ReusedConn slot_conn(cfg->postgres.conninfo, "timevault-metrics");  // one connection for every scrape
  std::unique_ptr<MetricsEndpoint> endpoint;
  if (!g.metrics_listen.empty()) {
    auto started = MetricsEndpoint::Start(g.metrics_listen, [&cfg, &metrics, &slot_conn] {
      return BuildInfoText("capture") + CaptureMetricsText(*cfg, metrics, slot_conn);
    });
    if (!started.ok()) {
      spdlog::critical("capture: {}", started.status().ToString());
      return kExitFailure;
    }
    endpoint = std::move(started).value();
  }
  Status st = capture::Run(*cfg, &metrics, &g_stop);
  if (!st.ok()) {
    spdlog::critical("capture: {}", st.ToString());
    return kExitFailure;
  }
  spdlog::info("capture: stopped cleanly (confirmed {} events)", metrics.acked_events.load());
  return kExitOk;
}

// Folds history older than the retention window, hourly, until stopped.
void RetentionLoop(store::Store* st, const std::atomic<bool>* stop) {
  using namespace std::chrono_literals;
  auto next = std::chrono::steady_clock::now() + 1min;
  while (!stop->load()) {
    std::this_thread::sleep_for(200ms);
    if (std::chrono::steady_clock::now() < next) continue;
    next = std::chrono::steady_clock::now() + 1h;
    if (Status s = st->RunRetention(SystemClock().Now()); !s.ok()) spdlog::error("store: retention: {}", s.ToString());
  }
}

int RunStore(const GlobalOptions& g) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto opened = OpenStore(*cfg, false);
  if (!opened.ok()) {
    spdlog::critical("store: cannot open {}: {}", cfg->store.path, opened.status().ToString());
    return kExitFailure;
  }
  InstallStopHandlers();
  store::IngestMetrics metrics;
  std::unique_ptr<MetricsEndpoint> endpoint;
  if (!g.metrics_listen.empty()) {
    store::Store* st = opened->get();
    auto started = MetricsEndpoint::Start(
        g.metrics_listen, [&metrics, st] { return BuildInfoText("store") + StoreMetricsText(metrics, st); });
    if (!started.ok()) {
      spdlog::critical("store: {}", started.status().ToString());
      return kExitFailure;
    }
    endpoint = std::move(started).value();
  }
  std::thread retention(RetentionLoop, opened->get(), &g_stop);
  Status st = store::RunIngest(*cfg, opened->get(), &metrics, &g_stop);
  g_stop.store(true);
  retention.join();
  if (!st.ok()) {
    spdlog::critical("store: {}", st.ToString());
    return kExitFailure;
  }
  spdlog::info("store: stopped cleanly ({} messages consumed, {} dead letters)", metrics.consumed.load(),
               metrics.dead_letters.load());
  return kExitOk;
}

int RunRekey(const GlobalOptions& g, const std::string& new_key_file) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto audit = BeginAudit(*cfg, "store rekey", "", {{"new_key_file", new_key_file}});
  if (!audit) return kExitFailure;
  // The archives first: that step is idempotent, so after a failure of the
  // store's (which checks the old key) running the rekey again finishes both.
  auto archives = replay::RewrapArchives(*cfg, new_key_file);
  Status st = archives.ok() ? store::Store::RewrapMasterKey(StoreOptions(*cfg, false), new_key_file)
                            : archives.status().WithContext("the archives' keys");
  audit->Finish(st);
  if (!st.ok()) {
    std::fprintf(stderr, "timevault store rekey: %s\n", st.ToString().c_str());
    return kExitFailure;
  }
  std::printf(
      "the data keys of %s are wrapped under %s now, and so are the archive keys (%zu of backups in %s, %zu of "
      "snapshots in %s; %zu older backups and %zu older snapshots with their own key): set store.key_file to it "
      "(the old key no longer opens the store or the archives)\n",
      cfg->store.path.c_str(), new_key_file.c_str(), archives->backup_keys, cfg->replay.backup_dir.c_str(),
      archives->snapshot_keys, cfg->replay.snapshot_dir.c_str(), archives->legacy_backups, archives->legacy_snapshots);
  return kExitOk;
}

// A `store` subcommand: `run` gets the store (opened for writing, which needs
// the store stopped, or read-only, which runs beside it) and the config; its
// error, or the open's, is printed after `name`.
int WithStore(const GlobalOptions& g, const char* name, bool read_only,
              const std::function<Status(store::Store&, const config::Config&)>& run) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto opened = OpenStore(*cfg, read_only);
  Status st = opened.ok() ? run(**opened, *cfg) : opened.status();
  if (!st.ok()) {
    std::fprintf(stderr, "timevault store %s: %s\n", name, st.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int RunRotateKey(const GlobalOptions& g, const std::string& tenant) {
  return WithStore(g, "rotate-key", false, [&](store::Store& s, const config::Config& cfg) -> Status {
    auto audit = BeginAudit(cfg, "store rotate-key", tenant, {});
    if (!audit) return Internal("the audit trail cannot be written, no key was rotated");
    auto rotated = s.RotateDataKey(TenantId(tenant));
    audit->Finish(rotated.ok() ? Status::Ok() : rotated.status());
    TV_ASSIGN_OR_RETURN(const uint32_t id, std::move(rotated));
    std::printf("tenant %s: new data key %u; what was written before stays under its old keys\n", tenant.c_str(), id);
    return Status::Ok();
  });
}

void PrintList(const char* what, const std::vector<std::string>& ids) {
  std::printf("  %s:", what);
  if (ids.empty()) std::printf(" none");
  for (const auto& id : ids) std::printf(" %s", id.c_str());
  std::printf("\n");
}

void PrintArchiveShred(const std::string& tenant, const config::Config& cfg, const replay::ArchiveShredReport& r) {
  std::printf(
      "tenant %s's archive keys destroyed: %zu backup key(s) in %s, %zu snapshot key(s) in %s; its backups and "
      "snapshots, and any copy of them, can no longer be decrypted\n",
      tenant.c_str(), r.backup_keys, cfg.replay.backup_dir.c_str(), r.snapshot_keys, cfg.replay.snapshot_dir.c_str());
  PrintList("backups deleted", r.backups);
  PrintList("snapshots deleted", r.snapshots);
  if (!r.samples.empty()) PrintList("PITR preview samples deleted", r.samples);
  if (!r.shared_backups.empty()) {
    PrintList("all-tenant backups NOT changed (they may hold the tenant's rows; delete them to shred those)",
              r.shared_backups);
  }
}

int RunShred(const GlobalOptions& g, const std::string& tenant, bool confirmed) {
  if (!confirmed) {
    std::fprintf(stderr,
                 "timevault store shred: deleting tenant %s's data key makes its history unreadable for good "
                 "(copies of the store made before keep it); run again with --confirm\n",
                 tenant.c_str());
    return kExitUsage;
  }
  return WithStore(g, "shred", false, [&](store::Store& s, const config::Config& cfg) -> Status {
    auto audit = BeginAudit(cfg, "store shred", tenant, {});
    if (!audit) return Internal("the audit trail cannot be written, nothing was shredded");
    Status shredded = s.ShredTenant(TenantId(tenant));
    // A store without the tenant (shredded before) may still have archives of it.
    auto archives = shredded.ok() || shredded.code() == StatusCode::kNotFound
                        ? replay::ShredArchives(cfg, tenant)
                        : Result<replay::ArchiveShredReport>(shredded);
    const bool archives_touched =
        archives.ok() &&
        (archives->backup_keys + archives->snapshot_keys + archives->backups.size() + archives->snapshots.size() > 0);
    Status st = !archives.ok() ? archives.status().WithContext("the tenant's backups and snapshots")
                : shredded.ok() || archives_touched ? Status::Ok()
                                                    : shredded;
    audit->Finish(st);
    TV_RETURN_IF_ERROR(st);
    if (shredded.ok()) {
      std::printf("tenant %s shredded: its data key, rows and history are deleted from %s\n", tenant.c_str(),
                  cfg.store.path.c_str());
    } else {
      std::printf("tenant %s had no data key in %s (shredded before)\n", tenant.c_str(), cfg.store.path.c_str());
    }
    PrintArchiveShred(tenant, cfg, *archives);
    return Status::Ok();
  });
}

// Lists the dead letters as JSON lines, oldest first per partition. Opens
// the store read-only, so it runs beside `timevault store`.
int RunDeadLetters(const GlobalOptions& g, size_t limit) {
  return WithStore(g, "dead-letters", true, [&](store::Store& s, const config::Config&) -> Status {
    size_t n = 0;
    TV_RETURN_IF_ERROR(s.DeadLetters([&](const store::KafkaPosition& pos, const std::string& reason) {
      std::printf("%s\n", store::Store::DeadLetterJson(pos, reason).c_str());
      return ++n < limit;
    }));
    std::fprintf(stderr, "%zu dead letter%s listed\n", n, n == 1 ? "" : "s");
    return Status::Ok();
  });
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1e6);
  return buf;
}

// Where the store's bytes are, per column family (docs/store.md, "Where
// the bytes go"). Opens the store read-only, so it runs beside the store.
int RunStoreStats(const GlobalOptions& g, bool scan) {
  return WithStore(g, "stats", true, [&](store::Store& s, const config::Config&) -> Status {
    const store::StoreStats st = s.Stats(scan);
    std::printf("%-11s %12s %12s %12s %10s", "family", scan ? "keys" : "keys(est)", "live_sst_MB", "total_sst_MB",
                "memtab_MB");
    if (scan) std::printf(" %12s %12s %9s %9s", "key_MB", "value_MB", "key_B/k", "value_B/k");
    std::printf("\n");
    for (const auto& f : st.families) {
      std::printf("%-11s %12llu %12s %12s %10s", f.name.c_str(), static_cast<unsigned long long>(f.keys),
                  Mb(f.live_sst_bytes).c_str(), Mb(f.total_sst_bytes).c_str(), Mb(f.memtable_bytes).c_str());
      if (scan) {
        const double n = f.keys == 0 ? 1.0 : static_cast<double>(f.keys);
        std::printf(" %12s %12s %9.1f %9.1f", Mb(f.key_bytes).c_str(), Mb(f.value_bytes).c_str(),
                    static_cast<double>(f.key_bytes) / n, static_cast<double>(f.value_bytes) / n);
      }
      std::printf("\n");
    }
    const double per_event =
        st.events_stored == 0 ? 0.0 : static_cast<double>(st.bytes_on_disk) / static_cast<double>(st.events_stored);
    std::printf("format=%u%s store_bytes=%llu sst_bytes=%llu wal_bytes=%llu events=%llu store_bytes_per_event=%.1f\n",
                st.format_version, st.rows_packed ? "" : " (older rows not migrated)",
                static_cast<unsigned long long>(st.bytes_on_disk), static_cast<unsigned long long>(st.sst_bytes),
                static_cast<unsigned long long>(st.wal_bytes), static_cast<unsigned long long>(st.events_stored),
                per_event);
    return Status::Ok();
  });
}

// Brings the store to the current format (with the store stopped).
int RunStoreMigrate(const GlobalOptions& g) {
  return WithStore(g, "migrate", false, [&](store::Store& s, const config::Config& cfg) -> Status {
    TV_ASSIGN_OR_RETURN(const uint64_t n, s.Migrate());
    const store::StoreStats st = s.Stats();
    std::printf(
        "%s: store format %u, %llu values rewritten (row images packed, history entries without their "
        "repeated row image); %llu bytes on disk now\n",
        cfg.store.path.c_str(), st.format_version, static_cast<unsigned long long>(n),
        static_cast<unsigned long long>(st.bytes_on_disk));
    return Status::Ok();
  });
}

}  // namespace

void RegisterServiceCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  app.add_subcommand("capture", "Tail Postgres logical replication and produce Debezium JSON change events to Kafka")
      ->callback([&g, exit_code] { *exit_code = RunCapture(g); });
  auto* store = app.add_subcommand("store", "Consume change events from Kafka into the time-indexed RocksDB store");
  auto* rekey =
      store->add_subcommand("rekey",
                            "Re-wrap the store's data keys under a new master key (with the store stopped); then point "
                            "store.key_file at the new key");
  auto new_key_file = std::make_shared<std::string>();
  rekey->add_option("--new-key-file", *new_key_file, "The new master key: 32 random bytes")->required();
  rekey->callback([&g, exit_code, new_key_file] { *exit_code = RunRekey(g, *new_key_file); });
  auto* rotate = store->add_subcommand(
      "rotate-key", "Give a tenant a new data key for what is written from now on (with the store stopped)");
  auto tenant = std::make_shared<std::string>();
  rotate->add_option("--tenant", *tenant, "The tenant id")->required();
  rotate->callback([&g, exit_code, tenant] { *exit_code = RunRotateKey(g, *tenant); });
  auto* shred = store->add_subcommand(
      "shred", "Crypto-shred a tenant: delete its data key, rows and history (with the store stopped)");
  auto shred_tenant = std::make_shared<std::string>();
  auto confirm = std::make_shared<bool>(false);
  shred->add_option("--tenant", *shred_tenant, "The tenant id")->required();
  shred->add_flag("--confirm", *confirm, "Confirm: the tenant's history becomes unreadable for good");
  shred->callback([&g, exit_code, shred_tenant, confirm] { *exit_code = RunShred(g, *shred_tenant, *confirm); });
  auto* dead = store->add_subcommand(
      "dead-letters", "List the messages stored as dead letters (topic, partition, offset, reason) as JSON lines");
  auto limit = std::make_shared<size_t>(std::numeric_limits<size_t>::max());
  dead->add_option("--limit", *limit, "At most this many")->check(CLI::PositiveNumber);
  dead->callback([&g, exit_code, limit] { *exit_code = RunDeadLetters(g, *limit); });
  auto* stats = store->add_subcommand(
      "stats", "Where the store's bytes are: per column family keys, SST and memtable bytes; WAL; bytes per event");
  auto scan = std::make_shared<bool>(false);
  stats->add_flag("--scan", *scan, "Read every key to count keys and key/value bytes exactly (slow on big stores)");
  stats->callback([&g, exit_code, scan] { *exit_code = RunStoreStats(g, *scan); });
  store
      ->add_subcommand("migrate",
                       "Bring a store written by an older timevault to the current format, packing its older rows "
                       "(with the store stopped)")
      ->callback([&g, exit_code] { *exit_code = RunStoreMigrate(g); });
  store->callback([&g, exit_code, store] {
    if (store->get_subcommands().empty()) *exit_code = RunStore(g);
  });
}

}  // namespace timevault::cli
