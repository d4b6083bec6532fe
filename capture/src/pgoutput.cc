// pgoutput (proto_version 1) and streaming replication CopyData decoding.
//
// Every message is parsed by a Reader: a bounds-checked big-endian cursor that
// either yields the next field or records the first error, with the offset at
// which it happened. Parsers return false as soon as a read fails and the
// caller turns the recorded error into the Result; the happy path builds no
// Status and allocates only the tuple vector (and, for the rare Relation and
// Type messages, their names).
#include "timevault/capture/pgoutput.h"

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

namespace timevault::capture::pgoutput {
namespace {

// Size of the fixed part of one Relation column after its name: Int8 flags is
// before the name; Int32 type oid and Int32 type modifier follow it. With the
// name's terminator, each column takes at least this many bytes.
constexpr size_t kMinRelationColumnBytes = 1 + 1 + 4 + 4;
// Each tuple column takes at least its kind byte.
constexpr size_t kMinTupleColumnBytes = 1;
constexpr uint32_t kMaxInt32 = static_cast<uint32_t>(std::numeric_limits<int32_t>::max());

std::string DescribeByte(uint8_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "0x";
  out += kHex[b >> 4];
  out += kHex[b & 0xf];
  if (b >= 0x20 && b < 0x7f) {
    out += " ('";
    out += static_cast<char>(b);
    out += "')";
  }
  return out;
}

// A bounds-checked cursor over one message. `context` ("pgoutput Insert")
// prefixes every error; it and `bytes` must outlive the Reader. Not
// thread-safe; one per message.
class Reader {
 public:
  Reader(std::string_view bytes, std::string_view context) : bytes_(bytes), context_(context) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  // The first error; only meaningful after a read returned false.
  Status status() const { return error_; }

