// BackupCatalog (backup.h; docs/replay.md "Backups"): one archive directory
// per backup under the catalog directory, named by the backup's id.
#include "timevault/replay/backup.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>

#include "backup_format.h"
#include "ids.h"
#include "timevault/replay/archive.h"

namespace timevault::replay {

std::string_view BackupTypeName(BackupType type) { return type == BackupType::kFull ? "full" : "incremental"; }

namespace {

namespace fs = std::filesystem;
using backup_internal::ChainLink;
using backup_internal::Manifest;

constexpr size_t kMaxChain = 10000;  // a longer chain is a loop in damaged manifests

std::string NewBackupId(CommitTime now) { return NewTimeId("b", now); }

bool LooksLikeBackupId(const std::string& name) {
  return name.size() > 2 && name.rfind("b-", 0) == 0 && name.find(".tmp-") == std::string::npos &&
         name.find(".deleting-") == std::string::npos;
}

bool IsValidId(const std::string& id) {
  return LooksLikeBackupId(id) && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

// Data files are named by a table's position, since table names may hold
// any character: t0000, t0001, ...
std::string TableFileName(size_t index) {
  char name[16];
  std::snprintf(name, sizeof name, "t%04zu", index);
  return name;
}

bool NewestFirst(const BackupInfo& a, const BackupInfo& b) {
  if (a.created_at != b.created_at) return a.created_at > b.created_at;
  return a.id > b.id;
}

// Assigns each table its data file as rows arrive, and counts them.
struct TableFiles {
  std::vector<std::pair<std::string, std::string>> list;
  std::map<std::string, std::string> by_table;
  std::map<std::string, uint64_t> counts;
  std::optional<backup_internal::TenantBlocks> tenant_blocks;  // all-tenant backups: set, filled by Added

  // After `writer` took a record of `tenant` into `file`: widens the
  // tenant's block range of the file.
  void Added(const ArchiveWriter& writer, const std::string& file, const std::string& tenant) {
    if (!tenant_blocks) return;
    const uint64_t block = writer.LastBlock(file);
    auto [it, fresh] = (*tenant_blocks)[file].try_emplace(tenant, block, block);
    if (!fresh) it->second.second = block;
  }

  const std::string& FileFor(const std::string& table) {
    auto it = by_table.find(table);
    if (it != by_table.end()) return it->second;
    std::string file = TableFileName(list.size());
    list.emplace_back(table, file);
    return by_table.emplace(table, file).first->second;
  }
  // In the store's row order of tables, for the manifest.
  std::vector<std::pair<std::string, std::string>> Sorted() const {
    auto sorted = list;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return backup_internal::RowOrderLess(a.first, b.first); });
    return sorted;
  }
};

class Catalog final : public BackupCatalog {
 public:
  Catalog(std::string dir, crypto::MasterKey master, size_t workers)
      : dir_(dir), workers_(std::max<size_t>(1, workers)), ring_(std::move(dir), std::move(master)) {}

  Result<BackupInfo> CreateFull(store::StateReader& store, const BackupRequest& request) override;
  Result<BackupInfo> CreateIncremental(store::StateReader& store, const std::string& base_id,
                                       const BackupRequest& request) override;
  Result<std::vector<BackupInfo>> List(const std::optional<std::string>& tenant) override;
  Result<BackupInfo> Get(const std::string& id) override;
  Status Verify(const std::string& id) override;
  Status Delete(const std::string& id) override;
  Result<std::vector<std::string>> PlanExpire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                              const std::optional<std::string>& tenant) override;
  Result<std::vector<std::string>> Expire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                          const std::optional<std::string>& tenant) override;
  Status LoadState(const std::string& id, const TenantId& tenant, const std::vector<std::string>& tables,
                   const std::function<bool(const store::Row&)>& emit) override;

 private:
  std::string PathOf(const std::string& id) const { return dir_ + "/" + id; }
  Result<ChainLink> OpenBackup(const std::string& id);
  Result<std::vector<ChainLink>> OpenChain(const std::string& id);
  Status CheckChain(const std::string& id, const std::vector<ChainLink>& chain, bool deep);
  Result<std::vector<BackupInfo>> ListLocked();
  Result<store::Point> TargetPoint(store::StateReader& store, const BackupRequest& request);
  Result<BackupInfo> Seal(std::unique_ptr<ArchiveWriter> writer, BackupInfo info, const TableFiles& files);
  Status DeleteLocked(const std::string& id, const std::vector<BackupInfo>& all);

  Status WriteTenantsInParallel(store::StateReader& store, const std::vector<TenantId>& tenants,
                                const store::Point& point, const BackupRequest& request, ArchiveWriter& writer,
                                TableFiles& files);

  const std::string dir_;
  const size_t workers_;
  ArchiveKeyRing ring_;  // the keys of this directory's archives
  // Creates hold it shared; Delete and Expire exclusively, so a base cannot
  // vanish under an incremental being written.
  std::shared_mutex lifecycle_;
  std::mutex cache_mu_;
  std::map<std::string, BackupInfo> cache_;  // archives never change once written
};

