// Unit tests of the Debezium-compatible encoder. Expected values are worked
// out independently (by hand, with Python's int.to_bytes/base64/datetime, or
// copied from Debezium documentation and real Debezium output quoted in
// docs/compat.md), never by calling the encoder's own helpers.
#include "timevault/capture/debezium.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace timevault::capture {
namespace {

constexpr std::string_view kToast = "\x01TOAST";  // marker for an unchanged-TOAST column in Row()

ColumnSchema Col(std::string name, uint32_t type_oid, std::string type_name, int32_t typmod = -1) {
  ColumnSchema c;
  c.name = std::move(name);
  c.type_oid = type_oid;
  c.type_name = std::move(type_name);
  c.type_modifier = typmod;
  return c;
}

ColumnSchema PkCol(std::string name, uint32_t type_oid, std::string type_name, int position = 0) {
  ColumnSchema c = Col(std::move(name), type_oid, std::move(type_name));
  c.primary_key = true;
  c.not_null = true;
  c.primary_key_position = position;
  return c;
}

TableSchema Table(std::vector<ColumnSchema> columns, uint32_t oid = 16384) {
  TableSchema t;
  t.relation_oid = oid;
  t.schema = "public";
  t.table = "t";
  t.topic = "tv.public.t";
  t.columns = std::move(columns);
  return t;
}

pgoutput::Tuple Row(std::initializer_list<std::optional<std::string_view>> values) {
  pgoutput::Tuple row;
  for (const auto& v : values) {
    pgoutput::TupleColumn c;
    if (!v)
      c.kind = pgoutput::ColumnKind::kNull;
    else if (*v == kToast)
      c.kind = pgoutput::ColumnKind::kUnchangedToast;
    else
      c.kind = pgoutput::ColumnKind::kText, c.value = *v;
    row.push_back(c);
  }
  return row;
}

SourceInfo Source() {
  SourceInfo s;
  s.name = "tv";
  s.db = "appdb";
  s.ts = CommitTime(1795749657123456);  // 2026-11-27T03:20:57.123456Z
  s.last_commit_lsn = Lsn(24023928);
  s.lsn = Lsn(24023976);
  s.schema = "public";
  s.table = "t";
  s.tx_id = 571;
  return s;
}

const CommitTime kNow(1795749660000001);

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

std::vector<std::string> Keys(const rapidjson::Value& obj) {
  std::vector<std::string> keys;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) keys.emplace_back(it->name.GetString());
  return keys;
}

// Encodes an insert of one row and returns the JSON (schemas disabled).
std::string Insert(const TableSchema& t, const pgoutput::Tuple& row, bool schemas = false) {
  EventEncoder enc({.schemas_enable = schemas});
  std::string out;
  const SourceInfo src = Source();
  Status s = enc.EncodeChange(t, Op::kCreate, nullptr, &row, src, nullptr, kNow, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// The raw JSON text of after.c for a one-column table "c".
std::string AfterC(const ColumnSchema& col, std::optional<std::string_view> text) {
  const std::string json = Insert(Table({col}), Row({text}));
  const std::string marker = "\"after\":{\"c\":";
  const size_t start = json.find(marker);
  EXPECT_NE(start, std::string::npos) << json;
  const size_t end = json.find(",\"source\":", start);
  return json.substr(start + marker.size(), end - 1 - start - marker.size());
}

ColumnSchema C(uint32_t type_oid, std::string type_name, int32_t typmod = -1) {
  return Col("c", type_oid, std::move(type_name), typmod);
}

int32_t NumericTypmod(int precision, int scale) { return ((precision << 16) | scale) + 4; }

// ------------------------------------------------------------- envelope --

TEST(EnvelopeTest, FieldOrderAndValues) {
  const std::string json =
      Insert(Table({PkCol("id", oid::kInt4, "int4"), Col("name", oid::kText, "text")}), Row({"1", "ann"}));
  auto d = Parse(json);
  EXPECT_EQ(Keys(d),
            (std::vector<std::string>{"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"}));
  EXPECT_TRUE(d["before"].IsNull());
  EXPECT_EQ(d["after"]["id"].GetInt(), 1);
  EXPECT_STREQ(d["after"]["name"].GetString(), "ann");
  EXPECT_TRUE(d["transaction"].IsNull());
  EXPECT_STREQ(d["op"].GetString(), "c");
  EXPECT_EQ(d["ts_ms"].GetInt64(), 1795749660000);
  EXPECT_EQ(d["ts_us"].GetInt64(), 1795749660000001);
  EXPECT_EQ(d["ts_ns"].GetInt64(), 1795749660000001000);
}

TEST(EnvelopeTest, SourceBlock) {
  auto d = Parse(Insert(Table({PkCol("id", oid::kInt4, "int4")}), Row({"1"})));
  const auto& s = d["source"];
  EXPECT_EQ(Keys(s),
            (std::vector<std::string>{"version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us",
                                      "ts_ns", "schema", "table", "txId", "lsn", "xmin", "origin", "origin_lsn"}));
  EXPECT_STREQ(s["version"].GetString(), "3.6.1.Final");
  EXPECT_STREQ(s["connector"].GetString(), "postgresql");
  EXPECT_STREQ(s["name"].GetString(), "tv");
  EXPECT_EQ(s["ts_ms"].GetInt64(), 1795749657123);
  EXPECT_STREQ(s["snapshot"].GetString(), "false");
  EXPECT_STREQ(s["db"].GetString(), "appdb");
  EXPECT_STREQ(s["sequence"].GetString(), "[\"24023928\",\"24023976\"]");
  EXPECT_EQ(s["ts_us"].GetInt64(), 1795749657123456);
  EXPECT_EQ(s["ts_ns"].GetInt64(), 1795749657123456000);
  EXPECT_STREQ(s["schema"].GetString(), "public");
  EXPECT_STREQ(s["table"].GetString(), "t");
  EXPECT_EQ(s["txId"].GetInt64(), 571);
  EXPECT_EQ(s["lsn"].GetInt64(), 24023976);
  EXPECT_TRUE(s["xmin"].IsNull());
  EXPECT_TRUE(s["origin"].IsNull());
  EXPECT_TRUE(s["origin_lsn"].IsNull());
}

TEST(EnvelopeTest, SnapshotRecordSequenceWithNullAndTransactionBlock) {
  EventEncoder enc({});
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4")});
  const auto row = Row({"7"});
  SourceInfo src = Source();
  src.snapshot = "first_in_data_collection";
  src.last_commit_lsn.reset();
  std::string out;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kRead, nullptr, &row, src, nullptr, kNow, &out).ok());
  auto d = Parse(out);
  EXPECT_STREQ(d["source"]["snapshot"].GetString(), "first_in_data_collection");
  EXPECT_STREQ(d["source"]["sequence"].GetString(), "[null,\"24023976\"]");
  EXPECT_STREQ(d["op"].GetString(), "r");

  const std::string id = TransactionId(571, Lsn(24023976));
  TransactionBlock tx{id, 2, 1};
  ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &row, Source(), &tx, kNow, &out).ok());
  d = Parse(out);
  EXPECT_EQ(Keys(d["transaction"]), (std::vector<std::string>{"id", "total_order", "data_collection_order"}));
  EXPECT_STREQ(d["transaction"]["id"].GetString(), "571:24023976");
  EXPECT_EQ(d["transaction"]["total_order"].GetInt64(), 2);
  EXPECT_EQ(d["transaction"]["data_collection_order"].GetInt64(), 1);
}

TEST(EnvelopeTest, UpdateDeleteTruncate) {
  EventEncoder enc({});
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), Col("v", oid::kText, "text")});
  const auto before = Row({"1", "old"});
  const auto after = Row({"1", "new"});
  std::string out;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &out).ok());
  auto d = Parse(out);
  EXPECT_STREQ(d["before"]["v"].GetString(), "old");
  EXPECT_STREQ(d["after"]["v"].GetString(), "new");
  EXPECT_STREQ(d["op"].GetString(), "u");
  ASSERT_TRUE(enc.EncodeChange(t, Op::kDelete, &before, nullptr, Source(), nullptr, kNow, &out).ok());
  d = Parse(out);
  EXPECT_TRUE(d["after"].IsNull());
  EXPECT_STREQ(d["op"].GetString(), "d");
  ASSERT_TRUE(enc.EncodeTruncate(t, Source(), nullptr, kNow, &out).ok());
  d = Parse(out);
  EXPECT_TRUE(d["before"].IsNull());
  EXPECT_TRUE(d["after"].IsNull());
  EXPECT_STREQ(d["op"].GetString(), "t");
}

// ---------------------------------------------------------------- types --

