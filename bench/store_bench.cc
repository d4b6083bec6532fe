// Store benchmarks.
//
//   store_bench history ROWS FACTOR DIR
//     Builds two stores through Store::Apply: one tenant with ROWS live rows
//     and 1x history (the inserts), and the same rows with FACTOR x history
//     (FACTOR-1 rounds of updates churning every row). Times StateAt at the
//     newest point in both (median of 5), as built and then with both stores
//     flushed and fully compacted (the same on-disk state: the question is
//     whether the cost grows with history, not memtable vs disk), and prints
//     `state_at_1x_s=<a> state_at_<F>x_s=<b> state_at_ratio_<F>x=<b/a>` for the latter.
//
//   store_bench ingest BOOTSTRAP PREFIX DIR
//     Consumes every message of PREFIX's topics (counted by watermarks) into a
//     fresh store with the real consumer (timed from its start, group join
//     included; the broker's one-time consumer-offsets set-up is done before
//     by a throwaway consumer); prints `ingest_eps=<N> messages=<M>`.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "timevault/core/kafka.h"
#include "timevault/store/ingest.h"
#include "timevault/store/store.h"

namespace timevault::store {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// CPU seconds used by the process so far (all threads): on a shared machine
// wall-clock rates vary with the neighbours' load; events per CPU second
// compare changes fairly.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

std::unique_ptr<Store> OpenFresh(const std::string& dir) {
  std::system(("rm -rf " + dir + " && mkdir -p " + dir + " && head -c 32 /dev/urandom > " + dir + "/key && chmod 600 " +
               dir + "/key")
                  .c_str());
  Store::Options o;
  o.path = dir + "/db";
  o.key_file = dir + "/key";
  auto s = Store::Open(o);
  if (!s.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

// Writes one tenant's history: `rounds` passes over `rows` rows (the first
// inserts, the rest update), 1000 changes per transaction.
uint64_t Build(Store& store, int rows, int rounds) {
  constexpr int kPerTx = 1000;
  uint64_t lsn = 1000, offset = 0;
  int64_t xid = 1;
  std::vector<IngestItem> batch;
  auto item = [&](StoreEvent e) {
    IngestItem it;
    it.position = {"bench.public.accounts", 0, static_cast<int64_t>(offset++)};
    it.event = std::move(e);
    batch.push_back(std::move(it));
    if (batch.size() >= 5000) {
      if (Status st = store.Apply(batch); !st.ok()) {
        std::fprintf(stderr, "apply: %s\n", st.ToString().c_str());
        std::exit(1);
      }
      batch.clear();
    }
  };
  int64_t ts = 1795749657000000;
  for (int round = 0; round < rounds; ++round) {
    for (int base = 0; base < rows; base += kPerTx) {
      int n = std::min(kPerTx, rows - base);
      for (int i = 0; i < n; ++i) {
        StoreEvent e;
        e.kind = EventKind::kChange;
        e.op = round == 0 ? 'c' : 'u';
        e.table = "public.accounts";
        e.tenant = "tenant-1";
        e.tenant_known = true;
        int id = base + i;
        e.pk = "{\"id\":" + std::to_string(id) + "}";
        e.row = "{\"id\":" + std::to_string(id) + ",\"tenant_id\":\"tenant-1\",\"balance\":" + std::to_string(round) +
                ",\"status\":\"active\",\"note\":\"a note of moderate length for a realistic row\"}";
        e.envelope = "{\"before\":null,\"after\":" + e.row + ",\"op\":\"" + e.op + "\"}";
        e.change_lsn = Lsn(lsn += 100);
        e.xid = xid;
        e.commit_time = CommitTime(ts);
        item(std::move(e));
      }
      StoreEvent end;
      end.kind = EventKind::kTransactionEnd;
      end.tx_xid = xid++;
      end.tx_lsn = Lsn(lsn += 100);
      end.event_count = n;
      end.tx_time = CommitTime(ts);
      ts += 1000;
      item(std::move(end));
    }
  }
  StoreEvent hb;
  hb.kind = EventKind::kHeartbeat;
  hb.heartbeat_lsn = Lsn(lsn + 100);
  hb.heartbeat_time = CommitTime(ts);
  item(std::move(hb));
  if (!batch.empty() && !store.Apply(batch).ok()) std::exit(1);
  return lsn + 100;
}

double TimeStateAt(Store& store, int expect_rows) {
  auto point = store.RecoverablePoint();
  if (!point.ok()) {
    std::fprintf(stderr, "no recoverable point: %s\n", point.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    int rows = 0;
    auto t0 = Clock::now();
    Status st = store.StateAt(TenantId("tenant-1"), point->lsn, {}, [&](const Row&) {
      ++rows;
      return true;
    });
    times.push_back(Seconds(t0, Clock::now()));
    if (!st.ok() || rows != expect_rows) {
      std::fprintf(stderr, "StateAt: %s, %d rows\n", st.ToString().c_str(), rows);
      std::exit(1);
    }
  }
  std::sort(times.begin(), times.end());
  return times[2];
}

int History(int rows, int factor, const std::string& dir) {
  auto t0 = Clock::now();
  auto one = OpenFresh(dir + "/1x");
  Build(*one, rows, 1);
  auto t1 = Clock::now();
  auto many = OpenFresh(dir + "/many");
  const double cpu0 = CpuSeconds();
  Build(*many, rows, factor);
  auto t2 = Clock::now();
  const double events = static_cast<double>(rows) * factor;
  std::printf("built %d rows with 1x history in %.1f s, %dx in %.1f s (%.0f events/s through Apply, %.0f per CPU s)\n",
              rows, Seconds(t0, t1), factor, Seconds(t1, t2), events / Seconds(t1, t2), events / (CpuSeconds() - cpu0));
  // As built: the 1x store is mostly memtable, the other mostly SST files.
  double a = TimeStateAt(*one, rows);
  double b = TimeStateAt(*many, rows);
  std::printf("as built: state_at_1x_s=%.3f state_at_%dx_s=%.3f ratio=%.3f\n", a, factor, b, b / a);
  // The figure: both stores in the same on-disk state (flushed, fully compacted).
  for (Store* s : {one.get(), many.get()}) {
    if (Status st = s->Compact(); !st.ok()) {
      std::fprintf(stderr, "compact: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  }
  a = TimeStateAt(*one, rows);
  b = TimeStateAt(*many, rows);
  std::printf("store bytes: 1x %llu, %dx %llu\n", static_cast<unsigned long long>(one->Stats().bytes_on_disk), factor,
              static_cast<unsigned long long>(many->Stats().bytes_on_disk));
  std::printf("state_at_1x_s=%.3f state_at_%dx_s=%.3f state_at_ratio_%dx=%.3f\n", a, factor, b, factor, b / a);
  return 0;
}

int64_t CountMessages(rd_kafka_t* rk, const std::string& prefix) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int64_t total = 0;
  for (int t = 0; t < md->topic_cnt; ++t) {
    std::string name = md->topics[t].topic;
    bool ours = name.rfind(prefix + ".", 0) == 0 || name == "__debezium-heartbeat." + prefix;
    for (int p = 0; ours && p < md->topics[t].partition_cnt; ++p) {
      int64_t lo = 0, hi = 0;
      if (rd_kafka_query_watermark_offsets(rk, name.c_str(), p, &lo, &hi, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        total += hi - lo;
      }
    }
  }
  rd_kafka_metadata_destroy(md);
  return total;
}

// A fresh broker creates its consumer-offsets topic (50 partitions) at the
// first group join: a one-time cost of the cluster (~1 s here), not of
// ingest. A throwaway consumer in another group joins first; the timed run
// still joins its own new group.
void WarmGroupCoordinator(const std::string& bootstrap, const std::string& prefix) {
  kafka::Conf conf;
  if (!conf.Set("bootstrap.servers", bootstrap).ok() ||
      !conf.Set("group.id", prefix + "-warmup-" + std::to_string(std::time(nullptr))).ok()) {
    return;
  }
  auto rk = kafka::NewHandle(RD_KAFKA_CONSUMER, conf);
  if (!rk.ok()) return;
  rd_kafka_poll_set_consumer(rk->get());
  kafka::PartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), ("^" + prefix + "\\..+").c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_subscribe(rk->get(), topics.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    kafka::Message m(rd_kafka_consumer_poll(rk->get(), 50));
    rd_kafka_topic_partition_list_t* assigned = nullptr;
    if (rd_kafka_assignment(rk->get(), &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR && assigned) {
      kafka::PartitionList owned(assigned);
      if (assigned->cnt > 0) break;
    }
  }
  rd_kafka_consumer_close(rk->get());
}

int Ingest(const std::string& bootstrap, const std::string& prefix, const std::string& dir) {
  kafka::Conf conf;
  if (!conf.Set("bootstrap.servers", bootstrap).ok()) return 1;
  auto rk = kafka::NewHandle(RD_KAFKA_PRODUCER, conf);
  if (!rk.ok()) return 1;
  int64_t total = CountMessages(rk->get(), prefix);
  WarmGroupCoordinator(bootstrap, prefix);
  auto store = OpenFresh(dir);
  config::Config cfg;
  cfg.kafka.bootstrap = bootstrap;
  cfg.kafka.topic_prefix = prefix;
  cfg.kafka.consumer_group = prefix + "-bench-" + std::to_string(std::time(nullptr));
  IngestMetrics metrics;
  std::atomic<bool> stop{false};
  Status result;
  auto t0 = Clock::now();
  const double cpu0 = CpuSeconds();
  std::thread t([&] { result = RunIngest(cfg, store.get(), &metrics, &stop); });
  while (static_cast<int64_t>(metrics.consumed.load()) < total && result.ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // `consumed` counts a batch once built; the time ends when the last one
  // has landed and is synced (WaitApplied serializes with the ingest thread).
  const Status landed = store->WaitApplied();
  double secs = Seconds(t0, Clock::now());
  const double cpu = CpuSeconds() - cpu0;
  stop = true;
  t.join();
  if (!result.ok() || !landed.ok()) {
    std::fprintf(stderr, "ingest: %s\n", (result.ok() ? landed : result).ToString().c_str());
    return 1;
  }
  const StoreStats stats = store->Stats();
  std::fprintf(stderr, "stored: %llu events, %llu duplicates, %llu dead letters\n",
               static_cast<unsigned long long>(stats.events_stored), static_cast<unsigned long long>(stats.duplicates),
               static_cast<unsigned long long>(stats.dead_letters));
  std::printf("ingest_eps=%.0f messages=%lld seconds=%.2f cpu_seconds=%.2f per_cpu_second=%.0f\n", total / secs,
              static_cast<long long>(total), secs, cpu, total / cpu);
  return 0;
}

}  // namespace
}  // namespace timevault::store

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "history" && argc == 5) return timevault::store::History(std::atoi(argv[2]), std::atoi(argv[3]), argv[4]);
  if (mode == "ingest" && argc == 5) return timevault::store::Ingest(argv[2], argv[3], argv[4]);
  std::fprintf(stderr, "usage: store_bench history ROWS FACTOR DIR | store_bench ingest BOOTSTRAP PREFIX DIR\n");
  return 2;
}