Result<ChainLink> Catalog::OpenBackup(const std::string& id) {
  if (!IsValidId(id)) return InvalidArgument("'" + id + "' is not a backup id (b-<time>-<hex>)");
  auto reader = ArchiveReader::Open(PathOf(id), ring_);
  if (!reader.ok()) {
    if (reader.status().code() == StatusCode::kNotFound) return NotFound("no backup " + id + " in " + dir_);
    return reader.status().WithContext("backup " + id);
  }
  TV_ASSIGN_OR_RETURN(Manifest m, backup_internal::ParseManifest((*reader)->manifest_json(), "backup " + id));
  if (m.info.id != id) return Corruption("backup " + id + ": its manifest names it " + m.info.id);
  uint64_t bytes = (*reader)->manifest_json().size();
  for (const auto& f : (*reader)->files()) bytes += f.bytes;
  m.info.bytes = bytes;
  {
    std::lock_guard lock(cache_mu_);
    cache_[id] = m.info;
  }
  return ChainLink{std::move(m), std::move(reader).value()};
}

// The backup and every base it needs, full first.
Result<std::vector<ChainLink>> Catalog::OpenChain(const std::string& id) {
  std::vector<ChainLink> chain;
  std::string next = id;
  while (true) {
    if (chain.size() >= kMaxChain) return Corruption("backup " + id + ": its chain of bases does not end");
    auto link = OpenBackup(next);
    if (!link.ok()) {
      if (chain.empty()) return link.status();
      return link.status().WithContext("backup " + id + " needs its base " + next);
    }
    const BackupInfo& info = link->manifest.info;
    if (!chain.empty()) {
      const BackupInfo& child = chain.back().manifest.info;
      if (child.base_point->lsn != info.point.lsn) {
        return Corruption("backup " + child.id + ": its base " + info.id + " is at " + info.point.lsn.ToString() +
                          ", but it continues from " + child.base_point->lsn.ToString());
      }
    }
    const bool full = info.type == BackupType::kFull;
    std::string base = info.base_id.value_or("");
    chain.push_back(std::move(link).value());
    if (full) break;
    next = base;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

Result<store::Point> Catalog::TargetPoint(store::StateReader& store, const BackupRequest& request) {
  TV_ASSIGN_OR_RETURN(store::Point recoverable, store.RecoverablePoint());
  if (!request.at) return recoverable;
  if (request.at->lsn > recoverable.lsn) {
    return OutOfRange("point " + request.at->lsn.ToString() + " is past the recoverable point " +
                      recoverable.lsn.ToString() + " (" + recoverable.time.ToIso() + ")");
  }
  store::Point p = *request.at;
  if (p.lsn == recoverable.lsn && p.time.micros() == 0) p.time = recoverable.time;
  return p;
}

Result<BackupInfo> Catalog::Seal(std::unique_ptr<ArchiveWriter> writer, BackupInfo info, const TableFiles& files) {
  info.rows = files.counts;
  auto sorted = files.Sorted();
  TV_ASSIGN_OR_RETURN(auto written, writer->Finish(backup_internal::BuildMeta(info, sorted, files.tenant_blocks)));
  auto link = OpenBackup(info.id);  // what was written, as every reader will see it
  if (!link.ok()) return link.status().WithContext("reading back the new backup");
  spdlog::info("backup {}: {} of tenant '{}' at {} ({} files, {} bytes)", info.id, BackupTypeName(info.type),
               info.tenant, info.point.lsn.ToString(), written.size(), link->manifest.info.bytes);
  return link->manifest.info;
}

// A cancelled backup stops with Aborted; the writer, never finished, removes
// its temporary directory, so nothing of it stays. Asked every
// kCancelCheckEvery rows or events (`written`), and always at 0.
constexpr uint64_t kCancelCheckEvery = 4096;
Status CheckCancelled(const BackupRequest& request, uint64_t written) {
  if (!request.cancelled || written % kCancelCheckEvery != 0 || !request.cancelled()) return Status::Ok();
  return Aborted("cancelled while writing the backup; nothing was kept");
}

Status CheckRequest(const BackupRequest& request) {
  if (request.tenant.empty()) return InvalidArgument("a backup needs a tenant (or \"*\" for every tenant)");
  for (const auto& t : request.tables) {
    if (t.empty()) return InvalidArgument("an empty table name");
  }
  return Status::Ok();
}

Result<BackupInfo> Catalog::CreateFull(store::StateReader& store, const BackupRequest& request) {
  TV_RETURN_IF_ERROR(CheckRequest(request));
  std::shared_lock lifecycle(lifecycle_);
  TV_ASSIGN_OR_RETURN(store::Point point, TargetPoint(store, request));
  std::vector<TenantId> tenants{TenantId(request.tenant)};
  if (request.tenant == "*") {
    TV_ASSIGN_OR_RETURN(tenants, store.Tenants(point.lsn));
  }
  BackupInfo info;
  info.id = NewBackupId(SystemClock().Now());
  info.type = BackupType::kFull;
  info.tenant = request.tenant;
  info.tables = request.tables;
  info.point = point;
  info.name = request.name;
  info.description = request.description;
  TV_ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(PathOf(info.id), info.id, ring_, info.tenant, workers_));
  TableFiles files;
  uint64_t written = 0;
  if (info.tenant == "*") files.tenant_blocks.emplace();
  if (workers_ > 1 && tenants.size() > 1) {
    TV_RETURN_IF_ERROR(WriteTenantsInParallel(store, tenants, point, request, *writer, files));
    TV_RETURN_IF_ERROR(CheckCancelled(request, 0));
    return Seal(std::move(writer), std::move(info), files);
  }
  for (const auto& tenant : tenants) {
    Status inner;
    Status st = store.StateAt(tenant, point.lsn, request.tables, [&](const store::Row& row) {
      const std::string& file = files.FileFor(row.table);
      inner = writer->Add(file, backup_internal::EncodeRow(tenant.str(), row));
      files.Added(*writer, file, tenant.str());
      ++files.counts[row.table];
      if (inner.ok()) inner = CheckCancelled(request, ++written);
      return inner.ok();
    });
    TV_RETURN_IF_ERROR(inner);
    TV_RETURN_IF_ERROR(st.WithContext("reading tenant '" + tenant.str() + "' at " + point.lsn.ToString()));
  }
  TV_RETURN_IF_ERROR(CheckCancelled(request, 0));
  return Seal(std::move(writer), std::move(info), files);
}

// An all-tenant full backup with workers_ readers: each takes the next
// tenant, reads its state and encodes its records into chunks; this thread
// adds them to the archive tenant by tenant, in order, so the archive is
// the one a single reader writes. Memory: the chunks waiting are bounded
// (kQueuedBytes for tenants ahead, kCurrentBytes for the tenant being
// written, whose reader never waits on the others).
Status Catalog::WriteTenantsInParallel(store::StateReader& store, const std::vector<TenantId>& tenants,
                                       const store::Point& point, const BackupRequest& request, ArchiveWriter& writer,
                                       TableFiles& files) {
  const std::vector<std::string>& tables = request.tables;
  uint64_t written = 0;
  constexpr size_t kChunkBytes = size_t{1} << 20;
  constexpr size_t kQueuedBytes = size_t{64} << 20;
  constexpr size_t kCurrentBytes = size_t{16} << 20;
  struct Chunk {
    std::string table;
    std::vector<std::string> records;
    size_t bytes = 0;
  };
  struct Output {
    std::deque<Chunk> chunks;
    size_t bytes = 0;
    bool done = false;
    Status status;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Output> outs(tenants.size());
  size_t claimed = 0, current = 0, queued = 0;
  bool abort = false;

  // Hands a chunk of tenant i to the writer; false when the backup stopped.
  auto push = [&](size_t i, Chunk&& chunk) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return abort || (i == current ? outs[i].bytes < kCurrentBytes : queued < kQueuedBytes); });
    if (abort) return false;
    outs[i].bytes += chunk.bytes;
    queued += chunk.bytes;
    outs[i].chunks.push_back(std::move(chunk));
    cv.notify_all();
    return true;
  };
  auto read_tenants = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard lock(mu);
        if (abort || claimed == tenants.size()) return;
        i = claimed++;
      }
      const std::string tenant = tenants[i].str();
      Chunk chunk;
      bool go_on = true;
      Status st = store.StateAt(tenants[i], point.lsn, tables, [&](const store::Row& row) {
        if (!chunk.records.empty() && (chunk.table != row.table || chunk.bytes >= kChunkBytes)) {
          go_on = push(i, std::move(chunk));
          chunk = Chunk();
          if (!go_on) return false;
        }
        if (chunk.records.empty()) chunk.table = row.table;
        chunk.records.push_back(backup_internal::EncodeRow(tenant, row));
        chunk.bytes += chunk.records.back().size();
        return true;
      });
      if (st.ok() && go_on && !chunk.records.empty()) go_on = push(i, std::move(chunk));
      std::lock_guard lock(mu);
      outs[i].done = true;
      outs[i].status = st.WithContext("reading tenant '" + tenant + "' at " + point.lsn.ToString());
      cv.notify_all();
      if (!go_on) return;
    }
  };
  std::vector<std::thread> readers;
  for (size_t n = 0; n < std::min(workers_, tenants.size()); ++n) readers.emplace_back(read_tenants);

  Status result = Status::Ok();
  for (size_t i = 0; i < tenants.size() && result.ok(); ++i) {
    for (;;) {
      Chunk chunk;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !outs[i].chunks.empty() || outs[i].done; });
        if (outs[i].chunks.empty()) {
          result = outs[i].status;
          current = i + 1;
          cv.notify_all();
          break;
        }
        chunk = std::move(outs[i].chunks.front());
        outs[i].chunks.pop_front();
        outs[i].bytes -= chunk.bytes;
        queued -= chunk.bytes;
        cv.notify_all();
      }
      const std::string& file = files.FileFor(chunk.table);
      for (size_t r = 0; r < chunk.records.size() && result.ok(); ++r) {
        result = writer.Add(file, chunk.records[r]);
        if (result.ok()) result = CheckCancelled(request, ++written);
        // The block range grows with the first and the last record of a chunk.
        if (r == 0 || r + 1 == chunk.records.size()) files.Added(writer, file, tenants[i].str());
      }
      if (!result.ok()) break;
      files.counts[chunk.table] += chunk.records.size();
    }
  }
  {
    std::lock_guard lock(mu);
    abort = true;  // readers still waiting (after an error) stop
    cv.notify_all();
  }
  for (auto& t : readers) t.join();
  return result;
}

