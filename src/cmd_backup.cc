// `timevault backup full|incremental|list|verify|expire` (docs/replay.md
// "Backups"). Backups read the store through a read-only Store, so they run
// while `timevault store` runs.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <numeric>

#include "cli_common.h"
#include "timevault/replay/backup.h"

namespace timevault::cli {
namespace {

struct BackupOptions {
  std::string tenant;
  std::vector<std::string> tables;
  std::string at;   // a time
  std::string lsn;  // or a commit LSN
  std::string name;
  std::string description;
  std::string base;
  std::string id;
  uint64_t keep = 0;
  int64_t max_age_days = 0;
  bool confirm = false;
};

int Fail(const char* what, const Status& st) {
  std::fprintf(stderr, "timevault backup %s: %s\n", what, st.ToString().c_str());
  return kExitFailure;
}

Result<std::unique_ptr<replay::BackupCatalog>> OpenCatalog(const config::Config& cfg) {
  return replay::BackupCatalog::Open(cfg.replay.backup_dir, cfg.store.key_file,
                                     static_cast<size_t>(cfg.replay.backup_workers));
}

// --at TIME or --lsn LSN to a point (none: the recoverable point).
Result<std::optional<store::Point>> ParsePoint(store::StateReader& st, const BackupOptions& o) {
  if (!o.at.empty() && !o.lsn.empty()) return InvalidArgument("give --at or --lsn, not both");
  if (!o.at.empty()) {
    auto t = ParseCliTime(o.at);
    if (!t) return InvalidArgument("--at '" + o.at + "': expected " + CliTimeHint());
    TV_ASSIGN_OR_RETURN(store::Point p, st.ResolveTime(*t));
    return std::optional<store::Point>(p);
  }
  if (!o.lsn.empty()) {
    auto l = Lsn::Parse(o.lsn);
    if (!l) return InvalidArgument("--lsn '" + o.lsn + "': expected an LSN such as 0/16B3748");
    return std::optional<store::Point>(store::Point{*l, CommitTime()});
  }
  return std::optional<store::Point>();
}

std::string PointText(const store::Point& p) {
  return p.lsn.ToString() + (p.time.micros() == 0 ? "" : " (" + p.time.ToIso() + ")");
}

uint64_t Total(const std::map<std::string, uint64_t>& counts) {
  return std::accumulate(counts.begin(), counts.end(), uint64_t{0},
                         [](uint64_t sum, const auto& c) { return sum + c.second; });
}

void PrintCreated(const replay::BackupInfo& b) {
  std::printf("%s\n", b.id.c_str());
  std::printf("%s backup of tenant '%s' at %s: %llu %s in %zu table(s), %llu bytes\n",
              std::string(replay::BackupTypeName(b.type)).c_str(), b.tenant.c_str(), PointText(b.point).c_str(),
              static_cast<unsigned long long>(Total(b.rows)), b.type == replay::BackupType::kFull ? "rows" : "events",
              b.rows.size(), static_cast<unsigned long long>(b.bytes));
}

// Runs `body` with the config, the catalog and a read-only store.
template <typename Body>
int WithStore(const GlobalOptions& g, const char* what, Body body) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto catalog = OpenCatalog(*cfg);
  if (!catalog.ok()) return Fail(what, catalog.status());
  auto st = OpenStore(*cfg, true);
  if (!st.ok()) return Fail(what, st.status().WithContext("opening the store " + cfg->store.path));
  if (Status r = (*st)->Refresh(); !r.ok()) return Fail(what, r);
  return body(**catalog, **st);
}

template <typename Body>
int WithCatalog(const GlobalOptions& g, const char* what, Body body) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto catalog = OpenCatalog(*cfg);
  if (!catalog.ok()) return Fail(what, catalog.status());
  return body(**catalog);
}

int RunFull(const GlobalOptions& g, const BackupOptions& o) {
  return WithStore(g, "full", [&](replay::BackupCatalog& c, store::Store& st) {
    auto at = ParsePoint(st, o);
    if (!at.ok()) return Fail("full", at.status());
    replay::BackupRequest r{o.tenant, o.tables, *at, o.name, o.description};
    auto b = c.CreateFull(st, r);
    if (!b.ok()) return Fail("full", b.status());
    PrintCreated(*b);
    return kExitOk;
  });
}

int RunIncremental(const GlobalOptions& g, const BackupOptions& o) {
  return WithStore(g, "incremental", [&](replay::BackupCatalog& c, store::Store& st) {
    auto at = ParsePoint(st, o);
    if (!at.ok()) return Fail("incremental", at.status());
    replay::BackupRequest r{"", {}, *at, o.name, o.description};
    auto b = c.CreateIncremental(st, o.base, r);
    if (!b.ok()) return Fail("incremental", b.status());
    PrintCreated(*b);
    return kExitOk;
  });
}