TEST(TypeMapTest, Integers) {
  EXPECT_EQ(AfterC(C(oid::kInt2, "int2"), "-32768"), "-32768");
  EXPECT_EQ(AfterC(C(oid::kInt4, "int4"), "2147483647"), "2147483647");
  EXPECT_EQ(AfterC(C(oid::kInt8, "int8"), "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(AfterC(C(oid::kOid, "oid"), "4294967295"), "4294967295");
  EXPECT_EQ(AfterC(C(oid::kInt4, "int4"), "0"), "0");
}

TEST(TypeMapTest, NumericWithPrecisionIsBase64TwosComplement) {
  const ColumnSchema c = C(oid::kNumeric, "numeric", NumericTypmod(10, 2));
  EXPECT_EQ(AfterC(c, "1234.50"), "\"AeI6\"");  // 123450 = 0x01E23A
  EXPECT_EQ(AfterC(c, "-1.00"), "\"nA==\"");    // -100 = 0x9C
  EXPECT_EQ(AfterC(c, "0.00"), "\"AA==\"");
  EXPECT_EQ(AfterC(c, "1.5"), "\"AJY=\"");  // rescaled to 150 = 0x0096
  const ColumnSchema s0 = C(oid::kNumeric, "numeric", NumericTypmod(5, 0));
  EXPECT_EQ(AfterC(s0, "127"), "\"fw==\"");
  EXPECT_EQ(AfterC(s0, "128"), "\"AIA=\"");
  EXPECT_EQ(AfterC(s0, "-128"), "\"gA==\"");
  EXPECT_EQ(AfterC(s0, "-129"), "\"/38=\"");
  const ColumnSchema big = C(oid::kNumeric, "numeric", NumericTypmod(39, 0));
  EXPECT_EQ(AfterC(big, "123456789012345678901234567890123456789"), "\"XODppWAV/sWq36MorjmBFQ==\"");
  EXPECT_EQ(AfterC(big, "-123456789012345678901234567890123456789"), "\"ox8WWp/qATpVIFzXUcZ+6w==\"");
}

TEST(TypeMapTest, NumericWithoutPrecisionIsVariableScaleDecimal) {
  const ColumnSchema c = C(oid::kNumeric, "numeric");
  EXPECT_EQ(AfterC(c, "1.500"), R"({"scale":1,"value":"Dw=="})");  // trailing zeros stripped
  EXPECT_EQ(AfterC(c, "100"), R"({"scale":0,"value":"ZA=="})");    // negative scale reset to 0
  EXPECT_EQ(AfterC(c, "-0.000"), R"({"scale":0,"value":"AA=="})");
  EXPECT_EQ(AfterC(c, "-0.5"), R"({"scale":1,"value":"+w=="})");
  EXPECT_EQ(AfterC(c, "123456789012345678901234567890123456789.5"),
            R"({"scale":1,"value":"A6DJIHXA2/O4rLxfls4/Ctc="})");
}

TEST(TypeMapTest, NumericNaNBecomesNullOrDefault) {
  // Precise mode cannot carry NaN: Debezium logs and leaves the field null.
  EXPECT_EQ(AfterC(C(oid::kNumeric, "numeric", NumericTypmod(10, 2)), "NaN"), "null");
  EXPECT_EQ(AfterC(C(oid::kNumeric, "numeric"), "Infinity"), "null");
  ColumnSchema d = C(oid::kNumeric, "numeric", NumericTypmod(10, 2));
  d.default_expression = "1.5";
  EXPECT_EQ(AfterC(d, "NaN"), "\"AJY=\"");  // JsonConverter writes the default instead
}

TEST(TypeMapTest, FloatsAsJavaPrintsThem) {
  const ColumnSchema d = C(oid::kFloat8, "float8");
  EXPECT_EQ(AfterC(d, "1.5"), "1.5");
  EXPECT_EQ(AfterC(d, "100"), "100.0");
  EXPECT_EQ(AfterC(d, "1e+20"), "1.0E20");
  EXPECT_EQ(AfterC(d, "1e-05"), "1.0E-5");
  EXPECT_EQ(AfterC(d, "0.001"), "0.001");
  EXPECT_EQ(AfterC(d, "1234567.5"), "1234567.5");
  EXPECT_EQ(AfterC(d, "12345678"), "1.2345678E7");
  EXPECT_EQ(AfterC(d, "-0"), "-0.0");
  EXPECT_EQ(AfterC(d, "0.1"), "0.1");
  EXPECT_EQ(AfterC(d, "NaN"), "\"NaN\"");
  EXPECT_EQ(AfterC(d, "Infinity"), "\"Infinity\"");
  EXPECT_EQ(AfterC(d, "-Infinity"), "\"-Infinity\"");
  const ColumnSchema f = C(oid::kFloat4, "float4");
  EXPECT_EQ(AfterC(f, "1.1"), "1.1");  // Float.toString, not the widened double
  EXPECT_EQ(AfterC(f, "3.4028235e+38"), "3.4028235E38");
  EXPECT_EQ(AfterC(f, "-2.5"), "-2.5");
}

TEST(TypeMapTest, BooleanAndStrings) {
  EXPECT_EQ(AfterC(C(oid::kBool, "bool"), "t"), "true");
  EXPECT_EQ(AfterC(C(oid::kBool, "bool"), "f"), "false");
  EXPECT_EQ(AfterC(C(oid::kText, "text"), ""), "\"\"");
  EXPECT_EQ(AfterC(C(oid::kBpchar, "bpchar", 9), "ab   "), "\"ab   \"");  // padding kept
  EXPECT_EQ(AfterC(C(oid::kVarchar, "varchar", 14), "h\xC3\xA9llo \xE2\x9C\x93"), "\"h\xC3\xA9llo \xE2\x9C\x93\"");
  // Control characters escaped as Jackson does (\b \t \n \f \r, else \u00XX uppercase).
  EXPECT_EQ(AfterC(C(oid::kText, "text"), "a\x01\t\n\x1F\"\\/"), R"("a\u0001\t\n\u001F\"\\/")");
}

TEST(TypeMapTest, ByteaIsBase64) {
  EXPECT_EQ(AfterC(C(oid::kBytea, "bytea"), "\\x0a0b"), "\"Cgs=\"");
  EXPECT_EQ(AfterC(C(oid::kBytea, "bytea"), "\\x"), "\"\"");
  EXPECT_EQ(AfterC(C(oid::kBytea, "bytea"), "\\xDEADBEEF"), "\"3q2+7w==\"");
}

TEST(TypeMapTest, DateAsEpochDays) {
  const ColumnSchema c = C(oid::kDate, "date");
  EXPECT_EQ(AfterC(c, "1970-01-01"), "0");
  EXPECT_EQ(AfterC(c, "2024-02-29"), "19782");
  EXPECT_EQ(AfterC(c, "1969-12-31"), "-1");
  EXPECT_EQ(AfterC(c, "0001-01-01"), "-719162");
  EXPECT_EQ(AfterC(c, "0044-03-15 BC"), "-735160");
  EXPECT_EQ(AfterC(c, "infinity"), "-2147472692");  // Debezium's LocalDate stand-in
}

TEST(TypeMapTest, TimeIsAdaptive) {
  EXPECT_EQ(AfterC(C(oid::kTime, "time"), "13:45:00.123456"), "49500123456");  // default precision 6
  EXPECT_EQ(AfterC(C(oid::kTime, "time"), "24:00:00"), "86400000000");
  EXPECT_EQ(AfterC(C(oid::kTime, "time", 3), "13:45:00.123"), "49500123");  // Time: ms
  EXPECT_EQ(AfterC(C(oid::kTime, "time", 0), "00:00:01"), "1000");
}

TEST(TypeMapTest, TimestampIsAdaptive) {
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp"), "2024-01-02 03:04:05.678901"), "1704164645678901");
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp"), "1969-12-31 23:59:59.5"), "-500000");
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp", 3), "1969-12-31 23:59:59.5"), "-500");
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp"), "infinity"), "9223372036825200000");
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp"), "-infinity"), "-9223372036832400000");
  // 0044-03-15 BC is day -735160.
  EXPECT_EQ(AfterC(C(oid::kTimestamp, "timestamp"), "0044-03-15 00:00:01 BC"), "-63517823999000000");
}

// Postgres timestamps reach 294276-12-31, past the last int64 microsecond
// (294247-01-10 04:00:54.775807). Expected values: what Debezium 3.6.1
// wrote for the same rows (tests/compat/workload.sql, table ts_extremes),
// i.e. MicroTimestamp's TimeUnit.SECONDS.toMicros (saturating) plus the
// micro-of-second in Java's wrapping long addition.
TEST(TypeMapTest, TimestampsBeyondTheLastInt64MicrosecondAsDebeziumWritesThem) {
  const ColumnSchema micro = C(oid::kTimestamp, "timestamp");
  const ColumnSchema milli = C(oid::kTimestamp, "timestamp", 3);
  const ColumnSchema sec = C(oid::kTimestamp, "timestamp", 0);
  EXPECT_EQ(AfterC(micro, "294247-01-10 04:00:54.775807"), "9223372036854775807");
  EXPECT_EQ(AfterC(micro, "294247-01-10 04:00:54.775808"), "-9223372036854775808");  // wrapped
  EXPECT_EQ(AfterC(micro, "294247-01-10 04:00:55"), "9223372036854775807");          // saturated
  EXPECT_EQ(AfterC(micro, "294276-12-31 23:59:59.999999"), "-9223372036853775810");  // saturated, wrapped
  EXPECT_EQ(AfterC(micro, "200000-01-01 00:00:00"), "6249223180800000000");
  EXPECT_EQ(AfterC(micro, "100000-06-15 12:00:00.5"), "3093542366400500000");
  EXPECT_EQ(AfterC(micro, "4713-01-01 00:00:00 BC"), "-210863520000000000");
  EXPECT_EQ(AfterC(micro, "0001-01-01 00:00:00 BC"), "-62167219200000000");
  // Milliseconds are exact over the whole range.
  EXPECT_EQ(AfterC(milli, "294247-01-10 04:00:54.776"), "9223372036854776");
  EXPECT_EQ(AfterC(milli, "294276-12-31 23:59:59.999"), "9224318015999999");
  EXPECT_EQ(AfterC(sec, "294276-12-31 23:59:59"), "9224318015999000");
  EXPECT_EQ(AfterC(milli, "4713-01-01 00:00:00.001 BC"), "-210863519999999");
  EXPECT_EQ(AfterC(milli, "0044-03-15 12:00:00.123 BC"), "-63517780799877");
  EXPECT_EQ(AfterC(sec, "0001-12-31 23:59:59 BC"), "-62135596801000");
  EXPECT_EQ(AfterC(milli, "infinity"), "9223372036825200");
  EXPECT_EQ(AfterC(sec, "-infinity"), "-9223372036832400");
  // timestamptz is an ISO string: exact, years with a sign past 9999 or before 0.
  const ColumnSchema tz = C(oid::kTimestamptz, "timestamptz");
  EXPECT_EQ(AfterC(tz, "294276-12-31 23:59:59.999999+00"), "\"+294276-12-31T23:59:59.999999Z\"");
  // The last timestamptz as servers west and east of UTC print it.
  EXPECT_EQ(AfterC(tz, "294276-12-31 20:59:59.999999-03"), "\"+294276-12-31T23:59:59.999999Z\"");
  EXPECT_EQ(AfterC(tz, "294277-01-01 13:59:59.999999+14"), "\"+294276-12-31T23:59:59.999999Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimestamptz, "timestamptz", 3), "294247-01-10 04:00:54.776+00"),
            "\"+294247-01-10T04:00:54.776Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimestamptz, "timestamptz", 0), "294276-12-31 23:59:59+00"), "\"+294276-12-31T23:59:59Z\"");
  EXPECT_EQ(AfterC(tz, "4713-01-01 00:00:00+00 BC"), "\"-4712-01-01T00:00:00.000000Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimestamptz, "timestamptz", 3), "0044-03-15 12:00:00.123+00 BC"),
            "\"-0043-03-15T12:00:00.123Z\"");
  EXPECT_EQ(AfterC(tz, "0001-01-01 00:00:00+00 BC"), "\"0000-01-01T00:00:00.000000Z\"");
  // Dates: int32 days (Postgres's last date fits).
  EXPECT_EQ(AfterC(C(oid::kDate, "date"), "5874897-12-31"), "2145042905");
  EXPECT_EQ(AfterC(C(oid::kDate, "date"), "4713-01-01 BC"), "-2440550");
  EXPECT_EQ(AfterC(C(oid::kDate, "date"), "-infinity"), "-2147472691");
}

// varbit(1) maps to boolean; B'' has no bit. Debezium 3.6.1 logs "Failed to
// properly convert data value for 'public.defs.vb' of type varbit" and
// writes null (tests/compat: table bits); a longer varbit gives empty bytes.
TEST(TypeMapTest, EmptyVarbitOfLengthOneIsNull) {
  constexpr uint32_t kVarbit = 1562;
  EXPECT_EQ(AfterC(C(kVarbit, "varbit", 1), ""), "null");
  EXPECT_EQ(AfterC(C(kVarbit, "varbit", 1), "1"), "true");
  EXPECT_EQ(AfterC(C(kVarbit, "varbit", 3), ""), "\"\"");
  EXPECT_EQ(AfterC(C(kVarbit, "varbit", 3), "101"), "\"BQ==\"");
  ColumnSchema with_default = C(kVarbit, "varbit", 1);
  with_default.default_expression = "B'1'::bit varying";
  EXPECT_EQ(AfterC(with_default, ""), "true");  // an unset field: JsonConverter writes the default
  ColumnSchema not_null = C(kVarbit, "varbit", 1);
  not_null.not_null = true;
  EXPECT_EQ(AfterC(not_null, ""), "false");  // the converter's fallback
}

TEST(TypeMapTest, AbsurdDateTimeTextIsRefusedNotOverflowed) {
  EventEncoder enc({});
  std::string out;
  for (const char* text : {"999999999999999999-01-01 00:00:00", "100000000-01-01 00:00:00", "2024-01-01 25:00:00"}) {
    const auto row = Row({text});
    EXPECT_EQ(enc.EncodeChange(Table({Col("t", oid::kTimestamp, "timestamp")}), Op::kCreate, nullptr, &row, Source(),
                               nullptr, kNow, &out)
                  .code(),
              StatusCode::kInvalidArgument)
        << text;
  }
  const auto offset = Row({"2024-01-01 00:00:00+999999999999"});
  EXPECT_EQ(enc.EncodeChange(Table({Col("t", oid::kTimestamptz, "timestamptz")}, 2), Op::kCreate, nullptr, &offset,
                             Source(), nullptr, kNow, &out)
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(TypeMapTest, TimestamptzIsUtcIsoPaddedToColumnPrecision) {
  const ColumnSchema c = C(oid::kTimestamptz, "timestamptz");
  EXPECT_EQ(AfterC(c, "2024-01-02 03:04:05.678+01"), "\"2024-01-02T02:04:05.678000Z\"");
  EXPECT_EQ(AfterC(c, "2024-01-02 03:04:05+05:30"), "\"2024-01-01T21:34:05.000000Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimestamptz, "timestamptz", 3), "2024-01-02 03:04:05.5-02"), "\"2024-01-02T05:04:05.500Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimestamptz, "timestamptz", 0), "1969-12-31 23:59:59+00"), "\"1969-12-31T23:59:59Z\"");
  EXPECT_EQ(AfterC(c, "infinity"), "\"infinity\"");
  EXPECT_EQ(AfterC(c, "-infinity"), "\"-infinity\"");
}

TEST(TypeMapTest, TimetzIsUtcIso) {
  EXPECT_EQ(AfterC(C(oid::kTimetz, "timetz"), "13:45:00.5+05:30"), "\"08:15:00.5Z\"");
  EXPECT_EQ(AfterC(C(oid::kTimetz, "timetz"), "01:00:00-02"), "\"03:00:00Z\"");
}

TEST(TypeMapTest, IntervalAsMicroDuration) {
  const ColumnSchema c = C(oid::kInterval, "interval");
  // ((1*12+2)*30.4375 + 3) days, 04:05:06.789, in doubles as Debezium does.
  EXPECT_EQ(AfterC(c, "1 year 2 mons 3 days 04:05:06.789"), "37091106789000");
  EXPECT_EQ(AfterC(c, "-1 days -02:00:00"), "-93600000000");
  EXPECT_EQ(AfterC(c, "1 mon"), "2629800000000");  // 30.4375 days
  EXPECT_EQ(AfterC(c, "-00:00:01.5"), "-1500000");
  EXPECT_EQ(AfterC(c, "-1 years -2 mons +3 days -04:05:06.789"), "-36572706789000");
  EXPECT_EQ(AfterC(c, "00:00:00"), "0");
  // Other IntervalStyles are refused rather than misread.
  EventEncoder enc({});
  std::string out;
  for (std::string_view text : {"P1Y2M", "1-2"}) {
    const auto row = Row({text});
    EXPECT_EQ(enc.EncodeChange(Table({c}), Op::kCreate, nullptr, &row, Source(), nullptr, kNow, &out).code(),
              StatusCode::kInvalidArgument)
        << text;
  }
}

TEST(TypeMapTest, UuidJsonEnum) {
  EXPECT_EQ(AfterC(C(oid::kUuid, "uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
  EXPECT_EQ(AfterC(C(oid::kJsonb, "jsonb"), "{\"a\": [1, 2]}"), R"("{\"a\": [1, 2]}")");
  ColumnSchema e = C(90000, "mood");
  e.type_category = 'E';
  e.enum_labels = {"sad", "ok", "happy"};
  EXPECT_EQ(AfterC(e, "happy"), "\"happy\"");
}

TEST(TypeMapTest, Arrays) {
  EXPECT_EQ(AfterC(C(oid::kInt4Array, "_int4"), "{1,NULL,-3}"), "[1,null,-3]");
  EXPECT_EQ(AfterC(C(oid::kInt8Array, "_int8"), "{}"), "[]");
  EXPECT_EQ(AfterC(C(oid::kTextArray, "_text"), R"({a,"b c","q\"x\\y",NULL,"NULL",""})"),
            R"(["a","b c","q\"x\\y",null,"NULL",""])");
  EXPECT_EQ(AfterC(C(oid::kInt4Array, "_int4"), "{{1,2},{3,4}}"), "[null,null]");  // multi-dimensional
  EXPECT_EQ(AfterC(C(1231, "_numeric", NumericTypmod(5, 1)), "{1.5,-2.0}"), R"(["Dw==","7A=="])");
}

TEST(TypeMapTest, NullsDefaultsAndNotNullFallbacks) {
  EXPECT_EQ(AfterC(C(oid::kInt4, "int4"), std::nullopt), "null");
  ColumnSchema d = C(oid::kInt4, "int4");
  d.default_expression = "0";
  EXPECT_EQ(AfterC(d, std::nullopt), "0");  // JsonConverter replaces null with the default
  // A NOT NULL column's null (before image under REPLICA IDENTITY DEFAULT)
  // becomes Debezium's fallback.
  EventEncoder enc({});
  ColumnSchema n1 = Col("n", oid::kText, "text");
  n1.not_null = true;
  ColumnSchema n2 = Col("ts", oid::kTimestamptz, "timestamptz");
  n2.not_null = true;
  ColumnSchema n3 = Col("amount", oid::kNumeric, "numeric", NumericTypmod(10, 2));
  n3.not_null = true;
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), n1, n2, n3});
  const auto before = Row({"1", std::nullopt, std::nullopt, std::nullopt});
  std::string out;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kDelete, &before, nullptr, Source(), nullptr, kNow, &out).ok());
  EXPECT_NE(out.find(R"("before":{"id":1,"n":"","ts":"1970-01-01T00:00:00Z","amount":"AA=="})"), std::string::npos)
      << out;
}

// The __timevault.nulls header: which fields hold a default (or NOT NULL
// fallback) although the tuple had NULL. The value bytes stay Debezium's.
TEST(NullsHeaderTest, NamesNullsWrittenAsDefaultsPerImage) {
  EventEncoder enc({});
  ColumnSchema note = Col("note", oid::kText, "text");
  note.default_expression = "'x'::text";
  ColumnSchema ts = Col("ts", oid::kTimestamptz, "timestamptz");
  ts.default_expression = "now()";                        // a function: Debezium's placeholder, the epoch
  ColumnSchema plain = Col("plain", oid::kInt4, "int4");  // nullable, no default
  ColumnSchema qty = Col("q\"ty", oid::kInt4, "int4");    // a name JSON must escape
  qty.default_expression = "5";
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), note, ts, plain, qty});
  std::string out, header = "stale";

  // NULLs in defaulted columns: listed; the JSON holds the defaults.
  const auto nulls = Row({"1", std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &nulls, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, R"({"after":["note","ts","q\"ty"]})");
  EXPECT_NE(out.find(R"("after":{"id":1,"note":"x","ts":"1970-01-01T00:00:00.000000Z","plain":null,"q\"ty":5})"),
            std::string::npos)
      << out;

  // The defaults' own values, given explicitly, are values: no header.
  const auto values = Row({"1", "x", "1970-01-01 00:00:00+00", "7", "5"});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &values, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, "");

  // A NULL in a column without default stays null in the JSON: no header.
  const auto plain_null = Row({"1", "y", "2024-01-01 00:00:00+00", std::nullopt, "6"});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &plain_null, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, "");

  // Both images (REPLICA IDENTITY FULL update), each with its own list.
  const auto before = Row({"1", "y", std::nullopt, "7", std::nullopt});
  const auto after = Row({"1", std::nullopt, "2024-01-01 00:00:00+00", "7", "6"});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, R"({"before":["ts","q\"ty"],"after":["note"]})");

  // Without the out-parameter the event is the same.
  std::string without;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &without).ok());
  EXPECT_EQ(without, out);
}

