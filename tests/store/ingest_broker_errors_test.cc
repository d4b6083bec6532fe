// The store's consumer against librdkafka's mock cluster, used only to make
// the broker answer requests with errors (integration tests use a real
// broker): a failing request at assignment must not stop or skip anything.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/process.h"
#include "support/testenv.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::testing {
namespace {

constexpr int16_t kListOffsets = 2;  // Kafka protocol API key

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};

class MockCluster {
 public:
  MockCluster() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    EXPECT_EQ(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err), RD_KAFKA_CONF_OK) << err;
    producer_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    EXPECT_TRUE(producer_) << err;
    mock_ = rd_kafka_handle_mock_cluster(producer_.get());
  }
  void Topic(const std::string& name) {
    ASSERT_EQ(rd_kafka_mock_topic_create(mock_, name.c_str(), 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  void Send(const std::string& topic, const std::string& key, const std::string& value) {
    ASSERT_EQ(rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(rd_kafka_flush(producer_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  // The next `n` requests of `api` are answered with `err`.
  void FailNext(int16_t api, int n, rd_kafka_resp_err_t err) {
    for (int i = 0; i < n; ++i) rd_kafka_mock_push_request_errors(mock_, api, 1, err);
  }
  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(mock_); }

 private:
  std::unique_ptr<rd_kafka_t, KafkaDeleter> producer_;
  rd_kafka_mock_cluster_t* mock_ = nullptr;
};

std::string Change(int id, int64_t xid, uint64_t lsn) {
  const std::string tx = std::to_string(xid) + ":" + std::to_string(lsn);
  return R"({"before":null,"after":{"id":)" + std::to_string(id) +
         R"(,"tenant_id":"t1"},"source":{"version":"3.6.1.Final","connector":"postgresql","name":"mk","ts_ms":1,)"
         R"("snapshot":"false","db":"d","ts_us":1000,"schema":"public","table":"a","txId":)" +
         std::to_string(xid) + R"(,"lsn":)" + std::to_string(lsn) + R"(},"transaction":{"id":")" + tx +
         R"(","total_order":1,"data_collection_order":1},"op":"c","ts_ms":2})";
}

// A new store in `dir` with a new master key.
Result<std::unique_ptr<store::Store>> OpenFreshStore(const TempDir& dir) {
  RunCommand("head -c 32 /dev/urandom > " + dir.path() + "/key && chmod 600 " + dir.path() + "/key");
  store::Store::Options o;
  o.path = dir.path() + "/store";
  o.key_file = dir.path() + "/key";
  return store::Store::Open(o);
}

// A fresh store asks the broker for each partition's first offset at its
// first assignment; when the broker answers that with an error, the
// partition starts from the beginning and nothing is lost.
TEST(IngestBrokerErrors, AFailedFirstOffsetQueryStartsThePartitionFromTheBeginning) {
  MockCluster kafka;
  for (const char* t : {"mk.public.a", "mk.transaction", "__debezium-heartbeat.mk"}) kafka.Topic(t);
  kafka.Send("__debezium-heartbeat.mk", R"({"serverName":"mk"})",
             R"({"ts_ms":1,"lsn":500,"server_ts_ms":1,"offsets":{}})");
  for (int i = 0; i < 3; ++i) {
    kafka.Send("mk.public.a", R"({"id":)" + std::to_string(i) + "}", Change(i, 100 + i, 1000 + 10 * i));
    kafka.Send("mk.transaction", R"({"id":"x"})",
               R"({"status":"END","id":")" + std::to_string(100 + i) + ":" + std::to_string(1005 + 10 * i) +
                   R"(","event_count":1,"data_collections":[],"ts_ms":1})");
  }
  // Every first-offset query of the three partitions fails (each asks for
  // the low and the high watermark).
  kafka.FailNext(kListOffsets, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);

  TempDir dir;
  auto s = OpenFreshStore(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  config::Config cfg;
  cfg.kafka.bootstrap = kafka.bootstrap();
  cfg.kafka.topic_prefix = "mk";
  cfg.kafka.consumer_group = "mk-store";
  cfg.store.path = dir.path() + "/store";
  store::IngestMetrics metrics;
  std::atomic<bool> stop{false};
  Status result;
  std::thread t([&] { result = store::RunIngest(cfg, s->get(), &metrics, &stop); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto recoverable = [&] {
    auto p = (*s)->RecoverablePoint();
    return p.ok() ? p->lsn.value() : 0;
  };
  while (recoverable() < 1025 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(recoverable(), 1025u) << "every message stored, from offset 0 of every partition";
  EXPECT_EQ((*s)->Stats().events_stored, 3u);
  EXPECT_EQ(metrics.consumed.load(), 7u);
}

// Without a consumer group there is no consumer queue to wait on: a clear
// error at start, not a crash (the config refuses an empty group; a caller
// building its Config by hand can still pass one).
TEST(IngestBrokerErrors, AnEmptyConsumerGroupIsAClearError) {
  TempDir dir;
  auto s = OpenFreshStore(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  config::Config cfg;
  cfg.kafka.bootstrap = "127.0.0.1:1";
  cfg.kafka.topic_prefix = "mk";
  cfg.kafka.consumer_group = "";
  store::IngestMetrics metrics;
  std::atomic<bool> stop{false};
  Status st = store::RunIngest(cfg, s->get(), &metrics, &stop);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("kafka.consumer_group"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace timevault::testing
