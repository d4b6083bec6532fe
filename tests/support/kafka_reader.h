// Reads whole topics from the real broker for assertions: every message of
// the given topics from the beginning, until no message arrived for a quiet
// period (or an expected count is reached).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace timevault::testing {

struct Record {
  std::string topic;
  int partition = 0;
  long long offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;            // nullopt: tombstone
  std::map<std::string, std::string> headers;  // name -> value (the last one of a name)

  // The value of header `name`, nullopt if the message has none.
  std::optional<std::string> Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

// Topics matching `pattern` ("^prefix\\..*" regex subscriptions start with ^).
std::vector<Record> ReadTopics(const std::string& bootstrap, const std::vector<std::string>& topics,
                               int quiet_ms = 3000, size_t expected = 0, int max_wait_s = 120);

// Messages currently in `topic` (sum over partitions of high - low watermark).
long long CountMessages(const std::string& bootstrap, const std::string& topic);

// Produces `value` (any bytes) with `key` to `topic` and waits until the
// broker has it (test failures otherwise).
void ProduceRaw(const std::string& bootstrap, const std::string& topic, const std::string& key,
                const std::string& value);

}  // namespace timevault::testing