TEST(NullsHeaderTest, NotNullFallbacksOfAKeyOnlyBeforeImageAreListed) {
  // REPLICA IDENTITY DEFAULT: a delete's old tuple has the key only; the NOT
  // NULL columns become "" / epoch / 0 in Debezium's JSON.
  EventEncoder enc({});
  ColumnSchema name = Col("name", oid::kText, "text");
  name.not_null = true;
  ColumnSchema note = Col("note", oid::kText, "text");  // nullable, no default: already null
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), name, note});
  const auto before = Row({"1", std::nullopt, std::nullopt});
  std::string out, header;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kDelete, &before, nullptr, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_NE(out.find(R"("before":{"id":1,"name":"","note":null})"), std::string::npos) << out;
  EXPECT_EQ(header, R"({"before":["name"]})");
}

TEST(NullsHeaderTest, OnlyRealNullsAreListed) {
  // numeric NaN and unchanged TOAST of a type without placeholder are written
  // as the default too, but they were not NULL: not listed.
  EventEncoder enc({});
  ColumnSchema amount = Col("amount", oid::kNumeric, "numeric", NumericTypmod(10, 2));
  amount.default_expression = "1.50";
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), amount});
  const auto nan = Row({"1", "NaN"});
  std::string out, header;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &nan, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_STREQ(Parse(out)["after"]["amount"].GetString(), "AJY=");  // 150 at scale 2: the default
  EXPECT_EQ(header, "");
  const auto toast = Row({"1", kToast});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, nullptr, &toast, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, "");
}