Result<BackupInfo> Catalog::CreateIncremental(store::StateReader& store, const std::string& base_id,
                                              const BackupRequest& request) {
  std::shared_lock lifecycle(lifecycle_);
  TV_ASSIGN_OR_RETURN(BackupInfo base, Get(base_id));
  if (!request.tenant.empty() && request.tenant != base.tenant) {
    return InvalidArgument("backup " + base_id + " is of tenant '" + base.tenant + "', not '" + request.tenant + "'");
  }
  TV_ASSIGN_OR_RETURN(store::Point point, TargetPoint(store, request));
  if (point.lsn <= base.point.lsn) {
    return FailedPrecondition("the incremental's point " + point.lsn.ToString() + " is not after its base " + base_id +
                              "'s point " + base.point.lsn.ToString());
  }
  std::vector<TenantId> tenants{TenantId(base.tenant)};
  if (base.tenant == "*") {
    // Every tenant with rows at either end: one with none at both has no net change.
    TV_ASSIGN_OR_RETURN(auto before, store.Tenants(base.point.lsn));
    TV_ASSIGN_OR_RETURN(auto after, store.Tenants(point.lsn));
    std::set<TenantId> all(before.begin(), before.end());
    all.insert(after.begin(), after.end());
    tenants.clear();
    for (const auto& t : all) tenants.push_back(t);
  }
  BackupInfo info;
  info.id = NewBackupId(SystemClock().Now());
  info.type = BackupType::kIncremental;
  info.tenant = base.tenant;
  info.tables = base.tables;
  info.point = point;
  info.base_id = base.id;
  info.base_point = base.point;
  info.name = request.name;
  info.description = request.description;
  const std::set<std::string> wanted(base.tables.begin(), base.tables.end());
  TV_ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(PathOf(info.id), info.id, ring_, info.tenant, workers_));
  TableFiles files;
  uint64_t written = 0;
  if (info.tenant == "*") files.tenant_blocks.emplace();
  for (const auto& tenant : tenants) {
    Status inner;
    Status st =
        store.History(tenant, base.point.lsn, point.lsn, std::nullopt, std::nullopt, [&](const store::HistoryEvent& e) {
          if (!wanted.empty() && wanted.count(e.table) == 0) return true;
          if (e.op == 'm' || e.table.empty()) return true;  // messages are not state
          const std::string& file = files.FileFor(e.table);
          inner = writer->Add(file, backup_internal::EncodeEvent(tenant.str(), e));
          files.Added(*writer, file, tenant.str());
          ++files.counts[e.table];
          if (inner.ok()) inner = CheckCancelled(request, ++written);
          return inner.ok();
        });
    TV_RETURN_IF_ERROR(inner);
    TV_RETURN_IF_ERROR(st.WithContext("reading the history of tenant '" + tenant.str() + "'"));
  }
  TV_RETURN_IF_ERROR(CheckCancelled(request, 0));
  return Seal(std::move(writer), std::move(info), files);
}

