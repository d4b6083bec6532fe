// Byte-preserving edits of the JSON the store keeps (row images, envelopes):
// split an object into its top-level members as raw text, replace some, join
// them again. Nothing is parsed into numbers, so a float8 or a numeric keeps
// exactly the text Debezium wrote. Used for TOAST resolution and for the
// envelopes of tenant moves. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace timevault::store::engine {

struct JsonMember {
  std::string key;    // the key token as written, quotes included
  std::string value;  // raw value text
};

// The members of a JSON object, or nullopt if `json` is not one.
std::optional<std::vector<JsonMember>> SplitObject(std::string_view json);
std::string JoinObject(const std::vector<JsonMember>& members);
// `s` as a JSON string token (quoted, escaped as RapidJSON's Writer does).
std::string JsonQuote(std::string_view s);

// The raw value of member `name` (nullptr if absent).
const std::string* FindMember(const std::vector<JsonMember>& members, std::string_view name);
std::string* FindMember(std::vector<JsonMember>* members, std::string_view name);

// Replaces the members of object `row` named in `columns` with the member of
// `previous` of the same name. Columns `previous` lacks or holds as the
// placeholder itself (or that cannot be resolved because there is no
// previous row) are appended to *unresolved and removed from the row, or
// with `keep_unresolved` set to wire::kUnavailableValue (a row version the
// store flags incomplete, kVersionIncomplete). Returns `row` unchanged if it
// is not an object.
std::string ResolveColumns(std::string_view row, const std::optional<std::string>& previous,
                           const std::vector<std::string>& columns, std::vector<std::string>* unresolved,
                           bool keep_unresolved = false);

}  // namespace timevault::store::engine
