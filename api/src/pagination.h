// Cursor pagination of the API's lists (GET /v1/backups, /v1/jobs,
// /v1/snapshots, /v1/plans, /v1/audit; docs/api.md, "Lists"). Private to api/.
//
// A list is ordered by a sort key (a string that compares like the list's
// order: zero-padded times or sequence numbers, then the id), and a page is
// the first `limit` visible items past the cursor. The cursor is opaque to
// clients: base64url of the list's name, a digest of the request's filters
// and the key of the page's last item. So a page boundary holds while items
// are added (new items sort before the first page, never into a later one)
// or removed, and a cursor used with another list or other filters is a 400.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"
#include "timevault/core/time.h"

namespace timevault::api {

struct Call;

inline constexpr size_t kDefaultPageLimit = 100;
inline constexpr size_t kMaxPageLimit = 1000;

// Walks one list in its order and keeps the items of the requested page.
// Not thread-safe; one per request.
class Pager {
 public:
  // Reads ?limit= (1..kMaxPageLimit, default kDefaultPageLimit) and ?cursor=.
  // `list` names the list; `filters` are the query parameters that select
  // its items (a cursor is valid only with the same values); `descending`:
  // the list goes from the greatest key to the smallest.
  static Result<Pager> FromQuery(const Call& c, std::string_view list, const std::vector<const char*>& filters,
                                 bool descending);

  // Offers the next item of the list (in order; keys strictly monotonic).
  // True when it belongs on this page; false before the cursor and once the
  // page is full (then NextCursor() names the last item taken).
  bool Take(const std::string& key);
  // The cursor of the next page as JSON: a quoted string, or null when the
  // page ends the list.
  std::string NextCursorJson() const;

 private:
  Pager() = default;
  std::string list_;
  std::string filter_digest_;
  bool descending_ = true;
  size_t limit_ = kDefaultPageLimit;
  std::optional<std::string> after_;
  size_t taken_ = 0;
  std::string last_key_;
  bool more_ = false;
};

// Sort keys: a time or a number zero-padded to 20 digits (so strings compare
// as the numbers do), then "|" and the id.
std::string TimeKey(CommitTime t, std::string_view id);
std::string NumberKey(uint64_t n);

}  // namespace timevault::api
