// Debezium-compatible JSON for change events, written with RapidJSON's Writer
// (no DOM on the hot path). Matches Debezium's Postgres connector with its
// default settings (decimal.handling.mode=precise, time.precision.mode=adaptive,
// binary.handling.mode=bytes, interval.handling.mode=numeric), and Kafka
// Connect's JsonConverter with schemas.enable true or false.
//
// Column values arrive in Postgres text format (pgoutput 't' columns, or text
// results of the snapshot's SELECT); the encoder converts them by type.
// An EventEncoder is not thread-safe; use one per thread. It caches the
// Connect schema JSON per (relation oid, schema version).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "timevault/capture/pgoutput.h"
#include "timevault/capture/table_schema.h"
#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::capture {

// The Debezium version timevault claims in source.version.
inline constexpr std::string_view kConnectorVersion = "3.6.1.Final";
inline constexpr std::string_view kUnavailableValue = "__debezium_unavailable_value";

enum class Op : char {
  kCreate = 'c',
  kUpdate = 'u',
  kDelete = 'd',
  kRead = 'r',  // snapshot
  kTruncate = 't',
  kMessage = 'm',
};

// The `source` block. All string_views must stay valid during the Encode call.
struct SourceInfo {
  std::string_view name;      // topic prefix (Debezium's topic.prefix)
  std::string_view db;        // database name
  CommitTime ts;              // commit time (snapshot: time of the read)
  std::string_view snapshot;  // "false", "true", "first", "last", "first_in_data_collection", ...
  std::optional<Lsn> last_commit_lsn;  // first element of `sequence` (null when unknown)
  Lsn lsn;                             // this event's LSN (second element of `sequence`, and `lsn`)
  std::string_view schema;
  std::string_view table;
  std::optional<int64_t> tx_id;
};

// The `transaction` block (provide.transaction.metadata=true).
struct TransactionBlock {
  std::string_view id;  // Debezium's transaction id, "txId:lsn"
  int64_t total_order = 0;
  int64_t data_collection_order = 0;
};

// One entry of a transaction END event's data_collections.
struct CollectionCount {
  std::string name;  // "schema.table"
  int64_t event_count = 0;
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
  // Unchanged-TOAST columns are written as kUnavailableValue (for bytea: the
  // placeholder's bytes, base64). InvalidArgument if a value cannot be
  // converted for its type (the message names table, column and value).
  Status EncodeChange(const TableSchema& table, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                      const SourceInfo& source, const TransactionBlock* transaction, CommitTime now,
                      std::string* out);

  // Truncate: op "t", before and after null, no key.
  Status EncodeTruncate(const TableSchema& table, const SourceInfo& source, const TransactionBlock* transaction,
                        CommitTime now, std::string* out);

  // Logical decoding message (<prefix>.message topic): key {"prefix":...},
  // value with op "m" and message {prefix, content(base64)}.
  Status EncodeMessageKey(std::string_view prefix, std::string* out);
  Status EncodeMessage(const pgoutput::LogicalMessage& message, const SourceInfo& source, CommitTime now,
                       std::string* out);

  // <prefix>.transaction topic: key {"id": ...}; BEGIN and END values.
  Status EncodeTransactionKey(std::string_view id, std::string* out);
  Status EncodeTransactionBegin(std::string_view id, CommitTime ts, std::string* out);
  Status EncodeTransactionEnd(std::string_view id, CommitTime ts, int64_t event_count,
                              const std::vector<CollectionCount>& collections, std::string* out);

  // __debezium-heartbeat.<prefix>: key {"serverName": prefix}; value
  // {"ts_ms": now} plus timevault's fields "lsn" (everything up to it is
  // produced) and "server_ts_ms" (the server time of that position).
  Status EncodeHeartbeatKey(std::string_view server_name, std::string* out);
  Status EncodeHeartbeat(CommitTime now, Lsn lsn, CommitTime server_time, std::string* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Debezium's transaction id for Postgres: "<txId>:<lsn as decimal>".
std::string TransactionId(uint32_t xid, Lsn lsn);

}  // namespace timevault::capture
