#include "consumer/signature.h"

#include <string>

namespace timevault::store {

Result<std::optional<SignatureCheck>> SignatureCheck::FromConfig(const config::SigningConfig& config) {
  if (config.key_file.empty()) return std::optional<SignatureCheck>();
  TV_ASSIGN_OR_RETURN(auto signer, signing::EventSigner::Load(config.key_file));
  return std::optional<SignatureCheck>(SignatureCheck(std::move(signer), config.require));
}

Status SignatureCheck::Check(const rd_kafka_message_t* m) {
  rd_kafka_headers_t* headers = nullptr;
  const bool has_headers = rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR;
  // The last header of a name, as the parser reads it.
  auto header = [&](std::string_view name) -> std::optional<std::string_view> {
    const void* v = nullptr;
    size_t len = 0;
    if (!has_headers ||
        rd_kafka_header_get_last(headers, std::string(name).c_str(), &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return std::nullopt;
    }
    return v ? std::string_view(static_cast<const char*>(v), len) : std::string_view();
  };
  const std::optional<std::string_view> signature = header(signing::kSignatureHeader);
  if (!signature && !require_) return Status::Ok();
  signing::SignedMessage signed_message;
  signed_message.topic = rd_kafka_topic_name(m->rkt);
  if (m->key) signed_message.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) signed_message.value = std::string_view(static_cast<const char*>(m->payload), m->len);
  for (size_t i = 0; i < signing::kCoveredHeaders.size(); ++i) {
    signed_message.headers[i] = header(signing::kCoveredHeaders[i]);
  }
  Status st = signer_.Verify(signed_message, signature);
  if (st.ok()) return st;
  return PermissionDenied("signature: " + st.message());
}

}  // namespace timevault::store