Result<std::vector<BackupInfo>> Catalog::ListLocked() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return std::vector<BackupInfo>{};
  std::set<std::string> ids;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (IsValidId(name) && it->is_directory()) ids.insert(name);
  }
  if (ec) return Internal("listing backups in " + dir_ + ": " + ec.message());
  std::vector<BackupInfo> out;
  for (const auto& id : ids) {
    {
      std::lock_guard lock(cache_mu_);
      if (auto it = cache_.find(id); it != cache_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    auto link = OpenBackup(id);
    if (!link.ok()) {
      spdlog::warn("backup catalog: skipping {}: {}", id, link.status().ToString());
      continue;
    }
    out.push_back(link->manifest.info);
  }
  std::sort(out.begin(), out.end(), NewestFirst);
  return out;
}

Result<std::vector<BackupInfo>> Catalog::List(const std::optional<std::string>& tenant) {
  TV_ASSIGN_OR_RETURN(auto all, ListLocked());
  if (!tenant) return all;
  std::vector<BackupInfo> out;
  for (auto& b : all) {
    if (b.tenant == *tenant || b.tenant == "*") out.push_back(std::move(b));
  }
  return out;
}

Result<BackupInfo> Catalog::Get(const std::string& id) {
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = cache_.find(id); it != cache_.end()) {
      std::error_code ec;
      if (fs::is_directory(PathOf(id), ec)) return it->second;
      cache_.erase(it);
    }
  }
  TV_ASSIGN_OR_RETURN(ChainLink link, OpenBackup(id));
  return link.manifest.info;
}

