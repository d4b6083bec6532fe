// Tests for the pgoutput and replication-protocol decoder.
//
// The kRecorded* messages are real bytes from PostgreSQL 15.18, taken with
// pg_logical_slot_peek_binary_changes('s1', NULL, NULL, 'proto_version', '1',
// 'publication_names', 'pub', 'messages', 'true') (and 'binary', 'true' for
// the kBinary* ones) after:
//
//   CREATE TYPE mood AS ENUM ('happy', 'sad');
//   CREATE TABLE t (id int PRIMARY KEY, name text, note text, big text);   -- oid 16389
//   CREATE TABLE full_t (id int, v varchar(20), m mood);                  -- oid 16396
//   ALTER TABLE full_t REPLICA IDENTITY FULL;
//   CREATE TABLE other (a bigint PRIMARY KEY);                            -- oid 16399
//   INSERT INTO t VALUES (1, 'alice', NULL, NULL);                        -- xid 731
//   UPDATE t SET name = 'bob' WHERE id = 1;                               -- xid 732
//   UPDATE t SET id = 2 WHERE id = 1;                                     -- xid 733
//   DELETE FROM t WHERE id = 2;                                           -- xid 734
//   INSERT INTO t SELECT 3, 'carol', 'n', <3200 random chars>;  -- big is TOASTed
//   UPDATE t SET name = 'dave' WHERE id = 3;                    -- big unchanged: 'u'
//   INSERT INTO full_t VALUES (1, 'x', 'happy'); UPDATE ... v = 'y'; DELETE ...
//   TRUNCATE other, full_t RESTART IDENTITY CASCADE;
//   SELECT pg_logical_emit_message(true, 'tv', 'hello');
//   SELECT pg_logical_emit_message(false, 'tvn', '\x00ff01'::bytea);
//   -- a transaction replayed from replication origin 'upstream' at 0/ABCDEF:
//   INSERT INTO other VALUES (42);  INSERT INTO full_t VALUES (7, NULL, 'sad');
#include "timevault/capture/pgoutput.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace timevault::capture::pgoutput {
namespace {

std::string Unhex(std::string_view hex) {
  auto nibble = [](char c) -> int { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kDigits[static_cast<uint8_t>(c) >> 4];
    out += kDigits[static_cast<uint8_t>(c) & 0xf];
  }
  return out;
}

// --- Recorded from PostgreSQL 15.18 ---
constexpr std::string_view kRecordedBegin = "42000000000150a280000304387ebe8266000002db";
constexpr std::string_view kRecordedRelationT =
    "52000040057075626c69630074006400040169640000000017ffffffff006e616d650000000019ffffffff006e6f7465000000"
    "0019ffffffff006269670000000019ffffffff";
constexpr std::string_view kRecordedInsert = "49000040054e00047400000001317400000005616c6963656e6e";
constexpr std::string_view kRecordedCommit = "4300000000000150a280000000000150a2b0000304387ebe8266";
constexpr std::string_view kRecordedUpdateNoOld = "55000040054e00047400000001317400000003626f626e6e";
constexpr std::string_view kRecordedUpdateKey =
    "55000040054b00047400000001316e6e6e4e00047400000001327400000003626f626e6e";
constexpr std::string_view kRecordedDeleteKey = "44000040054b00047400000001326e6e6e";
constexpr std::string_view kRecordedUpdateToast = "55000040054e000474000000013374000000046461766574000000016e75";
constexpr std::string_view kRecordedType = "59000040017075626c6963006d6f6f6400";
constexpr std::string_view kRecordedRelationFull =
    "520000400c7075626c69630066756c6c5f74006600030169640000000017ffffffff0176000000041300000018016d00000040"
    "01ffffffff";
constexpr std::string_view kRecordedUpdateOld =
    "550000400c4f0003740000000131740000000178740000000568617070794e000374000000013174000000017974000000056861"
    "707079";
constexpr std::string_view kRecordedDeleteOld = "440000400c4f000374000000013174000000017974000000056861707079";
constexpr std::string_view kRecordedTruncate = "5400000002030000400f0000400c";
constexpr std::string_view kRecordedMessageTx = "4d01000000000150bef87476000000000568656c6c6f";
constexpr std::string_view kRecordedMessageNonTx = "4d00000000000150bf6874766e000000000300ff01";
constexpr std::string_view kRecordedOrigin = "4f0000000000abcdef757073747265616d00";
constexpr std::string_view kRecordedInsertWithNull = "490000400c4e00037400000001376e7400000003736164";
constexpr std::string_view kBinaryInsertBigint = "490000400f4e00016200000008000000000000002a";
constexpr std::string_view kBinaryInsertWithNull = "490000400c4e00036200000004000000076e6200000003736164";

// --- Built by hand, following the PostgreSQL 15 docs ---
// Relation 1259 in pg_catalog (sent as ""), replica identity 'n', no columns.
constexpr std::string_view kRelationCatalog = "52000004eb0070675f636c617373006e0000";
// Type 16 (bool) in pg_catalog.
constexpr std::string_view kTypeCatalog = "590000001000626f6f6c00";
// Delete with a zero-column key tuple.
constexpr std::string_view kDeleteEmptyTuple = "44000040054b0000";
// Truncate of no relations.
constexpr std::string_view kTruncateEmpty = "540000000000";

// XLogData: start 0/150A198, end 0/150A2B0, send time 0x000304387ebe8266,
// payload kRecordedInsert.
const std::string kXLogData = Unhex(
    "77000000000150a198000000000150a2b0000304387ebe8266"
    "49000040054e00047400000001317400000005616c6963656e6e");
// XLogData with an empty payload.
const std::string kXLogDataEmpty = Unhex("77000000000150a198000000000150a2b0000304387ebe8266");
// Keepalive: wal end 0/150C3C0, send time 0x000304387f7a5c3a, reply requested.
const std::string kKeepalive = Unhex("6b000000000150c3c0000304387f7a5c3a01");

const std::vector<std::string_view>& AllValidPgoutput() {
  static const std::vector<std::string_view> all = {
      kRecordedBegin,     kRecordedRelationT,      kRecordedInsert,      kRecordedCommit,       kRecordedUpdateNoOld,
      kRecordedUpdateKey, kRecordedDeleteKey,      kRecordedUpdateToast, kRecordedType,         kRecordedRelationFull,
      kRecordedUpdateOld, kRecordedDeleteOld,      kRecordedTruncate,    kRecordedMessageTx,    kRecordedMessageNonTx,
      kRecordedOrigin,    kRecordedInsertWithNull, kBinaryInsertBigint,  kBinaryInsertWithNull, kRelationCatalog,
      kTypeCatalog,       kDeleteEmptyTuple,       kTruncateEmpty,
  };
  return all;
}

// Decoded views point into the input, so the bytes must outlive them: Bytes()
// keeps every buffer it makes until the end of the test binary (a deque never
// moves its elements).
const std::string& Bytes(std::string_view hex) {
  static std::deque<std::string> kept;
  return kept.emplace_back(Unhex(hex));
}

template <typename T>
T DecodeAs(const std::string& bytes) {
  Result<Message> r = Decode(bytes);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r)) << "variant index " << r->index();
  if (!std::holds_alternative<T>(*r)) return T{};
  return std::get<T>(std::move(r).value());
}

