#include "support/capture_harness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "timevault/core/crypto.h"
#include "timevault/core/lsn.h"

namespace timevault::testing {

CaptureHarness::CaptureHarness(CaptureOptions options)
    : options_(std::move(options)),
      db_("cap", options_.env ? *options_.env : Env()),
      sql_(db_.Connect()),
      prefix_(UniqueName("tv")),
      slot_(UniqueName("slot")),
      publication_(UniqueName("pub")) {
  config_path_ = dir_.path() + "/timevault.toml";
  const auto& env = options_.env ? *options_.env : Env();
  // The store's consumer group is unique too: a store killed with SIGKILL
  // stays a member of its group until its session expires (librdkafka's
  // session.timeout.ms, 45 s), and a new member of a shared group would wait
  // that long before it gets any partition.
  std::string toml = "[postgres]\nconninfo = \"" + db_.Conninfo() + "\"\nslot = \"" + slot_ + "\"\npublication = \"" +
                     publication_ + "\"\nsnapshot_mode = \"" + options_.snapshot_mode +
                     "\"\nstatus_interval_ms = " + std::to_string(options_.status_ms) + "\n" + options_.postgres_extra +
                     "[kafka]\nbootstrap = \"" + env.kafka_bootstrap + "\"\ntopic_prefix = \"" + prefix_ +
                     "\"\nschemas_enable = " + (options_.schemas_enable ? "true" : "false") +
                     "\nheartbeat_interval_ms = " + std::to_string(options_.heartbeat_ms) +
                     "\ntopic_partitions = 3\nconsumer_group = \"" + UniqueName("grp") + "\"\n[store]\npath = \"" +
                     dir_.path() + "/store\"\nkey_file = \"" + dir_.path() + "/key\"\n" + options_.extra;
  WriteFile(config_path_, toml);
  // A real master key for the store: 32 random bytes.
  RunCommand("head -c 32 /dev/urandom > " + dir_.path() + "/key && chmod 600 " + dir_.path() + "/key");
}

std::string CaptureHarness::store_path() const { return dir_.path() + "/store"; }
std::string CaptureHarness::key_path() const { return dir_.path() + "/key"; }

std::unique_ptr<store::Store> CaptureHarness::OpenStore() {
  store::Store::Options o;
  o.path = store_path();
  o.key_file = key_path();
  auto s = store::Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::unique_ptr<store::Store> CaptureHarness::StopStoreWhenCaughtUp(
    const std::function<bool(const store::Point&)>& reached, const std::string& target, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(store().Stop(), 0) << store().ReadLog();
    auto s = OpenStore();
    if (!s) return nullptr;
    auto p = s->RecoverablePoint();
    if (p.ok() && reached(*p)) return s;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the store did not reach " << target;
      return nullptr;
    }
    s.reset();
    StartStore();
  }
}

std::unique_ptr<store::Store> CaptureHarness::StopStoreAt(uint64_t lsn, int timeout_s) {
  return StopStoreWhenCaughtUp([lsn](const store::Point& p) { return p.lsn.value() >= lsn; }, Lsn(lsn).ToString(),
                               timeout_s);
}

void CaptureHarness::StartStore() {
  store_ = std::make_unique<Process>();
  ASSERT_TRUE(store_->Start({TV_BINARY, "--config", config_path_, "store"},
                            dir_.path() + "/store-" + std::to_string(store_starts_++) + ".log"));
}

CaptureHarness::~CaptureHarness() {
  if (process_) process_->Kill();
  if (store_) store_->Kill();
}

void CaptureHarness::Exec(const std::string& sql) {
  auto st = sql_.Run(sql);
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << sql;
}

std::string CaptureHarness::Query(const std::string& sql) {
  auto r = sql_.Exec(sql);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
  if (!r.ok() || r->rows() == 0 || r->IsNull(0, 0)) return "";
  return r->GetString(0, 0);
}

void CaptureHarness::StartCapture() {
  process_ = std::make_unique<Process>();
  ASSERT_TRUE(process_->Start({TV_BINARY, "--config", config_path_, "capture"},
                              dir_.path() + "/capture-" + std::to_string(starts_++) + ".log"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) FAIL() << "capture exited early:\n" << process_->ReadLog();
    // A slot being created is active before it has its consistent point
    // (Postgres waits for the transactions running then); until that point
    // is fixed a commit may still fall into the initial snapshot.
    if (Query("SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = '" +
              slot_ + "'") == "t")
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL() << "capture did not start streaming:\n" << process_->ReadLog();
}

uint64_t ParseLsnText(const std::string& text) {
  auto lsn = Lsn::Parse(text);
  return lsn ? lsn->value() : 0;
}

uint64_t CaptureHarness::ConfirmedLsn() {
  return ParseLsnText(Query("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'"));
}

// The insert position: with synchronous_commit=off (the test cluster) the
// write position can lag behind a commit that already returned.
uint64_t CaptureHarness::CurrentWalLsn() { return ParseLsnText(Query("SELECT pg_current_wal_insert_lsn()")); }

bool CaptureHarness::WaitConfirmed(uint64_t lsn, int timeout_s) {
  if (lsn == 0) lsn = CurrentWalLsn();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ConfirmedLsn() >= lsn) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::vector<Record> CaptureHarness::Read(const std::vector<std::string>& topics, size_t expected, int quiet_ms) {
  return ReadTopics((options_.env ? *options_.env : Env()).kafka_bootstrap, topics, quiet_ms, expected);
}

std::unique_ptr<rapidjson::Document> ParseJson(const std::string& text) {
  auto d = std::make_unique<rapidjson::Document>();
  d->Parse(text.data(), text.size());
  EXPECT_FALSE(d->HasParseError()) << text;
  return d;
}

std::set<int> LiveIds(store::StateReader& s, const std::string& tenant, Lsn point, Status* status) {
  std::set<int> ids;
  *status = s.StateAt(TenantId(tenant), point, {}, [&](const store::Row& r) {
    auto d = ParseJson(r.json);
    ids.insert((*d)["id"].GetInt());
    return true;
  });
  return ids;
}

std::string AdminApiToml(int port, const std::string& secret) {
  return "[api]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n[[api.tokens]]\nname = \"admin\"\nsha256 = \"" +
         crypto::Sha256Hex(secret) + "\"\nrole = \"admin\"\ntenants = [\"*\"]\n";
}

const rapidjson::Value& Payload(const rapidjson::Document& d) {
  if (d.IsObject() && d.HasMember("payload") && d.HasMember("schema")) return d["payload"];
  return d;
}

}  // namespace timevault::testing
