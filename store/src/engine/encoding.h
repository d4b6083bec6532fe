// Key and value encodings of the store's column families (docs/store.md,
// "Column families and key formats"). Pure functions over std::string; no
// RocksDB types except the two prefix extractors at the end.
//
//   T(x)   2-byte big-endian length + bytes
//   u64    8-byte big-endian;  ~u64: its bitwise NOT (newest first)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rocksdb {
class SliceTransform;
}

namespace timevault::store::engine {

// ---- primitive encoders / a bounds-checked reader --------------------------

void PutU16(std::string* out, uint16_t v);
void PutU32(std::string* out, uint32_t v);
void PutU64(std::string* out, uint64_t v);
// T(x). Strings longer than 65535 bytes cannot be encoded: callers refuse
// them first (FitsT).
void PutT(std::string* out, std::string_view s);
inline bool FitsT(std::string_view s) { return s.size() <= 0xFFFF; }

// Reads fields from the front of a byte string; every getter returns false
// (and leaves the reader failed) if the bytes run out.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool U8(uint8_t* v);
  bool U16(uint16_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool T(std::string_view* v);
  bool Bytes(size_t n, std::string_view* v);
  std::string_view rest() const { return s_; }
  bool empty() const { return s_.empty(); }

 private:
  std::string_view s_;
};

uint64_t DecodeU64(std::string_view eight);  // precondition: 8 bytes

// The smallest string greater than every string that starts with `prefix`
// (empty: no such bound, the prefix is all 0xFF).
std::string PrefixSuccessor(std::string_view prefix);

// ---- column family names ----------------------------------------------------

inline constexpr const char* kCfVersions = "versions";
inline constexpr const char* kCfTxns = "txns";
inline constexpr const char* kCfPending = "pending";
inline constexpr const char* kCfLog = "log";
inline constexpr const char* kCfCommits = "commits";
inline constexpr const char* kCfTruncates = "truncates";
inline constexpr const char* kCfKeys = "keys";
inline constexpr const char* kCfMeta = "meta";
inline constexpr const char* kCfDeadLetter = "deadletter";
inline constexpr const char* kCfRowTenant = "rowtenant";
inline constexpr const char* kCfCurrent = "current";

// ---- versions: T(tenant) T(table) T(pk) ~u64(change_lsn) -> flags u64(xid) enc(row)

enum VersionFlags : uint8_t {
  kVersionRow = 1,
  kVersionDelete = 2,
  kVersionSnapshot = 4,  // visible from its LSN on, no transaction
  kVersionSettled = 8,   // retention: its transaction committed before the retention floor
  // Unchanged TOAST columns with no earlier value in the store hold
  // wire::kUnavailableValue: StateAt refuses the row (docs/store.md, "TOAST").
  kVersionIncomplete = 16,
};

std::string TenantPrefix(std::string_view tenant);                         // T(tenant)
std::string TablePrefix(std::string_view tenant, std::string_view table);  // T(tenant) T(table)
std::string RowPrefix(std::string_view tenant, std::string_view table, std::string_view pk);
std::string VersionKey(std::string_view row_prefix, uint64_t change_lsn);

struct VersionKeyParts {
  std::string_view tenant, table, pk;
  uint64_t change_lsn = 0;
  size_t row_prefix_size = 0;  // bytes of T(tenant) T(table) T(pk)
};
std::optional<VersionKeyParts> ParseVersionKey(std::string_view key);

struct VersionValue {
  uint8_t flags = 0;
  uint64_t xid = 0;
  std::string_view ciphertext;
};
std::string EncodeVersionValue(uint8_t flags, uint64_t xid, std::string_view ciphertext);
std::optional<VersionValue> ParseVersionValue(std::string_view value);

// ---- current: T(tenant) T(table) T(pk) -> u64(change_lsn) + the versions value
// Each row's newest version (greatest change LSN), so that the state at a
// recent point is a scan of live-sized data, not of the history (docs/store.md,
// "Visibility"). Written with RocksDB's built-in "max" merge operator: the
// big-endian LSN first makes the bytewise maximum the newest version, with no
// read at write time. The ciphertext's associated data stays the versions key.
std::string EncodeCurrent(uint64_t change_lsn, std::string_view version_value);
struct CurrentValue {
  uint64_t change_lsn = 0;
  std::string_view version_value;  // flags u64(xid) enc(row), as in versions
};
std::optional<CurrentValue> ParseCurrent(std::string_view value);

// ---- txns: u64(xid) u64(commit_lsn) -> u64(time) i64(expected) i64(stored) flags

enum TxnFlags : uint8_t {
  kTxnComplete = 1,
  kTxnTimeFromEnd = 2,  // commit time is END's ts_ms; refined by the first change event
};

struct TxnValue {
  int64_t commit_time_us = 0;
  int64_t expected = 0;
  int64_t stored = 0;
  uint8_t flags = 0;
};
std::string TxnKey(uint64_t xid, uint64_t commit_lsn);
std::string EncodeTxnValue(const TxnValue& v);
std::optional<TxnValue> ParseTxnValue(std::string_view value);

// ---- pending: u64(xid) u64(change_lsn) T(tenant) T(table) T(pk) -> weight op enc(envelope)
// ---- log:     T(tenant) u64(commit_lsn) u64(change_lsn) T(table) T(pk) -> op enc(envelope)

struct EntryId {  // what identifies one history entry besides its commit
  std::string tenant, table, pk;
  uint64_t change_lsn = 0;
};
std::string PendingKey(uint64_t xid, const EntryId& id);
std::string LogKey(uint64_t commit_lsn, const EntryId& id);

struct PendingKeyParts {
  uint64_t xid = 0;
  EntryId id;
};
std::optional<PendingKeyParts> ParsePendingKey(std::string_view key);

// Format 3: a history entry whose envelope holds the row image of the
// version stored under the same tenant, table, key and change LSN (a c/u/r
// event's `after`) keeps the envelope without those bytes; its op byte
// carries kOpSpliced and the plaintext is `u32(offset) pack(rest)`: the
// envelope is rest[0, offset) + the version's row + rest[offset, ...).
inline constexpr uint8_t kOpSpliced = 0x80;
// Shorter row images are kept in the envelope (nothing to gain).
inline constexpr size_t kMinSplicedRow = 16;
// The plaintext of a spliced entry, from the envelope and the row it holds
// at `offset`; `packed_rest` is the rest already packed (or not).
std::string EncodeSpliced(uint32_t offset, std::string_view packed_rest);
struct Spliced {
  uint32_t offset = 0;
  std::string_view rest;  // packed or plain
};
std::optional<Spliced> ParseSpliced(std::string_view plaintext);
// rest with `row` put back at `offset` (false if offset is past rest).
bool Unsplice(std::string_view rest, uint32_t offset, std::string_view row, std::string* envelope);

struct LogKeyParts {
  std::string_view tenant, table, pk;
  uint64_t commit_lsn = 0, change_lsn = 0;
};
std::optional<LogKeyParts> ParseLogKey(std::string_view key);

// ---- commits: u64(commit_time_us) u64(commit_lsn) -> u64(xid) i64(event_count)
std::string CommitKey(int64_t time_us, uint64_t commit_lsn);
std::string EncodeCommitValue(uint64_t xid, int64_t event_count);

// ---- truncates: T(table) ~u64(change_lsn) -> u64(xid), kNoTransaction: visible at its LSN
inline constexpr uint64_t kNoTransaction = ~uint64_t{0};
std::string TruncatePrefix(std::string_view table);
std::string TruncateKey(std::string_view table, uint64_t change_lsn);

// ---- keys: T(tenant) -> wrapped keys; the store's own key under the empty key
inline std::string TenantKeyKey(std::string_view tenant) { return TenantPrefix(tenant); }
inline constexpr std::string_view kStoreKeyKey = "";

// ---- deadletter: T(topic) u32(partition) u64(offset) -> T(reason) enc(raw)
std::string DeadLetterKey(std::string_view topic, int32_t partition, int64_t offset);

// ---- rowtenant: T(table) T(pk) ~u64(change_lsn) -> flags u64(xid) tenant
// The row's timeline across tenants: which tenant wrote it at each change, and
// its deletes. Events of one row can arrive out of order (a delete without
// tenant or a tenant move lands in another partition), so each event looks at
// its neighbours here (docs/store.md, "Tenants").
enum RowTenantFlags : uint8_t {
  kRtVersion = 1,     // c/u/r under `tenant`
  kRtDelete = 2,      // d with its tenant known
  kRtTenantless = 4,  // d without tenant; `tenant` is the owner it was attributed to ("" none)
  kRtDirect = 8,      // snapshot: no transaction, visible at its LSN
};
struct RowTenantEntry {
  uint64_t change_lsn = 0;
  uint8_t flags = 0;
  uint64_t xid = 0;
  std::string tenant;
};
std::string RowTenantPrefix(std::string_view table, std::string_view pk);
std::string RowTenantKey(std::string_view table, std::string_view pk, uint64_t change_lsn);
std::string EncodeRowTenant(uint8_t flags, uint64_t xid, std::string_view tenant);
// From a key of the given prefix and its value.
std::optional<RowTenantEntry> ParseRowTenant(std::string_view key, size_t prefix_size, std::string_view value);

// ---- meta
inline constexpr std::string_view kMetaProgress = "recoverable";  // Progress (progress.h)
inline constexpr std::string_view kMetaCounters = "counters";
inline constexpr std::string_view kMetaCheck = "check";
// Present once `current` holds every row's newest version (stores written
// before it existed are filled in at open).
inline constexpr std::string_view kMetaCurrentReady = "current-ready";
inline constexpr std::string_view kMetaOffsetPrefix = "offset/";
// History envelopes' zstd dictionaries (engine/envelope_codec.h):
// `dict/` u32(dictionary id) -> the dictionary; `dict-active` -> u32(id) of
// the one new envelopes are compressed with.
inline constexpr std::string_view kMetaDictPrefix = "dict/";
inline constexpr std::string_view kMetaDictActive = "dict-active";
// The store's format, u32 (docs/store.md, "Format versions"). Absent: 1,
// every store written before the stamp. 2: row images in `versions` and
// `current` are packed with the envelope dictionary before encryption. 3:
// history entries of c/u/r events do not repeat the version's row image
// (kOpSpliced).
inline constexpr std::string_view kMetaFormat = "format";
inline constexpr uint32_t kFormatVersion = 3;
// Present once no row image written in format 1 is left unpacked (a new
// store, or `timevault store migrate` finished).
inline constexpr std::string_view kMetaRowsPacked = "rows-packed";
std::string OffsetKey(std::string_view topic, int32_t partition);

// ---- prefix extractors (bloom filters and prefix seeks)

// versions: T(tenant) T(table). Keys too short for it are out of domain.
std::shared_ptr<const rocksdb::SliceTransform> NewTenantTablePrefixExtractor();
// log: T(tenant).
std::shared_ptr<const rocksdb::SliceTransform> NewTenantPrefixExtractor();
// rowtenant: T(table) T(pk), one row's timeline: ingest's neighbour seek of
// a row seen for the first time is answered by the bloom filters.
std::shared_ptr<const rocksdb::SliceTransform> NewRowPrefixExtractor();

}  // namespace timevault::store::engine
