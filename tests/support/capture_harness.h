// Shared pieces of the capture integration tests: a database with a capture
// config, the capture process, and helpers to read and parse its topics.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/kafka_reader.h"
#include "support/process.h"
#include "support/testenv.h"
#include "timevault/store/store.h"

namespace timevault::testing {

struct CaptureOptions {
  std::string snapshot_mode = "initial";
  bool schemas_enable = false;
  int heartbeat_ms = 500;
  int status_ms = 500;
  std::string extra;             // appended TOML
  std::string postgres_extra;    // appended to the [postgres] table
  const TestEnv* env = nullptr;  // the servers (PrivateServers::env()); null: the shared Env()
};

class CaptureHarness {
 public:
  explicit CaptureHarness(CaptureOptions options = {});
  ~CaptureHarness();

  TestDatabase& db() { return db_; }
  pg::PgConn& sql() { return sql_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& slot() const { return slot_; }
  const std::string& config_path() const { return config_path_; }
  std::string Topic(const std::string& table) const { return prefix_ + ".public." + table; }

  // Runs SQL on the test database; fails the test on error.
  void Exec(const std::string& sql);
  std::string Query(const std::string& sql);  // first column of first row

  // Starts `timevault capture`; waits until the slot exists and is active.
  void StartCapture();
  Process& capture() { return *process_; }
  // The slot's confirmed_flush_lsn as a number (0 if none).
  uint64_t ConfirmedLsn();
  // Waits until the slot confirmed at least `lsn` (server's pg_current_wal_lsn() if 0).
  bool WaitConfirmed(uint64_t lsn, int timeout_s);
  uint64_t CurrentWalLsn();

  std::vector<Record> Read(const std::vector<std::string>& topics, size_t expected = 0, int quiet_ms = 3000);

  // The store: `timevault store` with the same config.
  std::string store_path() const;
  std::string key_path() const;
  void StartStore();
  Process& store() { return *store_; }
  // The store's files opened read-write in this process (stop the store
  // process first); null, with a test failure, if they do not open.
  std::unique_ptr<store::Store> OpenStore();
  // Stops the store process once its recoverable point satisfies `reached`
  // (checked every 2 s by stopping it and opening its files; restarted when
  // not yet) and returns the store, open. After `timeout_s`: a test failure
  // naming `target`, and null.
  std::unique_ptr<store::Store> StopStoreWhenCaughtUp(const std::function<bool(const store::Point&)>& reached,
                                                      const std::string& target, int timeout_s = 180);
  // The same, until the recoverable point reaches `lsn`.
  std::unique_ptr<store::Store> StopStoreAt(uint64_t lsn, int timeout_s = 180);

 private:
  CaptureOptions options_;
  TestDatabase db_;
  pg::PgConn sql_;
  TempDir dir_;
  std::string prefix_, slot_, publication_, config_path_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<Process> store_;
  int starts_ = 0;
  int store_starts_ = 0;
};

// Parses JSON; fails the test if invalid.
std::unique_ptr<rapidjson::Document> ParseJson(const std::string& text);

// The envelope's payload (unwraps {"schema","payload"} when present).
const rapidjson::Value& Payload(const rapidjson::Document& d);

uint64_t ParseLsnText(const std::string& text);

// The ids (column "id") of `tenant`'s rows live at `point`; the read's
// status in *status.
std::set<int> LiveIds(store::StateReader& s, const std::string& tenant, Lsn point, Status* status);

// An [api] table listening on 127.0.0.1:`port` with one admin token for
// every tenant, whose secret is `secret` (appended to a harness's TOML).
std::string AdminApiToml(int port, const std::string& secret);

}  // namespace timevault::testing