// The message of a Corruption status; fails the test for any other outcome.
std::string CorruptionMessage(const Result<Message>& r) {
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  return r.status().message();
}
std::string CorruptionMessage(const Result<StreamMessage>& r) {
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  return r.status().message();
}

void ExpectColumn(const TupleColumn& col, ColumnKind kind, std::string_view value = {}) {
  EXPECT_EQ(col.kind, kind);
  EXPECT_EQ(col.value, value);
}

bool PointsInto(std::string_view view, const std::string& buffer) {
  return view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size();
}

constexpr CommitTime kCommitTime731 = CommitTime(1795750421226086);  // 2026-11-27T03:33:41.226086Z

// --- Each message type, from real server bytes ---

TEST(PgoutputDecode, RecordedBegin) {
  Begin m = DecodeAs<Begin>(Bytes(kRecordedBegin));
  EXPECT_EQ(m.final_lsn, Lsn(0x150A280));
  EXPECT_EQ(m.xid, 731u);
  EXPECT_EQ(m.commit_time, kCommitTime731);
  EXPECT_EQ(m.commit_time.ToIso(), "2026-11-27T03:33:41.226086Z");
}

TEST(PgoutputDecode, RecordedCommit) {
  Commit m = DecodeAs<Commit>(Bytes(kRecordedCommit));
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, Lsn(0x150A280));
  EXPECT_EQ(m.end_lsn, Lsn(0x150A2B0));
  EXPECT_EQ(m.end_lsn.ToString(), "0/150A2B0");
  EXPECT_EQ(m.commit_time, kCommitTime731);
}

