// Distinct types for values that must never mix: tenant ids, Kafka offsets,
// commit times. Each is a thin wrapper with explicit construction.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <utility>

namespace timevault {

// A value of the configured tenant column (default `tenant_id`), as text.
class TenantId {
 public:
  TenantId() = default;
  explicit TenantId(std::string value) : value_(std::move(value)) {}
  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }
  auto operator<=>(const TenantId&) const = default;

 private:
  std::string value_;
};

// A Kafka partition offset.
class KafkaOffset {
 public:
  constexpr KafkaOffset() = default;
  constexpr explicit KafkaOffset(int64_t v) : value_(v) {}
  constexpr int64_t value() const { return value_; }
  constexpr auto operator<=>(const KafkaOffset&) const = default;

 private:
  int64_t value_ = -1;
};

}  // namespace timevault
