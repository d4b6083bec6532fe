// Status and Result<T>: recoverable errors as values.
//
// A Status is either OK or carries a code from a closed set and a message a
// person can act on ("kafka.linger_ms: expected an integer, got a string").
// Exceptions and asserts are for bugs only. Both types are [[nodiscard]] so a
// dropped error is a compile error under -Werror.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace timevault {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad request, bad config)
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a thing to create exists already
  kFailedPrecondition,  // the system is not in a state to do it (stale plan...)
  kOutOfRange,          // past the recoverable point, past the end
  kPermissionDenied,    // authenticated but not allowed
  kUnauthenticated,     // no or bad credentials
  kUnavailable,         // a server went away; retrying may help
  kCorruption,          // stored or received data is damaged
  kAborted,             // stopped on request (SIGTERM) or by a conflict
  kInternal,            // a bug or an unexpected library failure
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: kafka.linger_ms: expected an integer".
  std::string ToString() const;

  // Prefixes the message with context ("loading /etc/tv.toml: ...").
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace timevault

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define TV_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::timevault::Status tv_status_ = (expr); \
    if (!tv_status_.ok()) return tv_status_; \
  } while (0)

#define TV_CONCAT_INNER_(a, b) a##b
#define TV_CONCAT_(a, b) TV_CONCAT_INNER_(a, b)
// Declares `lhs` from the value of a Result, or returns its Status.
#define TV_ASSIGN_OR_RETURN(lhs, expr) TV_ASSIGN_OR_RETURN_IMPL_(TV_CONCAT_(tv_result_, __LINE__), lhs, expr)
#define TV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
