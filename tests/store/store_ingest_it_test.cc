// The store's consumer against the real broker with messages produced by the
// test itself: transactions split across topics and partitions and delivered
// out of order, and a flood of malformed messages.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "support/process.h"
#include "support/testenv.h"
#include "timevault/core/kafka.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

using store::Store;

class Producer {
 public:
  Producer() {
    kafka::Conf conf;
    EXPECT_TRUE(conf.Set("bootstrap.servers", Env().kafka_bootstrap).ok());
    EXPECT_TRUE(conf.Set("enable.idempotence", "true").ok());
    EXPECT_TRUE(conf.Set("message.max.bytes", "16000000").ok());
    auto h = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
    EXPECT_TRUE(h.ok());
    rk_ = std::move(h).value();
  }
  void Topic(const std::string& t, int partitions) {
    ASSERT_TRUE(kafka::CreateTopic(rk_.get(), t, partitions, 10000).ok());
  }
  // Capture's topics of `prefix`: `<prefix>.<name>` with its partitions for
  // each of `changes`, the transaction topic and the heartbeat topic.
  void CaptureTopics(const std::string& prefix, const std::vector<std::pair<std::string, int>>& changes) {
    for (const auto& [name, partitions] : changes) Topic(prefix + "." + name, partitions);
    Topic(prefix + ".transaction", 1);
    Topic("__debezium-heartbeat." + prefix, 1);
  }
  void Send(const std::string& topic, int partition, const std::optional<std::string>& key,
            const std::optional<std::string>& value) {
    void* key_ptr = key ? const_cast<char*>(key->data()) : nullptr;
    size_t key_len = key ? key->size() : 0;
    void* value_ptr = value ? const_cast<char*>(value->data()) : nullptr;
    size_t value_len = value ? value->size() : 0;
    auto err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_KEY(key_ptr, key_len), RD_KAFKA_V_VALUE(value_ptr, value_len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(rd_kafka_flush(rk_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

 private:
  kafka::Handle rk_;
};

constexpr int64_t kTs = 1795749657123456;

std::string Change(const std::string& prefix, const std::string& table, int id, const std::string& tenant,
                   const std::string& v, int64_t xid, uint64_t lsn) {
  std::string tx = std::to_string(xid) + ":" + std::to_string(lsn);
  return R"({"before":null,"after":{"id":)" + std::to_string(id) + R"(,"tenant_id":")" + tenant + R"(","v":")" + v +
         R"("},"source":{"version":"3.6.1.Final","connector":"postgresql","name":")" + prefix +
         R"(","ts_ms":1795749657123,"snapshot":"false","db":"d","sequence":"[null,\")" + std::to_string(lsn) +
         R"(\"]","ts_us":)" + std::to_string(kTs) + R"(,"ts_ns":)" + std::to_string(kTs * 1000) +
         R"(,"schema":"public","table":")" + table + R"(","txId":)" + std::to_string(xid) + R"(,"lsn":)" +
         std::to_string(lsn) + R"(,"xmin":null,"origin":null,"origin_lsn":null},"transaction":{"id":")" + tx +
         R"(","total_order":1,"data_collection_order":1},"op":"c","ts_ms":1795749658000,"ts_us":1795749658000000,)"
         R"("ts_ns":1795749658000000000})";
}

std::string End(int64_t xid, uint64_t end_lsn, int count) {
  std::string id = std::to_string(xid) + ":" + std::to_string(end_lsn);
  return R"({"status":"END","id":")" + id + R"(","event_count":)" + std::to_string(count) +
         R"(,"data_collections":[],"ts_ms":1795749657123})";
}

// `offsets`: the last offset capture produced to each partition before it
// (a JSON object: topic -> {partition: offset}).
std::string Heartbeat(uint64_t lsn, const std::string& offsets = "{}") {
  return R"({"ts_ms":1795749660000,"lsn":)" + std::to_string(lsn) + R"(,"server_ts_ms":1795749657000,"offsets":)" +
         offsets + "}";
}

