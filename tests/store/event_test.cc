// ParseEvent (store/event.h): every message kind of the Debezium reference
// outputs, the validation rules, and a generator of malformed messages that
// must all be refused with a reason, never crash.
#include "timevault/store/event.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "event_json.h"

namespace timevault::store {
namespace {

const ParseOptions kOptions{"compat", "tenant_id"};

// One line of a reference file: {"topic":T,"key":K|null,"value":V|null,...}.
struct RefMessage {
  int line = 0;
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> value;
};

// End of the JSON value (object, array or null) starting at `pos`.
size_t JsonEnd(const std::string& s, size_t pos) {
  if (s.compare(pos, 4, "null") == 0) return pos + 4;
  int depth = 0;
  bool in_string = false;
  for (size_t i = pos; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string::npos;
}

// The raw text of "key" and "value", as the broker held them.
std::vector<RefMessage> LoadReference(const std::string& name) {
  std::ifstream in(std::string(TV_SOURCE_DIR) + "/tests/store/data/debezium-reference/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<RefMessage> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    RefMessage m;
    m.line = n;
    const std::string topic_head = "{\"topic\":\"";
    const size_t topic_end = line.find('"', topic_head.size());
    m.topic = line.substr(topic_head.size(), topic_end - topic_head.size());
    size_t pos = line.find("\"key\":", topic_end) + 6;
    size_t end = JsonEnd(line, pos);
    if (line.compare(pos, 4, "null") != 0) m.key = line.substr(pos, end - pos);
    EXPECT_EQ(line.compare(end, 9, ",\"value\":"), 0) << name << ":" << n;
    pos = end + 9;
    end = JsonEnd(line, pos);
    if (line.compare(pos, 4, "null") != 0) m.value = line.substr(pos, end - pos);
    out.push_back(std::move(m));
  }
  return out;
}

const std::vector<RefMessage>& Plain() {
  static const auto* m = new std::vector<RefMessage>(LoadReference("schemas-false.jsonl"));
  return *m;
}
const std::vector<RefMessage>& WithSchemas() {
  static const auto* m = new std::vector<RefMessage>(LoadReference("schemas-true.jsonl"));
  return *m;
}

Result<StoreEvent> Parse(const RefMessage& m, const ParseOptions& options = kOptions) {
  auto key = m.key ? std::optional<std::string_view>(*m.key) : std::nullopt;
  auto value = m.value ? std::optional<std::string_view>(*m.value) : std::nullopt;
  return ParseEvent(options, m.topic, key, value);
}

StoreEvent MustParse(const RefMessage& m) {
  auto r = Parse(m);
  EXPECT_TRUE(r.ok()) << "line " << m.line << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : StoreEvent{};
}

rapidjson::Document Dom(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  EXPECT_FALSE(d.HasParseError()) << json.substr(0, 200);
  return d;
}

// Kafka Connect's payload when wrapped (schemas.enable=true).
const rapidjson::Value& Payload(const rapidjson::Document& d) {
  if (d.IsObject() && d.HasMember("schema") && d.HasMember("payload")) return d["payload"];
  return d;
}

// ------------------------------------------------------------ reference --

TEST(EventTest, EveryReferenceLineParses) {
  for (const auto* file : {&Plain(), &WithSchemas()}) {
    ASSERT_EQ(file->size(), 95u);
    int counts[6] = {};
    std::string ops;
    for (const RefMessage& m : *file) {
      StoreEvent e = MustParse(m);
      ++counts[static_cast<int>(e.kind)];
      if (e.kind != EventKind::kChange) continue;
      ops += e.op;
      // envelope, row and pk are the original JSON, compacted.
      rapidjson::Document value = Dom(*m.value);
      EXPECT_TRUE(Dom(e.envelope) == Payload(value)) << "line " << m.line;
      const char* image = e.op == 'd' ? "before" : "after";
      if (e.op != 't') {
        EXPECT_TRUE(Dom(e.row) == Payload(value)[image]) << "line " << m.line;
        EXPECT_TRUE(Dom(e.pk) == Payload(Dom(*m.key))) << "line " << m.line;
      }
      const rapidjson::Value& source = Payload(value)["source"];
      EXPECT_EQ(e.change_lsn.value(), source["lsn"].GetUint64());
      EXPECT_EQ(e.xid, source["txId"].GetInt64());
      EXPECT_EQ(e.commit_time.micros(), source["ts_us"].GetInt64());
      EXPECT_EQ(e.table, std::string(source["schema"].GetString()) + "." + source["table"].GetString());
    }
    EXPECT_EQ(counts[static_cast<int>(EventKind::kChange)], 16 + 10 + 7 + 8 + 1);
    EXPECT_EQ(counts[static_cast<int>(EventKind::kTombstone)], 7);
    EXPECT_EQ(counts[static_cast<int>(EventKind::kTransactionBegin)], 20);
    EXPECT_EQ(counts[static_cast<int>(EventKind::kTransactionEnd)], 20);
    EXPECT_EQ(counts[static_cast<int>(EventKind::kMessage)], 1);
    EXPECT_EQ(counts[static_cast<int>(EventKind::kHeartbeat)], 5);
    EXPECT_EQ(std::count(ops.begin(), ops.end(), 'r'), 8);
    EXPECT_EQ(std::count(ops.begin(), ops.end(), 't'), 1);
  }
}

// Values below were read off the reference files by hand.
TEST(EventTest, SnapshotRead) {
  StoreEvent e = MustParse(Plain()[0]);  // line 1
  EXPECT_EQ(e.kind, EventKind::kChange);
  EXPECT_EQ(e.op, 'r');
  EXPECT_EQ(e.table, "billing.invoices");
  EXPECT_TRUE(e.tenant_known);
  EXPECT_EQ(e.tenant, "tenant-a");
  EXPECT_EQ(e.pk, R"({"tenant_id":"tenant-a","invoice_id":1001})");
  EXPECT_EQ(e.change_lsn, Lsn(26490184));
  EXPECT_EQ(e.xid, 738);
  EXPECT_EQ(e.commit_time, CommitTime(1795751597851500));
  EXPECT_TRUE(e.snapshot);
  EXPECT_FALSE(e.keyless);
  EXPECT_TRUE(e.unavailable_columns.empty());
  EXPECT_EQ(e.row.rfind(R"({"tenant_id":"tenant-a","invoice_id":1001,"amount":"Yag=","status":"ok",)", 0), 0u);
}

TEST(EventTest, InsertKeepsValuesExactly) {
  StoreEvent e = MustParse(Plain()[10]);  // line 11: all_types id 10
  EXPECT_EQ(e.op, 'c');
  EXPECT_EQ(e.table, "public.all_types");
  EXPECT_EQ(e.pk, R"({"id":10})");
  EXPECT_EQ(e.tenant, "tenant-a");
  EXPECT_EQ(e.change_lsn, Lsn(26490224));
  EXPECT_EQ(e.xid, 739);
  EXPECT_EQ(e.commit_time, CommitTime(1795751598586902));
  EXPECT_FALSE(e.snapshot);
  EXPECT_NE(e.row.find(R"("c_real":3.25,"c_double":-1.0E-300,)"), std::string::npos) << e.row;
  EXPECT_NE(e.row.find("\"c_varchar\":\"unicode: \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), std::string::npos);
  EXPECT_NE(e.row.find(R"("c_text":"quotes \" and \\ backslash, tab\t newline\n end")"), std::string::npos);
  EXPECT_NE(e.row.find(R"("c_int_array":[-1,0,null,2147483647])"), std::string::npos);

  StoreEvent extremes = MustParse(Plain()[4]);  // line 5: all_types id 3
  EXPECT_NE(extremes.row.find(R"("c_bigint":-9223372036854775808,)"), std::string::npos);
  EXPECT_NE(extremes.row.find(R"("c_real":-3.5E-10,"c_double":1.0E300,)"), std::string::npos);
}

TEST(EventTest, TransactionBeginAndEnd) {
  StoreEvent begin = MustParse(Plain()[9]);  // line 10
  EXPECT_EQ(begin.kind, EventKind::kTransactionBegin);
  EXPECT_EQ(begin.tx_xid, 739);
  EXPECT_EQ(begin.tx_lsn, Lsn(26490224));
  EXPECT_EQ(begin.tx_time, CommitTime(1795751598586000));
  EXPECT_EQ(begin.event_count, -1);

  StoreEvent end = MustParse(Plain()[13]);  // line 14
  EXPECT_EQ(end.kind, EventKind::kTransactionEnd);
  EXPECT_EQ(end.tx_xid, 739);
  EXPECT_EQ(end.tx_lsn, Lsn(26491432));
  EXPECT_EQ(end.event_count, 3);

  StoreEvent wrapped = MustParse(WithSchemas()[30]);  // line 31
  EXPECT_EQ(wrapped.kind, EventKind::kTransactionEnd);
  EXPECT_EQ(wrapped.tx_xid, 782);
  EXPECT_EQ(wrapped.tx_lsn, Lsn(31003496));
  EXPECT_EQ(wrapped.event_count, 1);
}

TEST(EventTest, DeletesAndTombstones) {
  StoreEvent d = MustParse(Plain()[27]);  // line 28: all_types id 11, tenant_id "" in before
  EXPECT_EQ(d.op, 'd');
  EXPECT_EQ(d.table, "public.all_types");
  EXPECT_EQ(d.pk, R"({"id":11})");
  EXPECT_FALSE(d.tenant_known);
  EXPECT_EQ(d.change_lsn, Lsn(26492712));
  EXPECT_EQ(d.xid, 744);
  EXPECT_EQ(d.commit_time, CommitTime(1795751598588006));
  EXPECT_EQ(d.row.rfind(R"({"id":11,"tenant_id":"","c_smallint":null,)", 0), 0u);

  StoreEvent keyed = MustParse(Plain()[31]);  // line 32: billing.invoices, tenant in the key
  EXPECT_EQ(keyed.op, 'd');
  EXPECT_TRUE(keyed.tenant_known);
  EXPECT_EQ(keyed.tenant, "tenant-b");
  EXPECT_EQ(keyed.pk, R"({"tenant_id":"tenant-b","invoice_id":2001})");

  StoreEvent t = MustParse(Plain()[28]);  // line 29
  EXPECT_EQ(t.kind, EventKind::kTombstone);
  EXPECT_EQ(t.table, "public.all_types");
  EXPECT_EQ(t.pk, R"({"id":11})");

  StoreEvent wrapped = MustParse(WithSchemas()[29]);  // line 30, key with its Connect schema
  EXPECT_EQ(wrapped.kind, EventKind::kTombstone);
  EXPECT_EQ(wrapped.pk, R"({"id":11})");

  StoreEvent line_item = MustParse(Plain()[83]);  // line 84
  EXPECT_EQ(line_item.op, 'd');
  EXPECT_EQ(line_item.pk, R"({"item_id":8})");
  EXPECT_FALSE(line_item.tenant_known);
  EXPECT_EQ(line_item.row, R"({"tenant_id":"","item_id":8,"invoice_id":0,"sku":null,"qty":null})");
}

TEST(EventTest, UnchangedToast) {
  StoreEvent u = MustParse(Plain()[42]);  // line 43
  EXPECT_EQ(u.op, 'u');
  EXPECT_EQ(u.table, "public.documents");
  EXPECT_EQ(u.pk, R"({"tenant_id":"tenant-a","doc_id":1})");
  EXPECT_EQ(u.unavailable_columns, std::vector<std::string>{"body"});
  EXPECT_EQ(u.xid, 750);
  EXPECT_EQ(u.change_lsn, Lsn(26494304));

  StoreEvent c = MustParse(Plain()[69]);  // line 70: the c of a primary-key change keeps the placeholder
  EXPECT_EQ(c.op, 'c');
  EXPECT_EQ(c.pk, R"({"tenant_id":"tenant-a","doc_id":2})");
  EXPECT_EQ(c.unavailable_columns, std::vector<std::string>{"body"});

  StoreEvent wrapped = MustParse(WithSchemas()[43]);  // line 44
  EXPECT_EQ(wrapped.unavailable_columns, std::vector<std::string>{"body"});
  EXPECT_EQ(wrapped.xid, 788);
  EXPECT_EQ(wrapped.change_lsn, Lsn(31004936));
}

TEST(EventTest, TruncateMessageAndHeartbeat) {
  StoreEvent t = MustParse(Plain()[72]);  // line 73
  EXPECT_EQ(t.kind, EventKind::kChange);
  EXPECT_EQ(t.op, 't');
  EXPECT_EQ(t.table, "public.line_items");
  EXPECT_EQ(t.pk, "");
  EXPECT_EQ(t.row, "");
  EXPECT_FALSE(t.tenant_known);
  EXPECT_EQ(t.xid, 758);
  EXPECT_EQ(t.change_lsn, Lsn(26530824));
  EXPECT_EQ(t.commit_time, CommitTime(1795751598592776));

  StoreEvent m = MustParse(Plain()[88]);  // line 89
  EXPECT_EQ(m.kind, EventKind::kMessage);
  EXPECT_EQ(m.op, 'm');
  EXPECT_EQ(m.table, "");
  EXPECT_EQ(m.pk, "");
  EXPECT_EQ(m.message_prefix, "timevault-compat");
  EXPECT_FALSE(m.transactional);
  EXPECT_EQ(m.xid, std::nullopt);
  EXPECT_EQ(m.change_lsn, Lsn(26532456));
  EXPECT_EQ(m.commit_time, CommitTime(1795751598594037));

  StoreEvent wm = MustParse(WithSchemas()[88]);  // line 89
  EXPECT_EQ(wm.kind, EventKind::kMessage);
  EXPECT_EQ(wm.change_lsn, Lsn(31043112));
  EXPECT_EQ(wm.commit_time, CommitTime(1795751605178670));

  StoreEvent h = MustParse(Plain()[8]);  // line 9: a plain Debezium heartbeat
  EXPECT_EQ(h.kind, EventKind::kHeartbeat);
  EXPECT_FALSE(h.heartbeat_lsn.valid());
  EXPECT_TRUE(h.heartbeat_offsets.empty());
  EXPECT_EQ(h.envelope, R"({"ts_ms":1795751598006})");

  StoreEvent wh = MustParse(WithSchemas()[8]);  // line 9
  EXPECT_EQ(wh.kind, EventKind::kHeartbeat);
  EXPECT_EQ(wh.envelope, R"({"ts_ms":1795751604568})");
}

// ------------------------------------------------------ capture's extras --

Result<StoreEvent> Heartbeat(const std::string& value) {
  return ParseEvent(kOptions, "__debezium-heartbeat.compat", R"({"serverName":"compat"})", value);
}

TEST(EventTest, CaptureHeartbeat) {
  auto h = Heartbeat(R"({"ts_ms":1795751599175,"lsn":26532752,"server_ts_ms":1795751598594,)"
                     R"("offsets":{"compat.public.line_items":{"0":41,"3":7},"compat.transaction":{"0":120}}})");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->heartbeat_lsn, Lsn(26532752));
  EXPECT_EQ(h->heartbeat_time, CommitTime(1795751598594000));
  ASSERT_EQ(h->heartbeat_offsets.size(), 3u);
  EXPECT_EQ(h->heartbeat_offsets[0].topic, "compat.public.line_items");
  EXPECT_EQ(h->heartbeat_offsets[0].partition, 0);
  EXPECT_EQ(h->heartbeat_offsets[0].offset, 41);
  EXPECT_EQ(h->heartbeat_offsets[1].partition, 3);
  EXPECT_EQ(h->heartbeat_offsets[1].offset, 7);
  EXPECT_EQ(h->heartbeat_offsets[2].topic, "compat.transaction");
  EXPECT_EQ(h->heartbeat_offsets[2].offset, 120);

  auto no_offsets = Heartbeat(R"({"ts_ms":1,"lsn":26532752,"server_ts_ms":2})");
  ASSERT_TRUE(no_offsets.ok()) << no_offsets.status().ToString();
  EXPECT_EQ(no_offsets->heartbeat_lsn, Lsn(26532752));
  EXPECT_EQ(no_offsets->heartbeat_time, CommitTime(2000));
  EXPECT_TRUE(no_offsets->heartbeat_offsets.empty());

  auto wrapped =
      Heartbeat(R"({"schema":{"type":"struct"},"payload":{"ts_ms":1,"lsn":5,"server_ts_ms":2,"offsets":{}}})");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(wrapped->heartbeat_lsn, Lsn(5));
}

TEST(EventTest, TransactionalMessage) {
  auto m = ParseEvent(kOptions, "compat.message", R"({"prefix":"p"})",
                      R"({"op":"m","ts_ms":1,"source":{"ts_ms":5,"ts_us":5001,"snapshot":"false","schema":"",)"
                      R"("table":"","txId":900,"lsn":77},"transaction":{"id":"900:77","total_order":1,)"
                      R"("data_collection_order":1},"message":{"prefix":"p","content":null}})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->transactional);
  EXPECT_EQ(m->xid, 900);
  EXPECT_EQ(m->change_lsn, Lsn(77));
  EXPECT_EQ(m->commit_time, CommitTime(5001));
  EXPECT_EQ(m->message_prefix, "p");
}

// A change event on compat.<schema>.<table> with the given images and key.
std::string Change(const std::string& op, const std::string& before, const std::string& after,
                   const std::string& source_extra = "", const std::string& table = "t") {
  return R"({"before":)" + before + R"(,"after":)" + after +
         R"(,"source":{"ts_ms":1700000000123,"snapshot":"false","schema":"s","table":")" + table +
         R"(","txId":42,"lsn":1000)" + source_extra + R"(},"transaction":null,"op":")" + op + R"("})";
}

Result<StoreEvent> ParseChange(const std::string& value, std::optional<std::string> key = R"({"id":1})",
                               const ParseOptions& options = kOptions) {
  return ParseEvent(options, "compat.s.t", key ? std::optional<std::string_view>(*key) : std::nullopt, value);
}

TEST(EventTest, KeylessTable) {
  const std::string row = R"({"a":1,"b":"x","tenant_id":"t1"})";
  auto c = ParseChange(Change("c", "null", row), std::nullopt);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->keyless);
  EXPECT_EQ(c->pk, row);
  EXPECT_EQ(c->previous_pk, "");

