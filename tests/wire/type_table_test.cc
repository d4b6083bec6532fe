// The type table read in both directions: every row has a sample here, and
// for each the capture direction (to_json.h) writes the JSON worked out by
// hand (base64 with Python, days and microseconds with Python's datetime),
// the replay direction (to_text.h) gives the sample's text back when the row
// is exact, and a lossy row is marked so on both sides (capture carries the
// fidelity text, replay refuses Debezium's value). A new row without a sample
// fails EveryRowHasASample: a new type is one row plus its sample here.
#include "timevault/wire/type_table.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "timevault/wire/contract.h"
#include "timevault/wire/oid.h"
#include "timevault/wire/to_json.h"
#include "timevault/wire/to_text.h"

namespace timevault::wire {
namespace {

struct Sample {
  std::string_view name;  // the row's typname
  int32_t typmod;
  std::string_view text;  // Postgres's text of a value
  std::string_view json;  // Debezium's JSON of it
};

constexpr int32_t Numeric(int precision, int scale) { return ((precision << 16) | scale) + 4; }

// clang-format off
constexpr Sample kSamples[] = {
  {"bool",        -1, "t",                                  "true"},
  {"bytea",       -1, "\\x0a0b",                            "\"Cgs=\""},
  {"char",        -1, "x",                                  "\"x\""},
  {"name",        -1, "pg_catalog",                         "null"},
  {"int8",        -1, "-9000000000",                        "-9000000000"},
  {"int2",        -1, "-32768",                             "-32768"},
  {"int4",        -1, "42",                                 "42"},
  {"text",        -1, "h\xC3\xA9llo",                       "\"h\xC3\xA9llo\""},
  {"oid",         -1, "4294967295",                         "4294967295"},
  {"json",        -1, "{\"a\": 1}",                         "\"{\\\"a\\\": 1}\""},
  {"xml",         -1, "<a>1</a>",                           "\"<a>1</a>\""},
  {"cidr",        -1, "10.0.0.0/8",                         "\"10.0.0.0/8\""},
  {"float4",      -1, "1.5",                                "1.5"},
  {"float8",      -1, "0.1",                                "0.1"},
  {"macaddr8",    -1, "08:00:2b:01:02:03:04:05",            "\"08:00:2b:01:02:03:04:05\""},
  {"money",       -1, "$12.34",                             "\"BNI=\""},
  {"macaddr",     -1, "08:00:2b:01:02:03",                  "\"08:00:2b:01:02:03\""},
  {"inet",        -1, "192.168.0.1/24",                     "\"192.168.0.1/24\""},
  {"bpchar",      -1, "ab",                                 "\"ab\""},
  {"varchar",     -1, "v",                                  "\"v\""},
  {"date",        -1, "2024-02-29",                         "19782"},
  {"time",        -1, "13:45:00.5",                         "49500500000"},
  {"timestamp",   -1, "2024-01-02 03:04:05.678901",         "1704164645678901"},
  {"timestamptz", -1, "2024-01-02 03:04:05.678901+00",      "\"2024-01-02T03:04:05.678901Z\""},
  {"interval",    -1, "1 day",                              "86400000000"},
  {"timetz",      -1, "13:45:00+00",                        "\"13:45:00Z\""},
  {"bit",          3, "101",                                "\"BQ==\""},
  {"varbit",      -1, "101",                                "\"BQ==\""},
  {"numeric",     Numeric(10, 2), "-12.34",                 "\"+y4=\""},
  {"uuid",        -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\""},
  {"jsonb",       -1, "{\"a\": 1}",                         "\"{\\\"a\\\": 1}\""},
  {"int4range",   -1, "[1,5)",                              "\"[1,5)\""},
  {"numrange",    -1, "[1.5,2)",                            "\"[1.5,2)\""},
  {"tsrange",     -1, "[\"2024-01-01 00:00:00\",\"2024-01-02 00:00:00\")",
                                                            "\"[\\\"2024-01-01 00:00:00\\\",\\\"2024-01-02 00:00:00\\\")\""},
  {"tstzrange",   -1, "[\"2024-01-01 00:00:00+00\",)",      "\"[\\\"2024-01-01 00:00:00+00\\\",)\""},
  {"daterange",   -1, "[2024-01-01,2024-02-01)",            "\"[2024-01-01,2024-02-01)\""},
  {"int8range",   -1, "[1,10)",                             "\"[1,10)\""},
  {"hstore",      -1, "\"a\"=>\"1\"",                       "\"{\\\"a\\\":\\\"1\\\"}\""},
  {"citext",      -1, "MiXed",                              "\"MiXed\""},
  {"isbn",        -1, "978-0-393-04002-9",                  "\"978-0-393-04002-9\""},
  {"ltree",       -1, "top.science",                        "\"top.science\""},
  // Debezium 3.6.1's real output for these (tests/compat).
  {"tsvector",    -1, "'a' 'cat' 'fat'",                    "\"'a' 'cat' 'fat'\""},
  {"point",       -1, "(1.5,-2)",                           R"({"x":1.5,"y":-2.0,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAADA","srid":null})"},
  {"geometry",    -1, "0101000020E6100000CDCCCCCCCCCC2A400000000000404A40",
                                                            R"({"wkb":"AQEAACDmEAAAzczMzMzMKkAAAAAAAEBKQA==","srid":4326})"},
  {"geography",   -1, "0101000020E61000009A9999999999B9BF0000000000C04940",
                                                            R"({"wkb":"AQEAACDmEAAAmpmZmZmZub8AAAAAAMBJQA==","srid":4326})"},
};
// clang-format on

const Sample* SampleFor(std::string_view name) {
  for (const Sample& s : kSamples)
    if (s.name == name) return &s;
  return nullptr;
}

ColumnType TypeOf(const TypeRow& row, int32_t typmod) {
  ColumnType t;
  t.type_oid = row.oid;
  t.type_name = std::string(row.name);
  t.type_modifier = typmod;
  return t;
}

std::string ToJson(const ColumnCodec& codec, std::string_view text) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  if (!WriteValue(w, codec, text)) return "<cannot convert>";
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ToText(const ColumnType& type, std::string_view json) {
  rapidjson::Document d;
  d.Parse<kRowImageParseFlags>(json.data(), json.size());
  auto r = ToPostgresText(type, d);
  if (!r.ok()) return "ERROR: " + r.status().message();
  return r->has_value() ? **r : "NULL";
}

TEST(TypeTableTest, EveryRowHasASample) {
  for (const TypeRow& row : TypeTable()) EXPECT_NE(SampleFor(row.name), nullptr) << row.name;
  for (const Sample& s : kSamples) {
    bool found = false;
    for (const TypeRow& row : TypeTable()) found |= row.name == s.name;
    EXPECT_TRUE(found) << s.name << " has a sample but no row";
  }
}

TEST(TypeTableTest, CaptureWritesEachSampleAsDebeziumDoes) {
  for (const TypeRow& row : TypeTable()) {
    const Sample* s = SampleFor(row.name);
    if (s == nullptr) continue;
    const ColumnCodec codec = ResolveCodec(TypeOf(row, s->typmod));
    ASSERT_EQ(codec.row, &row) << row.name;
    EXPECT_EQ(ToJson(codec, s->text), s->json) << row.name;
  }
}

// Both directions from the one row: the exact rows give the text back, the
// lossy ones are carried as text by capture and refused as JSON by replay.
TEST(TypeTableTest, ReplayInvertsTheExactRowsAndRefusesTheLossyOnes) {
  for (const TypeRow& row : TypeTable()) {
    const Sample* s = SampleFor(row.name);
    if (s == nullptr) continue;
    const ColumnType type = TypeOf(row, s->typmod);
    const ColumnCodec codec = ResolveCodec(type);
    if (codec.loss.empty()) {
      EXPECT_NE(codec.fidelity, Fidelity::kLossy) << row.name;
      EXPECT_FALSE(DebeziumLoss(type).has_value()) << row.name;
      EXPECT_EQ(ToText(type, s->json), s->text) << row.name;
    } else {
      EXPECT_EQ(codec.fidelity, Fidelity::kLossy) << row.name;
      ASSERT_TRUE(DebeziumLoss(type).has_value()) << row.name;
      EXPECT_EQ(*DebeziumLoss(type), codec.loss) << row.name;
      if (row.oid == 0) {
        EXPECT_FALSE(HasJsonInverse(type)) << row.name;  // extension: from its text only
      }
    }
  }
}

// typmod-dependent losses: unconstrained numeric and varbit lengths.
TEST(TypeTableTest, TypmodRefinesTheRow) {
  ColumnType numeric;
  numeric.type_oid = oid::kNumeric;
  numeric.type_name = "numeric";
  EXPECT_EQ(ResolveCodec(numeric).scalar.kind, Kind::kVariableDecimal);
  EXPECT_EQ(ResolveCodec(numeric).fidelity, Fidelity::kLossy);
  numeric.type_modifier = Numeric(10, 2);
  EXPECT_EQ(ResolveCodec(numeric).scalar.kind, Kind::kDecimal);
  EXPECT_EQ(ResolveCodec(numeric).scalar.scale, 2);
  EXPECT_EQ(ResolveCodec(numeric).fidelity, Fidelity::kByValue);  // NaN, Infinity
  ColumnType bit1;
  bit1.type_oid = oid::kBit;
  bit1.type_name = "bit";
  bit1.type_modifier = 1;
  EXPECT_EQ(ResolveCodec(bit1).scalar.kind, Kind::kBit);
  ColumnType time3;
  time3.type_oid = oid::kTime;
  time3.type_name = "time";
  time3.type_modifier = 3;
  EXPECT_EQ(ResolveCodec(time3).scalar.kind, Kind::kTimeMillis);
}

// Arrays: the row's array type maps to arrays of it, its unchanged-TOAST
// placeholder is the row's, and replay refuses that placeholder.
TEST(TypeTableTest, ArrayTypesAndTheirToastPlaceholders) {
  for (const TypeRow& row : TypeTable()) {
    if (row.array_oid == 0) continue;
    ColumnType t;
    t.type_oid = row.array_oid;
    t.type_name = "_" + std::string(row.name);
    t.type_category = 'A';
    t.element_type_oid = row.oid;
    const ColumnCodec codec = ResolveCodec(t);
    ASSERT_TRUE(codec.is_array) << t.type_name;
    EXPECT_EQ(codec.row, &row) << t.type_name;
    EXPECT_EQ(codec.toast, row.array_toast) << t.type_name;
    if (codec.toast == ToastForm::kNull || !HasJsonInverse(t)) continue;
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    WriteToastPlaceholder(w, codec);
    const std::string placeholder(buf.GetString(), buf.GetSize());
    EXPECT_NE(placeholder.find(codec.toast == ToastForm::kByteList ? "95,95,100" : kUnavailableValue),
              std::string::npos)
        << t.type_name << ": " << placeholder;
    EXPECT_NE(ToText(t, placeholder).find("unchanged-TOAST placeholder"), std::string::npos) << t.type_name;
  }
}

TEST(TypeTableTest, ScalarToastPlaceholdersAreRefused) {
  ColumnType text;
  text.type_oid = oid::kText;
  text.type_name = "text";
  EXPECT_EQ(ResolveCodec(text).toast, ToastForm::kString);
  EXPECT_NE(ToText(text, "\"" + std::string(kUnavailableValue) + "\"").find("unchanged-TOAST"), std::string::npos);
  ColumnType bytea;
  bytea.type_oid = oid::kBytea;
  bytea.type_name = "bytea";
  EXPECT_EQ(ResolveCodec(bytea).toast, ToastForm::kBytes);
  EXPECT_NE(ToText(bytea, "\"" + std::string(kUnavailableBase64) + "\"").find("unchanged-TOAST"), std::string::npos);
}

// Enums and arrays of enums are known by category, from capture's labels or
// replay's element category alike; a domain over an array is lossy.
TEST(TypeTableTest, EnumsAndDomains) {
  ColumnType mood;
  mood.type_oid = 90000;
  mood.type_name = "mood";
  mood.type_category = 'E';
  mood.enum_labels = {"sad", "ok"};
  EXPECT_EQ(ResolveCodec(mood).scalar.logical, Logical::kEnum);
  EXPECT_EQ(ResolveCodec(mood).enum_allowed, "sad,ok");
  ColumnType moods;
  moods.type_oid = 90001;
  moods.type_name = "_mood";
  moods.type_category = 'A';
  moods.element_type_category = 'E';
  EXPECT_TRUE(ResolveCodec(moods).is_array);
  EXPECT_TRUE(HasJsonInverse(moods));
  moods.element_type_category = 0;
  moods.enum_labels = {"sad"};
  EXPECT_TRUE(ResolveCodec(moods).is_array);
  ColumnType tags;
  tags.type_oid = oid::kTextArray;
  tags.type_name = "_text";
  tags.type_category = 'A';
  EXPECT_FALSE(DebeziumLoss(tags).has_value());
  tags.is_domain = true;
  EXPECT_EQ(ResolveCodec(tags).fidelity, Fidelity::kLossy);
  EXPECT_TRUE(DebeziumLoss(tags).has_value());
}

}  // namespace
}  // namespace timevault::wire