// `timevault store`'s ingest loop, in this process, on its own thread.
class Ingest {
 public:
  Ingest(const std::string& prefix, const TempDir& dir) {
    RunCommand("head -c 32 /dev/urandom > " + dir.path() + "/key && chmod 600 " + dir.path() + "/key");
    config_.kafka.bootstrap = Env().kafka_bootstrap;
    config_.kafka.topic_prefix = prefix;
    config_.kafka.consumer_group = prefix + "-store";
    config_.store.path = dir.path() + "/store";
    config_.store.key_file = dir.path() + "/key";
    Store::Options o;
    o.path = config_.store.path;
    o.key_file = config_.store.key_file;
    auto s = Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    thread_ = std::thread([this] { result_ = store::RunIngest(config_, store_.get(), &metrics_, &stop_); });
  }
  ~Ingest() { (void)Stop(); }
  Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  Store& store() { return *store_; }
  store::IngestMetrics& metrics() { return metrics_; }
  bool WaitConsumed(uint64_t n, int timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (metrics_.consumed.load() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

 private:
  config::Config config_;
  std::unique_ptr<Store> store_;
  store::IngestMetrics metrics_;
  std::atomic<bool> stop_{false};
  Status result_;
  std::thread thread_;
};

uint64_t Recoverable(Store& s) {
  auto p = s.RecoverablePoint();
  return p.ok() ? p->lsn.value() : 0;
}

TEST(StoreIngest, RecoverablePointNeverPassesAnIncompleteTransaction) {
  const std::string prefix = UniqueName("rp");
  Producer p;
  p.CaptureTopics(prefix, {{"public.a", 3}, {"public.b", 2}});
  TempDir dir;
  Ingest ingest(prefix, dir);
  uint64_t sent = 0;
  auto send = [&](const std::string& topic, int part, const std::string& key, const std::string& value) {
    p.Send(topic, part, key, value);
    ++sent;
  };
  // Nothing happened yet: an (idle) heartbeat makes 0/1F4 recoverable.
  send("__debezium-heartbeat." + prefix, 0, R"({"serverName":"x"})", Heartbeat(500));
  ASSERT_TRUE(ingest.WaitConsumed(sent, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Recoverable(ingest.store()), 500u);

  // Transaction 100 (commit end 1000): three events on two topics, three
  // partitions; its END arrives first, then the events one by one.
  send(prefix + ".transaction", 0, R"({"id":"100:1000"})", End(100, 1000, 3));
  send(prefix + ".public.b", 1, R"({"id":7})", Change(prefix, "b", 7, "t1", "x", 100, 960));
  ASSERT_TRUE(ingest.WaitConsumed(sent, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Recoverable(ingest.store()), 500u) << "1 of 3 events stored";
  // A heartbeat claiming 2000 must not help while transaction 100 is
  // incomplete. It lists the offsets of every event capture produced below
  // 2000, as capture's heartbeats do (docs/capture.md): without them a
  // heartbeat met past an incomplete transaction means its events are lost
  // for good, a gap (StoreTest.AHeartbeatPastAnIncompleteTransactionsEventsOpensAGapNamingIt).
  send("__debezium-heartbeat." + prefix, 0, R"({"serverName":"x"})",
       Heartbeat(2000, R"({")" + prefix + R"(.public.a":{"0":0,"2":0},")" + prefix + R"(.public.b":{"1":0},")" +
                           prefix + R"(.transaction":{"0":0}})"));
  send(prefix + ".public.a", 2, R"({"id":1})", Change(prefix, "a", 1, "t1", "y", 100, 900));
  ASSERT_TRUE(ingest.WaitConsumed(sent, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Recoverable(ingest.store()), 500u) << "2 of 3 events stored";
  auto refused = ingest.store().ResolveTime(CommitTime(kTs));
  EXPECT_FALSE(refused.ok());
  std::vector<store::Row> rows;
  Status past = ingest.store().StateAt(TenantId("t1"), Lsn(1000), {}, [&](const store::Row& r) {
    rows.push_back(r);
    return true;
  });
  EXPECT_EQ(past.code(), StatusCode::kOutOfRange) << past.ToString();
  // The last event completes it: the point jumps to the heartbeat's 2000.
  send(prefix + ".public.a", 0, R"({"id":2})", Change(prefix, "a", 2, "t1", "z", 100, 930));
  ASSERT_TRUE(ingest.WaitConsumed(sent, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Recoverable(ingest.store()), 2000u);
  Status ok = ingest.store().StateAt(TenantId("t1"), Lsn(1000), {}, [&](const store::Row& r) {
    rows.push_back(r);
    return true;
  });
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  EXPECT_EQ(rows.size(), 3u);
  EXPECT_TRUE(ingest.Stop().ok());
}

std::string Message(const std::string& prefix, int64_t xid, uint64_t lsn) {
  return R"({"op":"m","ts_ms":1795749658000,"source":{"version":"3.6.1.Final","connector":"postgresql","name":")" +
         prefix + R"(","ts_ms":1795749657123,"ts_us":)" + std::to_string(kTs) +
         R"(,"snapshot":"false","db":"d","schema":"","table":"","txId":)" + std::to_string(xid) + R"(,"lsn":)" +
         std::to_string(lsn) + R"(},"transaction":{"id":")" + std::to_string(xid) + ":" + std::to_string(lsn) +
         R"(","total_order":1,"data_collection_order":1},"message":{"prefix":"app","content":null}})";
}