TEST(NullsHeaderTest, TruncateAndKeysHaveNone) {
  EventEncoder enc({});
  ColumnSchema note = Col("note", oid::kText, "text");
  note.default_expression = "'x'::text";
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), note});
  std::string out, header = "stale";
  ASSERT_TRUE(enc.EncodeChange(t, Op::kTruncate, nullptr, nullptr, Source(), nullptr, kNow, &out, &header).ok());
  EXPECT_EQ(header, "");
}

// The __timevault.text header (kTextHeader): Postgres's text of the columns
// whose Debezium value loses information or is absent.

// The kTextHeader of an insert of `value` into a one-column table "c" ("" if none).
std::string TextHeaderOf(const ColumnSchema& col, std::optional<std::string_view> value) {
  EventEncoder enc({});
  const auto row = Row({value});
  std::string out, nulls, text = "stale";
  const Status s =
      enc.EncodeChange(Table({col}), Op::kCreate, nullptr, &row, Source(), nullptr, kNow, &out, &nulls, &text);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return text;
}

// The header for a column listed with `value` as its text.
std::string Listed(std::string_view value) { return R"({"after":{"c":")" + std::string(value) + R"("}})"; }

TEST(TextHeaderTest, ColumnsDebeziumLeavesOutAreListedWithTheirTextOrNull) {
  EXPECT_EQ(TextHeaderOf(C(603, "box"), "(1,2)"), Listed("(1,2)"));
  EXPECT_EQ(TextHeaderOf(C(16999, "my_composite"), R"((1,"a b"))"), R"x({"after":{"c":"(1,\"a b\")"}})x");
  EXPECT_EQ(TextHeaderOf(C(1187, "_interval"), "{\"1 mon\"}"), R"({"after":{"c":"{\"1 mon\"}"}})");
  EXPECT_EQ(TextHeaderOf(C(603, "box"), std::nullopt), R"({"after":{"c":null}})");
}

TEST(TextHeaderTest, TypesWhoseMappingIsLossyAreAlwaysListed) {
  EXPECT_EQ(TextHeaderOf(C(oid::kInterval, "interval"), "1 mon"), Listed("1 mon"));
  EXPECT_EQ(TextHeaderOf(C(oid::kTimetz, "timetz"), "13:45:00+05:30"), Listed("13:45:00+05:30"));
  EXPECT_EQ(TextHeaderOf(C(1562, "varbit"), "0011"), Listed("0011"));
  EXPECT_EQ(TextHeaderOf(C(1562, "varbit", 8), "0011"), Listed("0011"));
  EXPECT_EQ(TextHeaderOf(C(oid::kName, "name"), "pg_class"), Listed("pg_class"));
  EXPECT_EQ(TextHeaderOf(C(142, "xml"), "<a/>"), Listed("<a/>"));
  EXPECT_EQ(TextHeaderOf(C(oid::kNumeric, "numeric"), "1.500"), Listed("1.500"));
  EXPECT_EQ(TextHeaderOf(C(790, "money"), "$1.50"), Listed("$1.50"));
  EXPECT_EQ(TextHeaderOf(C(1231, "_numeric"), "{1.50}"), Listed("{1.50}"));
  ColumnSchema domain_array = C(oid::kTextArray, "_text");
  domain_array.is_domain = true;
  EXPECT_EQ(TextHeaderOf(domain_array, "{a,b}"), Listed("{a,b}"));
  // A NULL of a lossy type is listed as null: the row image cannot say.
  EXPECT_EQ(TextHeaderOf(C(oid::kInterval, "interval"), std::nullopt), R"({"after":{"c":null}})");
}

