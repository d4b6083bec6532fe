// Logging setup. Components log through spdlog's default logger (stderr, with
// time and level); SetupLogging is called once from main before threads start.
#pragma once

#include <string_view>

#include "timevault/core/status.h"

namespace timevault {

// Accepts trace, debug, info, warn, error, critical, off.
Status SetupLogging(std::string_view level);

}  // namespace timevault
