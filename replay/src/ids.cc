#include "ids.h"

#include <openssl/rand.h>

#include <cstdio>
#include <random>

namespace timevault::replay {

std::string NewTimeId(std::string_view prefix, CommitTime now) {
  const std::string iso = now.ToIso();  // 2026-11-27T08:15:00.123456Z
  std::string stamp;
  for (char c : iso.substr(0, 19)) {
    if (c != '-' && c != ':') stamp.push_back(c);
  }
  unsigned char rnd[4];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {  // no CSPRNG: still unique enough for an id
    std::random_device rd;
    const unsigned v = rd();
    for (int i = 0; i < 4; ++i) rnd[i] = static_cast<unsigned char>(v >> (8 * i));
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  return std::string(prefix) + "-" + stamp + "Z-" + hex;
}

}  // namespace timevault::replay