TEST(PgoutputDecode, RecordedOrigin) {
  const std::string bytes = Unhex(kRecordedOrigin);
  Origin m = DecodeAs<Origin>(bytes);
  EXPECT_EQ(m.commit_lsn, Lsn(0xABCDEF));
  EXPECT_EQ(m.name, "upstream");
  EXPECT_TRUE(PointsInto(m.name, bytes));
}

TEST(PgoutputDecode, RecordedRelationDefaultIdentity) {
  Relation m = DecodeAs<Relation>(Bytes(kRecordedRelationT));
  EXPECT_EQ(m.oid, 16389u);
  EXPECT_EQ(m.schema, "public");
  EXPECT_EQ(m.name, "t");
  EXPECT_EQ(m.replica_identity, 'd');
  ASSERT_EQ(m.columns.size(), 4u);
  const char* names[] = {"id", "name", "note", "big"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(m.columns[i].name, names[i]);
    EXPECT_EQ(m.columns[i].is_key, i == 0) << i;
    EXPECT_EQ(m.columns[i].type_oid, i == 0 ? 23u : 25u) << i;  // int4, text
    EXPECT_EQ(m.columns[i].type_modifier, -1) << i;
  }
}

TEST(PgoutputDecode, RecordedRelationFullIdentityWithTypmodAndUserType) {
  Relation m = DecodeAs<Relation>(Bytes(kRecordedRelationFull));
  EXPECT_EQ(m.oid, 16396u);
  EXPECT_EQ(m.schema, "public");
  EXPECT_EQ(m.name, "full_t");
  EXPECT_EQ(m.replica_identity, 'f');
  ASSERT_EQ(m.columns.size(), 3u);
  EXPECT_TRUE(m.columns[0].is_key);  // with FULL every column is part of the identity
  EXPECT_EQ(m.columns[1].name, "v");
  EXPECT_EQ(m.columns[1].type_oid, 1043u);    // varchar
  EXPECT_EQ(m.columns[1].type_modifier, 24);  // 20 + VARHDRSZ
  EXPECT_EQ(m.columns[2].type_oid, 16385u);   // mood
}

TEST(PgoutputDecode, EmptyNamespaceIsPgCatalog) {
  Relation rel = DecodeAs<Relation>(Bytes(kRelationCatalog));
  EXPECT_EQ(rel.schema, "pg_catalog");
  EXPECT_EQ(rel.name, "pg_class");
  EXPECT_EQ(rel.replica_identity, 'n');
  EXPECT_TRUE(rel.columns.empty());
  Type type = DecodeAs<Type>(Bytes(kTypeCatalog));
  EXPECT_EQ(type.oid, 16u);
  EXPECT_EQ(type.schema, "pg_catalog");
  EXPECT_EQ(type.name, "bool");
}

TEST(PgoutputDecode, RecordedType) {
  Type m = DecodeAs<Type>(Bytes(kRecordedType));
  EXPECT_EQ(m.oid, 16385u);
  EXPECT_EQ(m.schema, "public");
  EXPECT_EQ(m.name, "mood");
}

