#include "support/kafka_reader.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/testenv.h"
#include "timevault/core/kafka.h"

namespace timevault::testing {

std::vector<Record> ReadTopics(const std::string& bootstrap, const std::vector<std::string>& topics, int quiet_ms,
                               size_t expected, int max_wait_s) {
  std::vector<Record> out;
  kafka::Conf conf;
  EXPECT_TRUE(conf.Set("bootstrap.servers", bootstrap).ok());
  EXPECT_TRUE(conf.Set("group.id", UniqueName("reader")).ok());
  EXPECT_TRUE(conf.Set("auto.offset.reset", "earliest").ok());
  EXPECT_TRUE(conf.Set("enable.auto.commit", "false").ok());
  EXPECT_TRUE(conf.Set("topic.metadata.refresh.interval.ms", "1000").ok());
  auto consumer = kafka::NewHandle(RD_KAFKA_CONSUMER, conf);
  if (!consumer.ok()) {
    ADD_FAILURE() << consumer.status().ToString();
    return out;
  }
  rd_kafka_poll_set_consumer(consumer->get());
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  EXPECT_EQ(rd_kafka_subscribe(consumer->get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto start = std::chrono::steady_clock::now();
  auto last = start;
  bool got_any = false;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (expected && out.size() >= expected) break;
    if (now - start > std::chrono::seconds(max_wait_s)) break;
    if (got_any && !expected && now - last > std::chrono::milliseconds(quiet_ms)) break;
    kafka::Message m(rd_kafka_consumer_poll(consumer->get(), 200));
    if (!m) continue;
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && m->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        ADD_FAILURE() << rd_kafka_message_errstr(m.get());
      }
      continue;
    }
    Record r;
    r.topic = rd_kafka_topic_name(m->rkt);
    r.partition = m->partition;
    r.offset = m->offset;
    if (m->key) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) r.value = std::string(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
        r.headers[name] = value ? std::string(static_cast<const char*>(value), size) : std::string();
    }
    out.push_back(std::move(r));
    got_any = true;
    last = std::chrono::steady_clock::now();
  }
  rd_kafka_consumer_close(consumer->get());
  return out;
}

long long CountMessages(const std::string& bootstrap, const std::string& topic) {
  kafka::Conf conf;
  EXPECT_TRUE(conf.Set("bootstrap.servers", bootstrap).ok());
  auto rk = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
  if (!rk.ok()) return -1;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk->get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  long long total = 0;
  if (rd_kafka_metadata(rk->get(), 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
    for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
      int64_t lo = 0, hi = 0;
      if (rd_kafka_query_watermark_offsets(rk->get(), topic.c_str(), p, &lo, &hi, 10000) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        total += hi - lo;
      }
    }
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return total;
}

void ProduceRaw(const std::string& bootstrap, const std::string& topic, const std::string& key,
                const std::string& value) {
  kafka::Conf conf;
  EXPECT_TRUE(conf.Set("bootstrap.servers", bootstrap).ok());
  auto rk = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
  ASSERT_TRUE(rk.ok()) << rk.status().ToString();
  ASSERT_EQ(rd_kafka_producev(rk->get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(rk->get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

}  // namespace timevault::testing
