// Signed change events end to end (real Postgres, real Kafka broker,
// `timevault capture` and `timevault store`, a PITR by the replay engine):
// a transaction forged straight onto Kafka (a librdkafka producer here, as an
// attacker with produce rights would) is dead-lettered with its reason and
// never restored, whether it is unsigned, carries a genuine message's
// signature, or is signed with another key. The control run with
// signing.require = false shows the same unsigned forgery does reach the
// store and a PITR: the check is what stops it.
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "support/capture_harness.h"
#include "timevault/config/config.h"
#include "timevault/core/kafka.h"
#include "timevault/core/signing.h"
#include "timevault/replay/engine.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using signing::EventSigner;
using signing::kSignatureHeader;

struct Message {
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::map<std::string, std::string> headers;
};

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

// "<xid>:<lsn>" of transaction `xid` -> "<new_xid>:<lsn + 1>" (LSN + 1 is
// never a WAL record's start, so no genuine event has it).
void RewriteTxId(rapidjson::Value& id, uint64_t xid, uint64_t new_xid, rapidjson::Document::AllocatorType& a) {
  const std::string s = id.GetString();
  const auto colon = s.find(':');
  ASSERT_NE(colon, std::string::npos) << s;
  ASSERT_EQ(s.substr(0, colon), std::to_string(xid));
  const std::string out = std::to_string(new_xid) + ":" + std::to_string(std::stoull(s.substr(colon + 1)) + 1);
  id.SetString(out.c_str(), static_cast<rapidjson::SizeType>(out.size()), a);
}

// One genuine transaction (BEGIN, one insert, END) as capture produced it.
struct Genuine {
  uint64_t xid = 0;
  Message begin, change, end;
};

// Transaction `xid_f` inserting row `id` with `balance`, made from `g` by
// editing its JSON (new xid, LSNs + 1), headers left out.
std::vector<Message> Forge(const Genuine& g, uint64_t xid_f, int id, int balance) {
  std::vector<Message> out;
  for (const Message* m : {&g.begin, &g.change, &g.end}) {
    Message f{m->topic, m->key, m->value, {}};
    auto key = ParseJson(*m->key);
    auto value = ParseJson(*m->value);
    auto& a = value->GetAllocator();
    if (m == &g.change) {
      (*key)["id"].SetInt(id);
      auto& v = *value;
      v["after"]["id"].SetInt(id);
      v["after"]["balance"].SetInt(balance);
      v["source"]["txId"].SetUint64(xid_f);
      v["source"]["lsn"].SetUint64(v["source"]["lsn"].GetUint64() + 1);
      RewriteTxId(v["transaction"]["id"], g.xid, xid_f, a);
    } else {
      RewriteTxId((*key)["id"], g.xid, xid_f, key->GetAllocator());
      RewriteTxId((*value)["id"], g.xid, xid_f, a);
    }
    f.key = Compact(*key);
    f.value = Compact(*value);
    out.push_back(std::move(f));
  }
  return out;
}

