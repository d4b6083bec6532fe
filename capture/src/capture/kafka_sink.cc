#include "capture/kafka_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace timevault::capture {

Result<std::unique_ptr<KafkaSink>> KafkaSink::Create(const config::KafkaConfig& config,
                                                     const config::SigningConfig& signing, AckTracker* tracker,
                                                     CaptureMetrics* metrics) {
  std::unique_ptr<KafkaSink> sink(new KafkaSink());
  if (!signing.key_file.empty()) {
    TV_ASSIGN_OR_RETURN(sink->signer_, signing::EventSigner::Load(signing.key_file));
    sink->require_signatures_ = signing.require;
  }
  sink->tracker_ = tracker;
  sink->metrics_ = metrics;
  sink->bootstrap_ = config.bootstrap;
  sink->topic_prefix_ = config.topic_prefix;
  sink->topic_retention_ms_ = config.topic_retention_ms;
  kafka::Conf conf;
  TV_RETURN_IF_ERROR(conf.Set("bootstrap.servers", config.bootstrap));
  TV_RETURN_IF_ERROR(conf.Set("enable.idempotence", "true"));
  TV_RETURN_IF_ERROR(conf.Set("acks", "all"));
  TV_RETURN_IF_ERROR(conf.Set("compression.type", config.compression));
  TV_RETURN_IF_ERROR(conf.Set("linger.ms", std::to_string(config.linger_ms)));
  TV_RETURN_IF_ERROR(conf.Set("partitioner", "murmur2_random"));  // Java client's choice for keyed messages
  // Bounded local queue: backpressure instead of buffering a whole transaction.
  TV_RETURN_IF_ERROR(conf.Set("queue.buffering.max.kbytes", "32768"));
  TV_RETURN_IF_ERROR(conf.Set("queue.buffering.max.messages", "200000"));
  TV_RETURN_IF_ERROR(conf.Set("batch.size", "1000000"));
  TV_RETURN_IF_ERROR(conf.Set("message.max.bytes", "16000000"));
  // Never time a message out (issue 18): after a timeout the idempotent
  // producer moves on, so a later message could land while an earlier one
  // (an END) never does. librdkafka retries until the broker is back;
  // config refuses a finite value in kafka.properties.
  TV_RETURN_IF_ERROR(conf.Set("message.timeout.ms", "0"));
  TV_RETURN_IF_ERROR(conf.SetAll(config.properties));
  rd_kafka_conf_set_dr_msg_cb(conf.raw(), &KafkaSink::OnDelivery);
  rd_kafka_conf_set_opaque(conf.raw(), sink.get());
  TV_ASSIGN_OR_RETURN(sink->producer_, kafka::NewHandle(RD_KAFKA_PRODUCER, conf));
  return sink;
}

KafkaSink::~KafkaSink() {
  if (producer_) rd_kafka_flush(producer_.get(), 5000);
}

void KafkaSink::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  auto ticket = static_cast<AckTracker::Ticket>(reinterpret_cast<uintptr_t>(msg->_private));
  if (msg->err) {
    if (self->error_.ok()) {
      const std::string topic = rd_kafka_topic_name(msg->rkt);
      self->error_ = msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                         ? self->Oversized(topic,
                                           msg->key ? std::optional<std::string_view>(std::string_view(
                                                          static_cast<const char*>(msg->key), msg->key_len))
                                                    : std::nullopt,
                                           msg->len + msg->key_len, /*by_broker=*/true)
                         : kafka::FromError(msg->err, "delivering to " + topic);
      spdlog::error("{}", self->error_.message());
    }
    return;  // never acknowledged: the LSN will not be confirmed
  }
  if (ticket != 0) self->tracker_->Ack(ticket);
  if (msg->offset >= 0) {
    int64_t& last = self->acked_offsets_[rd_kafka_topic_name(msg->rkt)][msg->partition];
    if (msg->offset > last) last = msg->offset;
  }
  self->metrics_->acked_events.fetch_add(1, std::memory_order_relaxed);
}