TEST(PgoutputDecode, RecordedInsertWithNulls) {
  const std::string bytes = Unhex(kRecordedInsert);
  Insert m = DecodeAs<Insert>(bytes);
  EXPECT_EQ(m.relation_oid, 16389u);
  ASSERT_EQ(m.new_tuple.size(), 4u);
  ExpectColumn(m.new_tuple[0], ColumnKind::kText, "1");
  ExpectColumn(m.new_tuple[1], ColumnKind::kText, "alice");
  ExpectColumn(m.new_tuple[2], ColumnKind::kNull);
  ExpectColumn(m.new_tuple[3], ColumnKind::kNull);
  EXPECT_TRUE(PointsInto(m.new_tuple[1].value, bytes));  // zero-copy

  Insert m2 = DecodeAs<Insert>(Bytes(kRecordedInsertWithNull));
  EXPECT_EQ(m2.relation_oid, 16396u);
  ASSERT_EQ(m2.new_tuple.size(), 3u);
  ExpectColumn(m2.new_tuple[0], ColumnKind::kText, "7");
  ExpectColumn(m2.new_tuple[1], ColumnKind::kNull);
  ExpectColumn(m2.new_tuple[2], ColumnKind::kText, "sad");
}

TEST(PgoutputDecode, RecordedBinaryColumns) {
  Insert m = DecodeAs<Insert>(Bytes(kBinaryInsertBigint));
  EXPECT_EQ(m.relation_oid, 16399u);
  ASSERT_EQ(m.new_tuple.size(), 1u);
  ExpectColumn(m.new_tuple[0], ColumnKind::kBinary, std::string_view("\0\0\0\0\0\0\0\x2a", 8));

  Insert m2 = DecodeAs<Insert>(Bytes(kBinaryInsertWithNull));
  ASSERT_EQ(m2.new_tuple.size(), 3u);
  ExpectColumn(m2.new_tuple[0], ColumnKind::kBinary, std::string_view("\0\0\0\x07", 4));
  ExpectColumn(m2.new_tuple[1], ColumnKind::kNull);
  ExpectColumn(m2.new_tuple[2], ColumnKind::kBinary, "sad");  // enum's binary form is its label
}

TEST(PgoutputDecode, RecordedUpdateWithoutOldTuple) {
  Update m = DecodeAs<Update>(Bytes(kRecordedUpdateNoOld));
  EXPECT_EQ(m.relation_oid, 16389u);
  EXPECT_EQ(m.old_kind, 0);
  EXPECT_TRUE(m.old_tuple.empty());
  ASSERT_EQ(m.new_tuple.size(), 4u);
  ExpectColumn(m.new_tuple[0], ColumnKind::kText, "1");
  ExpectColumn(m.new_tuple[1], ColumnKind::kText, "bob");
}

TEST(PgoutputDecode, RecordedUpdateOfKeyCarriesOldKey) {
  Update m = DecodeAs<Update>(Bytes(kRecordedUpdateKey));
  EXPECT_EQ(m.old_kind, 'K');
  ASSERT_EQ(m.old_tuple.size(), 4u);
  ExpectColumn(m.old_tuple[0], ColumnKind::kText, "1");
  for (size_t i = 1; i < 4; ++i) ExpectColumn(m.old_tuple[i], ColumnKind::kNull);  // non-key columns
  ASSERT_EQ(m.new_tuple.size(), 4u);
  ExpectColumn(m.new_tuple[0], ColumnKind::kText, "2");
  ExpectColumn(m.new_tuple[1], ColumnKind::kText, "bob");
}

TEST(PgoutputDecode, RecordedUpdateWithFullOldRow) {
  Update m = DecodeAs<Update>(Bytes(kRecordedUpdateOld));
  EXPECT_EQ(m.relation_oid, 16396u);
  EXPECT_EQ(m.old_kind, 'O');
  ASSERT_EQ(m.old_tuple.size(), 3u);
  ExpectColumn(m.old_tuple[1], ColumnKind::kText, "x");
  ExpectColumn(m.old_tuple[2], ColumnKind::kText, "happy");
  ASSERT_EQ(m.new_tuple.size(), 3u);
  ExpectColumn(m.new_tuple[1], ColumnKind::kText, "y");
}

TEST(PgoutputDecode, RecordedUpdateWithUnchangedToast) {
  Update m = DecodeAs<Update>(Bytes(kRecordedUpdateToast));
  EXPECT_EQ(m.old_kind, 0);
  ASSERT_EQ(m.new_tuple.size(), 4u);
  ExpectColumn(m.new_tuple[1], ColumnKind::kText, "dave");
  ExpectColumn(m.new_tuple[2], ColumnKind::kText, "n");
  ExpectColumn(m.new_tuple[3], ColumnKind::kUnchangedToast);
}

