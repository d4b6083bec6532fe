// Logging setup. Components log through spdlog's default logger (stderr, with
// time and level); SetupLogging is called once from main before threads start.
#pragma once

#include <string>
#include <string_view>

#include "timevault/core/status.h"

namespace timevault {

// Accepts trace, debug, info, warn, error, critical, off; format "text" (one
// line: time, level, message) or "json" (one JSON object per line: time,
// level, msg, and the thread's log context, e.g. "job").
Status SetupLogging(std::string_view level, std::string_view format = "text");

// Adds `key: value` to every JSON log line this thread writes while alive
// (the job a worker runs, the request a handler serves). Nests; not shared
// between threads.
class ScopedLogContext {
 public:
  ScopedLogContext(std::string key, std::string value);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;
};

}  // namespace timevault