  const std::string newer = R"({"a":2,"b":"x","tenant_id":"t1"})";
  auto u = ParseChange(Change("u", row, newer), std::nullopt);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->pk, newer);
  EXPECT_EQ(u->previous_pk, row);

  auto d = ParseChange(Change("d", newer, "null"), "null");  // a JSON null key is a null key too
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->keyless);
  EXPECT_EQ(d->pk, newer);
  EXPECT_EQ(d->tenant, "t1");

  auto t = ParseChange(Change("t", "null", "null"), std::nullopt);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->pk, "");
}

TEST(EventTest, Tenants) {
  struct Case {
    std::string op, row;
    bool known;
    std::string tenant;
  };
  const Case cases[] = {
      {"c", R"({"id":1,"tenant_id":"acme"})", true, "acme"},
      {"c", R"({"id":1,"tenant_id":42})", true, "42"},
      {"c", R"({"id":1,"tenant_id":-1.5E3})", true, "-1.5E3"},
      {"r", R"({"id":1,"tenant_id":true})", true, "true"},
      {"u", R"({"id":1,"tenant_id":false})", true, "false"},
      {"c", R"({"id":1,"tenant_id":null})", false, ""},
      {"c", R"({"id":1})", false, ""},
      {"c", R"({"id":1,"tenant_id":""})", true, ""},
      {"d", R"({"id":1,"tenant_id":""})", false, ""},
      {"d", R"({"id":1,"tenant_id":"acme"})", true, "acme"},
      {"d", R"({"id":1,"tenant_id":7})", true, "7"},
      {"c", R"({"id":1,"tenant_id":{"scale":0,"value":"AQ=="}})", true, R"({"scale":0,"value":"AQ=="})"},
  };
  for (const Case& c : cases) {
    const bool del = c.op == "d";
    auto e = ParseChange(Change(c.op, del ? c.row : "null", del ? "null" : c.row));
    ASSERT_TRUE(e.ok()) << c.row << ": " << e.status().ToString();
    EXPECT_EQ(e->tenant_known, c.known) << c.op << " " << c.row;
    EXPECT_EQ(e->tenant, c.tenant) << c.op << " " << c.row;
  }
  ParseOptions org{"compat", "org"};
  auto e = ParseChange(Change("c", "null", R"({"id":1,"org":"o1","tenant_id":"x"})"), R"({"id":1})", org);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tenant, "o1");
  ParseOptions unset{"compat", ""};  // the default column
  e = ParseChange(Change("c", "null", R"({"id":1,"tenant_id":"x"})"), R"({"id":1})", unset);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tenant, "x");
}