Status Catalog::Verify(const std::string& id) {
  TV_ASSIGN_OR_RETURN(auto chain, OpenChain(id));
  return CheckChain(id, chain, true);
}

// Every link's files against its manifest: deep opens every block (Verify);
// otherwise only sizes and hashes, the blocks a load reads being
// authenticated as it reads them (LoadState).
Status Catalog::CheckChain(const std::string& id, const std::vector<ChainLink>& chain, bool deep) {
  for (const auto& link : chain) {
    const BackupInfo& info = link.manifest.info;
    std::string prefix = "backup " + info.id;
    if (info.id != id) prefix += " (the chain of " + id + ")";
    TV_RETURN_IF_ERROR((deep ? link.reader->Verify() : link.reader->CheckFiles()).WithContext(prefix));
    for (const auto& table_file : link.manifest.table_files) {
      const std::string& table = table_file.first;
      const std::string& file = table_file.second;
      auto f = std::find_if(link.reader->files().begin(), link.reader->files().end(),
                            [&file](const ArchiveFileInfo& a) { return a.name == file; });
      if (f == link.reader->files().end())
        return Corruption(prefix + ": the data file " + file + " of " + table + " is not in the archive");
      auto count = info.rows.find(table);
      if (count == info.rows.end() || count->second != f->records) {
        return Corruption(prefix + ": file " + file + " holds " + std::to_string(f->records) +
                          " records, the manifest counts " +
                          std::to_string(count == info.rows.end() ? 0 : count->second) + " for " + table);
      }
    }
  }
  return Status::Ok();
}

Status Catalog::DeleteLocked(const std::string& id, const std::vector<BackupInfo>& all) {
  for (const auto& b : all) {
    if (b.base_id == id) return FailedPrecondition("backup " + id + " is the base of " + b.id + ": delete that first");
  }
  const std::string path = PathOf(id);
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return NotFound("no backup " + id + " in " + dir_);
  // Renamed first, so a crash mid-removal never leaves a half backup under its id.
  const std::string doomed = path + ".deleting-" + std::to_string(std::random_device{}());
  fs::rename(path, doomed, ec);
  if (ec) return Internal("removing backup " + id + ": " + ec.message());
  fs::remove_all(doomed, ec);
  if (ec) spdlog::warn("backup {}: removed from the catalog, but {} remains: {}", id, doomed, ec.message());
  std::lock_guard lock(cache_mu_);
  cache_.erase(id);
  return Status::Ok();
}

