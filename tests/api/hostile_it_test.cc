// Hostile clients against a real `timevault run` (capture, store and API in
// one process, real Postgres and Kafka), from loopback, bounded in bytes and
// time: deep JSON, chunked and length-less bodies of 1 GiB, a compressed
// bomb, endless headers, 256 slow clients, 10,000 refused requests and forged
// audit lines. After each: the process is alive, its peak RSS grew by less
// than 64 MiB, /v1/health answers a valid token within 1 s and
// /v1/audit/verify passes. The figures are printed for docs/api.md.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/capture_harness.h"
#include "support/testenv.h"
#include "timevault/core/crypto.h"

namespace timevault::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kAdmin = "hostile-admin-secret";
constexpr const char* kOperator = "hostile-operator-secret";
constexpr int64_t kGiB = 1LL << 30;
constexpr long kMaxGrowthKb = 64 * 1024;

// The hostile clients' source address: not 127.0.0.1, from which the
// checks (health, verify) come, so the per-address connection cap (64)
// applies to them and not to the checks, as with a client on another host.
constexpr const char* kHostileSource = "127.0.0.2";

// A raw loopback connection with send/receive timeouts, from `source`.
class RawConn {
 public:
  explicit RawConn(int port, int timeout_s = 5, const char* source = kHostileSource) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_s, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConn() { close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  // Sends all of `data`; false once the server closed or stopped reading.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
      sent_ += n;
    }
    return true;
  }
  // Reads what the server says until it closes (or the timeout).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd_, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  // Keeps sending `piece` until `limit` bytes or the server refuses more.
  int64_t Stream(const std::string& piece, int64_t limit, std::chrono::seconds max_time) {
    auto deadline = SteadyClock::now() + max_time;
    int64_t before = sent_;
    while (sent_ - before < limit && SteadyClock::now() < deadline && Send(piece)) {
    }
    return sent_ - before;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  int64_t sent_ = 0;
};

std::string StatusLine(const std::string& reply) { return reply.substr(0, std::min<size_t>(reply.size(), 12)); }

long RssKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return 0;
}

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    CaptureOptions o;
    o.extra = "[api]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n" +
              "[[api.tokens]]\nname = \"admin\"\nsha256 = \"" + crypto::Sha256Hex(kAdmin) +
              "\"\nrole = \"admin\"\ntenants = [\"*\"]\n" + "[[api.tokens]]\nname = \"op\"\nsha256 = \"" +
              crypto::Sha256Hex(kOperator) + "\"\nrole = \"operator\"\ntenants = [\"acme\"]\n";
    h_ = std::make_unique<CaptureHarness>(o);
    h_->Exec(
        "CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text);"
        "INSERT INTO items SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 'item ' || g "
        "FROM generate_series(1, 20) g;");
    run_ = std::make_unique<Process>();
    ASSERT_TRUE(run_->Start({TV_BINARY, "--config", h_->config_path(), "run"}, h_->store_path() + "-run.log"));
    auto deadline = SteadyClock::now() + 90s;
    while (SteadyClock::now() < deadline && run_->running()) {
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(1);
      auto r = c.Get("/v1/tenants/acme/state", {{"Authorization", std::string("Bearer ") + kAdmin}});
      if (r && r->status == 200 && std::count(r->body.begin(), r->body.end(), '\n') == 10) break;
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(run_->running()) << run_->ReadLog();
    // Warm up (threads, caches), then take the baseline.
    for (int i = 0; i < 5; ++i) CheckHealth();
    baseline_hwm_kb_ = RssKb(run_->pid(), "VmHWM:");
  }
  void TearDown() override {
    if (run_) {
      EXPECT_EQ(run_->Stop(60), 0) << "timevault run did not stop cleanly:\n" << run_->ReadLog();
      std::string log = run_->ReadLog();
      EXPECT_EQ(log.find("exception"), std::string::npos) << log;
    }
  }

  // /v1/health for a valid token: its latency in ms (-1: no 200 answer).
  double CheckHealth() {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2);
    c.set_read_timeout(5);
    auto start = SteadyClock::now();
    auto r = c.Get("/v1/health", {{"Authorization", std::string("Bearer ") + kAdmin}});
    double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
    return r && r->status == 200 ? ms : -1;
  }

  bool AuditVerifies(std::string* body) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10);
    auto r = c.Get("/v1/audit/verify", {{"Authorization", std::string("Bearer ") + kAdmin}});
    if (!r) return false;
    *body = r->body;
    return r->status == 200 && r->body.find("\"ok\":true") != std::string::npos;
  }

  uint64_t AuditLines() {
    std::ifstream in(h_->store_path() + "-api/audit.log");
    uint64_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }

  // The table's row: alive, bounded, answering, audit intact.
  void ExpectAliveAndBounded(const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(run_->running()) << what << " killed the process:\n" << run_->ReadLog();
    long growth = RssKb(run_->pid(), "VmHWM:") - baseline_hwm_kb_;
    double ms = CheckHealth();
    std::string verify;
    bool verified = AuditVerifies(&verify);
    std::printf("[hostile] %-34s alive, peak RSS +%ld KiB, /v1/health %.1f ms, audit verify %s\n", what.c_str(), growth,
                ms, verified ? "ok" : "BROKEN");
    EXPECT_LT(growth, kMaxGrowthKb) << "peak RSS grew by " << growth << " KiB";
    EXPECT_GE(ms, 0) << "/v1/health did not answer";
    EXPECT_LT(ms, 1000) << "/v1/health took " << ms << " ms";
    EXPECT_TRUE(verified) << verify;
  }

  std::string Head(const std::string& method, const std::string& path, const std::string& token,
                   const std::string& extra) {
    std::string h = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) h += "Authorization: Bearer " + token + "\r\n";
    return h + extra + "\r\n";
  }

  int port_ = 0;
  long baseline_hwm_kb_ = 0;
  std::unique_ptr<CaptureHarness> h_;
  std::unique_ptr<Process> run_;
};

