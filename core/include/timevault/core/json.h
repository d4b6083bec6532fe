// Parsing JSON that comes from outside the process (request bodies, files an
// operator or attacker may have written, responses of a server): RapidJSON's
// iterative parser, so nesting cannot overflow the call stack, with a nesting
// limit checked while parsing, so `[[[[...` of any length is refused after
// `max_depth` levels instead of building a million-level document.
#pragma once

#include <rapidjson/document.h>

#include <string_view>

#include "timevault/core/status.h"

namespace timevault::json {

// Deep enough for every document timevault reads or writes; far below what
// would cost memory.
inline constexpr int kDefaultMaxDepth = 64;

// Parses exactly `text` (no trailing bytes, valid UTF-8) into `*doc`.
// InvalidArgument "<RapidJSON's reason> at offset N" or "nested deeper than N
// levels at offset M" otherwise; `*doc` is then null.
Status Parse(std::string_view text, rapidjson::Document* doc, int max_depth = kDefaultMaxDepth);

// Whether `text` is one well-formed JSON value within the depth limit.
bool IsValid(std::string_view text, int max_depth = kDefaultMaxDepth);

}  // namespace timevault::json