Status KafkaSink::EnsureTopic(const std::string& topic, int partitions) {
  if (partitions_.count(topic)) return Status::Ok();
  // Kept until the store has read them: a topic's retention deleting unread
  // messages is a gap (kafka.topic_retention_ms, default -1: forever).
  TV_RETURN_IF_ERROR(kafka::CreateTopic(producer_.get(), topic, partitions, 30000,
                                        {{"retention.ms", std::to_string(topic_retention_ms_)}}));
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int count = 0;
  for (int attempt = 0; attempt < 50 && count == 0; ++attempt) {
    err = rd_kafka_metadata(producer_.get(), 0, rkt, &md, 10000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      count = md->topics[0].partition_cnt;
    }
    if (md) rd_kafka_metadata_destroy(md);
    md = nullptr;
    if (count == 0) rd_kafka_poll(producer_.get(), 100);
  }
  rd_kafka_topic_destroy(rkt);
  if (count == 0) return kafka::FromError(err ? err : RD_KAFKA_RESP_ERR__TIMED_OUT, "metadata of topic " + topic);
  partitions_[topic] = count;
  // Seed the acknowledged offsets with what the topic already holds, so the
  // first heartbeats after a restart also cover messages of earlier runs.
  return SeedOffsets(topic, count);
}

Status KafkaSink::SeedExistingTopics(const std::string& prefix) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(producer_.get(), /*all_topics=*/1, nullptr, &md, 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::FromError(err, "listing the topics under " + prefix + ".");
  std::vector<std::pair<std::string, int>> found;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    const std::string_view name(t.topic);
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && name.size() > prefix.size() + 1 && name.starts_with(prefix) &&
        name[prefix.size()] == '.') {
      found.emplace_back(t.topic, t.partition_cnt);
    }
  }
  rd_kafka_metadata_destroy(md);
  for (const auto& [topic, count] : found) {
    if (partitions_.count(topic)) continue;  // seeded by EnsureTopic
    TV_RETURN_IF_ERROR(SeedOffsets(topic, count));
    partitions_[topic] = count;  // EnsureTopic has nothing left to do for it
  }
  return Status::Ok();
}

Status KafkaSink::SeedOffsets(const std::string& topic, int count) {
  for (int p = 0; p < count; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t werr = RD_KAFKA_RESP_ERR_NO_ERROR;
    // A topic created a moment ago may not have its leader elected yet.
    for (int attempt = 0; attempt < 100; ++attempt) {
      werr = rd_kafka_query_watermark_offsets(producer_.get(), topic.c_str(), p, &lo, &hi, 10000);
      if (werr != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION && werr != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
          werr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        break;
      }
      rd_kafka_poll(producer_.get(), 100);
    }
    if (werr != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::FromError(werr, "watermarks of " + topic);
    if (hi > 0) {
      int64_t& last = acked_offsets_[topic][p];
      last = std::max(last, hi - 1);
    }
  }
  return Status::Ok();
}

int32_t KafkaSink::PartitionForTenant(const std::string& topic, std::string_view tenant) const {
  auto it = partitions_.find(topic);
  int32_t count = it == partitions_.end() ? 1 : it->second;
  return rd_kafka_msg_partitioner_murmur2(nullptr, tenant.data(), tenant.size(), count, nullptr, nullptr);
}

Status KafkaSink::Produce(const std::string& topic, int32_t partition, std::optional<std::string_view> key,
                          std::optional<std::string_view> value, AckTracker::Ticket ticket,
                          std::span<const Header> headers_in) {
  if (!error_.ok()) return error_;
  std::string signature;
  if (signer_) {
    TV_ASSIGN_OR_RETURN(signature, Signature(topic, key, value, headers_in));
  }
  if (ticket != 0) tracker_->AddPending(ticket);
  void* key_ptr = key ? const_cast<char*>(key->data()) : nullptr;
  size_t key_len = key ? key->size() : 0;
  void* value_ptr = value ? const_cast<char*>(value->data()) : nullptr;
  size_t value_len = value ? value->size() : 0;
  for (;;) {
    // librdkafka takes ownership of the headers only when producev succeeds.
    rd_kafka_headers_t* headers = nullptr;
    if (!headers_in.empty() || signer_) {
      headers = rd_kafka_headers_new(headers_in.size() + 1);
      for (const Header& h : headers_in)
        rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
      if (signer_) {
        rd_kafka_header_add(headers, signing::kSignatureHeader.data(),
                            static_cast<ssize_t>(signing::kSignatureHeader.size()), signature.data(),
                            static_cast<ssize_t>(signature.size()));
      }
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key_ptr, key_len), RD_KAFKA_V_VALUE(value_ptr, value_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(uintptr_t{ticket})),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (headers) rd_kafka_headers_destroy(headers);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (ticket != 0) tracker_->Ack(ticket);  // never queued: undo the count
      error_ = err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? Oversized(topic, key, key_len + value_len, false)
                                                           : kafka::FromError(err, "producing to " + topic);
      return error_;
    }
    rd_kafka_poll(producer_.get(), 50);  // backpressure: let deliveries drain the queue
    if (!error_.ok()) return error_;
  }
  metrics_->produced_events.fetch_add(1, std::memory_order_relaxed);
  metrics_->produced_bytes.fetch_add(key_len + value_len, std::memory_order_relaxed);
  return Status::Ok();
}

