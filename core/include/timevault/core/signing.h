// Signed change events (docs/capture.md, "Signed events"; docs/store.md,
// "Signature check"): capture signs every message it produces with
// HMAC-SHA256 under a key shared with the store only (signing.key_file), and
// the store dead-letters what does not verify. Kafka then carries history it
// cannot forge: whoever can produce to the topics but does not hold the key
// can delay or drop messages, never write a row a PITR restores.
//
// What a signature covers (SignedMessage): the topic, the key, the value
// (absent = a tombstone, distinct from empty) and every header capture writes
// and the store reads (kCoveredHeaders; the last of each name, as the store
// reads them: absent is distinct from empty). Not covered: the partition
// (capture may let librdkafka pick it) and headers timevault does not read.
// A genuine message copied into another partition of its topic is a duplicate,
// which the store ignores (invariant 2).
//
// The header (kSignatureHeader) holds "v1:<key id>:<mac>": the key id is 8
// hex digits naming the key (HMAC of a fixed label, so it reveals nothing of
// the key), the mac 64 hex digits of HMAC-SHA256 over
//
//   "timevault/signed-event/v1" 0x00
//   field(topic) field(key) field(value) field(header) for each kCoveredHeaders
//   field(x) = 0x00 if absent, else 0x01 + 8-byte big-endian length + bytes
//
// (lengths prefixed: no two messages give the same input).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "timevault/core/status.h"

struct evp_mac_ctx_st;
struct rd_kafka_message_s;  // rd_kafka_message_t (librdkafka/rdkafka.h)

namespace timevault::signing {

inline constexpr std::string_view kSignatureHeader = "__timevault.sig";

// Every header capture writes (a primary-key change's Debezium headers and
// timevault's two fidelity headers), in MAC order. Capture refuses to produce
// a header missing here, so none can escape the signature.
inline constexpr std::array<std::string_view, 4> kCoveredHeaders = {"__debezium.oldkey", "__debezium.newkey",
                                                                    "__timevault.nulls", "__timevault.text"};

// One Kafka message as a signature sees it. Views: valid for the call.
struct SignedMessage {
  std::string_view topic;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::array<std::optional<std::string_view>, kCoveredHeaders.size()> headers;  // by kCoveredHeaders index

  // Sets the header named `name`; false if it is not a covered header.
  bool SetHeader(std::string_view name, std::string_view value);
};

// The signing key and the HMAC over messages.
//
// Thread-safety: none; Sign and Verify reuse one OpenSSL MAC context. Use
// one EventSigner per thread (capture's producer thread, the store's poll
// loop each load their own). Movable, not copyable; the key bytes are wiped
// on destruction.
class EventSigner {
 public:
  // Reads signing.key_file: exactly 32 raw random bytes
  // (`head -c 32 /dev/urandom > signing.key && chmod 600 signing.key`), a
  // regular file (not a symlink), owned by the running user, mode 0600 or
  // 0400. Anything else is refused with the reason and the fix: a key others
  // can read lets them forge history.
  static Result<EventSigner> Load(const std::string& path);
  // From key bytes (tests). InvalidArgument unless 32 bytes.
  static Result<EventSigner> FromKey(std::string_view key);

  EventSigner(EventSigner&&) noexcept;
  EventSigner& operator=(EventSigner&&) noexcept;
  EventSigner(const EventSigner&) = delete;
  EventSigner& operator=(const EventSigner&) = delete;
  ~EventSigner();

  // 8 hex digits naming this key (in every signature it makes).
  const std::string& key_id() const { return key_id_; }

  // The kSignatureHeader value for `m`.
  std::string Sign(const SignedMessage& m);

  // OK if `header` (the message's kSignatureHeader, nullopt if it has none)
  // is this key's signature of `m`. Otherwise PermissionDenied whose message
  // is the reason a dead letter records: unsigned, malformed, signed with
  // another key id, or not matching (changed, or forged).
  Status Verify(const SignedMessage& m, std::optional<std::string_view> header);

  // Verify over a consumed Kafka message as the store reads it: its topic,
  // key, value and the last header of each kCoveredHeaders name. A message
  // without kSignatureHeader is OK when `require` is false (signing.require
  // off), refused otherwise. The one reading of a message's signature, for
  // the store's check and capture's own look at its last heartbeat.
  Status VerifyMessage(const rd_kafka_message_s& m, bool require);

 private:
  EventSigner() = default;
  std::array<unsigned char, 32> Mac(const SignedMessage& m);

  std::string key_;  // 32 bytes, wiped on destruction
  std::string key_id_;
  struct CtxDeleter {
    void operator()(evp_mac_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_mac_ctx_st, CtxDeleter> ctx_;
};

}  // namespace timevault::signing