void Produce(const std::vector<Message>& messages) {
  kafka::Conf conf;
  ASSERT_TRUE(conf.Set("bootstrap.servers", Env().kafka_bootstrap).ok());
  auto rk = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
  ASSERT_TRUE(rk.ok()) << rk.status().ToString();
  for (const Message& m : messages) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(m.headers.size() + 1);
    for (const auto& [name, v] : m.headers) rd_kafka_header_add(headers, name.c_str(), -1, v.data(), v.size());
    ASSERT_EQ(rd_kafka_producev(rk->get(), RD_KAFKA_V_TOPIC(m.topic.c_str()),
                                RD_KAFKA_V_KEY(const_cast<char*>(m.key->data()), m.key->size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(m.value->data()), m.value->size()),
                                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(rk->get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

signing::SignedMessage AsSigned(const Message& m) {
  signing::SignedMessage s;
  s.topic = m.topic;
  if (m.key) s.key = *m.key;
  if (m.value) s.value = *m.value;
  for (const auto& [name, v] : m.headers) s.SetHeader(name, v);
  return s;
}

uint64_t Now(CaptureHarness& h) { return ParseLsnText(h.Query("SELECT pg_current_wal_insert_lsn()")); }

std::string Rows(CaptureHarness& h) {
  return h.Query("SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM accounts");
}

std::string StoreRows(store::Store& s, uint64_t lsn) {
  std::map<int, int> rows;
  Status st = s.StateAt(TenantId("ta"), Lsn(lsn), {"public.accounts"}, [&](const store::Row& row) {
    auto d = ParseJson(row.json);
    rows[(*d)["id"].GetInt()] = (*d)["balance"].GetInt();
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::string out;
  for (const auto& [id, balance] : rows)
    out += (out.empty() ? "" : ",") + std::to_string(id) + ":" + std::to_string(balance);
  return out;
}

// Runs the scenario with signing on; `require` is signing.require.
// Returns the dead-letter reasons and checks everything else inline.
struct Outcome {
  std::vector<std::string> reasons;
  std::string store_at_target, live_after_pitr;
};

Outcome RunScenario(bool require) {
  Outcome out;
  TempDir keys;
  const std::string key_file = keys.path() + "/signing.key";
  RunCommand("head -c 32 /dev/urandom > " + key_file + " && chmod 600 " + key_file);
  CaptureOptions options;
  options.extra = "[signing]\nkey_file = \"" + key_file + "\"\nrequire = " + (require ? "true" : "false") + "\n";
  CaptureHarness h(options);
  h.Exec(
      "CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text NOT NULL, balance int NOT NULL);"
      "INSERT INTO accounts VALUES (1, 'ta', 100), (2, 'ta', 200)");
  h.StartCapture();
  h.StartStore();
  h.Exec("INSERT INTO accounts VALUES (50, 'ta', 500)");
  EXPECT_TRUE(h.WaitConfirmed(0, 60));

  // Capture signed every message it produced, with the shared key.
  auto signer = EventSigner::Load(key_file);
  EXPECT_TRUE(signer.ok()) << signer.status().ToString();
  const std::string txn_topic = h.prefix() + ".transaction";
  // The table's and the transaction topic's messages (quiet once read), and
  // two heartbeats (they never stop coming).
  std::vector<Record> records = h.Read({h.Topic("accounts"), txn_topic});
  for (Record& r : h.Read({"__debezium-heartbeat." + h.prefix()}, 2)) records.push_back(std::move(r));
  Genuine g;
  std::optional<Message> heartbeat;
  size_t verified = 0;
  for (const Record& r : records) {
    Message m{r.topic, r.key, r.value, r.headers};
    m.headers.erase(std::string(kSignatureHeader));
    EXPECT_TRUE(signer->Verify(AsSigned(m), r.Header(std::string(kSignatureHeader))).ok())
        << r.topic << "@" << r.offset << " is not signed by capture";
    ++verified;
    if (r.topic.starts_with("__debezium-heartbeat.")) heartbeat = Message{r.topic, r.key, r.value, {}};
    if (!r.value) continue;
    auto v = ParseJson(*r.value);
    if (r.topic == h.Topic("accounts") && (*v)["op"] == "c" && (*v)["after"]["id"].GetInt() == 50) {
      g.xid = (*v)["source"]["txId"].GetUint64();
      g.change = Message{r.topic, r.key, r.value, r.headers};
    }
  }
  EXPECT_GE(verified, 7u);  // 2 snapshot rows, the insert, its BEGIN and END, 2 heartbeats
  if (g.xid == 0) {
    ADD_FAILURE() << "capture's insert of row 50 is not on Kafka";
    return out;
  }
  for (const Record& r : h.Read({txn_topic})) {
    const std::string id = (*ParseJson(*r.value))["id"].GetString();
    if (id.rfind(std::to_string(g.xid) + ":", 0) != 0) continue;
    ((*ParseJson(*r.value))["status"] == "BEGIN" ? g.begin : g.end) = Message{r.topic, r.key, r.value, r.headers};
  }
  EXPECT_TRUE(g.begin.value && g.end.value) << "BEGIN/END of transaction " << g.xid << " not found";
  if (!g.begin.value || !g.end.value) return out;

  // Three forged transactions, each inserting a row into tenant ta:
  // 97 unsigned; 98 with the genuine messages' signatures; 99 signed with
  // the attacker's own key.
  std::vector<Message> forged = Forge(g, g.xid + 1000000, 97, 666);
  std::vector<Message> copied = Forge(g, g.xid + 1000001, 98, 667);
  const Message* genuine[] = {&g.begin, &g.change, &g.end};
  for (size_t i = 0; i < copied.size(); ++i) copied[i].headers = genuine[i]->headers;
  std::vector<Message> own = Forge(g, g.xid + 1000002, 99, 668);
  auto attacker = EventSigner::FromKey(std::string(32, '\x42'));
  for (Message& m : own) m.headers[std::string(kSignatureHeader)] = attacker->Sign(AsSigned(m));
  for (auto* batch : {&forged, &copied, &own}) Produce(*batch);

  h.Exec("UPDATE accounts SET balance = 101 WHERE id = 1");
  const uint64_t target = Now(h);
  const std::string truth = Rows(h);
  EXPECT_EQ(truth, "1:101,2:200,50:500");
  h.Exec("DELETE FROM accounts WHERE id = 2");
  h.Exec("UPDATE accounts SET balance = 5 WHERE id = 50");
  const uint64_t end = Now(h);

  auto s = h.StopStoreAt(end);
  if (!s) {
    ADD_FAILURE() << h.store().ReadLog();
    return out;
  }
  EXPECT_TRUE(s->DeadLetters([&](const store::KafkaPosition&, const std::string& reason) {
                 out.reasons.push_back(reason);
                 return true;
               }).ok());
  out.store_at_target = StoreRows(*s, target);

  // A PITR to the target, through the replay engine as the API runs it.
  auto cfg = config::Load(h.config_path(), {});
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto engine = replay::Engine::Open(*cfg, s.get());
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return out;
  auto plan = (*engine)->PreviewPitr(TenantId("ta"), replay::PitrTarget(Lsn(target)), {});
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (!plan.ok()) return out;
  auto done = (*engine)->ExecutePitr(plan->plan_id, "job-signing", [](std::string_view, double) {});
  EXPECT_TRUE(done.ok()) << done.status().ToString();
  out.live_after_pitr = Rows(h);
  EXPECT_EQ(h.capture().Stop(), 0);

  // A heartbeat forged after capture's last one would steer its slot checks
  // at the next start (a lost slot taken for the same one): capture refuses
  // to start on it, naming it.
  if (require && heartbeat) {
    heartbeat->headers[std::string(kSignatureHeader)] = attacker->Sign(AsSigned(*heartbeat));
    Produce({*heartbeat});
    TempDir logs;
    Process again;
    EXPECT_TRUE(again.Start({TV_BINARY, "--config", h.config_path(), "capture"}, logs.path() + "/capture.log"));
    EXPECT_NE(again.Wait(90), 0) << again.ReadLog();
    EXPECT_NE(again.ReadLog().find("is not capture's: forged or foreign"), std::string::npos) << again.ReadLog();
  }
  return out;
}

size_t Count(const std::vector<std::string>& reasons, const std::string& text) {
  size_t n = 0;
  for (const auto& r : reasons) n += r.find(text) != std::string::npos;
  return n;
}

std::string Join(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons) out += r + "\n";
  return out;
}

TEST(SignedEvents, ForgedAndUnsignedTransactionsAreDeadLetteredAndNeverRestored) {
  const Outcome o = RunScenario(/*require=*/true);
  // Each forged transaction's three messages, each with its reason.
  EXPECT_EQ(o.reasons.size(), 9u) << Join(o.reasons);
  EXPECT_EQ(Count(o.reasons, "signature: unsigned"), 3u) << Join(o.reasons);
  EXPECT_EQ(Count(o.reasons, "signature: forged: the signature does not match"), 3u) << Join(o.reasons);
  EXPECT_EQ(Count(o.reasons, "signature: forged or foreign: signed with key id"), 3u) << Join(o.reasons);
  EXPECT_EQ(o.store_at_target, "1:101,2:200,50:500");
  EXPECT_EQ(o.live_after_pitr, "1:101,2:200,50:500");
}

TEST(SignedEvents, WithoutRequireTheUnsignedForgeryGetsThroughButBadSignaturesDoNot) {
  // The control: the same forgery is effective when nothing refuses it.
  const Outcome o = RunScenario(/*require=*/false);
  EXPECT_EQ(o.reasons.size(), 6u) << Join(o.reasons);
  EXPECT_EQ(Count(o.reasons, "signature: unsigned"), 0u) << Join(o.reasons);
  EXPECT_EQ(o.store_at_target, "1:101,2:200,50:500,97:666");
  EXPECT_EQ(o.live_after_pitr, "1:101,2:200,50:500,97:666");
}

}  // namespace
}  // namespace timevault::testing
