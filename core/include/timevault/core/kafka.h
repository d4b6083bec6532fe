// RAII over librdkafka: a config builder that reports the offending key, and
// owning handles for rd_kafka_t and topic partition lists. Handles are
// thread-safe as librdkafka documents (produce/poll from any thread).
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

#include "timevault/core/status.h"

namespace timevault::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

// Owns an rd_kafka_conf_t until it is handed to NewHandle.
class Conf {
 public:
  Conf();
  ~Conf();
  Conf(const Conf&) = delete;
  Conf& operator=(const Conf&) = delete;

  // InvalidArgument naming the key and librdkafka's reason.
  Status Set(const std::string& key, const std::string& value);
  Status SetAll(const std::map<std::string, std::string>& props);
  rd_kafka_conf_t* raw() { return conf_; }
  // Gives up ownership (rd_kafka_new takes it on success).
  rd_kafka_conf_t* release();

 private:
  rd_kafka_conf_t* conf_;
};

// Creates a producer or consumer; `conf` is consumed on success.
Result<Handle> NewHandle(rd_kafka_type_t type, Conf& conf);

// Creates `topic` with `partitions` partitions (replication factor 1 unless
// the broker's default applies: -1). An existing topic is OK.
// `configs`: topic settings (e.g. retention.ms) for a topic created here.
Status CreateTopic(rd_kafka_t* rk, const std::string& topic, int partitions, int timeout_ms,
                   const std::map<std::string, std::string>& configs = {});

Status FromError(rd_kafka_resp_err_t err, const std::string& context);

}  // namespace timevault::kafka
