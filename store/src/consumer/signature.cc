#include "consumer/signature.h"

#include <string>

namespace timevault::store {

Result<std::optional<SignatureCheck>> SignatureCheck::FromConfig(const config::SigningConfig& config) {
  if (config.key_file.empty()) return std::optional<SignatureCheck>();
  TV_ASSIGN_OR_RETURN(auto signer, signing::EventSigner::Load(config.key_file));
  return std::optional<SignatureCheck>(SignatureCheck(std::move(signer), config.require));
}

Status SignatureCheck::Check(const rd_kafka_message_t* m) {
  Status st = signer_.VerifyMessage(*m, require_);
  if (st.ok()) return st;
  return PermissionDenied("signature: " + st.message());
}

}  // namespace timevault::store
