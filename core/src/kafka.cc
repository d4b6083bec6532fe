#include "timevault/core/kafka.h"

#include <spdlog/spdlog.h>

namespace timevault::kafka {

namespace {

// librdkafka's own log lines (broker state, retries) go through spdlog like
// every other line, so --log-format json keeps one JSON object per line
// (librdkafka's default logger writes to stderr directly). Called from
// librdkafka's threads; spdlog is thread-safe.
void LogThroughSpdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  spdlog::level::level_enum lvl = spdlog::level::debug;  // syslog levels: 7 debug
  if (level <= 2) {
    lvl = spdlog::level::critical;
  } else if (level == 3) {
    lvl = spdlog::level::err;
  } else if (level == 4) {
    lvl = spdlog::level::warn;
  } else if (level <= 6) {
    lvl = spdlog::level::info;
  }
  spdlog::log(lvl, "kafka {} {}: {}", rk ? rd_kafka_name(rk) : "client", facility, message);
}

}  // namespace

Conf::Conf() : conf_(rd_kafka_conf_new()) { rd_kafka_conf_set_log_cb(conf_, LogThroughSpdlog); }
Conf::~Conf() {
  if (conf_) rd_kafka_conf_destroy(conf_);
}

Status Conf::Set(const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf_, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    // The value is never repeated: a misspelt or misplaced setting may be a
    // secret (sasl.password), and this message reaches logs. librdkafka's
    // reason quotes the value for a bad one, so it is cut out of it too.
    std::string reason = err;
    if (!value.empty()) {
      for (size_t p = reason.find(value); p != std::string::npos; p = reason.find(value, p)) {
        reason.replace(p, value.size(), "<value hidden>");
        p += 14;
      }
    }
    return InvalidArgument("kafka setting " + key + ": " + reason);
  }
  return Status::Ok();
}

Status Conf::SetAll(const std::map<std::string, std::string>& props) {
  for (const auto& [k, v] : props) TV_RETURN_IF_ERROR(Set(k, v));
  return Status::Ok();
}

rd_kafka_conf_t* Conf::release() {
  rd_kafka_conf_t* c = conf_;
  conf_ = nullptr;
  return c;
}

Result<Handle> NewHandle(rd_kafka_type_t type, Conf& conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.raw(), err, sizeof err);
  if (!rk) return InvalidArgument(std::string("kafka: cannot create client: ") + err);
  conf.release();  // owned by rk now
  return Handle(rk);
}

Status CreateTopic(rd_kafka_t* rk, const std::string& topic, int partitions, int timeout_ms,
                   const std::map<std::string, std::string>& configs) {
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, err, sizeof err);
  if (!nt) return InvalidArgument("kafka: topic " + topic + ": " + err);
  for (const auto& [name, value] : configs) {
    if (rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str())) {
      rd_kafka_NewTopic_destroy(nt);
      return FromError(e, "topic " + topic + " setting " + name);
    }
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
  Status st = Status::Ok();
  if (!ev) {
    st = Unavailable("kafka: creating topic " + topic + ": timed out");
  } else if (rd_kafka_event_error(ev)) {
    st = FromError(rd_kafka_event_error(ev), "creating topic " + topic);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      auto e = rd_kafka_topic_result_error(res[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        st = FromError(e, "creating topic " + topic);
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  return st;
}

Status FromError(rd_kafka_resp_err_t err, const std::string& context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  std::string m = "kafka: " + context + ": " + rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION: return Unavailable(m);
    case RD_KAFKA_RESP_ERR__FATAL: return Internal(m);
    default: return Internal(m);
  }
}

}  // namespace timevault::kafka
