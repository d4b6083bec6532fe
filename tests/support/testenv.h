// Access to the shared test environment started by the `testenv` ctest
// fixture (tests/testenv): a private Postgres and a Kafka broker. A test that
// needs them and finds them missing fails; it never skips.
#pragma once

#include <string>

#include "timevault/core/pg.h"

namespace timevault::testing {

struct TestEnv {
  std::string dir;
  std::string pg_host;
  std::string pg_port;
  std::string pg_user;
  std::string kafka_bootstrap;

  // conninfo for database `db` (default: postgres).
  std::string Conninfo(const std::string& db = "postgres") const;
};

// Loads DIR/pg.env and DIR/kafka.env; fails the current test (FAIL()) with
// the reason if they are missing. Call with ASSERT_NO_FATAL_FAILURE.
const TestEnv& Env();

// A name unique in this test run: "<prefix>_<pid>_<counter>" in [a-z0-9_].
std::string UniqueName(const std::string& prefix);

// A fresh database, dropped (with its replication slots) on destruction.
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& prefix = "t");
  // In the Postgres of `env` (a test's private one: PrivateServers).
  TestDatabase(const std::string& prefix, const TestEnv& env);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }
  std::string Conninfo() const { return env_.Conninfo(name_); }
  // A new connection to it (fails the test if impossible).
  pg::PgConn Connect() const;

 private:
  std::string name_;
  TestEnv env_;
};

// Runs a shell command, returns its exit status and combined output.
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

// Path of a Postgres server tool ("pgbench", "pg_recvlogical") of the newest installed version.
std::string PgTool(const std::string& tool);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
// released), for servers a test starts.
int FreePort();

}  // namespace timevault::testing
