// Decoding of the pgoutput logical replication protocol (proto_version 1) and
// of the streaming replication CopyData messages that carry it.
//
// Decoding is zero-copy where it can be: string_views in the decoded messages
// point into the input buffer, which must outlive them. Malformed or truncated
// input gives a Corruption status naming the message type and the offset; the
// decoder never reads past the buffer and never crashes.
//
// Reference: PostgreSQL 15 docs, "Logical Replication Message Formats" and
// "Streaming Replication Protocol".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::capture::pgoutput {

// TupleData column kinds, as on the wire.
enum class ColumnKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',  // TOASTed value the UPDATE did not change: not in WAL
  kText = 't',
  kBinary = 'b',
};

struct TupleColumn {
  ColumnKind kind = ColumnKind::kNull;
  std::string_view value;  // text (or binary) form; empty unless kText/kBinary
};
using Tuple = std::vector<TupleColumn>;

struct Begin {
  Lsn final_lsn;           // LSN of the commit record
  CommitTime commit_time;  // commit timestamp (converted to the Unix epoch)
  uint32_t xid = 0;
};

struct Commit {
  uint8_t flags = 0;
  Lsn commit_lsn;  // LSN of the commit record
  Lsn end_lsn;     // end of the transaction's WAL: the resume/confirm position
  CommitTime commit_time;
};

struct Origin {
  Lsn commit_lsn;
  std::string_view name;
};

struct RelationColumn {
  bool is_key = false;  // part of the replica identity
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};

struct Relation {
  uint32_t oid = 0;
  // The namespace as sent, except that the protocol sends pg_catalog as the
  // empty string, which is decoded to "pg_catalog"; a user schema (including "public")
  // arrives under its own name.
  std::string schema;
  std::string name;
  char replica_identity = 'd';  // d default, n nothing, f full, i index
  std::vector<RelationColumn> columns;
};

// Sent before the first Relation that uses a non-built-in type (enum, domain...).
struct Type {
  uint32_t oid = 0;
  std::string schema;  // as in Relation: the wire's "" is decoded to "pg_catalog"
  std::string name;
};

struct Insert {
  uint32_t relation_oid = 0;
  Tuple new_tuple;
};

struct Update {
  uint32_t relation_oid = 0;
  char old_kind = 0;  // 0: no old tuple; 'K': key columns only; 'O': the whole old row
  Tuple old_tuple;
  Tuple new_tuple;
};

struct Delete {
  uint32_t relation_oid = 0;
  char old_kind = 'K';  // 'K' or 'O'
  Tuple old_tuple;
};

struct Truncate {
  uint8_t options = 0;  // bit 0: CASCADE, bit 1: RESTART IDENTITY
  std::vector<uint32_t> relation_oids;
};

struct LogicalMessage {
  bool transactional = false;
  Lsn lsn;
  std::string_view prefix;
  std::string_view content;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, LogicalMessage>;

// Decodes one pgoutput message (the payload of an XLogData). `bytes` must be
// exactly one message: trailing bytes are Corruption. Error offsets count from
// the start of `bytes` (the type byte is offset 0). Only the proto_version 1
// messages are known; the streaming (proto_version 2: 'S', 'E', 'c', 'A') and
// two-phase messages are unknown types, so start replication without
// `streaming` and `two_phase`. The same layouts hold for non-streamed
// transactions in later versions. Thread-safe (no shared state).
Result<Message> Decode(std::string_view bytes);

// --- Streaming replication protocol (inside CopyBoth) ---

struct XLogData {
  Lsn wal_start;          // WAL position of the payload's start
  Lsn wal_end;            // current end of WAL on the server
  int64_t send_time = 0;  // server clock, µs since 2000-01-01
  std::string_view payload;
};

struct Keepalive {
  Lsn wal_end;  // current end of WAL on the server
  int64_t send_time = 0;
  bool reply_requested = false;
};

using StreamMessage = std::variant<XLogData, Keepalive>;

// Decodes one CopyData message from the server ('w' or 'k'). An XLogData's
// payload is everything after its 25-byte header (possibly empty); a
// Keepalive must be exactly 18 bytes with a reply flag of 0 or 1.
Result<StreamMessage> DecodeStream(std::string_view bytes);

// Builds a Standby Status Update ('r', 34 bytes) to send as CopyData.
// `client_time` is µs since 2000-01-01. Postgres reads each position as "last
// WAL byte + 1" already processed: pass a Commit's end_lsn (or a keepalive's
// wal_end when idle) as is; the flush position is what advances the slot.
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t client_time, bool reply_requested);

}  // namespace timevault::capture::pgoutput
