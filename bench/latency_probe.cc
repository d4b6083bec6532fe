// latency_probe: commit -> recoverable latency through the API (bench/latency.sh).
//
//   latency_probe CONNINFO API_URL TOKEN SAMPLES INTERVAL_MS
//
// One thread commits SAMPLES single-row transactions, INTERVAL_MS apart, on
// its own connection (INSERT INTO latency_probe, autocommit) and notes, for
// each, the time the COMMIT returned and the server's WAL write position
// read right after it (at or past the commit record's end). Another thread
// polls GET /v1/recoverable-point (the store's recoverable point, from its
// memory) back to back. A
// sample's latency is from its commit's return to the first answer whose
// recoverable_point.lsn is at or past its position. Prints one line:
//   samples=<N> p50_ms=<..> p90_ms=<..> p99_ms=<..> max_ms=<..> polls=<P>
// The load itself comes from elsewhere (pgbench in bench/latency.sh).
#include <httplib.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "timevault/core/lsn.h"
#include "timevault/core/pg.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  Clock::time_point committed;
  uint64_t lsn = 0;
};

struct Shared {
  std::mutex mu;
  std::deque<Sample> waiting;  // in commit order, so in LSN order
  std::vector<double> latencies_ms;
  std::atomic<bool> done_committing{false};
  std::atomic<int64_t> polls{0};
};

int Commit(const std::string& conninfo, int samples, int interval_ms, Shared* shared) {
  auto conn = timevault::pg::PgConn::Connect(conninfo);
  if (!conn.ok()) {
    std::fprintf(stderr, "latency_probe: %s\n", conn.status().ToString().c_str());
    return 1;
  }
  auto next = Clock::now();
  for (int i = 0; i < samples; ++i) {
    std::this_thread::sleep_until(next);
    next += std::chrono::milliseconds(interval_ms);
    if (auto st = conn->Run("INSERT INTO latency_probe (tenant_id, n) VALUES ('probe', " + std::to_string(i) + ")");
        !st.ok()) {
      std::fprintf(stderr, "latency_probe: %s\n", st.ToString().c_str());
      return 1;
    }
    const auto committed = Clock::now();
    auto res = conn->Exec("SELECT pg_current_wal_lsn()");
    if (!res.ok()) {
      std::fprintf(stderr, "latency_probe: %s\n", res.status().ToString().c_str());
      return 1;
    }
    auto lsn = timevault::Lsn::Parse(res->GetString(0, 0));
    std::lock_guard lock(shared->mu);
    shared->waiting.push_back({committed, lsn ? lsn->value() : 0});
  }
  shared->done_committing = true;
  return 0;
}

// The recoverable point's LSN in a /v1/recoverable-point answer (0 if none).
uint64_t RecoverableLsn(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return 0;
  auto p = d.FindMember("recoverable_point");
  if (p == d.MemberEnd() || !p->value.IsObject()) return 0;
  auto l = p->value.FindMember("lsn");
  if (l == p->value.MemberEnd() || !l->value.IsString()) return 0;
  auto lsn = timevault::Lsn::Parse(l->value.GetString());
  return lsn ? lsn->value() : 0;
}

void Poll(const std::string& url, const std::string& token, Shared* shared) {
  httplib::Client client(url);
  client.set_keep_alive(true);
  const httplib::Headers headers{{"Authorization", "Bearer " + token}};
  const auto deadline_after_done = std::chrono::seconds(30);
  std::optional<Clock::time_point> done_at;
  for (;;) {
    auto res = client.Get("/v1/recoverable-point", headers);
    const auto seen = Clock::now();
    shared->polls.fetch_add(1);
    const uint64_t point = res && res->status == 200 ? RecoverableLsn(res->body) : 0;
    std::lock_guard lock(shared->mu);
    while (!shared->waiting.empty() && shared->waiting.front().lsn <= point) {
      shared->latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(seen - shared->waiting.front().committed).count());
      shared->waiting.pop_front();
    }
    if (shared->done_committing) {
      if (shared->waiting.empty()) return;
      if (!done_at) done_at = seen;
      if (seen - *done_at > deadline_after_done) {
        std::fprintf(stderr, "latency_probe: %zu samples never became recoverable\n", shared->waiting.size());
        return;
      }
    }
  }
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: latency_probe CONNINFO API_URL TOKEN SAMPLES INTERVAL_MS\n");
    return 2;
  }
  const std::string conninfo = argv[1], url = argv[2], token = argv[3];
  const int samples = std::stoi(argv[4]), interval_ms = std::stoi(argv[5]);
  Shared shared;
  int rc = 0;
  std::thread committer([&] { rc = Commit(conninfo, samples, interval_ms, &shared); });
  std::thread poller([&] { Poll(url, token, &shared); });
  committer.join();
  if (rc != 0) shared.done_committing = true;
  poller.join();
  if (rc != 0) return rc;
  auto& l = shared.latencies_ms;
  std::sort(l.begin(), l.end());
  std::printf("samples=%zu p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f polls=%lld\n", l.size(), Percentile(l, 0.5),
              Percentile(l, 0.9), Percentile(l, 0.99), l.empty() ? 0.0 : l.back(),
              static_cast<long long>(shared.polls.load()));
  return l.size() == static_cast<size_t>(samples) ? 0 : 1;
}