// The poll loop reads the transaction topic only a little ahead (in WAL) of
// the changes it has polled, so that a batch's ENDs close its own
// transactions. Transactions with nothing but logical messages, or a
// transaction whose commit comes long after its last change, put ENDs far
// ahead of every change: they must still be read once nothing else comes,
// or those transactions never complete and the recoverable point stops.
TEST(StoreIngest, EndsFarAheadOfEveryChangeAreStillRead) {
  const std::string prefix = UniqueName("ahead");
  Producer p;
  p.CaptureTopics(prefix, {{"public.a", 1}, {"message", 1}});
  TempDir dir;
  Ingest ingest(prefix, dir);
  uint64_t sent = 0;
  auto send = [&](const std::string& topic, const std::string& key, const std::string& value) {
    p.Send(topic, 0, key, value);
    ++sent;
  };
  send("__debezium-heartbeat." + prefix, R"({"serverName":"x"})", Heartbeat(500));  // capture's first
  // One change, then a transaction that commits 10 MB of WAL later.
  send(prefix + ".public.a", R"({"id":1})", Change(prefix, "a", 1, "t1", "v", 100, 1000));
  send(prefix + ".public.a", R"({"id":2})", Change(prefix, "a", 2, "t1", "v", 101, 2000));
  send(prefix + ".transaction", R"({"id":"100:1100"})", End(100, 1100, 1));
  send(prefix + ".transaction", R"({"id":"101:10002000"})", End(101, 10002000, 1));
  // Then 40 transactions with a logical message each, 4 KB of WAL apart.
  uint64_t last_end = 0;
  for (int i = 0; i < 40; ++i) {
    const int64_t xid = 200 + i;
    const uint64_t lsn = 10010000 + static_cast<uint64_t>(i) * 4096;
    send(prefix + ".message", R"({"prefix":"app"})", Message(prefix, xid, lsn));
    last_end = lsn + 100;
    send(prefix + ".transaction", R"({"id":"x"})", End(xid, last_end, 1));
  }
  ASSERT_TRUE(ingest.WaitConsumed(sent, 60)) << ingest.metrics().consumed.load() << " of " << sent;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Recoverable(ingest.store()) < last_end && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Recoverable(ingest.store()), last_end) << "every transaction is complete";
  std::vector<store::HistoryEvent> events;
  ASSERT_TRUE(ingest.store()
                  .History(TenantId(""), Lsn(0), Lsn(last_end), std::nullopt, std::nullopt,
                           [&](const store::HistoryEvent& e) {
                             events.push_back(e);
                             return true;
                           })
                  .ok());
  EXPECT_EQ(events.size(), 40u) << "the messages, in the store-wide history";
  EXPECT_TRUE(ingest.Stop().ok());
}