TEST(PgoutputDecode, RecordedDeletes) {
  Delete k = DecodeAs<Delete>(Bytes(kRecordedDeleteKey));
  EXPECT_EQ(k.relation_oid, 16389u);
  EXPECT_EQ(k.old_kind, 'K');
  ASSERT_EQ(k.old_tuple.size(), 4u);
  ExpectColumn(k.old_tuple[0], ColumnKind::kText, "2");
  ExpectColumn(k.old_tuple[3], ColumnKind::kNull);

  Delete o = DecodeAs<Delete>(Bytes(kRecordedDeleteOld));
  EXPECT_EQ(o.relation_oid, 16396u);
  EXPECT_EQ(o.old_kind, 'O');
  ASSERT_EQ(o.old_tuple.size(), 3u);
  ExpectColumn(o.old_tuple[1], ColumnKind::kText, "y");

  Delete empty = DecodeAs<Delete>(Bytes(kDeleteEmptyTuple));
  EXPECT_EQ(empty.old_kind, 'K');
  EXPECT_TRUE(empty.old_tuple.empty());
}

TEST(PgoutputDecode, RecordedTruncate) {
  Truncate m = DecodeAs<Truncate>(Bytes(kRecordedTruncate));
  EXPECT_EQ(m.options, 3);  // CASCADE | RESTART IDENTITY
  EXPECT_EQ(m.relation_oids, (std::vector<uint32_t>{16399, 16396}));
  Truncate empty = DecodeAs<Truncate>(Bytes(kTruncateEmpty));
  EXPECT_TRUE(empty.relation_oids.empty());
}

TEST(PgoutputDecode, RecordedLogicalMessages) {
  const std::string tx_bytes = Unhex(kRecordedMessageTx);
  LogicalMessage tx = DecodeAs<LogicalMessage>(tx_bytes);
  EXPECT_TRUE(tx.transactional);
  EXPECT_EQ(tx.lsn, Lsn(0x150BEF8));
  EXPECT_EQ(tx.prefix, "tv");
  EXPECT_EQ(tx.content, "hello");
  EXPECT_TRUE(PointsInto(tx.content, tx_bytes));

  LogicalMessage nontx = DecodeAs<LogicalMessage>(Bytes(kRecordedMessageNonTx));
  EXPECT_FALSE(nontx.transactional);
  EXPECT_EQ(nontx.lsn, Lsn(0x150BF68));
  EXPECT_EQ(nontx.prefix, "tvn");
  EXPECT_EQ(nontx.content, std::string_view("\x00\xff\x01", 3));
}

// --- Malformed input ---

TEST(PgoutputDecode, EveryStrictPrefixIsCorruption) {
  for (std::string_view hex : AllValidPgoutput()) {
    const std::string full = Unhex(hex);
    ASSERT_TRUE(Decode(full).ok()) << hex;
    for (size_t len = 0; len < full.size(); ++len) {
      // A copy of exactly `len` bytes, so ASan would see a read past it.
      const std::string prefix = full.substr(0, len);
      Result<Message> r = Decode(prefix);
      ASSERT_FALSE(r.ok()) << hex << " prefix " << len;
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << hex << " prefix " << len;
      EXPECT_NE(r.status().message().find("pgoutput"), std::string::npos) << r.status().message();
    }
  }
}

TEST(PgoutputDecode, TrailingBytesAreCorruption) {
  for (std::string_view hex : AllValidPgoutput()) {
    const std::string bytes = Unhex(hex) + std::string(1, '\0');
    const std::string msg = CorruptionMessage(Decode(bytes));
    EXPECT_NE(msg.find("trailing garbage: 1 bytes"), std::string::npos) << hex << ": " << msg;
    EXPECT_NE(msg.find("at offset " + std::to_string(bytes.size() - 1)), std::string::npos) << msg;
  }
}

