// StoreEvent: one Kafka message from capture's topics, parsed and validated.
// ParseEvent never crashes on bad input: anything that is not valid JSON, not
// a Debezium envelope, or lacks the source fields the store needs gives an
// InvalidArgument whose message is the dead-letter reason. The decisions and
// limits (topic routing, keyless tables, placeholders) are listed at the top
// of store/src/event.cc. Thread-safe: each thread reuses its own parser state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"
#include "timevault/wire/contract.h"

namespace timevault::store {

struct KafkaPosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

enum class EventKind {
  kChange,            // c, u, d, r, t on <prefix>.<schema>.<table>
  kTombstone,         // null value after a delete: nothing to store
  kTransactionBegin,  // <prefix>.transaction BEGIN
  kTransactionEnd,    // <prefix>.transaction END
  kMessage,           // <prefix>.message (op "m")
  kHeartbeat,         // __debezium-heartbeat.<prefix>
};

struct HeartbeatOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;  // the last offset capture had acknowledged in that partition
};

struct StoreEvent {
  EventKind kind = EventKind::kChange;

  // kChange and kMessage.
  char op = 0;                // 'c' 'u' 'd' 'r' 't' 'm'
  std::string table;          // "schema.table" (empty for messages)
  std::string tenant;         // tenant column of after (c/u/r) or before (d); nullopt-like empty when absent
  bool tenant_known = false;  // false: no tenant column in the row, or NULL / "" in a delete's before
  std::string pk;             // the Kafka key's payload as compact JSON (empty for truncate and messages)
  // A table without a primary key has a null Kafka key: then `keyless` is set
  // and pk is the row image itself (compact JSON of after for c/u/r, before
  // for d), so identical rows share one pk. An update changes such a pk:
  // `previous_pk` is the before image (REPLICA IDENTITY FULL, which Postgres
  // requires for updates of keyless tables), the row the update replaces; it
  // is empty when the event has no before image.
  bool keyless = false;
  std::string previous_pk;
  std::string row;                               // compact JSON object: after (c/u/r) or before (d); empty for t/m
  std::string envelope;                          // the value's payload (schema unwrapped), compact JSON
  Lsn change_lsn;                                // source.lsn
  std::optional<int64_t> xid;                    // source.txId (null for non-transactional messages)
  CommitTime commit_time;                        // source.ts_us (commit time; snapshot: read time)
  bool snapshot = false;                         // source.snapshot is not "false"
  std::vector<std::string> unavailable_columns;  // row fields equal to __debezium_unavailable_value
  // 'c' of a primary-key change: the row's key before it, compact JSON (the
  // `__debezium.oldkey` header), so unchanged TOAST columns resolve from the
  // old row. Empty otherwise; the store then looks for a delete at the same LSN.
  std::string old_pk;
  std::string message_prefix;  // kMessage
  bool transactional = false;  // kMessage: it has a transaction block

  // kTransactionBegin / kTransactionEnd: id "<xid>:<lsn>".
  int64_t tx_xid = 0;
  Lsn tx_lsn;                // END: the commit's end LSN
  int64_t event_count = -1;  // END only
  CommitTime tx_time;        // ts_ms (ms precision) of BEGIN/END

  // kHeartbeat.
  Lsn heartbeat_lsn;          // everything up to here was acknowledged by Kafka
  CommitTime heartbeat_time;  // server_ts_ms
  std::vector<HeartbeatOffset> heartbeat_offsets;
  // A heartbeat that closes a full snapshot taken on a new slot (capture's
  // `timevault_snapshot` member; docs/store.md, "Gaps"): the snapshot at
  // heartbeat_lsn is a full image of `snapshot_tables` (rows of those tables
  // absent from it are gone there), and `snapshot_gap` says capture knows
  // history before it was lost (`snapshot_cause` says why).
  bool snapshot_image = false;
  bool snapshot_gap = false;
  std::vector<std::string> snapshot_tables;
  std::string snapshot_cause;
  // The publication is FOR ALL TABLES: a table not in `snapshot_tables` was
  // created after the snapshot, so its history is whole from its creation
  // (docs/store.md, "Coverage"). False: such a table was added to the
  // publication later, with rows the store never saw.
  bool snapshot_all_tables = false;
};

// capture's headers on a change event: kNullsHeader names the fields of the
// before/after images that were NULL although the JSON holds a value;
// kTextHeader carries Postgres's own text of the columns whose Debezium
// value is lossy or absent (docs/store.md, "Fidelity texts"). Both are
// defined, with their shapes, in wire/contract.h; docs/compat.md §7.4, §7.8.
using wire::kNullsHeader;
using wire::kTextHeader;

// The member of a stored row image (and of an envelope's before/after) that
// holds the fidelity texts of kTextHeader for that image: an object
// {"col":"<text>"|null,...}. Its name is empty because Postgres allows no
// zero-length column name, so it can never collide with a column
// (docs/store.md, "Fidelity texts").
inline constexpr std::string_view kTextMember = "";

struct ParseOptions {
  std::string topic_prefix;   // capture's kafka.topic_prefix
  std::string tenant_column;  // default "tenant_id"
};

// Parses one message. `key`/`value` nullopt: a null key/value.
// `nulls_header`: the message's kNullsHeader value, if it has one; the fields
// it names are set to null in the row images kept (row, envelope, keyless pk,
// tenant). A malformed header, or one naming a field the image does not
// have, or one on a message without row images, is InvalidArgument.
// `text_header`: the message's kTextHeader value, if it has one; each
// image's texts are kept in it as member kTextMember (row, envelope's
// before/after, keyless pk). InvalidArgument when it is malformed (not that
// shape, a column twice, an empty column name), names an image the event
// does not have, lists an unchanged-TOAST column or gives a text for a
// column the nulls header says is NULL, or when an image already has a
// member named kTextMember.
Result<StoreEvent> ParseEvent(const ParseOptions& options, std::string_view topic, std::optional<std::string_view> key,
                              std::optional<std::string_view> value,
                              std::optional<std::string_view> nulls_header = std::nullopt,
                              std::optional<std::string_view> text_header = std::nullopt);

}  // namespace timevault::store
