// Servers of one test's own, for fault tests that freeze, kill or restart
// them (the testenv fixture's Postgres and broker are shared by every test of
// the build dir and must stay up). Each starts in a temporary directory
// through scripts/pg-local or scripts/kafka-local and is stopped (and its
// files removed) on destruction.
#pragma once

#include <string>

#include "support/process.h"
#include "support/testenv.h"

namespace timevault::testing {

class PrivateServers {
 public:
  // Starts a private Postgres (durable: fsync on, since an immediate restart
  // must not lose acknowledged commits) if `postgres`, a private broker if
  // `kafka`; the other comes from the shared Env(). Fails the test on error.
  PrivateServers(bool postgres, bool kafka);
  ~PrivateServers();
  PrivateServers(const PrivateServers&) = delete;
  PrivateServers& operator=(const PrivateServers&) = delete;

  // The servers to use: the private ones, the shared for the rest.
  const TestEnv& env() const { return env_; }

  // `pg_ctl restart -m immediate` of the private Postgres: every backend and
  // walsender dies without a shutdown checkpoint, then crash recovery.
  void CrashRestartPostgres();
  // SIGSTOP / SIGCONT of the private broker's process.
  void PauseBroker();
  void ResumeBroker();

 private:
  TempDir dir_;
  TestEnv env_;
  bool postgres_ = false;
  bool kafka_ = false;
};

}  // namespace timevault::testing