Status KafkaSink::Oversized(const std::string& topic, std::optional<std::string_view> key, size_t bytes,
                            bool by_broker) const {
  constexpr size_t kKeyShown = 300;
  const std::string dotted = topic_prefix_ + ".";
  const std::string table = topic.starts_with(dotted) ? topic.substr(dotted.size()) : topic;
  std::string shown = key ? std::string(key->substr(0, kKeyShown)) : "(none)";
  if (key && key->size() > kKeyShown) shown += "...";
  const std::string limit =
      by_broker ? "the broker refused it as too large: raise the topic's max.message.bytes (kafka-configs.sh --alter "
                  "--entity-type topics --entity-name " +
                      topic +
                      " --add-config max.message.bytes=N; the producer batches events up to batch.size, 1000000 "
                      "bytes, so keep it at least that)"
                : "larger than the producer's message.max.bytes: raise it (kafka.properties) and the topic's "
                  "max.message.bytes";
  return FailedPrecondition("capture: the change event of table " + table + " key " + shown + " is " +
                            std::to_string(bytes) + " bytes; " + limit +
                            ", then start capture again. Nothing from its transaction on is confirmed to Postgres "
                            "(the slot keeps the WAL) and nothing is lost");
}

Result<std::string> KafkaSink::Signature(const std::string& topic, std::optional<std::string_view> key,
                                         std::optional<std::string_view> value, std::span<const Header> headers) {
  signing::SignedMessage m;
  m.topic = topic;
  m.key = key;
  m.value = value;
  for (const Header& h : headers) {
    if (!m.SetHeader(h.name, h.value)) {
      return Internal("capture: header " + std::string(h.name) + " is not covered by the event signature");
    }
  }
  return signer_->Sign(m);
}

Result<std::optional<std::string>> KafkaSink::LastMessage(const std::string& topic, int32_t partition) {
  int64_t lo = 0, hi = 0;
  rd_kafka_resp_err_t werr =
      rd_kafka_query_watermark_offsets(producer_.get(), topic.c_str(), partition, &lo, &hi, 10000);
  if (werr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::optional<std::string>();
  if (werr != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::FromError(werr, "watermarks of " + topic);
  if (hi <= lo) return std::optional<std::string>();
  kafka::Conf conf;
  TV_RETURN_IF_ERROR(conf.Set("bootstrap.servers", bootstrap_));
  TV_RETURN_IF_ERROR(conf.Set("group.id", "timevault-capture-last-heartbeat"));  // never joined nor committed
  TV_RETURN_IF_ERROR(conf.Set("enable.auto.commit", "false"));
  TV_ASSIGN_OR_RETURN(kafka::Handle consumer, kafka::NewHandle(RD_KAFKA_CONSUMER, conf));
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), partition)->offset = hi - 1;
  rd_kafka_resp_err_t aerr = rd_kafka_assign(consumer.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::FromError(aerr, "reading the last message of " + topic);
  std::optional<std::string> found;
  Status st;
  for (int waited = 0; waited < 15000 && !found && st.ok(); waited += 200) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset == hi - 1) {
      found = m->payload != nullptr ? std::string(static_cast<const char*>(m->payload), m->len) : std::string();
      if (signer_) {
        if (Status sig = signer_->VerifyMessage(*m, require_signatures_); !sig.ok()) {
          st = FailedPrecondition("the last message of " + topic + " (offset " + std::to_string(m->offset) +
                                  ") is not capture's: " + sig.message() +
                                  "; someone else wrote to the topic: check its producers (ACLs) before restarting");
        }
      }
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      st = kafka::FromError(m->err, "reading the last message of " + topic);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer.get());
  if (!st.ok()) return st;
  if (!found) return Unavailable("kafka: the last message of " + topic + " did not arrive within 15 s");
  return found;
}

void KafkaSink::Poll(int timeout_ms) { rd_kafka_poll(producer_.get(), timeout_ms); }

Status KafkaSink::Flush(int timeout_ms) {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), timeout_ms);
  if (!error_.ok()) return error_;
  return kafka::FromError(err, "flushing the producer");
}

}  // namespace timevault::capture