TEST(EventTest, UnavailableForms) {
  std::string bytes = "[";
  for (char c : std::string("__debezium_unavailable_value")) bytes += std::to_string(int{c}) + ",";
  bytes.back() = ']';
  const std::string after =
      R"({"id":1,"s":"__debezium_unavailable_value","b":"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==",)"
      R"("a":["__debezium_unavailable_value"],"i":)" +
      bytes +
      R"(,"n1":["__debezium_unavailable_value","x"],"n2":["x"],"n3":"__debezium_unavailable_valu",)"
      R"("n4":[95,95],"n5":)" +
      bytes.substr(0, bytes.size() - 4) + R"(102],"n6":null})";
  auto e = ParseChange(Change("u", "null", after));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->unavailable_columns, (std::vector<std::string>{"s", "b", "a", "i"}));
}

// The __timevault.nulls header names fields capture wrote as their default
// although they were NULL (JsonConverter's replace.null.with.default).
Result<StoreEvent> WithNulls(const std::string& value, std::string_view header,
                             std::optional<std::string> key = R"({"id":1})") {
  return ParseEvent(kOptions, "compat.s.t", key ? std::optional<std::string_view>(*key) : std::nullopt, value, header);
}

TEST(EventTest, NullsHeaderSetsTheNamedFieldsToNull) {
  const std::string before = R"({"id":1,"tenant_id":"t1","note":"x","n":5,"v":{"scale":0,"value":"AA=="},"l":[1]})";
  const std::string after = R"({"id":1,"tenant_id":"t1","note":"x","n":5,"v":{"scale":1,"value":"AQ=="},"l":[]})";
  auto e = WithNulls(Change("u", before, after), R"({"before":["n","v"],"after":["note","l","v"]})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->row, R"({"id":1,"tenant_id":"t1","note":null,"n":5,"v":null,"l":null})");
  EXPECT_NE(e->envelope.find(R"("before":{"id":1,"tenant_id":"t1","note":"x","n":null,"v":null,"l":[1]},)"
                             R"("after":{"id":1,"tenant_id":"t1","note":null,"n":5,"v":null,"l":null},)"),
            std::string::npos)
      << e->envelope;
  // Without the header (real Debezium, or no replaced NULL) nothing changes.
  auto plain = ParseChange(Change("u", before, after));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->row, after);
  // An empty list, or the other image only, leaves the image alone.
  auto other = WithNulls(Change("u", before, after), R"({"before":["note"],"after":[]})");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->row, after);
}

TEST(EventTest, NullsHeaderAppliesBeforeTenantAndKeylessPk) {
  // A delete's key-only before image (REPLICA IDENTITY DEFAULT): the NOT NULL
  // tenant column holds Debezium's fallback "" and is named in the header.
  auto d = WithNulls(Change("d", R"({"id":1,"tenant_id":7,"note":""})", "null"), R"({"before":["tenant_id","note"]})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->tenant_known);
  EXPECT_EQ(d->row, R"({"id":1,"tenant_id":null,"note":null})");
  // A keyless table: the pk is the row image with the real nulls.
  auto c = WithNulls(Change("c", "null", R"({"a":1,"b":"dflt","tenant_id":"t1"})"), R"({"after":["b"]})", std::nullopt);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->pk, R"({"a":1,"b":null,"tenant_id":"t1"})");
  auto u = WithNulls(Change("u", R"({"a":1,"b":"dflt","tenant_id":"t1"})", R"({"a":2,"b":"dflt","tenant_id":"t1"})"),
                     R"({"before":["b"]})", std::nullopt);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->previous_pk, R"({"a":1,"b":null,"tenant_id":"t1"})");
  EXPECT_EQ(u->pk, R"({"a":2,"b":"dflt","tenant_id":"t1"})");
  // With schemas.enable=true the payload's images are the ones changed.
  auto wrapped = WithNulls(R"({"schema":{"type":"struct"},"payload":)" +
                               Change("c", "null", R"({"id":1,"tenant_id":"t1","note":"x"})") + "}",
                           R"({"after":["note"]})");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(wrapped->row, R"({"id":1,"tenant_id":"t1","note":null})");
}