int RunList(const GlobalOptions& g, const BackupOptions& o) {
  return WithCatalog(g, "list", [&](replay::BackupCatalog& c) {
    auto list = c.List(o.tenant.empty() ? std::nullopt : std::optional<std::string>(o.tenant));
    if (!list.ok()) return Fail("list", list.status());
    std::printf("%-28s %-11s %-12s %-14s %-27s %-28s %10s %12s  %s\n", "ID", "TYPE", "TENANT", "LSN", "TIME", "BASE",
                "ROWS", "BYTES", "NAME");
    for (const auto& b : *list) {
      std::printf("%-28s %-11s %-12s %-14s %-27s %-28s %10llu %12llu  %s\n", b.id.c_str(),
                  std::string(replay::BackupTypeName(b.type)).c_str(), b.tenant.c_str(), b.point.lsn.ToString().c_str(),
                  b.point.time.micros() == 0 ? "-" : b.point.time.ToIso().c_str(), b.base_id.value_or("-").c_str(),
                  static_cast<unsigned long long>(Total(b.rows)), static_cast<unsigned long long>(b.bytes),
                  b.name.c_str());
    }
    return kExitOk;
  });
}

int RunVerify(const GlobalOptions& g, const BackupOptions& o) {
  return WithCatalog(g, "verify", [&](replay::BackupCatalog& c) {
    if (Status st = c.Verify(o.id); !st.ok()) return Fail("verify", st);
    std::printf("backup %s: ok (every hash and block of it and of its chain checked)\n", o.id.c_str());
    return kExitOk;
  });
}

int RunExpire(const GlobalOptions& g, const BackupOptions& o) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  return WithCatalog(g, "expire", [&](replay::BackupCatalog& c) {
    if (o.keep == 0 && o.max_age_days == 0) {
      std::fprintf(stderr, "timevault backup expire: give --keep N and/or --max-age-days D\n");
      return kExitUsage;
    }
    const auto tenant = o.tenant.empty() ? std::nullopt : std::optional<std::string>(o.tenant);
    const CommitTime now = SystemClock().Now();
    if (!o.confirm) {
      auto plan = c.PlanExpire(o.keep, o.max_age_days, now, tenant);
      if (!plan.ok()) return Fail("expire", plan.status());
      for (const auto& id : *plan) std::printf("would remove %s\n", id.c_str());
      std::printf("dry run: %zu backup(s) would be removed; pass --confirm to remove them\n", plan->size());
      return kExitOk;
    }
    auto audit = BeginAudit(*cfg, "backup expire", o.tenant,
                            {{"keep", std::to_string(o.keep)}, {"max_age_days", std::to_string(o.max_age_days)}});
    if (!audit) return kExitFailure;
    auto removed = c.Expire(o.keep, o.max_age_days, now, tenant);
    audit->Finish(removed.ok() ? Status::Ok() : removed.status());
    if (!removed.ok()) return Fail("expire", removed.status());
    for (const auto& id : *removed) std::printf("removed %s\n", id.c_str());
    std::printf("%zu backup(s) removed\n", removed->size());
    return kExitOk;
  });
}

void AddPointOptions(CLI::App* sub, BackupOptions* o) {
  auto* at = sub->add_option("--at", o->at,
                             "The newest commit at or before this time (ISO 8601); default: the "
                             "recoverable point");
  sub->add_option("--lsn", o->lsn, "A commit LSN (X/Y) instead of a time")->excludes(at);
  sub->add_option("--name", o->name, "A short name");
  sub->add_option("--description", o->description, "A description");
}

}  // namespace

void RegisterBackupCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<BackupOptions>();
  auto* backup = app.add_subcommand("backup", "Full and incremental backups: full|incremental|list|verify|expire");
  backup->require_subcommand(1);

  auto* full = backup->add_subcommand("full", "Back up a tenant's state at one commit");
  full->add_option("--tenant", o->tenant, "Tenant id, or '*' for every tenant")->required();
  full->add_option("--table", o->tables, "Only this table (schema.table); repeatable");
  AddPointOptions(full, o.get());
  full->callback([&g, o, exit_code] { *exit_code = RunFull(g, *o); });

  auto* inc = backup->add_subcommand("incremental", "Back up the changes since a base backup");
  inc->add_option("--base", o->base, "The backup it continues (full or incremental)")->required();
  AddPointOptions(inc, o.get());
  inc->callback([&g, o, exit_code] { *exit_code = RunIncremental(g, *o); });

  auto* list = backup->add_subcommand("list", "List backups, newest first");
  list->add_option("--tenant", o->tenant, "Only this tenant's backups (and '*' ones)");
  list->callback([&g, o, exit_code] { *exit_code = RunList(g, *o); });

  auto* verify = backup->add_subcommand("verify", "Check every hash and block of a backup and of its chain");
  verify->add_option("id", o->id, "Backup id")->required();
  verify->callback([&g, o, exit_code] { *exit_code = RunVerify(g, *o); });

  auto* expire = backup->add_subcommand("expire", "Remove old backups, never one a kept backup's chain needs");
  expire->add_option("--keep", o->keep, "Keep the newest N backups per tenant");
  expire->add_option("--max-age-days", o->max_age_days, "Remove backups older than D days")
      ->check(CLI::NonNegativeNumber);
  expire->add_option("--tenant", o->tenant, "Only this tenant's backups");
  expire->add_flag("--confirm", o->confirm, "Remove them (without it: print what would be removed)");
  expire->callback([&g, o, exit_code] { *exit_code = RunExpire(g, *o); });
}

}  // namespace timevault::cli
