// Debezium-compatible JSON for change events, written with RapidJSON's Writer
// (no DOM on the hot path). Matches Debezium's Postgres connector with its
// default settings (decimal.handling.mode=precise, time.precision.mode=adaptive,
// binary.handling.mode=bytes, interval.handling.mode=numeric), and Kafka
// Connect's JsonConverter with schemas.enable true or false.
//
// Column values arrive in Postgres text format (pgoutput 't' columns, or text
// results of the snapshot's SELECT); the encoder converts them by type.
// An EventEncoder is not thread-safe; use one per thread. It caches the
// column mappings and Connect schema JSON per relation oid, rebuilt when the
// columns' types, nullability or key membership change; call Invalidate() on
// every Relation message (renames and defaults are not detected otherwise).
// docs/compat.md records each Debezium behaviour reproduced and its source.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/capture/pgoutput.h"
#include "timevault/capture/table_schema.h"
#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/wire/contract.h"

namespace timevault::capture {

// The contract's names and constants (source.version, the unchanged-TOAST
// placeholder, timevault's headers) live in wire/contract.h.
using wire::kConnectorVersion;
using wire::kNullsHeader;
using wire::kTextHeader;
using wire::kUnavailableValue;

enum class Op : char {
  kCreate = 'c',
  kUpdate = 'u',
  kDelete = 'd',
  kRead = 'r',  // snapshot
  kTruncate = 't',
  kMessage = 'm',
};

// The `source` block. All string_views must stay valid during the Encode call.
// Field order and types follow PostgresSourceInfoStructMaker; xmin is null.
struct SourceInfo {
  std::string_view name;  // topic prefix (Debezium's topic.prefix)
  std::string_view db;    // database name
  CommitTime ts;          // commit time (snapshot: time of the read); ts_ms/ts_us/ts_ns derive from it
  // "false" (streaming), "true", "first", "first_in_data_collection",
  // "last_in_data_collection", "last", "incremental"; empty means "false".
  std::string_view snapshot;
  // First element of `sequence`: the LSN Debezium last committed, i.e. the
  // XLogData start of the previous transaction's Commit message (= its
  // end_lsn); null until the first commit after a (re)start.
  std::optional<Lsn> last_commit_lsn;
  // This event's LSN: the XLogData wal_start of its pgoutput message (second
  // element of `sequence`, and `lsn`). Snapshot: the slot's consistent point.
  Lsn lsn;
  std::string_view schema;       // "" for logical decoding messages
  std::string_view table;        // "" for logical decoding messages
  std::optional<int64_t> tx_id;  // null for non-transactional messages
  // Replication origin of the transaction (from a pgoutput Origin message):
  // empty / nullopt when the transaction originated locally.
  std::string_view origin;
  std::optional<Lsn> origin_lsn;
};

// The `transaction` block (provide.transaction.metadata=true). Null for
// snapshot records and non-transactional messages.
struct TransactionBlock {
  std::string_view id;                // TransactionId(xid, lsn of THIS event): differs per event, see below
  int64_t total_order = 0;            // 1-based position in the transaction
  int64_t data_collection_order = 0;  // 1-based position among this table's events
};

// One entry of a transaction END event's data_collections.
struct CollectionCount {
  std::string name;  // "schema.table"; kMessageDataCollection for logical messages
  int64_t event_count = 0;
};

// The data collection Debezium counts logical decoding messages under
// (LogicalDecodingMessageMonitor.LogicalDecodingMessageId). Unverified: see
// docs/compat.md.
inline constexpr std::string_view kMessageDataCollection = "LOGICAL_DECODING_MESSAGE";

// topic -> partition -> last acknowledged offset.
using AckedOffsets = std::map<std::string, std::map<int32_t, int64_t>>;

// timevault's extensions of a heartbeat (docs/capture.md, "Slot loss and
// re-snapshots"): where the position comes from, so the next run can tell
// a lost or replaced slot, and on the heartbeat that closes a full snapshot
// on a new slot, the `timevault_snapshot` marker the store ends absent rows
// and records gaps by.
struct HeartbeatSource {
  std::string slot;
  std::string system_id;
  int64_t timeline = 0;
};
struct SnapshotMarker {
  std::vector<std::string> tables;  // "schema.table" of every table the snapshot read, empty ones included
  std::string cause;                // why this snapshot was taken
  bool gap = false;                 // history before it was lost (a slot lost or replaced)
  // The publication is FOR ALL TABLES: a table created later is whole from
  // its creation; with FOR TABLE, one added later has rows never read.
  bool all_tables = false;
};

class EventEncoder {
 public:
  struct Options {
    bool schemas_enable = false;
  };
  explicit EventEncoder(Options options);
  ~EventEncoder();
  EventEncoder(const EventEncoder&) = delete;
  EventEncoder& operator=(const EventEncoder&) = delete;