TEST(EventTest, MalformedNullsHeaderIsRefusedWithAReason) {
  const std::string update = Change("u", R"({"id":1,"note":"x"})", R"({"id":1,"note":"x"})");
  const std::string insert = Change("c", "null", R"({"id":1,"note":"x"})");
  struct Case {
    std::string value;
    std::string header;
    std::string reason;
  };
  const Case cases[] = {
      {insert, "", "header __timevault.nulls: invalid JSON at offset 0"},
      {insert, R"({"after":["note"])", "header __timevault.nulls: invalid JSON at offset 17"},
      {insert, R"(["note"])", "header __timevault.nulls: expected an object, got an array"},
      {insert, R"({"after":"note"})",
       "header __timevault.nulls: after: expected an array of column names, got a string"},
      {insert, R"({"after":["note",3]})", "header __timevault.nulls: after[1]: expected a column name, got a number"},
      {insert, R"({"old":["note"]})", "header __timevault.nulls: unknown member \"old\" (expected before, after)"},
      {insert, R"({"after":["nope"]})",
       "header __timevault.nulls: after: \"nope\" is not a field of the event's after"},
      {insert, R"({"before":["note"]})",
       "header __timevault.nulls: names columns of before, but the event's before is null"},
      {update, R"({"before":["id","missing"]})",
       "header __timevault.nulls: before: \"missing\" is not a field of the event's before"},
      {Change("t", "null", "null"), R"({"after":["note"]})",
       "header __timevault.nulls: names columns of after, but the event's after is null"},
  };
  for (const Case& c : cases) {
    auto e = WithNulls(c.value, c.header);
    ASSERT_FALSE(e.ok()) << c.header;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << c.header;
    EXPECT_TRUE(e.status().message().starts_with(c.reason)) << c.header << ": " << e.status().message();
  }
  // On messages without row images.
  auto tomb = ParseEvent(kOptions, "compat.s.t", R"({"id":1})", std::nullopt, R"({"before":["note"]})");
  ASSERT_FALSE(tomb.ok());
  EXPECT_EQ(tomb.status().message(),
            "header __timevault.nulls: on a message without row images (a tombstone or not a table topic)");
  auto begin =
      ParseEvent(kOptions, "compat.transaction", R"({"id":"1:2"})",
                 R"({"status":"BEGIN","id":"1:2","event_count":null,"data_collections":null,"ts_ms":1})", R"({})");
  EXPECT_FALSE(begin.ok());
  // Random corruptions of a valid header: refused or applied, never a crash.
  std::mt19937 rng(20240611);
  const std::string good = R"({"before":["id","note"],"after":["note"]})";
  for (int i = 0; i < 2000; ++i) {
    std::string h = good;
    const int edits = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int k = 0; k < edits && !h.empty(); ++k) {
      const size_t at = std::uniform_int_distribution<size_t>(0, h.size() - 1)(rng);
      const char ch = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
      if (k % 2 == 0)
        h[at] = ch;
      else
        h.erase(at, 1);
    }
    auto e = WithNulls(update, h);
    if (!e.ok()) {
      EXPECT_TRUE(e.status().message().starts_with("header __timevault.nulls: ")) << e.status().message();
    }
  }
  // A valid header still leaves the parser usable for the next message.
  auto next = ParseChange(insert);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->row, R"({"id":1,"note":"x"})");
}

// The __timevault.text header carries Postgres's own text of the columns
// whose Debezium value is lossy or absent; each image keeps its texts as
// the member "" (kTextMember).
Result<StoreEvent> WithTexts(const std::string& value, std::string_view texts,
                             std::optional<std::string_view> nulls = std::nullopt,
                             std::optional<std::string> key = R"({"id":1})") {
  return ParseEvent(kOptions, "compat.s.t", key ? std::optional<std::string_view>(*key) : std::nullopt, value, nulls,
                    texts);
}

TEST(EventTest, TextHeaderIsKeptInEveryCopyOfTheImage) {
  const std::string before = R"({"id":1,"tenant_id":"t1","d":3600000000,"n":null})";
  const std::string after = R"({"id":1,"tenant_id":"t1","d":2629800000000,"n":null})";
  // "h" (an hstore, say) is not in the images at all: only its text carries it.
  auto e = WithTexts(Change("u", before, after),
                     R"({"before":{"d":"01:00:00","n":"NaN"},"after":{"d":"1 mon","h":"\"a\"=>\"1\"","n":null}})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->row,
            R"({"id":1,"tenant_id":"t1","d":2629800000000,"n":null,"":{"d":"1 mon","h":"\"a\"=>\"1\"","n":null}})");
  EXPECT_NE(
      e->envelope.find(
          R"("before":{"id":1,"tenant_id":"t1","d":3600000000,"n":null,"":{"d":"01:00:00","n":"NaN"}},)"
          R"("after":{"id":1,"tenant_id":"t1","d":2629800000000,"n":null,"":{"d":"1 mon","h":"\"a\"=>\"1\"","n":null}},)"),
      std::string::npos)
      << e->envelope;
  EXPECT_EQ(e->tenant, "t1");
  // A delete keeps the before's texts; an image without texts stays as it is.
  auto d = WithTexts(Change("d", before, "null"), R"({"before":{"d":"01:00:00"}})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->row, R"({"id":1,"tenant_id":"t1","d":3600000000,"n":null,"":{"d":"01:00:00"}})");
  auto only_before = WithTexts(Change("u", before, after), R"({"before":{"d":"01:00:00"}})");
  ASSERT_TRUE(only_before.ok()) << only_before.status().ToString();
  EXPECT_EQ(only_before->row, after);
  // An empty image object: nothing to keep.
  auto empty = WithTexts(Change("c", "null", after), R"({"after":{}})");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->row, after);
  // A keyless table's pk is the image with its texts (the before of its
  // update too), so two rows differing in a lossy column stay two rows.
  auto keyless = WithTexts(Change("u", R"({"a":1,"d":0})", R"({"a":1,"d":0})"),
                           R"({"before":{"d":"0 mons"},"after":{"d":"00:00:00"}})", std::nullopt, std::nullopt);
  ASSERT_TRUE(keyless.ok()) << keyless.status().ToString();
  EXPECT_EQ(keyless->pk, R"({"a":1,"d":0,"":{"d":"00:00:00"}})");
  EXPECT_EQ(keyless->previous_pk, R"({"a":1,"d":0,"":{"d":"0 mons"}})");
  // An empty image ({} after) gets the member alone; escapes survive.
  auto bare = WithTexts(Change("c", "null", "{}"), R"({"after":{"q\"x":"tab\there"}})");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->row, R"({"":{"q\"x":"tab\there"}})");
  // With the nulls header: a NULL column may be listed with a null text.
  auto both = WithTexts(Change("c", "null", R"({"id":1,"d":0})"), R"({"after":{"d":null}})", R"({"after":["d"]})");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->row, R"({"id":1,"d":null,"":{"d":null}})");
}

