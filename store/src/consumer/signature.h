// The store's side of signed change events (docs/store.md, "Signature
// check"): with signing.key_file set, every consumed message must carry
// capture's signature over exactly what the store then reads (the topic, key,
// value and the headers of signing::kCoveredHeaders, the last of each name).
// A message that does not verify is dead-lettered with the reason and never
// parsed, so nothing of it reaches a row, a PITR or a backup.
//
// Not thread-safe: the poll loop owns one.
#pragma once

#include <librdkafka/rdkafka.h>

#include <optional>

#include "timevault/config/config.h"
#include "timevault/core/signing.h"
#include "timevault/core/status.h"

namespace timevault::store {

class SignatureCheck {
 public:
  // nullopt when signing is off (no signing.key_file); an error if the key
  // file is refused.
  static Result<std::optional<SignatureCheck>> FromConfig(const config::SigningConfig& config);

  // OK if `m` may be parsed; else PermissionDenied, "signature: " + why.
  Status Check(const rd_kafka_message_t* m);

 private:
  SignatureCheck(signing::EventSigner signer, bool require) : signer_(std::move(signer)), require_(require) {}

  signing::EventSigner signer_;
  bool require_;
};

}  // namespace timevault::store