TEST(TextHeaderTest, ExactTypesAreNotListed) {
  EXPECT_EQ(TextHeaderOf(C(oid::kText, "text"), "a"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kInt8, "int8"), "-5"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kFloat8, "float8"), "NaN"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kNumeric, "numeric", NumericTypmod(10, 2)), "1.50"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kTimestamptz, "timestamptz"), "2024-01-01 00:00:00+00"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kTimestamp, "timestamp"), "2024-01-01 00:00:00.5"), "");
  EXPECT_EQ(TextHeaderOf(C(1560, "bit", 4), "0011"), "");
  EXPECT_EQ(TextHeaderOf(C(3904, "int4range"), "[1,5)"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kTextArray, "_text"), R"({"{{x"})"), "");  // a quoted element, one dimension
  ColumnSchema domain = C(oid::kText, "text");  // a domain over a scalar maps as its base type
  domain.is_domain = true;
  EXPECT_EQ(TextHeaderOf(domain, "a"), "");
  EXPECT_EQ(TextHeaderOf(C(oid::kText, "text"), std::nullopt), "");
}

TEST(TextHeaderTest, ValuesDebeziumCannotHoldAreListed) {
  const ColumnSchema num = C(oid::kNumeric, "numeric", NumericTypmod(10, 2));
  EXPECT_EQ(TextHeaderOf(num, "NaN"), Listed("NaN"));
  EXPECT_EQ(TextHeaderOf(num, "Infinity"), Listed("Infinity"));
  EXPECT_EQ(TextHeaderOf(num, "-Infinity"), Listed("-Infinity"));
  EXPECT_EQ(TextHeaderOf(num, std::nullopt), "");
  const ColumnSchema ints = C(oid::kInt4Array, "_int4");
  EXPECT_EQ(TextHeaderOf(ints, "{{1,2},{3,4}}"), Listed("{{1,2},{3,4}}"));
  EXPECT_EQ(TextHeaderOf(ints, "[0:1]={5,6}"), Listed("[0:1]={5,6}"));
  EXPECT_EQ(TextHeaderOf(ints, "{5,6}"), "");
  const ColumnSchema nums = C(1231, "_numeric", NumericTypmod(10, 2));
  EXPECT_EQ(TextHeaderOf(nums, "{1.00,NaN}"), Listed("{1.00,NaN}"));
  EXPECT_EQ(TextHeaderOf(nums, "{1.00,NULL}"), "");
  // timestamp(4..6): exact up to 294247-01-10 04:00:54.775807 except the
  // value that is Debezium's stand-in for infinity (04:00:25.2).
  const ColumnSchema ts = C(oid::kTimestamp, "timestamp");
  EXPECT_EQ(TextHeaderOf(ts, "294247-01-10 04:00:54.775807"), "");
  EXPECT_EQ(TextHeaderOf(ts, "294247-01-10 04:00:54.775808"), Listed("294247-01-10 04:00:54.775808"));
  EXPECT_EQ(TextHeaderOf(ts, "294276-12-31 23:59:59.999999"), Listed("294276-12-31 23:59:59.999999"));
  EXPECT_EQ(TextHeaderOf(ts, "294247-01-10 04:00:25.2"), Listed("294247-01-10 04:00:25.2"));
  EXPECT_EQ(TextHeaderOf(ts, "infinity"), "");
  EXPECT_EQ(TextHeaderOf(ts, "4713-01-01 00:00:00 BC"), "");
  EXPECT_EQ(TextHeaderOf(C(1115, "_timestamp"), R"({"2024-01-01 00:00:00","294276-12-31 23:59:59"})"),
            Listed(R"({\"2024-01-01 00:00:00\",\"294276-12-31 23:59:59\"})"));
  EXPECT_EQ(TextHeaderOf(C(oid::kTimestamp, "timestamp", 3), "294276-12-31 23:59:59.999"), "");  // ms: exact
  // An empty varbit(1) cannot become Debezium's boolean; "0" and "1" can.
  EXPECT_EQ(TextHeaderOf(C(1562, "varbit", 1), ""), Listed(""));
  EXPECT_EQ(TextHeaderOf(C(1562, "varbit", 1), "0"), "");
}

TEST(TextHeaderTest, PerImageOnlyListedColumnsAndNeverUnchangedToast) {
  EventEncoder enc({});
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), Col("span", oid::kInterval, "interval"),
                               Col("note", oid::kText, "text"), Col("doc", 1562, "varbit")});
  const auto before = Row({"1", "1 mon", "a", "0101"});
  const auto after = Row({"1", std::nullopt, "b", kToast});
  std::string out, nulls, text;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &out, &nulls, &text).ok());
  EXPECT_EQ(text, R"({"before":{"span":"1 mon","doc":"0101"},"after":{"span":null}})");
  // The value bytes are Debezium's with or without the header asked for.
  std::string without;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &without).ok());
  EXPECT_EQ(without, out);
  // A delete lists its before image only; an event without lossy columns, none.
  ASSERT_TRUE(enc.EncodeChange(t, Op::kDelete, &before, nullptr, Source(), nullptr, kNow, &out, &nulls, &text).ok());
  EXPECT_EQ(text, R"({"before":{"span":"1 mon","doc":"0101"}})");
  const auto plain = Row({"2", kToast, "c", kToast});
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, nullptr, &plain, Source(), nullptr, kNow, &out, &nulls, &text).ok());
  EXPECT_EQ(text, "");
  ASSERT_TRUE(enc.EncodeChange(t, Op::kTruncate, nullptr, nullptr, Source(), nullptr, kNow, &out, &nulls, &text).ok());
  EXPECT_EQ(text, "");
}

TEST(TextHeaderTest, TextIsJsonEscaped) {
  EXPECT_EQ(TextHeaderOf(C(603, "box"), "a\"\\\n\x01é"), R"({"after":{"c":"a\"\\\n\u0001é"}})");
}

TEST(TypeMapTest, UnchangedToastPlaceholders) {
  const std::string placeholder_b64 = "\"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==\"";
  EXPECT_EQ(AfterC(C(oid::kText, "text"), kToast), "\"__debezium_unavailable_value\"");
  EXPECT_EQ(AfterC(C(oid::kJsonb, "jsonb"), kToast), "\"__debezium_unavailable_value\"");
  EXPECT_EQ(AfterC(C(oid::kBytea, "bytea"), kToast), placeholder_b64);
  EXPECT_EQ(AfterC(C(oid::kTextArray, "_text"), kToast), "[\"__debezium_unavailable_value\"]");
  EXPECT_EQ(AfterC(C(oid::kInt4Array, "_int4"), kToast),
            "[95,95,100,101,98,101,122,105,117,109,95,117,110,97,118,97,105,108,97,98,108,101,95,118,97,108,117,101]");
  EXPECT_EQ(AfterC(C(oid::kNumeric, "numeric"), kToast), "null");

  // With the old value in the before image (REPLICA IDENTITY FULL) it is reused.
  EventEncoder enc({});
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4"), Col("doc", oid::kText, "text")});
  const auto before = Row({"1", "long text"});
  const auto after = Row({"1", kToast});
  std::string out;
  ASSERT_TRUE(enc.EncodeChange(t, Op::kUpdate, &before, &after, Source(), nullptr, kNow, &out).ok());
  EXPECT_STREQ(Parse(out)["after"]["doc"].GetString(), "long text");
}

TEST(TypeMapTest, UnsupportedTypesAreLeftOut) {
  const std::string json = Insert(Table({PkCol("id", oid::kInt4, "int4"), Col("p", 603, "box")}), Row({"1", "(1,2)"}));
  EXPECT_EQ(Keys(Parse(json)["after"]), std::vector<std::string>{"id"});
}