// Two transactions that commit 5 MB of WAL after their changes, and nothing
// after them (no message, no heartbeat): the second END is far ahead of every
// change, and is read once the change partitions have gone quiet.
TEST(StoreIngest, EndsOfLongTransactionsAreReadWhenNothingFollows) {
  const std::string prefix = UniqueName("long");
  Producer p;
  p.CaptureTopics(prefix, {{"public.a", 2}});
  TempDir dir;
  Ingest ingest(prefix, dir);
  p.Send("__debezium-heartbeat." + prefix, 0, std::string(R"({"serverName":"x"})"), Heartbeat(500));
  p.Send(prefix + ".public.a", 0, std::string(R"({"id":1})"), Change(prefix, "a", 1, "t1", "v", 100, 1000));
  p.Send(prefix + ".public.a", 1, std::string(R"({"id":2})"), Change(prefix, "a", 2, "t2", "v", 101, 2000));
  p.Send(prefix + ".transaction", 0, std::string(R"({"id":"x"})"), End(100, 5000000, 1));
  p.Send(prefix + ".transaction", 0, std::string(R"({"id":"x"})"), End(101, 5000100, 1));
  ASSERT_TRUE(ingest.WaitConsumed(5, 60)) << ingest.metrics().consumed.load() << " of 5";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Recoverable(ingest.store()) < 5000100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Recoverable(ingest.store()), 5000100u);
  int rows = 0;
  EXPECT_TRUE(ingest.store()
                  .StateAt(TenantId("t2"), Lsn(5000100), {},
                           [&](const store::Row&) {
                             ++rows;
                             return true;
                           })
                  .ok());
  EXPECT_EQ(rows, 1);
  EXPECT_TRUE(ingest.Stop().ok());
}