TEST(EventTest, MalformedTextHeaderIsRefusedWithAReason) {
  const std::string insert = Change("c", "null", R"({"id":1,"d":0,"t":"__debezium_unavailable_value"})");
  struct Case {
    std::string value;
    std::string header;
    std::string reason;
    std::optional<std::string> nulls = std::nullopt;
  };
  const Case cases[] = {
      {insert, "", "header __timevault.text: invalid JSON at offset 0"},
      {insert, R"(["d"])", "header __timevault.text: expected an object, got an array"},
      {insert, R"({"after":["d"]})",
       "header __timevault.text: after: expected an object of column texts, got an array"},
      {insert, R"({"after":{"d":5}})",
       "header __timevault.text: after.\"d\": expected the column's text or null, got a number"},
      {insert, R"({"after":{"":"x"}})", "header __timevault.text: after: an empty column name"},
      {insert, R"({"after":{"d":"1","d":"2"}})", "header __timevault.text: after: column \"d\" is given twice"},
      {insert, R"({"after":{"d":"1"},"after":{}})", "header __timevault.text: after is given twice"},
      {insert, R"({"old":{"d":"1"}})", "header __timevault.text: unknown member \"old\" (expected before, after)"},
      {insert, R"({"before":{"d":"1"}})",
       "header __timevault.text: gives texts for before, but the event's before is null"},
      {insert, R"({"after":{"t":"x"}})",
       "header __timevault.text: after: \"t\" is an unchanged-TOAST placeholder, which never has a text"},
      {insert, R"({"after":{"d":"1"}})",
       "header __timevault.text: after: \"d\" has a text, but header __timevault.nulls says it is NULL",
       R"({"after":["d"]})"},
      {Change("c", "null", R"({"id":1,"":{"d":"x"}})"), R"({})",
       "after: a field with an empty name (no Postgres column has one"},
  };
  for (const Case& c : cases) {
    auto e = WithTexts(c.value, c.header, c.nulls ? std::optional<std::string_view>(*c.nulls) : std::nullopt);
    ASSERT_FALSE(e.ok()) << c.header;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << c.header;
    EXPECT_TRUE(e.status().message().starts_with(c.reason)) << c.header << ": " << e.status().message();
  }
  // The reserved name is refused without the header too.
  auto reserved = ParseChange(Change("c", "null", R"({"id":1,"":"x"})"));
  ASSERT_FALSE(reserved.ok());
  auto tomb = ParseEvent(kOptions, "compat.s.t", R"({"id":1})", std::nullopt, std::nullopt, R"({"after":{}})");
  ASSERT_FALSE(tomb.ok());
  EXPECT_EQ(tomb.status().message(),
            "header __timevault.text: on a message without row images (a tombstone or not a table topic)");
  // Random corruptions: refused or kept, never a crash.
  std::mt19937 rng(20261207);
  const std::string good = R"({"before":{"d":"1 mon"},"after":{"d":"2 mons","h":null}})";
  const std::string update = Change("u", R"({"id":1,"d":0})", R"({"id":1,"d":1})");
  for (int i = 0; i < 2000; ++i) {
    std::string h = good;
    const int edits = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int k = 0; k < edits && !h.empty(); ++k) {
      const size_t at = std::uniform_int_distribution<size_t>(0, h.size() - 1)(rng);
      const char ch = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
      if (k % 2 == 0)
        h[at] = ch;
      else
        h.erase(at, 1);
    }
    auto e = WithTexts(update, h);
    if (!e.ok()) {
      EXPECT_TRUE(e.status().message().starts_with("header __timevault.text: ")) << e.status().message();
    }
  }
}

TEST(EventTest, NumbersAreNotReformatted) {
  const std::string row =
      R"({"id":1,"big":123456789012345678901234567890,"neg":-0,"f":1.0E-300,"g":2.5e+10,"h":0.1,"i":-9223372036854775808})";
  auto e = ParseChange(Change("c", "null", row));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->row, row);
  EXPECT_NE(e->envelope.find(row), std::string::npos);
}

TEST(EventTest, StringsAreEscapedLikeJackson) {
  struct Special {
    std::string json, compact;
  };
  const Special specials[] = {
      {R"(\")", R"(\")"},
      {R"(\\)", R"(\\)"},
      {R"(\n)", R"(\n)"},
      {R"(\u000a)", R"(\n)"},
      {R"(\u0001)", R"(\u0001)"},
      {R"(\u001f)", R"(\u001F)"},
      {R"(\/)", "/"},
      {"\x7f", "\x7f"},
      {R"(\u00e9)", "\xC3\xA9"},
      {"\xE2\x82\xAC", "\xE2\x82\xAC"},
      {R"(\b\f\r\t)", R"(\b\f\r\t)"},
      {R"(\u0000)", R"(\u0000)"},
  };
  for (const Special& sp : specials) {
    for (size_t at = 0; at <= 20; ++at) {  // before, inside and after an 8-byte block
      const std::string before(at, 'a');
      const std::string after(20 - at, 'z');
      auto e = ParseChange(Change("c", "null", R"({"id":1,"s":")" + before + sp.json + after + R"("})"));
      ASSERT_TRUE(e.ok()) << sp.json << ": " << e.status().ToString();
      EXPECT_EQ(e->row, R"({"id":1,"s":")" + before + sp.compact + after + R"("})") << sp.json << " at " << at;
    }
  }
}

// `json` with whitespace after every ',' ':' '{' '[' outside strings.
std::string Spaced(const std::string& json) {
  std::string spaced;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    spaced += c;
    if (in_string) {
      if (c == '\\') {
        spaced += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ',' || c == ':' || c == '{' || c == '[') {
      spaced += " \n\t ";
    }
  }
  return spaced;
}

TEST(EventTest, WhitespaceIsDropped) {
  const RefMessage& m = Plain()[75];
  const std::string spaced = Spaced(*m.value);
  auto compact = Parse(m);
  auto loose = ParseEvent(kOptions, m.topic, *m.key, "  " + spaced + " \r\n");
  ASSERT_TRUE(compact.ok());
  ASSERT_TRUE(loose.ok()) << loose.status().ToString();
  EXPECT_GT(spaced.size(), m.value->size() + 100);
  EXPECT_EQ(loose->envelope, compact->envelope);
  EXPECT_EQ(loose->row, compact->row);
}

// A compact message without escapes is copied as it is (JsonParser::Verbatim);
// any other is written anew (Serialize). Both must give the same bytes.
TEST(EventTest, CopiedAndRewrittenJsonAreTheSame) {
  int copied = 0;
  for (const auto* file : {&Plain(), &WithSchemas()}) {
    for (const RefMessage& m : *file) {
      if (!m.value) continue;
      internal::JsonParser parser;
      auto root = parser.Parse(*m.value, "value");
      ASSERT_TRUE(root.ok());
      if (parser.Verbatim(**root)) ++copied;
      auto direct = ParseEvent(kOptions, m.topic, m.key, *m.value);
      auto rewritten = ParseEvent(kOptions, m.topic, m.key ? std::optional<std::string>(Spaced(*m.key)) : std::nullopt,
                                  Spaced(*m.value) + " ");
      ASSERT_TRUE(direct.ok()) << "line " << m.line << ": " << direct.status().ToString();
      ASSERT_TRUE(rewritten.ok()) << "line " << m.line << ": " << rewritten.status().ToString();
      EXPECT_EQ(direct->envelope, rewritten->envelope) << "line " << m.line;
      EXPECT_EQ(direct->row, rewritten->row) << "line " << m.line;
      EXPECT_EQ(direct->pk, rewritten->pk) << "line " << m.line;
      EXPECT_EQ(direct->previous_pk, rewritten->previous_pk) << "line " << m.line;
    }
  }
  EXPECT_GE(copied, 150);  // most reference lines take the copying path
}

TEST(EventTest, VerbatimOnlyWhenTheInputIsWhatSerializeWrites) {
  struct Case {
    std::string json;
    bool verbatim;
  };
  const Case cases[] = {
      {R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})", true},
      {R"({"s":"q\"b\\n\nt\tc\u001F"})", true},  // escapes as Serialize writes them
      {R"({"sequence":"[\"1\",\"2\"]"})", true},
      {R"({"a": 1})", false},  // whitespace
      {R"( {"a":1})", false},
      {R"({"a":1} )", false},
      {R"({"s":"\/"})", false},  // escapes Serialize writes otherwise
      {R"({"s":"\u001f"})", false},
      {R"({"s":"\u000a"})", false},
      {R"({"s":"\u00e9"})", false},
      {R"({"s":"\u0041"})", false},
      {"{\"s\":\"\xC3\xA9\"}", true},  // raw UTF-8 stays as it is
  };
  for (const Case& c : cases) {
    internal::JsonParser parser;
    auto root = parser.Parse(c.json, "case");
    ASSERT_TRUE(root.ok()) << c.json;
    std::string serialized;
    internal::Serialize(**root, &serialized);
    const auto verbatim = parser.Verbatim(**root);
    EXPECT_EQ(verbatim.has_value(), c.verbatim) << c.json;
    if (verbatim) {
      EXPECT_EQ(*verbatim, c.json);
      EXPECT_EQ(*verbatim, serialized);
    } else {
      EXPECT_NE(serialized, c.json) << "not copied, though Serialize writes it so";
    }
  }
  // A member's bytes, and none once a value was set to null.
  internal::JsonParser parser;
  const std::string json = R"({"before":null,"after":{"id":1,"v":"x"},"op":"c"})";
  auto root = parser.Parse(json, "case");
  ASSERT_TRUE(root.ok());
  const internal::JsonValue* after = (*root)->Find("after");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(parser.Verbatim(*after).value_or("none"), R"({"id":1,"v":"x"})");
  EXPECT_FALSE(parser.Verbatim(*(*root)->Find("op")).has_value()) << "only objects and arrays";
  parser.SetNull(*after->Find("v"));
  EXPECT_FALSE(parser.Verbatim(*after).has_value());
}

