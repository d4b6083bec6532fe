// Hot paths of capture, per event: pgoutput decoding, Debezium encoding
// (schemas off and on), and the ack bookkeeping.
//   build/bench/capture_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <string>

#include "capture/ack_tracker.h"
#include "timevault/capture/debezium.h"
#include "timevault/capture/pgoutput.h"

namespace timevault::capture {
namespace {

// An Insert of (id int4, tenant_id text, balance numeric(12,2), status text,
// updated_at timestamptz, note text), as pgoutput sends it.
std::string InsertMessage() {
  std::string m = "I";
  auto u32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<char>((v >> s) & 0xff));
  };
  auto col = [&](std::string_view text) {
    m.push_back('t');
    u32(static_cast<uint32_t>(text.size()));
    m.append(text);
  };
  u32(16385);
  m.push_back('N');
  m.push_back(0);
  m.push_back(6);
  col("123456");
  col("tenant-7");
  col("1234.50");
  col("active");
  col("2026-11-27 03:20:57.123456+00");
  col("a note of moderate length for a realistic row");
  return m;
}

TableSchema Accounts() {
  TableSchema t;
  t.relation_oid = 16385;
  t.schema = "public";
  t.table = "accounts";
  t.topic = "bench.public.accounts";
  auto add = [&](std::string name, uint32_t oid, int32_t typmod, std::string type, char cat, bool pk, bool nn) {
    ColumnSchema c;
    c.name = std::move(name);
    c.type_oid = oid;
    c.type_modifier = typmod;
    c.type_name = std::move(type);
    c.type_category = cat;
    c.primary_key = pk;
    c.primary_key_position = pk ? 1 : 0;
    c.not_null = nn;
    t.columns.push_back(std::move(c));
  };
  add("id", oid::kInt4, -1, "int4", 'N', true, true);
  add("tenant_id", oid::kText, -1, "text", 'S', false, true);
  add("balance", oid::kNumeric, ((12 << 16) | 2) + 4, "numeric", 'N', false, true);
  add("status", oid::kText, -1, "text", 'S', false, true);
  add("updated_at", oid::kTimestamptz, -1, "timestamptz", 'D', false, true);
  add("note", oid::kText, -1, "text", 'S', false, false);
  t.tenant_column = 1;
  return t;
}

void BM_DecodeInsert(benchmark::State& state) {
  std::string msg = InsertMessage();
  for (auto _ : state) {
    auto r = pgoutput::Decode(msg);
    benchmark::DoNotOptimize(r);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
}
BENCHMARK(BM_DecodeInsert);

void EncodeChange(benchmark::State& state, bool schemas) {
  std::string msg = InsertMessage();
  auto decoded = pgoutput::Decode(msg);
  if (!decoded.ok()) {
    state.SkipWithError("decode failed");
    return;
  }
  const auto& insert = std::get<pgoutput::Insert>(*decoded);
  TableSchema table = Accounts();
  EventEncoder encoder(EventEncoder::Options{schemas});
  SourceInfo source{"bench",    "app", CommitTime(1795749657123456), "false", Lsn(1000), Lsn(1200), "public",
                    "accounts", 777};
  std::string id = TransactionId(777, Lsn(1200));
  TransactionBlock block{id, 1, 1};
  std::string key, value;
  size_t bytes = 0;
  for (auto _ : state) {
    Status k = encoder.EncodeKey(table, insert.new_tuple, &key);
    Status v = encoder.EncodeChange(table, Op::kCreate, nullptr, &insert.new_tuple, source, &block,
                                    CommitTime(1795749657999999), &value);
    if (!k.ok() || !v.ok()) {
      state.SkipWithError("encode failed");
      break;
    }
    bytes += key.size() + value.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
void BM_EncodeChange(benchmark::State& state) { EncodeChange(state, false); }
void BM_EncodeChangeWithSchema(benchmark::State& state) { EncodeChange(state, true); }
BENCHMARK(BM_EncodeChange);
BENCHMARK(BM_EncodeChangeWithSchema);

void BM_AckTrackerTransaction(benchmark::State& state) {
  AckTracker tracker;
  uint64_t lsn = 1;
  for (auto _ : state) {
    auto t = tracker.Open();
    for (int i = 0; i < 10; ++i) tracker.AddPending(t);
    ++lsn;
    tracker.Close(t, Lsn(lsn), CommitTime(static_cast<int64_t>(lsn)));
    for (int i = 0; i < 10; ++i) tracker.Ack(t);
    benchmark::DoNotOptimize(tracker.Confirmable());
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_AckTrackerTransaction);

}  // namespace
}  // namespace timevault::capture

BENCHMARK_MAIN();
