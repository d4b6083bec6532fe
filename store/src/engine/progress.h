// Progress: the writer's bookkeeping behind the recoverable point
// (docs/store.md, "Recoverable point"), kept in memory and persisted in
// `meta` in the same WriteBatch as the data it describes:
//
//   recoverable              the scalars below (Progress::Encode)
//   inflight/ u64(commit)    -> u64(xid): transactions whose END was applied
//                               but not all of whose events are stored
//   heartbeat/ u64(lsn) u64(offset) -> a heartbeat waiting for its conditions
//
// Not thread-safe: owned by the writer (StoreImpl::write_mu).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/store/event.h"

namespace timevault::store::engine {

struct PointRec {
  uint64_t lsn = 0;
  int64_t time_us = 0;
};

// A transaction whose END is applied but whose events are not all stored.
struct InFlightTxn {
  uint64_t xid = 0;
  int64_t commit_time_us = 0;
  int64_t expected = 0;
  int64_t stored = 0;
  uint8_t txn_flags = 0;  // its `txns` entry's flags (in memory only: loaded from `txns`)
};

struct PendingHeartbeat {
  uint64_t lsn = 0;
  int64_t time_us = 0;
  std::vector<HeartbeatOffset> offsets;
  // Set when the heartbeat closes a full snapshot on a new slot
  // (StoreEvent::snapshot_image): met, it ends every row of `tables` absent
  // from the snapshot and records the gap before it (docs/store.md, "Gaps").
  bool image = false;
  bool gap = false;
  bool all_tables = false;  // the publication is FOR ALL TABLES (StoreEvent::snapshot_all_tables)
  std::vector<std::string> tables;
  std::string cause;
};

// Where each table's history starts (invariant 10; docs/store.md,
// "Coverage"): the first full snapshot that read it. Tables a FOR ALL TABLES
// snapshot did not list were created after it: covered from it (`others`).
// Any other table was added to the publication later and is not covered.
// Kept under meta `coverage`, written when the first point becomes
// recoverable; a store without the record (written before it) checks only
// its first point.
struct Coverage {
  std::map<std::string, PointRec> tables;
  std::optional<PointRec> others;
};

// An interval of history the store cannot vouch for (invariant 10): points
// after `from` and before `to` are refused; `to` (a full snapshot) and every
// point after it are exact. Kept, all of them, under meta `gaps`. An open
// gap (Kafka offsets skipped, a transaction that will never complete) has
// `to` = {kOpenGapLsn, INT64_MAX} until a full snapshot closes it: every
// point after `from` is refused.
inline constexpr uint64_t kOpenGapLsn = ~uint64_t{0};
struct GapRec {
  uint64_t id = 0;
  PointRec from;
  PointRec to;
  int64_t recorded_us = 0;
  std::string cause;
  bool open() const { return to.lsn == kOpenGapLsn; }
};

struct Progress {
  std::optional<PointRec> recoverable;
  // The newest commit such that it and every transaction ended before it are
  // complete (advances over the front of `inflight`).
  std::optional<PointRec> complete_through;
  // A heartbeat's conditions were met once: the initial snapshot (if any) is
  // stored, so complete transactions alone may advance the point.
  bool base = false;
  std::optional<PointRec> first_point;  // the first recoverable point (ResolveTime before any commit)
  std::optional<PointRec> floor;        // retention: no point before it is served
  uint64_t last_end_lsn = 0;            // newest END applied (an older END is a duplicate)
  int64_t max_end_time_us = 0;          // newest commit time of an END so far
  int64_t max_skew_us = 0;              // largest step back in commit time between ENDs (ResolveTime)

  std::string Encode() const;
  static std::optional<Progress> Decode(std::string_view s);
};

inline constexpr std::string_view kMetaInflightPrefix = "inflight/";
inline constexpr std::string_view kMetaHeartbeatPrefix = "heartbeat/";
inline constexpr std::string_view kMetaGaps = "gaps";

inline constexpr std::string_view kMetaCoverage = "coverage";

std::string EncodeGaps(const std::vector<GapRec>& gaps);
std::string EncodeCoverage(const Coverage& c);
std::optional<Coverage> DecodeCoverage(std::string_view v);
std::optional<std::vector<GapRec>> DecodeGaps(std::string_view v);

std::string InflightKey(uint64_t commit_lsn);
std::string EncodeInflight(const InFlightTxn& t);
std::optional<InFlightTxn> DecodeInflight(std::string_view v);

std::string HeartbeatKey(uint64_t lsn, int64_t kafka_offset);
std::string EncodeHeartbeat(const PendingHeartbeat& h);
std::optional<PendingHeartbeat> DecodeHeartbeat(std::string_view v);

}  // namespace timevault::store::engine
