#include "support/testenv.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>

namespace timevault::testing {
namespace {

// Reads "export KEY=VALUE" lines.
std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

std::string TestEnv::Conninfo(const std::string& db) const {
  return "host=" + pg_host + " port=" + pg_port + " user=" + pg_user + " dbname=" + db;
}

const TestEnv& Env() {
  static TestEnv env;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* d = std::getenv("TV_TESTENV_DIR");
    env.dir = d ? d : TV_TESTENV_DIR;
    auto pg = ReadEnvFile(env.dir + "/pg.env");
    auto kafka = ReadEnvFile(env.dir + "/kafka.env");
    env.pg_host = pg["PGHOST"];
    env.pg_port = pg["PGPORT"];
    env.pg_user = pg["PGUSER"];
    env.kafka_bootstrap = kafka["KAFKA_BOOTSTRAP"];
  });
  if (env.pg_port.empty() || env.kafka_bootstrap.empty()) {
    ADD_FAILURE() << "test environment missing in " << env.dir
                  << " (run through ctest so the testenv fixture starts it, or tests/testenv start DIR)";
  }
  return env;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
}

TestDatabase::TestDatabase(const std::string& prefix) : TestDatabase(prefix, Env()) {}

TestDatabase::TestDatabase(const std::string& prefix, const TestEnv& env) : name_(UniqueName(prefix)), env_(env) {
  auto admin = pg::PgConn::Connect(env_.Conninfo());
  if (!admin.ok()) {
    ADD_FAILURE() << admin.status().ToString();
    return;
  }
  auto st = admin->Run("CREATE DATABASE " + name_);
  if (!st.ok()) ADD_FAILURE() << st.ToString();
}

TestDatabase::~TestDatabase() {
  auto admin = pg::PgConn::Connect(env_.Conninfo());
  if (!admin.ok()) return;
  (void)admin->Run("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '" + name_ +
                   "' AND active_pid IS NOT NULL");
  (void)admin->Run("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '" + name_ +
                   "'");
  (void)admin->Run("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

pg::PgConn TestDatabase::Connect() const {
  auto c = pg::PgConn::Connect(Conninfo());
  if (!c.ok()) {
    ADD_FAILURE() << c.status().ToString();
    return {};
  }
  return std::move(c).value();
}

CommandResult RunCommand(const std::string& command) {
  CommandResult r{-1, {}};
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string PgTool(const std::string& tool) {
  auto r = RunCommand("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1");
  return r.output.substr(0, r.output.find('\n')) + "/" + tool;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace timevault::testing
