// Partitioned tables: which leaf partitions each published partitioned root
// has, so capture notices ATTACH and DETACH PARTITION (and DROP of a
// partition). Those move rows into or out of the root without any row event
// in the WAL; capture turns them into events itself (docs/capture.md,
// "Partitioned tables"):
//   * it reads the rows of each attached or detached leaf in a transaction
//     that holds a SHARE lock on the leaf, and emits them with
//     pg_logical_emit_message(true, kPartitionMessagePrefix, ...) in that same
//     transaction, which also records the new set of leaves;
//   * when the stream delivers those messages, in that transaction, capture
//     produces `c` (attached) or `d` + tombstone (detached) events under the
//     root, counted in the transaction like any other event.
// Pure helpers plus the catalog queries; no state of their own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/capture/table_schema.h"
#include "timevault/core/pg.h"
#include "timevault/core/status.h"

namespace timevault::capture {

// The prefix of the logical messages carrying the rows of an attached or
// detached partition. Consumed by capture; never sent to <prefix>.message.
inline constexpr std::string_view kPartitionMessagePrefix = "timevault.partition";
// capture's idle probe (session_idle.cc): a non-transactional message whose
// content is a server time in microseconds since the Unix epoch.
inline constexpr std::string_view kIdleProbePrefix = "timevault.idle";

// Root oid -> its leaf partitions' oids.
using PartitionLeaves = std::map<uint32_t, std::set<uint32_t>>;

// The leaves of every partitioned table the publication publishes, now (or
// as of the snapshot of the connection's transaction).
Result<PartitionLeaves> ReadPartitionLeaves(pg::PgConn& conn, const std::string& publication);

// Compact JSON {"<root oid>":[leaf oids],...}, and back (nullopt if malformed).
std::string SerializeLeaves(const PartitionLeaves& leaves);
std::optional<PartitionLeaves> ParseLeaves(std::string_view json);

// One decoded kPartitionMessagePrefix message: rows of `root`, in the
// root's column order (nullopt = NULL), to emit as `op` ('c' or 'd').
struct PartitionRows {
  uint32_t root = 0;
  char op = 'c';
  std::string leaf;  // "schema.table" of the partition, for logs
  std::vector<std::vector<std::optional<std::string>>> rows;
};
Result<PartitionRows> ParsePartitionMessage(std::string_view content);

// Emits, inside the connection's open transaction, the messages carrying
// every row of `leaf` as rows of `root` (columns by name, in `root`'s order)
// with `op`. Locks the leaf in SHARE mode first. Returns the row count.
Result<int64_t> EmitPartitionRows(pg::PgConn& conn, const TableSchema& root, uint32_t leaf, char op);

}  // namespace timevault::capture