// An idle store sleeps until a message comes (librdkafka signals an eventfd
// when a queue gets one) rather than waking every few milliseconds to look:
// about ten sleeps a second, each ended early by a message arriving.
TEST(StoreIngest, AnIdleStoreSleepsUntilAMessageComes) {
  const std::string prefix = UniqueName("idle");
  Producer p;
  p.CaptureTopics(prefix, {{"public.a", 2}});
  TempDir dir;
  Ingest ingest(prefix, dir);
  const std::string hb_topic = "__debezium-heartbeat." + prefix;
  p.Send(hb_topic, 0, std::string(R"({"serverName":"x"})"), Heartbeat(500));
  ASSERT_TRUE(ingest.WaitConsumed(1, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // settled: every partition assigned

  const uint64_t sleeps0 = ingest.metrics().idle_sleeps.load();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const uint64_t slept = ingest.metrics().idle_sleeps.load() - sleeps0;
  EXPECT_GE(slept, 5u);
  EXPECT_LE(slept, 60u) << "an idle loop sleeps until the batch window ends, not 5 ms at a time";

  const uint64_t woken0 = ingest.metrics().idle_woken.load();
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    p.Send(hb_topic, 0, std::string(R"({"serverName":"x"})"), Heartbeat(600 + i));
    p.Send(prefix + ".public.a", i % 2, std::string(R"({"id":)") + std::to_string(i) + "}",
           Change(prefix, "a", i, "t1", "v", 100 + i, 1000 + i));
  }
  ASSERT_TRUE(ingest.WaitConsumed(13, 60));
  EXPECT_GE(ingest.metrics().idle_woken.load() - woken0, 4u) << "messages end the sleeps";
  EXPECT_TRUE(ingest.Stop().ok());
}

TEST(StoreIngest, ThousandsOfMalformedMessagesGoToDeadLettersGoodOnesAreStored) {
  const std::string prefix = UniqueName("bad");
  const std::string topic = prefix + ".public.a";
  Producer p;
  p.CaptureTopics(prefix, {{"public.a", 2}});
  TempDir dir;
  Ingest ingest(prefix, dir);
  std::mt19937 rng(42);
  const std::string good = Change(prefix, "a", 1, "t1", "v", 1, 100);
  std::vector<std::string> bad;
  for (int i = 0; i < 250; ++i) {  // random bytes
    std::string b(1 + rng() % 300, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    bad.push_back(b);
  }
  for (size_t n = 2; n < good.size() && bad.size() < 700; n += 2) bad.push_back(good.substr(0, n));  // truncated
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  for (int i = 0; i < 40; ++i) {
    bad.push_back(replace(R"("op":"c")", R"("op":)" + std::to_string(i)));
    bad.push_back(replace(R"("lsn":100,)", R"("lsn":"x)" + std::to_string(i) + R"(",)"));
    bad.push_back(replace(R"("txId":1,)", R"("txId":[)" + std::to_string(i) + "],"));
    bad.push_back(replace(R"("source":{)", R"("sourc)" + std::to_string(i) + R"(":{)"));
    bad.push_back(replace(R"("after":{)", R"("after":[)" + std::to_string(i) + R"(],"x":{)"));
    bad.push_back("[" + std::to_string(i) + "]");
    bad.push_back(std::string(i + 1, '{'));
  }
  bad.push_back(R"({"v":")" + std::string(2 << 20, 'x') + R"("})");  // a huge value
  while (bad.size() < 1000) bad.push_back("not json " + std::to_string(bad.size()));

  uint64_t sent = 0;
  int good_rows = 0;
  for (size_t i = 0; i < bad.size(); ++i) {
    p.Send(topic, static_cast<int>(i % 2), std::string(R"({"id":9})"), bad[i]);
    ++sent;
    if (i % 100 == 0) {
      int id = 1000 + good_rows;
      uint64_t lsn = 1000 + i;
      p.Send(topic, 0, R"({"id":)" + std::to_string(id) + "}", Change(prefix, "a", id, "t1", "ok", 5000 + i, lsn));
      p.Send(prefix + ".transaction", 0, R"({"id":"x"})", End(5000 + i, lsn + 1, 1));
      sent += 2;
      ++good_rows;
    }
  }
  p.Send("__debezium-heartbeat." + prefix, 0, R"({"serverName":"x"})", Heartbeat(5000));
  ++sent;
  // Kafka may deliver a message again after a rebalance (the regex
  // subscription sees topics appear); the store must absorb that, so the
  // assertions count what the store holds, not what was consumed.
  ASSERT_TRUE(ingest.WaitConsumed(sent, 120)) << ingest.metrics().consumed.load() << " of " << sent;
  auto rows_stored = [&] {
    int rows = 0;
    auto point = ingest.store().RecoverablePoint();
    if (!point.ok()) return -1;
    Status st = ingest.store().StateAt(TenantId("t1"), point->lsn, {}, [&](const store::Row&) {
      ++rows;
      return true;
    });
    return st.ok() ? rows : -1;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((ingest.store().Stats().dead_letters < bad.size() || rows_stored() < good_rows) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(ingest.metrics().dead_letters.load(), bad.size());
  int dead = 0;
  ASSERT_TRUE(ingest.store()
                  .DeadLetters([&](const store::KafkaPosition& pos, const std::string& reason) {
                    EXPECT_FALSE(reason.empty()) << pos.topic << "@" << pos.offset;
                    EXPECT_EQ(pos.topic, topic);
                    ++dead;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(dead, static_cast<int>(bad.size())) << "each bad message stored once, with its reason";
  EXPECT_EQ(ingest.store().Stats().dead_letters, bad.size());
  EXPECT_EQ(rows_stored(), good_rows) << "every good message stored";
  EXPECT_TRUE(ingest.Stop().ok()) << "the consumer kept running through every bad message";
}

}  // namespace
}  // namespace timevault::testing
