// The web console's files (api/console/), embedded at build time by
// api/console/embed.cmake into console_embed.cc. Private to api/.
#pragma once

#include <string_view>
#include <vector>

namespace timevault::api {

struct ConsoleAsset {
  std::string_view name;          // file name under api/console/, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

// Every embedded file; names are unique.
const std::vector<ConsoleAsset>& ConsoleAssets();

}  // namespace timevault::api