TEST(TypeMapTest, BadValueNamesTableColumnTypeAndValue) {
  EventEncoder enc({});
  const TableSchema t = Table({PkCol("id", oid::kInt4, "int4")});
  const std::string long_value(300, '9');
  const auto row = Row({long_value});
  std::string out;
  Status s = enc.EncodeChange(t, Op::kCreate, nullptr, &row, Source(), nullptr, kNow, &out);
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("public.t.id (int4)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::string(100, '9') + "..."), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(std::string(101, '9')), std::string::npos) << s.message();
  const auto bad_date = Row({"x"});
  EXPECT_EQ(enc.EncodeChange(Table({Col("d", oid::kDate, "date")}, 2), Op::kCreate, nullptr, &bad_date, Source(),
                             nullptr, kNow, &out)
                .code(),
            StatusCode::kInvalidArgument);
}

// ------------------------------------------------------- extension types --

ColumnSchema Ext(std::string type_name) { return Col("c", 16500, std::move(type_name)); }

TEST(TypeMapTest, HstoreIsAJsonObjectStringInJavaHashMapOrder) {
  // String.hashCode: "a" 97 -> bucket 1, "b" 98 -> 2, "key" 106079 -> 106079^1 = 106078 & 15 = 14.
  EXPECT_EQ(AfterC(Ext("hstore"), R"("b"=>"2", "a"=>"1", "key"=>NULL)"), R"("{\"a\":\"1\",\"b\":\"2\",\"key\":null}")");
  EXPECT_EQ(AfterC(Ext("hstore"), R"("q\"x"=>"back\\slash")"), R"("{\"q\\\"x\":\"back\\\\slash\"}")");
  EXPECT_EQ(AfterC(Ext("hstore"), ""), R"("{}")");
  EXPECT_EQ(TextHeaderOf(Ext("hstore"), R"("a"=>"1")"), R"x({"after":{"c":"\"a\"=>\"1\""}})x");
  const std::string schema = Insert(Table({Ext("hstore")}), Row({R"("a"=>"1")"}), true);
  EXPECT_NE(schema.find(R"({"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"c"})"),
            std::string::npos)
      << schema;
}

TEST(TypeMapTest, CitextLtreeIsbnAreStrings) {
  EXPECT_EQ(AfterC(Ext("citext"), "MiXeD"), R"("MiXeD")");
  EXPECT_EQ(AfterC(Ext("isbn"), "978-0-393-04002-9"), R"("978-0-393-04002-9")");
  EXPECT_EQ(AfterC(Ext("ltree"), "Top.Science"), R"("Top.Science")");
  const std::string schema = Insert(Table({Ext("ltree")}), Row({"a.b"}), true);
  EXPECT_NE(schema.find(R"({"type":"string","optional":true,"name":"io.debezium.data.Ltree","version":1,"field":"c"})"),
            std::string::npos)
      << schema;
  // Extension types ride in the fidelity header too (replay's type table
  // knows types by OID; these have none fixed).
  EXPECT_EQ(TextHeaderOf(Ext("citext"), "x"), R"({"after":{"c":"x"}})");
  EXPECT_EQ(TextHeaderOf(Ext("ltree"), "a.b"), R"({"after":{"c":"a.b"}})");
}

// ---------------------------------------------------------------- topics --

// AbstractTopicNamingStrategy.sanitizedTopicName, worked out by hand: Java
// walks UTF-16 code units, so "é" (U+00E9) is one '_' and "😀" (U+1F600) two.
TEST(TopicNameTest, SanitisedAsDebeziumDoes) {
  EXPECT_EQ(SanitizeTopicName("tv.public.accounts"), "tv.public.accounts");
  EXPECT_EQ(SanitizeTopicName("tv.Sales-EU.Order Lines"), "tv.Sales-EU.Order_Lines");
  EXPECT_EQ(SanitizeTopicName("tv.public.a.b"), "tv.public.a.b");  // a table named "a.b": dots stay
  EXPECT_EQ(SanitizeTopicName("tv.MixedCase.CamelTable"), "tv.MixedCase.CamelTable");
  EXPECT_EQ(SanitizeTopicName("tv.public.\xC3\xA9t\xC3\xA9"), "tv.public._t_");        // été
  EXPECT_EQ(SanitizeTopicName("tv.public.\xE5\x8F\xB0\xE5\xB8\xB3"), "tv.public.__");  // 台帳
  EXPECT_EQ(SanitizeTopicName("tv.public.x\xF0\x9F\x98\x80"), "tv.public.x__");        // x😀
  EXPECT_EQ(SanitizeTopicName("tv.p.a/b:c\"d'e(f)g[h]i{j}k,l;m=n+o*p?q!r@s#t$u%v^w&x~y|z`"),
            "tv.p.a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q_r_s_t_u_v_w_x_y_z_");
  EXPECT_EQ(SanitizeTopicName("."), "_");
  EXPECT_EQ(SanitizeTopicName(".."), "__");
  EXPECT_EQ(SanitizeTopicName("..."), "...");
  // 249 characters at most; a name of 63 bytes in schema and table stays whole.
  const std::string n63(63, 'n');
  EXPECT_EQ(SanitizeTopicName("tv." + n63 + "." + n63), "tv." + n63 + "." + n63);
  EXPECT_EQ(SanitizeTopicName(std::string(300, 'a')), std::string(249, 'a'));
}

TEST(TopicNameTest, SchemaNamesFollowTheSanitisedTopic) {
  TableSchema t = Table({PkCol("id", oid::kInt4, "int4")});
  t.schema = "Sales-EU";
  t.table = "Order Lines";
  t.topic = SanitizeTopicName("tv.Sales-EU.Order Lines");
  const std::string json = Insert(t, Row({"1"}), /*schemas=*/true);
  auto d = Parse(json);
  EXPECT_STREQ(d["schema"]["name"].GetString(), "tv.Sales-EU.Order_Lines.Envelope");
  EXPECT_STREQ(d["schema"]["fields"][0]["name"].GetString(), "tv.Sales-EU.Order_Lines.Value");
}

// ------------------------------------------------------------------ key --

TEST(KeyTest, PrimaryKeyColumnsInKeyOrder) {
  EventEncoder enc({});
  std::string out;
  const TableSchema t =
      Table({PkCol("a", oid::kInt4, "int4", 2), Col("v", oid::kText, "text"), PkCol("b", oid::kText, "text", 1)});
  ASSERT_TRUE(enc.EncodeKey(t, Row({"1", "x", "k"}), &out).ok());
  EXPECT_EQ(out, R"({"b":"k","a":1})");
  EXPECT_EQ(enc.EncodeKey(Table({Col("v", oid::kText, "text")}, 3), Row({"x"}), &out).code(), StatusCode::kNotFound);
}

TEST(KeyTest, WithSchema) {
  EventEncoder enc({.schemas_enable = true});
  std::string out;
  ColumnSchema id = PkCol("id", oid::kInt4, "int4");
  id.default_expression = "nextval('t_id_seq'::regclass)";  // serial: Debezium's placeholder 0
  ASSERT_TRUE(enc.EncodeKey(Table({id}), Row({"42"}), &out).ok());
  EXPECT_EQ(out, R"({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"default":0,"field":"id"}],)"
                 R"("optional":false,"name":"tv.public.t.Key"},"payload":{"id":42}})");
}

// --------------------------------------------------------------- schemas --

const rapidjson::Value& Field(const rapidjson::Value& struct_schema, const char* name) {
  for (const auto& f : struct_schema["fields"].GetArray())
    if (std::string(f["field"].GetString()) == name) return f;
  ADD_FAILURE() << "no field " << name;
  return struct_schema;
}

