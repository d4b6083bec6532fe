// Kafka offsets that jump (issue #18, item 4), with the real broker: a topic
// deleted and recreated while the store is stopped or running (its offsets
// start over), and the topic's retention deleting messages the store never
// read (stopped, or frozen with SIGSTOP). Each is a recorded gap naming the
// cause, health is critical and names it, reads after it are refused, and a
// full snapshot (the slot dropped, capture re-snapshots) closes it with the
// exact state after it. On main before this the store took the recreated
// topic's messages for re-deliveries, or resumed past the deleted ones,
// without a word.
#include <gtest/gtest.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "support/capture_harness.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"
#include "timevault/core/kafka.h"

namespace timevault::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kAdminSecret[] = "kafka-gaps-admin-secret";
constexpr int kPartitions = 3;  // the harness's kafka.topic_partitions

void Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

// An admin client of the test broker (a consumer handle: its metadata
// requests never auto-create a topic).
class Admin {
 public:
  Admin() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", Env().kafka_bootstrap.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", UniqueName("admin").c_str(), err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  }
  ~Admin() { rd_kafka_destroy(rk_); }
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  rd_kafka_t* rk() { return rk_; }

  void DeleteTopic(const std::string& topic) {
    rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_DeleteTopics(rk_, &dt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_event_error_string(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(rd_kafka_topic_result_error(res[i]), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
  }

  // Whether the broker lists `topic`.
  bool Exists(const std::string& topic) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_, /*all_topics=*/1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return true;
    bool found = false;
    for (int i = 0; i < md->topic_cnt; ++i) found = found || topic == md->topics[i].topic;
    rd_kafka_metadata_destroy(md);
    return found;
  }

  // Deletes `topic` (which holds messages) and creates it again empty with
  // the harness's partitions and no retention limit, as an operator would.
  void Recreate(const std::string& topic) {
    ASSERT_GT(Watermarks(topic, 0).second, 5);
    DeleteTopic(topic);
    for (int i = 0; i < 300 && Exists(topic); ++i) Sleep(std::chrono::milliseconds(100));
    ASSERT_FALSE(Exists(topic));
    Status created;
    for (int i = 0; i < 100; ++i) {  // until the broker has finished deleting the old one
      created = kafka::CreateTopic(rk_, topic, kPartitions, 30000, {{"retention.ms", "-1"}});
      if (created.ok() && Exists(topic)) break;
      Sleep(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(created.ok()) << created.ToString();
  }

  // Sets topic configs (AlterConfigs: the ones not named go back to the
  // broker's defaults).
  void SetConfigs(const std::string& topic, const std::map<std::string, std::string>& configs) {
    rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
    for (const auto& [k, v] : configs) {
      ASSERT_EQ(rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str()), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AlterConfigs(rk_, &res, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_event_error_string(ev);
    size_t n = 0;
    const rd_kafka_ConfigResource_t** out =
        rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(rd_kafka_ConfigResource_error(out[i]), RD_KAFKA_RESP_ERR_NO_ERROR)
          << rd_kafka_ConfigResource_error_string(out[i]);
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
  }

  std::pair<int64_t, int64_t> Watermarks(const std::string& topic, int partition) {
    int64_t lo = -1, hi = -1;
    rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, &lo, &hi, 10000);
    return {lo, hi};
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

// 40 rows stored; the store stopped; rows 1-5 deleted and 41-50 inserted
// (the store never reads them); `fault` staged; row 51 inserted; the store
// started: one gap naming `cause_words`, health critical naming it, 40 rows
// before it, nothing served after it. Then the slot dropped: capture's
// full snapshot closes the gap and the state is exactly rows 6-51.
void GapScenario(const std::function<void(CaptureHarness&)>& fault, const std::string& cause_words) {
  const int port = FreePort();
  CaptureHarness h({.extra = AdminApiToml(port, kAdminSecret)});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL)");
  h.Exec("INSERT INTO items SELECT g, 'acme' FROM generate_series(1, 10) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  for (int id = 11; id <= 40; ++id) h.Exec("INSERT INTO items VALUES (" + std::to_string(id) + ", 'acme')");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);  // a heartbeat after the inserts
  const CommitTime before = SystemClock().Now();
  {
    auto s = h.StopStoreWhenCaughtUp([&](const store::Point& p) { return p.time >= before; }, before.ToIso());
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->Gaps().empty());
  }
  // The store is down: changes it will never read.
  h.Exec("DELETE FROM items WHERE id <= 5");
  for (int id = 41; id <= 50; ++id) h.Exec("INSERT INTO items VALUES (" + std::to_string(id) + ", 'acme')");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1000ms);
  ASSERT_NO_FATAL_FAILURE(fault(h));
  h.Exec("INSERT INTO items VALUES (51, 'acme')");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);

  // The store started next to the API: health turns critical naming the gap.
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  Process serve;
  ASSERT_TRUE(serve.Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log"));
  httplib::Client api("127.0.0.1", port);
  api.set_default_headers({{"Authorization", std::string("Bearer ") + kAdminSecret}});
  std::string health;
  for (int i = 0; i < 300; ++i) {
    auto r = api.Get("/v1/health");
    if (r && r->status == 200) health = r->body;
    if (health.find("gap #1") != std::string::npos) break;
    Sleep(200ms);
  }
  EXPECT_NE(health.find("\"status\":\"critical\""), std::string::npos) << health << "\n" << h.store().ReadLog();
  EXPECT_NE(health.find("critical: history is missing: gap #1 (Kafka offsets skipped: " + h.Topic("items")),
            std::string::npos)
      << health;
  serve.Stop();
  EXPECT_EQ(h.store().Stop(), 0) << h.store().ReadLog();
  {
    const std::string log = h.store().ReadLog();
    EXPECT_NE(log.find("GAP #1"), std::string::npos) << log;
  }

  auto s = h.OpenStore();
  ASSERT_NE(s, nullptr);
  auto gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u) << h.store().ReadLog();
  std::cout << "recorded: " << gaps[0].Describe() << "\n";
  EXPECT_NE(gaps[0].cause.find("Kafka offsets skipped: " + h.Topic("items")), std::string::npos) << gaps[0].cause;
  EXPECT_NE(gaps[0].cause.find(cause_words), std::string::npos) << gaps[0].cause;
  EXPECT_TRUE(gaps[0].open());
  EXPECT_FALSE(gaps[0].acknowledged);
  EXPECT_GE(gaps[0].from.time, before);
  EXPECT_NE(store::Store::GapJson(gaps[0]).find("\"to\":null"), std::string::npos) << store::Store::GapJson(gaps[0]);
  // After the gap's start nothing is served: a point or a time there is
  // refused; between the gap's start and the recoverable point (which may
  // move on: heartbeats listing skipped offsets count as read) naming it.
  Status st;
  const Lsn inside(gaps[0].from.lsn.value() + 1);
  EXPECT_TRUE(LiveIds(*s, "acme", inside, &st).empty());
  ASSERT_FALSE(st.ok()) << "a point after skipped offsets was served";
  auto later = s->ResolveTime(SystemClock().Now());
  ASSERT_FALSE(later.ok()) << "a time after skipped offsets was served: " << later->lsn.ToString();
  auto rp = s->RecoverablePoint();
  ASSERT_TRUE(rp.ok()) << rp.status().ToString();
  if (rp->lsn > gaps[0].from.lsn) {
    EXPECT_NE(st.message().find("gap #1"), std::string::npos) << st.ToString();
    LiveIds(*s, "acme", rp->lsn, &st);
    ASSERT_FALSE(st.ok()) << "the recoverable point after skipped offsets was served";
    EXPECT_NE(st.message().find("gap #1"), std::string::npos) << st.ToString();
  }
  if (rp->time > gaps[0].from.time) {
    auto t = s->ResolveTime(rp->time);
    ASSERT_FALSE(t.ok()) << "a time after skipped offsets was served: " << t->lsn.ToString();
    EXPECT_NE(t.status().message().find("gap #1"), std::string::npos) << t.status().ToString();
  }
  // Before it: the 40 rows, exact.
  auto b = s->ResolveTime(gaps[0].from.time);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto ids = LiveIds(*s, "acme", b->lsn, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ids.size(), 40u);
  s.reset();

  // The slot dropped: capture takes a full snapshot, which closes the gap;
  // from there on the state is exactly Postgres's.
  EXPECT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();
  h.Exec("SELECT pg_drop_replication_slot('" + h.slot() + "')");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  Sleep(1500ms);
  const CommitTime end = SystemClock().Now();
  s = h.StopStoreWhenCaughtUp([&](const store::Point& p) { return p.time >= end; }, end.ToIso());
  if (s == nullptr) {  // every run's log, to see where it stopped
    const auto dir = std::filesystem::path(h.store_path()).parent_path();
    for (int i = 0; std::filesystem::exists(dir / ("store-" + std::to_string(i) + ".log")); ++i) {
      std::ifstream in(dir / ("store-" + std::to_string(i) + ".log"));
      std::cout << "---- store run " << i << "\n" << in.rdbuf() << "\n";
    }
    std::cout << "---- capture\n" << h.capture().ReadLog() << "\n";
  }
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(h.capture().Stop(), 0);
  gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_FALSE(gaps[0].open()) << gaps[0].Describe();
  EXPECT_NE(gaps[0].cause.find("closed by a full snapshot"), std::string::npos) << gaps[0].Describe();
  auto p = s->ResolveTime(end);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ids = LiveIds(*s, "acme", p->lsn, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::set<int> want;
  for (int id = 6; id <= 51; ++id) want.insert(id);
  EXPECT_EQ(ids, want) << "rows: " << ids.size();
  // Inside the closed gap: still refused.
  EXPECT_TRUE(LiveIds(*s, "acme", inside, &st).empty());
  EXPECT_FALSE(st.ok());
  std::cout << "after the re-snapshot: " << gaps[0].Describe() << "; rows " << ids.size() << "\n";
}

// The topic deleted and recreated (capture stopped meanwhile; it writes to
// the new topic): its offsets start over below the store's. Before, the
// store skipped the new topic's first messages as re-deliveries.
TEST(KafkaGapsFault, TopicDeletedAndRecreatedWhileTheStoreIsStoppedIsAGap) {
  GapScenario(
      [](CaptureHarness& h) {
        ASSERT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();
        Admin admin;
        const std::string topic = h.Topic("items");
        ASSERT_NO_FATAL_FAILURE(admin.Recreate(topic));
        for (int p = 0; p < kPartitions; ++p) {
          std::pair<int64_t, int64_t> w;
          for (int i = 0; i < 100 && (w = admin.Watermarks(topic, p)).second < 0; ++i) Sleep(200ms);
          EXPECT_EQ(w, std::make_pair(int64_t{0}, int64_t{0})) << "partition " << p;
        }
        ASSERT_NO_FATAL_FAILURE(h.StartCapture());
      },
      "deleted and recreated");
}

// Rows 1-40 stored by a running store (with `serve` beside it); `fault`
// staged while it runs; row 51 inserted by `fault` after it: one gap naming
// `cause_words`, health critical naming it, the 40 rows exact at its start,
// and row 51 never missing from a point that is served.
void RunningGapScenario(const std::function<void(CaptureHarness&)>& fault, const std::string& cause_words) {
  const int port = FreePort();
  CaptureHarness h({.extra = AdminApiToml(port, kAdminSecret)});
  h.Exec("CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL)");
  h.Exec("INSERT INTO items SELECT g, 'acme' FROM generate_series(1, 10) g");
  ASSERT_NO_FATAL_FAILURE(h.StartCapture());
  ASSERT_NO_FATAL_FAILURE(h.StartStore());
  Process serve;
  ASSERT_TRUE(serve.Start({TV_BINARY, "--config", h.config_path(), "serve"}, h.store_path() + "-serve.log"));
  httplib::Client api("127.0.0.1", port);
  api.set_default_headers({{"Authorization", std::string("Bearer ") + kAdminSecret}});
  // The recoverable point of health (0 while there is none).
  const auto recoverable = [&](std::string* body) -> uint64_t {
    auto r = api.Get("/v1/health");
    if (!r || r->status != 200) return 0;
    *body = r->body;
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("store") || !d["store"].IsObject()) return 0;
    const auto& st = d["store"];
    if (!st.HasMember("recoverable_point") || !st["recoverable_point"].IsObject()) return 0;
    const auto& lsn = st["recoverable_point"]["lsn"];
    return lsn.IsString() ? ParseLsnText(lsn.GetString()) : 0;
  };
  for (int id = 11; id <= 40; ++id) h.Exec("INSERT INTO items VALUES (" + std::to_string(id) + ", 'acme')");
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  const uint64_t forty = h.CurrentWalLsn();
  std::string health;
  for (int i = 0; i < 600 && recoverable(&health) < forty; ++i) Sleep(100ms);
  ASSERT_GE(recoverable(&health), forty) << health << "\n" << h.store().ReadLog();

  ASSERT_NO_FATAL_FAILURE(fault(h));
  ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
  const uint64_t fifty_one = h.CurrentWalLsn();
  for (int i = 0; i < 600; ++i) {
    recoverable(&health);
    if (health.find("gap #1") != std::string::npos) break;
    Sleep(100ms);
  }
  EXPECT_NE(health.find("\"status\":\"critical\""), std::string::npos) << health << "\n" << h.store().ReadLog();
  // The gap may also name a transaction whose events went with the old
  // topic (one open gap, every cause listed).
  EXPECT_NE(health.find("critical: history is missing: gap #1 ("), std::string::npos) << health;
  EXPECT_NE(health.find("Kafka offsets skipped: " + h.Topic("items")), std::string::npos) << health << "\n"
                                                                                          << h.store().ReadLog();
  serve.Stop();
  EXPECT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();
  EXPECT_EQ(h.store().Stop(), 0) << h.store().ReadLog();

  auto s = h.OpenStore();
  ASSERT_NE(s, nullptr);
  auto gaps = s->Gaps();
  ASSERT_EQ(gaps.size(), 1u) << h.store().ReadLog();
  std::cout << "recorded: " << gaps[0].Describe() << "\n";
  EXPECT_NE(gaps[0].cause.find("Kafka offsets skipped: " + h.Topic("items")), std::string::npos) << gaps[0].cause;
  EXPECT_NE(gaps[0].cause.find(cause_words), std::string::npos) << gaps[0].cause;
  EXPECT_TRUE(gaps[0].open());
  // Never served without row 51 past its commit: points after the gap's
  // start are refused.
  Status st;
  auto rp = s->RecoverablePoint();
  if (rp.ok() && rp->lsn.value() >= fifty_one) {
    const auto ids = LiveIds(*s, "acme", rp->lsn, &st);
    EXPECT_FALSE(st.ok() && ids.count(51) == 0) << "the recoverable point passed row 51 without it";
  }
  // At its start: the 40 rows, exact.
  auto ids = LiveIds(*s, "acme", gaps[0].from.lsn, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ids.size(), 40u);
}

// The topic deleted and recreated while the store runs and has read
// everything (capture stopped meanwhile): the consumer's fetch position is
// past the new topic's end. librdkafka's offset reset ("earliest") started
// the partition over at 0, where the new topic's first messages were taken
// for re-deliveries: row 51 silently missing and the recoverable point stuck
// before it, health not even warning. The store cannot know what the old
// topic held past what it read: a gap.
TEST(KafkaGapsFault, TopicDeletedAndRecreatedWhileTheStoreRunsIsAGap) {
  RunningGapScenario(
      [](CaptureHarness& h) {
        ASSERT_EQ(h.capture().Stop(), 0) << h.capture().ReadLog();
        Admin admin;
        ASSERT_NO_FATAL_FAILURE(admin.Recreate(h.Topic("items")));
        ASSERT_NO_FATAL_FAILURE(h.StartCapture());
        h.Exec("INSERT INTO items VALUES (51, 'acme')");
      },
      "deleted and recreated");
}

// The store frozen (SIGSTOP) while the topic's retention deletes messages it
// never read, then thawed: its fetch position is below the partition's first
// offset.
TEST(KafkaGapsFault, RetentionPastAFrozenStoreIsAGap) {
  RunningGapScenario(
      [](CaptureHarness& h) {
        ASSERT_EQ(kill(h.store().pid(), SIGSTOP), 0);
        for (int id = 41; id <= 50; ++id) h.Exec("INSERT INTO items VALUES (" + std::to_string(id) + ", 'acme')");
        ASSERT_TRUE(h.WaitConfirmed(0, 120)) << h.capture().ReadLog();
        Admin admin;
        const std::string topic = h.Topic("items");
        admin.SetConfigs(topic, {{"retention.ms", "1000"}});
        bool deleted = false;
        for (int i = 0; i < 300 && !deleted; ++i) {
          Sleep(200ms);
          auto [lo, hi] = admin.Watermarks(topic, 0);
          deleted = lo == hi && lo > 40;
        }
        admin.SetConfigs(topic, {{"retention.ms", "-1"}});
        h.Exec("INSERT INTO items VALUES (51, 'acme')");
        ASSERT_EQ(kill(h.store().pid(), SIGCONT), 0);
        ASSERT_TRUE(deleted) << "the broker's retention did not delete the messages";
      },
      "retention");
}

// The topic's retention deleting messages the store never read: a tiny
// retention.ms set while the store is stopped, until the broker's retention
// check has deleted every message (log.retention.check.interval.ms is 1 s
// on the test broker), then retention back to -1. Before, the consumer's
// fetch was reset to the first offset left and ingest went on silently.
TEST(KafkaGapsFault, RetentionDeletingUnreadMessagesIsAGap) {
  GapScenario(
      [](CaptureHarness& h) {
        Admin admin;
        const std::string topic = h.Topic("items");
        admin.SetConfigs(topic, {{"retention.ms", "1000"}});
        bool deleted = false;
        for (int i = 0; i < 300 && !deleted; ++i) {
          Sleep(200ms);
          deleted = true;
          for (int p = 0; p < kPartitions; ++p) {
            auto [lo, hi] = admin.Watermarks(topic, p);
            deleted = deleted && lo == hi;
          }
        }
        ASSERT_TRUE(deleted) << "the broker's retention did not delete the messages";
        for (int p = 0; p < kPartitions; ++p) EXPECT_GT(admin.Watermarks(topic, p).first, 0) << "partition " << p;
        admin.SetConfigs(topic, {{"retention.ms", "-1"}});
      },
      "retention");
}

}  // namespace
}  // namespace timevault::testing