TEST(PgoutputDecode, TruncationMessageNamesTypeOffsetAndField) {
  // 'I' and two of the four bytes of the relation oid.
  EXPECT_EQ(CorruptionMessage(Decode(Unhex("490000"))),
            "pgoutput Insert: truncated at offset 1: need 4 bytes for relation oid, have 2");
  // Begin cut inside the xid.
  EXPECT_EQ(CorruptionMessage(Decode(Unhex(kRecordedBegin.substr(0, 40)))),
            "pgoutput Begin: truncated at offset 17: need 4 bytes for xid, have 3");
  // Insert cut inside the value "alice" (column 2).
  EXPECT_EQ(
      CorruptionMessage(Decode(Unhex(kRecordedInsert.substr(0, 40)))),
      "pgoutput Insert: truncated at offset 19: need 5 bytes for column value, have 1 (new tuple, column 2 of 4)");
}

TEST(PgoutputDecode, EmptyAndUnknownMessageTypes) {
  EXPECT_EQ(CorruptionMessage(Decode("")), "pgoutput: empty message");
  std::string msg = CorruptionMessage(Decode("Zxyz"));
  EXPECT_NE(msg.find("unknown message type 0x5a ('Z')"), std::string::npos) << msg;
  // proto_version 2's Stream Start is not decoded.
  msg = CorruptionMessage(Decode(Unhex("53000002db01")));
  EXPECT_NE(msg.find("unknown message type 0x53 ('S')"), std::string::npos) << msg;
  msg = CorruptionMessage(Decode(std::string(1, '\xff')));
  EXPECT_NE(msg.find("unknown message type 0xff"), std::string::npos) << msg;
}

TEST(PgoutputDecode, UnknownColumnKindIsCorruption) {
  // kRecordedInsert with the second column's kind 't' replaced by 'x'.
  std::string bytes = Unhex(kRecordedInsert);
  ASSERT_EQ(bytes[14], 't');
  bytes[14] = 'x';
  const std::string msg = CorruptionMessage(Decode(bytes));
  EXPECT_EQ(msg, "pgoutput Insert: at offset 14: unknown column kind 0x78 ('x') (new tuple, column 2 of 4)");
  // Kind 0 too (a NUL is not 'n').
  bytes[14] = '\0';
  EXPECT_NE(CorruptionMessage(Decode(bytes)).find("unknown column kind 0x00"), std::string::npos);
}

TEST(PgoutputDecode, NegativeLengthsAreCorruption) {
  // Insert, one text column of length -1.
  std::string msg = CorruptionMessage(Decode(Unhex("49000040054e000174ffffffff")));
  EXPECT_NE(msg.find("negative column length -1"), std::string::npos) << msg;
  // Message with content length -2.
  msg = CorruptionMessage(Decode(Unhex("4d01000000000150bef8747600fffffffe")));
  EXPECT_NE(msg.find("negative content length -2"), std::string::npos) << msg;
}

TEST(PgoutputDecode, HugeCountsDoNotAllocate) {
  // 65535 tuple columns announced, 2 bytes present.
  std::string msg = CorruptionMessage(Decode(Unhex("49000040054effff6e6e")));
  EXPECT_NE(msg.find("tuple column count 65535 needs at least 65535 bytes, have 2"), std::string::npos) << msg;
  // 4294967295 truncated relations.
  msg = CorruptionMessage(Decode(Unhex("54ffffffff00000040")));
  EXPECT_NE(msg.find("relation count 4294967295 needs at least 17179869180 bytes, have 3"), std::string::npos) << msg;
  // A Relation announcing 65535 columns.
  msg =
      CorruptionMessage(Decode(Unhex("52000040057075626c6963007400"
                                     "64ffff016964000000001700")));
  EXPECT_NE(msg.find("column count 65535 needs at least"), std::string::npos) << msg;
  // A text value of 2^31-1 bytes with 1 byte present.
  msg = CorruptionMessage(Decode(Unhex("49000040054e0001747fffffff61")));
  EXPECT_NE(msg.find("need 2147483647 bytes for column value, have 1"), std::string::npos) << msg;
  // A Message with content of 2^31-1 bytes.
  msg = CorruptionMessage(Decode(Unhex("4d01000000000150bef87476007fffffff68")));
  EXPECT_NE(msg.find("need 2147483647 bytes for content, have 1"), std::string::npos) << msg;
}