TEST(SchemaTest, EnvelopeSchema) {
  ColumnSchema e = Col("mood", 90000, "mood");
  e.type_category = 'E';
  e.enum_labels = {"sad", "ok"};
  ColumnSchema amount = Col("amount", oid::kNumeric, "numeric", NumericTypmod(10, 2));
  amount.default_expression = "1.5";
  const TableSchema t = Table({PkCol("id", oid::kInt8, "int8"), amount, Col("n", oid::kNumeric, "numeric"),
                               Col("at", oid::kTimestamptz, "timestamptz"), e, Col("tags", oid::kInt4Array, "_int4"),
                               Col("day", oid::kDate, "date")});
  const std::string json = Insert(t, Row({"1", "2.50", "3", "2024-01-01 00:00:00+00", "ok", "{1}", "2024-01-01"}),
                                  /*schemas=*/true);
  auto d = Parse(json);
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"schema", "payload"}));
  const auto& s = d["schema"];
  EXPECT_EQ(Keys(s), (std::vector<std::string>{"type", "fields", "optional", "name", "version"}));
  EXPECT_STREQ(s["name"].GetString(), "tv.public.t.Envelope");
  EXPECT_EQ(s["version"].GetInt(), 2);
  EXPECT_FALSE(s["optional"].GetBool());
  std::vector<std::string> names;
  for (const auto& f : s["fields"].GetArray()) names.emplace_back(f["field"].GetString());
  EXPECT_EQ(names,
            (std::vector<std::string>{"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"}));
  const auto& after = Field(s, "after");
  EXPECT_EQ(Keys(after), (std::vector<std::string>{"type", "fields", "optional", "name", "field"}));
  EXPECT_STREQ(after["name"].GetString(), "tv.public.t.Value");
  EXPECT_TRUE(after["optional"].GetBool());

  const auto& id = Field(after, "id");
  EXPECT_STREQ(id["type"].GetString(), "int64");
  EXPECT_FALSE(id["optional"].GetBool());

  const auto& am = Field(after, "amount");
  EXPECT_EQ(Keys(am),
            (std::vector<std::string>{"type", "optional", "name", "version", "parameters", "default", "field"}));
  EXPECT_STREQ(am["type"].GetString(), "bytes");
  EXPECT_STREQ(am["name"].GetString(), "org.apache.kafka.connect.data.Decimal");
  EXPECT_EQ(Keys(am["parameters"]), (std::vector<std::string>{"scale", "connect.decimal.precision"}));
  EXPECT_STREQ(am["parameters"]["scale"].GetString(), "2");
  EXPECT_STREQ(am["parameters"]["connect.decimal.precision"].GetString(), "10");
  EXPECT_STREQ(am["default"].GetString(), "AJY=");  // 1.50

  const auto& n = Field(after, "n");
  EXPECT_EQ(Keys(n), (std::vector<std::string>{"type", "fields", "optional", "name", "version", "doc", "field"}));
  EXPECT_STREQ(n["name"].GetString(), "io.debezium.data.VariableScaleDecimal");
  EXPECT_STREQ(n["doc"].GetString(), "Variable scaled decimal");

  const auto& at = Field(after, "at");
  EXPECT_STREQ(at["type"].GetString(), "string");
  EXPECT_STREQ(at["name"].GetString(), "io.debezium.time.ZonedTimestamp");
  EXPECT_EQ(at["version"].GetInt(), 1);

  const auto& mood = Field(after, "mood");
  EXPECT_STREQ(mood["name"].GetString(), "io.debezium.data.Enum");
  EXPECT_STREQ(mood["parameters"]["allowed"].GetString(), "sad,ok");

  const auto& tags = Field(after, "tags");
  EXPECT_EQ(Keys(tags), (std::vector<std::string>{"type", "items", "optional", "field"}));
  EXPECT_STREQ(tags["type"].GetString(), "array");
  EXPECT_STREQ(tags["items"]["type"].GetString(), "int32");
  EXPECT_TRUE(tags["items"]["optional"].GetBool());

  EXPECT_STREQ(Field(after, "day")["name"].GetString(), "io.debezium.time.Date");

  const auto& src = Field(s, "source");
  EXPECT_STREQ(src["name"].GetString(), "io.debezium.connector.postgresql.Source");
  EXPECT_EQ(src["version"].GetInt(), 1);
  const auto& snap = Field(src, "snapshot");
  EXPECT_STREQ(snap["parameters"]["allowed"].GetString(),
               "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental");
  EXPECT_STREQ(snap["default"].GetString(), "false");
  const auto& tx = Field(s, "transaction");
  EXPECT_STREQ(tx["name"].GetString(), "event.block");
  EXPECT_TRUE(tx["optional"].GetBool());

  const auto& p = d["payload"];
  EXPECT_STREQ(p["after"]["amount"].GetString(), "APo=");  // 250
  EXPECT_EQ(p["after"]["n"]["scale"].GetInt(), 0);
  EXPECT_STREQ(p["after"]["at"].GetString(), "2024-01-01T00:00:00.000000Z");
}

TEST(SchemaTest, SemanticTypesOfColumns) {
  struct Case {
    ColumnSchema col;
    const char* type;
    const char* name;  // nullptr: no semantic name
  };
  const std::vector<Case> cases = {
      {C(oid::kInt2, "int2"), "int16", nullptr},
      {C(oid::kFloat4, "float4"), "float", nullptr},
      {C(oid::kFloat8, "float8"), "double", nullptr},
      {C(oid::kBool, "bool"), "boolean", nullptr},
      {C(oid::kBytea, "bytea"), "bytes", nullptr},
      {C(oid::kTime, "time"), "int64", "io.debezium.time.MicroTime"},
      {C(oid::kTime, "time", 3), "int32", "io.debezium.time.Time"},
      {C(oid::kTimestamp, "timestamp"), "int64", "io.debezium.time.MicroTimestamp"},
      {C(oid::kTimestamp, "timestamp", 2), "int64", "io.debezium.time.Timestamp"},
      {C(oid::kTimetz, "timetz"), "string", "io.debezium.time.ZonedTime"},
      {C(oid::kInterval, "interval"), "int64", "io.debezium.time.MicroDuration"},
      {C(oid::kUuid, "uuid"), "string", "io.debezium.data.Uuid"},
      {C(oid::kJson, "json"), "string", "io.debezium.data.Json"},
      {C(oid::kJsonb, "jsonb"), "string", "io.debezium.data.Json"},
  };
  for (const auto& c : cases) {
    auto d = Parse(Insert(Table({c.col}), Row({std::nullopt}), true));
    const auto& f = Field(Field(d["schema"], "after"), "c");
    EXPECT_STREQ(f["type"].GetString(), c.type) << c.col.type_name;
    if (c.name == nullptr) {
      EXPECT_FALSE(f.HasMember("name")) << c.col.type_name;
    } else {
      EXPECT_STREQ(f["name"].GetString(), c.name) << c.col.type_name;
      EXPECT_EQ(f["version"].GetInt(), 1) << c.col.type_name;
    }
    EXPECT_TRUE(f["optional"].GetBool());
  }
}

TEST(SchemaTest, DefaultsFollowDebeziumsParser) {
  auto default_of = [](ColumnSchema c) -> std::string {
    const std::string json = Insert(Table({c}), Row({std::nullopt}), true);
    auto d = Parse(json);
    const auto& f = Field(Field(d["schema"], "after"), c.name.c_str());
    if (!f.HasMember("default")) return "<none>";
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    f["default"].Accept(w);
    return b.GetString();
  };
  auto col = [](uint32_t o, std::string type, std::string expr, int32_t typmod = -1) {
    ColumnSchema c = Col("c", o, std::move(type), typmod);
    c.default_expression = std::move(expr);
    return c;
  };
  EXPECT_EQ(default_of(col(oid::kText, "text", "'abc'::text")), "\"abc\"");
  EXPECT_EQ(default_of(col(oid::kVarchar, "varchar", "'it''s'::character varying")), "\"it\"");  // first quotes only
  EXPECT_EQ(default_of(col(oid::kInt4, "int4", "'-1'::integer")), "-1");
  EXPECT_EQ(default_of(col(oid::kInt4, "int4", "NULL::integer")), "<none>");
  EXPECT_EQ(default_of(col(oid::kBool, "bool", "true")), "true");
  EXPECT_EQ(default_of(col(oid::kFloat8, "float8", "2.5")), "2.5");
  EXPECT_EQ(default_of(col(oid::kTimestamptz, "timestamptz", "now()")), "\"1970-01-01T00:00:00.000000Z\"");
  EXPECT_EQ(default_of(col(oid::kTimestamp, "timestamp", "CURRENT_TIMESTAMP")), "<none>");
  EXPECT_EQ(default_of(col(oid::kTimestamp, "timestamp", "now()")), "0");
  EXPECT_EQ(default_of(col(oid::kUuid, "uuid", "gen_random_uuid()")), "\"00000000-0000-0000-0000-000000000000\"");
  EXPECT_EQ(default_of(col(oid::kDate, "date", "'2024-02-29'::date")), "19782");
  EXPECT_EQ(default_of(col(oid::kInterval, "interval", "'1 day'::interval")), "86400000000");
  EXPECT_EQ(default_of(col(oid::kNumeric, "numeric", "1.5")), "<none>");  // VariableScaleDecimal struct
  EXPECT_EQ(default_of(col(oid::kJsonb, "jsonb", "'{}'::jsonb")), "\"{}\"");
}

TEST(SchemaTest, CacheFollowsRelationChanges) {
  EventEncoder enc({.schemas_enable = true});
  std::string out;
  TableSchema t = Table({PkCol("id", oid::kInt4, "int4")});
  ASSERT_TRUE(enc.EncodeKey(t, Row({"1"}), &out).ok());
  EXPECT_NE(out.find("\"int32\""), std::string::npos);
  t.columns[0].type_oid = oid::kInt8;  // ALTER TABLE ... TYPE bigint
  t.columns[0].type_name = "int8";
  ASSERT_TRUE(enc.EncodeKey(t, Row({"1"}), &out).ok());
  EXPECT_NE(out.find("\"int64\""), std::string::npos) << out;
  t.columns[0].name = "key";  // a rename needs Invalidate()
  enc.Invalidate(t.relation_oid);
  ASSERT_TRUE(enc.EncodeKey(t, Row({"1"}), &out).ok());
  EXPECT_NE(out.find("\"key\":1"), std::string::npos) << out;
}

// ---------------------------------------------------- transaction topic --