TEST(EventTest, TsMillisFallbackAndSnapshotFlags) {
  auto e = ParseChange(Change("c", "null", R"({"id":1})"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->commit_time, CommitTime(1700000000123000));
  e = ParseChange(Change("c", "null", R"({"id":1})", R"(,"ts_us":null)"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->commit_time, CommitTime(1700000000123000));
  e = ParseChange(Change("c", "null", R"({"id":1})", R"(,"ts_us":1700000000123456)"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->commit_time, CommitTime(1700000000123456));
  EXPECT_FALSE(e->snapshot);
}

TEST(EventTest, DottedNamesMatchTheTopicAsAWhole) {
  const std::string value = R"({"before":null,"after":{"id":1},"source":{"ts_us":1,"snapshot":"false",)"
                            R"("schema":"my.schema","table":"t.x","txId":1,"lsn":5},"op":"c"})";
  auto e = ParseEvent(kOptions, "compat.my.schema.t.x", R"({"id":1})", value);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->table, "my.schema.t.x");
  auto wrong = ParseEvent(kOptions, "compat.my.schema.t.y", R"({"id":1})", value);
  EXPECT_FALSE(wrong.ok());
  auto tomb = ParseEvent(kOptions, "compat.my.schema.t.x", R"({"id":1})", std::nullopt);
  ASSERT_TRUE(tomb.ok());
  EXPECT_EQ(tomb->table, "my.schema.t.x");
}

TEST(EventTest, ConcurrentParsers) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int round = 0; round < 20; ++round) {
        for (const RefMessage& m : (t % 2 ? Plain() : WithSchemas())) {
          if (!Parse(m).ok()) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// ------------------------------------------------------------ malformed --

// `json` with the member at `path` replaced by the raw text `replacement`
// (added if absent; it need not be valid JSON) or, for nullopt, removed.
std::string Mutate(const std::string& json, const std::vector<std::string>& path,
                   const std::optional<std::string>& replacement) {
  constexpr std::string_view kMarker = "\"__mutation_marker__\"";
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  EXPECT_FALSE(d.HasParseError());
  rapidjson::Value* parent = &d;
  for (size_t i = 0; i + 1 < path.size(); ++i) parent = &(*parent)[path[i].c_str()];
  const std::string& name = path.back();
  if (!replacement) {
    parent->RemoveMember(name.c_str());
  } else {
    rapidjson::Value marker("__mutation_marker__", d.GetAllocator());
    if (parent->HasMember(name.c_str())) {
      (*parent)[name.c_str()] = marker;
    } else {
      parent->AddMember(rapidjson::Value(name.c_str(), d.GetAllocator()), marker, d.GetAllocator());
    }
  }
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  d.Accept(w);
  std::string out(b.GetString(), b.GetSize());
  if (replacement) out.replace(out.find(kMarker), kMarker.size(), *replacement);
  return out;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (unsigned char b : bytes) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    out += buf;
  }
  return out;
}

// Feeds malformed messages, each followed by a good reference message.
class Gauntlet {
 public:
  Gauntlet() {
    for (const auto* f : {&Plain(), &WithSchemas()})
      for (const RefMessage& m : *f) good_.push_back(&m);
  }

  // Must be refused with InvalidArgument and a reason.
  void Bad(const std::string& name, std::string_view topic, std::optional<std::string_view> key,
           std::optional<std::string_view> value) {
    ++bad_;
    auto r = ParseEvent(kOptions, topic, key, value);
    if (r.ok()) {
      ADD_FAILURE() << name << ": accepted " << (value ? std::string(value->substr(0, 300)) : "null");
      NextGood();
      return;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name << ": " << r.status().ToString();
      EXPECT_FALSE(r.status().message().empty()) << name;
      const std::string category = name.substr(0, name.find_first_of(" ="));
      if (categories_.insert(category).second) samples_.push_back(name + " -> " + r.status().message());
    }
    NextGood();
  }
  void BadValue(const std::string& name, std::string_view topic, std::string_view value,
                std::optional<std::string_view> key = R"({"id":1})") {
    Bad(name, topic, key, value);
  }

  // May be accepted, but a refusal must be InvalidArgument with a reason.
  void Any(const std::string& name, std::string_view topic, std::optional<std::string_view> key,
           std::optional<std::string_view> value) {
    ++any_;
    auto r = ParseEvent(kOptions, topic, key, value);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name;
      EXPECT_FALSE(r.status().message().empty()) << name;
    }
    NextGood();
  }

  void NextGood() {
    const RefMessage& m = *good_[next_++ % good_.size()];
    auto r = Parse(m);
    if (!r.ok()) ADD_FAILURE() << "good line " << m.line << " after a bad one: " << r.status().ToString();
  }

  int bad() const { return bad_; }
  int any() const { return any_; }
  const std::vector<std::string>& samples() const { return samples_; }

 private:
  std::vector<const RefMessage*> good_;
  size_t next_ = 0;
  int bad_ = 0;
  int any_ = 0;
  std::vector<std::string> samples_;  // the first reason of each kind of case
  std::set<std::string> categories_;
};

const std::vector<std::string> kWrongTypes = {
    R"("x")", "1.5", "true", "[]", "{}", "null", "-1", "99999999999999999999", R"(["c"])"};

void WrongFieldsOfChanges(Gauntlet& g) {
  struct Target {
    const RefMessage* m;
    std::vector<std::string> root;  // {} or {"payload"}
  };
  const Target targets[] = {{&Plain()[75], {}}, {&WithSchemas()[76], {"payload"}}, {&Plain()[83], {}}};
  for (const Target& t : targets) {
    auto at = [&](std::vector<std::string> rest) {
      std::vector<std::string> path = t.root;
      path.insert(path.end(), rest.begin(), rest.end());
      return path;
    };
    const bool del = t.m->value->find(R"("op":"d")") != std::string::npos;
    const std::string image = del ? "before" : "after";
    const std::vector<std::vector<std::string>> required = {{"op"},
                                                            {"source"},
                                                            {"source", "lsn"},
                                                            {"source", "txId"},
                                                            {"source", "snapshot"},
                                                            {"source", "schema"},
                                                            {"source", "table"},
                                                            {image}};
    for (const auto& field : required) {
      std::string name = field[0] + (field.size() > 1 ? "." + field[1] : "");
      g.BadValue("missing " + name, t.m->topic, Mutate(*t.m->value, at(field), std::nullopt), *t.m->key);
      for (const std::string& wrong : kWrongTypes) {
        if (field[0] == image && wrong == "{}") continue;  // an empty row is a row
        g.BadValue(name + "=" + wrong, t.m->topic, Mutate(*t.m->value, at(field), wrong), *t.m->key);
      }
    }
    // ts_us may be null or absent (then ts_ms), but not of another type.
    for (const std::string& wrong : {std::string(R"("x")"), std::string("1.5"), std::string("[]"), std::string("true"),
                                     std::string("99999999999999999999")}) {
      g.BadValue("ts_us=" + wrong, t.m->topic, Mutate(*t.m->value, at({"source", "ts_us"}), wrong), *t.m->key);
      const std::string no_us = Mutate(*t.m->value, at({"source", "ts_us"}), std::nullopt);
      g.BadValue("ts_ms=" + wrong, t.m->topic, Mutate(no_us, at({"source", "ts_ms"}), wrong), *t.m->key);
    }
    const std::string no_us = Mutate(*t.m->value, at({"source", "ts_us"}), std::nullopt);
    g.BadValue("no ts_us, no ts_ms", t.m->topic, Mutate(no_us, at({"source", "ts_ms"}), std::nullopt), *t.m->key);
    g.BadValue("ts_ms overflows micros", t.m->topic, Mutate(no_us, at({"source", "ts_ms"}), "9223372036854776"),
               *t.m->key);
    g.BadValue("lsn 0", t.m->topic, Mutate(*t.m->value, at({"source", "lsn"}), "0"), *t.m->key);
    for (const std::string op : {"x", "", "cc", "C", "m", "c ", "\\u0063x"}) {
      g.BadValue("op " + op, t.m->topic, Mutate(*t.m->value, at({"op"}), "\"" + op + "\""), *t.m->key);
    }
    for (const std::string& wrong : {std::string(R"("x")"), std::string("1"), std::string("[]")}) {
      const std::string other = del ? "after" : "before";
      g.BadValue(other + "=" + wrong, t.m->topic, Mutate(*t.m->value, at({other}), wrong), *t.m->key);
      g.Bad("key=" + wrong, t.m->topic, wrong, *t.m->value);
    }
    g.Bad("key not JSON", t.m->topic, "{\"item_id\":", *t.m->value);
    g.BadValue("other table in source", t.m->topic, Mutate(*t.m->value, at({"source", "table"}), R"("other")"),
               *t.m->key);
    g.BadValue("other schema in source", t.m->topic, Mutate(*t.m->value, at({"source", "schema"}), R"("billing")"),
               *t.m->key);
    g.BadValue("wrong topic for the table", "compat.public.documents", *t.m->value, *t.m->key);
    g.BadValue("payload not an object", t.m->topic, R"({"schema":null,"payload":[1]})");
  }
}

void WrongTransactions(Gauntlet& g) {
  const RefMessage& end = Plain()[13];
  const RefMessage& begin = Plain()[9];
  const RefMessage& wrapped = WithSchemas()[30];
  for (const RefMessage* m : {&end, &begin}) {
    for (const char* field : {"status", "id", "ts_ms"}) {
      g.BadValue(std::string("missing ") + field, m->topic, Mutate(*m->value, {field}, std::nullopt));
      for (const std::string& wrong : kWrongTypes) {
        if (std::string(field) == "ts_ms" && wrong == "-1") continue;
        g.BadValue(std::string(field) + "=" + wrong, m->topic, Mutate(*m->value, {field}, wrong));
      }
    }
    for (const char* id : {"", "739", ":1", "739:", "a:1", "1:b", "1:2:3", "-1:2", "1:-2", " 1:2", "1:2 ", "+1:2",
                           "1:0", "1.5:2", "99999999999999999999:1", "1:99999999999999999999", "0x1:2", "1: 2"}) {
      g.BadValue(std::string("id ") + id, m->topic, Mutate(*m->value, {"id"}, "\"" + std::string(id) + "\""));
    }
    for (const char* status : {"COMMIT", "begin", "", "BEGIN "}) {
      g.BadValue(std::string("status ") + status, m->topic,
                 Mutate(*m->value, {"status"}, "\"" + std::string(status) + "\""));
    }
  }
  g.BadValue("END without event_count", end.topic, Mutate(*end.value, {"event_count"}, std::nullopt));
  for (const char* wrong : {"null", "\"3\"", "1.5", "-1", "true", "[]", "{}", "1e3"}) {
    g.BadValue(std::string("END event_count=") + wrong, end.topic, Mutate(*end.value, {"event_count"}, wrong));
    g.BadValue(std::string("wrapped END event_count=") + wrong, wrapped.topic,
               Mutate(*wrapped.value, {"payload", "event_count"}, wrong));
  }
  g.Bad("transaction null value", end.topic, *end.key, std::nullopt);
}

void WrongHeartbeats(Gauntlet& g) {
  const std::string topic = "__debezium-heartbeat.compat";
  const std::string base = R"({"ts_ms":1,"lsn":26532752,"server_ts_ms":2,"offsets":{"compat.s.t":{"0":5,"1":7}}})";
  for (const char* field : {"ts_ms", "lsn", "server_ts_ms", "offsets"}) {
    for (const std::string& wrong : kWrongTypes) {
      const std::string f = field;
      if (wrong == "null" && f != "ts_ms") continue;  // lsn/offsets may be null (then server_ts_ms may be too)
      if (wrong == "-1" && (f == "ts_ms" || f == "server_ts_ms" || f == "offsets")) continue;
      if (wrong == "{}" && f == "offsets") continue;
      g.BadValue(f + "=" + wrong, topic, Mutate(base, {field}, wrong));
    }
  }
  g.BadValue("missing ts_ms", topic, Mutate(base, {"ts_ms"}, std::nullopt));
  g.BadValue("lsn without server_ts_ms", topic, Mutate(base, {"server_ts_ms"}, std::nullopt));
  for (const char* offsets : {R"({"t":[]})", R"({"t":1})", R"({"t":null})", R"({"t":{"x":1}})", R"({"t":{"0":"5"}})",
                              R"({"t":{"0":-1}})", R"({"t":{"0":1.5}})", R"({"t":{"-1":1}})", R"({"t":{"":1}})",
                              R"({"t":{"2147483648":1}})", R"({"t":{"99999999999":1}})", R"({"":{"0":1}})",
                              R"({"t":{"0":99999999999999999999}})", R"({"t":{" 0":1}})", R"({"t":{"0":null}})"}) {
    g.BadValue(std::string("offsets ") + offsets, topic, Mutate(base, {"offsets"}, offsets));
  }
  g.Bad("heartbeat null value", topic, R"({"serverName":"compat"})", std::nullopt);
}

void WrongMessages(Gauntlet& g) {
  const RefMessage& m = Plain()[88];
  g.BadValue("message op c", m.topic, Mutate(*m.value, {"op"}, R"("c")"));
  g.BadValue("message without op", m.topic, Mutate(*m.value, {"op"}, std::nullopt));
  g.BadValue("transactional message without txId", m.topic,
             Mutate(*m.value, {"transaction"}, R"({"id":"1:2","total_order":1,"data_collection_order":1})"));
  for (const std::string wrong : {"1", "[]", "{}", "true", "1.5"}) {
    g.BadValue("message.prefix=" + wrong, m.topic, Mutate(*m.value, {"message", "prefix"}, wrong));
    g.BadValue("message.content=" + wrong, m.topic, Mutate(*m.value, {"message", "content"}, wrong));
  }
  for (const std::string wrong : {R"("x")", "1", "[]", "true"}) {
    g.BadValue("transaction=" + wrong, m.topic, Mutate(*m.value, {"transaction"}, wrong));
    g.BadValue("message=" + wrong, m.topic, Mutate(*m.value, {"message"}, wrong));
  }
  for (const std::string wrong : {R"("x")", "1.5", "[]", "{}", "-1", "true"}) {
    g.BadValue("txId=" + wrong, m.topic, Mutate(*m.value, {"source", "txId"}, wrong));
  }
  g.BadValue("message missing", m.topic, Mutate(*m.value, {"message"}, std::nullopt));
  g.BadValue("message source missing", m.topic, Mutate(*m.value, {"source"}, std::nullopt));
  g.Bad("message null value", m.topic, *m.key, std::nullopt);
  g.BadValue("change event on the message topic", m.topic, *Plain()[75].value);
}

void WrongTopics(Gauntlet& g) {
  const RefMessage& c = Plain()[75];
  for (const char* topic :
       {"", "compat", "compat.", "compat.public", "compat.public.", "compat..line_items", "compatx.public.line_items",
        "other.public.line_items", "__debezium-heartbeat.other", "__debezium-heartbeat.",
        "__debezium-heartbeat.compat.x", "compat.transactions", "Compat.public.line_items", ".compat.public.line_items",
        "compat.public.line_items2", "compat.public.line_item"}) {
    g.Bad(std::string("topic ") + topic, topic, *c.key, *c.value);
  }
  g.Bad("tombstone without key", c.topic, std::nullopt, std::nullopt);
  g.Bad("tombstone with JSON null key", c.topic, "null", std::nullopt);
  g.Bad("tombstone with bad key", c.topic, "{", std::nullopt);
  g.Bad("tombstone on bad topic", "compat.public", *c.key, std::nullopt);
  const ParseOptions no_prefix{"", "tenant_id"};
  EXPECT_FALSE(ParseEvent(no_prefix, c.topic, *c.key, *c.value).ok());
}

void WrongJson(Gauntlet& g, std::mt19937& rng) {
  const RefMessage& c = Plain()[75];
  const RefMessage& cw = WithSchemas()[76];
  // Every truncation of a real envelope (and every 7th of a wrapped one).
  for (size_t n = 0; n < c.value->size(); ++n) g.BadValue("truncated", c.topic, c.value->substr(0, n), *c.key);
  for (size_t n = 0; n < cw.value->size(); n += 7) g.BadValue("truncated wrapped", cw.topic, cw.value->substr(0, n));
  for (const RefMessage* m : {&Plain()[13], &Plain()[88]}) {
    for (size_t n = 0; n < m->value->size(); n += 3) g.BadValue("truncated", m->topic, m->value->substr(0, n));
  }
  for (size_t n = 0; n < c.key->size(); ++n) g.Bad("truncated key", c.topic, c.key->substr(0, n), *c.value);
  // Not an object, trailing garbage, NUL bytes, bad UTF-8, lone surrogates.
  for (const char* v : {"null", "1", "\"x\"", "[]", "true", "[{}]", " ", "\xEF\xBB\xBF{}", "{}{}"}) {
    g.BadValue(std::string("not an envelope: ") + v, c.topic, v);
    g.BadValue(std::string("not a heartbeat: ") + v, "__debezium-heartbeat.compat", v);
    g.BadValue(std::string("not a transaction: ") + v, "compat.transaction", v);
  }
  g.BadValue("trailing garbage", c.topic, *c.value + " x");
  g.BadValue("two documents", c.topic, *c.value + *c.value);
  for (size_t at : {size_t{0}, size_t{1}, c.value->size() / 2, c.value->size() - 1, c.value->size()}) {
    std::string v = *c.value;
    v.insert(at, 1, '\0');
    g.BadValue("NUL byte", c.topic, v);
  }
  {
    std::string v = *c.value;
    v.replace(v.find("BULK-1"), 6, "BU\xC3\x28K1");
    g.BadValue("invalid UTF-8 in a string", c.topic, v);
    for (const char* bad : {"\\uD800x", "\\uDD62", "x\\uDC00", "\\uDFFF\\uD800", "\\uD800\\u0041", "\\uDBFF"}) {
      v = *c.value;
      v.replace(v.find("BULK-1"), 6, bad);
      g.BadValue(std::string("lone surrogate ") + bad, c.topic, v);
      g.Bad(std::string("lone surrogate in a key ") + bad, c.topic, std::string(R"({"id":")") + bad + "\"}", *c.value);
    }
    for (const char* bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80",
                            "\xF5\x80\x80\x80", "\xFF", "\xFE", "\x80", "\xE2\x82", "\xF0\x9F\x98"}) {
      v = *c.value;
      v.replace(v.find("BULK-1"), 6, bad);
      g.BadValue("invalid UTF-8 " + Hex(bad), c.topic, v);
    }
    v = *c.value;
    v.replace(v.find("BULK-1"), 6, "a\tb");
    g.BadValue("raw control character", c.topic, v);
  }
  // Deep nesting and huge values.
  g.BadValue("deep arrays", c.topic, std::string(100000, '['));
  g.BadValue("deep objects", c.topic, [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "{\"a\":";
    s += "1";
    return s + std::string(5000, '}');
  }());
  g.BadValue("deep row", c.topic, Mutate(*c.value, {"after", "sku"}, std::string(200, '[') + std::string(200, ']')));
  g.Bad("deep key", c.topic, std::string(1000, '[') + std::string(1000, ']'), *c.value);
  {
    std::string huge(size_t{64} << 20, ' ');
    huge += "{}";
    g.BadValue("value over 64 MiB", c.topic, huge);
    g.Bad("key over 64 MiB", c.topic, huge, *c.value);
    g.BadValue("heartbeat over 64 MiB", "__debezium-heartbeat.compat", huge);
  }
  g.BadValue("huge op", c.topic, Mutate(*c.value, {"op"}, "\"" + std::string(3 << 20, 'c') + "\""));
  g.BadValue("huge number", c.topic, Mutate(*c.value, {"source", "lsn"}, std::string(100000, '9')));
  // Random bytes, and random JSON-ish tokens.
  const std::string alphabet = "{}[]\":,0123456789.-+eE truefalsnul\\x";
  for (int i = 0; i < 400; ++i) {
    std::string v(rng() % 400, '\0');
    if (i % 2) {
      for (char& ch : v) ch = static_cast<char>(rng());
    } else {
      for (char& ch : v) ch = alphabet[rng() % alphabet.size()];
    }
    const char* topics[] = {"compat.public.line_items", "compat.transaction", "compat.message"};
    g.Bad("random", topics[i % 3], i % 4 ? std::optional<std::string_view>(*c.key) : v, v);
  }
}