Status Catalog::Delete(const std::string& id) {
  if (!IsValidId(id)) return InvalidArgument("'" + id + "' is not a backup id (b-<time>-<hex>)");
  std::unique_lock lifecycle(lifecycle_);
  TV_ASSIGN_OR_RETURN(auto all, ListLocked());
  return DeleteLocked(id, all);
}

// Per tenant value (with no tenant given, each tenant's and the "*" backups
// separately): the newest keep_count and those younger than max_age_days are
// kept, then every base a kept backup's chain needs. The rest, newest first
// (an incremental before its base).
Result<std::vector<std::string>> Catalog::PlanExpire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                                     const std::optional<std::string>& tenant) {
  if (max_age_days < 0) return InvalidArgument("max_age_days must not be negative");
  TV_ASSIGN_OR_RETURN(auto all, ListLocked());
  std::map<std::string, const BackupInfo*> by_id;
  for (const auto& b : all) by_id[b.id] = &b;
  std::map<std::string, uint64_t> seen_per_tenant;
  std::set<std::string> keep;
  const int64_t max_age_us = max_age_days * 86'400'000'000LL;
  for (const auto& b : all) {  // newest first
    if (tenant && b.tenant != *tenant) {
      keep.insert(b.id);  // another tenant's: not ours to expire
      continue;
    }
    const uint64_t rank = seen_per_tenant[b.tenant]++;
    const bool too_many = keep_count > 0 && rank >= keep_count;
    const bool too_old = max_age_days > 0 && now.micros() - b.created_at.micros() > max_age_us;
    if (!too_many && !too_old) keep.insert(b.id);
  }
  for (const auto& id : std::vector<std::string>(keep.begin(), keep.end())) {
    const BackupInfo* b = by_id[id];
    for (size_t n = 0; b != nullptr && b->base_id && n < kMaxChain; ++n) {
      keep.insert(*b->base_id);
      auto it = by_id.find(*b->base_id);
      b = it == by_id.end() ? nullptr : it->second;
    }
  }
  std::vector<std::string> out;
  for (const auto& b : all) {
    if (keep.count(b.id) == 0) out.push_back(b.id);
  }
  return out;
}

Result<std::vector<std::string>> Catalog::Expire(uint64_t keep_count, int64_t max_age_days, CommitTime now,
                                                 const std::optional<std::string>& tenant) {
  std::unique_lock lifecycle(lifecycle_);
  TV_ASSIGN_OR_RETURN(auto doomed, PlanExpire(keep_count, max_age_days, now, tenant));
  std::vector<std::string> removed;
  for (const auto& id : doomed) {
    TV_ASSIGN_OR_RETURN(auto all, ListLocked());
    if (Status st = DeleteLocked(id, all); !st.ok()) {
      return st.WithContext("expiring (removed so far: " + std::to_string(removed.size()) + ")");
    }
    removed.push_back(id);
    spdlog::info("backup {}: expired", id);
  }
  return removed;
}

Status Catalog::LoadState(const std::string& id, const TenantId& tenant, const std::vector<std::string>& tables,
                          const std::function<bool(const store::Row&)>& emit) {
  TV_ASSIGN_OR_RETURN(auto chain, OpenChain(id));
  TV_RETURN_IF_ERROR(CheckChain(id, chain, false));
  const std::string& holds = chain.back().manifest.info.tenant;
  if (holds != "*" && holds != tenant.str()) {
    return InvalidArgument("backup " + id + " holds tenant '" + holds + "', not '" + tenant.str() + "'");
  }
  return backup_internal::LoadChain(chain, tenant.str(), tables, emit).WithContext("loading backup " + id);
}

}  // namespace

Result<std::unique_ptr<BackupCatalog>> BackupCatalog::Open(const std::string& dir, const std::string& key_file,
                                                           size_t workers) {
  if (dir.empty()) return InvalidArgument("replay.backup_dir is empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("creating the backup directory " + dir + ": " + ec.message());
  TV_ASSIGN_OR_RETURN(crypto::MasterKey master, crypto::MasterKey::Load(key_file));
  return std::unique_ptr<BackupCatalog>(new Catalog(dir, std::move(master), workers));
}

}  // namespace timevault::replay
