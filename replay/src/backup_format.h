// What a backup archive holds (docs/replay.md "Backups"), private to replay:
// the record encodings of its data files, its manifest fields, and the
// replay of a chain (full + incrementals) into rows.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "timevault/core/status.h"
#include "timevault/replay/archive.h"
#include "timevault/replay/backup.h"
#include "timevault/store/store.h"

namespace timevault::replay::backup_internal {

// A full backup's record: one live row. Its table is the file's.
//   u32 BE len | tenant | u32 BE len | pk | json (the rest)
struct RowRecord {
  std::string_view tenant, pk, json;
};
std::string EncodeRow(const std::string& tenant, const store::Row& row);
bool DecodeRow(std::string_view record, RowRecord* out);

// An incremental backup's record: one change event from History.
//   u64 BE commit lsn | u64 BE change lsn | op | u32 len | tenant |
//   u32 len | pk | envelope (the rest)
struct EventRecord {
  uint64_t commit_lsn = 0;
  uint64_t change_lsn = 0;
  char op = 0;
  std::string_view tenant, pk, envelope;
};
std::string EncodeEvent(const std::string& tenant, const store::HistoryEvent& event);
bool DecodeEvent(std::string_view record, EventRecord* out);

// The store's row order: by (length, bytes) of the table, then of the key
// (docs/store.md "Visibility": T() encodings compared bytewise).
bool RowOrderLess(std::string_view a, std::string_view b);
struct RowOrder {
  bool operator()(const std::string& a, const std::string& b) const { return RowOrderLess(a, b); }
};

// The raw JSON text of an envelope's "before" and "after" members (nullopt:
// null or absent), byte for byte as the store wrote them — which is also
// what StateAt returns as the row's json.
struct EnvelopeImages {
  std::optional<std::string_view> before, after;
};
Result<EnvelopeImages> ExtractImages(std::string_view envelope);

// Per data file of an all-tenant ("*") backup: the blocks each tenant's
// records span, first..last (a tenant's records of a table are contiguous;
// the blocks at the ends may hold a neighbour's too). A tenant that is not
// listed has no record in the file.
using TenantBlocks = std::map<std::string, std::map<std::string, std::pair<uint64_t, uint64_t>>>;

// A backup's manifest, parsed.
struct Manifest {
  BackupInfo info;
  std::vector<std::pair<std::string, std::string>> table_files;  // (table, data file), in row order of tables
  std::optional<TenantBlocks> tenant_blocks;  // by file; absent in single-tenant backups and older ones
};
std::string BuildMeta(const BackupInfo& info, const std::vector<std::pair<std::string, std::string>>& table_files,
                      const std::optional<TenantBlocks>& tenant_blocks);
Result<Manifest> ParseManifest(const std::string& manifest_json, const std::string& where);

// One backup of a chain, opened.
struct ChainLink {
  Manifest manifest;
  std::unique_ptr<ArchiveReader> reader;
};

// Reads the records of `tenant` in `file` of `link`: only the blocks the
// manifest's tenant index names (none when it lists no such tenant), else
// the whole file. Records of other tenants may still be emitted (shared
// blocks at the range's ends): the caller filters.
Status ReadTenantRecords(const ChainLink& link, const std::string& file, const std::string& tenant,
                         const std::function<bool(std::string_view record)>& emit);

// The state `chain` (full first, then each incremental in order) holds for
// `tenant`, restricted to `tables` (empty: all), in (table, pk) order.
Status LoadChain(const std::vector<ChainLink>& chain, const std::string& tenant, const std::vector<std::string>& tables,
                 const std::function<bool(const store::Row&)>& emit);

}  // namespace timevault::replay::backup_internal
