// EventSigner::VerifyMessage: kept apart from signing.cc so that only the
// librdkafka users (capture, store) need librdkafka through it.
#include <librdkafka/rdkafka.h>

#include <string>

#include "timevault/core/signing.h"

namespace timevault::signing {

Status EventSigner::VerifyMessage(const rd_kafka_message_s& m, bool require) {
  rd_kafka_headers_t* headers = nullptr;
  const bool has_headers = rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR;
  // The last header of a name, as the store's parser reads it.
  auto header = [&](std::string_view name) -> std::optional<std::string_view> {
    const void* v = nullptr;
    size_t len = 0;
    if (!has_headers ||
        rd_kafka_header_get_last(headers, std::string(name).c_str(), &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return std::nullopt;
    }
    return v ? std::string_view(static_cast<const char*>(v), len) : std::string_view();
  };
  const std::optional<std::string_view> signature = header(kSignatureHeader);
  if (!signature && !require) return Status::Ok();
  SignedMessage signed_message;
  signed_message.topic = rd_kafka_topic_name(m.rkt);
  if (m.key) signed_message.key = std::string_view(static_cast<const char*>(m.key), m.key_len);
  if (m.payload) signed_message.value = std::string_view(static_cast<const char*>(m.payload), m.len);
  for (size_t i = 0; i < kCoveredHeaders.size(); ++i) signed_message.headers[i] = header(kCoveredHeaders[i]);
  return Verify(signed_message, signature);
}

}  // namespace timevault::signing