  // Drops cached schemas of this relation (call when its Relation message or
  // catalog changed).
  void Invalidate(uint32_t relation_oid);

  // The message key: the primary-key columns of `row` ({"id":1}, or with the
  // Connect schema). NotFound when the table has no primary key: Debezium
  // then sends a null key.
  Status EncodeKey(const TableSchema& table, const pgoutput::Tuple& row, std::string* out);

  // A change event envelope. `before`/`after` may be null as the op demands.
  // Unchanged-TOAST columns of `after` take the value from `before` when it
  // has one (REPLICA IDENTITY FULL), else kUnavailableValue (bytea: its bytes
  // in base64; text/varchar/json[b] arrays: [placeholder]; int4/int8/date
  // arrays: the placeholder's bytes as numbers). NULLs become the column
  // default when it has one (JsonConverter), and a NOT NULL column's NULL (a
  // replica-identity-default before image) becomes the default or Debezium's
  // fallback (0, "", ...). InvalidArgument if a value cannot be converted for
  // its type (the message names table, column, type and value).
  // `nulls_header`, if given, receives the kNullsHeader value naming the
  // columns whose NULL was written as a default or fallback, or is cleared
  // when there is none (then the message carries no such header).
  // `text_header`, if given, likewise receives the kTextHeader value, or is
  // cleared when no column of the images needs it.
  Status EncodeChange(const TableSchema& table, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                      const SourceInfo& source, const TransactionBlock* transaction, CommitTime now, std::string* out,
                      std::string* nulls_header = nullptr, std::string* text_header = nullptr);

  // Truncate: op "t", before and after null, no key.
  Status EncodeTruncate(const TableSchema& table, const SourceInfo& source, const TransactionBlock* transaction,
                        CommitTime now, std::string* out);

  // Logical decoding message (<prefix>.message topic): key {"prefix":...};
  // value {op:"m", ts_ms:now, source, transaction, message:{prefix, content}}
  // (no before/after, no ts_us/ts_ns: Debezium's MessageValue schema). A
  // transactional message counts as an event of its transaction, under
  // kMessageDataCollection.
  Status EncodeMessageKey(std::string_view prefix, std::string* out);
  Status EncodeMessage(const pgoutput::LogicalMessage& message, const SourceInfo& source,
                       const TransactionBlock* transaction, CommitTime now, std::string* out);

  // <prefix>.transaction topic: key {"id": ...}; BEGIN and END values. `ts`
  // is the commit time (both events). BEGIN's id is TransactionId(xid, lsn of
  // the Begin message), END's TransactionId(xid, lsn of the Commit message).
  // `collections` must be in order of first appearance in the transaction;
  // the encoder reorders them as Debezium's HashMap iterates.
  Status EncodeTransactionKey(std::string_view id, std::string* out);
  Status EncodeTransactionBegin(std::string_view id, CommitTime ts, std::string* out);
  Status EncodeTransactionEnd(std::string_view id, CommitTime ts, int64_t event_count,
                              const std::vector<CollectionCount>& collections, std::string* out);

  // __debezium-heartbeat.<prefix>: key {"serverName": prefix}; value
  // {"ts_ms": now} plus timevault's fields "lsn" (everything up to it is
  // produced) and "server_ts_ms" (the server time of that position), appended
  // after Debezium's only field (an extension; consumers ignore them).
  Status EncodeHeartbeatKey(std::string_view server_name, std::string* out);
  // "offsets": topic -> partition -> the last offset Kafka acknowledged: a
  // consumer that has passed them all holds every event up to `lsn`.
  Status EncodeHeartbeat(CommitTime now, Lsn lsn, CommitTime server_time, const AckedOffsets& offsets, std::string* out,
                         const HeartbeatSource* source = nullptr, const SnapshotMarker* marker = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The topic name Debezium 3.6's default topic naming strategy makes of
// "<prefix>.<schema>.<table>" (AbstractTopicNamingStrategy.sanitizedTopicName):
// every character outside [a-zA-Z0-9._-] becomes '_' — per UTF-16 code unit,
// as Java iterates a String, so a non-ASCII character of the BMP gives one
// '_' and one beyond it two — then the name is cut to 249 characters, and
// "." / ".." become "_" / "__". The schema names of the key and envelope
// derive from this topic name, `source.schema`/`table` keep the real names.
std::string SanitizeTopicName(std::string_view name);

// Debezium's transaction id for Postgres: "<xid>:<lsn as decimal>", where
// the LSN is the position of the event the id is written into
// (PostgresTransactionStructMaker uses the offset's last-seen LSN): the Begin
// message's for BEGIN, each change's own for its `transaction.id`, the Commit
// message's for END. The ids of one transaction therefore differ; only the
// "<xid>:" prefix (== source.txId) identifies it.
std::string TransactionId(uint32_t xid, Lsn lsn);

}  // namespace timevault::capture