// Single-byte corruptions of good messages: accepted or refused, never a crash.
void Mutations(Gauntlet& g, std::mt19937& rng) {
  const std::string specials = "{}[]\":,\\0-.e \x80\xff";
  for (int i = 0; i < 3000; ++i) {
    const RefMessage& m = (i % 2 ? Plain() : WithSchemas())[rng() % 95];
    if (!m.value) continue;
    std::string v = *m.value;
    const size_t at = rng() % v.size();
    v[at] = (i % 3) ? specials[rng() % specials.size()] : static_cast<char>(rng());
    if (i % 5 == 0) v.erase(rng() % v.size(), rng() % 20);
    g.Any("mutated", m.topic, m.key, v);
  }
}

TEST(EventTest, MalformedMessagesAreRefusedWithAReason) {
  Gauntlet g;
  std::mt19937 rng(20240229);
  WrongFieldsOfChanges(g);
  WrongTransactions(g);
  WrongHeartbeats(g);
  WrongMessages(g);
  WrongTopics(g);
  WrongJson(g, rng);
  Mutations(g, rng);
  EXPECT_GE(g.bad(), 1000);
  std::printf("%d malformed messages refused, %d mutated ones survived; sample reasons:\n", g.bad(), g.any());
  for (const std::string& s : g.samples()) std::printf("  %s\n", s.substr(0, 160).c_str());
}

