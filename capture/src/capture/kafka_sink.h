// KafkaSink: the capture's idempotent producer (acks=all). Every message may
// carry an AckTracker ticket; its delivery report acknowledges the ticket, so
// confirmation to Postgres follows what Kafka really holds. The first failed
// delivery is kept as a sticky error: the capture session must end and
// restart from the slot (duplicates, never loss).
//
// Local queue memory is bounded; Produce waits (serving delivery reports)
// while the queue is full, so a huge transaction streams instead of piling up.
// With signing.key_file set, every message carries a kSignatureHeader
// (timevault/core/signing.h) the store checks.
//
// An event Kafka refuses as too large (the producer's message.max.bytes, or
// the topic's max.message.bytes at the broker) ends capture with an error
// naming the table and the key instead of a retry that can never succeed;
// it is never acknowledged, so nothing from its transaction on is confirmed.
//
// Not thread-safe: one capture thread produces and polls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "capture/ack_tracker.h"
#include "timevault/capture/capture.h"
#include "timevault/capture/debezium.h"
#include "timevault/config/config.h"
#include "timevault/core/kafka.h"
#include "timevault/core/signing.h"
#include "timevault/core/status.h"

namespace timevault::capture {

class KafkaSink {
 public:
  // Loads signing.key_file if set (refused: an error naming the file).
  static Result<std::unique_ptr<KafkaSink>> Create(const config::KafkaConfig& config,
                                                   const config::SigningConfig& signing, AckTracker* tracker,
                                                   CaptureMetrics* metrics);
  ~KafkaSink();

  // Creates `topic` if missing (with `partitions`) and learns its partition count.
  Status EnsureTopic(const std::string& topic, int partitions);

  // Seeds the acknowledged offsets of every topic that already exists
  // under `prefix` + "." (what an earlier run produced), so that heartbeats
  // list them from the start, also those this run never writes to.
  Status SeedExistingTopics(const std::string& prefix);

  // The partition for a tenant value: murmur2 as Kafka's Java client, so all of
  // one tenant's events of one table share a partition.
  int32_t PartitionForTenant(const std::string& topic, std::string_view tenant) const;

  // Hands one message to librdkafka. `value` nullopt: a tombstone. `ticket` 0:
  // untracked (heartbeats). `partition` RD_KAFKA_PARTITION_UA: by key.
  // `headers` are copied; they need to live only during the call. With a
  // signing key, each must be one of signing::kCoveredHeaders (Internal
  // otherwise: a header the signature would not cover).
  struct Header {
    std::string_view name;
    std::string_view value;
  };
  Status Produce(const std::string& topic, int32_t partition, std::optional<std::string_view> key,
                 std::optional<std::string_view> value, AckTracker::Ticket ticket,
                 std::span<const Header> headers = {});

  // Serves delivery reports for up to `timeout_ms`.
  void Poll(int timeout_ms);
  // Waits until every message is acknowledged or failed, up to `timeout_ms`.
  Status Flush(int timeout_ms);
  // The value of the last message of a partition (nullopt: the topic is
  // missing or empty); the previous run's last heartbeat, for the slot checks.
  // With a signing key it must carry capture's signature (unless
  // signing.require is off and it has none): FailedPrecondition otherwise,
  // so a forged heartbeat cannot steer the slot checks (hide a slot loss).
  Result<std::optional<std::string>> LastMessage(const std::string& topic, int32_t partition);
  // The first delivery failure, or OK.
  const Status& error() const { return error_; }
  // The last acknowledged offset of every partition produced to.
  const AckedOffsets& acked_offsets() const { return acked_offsets_; }

 private:
  KafkaSink() = default;
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  // The error for an event Kafka refuses as too large (issue #18 item 12):
  // FailedPrecondition, which capture does not retry (the event would be
  // refused again, forever, while WAL piles up), naming the table, the key,
  // the size and the settings to raise.
  Status Oversized(const std::string& topic, std::optional<std::string_view> key, size_t bytes, bool by_broker) const;
  // Raises the acknowledged offset of each of `topic`'s `count` partitions
  // to the last offset it holds.
  Status SeedOffsets(const std::string& topic, int count);
  // The kSignatureHeader value for a message (signer_ set).
  Result<std::string> Signature(const std::string& topic, std::optional<std::string_view> key,
                                std::optional<std::string_view> value, std::span<const Header> headers);

  kafka::Handle producer_;
  std::optional<signing::EventSigner> signer_;
  bool require_signatures_ = true;
  std::string bootstrap_;
  std::string topic_prefix_;
  int64_t topic_retention_ms_ = -1;
  AckTracker* tracker_ = nullptr;
  CaptureMetrics* metrics_ = nullptr;
  Status error_;
  std::unordered_map<std::string, int> partitions_;
  AckedOffsets acked_offsets_;
};

}  // namespace timevault::capture