  bool U8(const char* what, uint8_t& out) {
    if (!Need(1, what)) return false;
    out = Byte(pos_++);
    return true;
  }
  bool U16(const char* what, uint16_t& out) {
    if (!Need(2, what)) return false;
    out = static_cast<uint16_t>(Byte(pos_) << 8 | Byte(pos_ + 1));
    pos_ += 2;
    return true;
  }
  bool U32(const char* what, uint32_t& out) {
    if (!Need(4, what)) return false;
    out = 0;
    for (size_t i = 0; i < 4; ++i) out = out << 8 | Byte(pos_ + i);
    pos_ += 4;
    return true;
  }
  bool U64(const char* what, uint64_t& out) {
    if (!Need(8, what)) return false;
    out = 0;
    for (size_t i = 0; i < 8; ++i) out = out << 8 | Byte(pos_ + i);
    pos_ += 8;
    return true;
  }
  bool I32(const char* what, int32_t& out) {
    uint32_t u = 0;
    if (!U32(what, u)) return false;
    out = static_cast<int32_t>(u);  // two's complement, well defined since C++20
    return true;
  }
  bool I64(const char* what, int64_t& out) {
    uint64_t u = 0;
    if (!U64(what, u)) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  bool LsnField(const char* what, Lsn& out) {
    uint64_t u = 0;
    if (!U64(what, u)) return false;
    out = Lsn(u);
    return true;
  }
  // A Postgres TimestampTz (µs since 2000-01-01) as a CommitTime. Values so
  // large that the epoch shift would overflow (including +infinity) are
  // corruption: a commit never carries them.
  bool Timestamp(const char* what, CommitTime& out) {
    const size_t at = pos_;
    int64_t pg = 0;
    if (!I64(what, pg)) return false;
    if (pg > std::numeric_limits<int64_t>::max() - CommitTime::kPostgresEpochOffsetMicros) {
      return Fail(at, std::string(what) + " " + std::to_string(pg) + " is out of range");
    }
    out = CommitTime::FromPostgres(pg);
    return true;
  }
  // A NUL-terminated string; `out` excludes the terminator.
  bool CString(const char* what, std::string_view& out) {
    const size_t end = bytes_.find('\0', pos_);
    if (end == std::string_view::npos) {
      return Fail(pos_, std::string("unterminated string for ") + what + " (" + std::to_string(remaining()) +
                            " bytes left, no NUL)");
    }
    out = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  bool Bytes(size_t n, const char* what, std::string_view& out) {
    if (!Need(n, what)) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // The rest of the buffer (possibly empty).
  std::string_view Rest() {
    std::string_view out = bytes_.substr(pos_);
    pos_ = bytes_.size();
    return out;
  }
  // Checks that `count` items of at least `min_bytes` each can fit in what is
  // left, so a garbage count never makes the caller reserve gigabytes.
  bool CountFits(size_t at, uint64_t count, size_t min_bytes, const char* what) {
    if (count <= remaining() / min_bytes) return true;
    return Fail(at, std::string(what) + " " + std::to_string(count) + " needs at least " +
                        std::to_string(count * min_bytes) + " bytes, have " + std::to_string(remaining()));
  }
  bool ExpectEnd() {
    if (remaining() == 0) return true;
    return Fail(pos_, "trailing garbage: " + std::to_string(remaining()) + " bytes after a complete message");
  }
  // Records an error at `at` and returns false, so parsers can `return r.Fail(...)`.
  bool Fail(size_t at, std::string_view detail) {
    error_ = Corruption(std::string(context_) + ": at offset " + std::to_string(at) + ": " + std::string(detail));
    return false;
  }
  // Appends context to the recorded error (" (new tuple, column 2 of 3)").
  void Annotate(std::string_view suffix) { error_ = Corruption(error_.message() + std::string(suffix)); }

 private:
  uint8_t Byte(size_t i) const { return static_cast<uint8_t>(bytes_[i]); }
  bool Need(size_t n, const char* what) {
    if (n <= remaining()) return true;
    error_ = Corruption(std::string(context_) + ": truncated at offset " + std::to_string(pos_) + ": need " +
                        std::to_string(n) + " bytes for " + what + ", have " + std::to_string(remaining()));
    return false;
  }

  std::string_view bytes_;
  std::string_view context_;
  size_t pos_ = 0;
  Status error_;
};

// --- pgoutput messages. Each parser starts after the type byte. ---

bool ParseColumn(Reader& r, TupleColumn& col) {
  const size_t at = r.offset();
  uint8_t kind = 0;
  if (!r.U8("column kind", kind)) return false;
  switch (static_cast<ColumnKind>(kind)) {
    case ColumnKind::kNull:
    case ColumnKind::kUnchangedToast: col = TupleColumn{static_cast<ColumnKind>(kind), {}}; return true;
    case ColumnKind::kText:
    case ColumnKind::kBinary: {
      const size_t len_at = r.offset();
      uint32_t len = 0;
      if (!r.U32("column length", len)) return false;
      if (len > kMaxInt32) return r.Fail(len_at, "negative column length " + std::to_string(static_cast<int32_t>(len)));
      col.kind = static_cast<ColumnKind>(kind);
      return r.Bytes(len, "column value", col.value);
    }
  }
  return r.Fail(at, "unknown column kind " + DescribeByte(kind));
}

// TupleData: Int16 column count, then per column a kind byte and, for 't' and
// 'b', an Int32 length and the bytes.
bool ParseTuple(Reader& r, const char* which, Tuple& tuple) {
  const size_t at = r.offset();
  uint16_t ncols = 0;
  if (!r.U16("tuple column count", ncols)) return false;
  if (!r.CountFits(at, ncols, kMinTupleColumnBytes, "tuple column count")) return false;
  tuple.resize(ncols);
  for (size_t i = 0; i < ncols; ++i) {
    if (!ParseColumn(r, tuple[i])) {
      r.Annotate(std::string(" (") + which + ", column " + std::to_string(i + 1) + " of " + std::to_string(ncols) +
                 ")");
      return false;
    }
  }
  return true;
}

bool ParseBegin(Reader& r, Begin& m) {
  return r.LsnField("final lsn", m.final_lsn) && r.Timestamp("commit timestamp", m.commit_time) && r.U32("xid", m.xid);
}

bool ParseCommit(Reader& r, Commit& m) {
  return r.U8("flags", m.flags) && r.LsnField("commit lsn", m.commit_lsn) && r.LsnField("end lsn", m.end_lsn) &&
         r.Timestamp("commit timestamp", m.commit_time);
}

bool ParseOrigin(Reader& r, Origin& m) {
  return r.LsnField("origin commit lsn", m.commit_lsn) && r.CString("origin name", m.name);
}

// The protocol sends pg_catalog's namespace as the empty string.
std::string NamespaceName(std::string_view wire) {
  return wire.empty() ? std::string("pg_catalog") : std::string(wire);
}

bool IsReplicaIdentity(uint8_t c) { return c == 'd' || c == 'n' || c == 'f' || c == 'i'; }

bool ParseRelationColumn(Reader& r, RelationColumn& col) {
  uint8_t flags = 0;
  std::string_view name;
  if (!r.U8("column flags", flags) || !r.CString("column name", name)) return false;
  col.is_key = (flags & 1) != 0;
  col.name.assign(name);
  return r.U32("column type oid", col.type_oid) && r.I32("column type modifier", col.type_modifier);
}

bool ParseRelation(Reader& r, Relation& m) {
  std::string_view nspace, name;
  if (!r.U32("relation oid", m.oid) || !r.CString("namespace", nspace) || !r.CString("relation name", name)) {
    return false;
  }
  m.schema = NamespaceName(nspace);
  m.name.assign(name);
  const size_t ident_at = r.offset();
  uint8_t ident = 0;
  if (!r.U8("replica identity", ident)) return false;
  if (!IsReplicaIdentity(ident)) return r.Fail(ident_at, "unknown replica identity " + DescribeByte(ident));
  m.replica_identity = static_cast<char>(ident);
  const size_t count_at = r.offset();
  uint16_t ncols = 0;
  if (!r.U16("column count", ncols)) return false;
  if (!r.CountFits(count_at, ncols, kMinRelationColumnBytes, "column count")) return false;
  m.columns.resize(ncols);
  for (size_t i = 0; i < ncols; ++i) {
    if (!ParseRelationColumn(r, m.columns[i])) {
      r.Annotate(" (column " + std::to_string(i + 1) + " of " + std::to_string(ncols) + ")");
      return false;
    }
  }
  return true;
}

bool ParseType(Reader& r, Type& m) {
  std::string_view nspace, name;
  if (!r.U32("type oid", m.oid) || !r.CString("namespace", nspace) || !r.CString("type name", name)) return false;
  m.schema = NamespaceName(nspace);
  m.name.assign(name);
  return true;
}

// Reads a tuple marker byte and checks it is one of the characters in `allowed`.
bool ParseTupleKind(Reader& r, std::string_view allowed, const char* what, uint8_t& kind) {
  const size_t at = r.offset();
  if (!r.U8(what, kind)) return false;
  if (allowed.find(static_cast<char>(kind)) != std::string_view::npos) return true;
  return r.Fail(at, std::string("expected ") + what + ", got " + DescribeByte(kind));
}

bool ParseInsert(Reader& r, Insert& m) {
  uint8_t kind = 0;
  return r.U32("relation oid", m.relation_oid) && ParseTupleKind(r, "N", "new tuple marker 'N'", kind) &&
         ParseTuple(r, "new tuple", m.new_tuple);
}

bool ParseUpdate(Reader& r, Update& m) {
  uint8_t kind = 0;
  if (!r.U32("relation oid", m.relation_oid) || !ParseTupleKind(r, "KON", "tuple marker 'K', 'O' or 'N'", kind)) {
    return false;
  }
  if (kind != 'N') {
    m.old_kind = static_cast<char>(kind);
    if (!ParseTuple(r, kind == 'K' ? "old key tuple" : "old tuple", m.old_tuple) ||
        !ParseTupleKind(r, "N", "new tuple marker 'N'", kind)) {
      return false;
    }
  }
  return ParseTuple(r, "new tuple", m.new_tuple);
}

bool ParseDelete(Reader& r, Delete& m) {
  uint8_t kind = 0;
  if (!r.U32("relation oid", m.relation_oid) || !ParseTupleKind(r, "KO", "old tuple marker 'K' or 'O'", kind)) {
    return false;
  }
  m.old_kind = static_cast<char>(kind);
  return ParseTuple(r, kind == 'K' ? "old key tuple" : "old tuple", m.old_tuple);
}

bool ParseTruncate(Reader& r, Truncate& m) {
  const size_t count_at = r.offset();
  uint32_t nrels = 0;
  if (!r.U32("relation count", nrels) || !r.U8("options", m.options)) return false;
  if (!r.CountFits(count_at, nrels, 4, "relation count")) return false;
  m.relation_oids.resize(nrels);
  for (uint32_t& oid : m.relation_oids) {
    if (!r.U32("relation oid", oid)) return false;
  }
  return true;
}

bool ParseLogicalMessage(Reader& r, LogicalMessage& m) {
  uint8_t flags = 0;
  if (!r.U8("flags", flags) || !r.LsnField("message lsn", m.lsn) || !r.CString("prefix", m.prefix)) return false;
  m.transactional = (flags & 1) != 0;
  const size_t len_at = r.offset();
  uint32_t len = 0;
  if (!r.U32("content length", len)) return false;
  if (len > kMaxInt32) return r.Fail(len_at, "negative content length " + std::to_string(static_cast<int32_t>(len)));
  return r.Bytes(len, "content", m.content);
}

// Parses a whole message of type T with `parse`, which starts after the
// type byte; the message must end exactly where the parse ends.
template <typename T, typename Variant, typename Parse>
Result<Variant> ParseWhole(std::string_view bytes, std::string_view context, Parse parse) {
  Reader r(bytes, context);
  uint8_t type = 0;
  T msg;
  if (!r.U8("message type", type) || !parse(r, msg) || !r.ExpectEnd()) return r.status();
  return Variant(std::move(msg));
}

// --- Streaming replication protocol ---

bool ParseXLogData(Reader& r, XLogData& m) {
  if (!r.LsnField("wal start", m.wal_start) || !r.LsnField("wal end", m.wal_end) || !r.I64("send time", m.send_time)) {
    return false;
  }
  m.payload = r.Rest();
  return true;
}

bool ParseKeepalive(Reader& r, Keepalive& m) {
  if (!r.LsnField("wal end", m.wal_end) || !r.I64("send time", m.send_time)) return false;
  const size_t at = r.offset();
  uint8_t reply = 0;
  if (!r.U8("reply flag", reply)) return false;
  if (reply > 1) return r.Fail(at, "reply flag must be 0 or 1, got " + DescribeByte(reply));
  m.reply_requested = reply == 1;
  return true;
}

void PutU64(std::string& out, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) out[at + i] = static_cast<char>(v >> (56 - 8 * i));
}

}  // namespace

Result<Message> Decode(std::string_view bytes) {
  if (bytes.empty()) return Corruption("pgoutput: empty message");
  switch (bytes[0]) {
    case 'B': return ParseWhole<Begin, Message>(bytes, "pgoutput Begin", ParseBegin);
    case 'C': return ParseWhole<Commit, Message>(bytes, "pgoutput Commit", ParseCommit);
    case 'O': return ParseWhole<Origin, Message>(bytes, "pgoutput Origin", ParseOrigin);
    case 'R': return ParseWhole<Relation, Message>(bytes, "pgoutput Relation", ParseRelation);
    case 'Y': return ParseWhole<Type, Message>(bytes, "pgoutput Type", ParseType);
    case 'I': return ParseWhole<Insert, Message>(bytes, "pgoutput Insert", ParseInsert);
    case 'U': return ParseWhole<Update, Message>(bytes, "pgoutput Update", ParseUpdate);
    case 'D': return ParseWhole<Delete, Message>(bytes, "pgoutput Delete", ParseDelete);
    case 'T': return ParseWhole<Truncate, Message>(bytes, "pgoutput Truncate", ParseTruncate);
    case 'M': return ParseWhole<LogicalMessage, Message>(bytes, "pgoutput Message", ParseLogicalMessage);
    default: break;
  }
  return Corruption("pgoutput: at offset 0: unknown message type " + DescribeByte(static_cast<uint8_t>(bytes[0])) +
                    " (only proto_version 1 without streaming or two-phase is supported)");
}

Result<StreamMessage> DecodeStream(std::string_view bytes) {
  if (bytes.empty()) return Corruption("replication stream: empty CopyData message");
  switch (bytes[0]) {
    case 'w': return ParseWhole<XLogData, StreamMessage>(bytes, "replication stream XLogData", ParseXLogData);
    case 'k': return ParseWhole<Keepalive, StreamMessage>(bytes, "replication stream Keepalive", ParseKeepalive);
    default: break;
  }
  return Corruption("replication stream: at offset 0: unknown CopyData message type " +
                    DescribeByte(static_cast<uint8_t>(bytes[0])));
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t client_time, bool reply_requested) {
  constexpr size_t kSize = 1 + 4 * 8 + 1;
  std::string out(kSize, '\0');
  out[0] = 'r';
  PutU64(out, 1, write.value());
  PutU64(out, 9, flush.value());
  PutU64(out, 17, apply.value());
  PutU64(out, 25, static_cast<uint64_t>(client_time));
  out[33] = reply_requested ? 1 : 0;
  return out;
}

}  // namespace timevault::capture::pgoutput
