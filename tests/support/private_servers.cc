#include "support/private_servers.h"

#include <gtest/gtest.h>

namespace timevault::testing {
namespace {

// The value of "export NAME=value" in `output`.
std::string ExportValue(const std::string& output, const std::string& name) {
  const std::string tag = "export " + name + "=";
  const size_t at = output.find(tag);
  if (at == std::string::npos) return "";
  const size_t from = at + tag.size();
  return output.substr(from, output.find('\n', from) - from);
}

std::string Script(const std::string& name) { return std::string(TV_SOURCE_DIR) + "/scripts/" + name; }

}  // namespace

PrivateServers::PrivateServers(bool postgres, bool kafka) : env_(Env()) {
  env_.dir = dir_.path();
  if (postgres) {
    auto started = RunCommand(Script("pg-local") + " start " + dir_.path());
    if (started.exit_code != 0) {
      ADD_FAILURE() << "private Postgres: " << started.output;
      return;
    }
    postgres_ = true;
    env_.pg_host = ExportValue(started.output, "PGHOST");
    env_.pg_port = ExportValue(started.output, "PGPORT");
    env_.pg_user = ExportValue(started.output, "PGUSER");
  }
  if (kafka) {
    auto started = RunCommand(Script("kafka-local") + " start " + dir_.path());
    if (started.exit_code != 0) {
      ADD_FAILURE() << "private broker: " << started.output;
      return;
    }
    kafka_ = true;
    env_.kafka_bootstrap = ExportValue(started.output, "KAFKA_BOOTSTRAP");
  }
}

PrivateServers::~PrivateServers() {
  if (kafka_) {
    RunCommand(Script("kafka-local") + " resume " + dir_.path());  // a stopped JVM ignores SIGTERM
    RunCommand(Script("kafka-local") + " stop " + dir_.path());
  }
  if (postgres_) {
    RunCommand(Script("pg-local") + " stop " + dir_.path());
    // The cluster may live outside DIR (pg-local's pg.datadir says where).
    RunCommand("d=$(cat " + dir_.path() +
               "/pg.datadir) && case \"$d\" in /var/tmp/timevault-pg/*) rm -rf \"$d\";; esac");
  }
}

void PrivateServers::CrashRestartPostgres() {
  ASSERT_TRUE(postgres_) << "no private Postgres";
  auto r = RunCommand(Script("pg-local") + " crash-restart " + dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void PrivateServers::PauseBroker() {
  ASSERT_TRUE(kafka_) << "no private broker";
  auto r = RunCommand(Script("kafka-local") + " pause " + dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void PrivateServers::ResumeBroker() {
  ASSERT_TRUE(kafka_) << "no private broker";
  auto r = RunCommand(Script("kafka-local") + " resume " + dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace timevault::testing