TEST(PgoutputDecode, WrongTupleMarkersAreCorruption) {
  // Insert with 'K' instead of 'N'.
  std::string msg = CorruptionMessage(Decode(Unhex("49000040054b0000")));
  EXPECT_EQ(msg, "pgoutput Insert: at offset 5: expected new tuple marker 'N', got 0x4b ('K')");
  // Delete with 'N'.
  msg = CorruptionMessage(Decode(Unhex("44000040054e0000")));
  EXPECT_NE(msg.find("expected old tuple marker 'K' or 'O', got 0x4e ('N')"), std::string::npos) << msg;
  // Update: old key tuple followed by a second 'K' instead of 'N'.
  msg = CorruptionMessage(Decode(Unhex("55000040054b00004b0000")));
  EXPECT_EQ(msg, "pgoutput Update: at offset 8: expected new tuple marker 'N', got 0x4b ('K')");
  // Update with no marker at all.
  msg = CorruptionMessage(Decode(Unhex("55000040050000")));
  EXPECT_NE(msg.find("expected tuple marker 'K', 'O' or 'N', got 0x00"), std::string::npos) << msg;
}

TEST(PgoutputDecode, BadRelationFieldsAreCorruption) {
  // Replica identity 'x'.
  std::string msg = CorruptionMessage(Decode(Unhex("52000040057075626c69630074007800")));
  EXPECT_NE(msg.find("at offset 14: unknown replica identity 0x78 ('x')"), std::string::npos) << msg;
  // Namespace without its terminator.
  msg = CorruptionMessage(Decode(Unhex("52000040057075626c6963")));
  EXPECT_EQ(msg, "pgoutput Relation: at offset 5: unterminated string for namespace (6 bytes left, no NUL)");
}

TEST(PgoutputDecode, OutOfRangeCommitTimeIsCorruption) {
  // Begin with TimestampTz +infinity (INT64_MAX): shifting it to the Unix
  // epoch would overflow.
  std::string msg = CorruptionMessage(Decode(Unhex("42000000000150a2807fffffffffffffff000002db")));
  EXPECT_NE(msg.find("pgoutput Begin: at offset 9: commit timestamp 9223372036854775807 is out of range"),
            std::string::npos)
      << msg;
  // The smallest value is fine (no overflow downwards).
  Begin b = DecodeAs<Begin>(Bytes("42000000000150a2808000000000000000000002db"));
  EXPECT_EQ(b.commit_time, CommitTime::FromPostgres(std::numeric_limits<int64_t>::min()));
}

TEST(PgoutputDecode, EveryByteCorruptedGivesValueOrCorruption) {
  for (std::string_view hex : AllValidPgoutput()) {
    const std::string full = Unhex(hex);
    for (size_t i = 0; i < full.size(); ++i) {
      for (uint8_t b : {uint8_t{0x00}, uint8_t{0x7f}, uint8_t{0xff}}) {
        std::string bytes = full;
        bytes[i] = static_cast<char>(b);
        Result<Message> r = Decode(bytes);
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << hex << " byte " << i;
        }
      }
    }
  }
}

// --- Streaming replication protocol ---

TEST(ReplicationStream, XLogDataCarriesPayloadZeroCopy) {
  Result<StreamMessage> r = DecodeStream(kXLogData);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(std::holds_alternative<XLogData>(*r));
  const XLogData& x = std::get<XLogData>(*r);
  EXPECT_EQ(x.wal_start, Lsn(0x150A198));
  EXPECT_EQ(x.wal_end, Lsn(0x150A2B0));
  EXPECT_EQ(x.send_time, 0x000304387ebe8266);
  EXPECT_EQ(Hex(x.payload), kRecordedInsert);
  EXPECT_TRUE(PointsInto(x.payload, kXLogData));
  Result<Message> inner = Decode(x.payload);
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  EXPECT_EQ(std::get<Insert>(*inner).new_tuple[1].value, "alice");
}

TEST(ReplicationStream, XLogDataMayBeEmpty) {
  Result<StreamMessage> r = DecodeStream(kXLogDataEmpty);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(std::get<XLogData>(*r).payload.empty());
}