// ----------------------------------------------------------- throughput --

double EventsPerSecond(const std::vector<const RefMessage*>& batch, size_t* bytes) {
  using Clock = std::chrono::steady_clock;
  for (const RefMessage* m : batch) EXPECT_TRUE(Parse(*m).ok());
  size_t events = 0;
  *bytes = 0;
  const auto start = Clock::now();
  std::chrono::duration<double> elapsed{};
  while (elapsed.count() < 0.5) {
    for (int round = 0; round < 100; ++round) {
      for (const RefMessage* m : batch) {
        auto r = Parse(*m);
        if (!r.ok()) ADD_FAILURE() << r.status().ToString();
        *bytes += m->value ? m->value->size() : 0;
        ++events;
      }
    }
    elapsed = Clock::now() - start;
  }
  *bytes = static_cast<size_t>(static_cast<double>(*bytes) / elapsed.count());
  return static_cast<double>(events) / elapsed.count();
}

TEST(EventTest, Throughput) {
#ifdef NDEBUG
  const char* build = "optimized";
#else
  const char* build = "unoptimized (numbers not meaningful)";
#endif
  size_t bytes = 0;
  const RefMessage& typical = Plain()[75];  // a ~600-byte insert envelope
  double rate = EventsPerSecond({&typical}, &bytes);
  std::printf("ParseEvent, %zu-byte envelope: %.0f events/s, %.0f MB/s (%s build)\n", typical.value->size(), rate,
              static_cast<double>(bytes) / 1e6, build);
  for (const auto* file : {&Plain(), &WithSchemas()}) {
    std::vector<const RefMessage*> all;
    for (const RefMessage& m : *file) all.push_back(&m);
    rate = EventsPerSecond(all, &bytes);
    std::printf("ParseEvent, all of %s: %.0f events/s, %.0f MB/s\n",
                file == &Plain() ? "schemas-false.jsonl" : "schemas-true.jsonl", rate,
                static_cast<double>(bytes) / 1e6);
  }
}

}  // namespace
}  // namespace timevault::store