TEST_F(HostileTest, EveryRowReadsRefusedAliveBounded) {
  // 1. 1 MiB of '[' with a Content-Length: the process died of a recursive
  // parse on the refused-request audit path. Without a token the body is
  // never read; with one it is refused by the depth limit.
  std::string deep(1 << 20, '[');
  for (const std::string& token : {std::string(), std::string(kOperator)}) {
    RawConn c(port_, 10);
    ASSERT_TRUE(c.connected());
    c.Send(Head("POST", "/v1/backups", token, "Content-Type: application/json\r\nContent-Length: 1048576\r\n"));
    c.Send(deep);
    std::string reply = c.ReadAll();
    EXPECT_EQ(StatusLine(reply), token.empty() ? "HTTP/1.1 401" : "HTTP/1.1 400") << reply.substr(0, 300);
    if (!token.empty()) {
      EXPECT_NE(reply.find("nested deeper than"), std::string::npos) << reply.substr(0, 300);
    }
  }
  ExpectAliveAndBounded("deep JSON (1 MiB of '[')");

  // 2. A chunked body of 1 GiB, with and without a token: 411 after the head.
  std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  for (const std::string& token : {std::string(), std::string(kOperator)}) {
    RawConn c(port_, 5);
    ASSERT_TRUE(c.connected());
    c.Send(Head("POST", "/v1/backups", token, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"));
    std::this_thread::sleep_for(200ms);
    char buf[512];
    ssize_t n = recv(c.fd(), buf, sizeof buf, 0);
    std::string reply = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    int64_t accepted = c.Stream(chunk, kGiB, 20s);
    std::printf("[hostile] chunked 1 GiB (%s): %s, %lld bytes accepted before the close\n",
                token.empty() ? "no token" : "token", StatusLine(reply).c_str(), static_cast<long long>(accepted));
    EXPECT_EQ(StatusLine(reply), "HTTP/1.1 411") << reply;
    EXPECT_LT(accepted, 64LL << 20);
  }
  ExpectAliveAndBounded("chunked body of 1 GiB");

  // 3. A length-less body (no Content-Length, no Transfer-Encoding) of 1 GiB.
  {
    RawConn c(port_, 5);
    ASSERT_TRUE(c.connected());
    c.Send(Head("POST", "/v1/backups", kOperator, "Content-Type: application/json\r\nConnection: close\r\n"));
    std::this_thread::sleep_for(200ms);
    char buf[512];
    ssize_t n = recv(c.fd(), buf, sizeof buf, 0);
    std::string reply = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    int64_t accepted = c.Stream(std::string(1 << 16, 'y'), kGiB, 20s);
    std::printf("[hostile] length-less 1 GiB: %s, %lld bytes accepted\n", StatusLine(reply).c_str(),
                static_cast<long long>(accepted));
    EXPECT_EQ(StatusLine(reply), "HTTP/1.1 411") << reply;
    EXPECT_LT(accepted, 64LL << 20);
  }
  ExpectAliveAndBounded("length-less body of 1 GiB");

  // 4. A gzip bomb: 1 GiB of zeros compressed, sent whole with its length.
  {
    TempDir dir;
    auto gz = RunCommand("head -c 1073741824 /dev/zero | gzip -1 > " + dir.path() + "/bomb.gz");
    ASSERT_EQ(gz.exit_code, 0) << gz.output;
    std::ifstream in(dir.path() + "/bomb.gz", std::ios::binary);
    std::string bomb((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    RawConn c(port_, 10);
    ASSERT_TRUE(c.connected());
    c.Send(Head("POST", "/v1/backups", kOperator,
                "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " +
                    std::to_string(bomb.size()) + "\r\n"));
    std::this_thread::sleep_for(200ms);
    char buf[512];
    ssize_t n = recv(c.fd(), buf, sizeof buf, 0);
    std::string reply = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    c.Send(bomb);
    std::printf("[hostile] gzip bomb (%zu bytes -> 1 GiB): %s\n", bomb.size(), StatusLine(reply).c_str());
    EXPECT_EQ(StatusLine(reply), "HTTP/1.1 415") << reply;
  }
  ExpectAliveAndBounded("compressed bomb");

  // 5. Endless headers: one stream of header lines, and many small ones.
  {
    RawConn c(port_, 5);
    ASSERT_TRUE(c.connected());
    c.Send("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    int64_t accepted = c.Stream("X-Filler: " + std::string(200, 'h') + "\r\n", 1LL << 30, 20s);
    std::string reply = c.ReadAll();
    std::printf("[hostile] endless headers: %lld bytes accepted, %s\n", static_cast<long long>(accepted),
                StatusLine(reply).c_str());
    EXPECT_LT(accepted, 64LL << 20);
    EXPECT_TRUE(reply.empty() || StatusLine(reply) == "HTTP/1.1 431") << reply.substr(0, 200);
    RawConn many(port_, 5);
    std::string headers;
    for (int i = 0; i < 100; ++i) headers += "X-H" + std::to_string(i) + ": v\r\n";
    many.Send(Head("GET", "/v1/health", kAdmin, headers));
    EXPECT_EQ(StatusLine(many.ReadAll()), "HTTP/1.1 431");
  }
  ExpectAliveAndBounded("endless headers");

  // 6. 256 slow clients (from four addresses, 64 each: the per-address cap),
  // each with an unfinished head, trickling a byte every 300 ms: health must
  // keep answering, and the trickle is cut.
  {
    std::vector<std::unique_ptr<RawConn>> slow;
    const std::string sources[] = {"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"};
    for (int i = 0; i < 256; ++i) {
      slow.push_back(std::make_unique<RawConn>(port_, 1, sources[i / 64].c_str()));
      ASSERT_TRUE(slow.back()->connected()) << i;
      slow.back()->Send("GET /v1/health HTTP/1.1\r\nX-Slow: ");
    }
    std::atomic<bool> stop{false};
    std::thread trickle([&] {
      while (!stop.load()) {
        for (auto& c : slow) (void)send(c->fd(), "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        std::this_thread::sleep_for(300ms);
      }
    });
    double worst = 0;
    for (int i = 0; i < 10; ++i) {
      double ms = CheckHealth();
      EXPECT_GE(ms, 0) << "health got no answer with 256 slow clients";
      worst = std::max(worst, ms);
      std::this_thread::sleep_for(200ms);
    }
    std::printf("[hostile] 256 slow clients: /v1/health worst of 10: %.1f ms\n", worst);
    EXPECT_LT(worst, 1000);
    // The head deadline (10 s from accept) cuts them: every one is closed by 14 s.
    std::this_thread::sleep_for(12s);
    stop.store(true);
    trickle.join();
    int cut = 0;
    for (auto& c : slow) {
      std::string rest = c->ReadAll();  // 408 then close, or just closed
      char b;
      if (recv(c->fd(), &b, 1, MSG_DONTWAIT) == 0 || rest.find("408") != std::string::npos) ++cut;
    }
    std::printf("[hostile] 256 slow clients: %d cut by the head deadline\n", cut);
    EXPECT_EQ(cut, 256);
  }
  ExpectAliveAndBounded("256 slow clients");

  // 6b. One address opening 100 connections with unfinished heads: the first
  // 64 are held (the per-address cap), the other 36 answered 503 at once;
  // other addresses are served meanwhile.
  {
    std::vector<std::unique_ptr<RawConn>> held;
    int refused = 0;
    for (int i = 0; i < 100; ++i) {
      held.push_back(std::make_unique<RawConn>(port_, 1, "127.0.0.20"));
      ASSERT_TRUE(held.back()->connected()) << i;
      (void)held.back()->Send("GET /v1/health HTTP/1.1\r\nX-Slow: ");
    }
    std::this_thread::sleep_for(1s);
    // Held: still open, nothing to read yet. Refused: the 503 (or, when the
    // close overtook it, the reset or end of the connection).
    int with_503 = 0;
    for (auto& c : held) {
      char buf[256];
      ssize_t n = recv(c->fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      ++refused;
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 503", 0) == 0) ++with_503;
    }
    EXPECT_GT(with_503, 0) << "no refused connection read its 503";
    const double ms = CheckHealth();
    RawConn other(port_, 5, "127.0.0.21");
    other.Send(Head("GET", "/v1/health", kAdmin, ""));
    const std::string reply = other.ReadAll();
    std::printf("[hostile] 100 connections from one address: %d refused (%d read the 503); health %.1f ms\n", refused,
                with_503, ms);
    EXPECT_EQ(refused, 36);
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 1000);
    EXPECT_EQ(StatusLine(reply), "HTTP/1.1 200") << reply.substr(0, 200);
  }
  ExpectAliveAndBounded("100 connections from one address");

  // 7. 10,000 refused requests (bad token): bounded audit writes.
  {
    uint64_t lines_before = AuditLines();
    std::atomic<int> unauthorized{0}, limited{0}, other{0};
    auto start = SteadyClock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        httplib::Client c("127.0.0.1", port_);
        for (int i = 0; i < 2500; ++i) {
          auto r = c.Get("/v1/health", {{"Authorization", "Bearer wrong-token"}});
          if (r && r->status == 401) {
            ++unauthorized;
          } else if (r && r->status == 429) {
            ++limited;
          } else {
            ++other;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::this_thread::sleep_for(3s);  // one aggregation window
    uint64_t written = AuditLines() - lines_before;
    std::printf("[hostile] 10,000 refused requests in %.1f s: %d x 401, %d x 429, %d other; %llu audit entries\n",
                seconds, unauthorized.load(), limited.load(), other.load(), static_cast<unsigned long long>(written));
    EXPECT_EQ(unauthorized + limited, 10000);
    EXPECT_GT(limited.load(), 0) << "no per-source limit";
    EXPECT_LT(written, 50u) << "refusals are aggregated";
    EXPECT_GT(written, 0u) << "refusals are audited";
  }
  ExpectAliveAndBounded("10,000 refused requests");

  // 8. Forged audit lines: a body with raw newlines carrying a forged entry.
  {
    std::string forged =
        "{\"tenant\":\"acme\",\n\"name\":\"x\",\"type\":\"bogus\",\n\"description\":\"\\n{\\\"seq\\\":2,\\\"actor\\\":"
        "\\\"alice\\\",\\\"method\\\":\\\"DELETE\\\",\\\"path\\\":\\\"/v1/backups/b-forged\\\"}\"\n}";
    for (const std::string& token : {std::string(), std::string(kOperator)}) {
      httplib::Client c("127.0.0.1", port_);
      httplib::Headers h;
      if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
      auto r = c.Post("/v1/backups", h, forged, "application/json");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, token.empty() ? 401 : 400) << r->body;
    }
    httplib::Client c("127.0.0.1", port_);
    auto q = c.Get("/v1/audit?actor=alice", {{"Authorization", std::string("Bearer ") + kAdmin}});
    ASSERT_TRUE(q);
    EXPECT_EQ(q->body, "{\"entries\":[],\"next_cursor\":null}") << "a forged entry is listed";
    std::ifstream in(h_->store_path() + "-api/audit.log");
    for (std::string line; std::getline(in, line);) {
      EXPECT_EQ(line.find("{\"seq\":2,\"actor\":\"alice\""), std::string::npos) << line;
      EXPECT_EQ(line.rfind("{\"seq\":", 0), 0u) << line;
    }
  }
  ExpectAliveAndBounded("forged audit lines");
}

}  // namespace
}  // namespace timevault::testing