TEST(ReplicationStream, Keepalive) {
  Result<StreamMessage> r = DecodeStream(kKeepalive);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(std::holds_alternative<Keepalive>(*r));
  const Keepalive& k = std::get<Keepalive>(*r);
  EXPECT_EQ(k.wal_end, Lsn(0x150C3C0));
  EXPECT_EQ(k.send_time, 0x000304387f7a5c3a);
  EXPECT_TRUE(k.reply_requested);

  std::string no_reply = kKeepalive;
  no_reply.back() = '\0';
  r = DecodeStream(no_reply);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(std::get<Keepalive>(*r).reply_requested);
}

TEST(ReplicationStream, MalformedIsCorruption) {
  EXPECT_EQ(CorruptionMessage(DecodeStream("")), "replication stream: empty CopyData message");
  std::string msg = CorruptionMessage(DecodeStream("r" + std::string(33, '\0')));
  EXPECT_NE(msg.find("unknown CopyData message type 0x72 ('r')"), std::string::npos) << msg;
  std::string bad_flag = kKeepalive;
  bad_flag.back() = '\x02';
  msg = CorruptionMessage(DecodeStream(bad_flag));
  EXPECT_EQ(msg, "replication stream Keepalive: at offset 17: reply flag must be 0 or 1, got 0x02");
  msg = CorruptionMessage(DecodeStream(kKeepalive + "x"));
  EXPECT_NE(msg.find("trailing garbage: 1 bytes"), std::string::npos) << msg;
}

TEST(ReplicationStream, EveryStrictPrefixOfTheHeaderIsCorruption) {
  // A keepalive has no valid prefix; an XLogData's payload may be any length,
  // so only its 25-byte header must be complete.
  for (size_t len = 0; len < kKeepalive.size(); ++len) {
    const std::string prefix = kKeepalive.substr(0, len);
    EXPECT_EQ(DecodeStream(prefix).status().code(), StatusCode::kCorruption) << len;
  }
  for (size_t len = 0; len < kXLogDataEmpty.size(); ++len) {
    const std::string prefix = kXLogData.substr(0, len);
    EXPECT_EQ(DecodeStream(prefix).status().code(), StatusCode::kCorruption) << len;
  }
  EXPECT_EQ(CorruptionMessage(DecodeStream(kXLogData.substr(0, 20))),
            "replication stream XLogData: truncated at offset 17: need 8 bytes for send time, have 3");
}

// Reads the big-endian fields of a Standby Status Update back.
struct StatusUpdate {
  uint64_t write, flush, apply;
  int64_t client_time;
  uint8_t reply;
};
StatusUpdate ParseStatusUpdate(const std::string& bytes) {
  auto u64 = [&](size_t at) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(bytes[at + i]);
    return v;
  };
  return {u64(1), u64(9), u64(17), static_cast<int64_t>(u64(25)), static_cast<uint8_t>(bytes[33])};
}

TEST(ReplicationStream, StandbyStatusUpdateEncoding) {
  const std::string bytes = EncodeStandbyStatus(Lsn(0x150A2B0), Lsn(0x150A2B0), Lsn(0x150A280), 0x000304387ebe8266,
                                                /*reply_requested=*/false);
  EXPECT_EQ(Hex(bytes),
            "72"
            "000000000150a2b0"
            "000000000150a2b0"
            "000000000150a280"
            "000304387ebe8266"
            "00");
  EXPECT_EQ(Hex(EncodeStandbyStatus(Lsn(), Lsn(), Lsn(), 0, true)), "72" + std::string(64, '0') + "01");
}

TEST(ReplicationStream, StandbyStatusUpdateRoundTrip) {
  const Lsn write(0x123456789ABCDEF0ULL), flush(0xFEDCBA9876543210ULL), apply(1);
  const int64_t client_time = -5;  // before 2000: still encoded as two's complement
  for (bool reply : {false, true}) {
    const std::string bytes = EncodeStandbyStatus(write, flush, apply, client_time, reply);
    ASSERT_EQ(bytes.size(), 34u);
    EXPECT_EQ(bytes[0], 'r');
    const StatusUpdate s = ParseStatusUpdate(bytes);
    EXPECT_EQ(s.write, write.value());
    EXPECT_EQ(s.flush, flush.value());
    EXPECT_EQ(s.apply, apply.value());
    EXPECT_EQ(s.client_time, client_time);
    EXPECT_EQ(s.reply, reply ? 1 : 0);
  }
}

}  // namespace
}  // namespace timevault::capture::pgoutput