TEST(TransactionTopicTest, BeginAndEnd) {
  EventEncoder enc({});
  std::string out;
  ASSERT_TRUE(enc.EncodeTransactionKey("571:24023928", &out).ok());
  EXPECT_EQ(out, R"({"id":"571:24023928"})");
  ASSERT_TRUE(enc.EncodeTransactionBegin("571:24023928", CommitTime(1795749657123456), &out).ok());
  EXPECT_EQ(out, R"({"status":"BEGIN","id":"571:24023928","event_count":null,"data_collections":null,)"
                 R"("ts_ms":1795749657123})");
  // app.customers and app.sensor_readings share HashMap bucket 4 (of 16):
  // first appearance order, as in Debezium 3.6.0 output.
  ASSERT_TRUE(enc.EncodeTransactionEnd("571:24024000", CommitTime(1795749657123456), 3,
                                       {{"app.customers", 2}, {"app.sensor_readings", 1}}, &out)
                  .ok());
  EXPECT_EQ(out, R"({"status":"END","id":"571:24024000","event_count":3,"data_collections":[)"
                 R"({"data_collection":"app.customers","event_count":2},)"
                 R"({"data_collection":"app.sensor_readings","event_count":1}],"ts_ms":1795749657123})");
}

TEST(TransactionTopicTest, EndListsCollectionsInJavaHashMapOrder) {
  EventEncoder enc({});
  std::string out;
  // Buckets (of 16, from String.hashCode): orders 5, customers 5, items 0,
  // LOGICAL_DECODING_MESSAGE 12; insertion order within a bucket.
  ASSERT_TRUE(enc.EncodeTransactionEnd("1:2", CommitTime(0), 4,
                                       {{"public.orders", 1},
                                        {"public.customers", 1},
                                        {"public.items", 1},
                                        {std::string(kMessageDataCollection), 1}},
                                       &out)
                  .ok());
  auto d = Parse(out);
  std::vector<std::string> names;
  for (const auto& c : d["data_collections"].GetArray()) names.emplace_back(c["data_collection"].GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"public.items", "public.orders", "public.customers",
                                             "LOGICAL_DECODING_MESSAGE"}));
}

TEST(TransactionTopicTest, HashMapCapacityGrowsAndStays) {
  // 13 collections exceed 16 * 0.75, so the HashMap (and every later
  // transaction, since clear() keeps the table) uses 32 buckets.
  EventEncoder enc({});
  std::vector<CollectionCount> many;
  for (int i = 0; i < 13; ++i) many.push_back({"s.t" + std::to_string(i), 1});
  std::string out;
  ASSERT_TRUE(enc.EncodeTransactionEnd("1:2", CommitTime(0), 13, many, &out).ok());
  std::vector<std::string> names;
  for (const auto& c : Parse(out)["data_collections"].GetArray()) names.emplace_back(c["data_collection"].GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"s.t0", "s.t6", "s.t5", "s.t8", "s.t7", "s.t2", "s.t1", "s.t4", "s.t3",
                                             "s.t12", "s.t11", "s.t10", "s.t9"}));
  // s.t12 is in bucket 1 of 16 but 17 of 32; s.t0 in bucket 2 of both.
  ASSERT_TRUE(enc.EncodeTransactionEnd("3:4", CommitTime(0), 2, {{"s.t12", 1}, {"s.t0", 1}}, &out).ok());
  EXPECT_LT(out.find("\"s.t0\""), out.find("\"s.t12\"")) << out;
  EventEncoder fresh({});
  ASSERT_TRUE(fresh.EncodeTransactionEnd("3:4", CommitTime(0), 2, {{"s.t12", 1}, {"s.t0", 1}}, &out).ok());
  EXPECT_LT(out.find("\"s.t12\""), out.find("\"s.t0\"")) << out;
}

TEST(TransactionTopicTest, WithSchema) {
  EventEncoder enc({.schemas_enable = true});
  std::string out;
  ASSERT_TRUE(enc.EncodeTransactionBegin("9:1", CommitTime(1000), &out).ok());
  auto d = Parse(out);
  EXPECT_STREQ(d["schema"]["name"].GetString(), "io.debezium.connector.common.TransactionMetadataValue");
  std::vector<std::string> names;
  for (const auto& f : d["schema"]["fields"].GetArray()) names.emplace_back(f["field"].GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"status", "id", "event_count", "data_collections", "ts_ms"}));
  EXPECT_STREQ(Field(d["schema"], "data_collections")["items"]["name"].GetString(), "event.collection");
  ASSERT_TRUE(enc.EncodeTransactionKey("9:1", &out).ok());
  EXPECT_STREQ(Parse(out)["schema"]["name"].GetString(), "io.debezium.connector.common.TransactionMetadataKey");
}

TEST(TransactionTopicTest, TransactionIdFormat) {
  EXPECT_EQ(TransactionId(571, Lsn(0x16B374D848)), "571:97500059720");
  EXPECT_EQ(TransactionId(4294967295u, Lsn(1)), "4294967295:1");
}

// ------------------------------------------------ heartbeat and messages --

TEST(HeartbeatTest, KeyAndValue) {
  EventEncoder enc({});
  std::string out;
  ASSERT_TRUE(enc.EncodeHeartbeatKey("tv", &out).ok());
  EXPECT_EQ(out, R"({"serverName":"tv"})");
  ASSERT_TRUE(enc.EncodeHeartbeat(kNow, Lsn(24023976), CommitTime(1795749657123456), {}, &out).ok());
  EXPECT_EQ(out, R"({"ts_ms":1795749660000,"lsn":24023976,"server_ts_ms":1795749657123,"offsets":{}})");
  AckedOffsets offsets{{"tv.public.a", {{0, 41}, {2, 7}}}, {"tv.transaction", {{0, 99}}}};
  ASSERT_TRUE(enc.EncodeHeartbeat(kNow, Lsn(5), CommitTime(0), offsets, &out).ok());
  EXPECT_EQ(out, R"({"ts_ms":1795749660000,"lsn":5,"server_ts_ms":0,)"
                 R"("offsets":{"tv.public.a":{"0":41,"2":7},"tv.transaction":{"0":99}}})");
  EventEncoder with_schema({.schemas_enable = true});
  ASSERT_TRUE(with_schema.EncodeHeartbeatKey("tv", &out).ok());
  EXPECT_STREQ(Parse(out)["schema"]["name"].GetString(), "io.debezium.connector.common.ServerNameKey");
}

TEST(MessageTest, KeyAndValue) {
  EventEncoder enc({});
  std::string out;
  ASSERT_TRUE(enc.EncodeMessageKey("audit", &out).ok());
  EXPECT_EQ(out, R"({"prefix":"audit"})");
  pgoutput::LogicalMessage m;
  m.transactional = true;
  m.prefix = "audit";
  m.content = "hello";
  SourceInfo src = Source();
  src.schema = "";
  src.table = "";
  const std::string id = TransactionId(571, Lsn(24023976));
  TransactionBlock tx{id, 1, 1};
  ASSERT_TRUE(enc.EncodeMessage(m, src, &tx, kNow, &out).ok());
  auto d = Parse(out);
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"op", "ts_ms", "source", "transaction", "message"}));
  EXPECT_STREQ(d["op"].GetString(), "m");
  EXPECT_EQ(d["ts_ms"].GetInt64(), 1795749660000);
  EXPECT_STREQ(d["source"]["table"].GetString(), "");
  EXPECT_STREQ(d["transaction"]["id"].GetString(), "571:24023976");
  EXPECT_STREQ(d["message"]["prefix"].GetString(), "audit");
  EXPECT_STREQ(d["message"]["content"].GetString(), "aGVsbG8=");

  EventEncoder with_schema({.schemas_enable = true});
  ASSERT_TRUE(with_schema.EncodeMessage(m, src, nullptr, kNow, &out).ok());
  d = Parse(out);
  EXPECT_STREQ(d["schema"]["name"].GetString(), "io.debezium.connector.postgresql.MessageValue");
  EXPECT_STREQ(Field(d["schema"], "message")["name"].GetString(), "io.debezium.connector.postgresql.Message");
  EXPECT_TRUE(d["payload"]["transaction"].IsNull());
}

// ----------------------------------------------------------- throughput --

TEST(ThroughputTest, EncodesManyEventsPerSecond) {
  EventEncoder enc({});
  const TableSchema t =
      Table({PkCol("id", oid::kInt8, "int8"), Col("tenant_id", oid::kInt4, "int4"), Col("name", oid::kText, "text"),
             Col("amount", oid::kNumeric, "numeric", NumericTypmod(12, 2)), Col("at", oid::kTimestamptz, "timestamptz"),
             Col("ok", oid::kBool, "bool")});
  const auto row = Row({"123456", "42", "a customer name", "1234.56", "2024-01-02 03:04:05.678901+00", "t"});
  const SourceInfo src = Source();
  const std::string id = TransactionId(571, Lsn(24023976));
  TransactionBlock tx{id, 1, 1};
  std::string out;
  constexpr int kEvents = 200000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i)
    ASSERT_TRUE(enc.EncodeChange(t, Op::kCreate, nullptr, &row, src, &tx, kNow, &out).ok());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("encoded %d events in %.3f s: %.0f events/s, %zu bytes each\n", kEvents, secs, kEvents / secs,
              out.size());
  EXPECT_GT(kEvents / secs, 20000.0);  // loose: shared CI machines; the target (>100k/s) is printed
}

}  // namespace
}  // namespace timevault::capture
