// The shared fixtures work: a real Postgres (logical WAL) and a real Kafka
// broker, driven through the same RAII wrappers the components use.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <vector>

#include "support/testenv.h"
#include "timevault/core/kafka.h"

namespace timevault {
namespace {

using testing::Env;
using testing::TestDatabase;
using testing::UniqueName;

TEST(Fixtures, PostgresRoundTripWithLogicalWal) {
  TestDatabase db;
  auto conn = db.Connect();
  ASSERT_TRUE(conn.connected());
  auto wal = conn.Exec("SHOW wal_level");
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  EXPECT_EQ(wal->GetString(0, 0), "logical");
  ASSERT_TRUE(conn.Run("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text)").ok());
  ASSERT_TRUE(conn.Run("INSERT INTO items SELECT g, 't' || (g % 3), 'item ' || g FROM generate_series(1, 100) g").ok());
  auto r = conn.ExecParams("SELECT count(*), min(name) FROM items WHERE tenant_id = $1", {std::string("t1")});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->GetString(0, 0), "34");
  EXPECT_EQ(r->GetString(0, 1), "item 1");
  auto bad = conn.Exec("SELECT * FROM no_such_table");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("no_such_table"), std::string::npos);
}

struct Delivery {
  int acked = 0;
  int failed = 0;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Delivery*>(opaque);
  (m->err ? d->failed : d->acked)++;
}

TEST(Fixtures, KafkaThousandMessagesInOrderPerPartition) {
  const auto& env = Env();
  const std::string topic = UniqueName("fixture");
  constexpr int kPartitions = 3;
  constexpr int kMessages = 1000;

  Delivery delivery;
  kafka::Conf pconf;
  ASSERT_TRUE(pconf.Set("bootstrap.servers", env.kafka_bootstrap).ok());
  ASSERT_TRUE(pconf.Set("enable.idempotence", "true").ok());
  ASSERT_TRUE(pconf.Set("acks", "all").ok());
  ASSERT_TRUE(pconf.Set("linger.ms", "5").ok());
  rd_kafka_conf_set_dr_msg_cb(pconf.raw(), OnDelivery);
  rd_kafka_conf_set_opaque(pconf.raw(), &delivery);
  auto producer = kafka::NewHandle(RD_KAFKA_PRODUCER, pconf);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE(kafka::CreateTopic(producer->get(), topic, kPartitions, 10000).ok());

  for (int i = 0; i < kMessages; ++i) {
    std::string key = "k" + std::to_string(i % 17);
    std::string value = std::to_string(i);
    rd_kafka_resp_err_t err;
    do {
      err = rd_kafka_producev(producer->get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(i % kPartitions),
                              RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(producer->get(), 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  ASSERT_EQ(rd_kafka_flush(producer->get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(delivery.acked, kMessages);
  EXPECT_EQ(delivery.failed, 0);

  kafka::Conf cconf;
  ASSERT_TRUE(cconf.Set("bootstrap.servers", env.kafka_bootstrap).ok());
  ASSERT_TRUE(cconf.Set("group.id", UniqueName("g")).ok());
  ASSERT_TRUE(cconf.Set("auto.offset.reset", "earliest").ok());
  ASSERT_TRUE(cconf.Set("enable.auto.commit", "false").ok());
  auto consumer = kafka::NewHandle(RD_KAFKA_CONSUMER, cconf);
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  rd_kafka_poll_set_consumer(consumer->get());
  kafka::PartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  ASSERT_EQ(rd_kafka_subscribe(consumer->get(), topics.get()), RD_KAFKA_RESP_ERR_NO_ERROR);

  std::map<int, std::vector<int>> by_partition;
  int received = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received < kMessages && std::chrono::steady_clock::now() < deadline) {
    kafka::Message m(rd_kafka_consumer_poll(consumer->get(), 100));
    if (!m || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    ASSERT_EQ(m->err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_message_errstr(m.get());
    by_partition[m->partition].push_back(std::stoi(std::string(static_cast<char*>(m->payload), m->len)));
    ++received;
  }
  rd_kafka_consumer_close(consumer->get());
  ASSERT_EQ(received, kMessages);
  ASSERT_EQ(by_partition.size(), static_cast<size_t>(kPartitions));
  for (const auto& [p, values] : by_partition) {
    ASSERT_EQ(values.size(), static_cast<size_t>(kMessages / kPartitions + (p < kMessages % kPartitions)));
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(values[i], p + static_cast<int>(i) * kPartitions) << "partition " << p << " position " << i;
    }
  }
}

}  // namespace
}  // namespace timevault
