// Ids of plans and backups: "<prefix>-20261127T081500Z-1a2b3c4d", unique by
// the random suffix and sorting by creation time.
#pragma once

#include <string>
#include <string_view>

#include "timevault/core/time.h"

namespace timevault::replay {

std::string NewTimeId(std::string_view prefix, CommitTime now);

}  // namespace timevault::replay
