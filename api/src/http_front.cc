#include "http_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace timevault::api {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadChunk = 4096;
constexpr std::string_view kEndOfHead = "\r\n\r\n";
// TLS 1.2 suites: ephemeral key exchange and AEAD only. TLS 1.3 keeps
// OpenSSL's defaults, which are all AEAD with forward secrecy.
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

// One accepted connection: its socket, its TLS state and the bytes read so
// far (the request head, perhaps followed by the start of the body).
struct Conn {
  int fd = -1;
  std::string peer;  // SourceKey of the client's address
  SSL* ssl = nullptr;
  bool handshaken = false;
  std::string bytes;
  SteadyClock::time_point deadline, idle_deadline;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

// The key connections are counted under per source: an IPv4 address (also
// as an IPv4-mapped IPv6 one), or an IPv6 /64 (one host usually holds a
// whole /64, so counting single IPv6 addresses would bound nothing).
std::string SourceKey(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    return std::string(reinterpret_cast<const char*>(&in.sin_addr), 4);
  }
  if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    const auto* b = reinterpret_cast<const char*>(&in6.sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return std::string(b + 12, 4);
    return std::string(b, 8);
  }
  return std::string();
}

// Open connections, in total and per source (SourceKey). Thread-safe: the
// reactor adds, the reactor and the workers remove.
class ConnectionCounts {
 public:
  ConnectionCounts(size_t max_total, size_t max_per_source) : max_total_(max_total), max_per_source_(max_per_source) {}
  // Counts one more from `source`; false (nothing counted) when a limit is reached.
  bool TryAdd(const std::string& source) {
    std::lock_guard lock(mu_);
    if (total_ >= max_total_) return false;
    size_t& n = per_source_[source];
    if (n >= max_per_source_) return false;
    ++n;
    ++total_;
    return true;
  }
  void Remove(const std::string& source) {
    std::lock_guard lock(mu_);
    --total_;
    auto it = per_source_.find(source);
    if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
  }

 private:
  const size_t max_total_, max_per_source_;
  std::mutex mu_;
  size_t total_ = 0;
  std::map<std::string, size_t> per_source_;
};

int MillisUntil(SteadyClock::time_point t) {
  auto ms = std::chrono::duration_cast<milliseconds>(t - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
}

bool WaitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

// A whole answer the front sends itself (before httplib saw the request).
std::string RawResponse(int status, const char* reason, const char* code, const char* message) {
  std::string body = std::string("{\"error\":{\"code\":\"") + code + "\",\"message\":\"" + message + "\"}}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// Best effort, never blocking: the client is being refused.
void SendAndForget(Conn& c, const std::string& text) {
  if (c.ssl) {
    if (c.handshaken) (void)SSL_write(c.ssl, text.data(), static_cast<int>(text.size()));
    return;
  }
  (void)::send(c.fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// httplib reads and writes a request through this: the bytes the reactor
// read first, then the socket, with the body's total deadline and the idle
// and write timeouts.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, const FrontLimits& limits)
      : c_(c), limits_(limits), deadline_(SteadyClock::now() + milliseconds(limits.body_timeout_ms)) {}

  bool is_readable() const override {
    return pos_ < c_.bytes.size() || (c_.ssl && SSL_pending(c_.ssl) > 0) || WaitFor(c_.fd, POLLIN, 0);
  }
  bool is_writable() const override { return WaitFor(c_.fd, POLLOUT, limits_.write_timeout_ms); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == c_.bytes.size()) {
      c_.bytes.clear();
      pos_ = 0;
      ssize_t n = Fill();
      if (n <= 0) return n;
    }
    size_t k = std::min(size, c_.bytes.size() - pos_);
    std::memcpy(ptr, c_.bytes.data() + pos_, k);
    pos_ += k;
    return static_cast<ssize_t>(k);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t off = 0;
    while (off < size) {
      ssize_t n = WriteSome(ptr + off, size - off);
      if (n < 0) return -1;
      off += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { Address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Address(::getsockname, ip, port); }
  // httplib 0.11 uses the descriptor only to guard select()'s FD_SETSIZE
  // (answering 500 above it); all I/O goes through read/write above, which
  // poll(), so a descriptor above that limit is reported as one below it.
  socket_t socket() const override { return c_.fd < FD_SETSIZE ? c_.fd : FD_SETSIZE - 1; }

 private:
  // Reads more bytes into c_.bytes: >0 read, 0 end of stream, -1 error or
  // timeout (idle, or the request's total deadline).
  ssize_t Fill() {
    char buf[kReadChunk];
    for (;;) {
      auto idle = SteadyClock::now() + milliseconds(limits_.idle_timeout_ms);
      int wait_ms = MillisUntil(std::min(idle, deadline_));
      short want = POLLIN;
      if (c_.ssl) {
        int n = SSL_read(c_.ssl, buf, sizeof buf);
        if (n > 0) return Append(buf, static_cast<size_t>(n));
        int e = SSL_get_error(c_.ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
          want = POLLOUT;
        } else if (e != SSL_ERROR_WANT_READ) {
          return -1;
        }
      } else {
        ssize_t n = ::recv(c_.fd, buf, sizeof buf, 0);
        if (n > 0) return Append(buf, static_cast<size_t>(n));
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      }
      if (wait_ms == 0 || !WaitFor(c_.fd, want, wait_ms)) return -1;
    }
  }

  ssize_t Append(const char* p, size_t n) {
    c_.bytes.append(p, n);
    return static_cast<ssize_t>(n);
  }

  ssize_t WriteSome(const char* p, size_t n) {
    for (;;) {
      short want = POLLOUT;
      if (c_.ssl) {
        int w = SSL_write(c_.ssl, p, static_cast<int>(std::min<size_t>(n, 1 << 20)));
        if (w > 0) return w;
        int e = SSL_get_error(c_.ssl, w);
        if (e == SSL_ERROR_WANT_READ) {
          want = POLLIN;
        } else if (e != SSL_ERROR_WANT_WRITE) {
          return -1;
        }
      } else {
        ssize_t w = ::send(c_.fd, p, n, MSG_NOSIGNAL);
        if (w > 0) return w;
        if (w < 0 && errno == EINTR) continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return -1;
      }
      if (!WaitFor(c_.fd, want, limits_.write_timeout_ms)) return -1;
    }
  }

  template <typename Fn>
  void Address(Fn fn, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (fn(c_.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      port = std::atoi(serv);
    }
  }

  Conn& c_;
  const FrontLimits& limits_;
  SteadyClock::time_point deadline_;
  size_t pos_ = 0;
};

}  // namespace

struct HttpFront::Impl {
  RequestEngine& engine;
  FrontLimits limits;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stop{false};
  ConnectionCounts open;  // connections in the reactor, the queue and the workers
  std::thread reactor;
  std::vector<std::thread> workers;
  std::map<int, std::unique_ptr<Conn>> reading;  // reactor thread only

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Conn>> ready;
  std::set<int> serving;  // descriptors the workers are serving, for Stop

  Impl(RequestEngine& e, FrontLimits l) : engine(e), limits(l), open(l.max_connections, l.max_per_address) {}

  void Drop(int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    auto it = reading.find(fd);
    if (it == reading.end()) return;
    open.Remove(it->second->peer);
    reading.erase(it);
  }

  void Refuse(int fd, int status, const char* reason, const char* code, const char* message) {
    auto it = reading.find(fd);
    if (it != reading.end()) SendAndForget(*it->second, RawResponse(status, reason, code, message));
    Drop(fd);
  }

  void AcceptAll() {
    for (;;) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or out of descriptors: the backlog waits
      }
      std::string source = SourceKey(peer);
      if (!open.TryAdd(source)) {
        if (!ctx) {
          std::string busy = RawResponse(503, "Service Unavailable", "unavailable", "too many connections");
          (void)::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        ::close(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->peer = std::move(source);
      bool ok = true;
      if (ctx) {
        c->ssl = SSL_new(ctx.get());
        ok = c->ssl && SSL_set_fd(c->ssl, fd) == 1;
        if (ok) SSL_set_accept_state(c->ssl);
      }
      auto now = SteadyClock::now();
      c->deadline = now + milliseconds(limits.head_timeout_ms);
      c->idle_deadline = now + milliseconds(limits.idle_timeout_ms);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (!ok || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        open.Remove(c->peer);
        continue;  // ~Conn closes
      }
      reading[fd] = std::move(c);
    }
  }

  // The handshake's next step; false when the connection is to be dropped.
  bool Handshake(Conn& c) {
    int r = SSL_do_handshake(c.ssl);
    epoll_event ev{};
    ev.data.fd = c.fd;
    if (r == 1) {
      c.handshaken = true;
      ev.events = EPOLLIN | EPOLLRDHUP;
      epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
      return true;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      ev.events = EPOLLIN | EPOLLRDHUP | (e == SSL_ERROR_WANT_WRITE ? uint32_t{EPOLLOUT} : uint32_t{0});
      epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
      return true;
    }
    ERR_clear_error();
    return false;
  }

  // Reads what the socket has; 1 data read, 0 nothing more now, -1 closed or failed.
  static int ReadSome(Conn& c) {
    char buf[kReadChunk];
    if (c.ssl) {
      int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n > 0) {
        c.bytes.append(buf, static_cast<size_t>(n));
        return 1;
      }
      int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
      ERR_clear_error();
      return -1;
    }
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.bytes.append(buf, static_cast<size_t>(n));
      return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return -1;
  }

  void OnEvent(int fd) {
    auto it = reading.find(fd);
    if (it == reading.end()) return;
    Conn& c = *it->second;
    if (c.ssl && !c.handshaken) {
      if (!Handshake(c)) return Drop(fd);
      if (!c.handshaken) return;
    }
    for (;;) {
      int r = ReadSome(c);
      if (r < 0) return Drop(fd);
      if (c.bytes.find(kEndOfHead) != std::string::npos) return Handoff(fd);
      if (c.bytes.size() > limits.max_head_bytes) {
        return Refuse(fd, 431, "Request Header Fields Too Large", "headers_too_large",
                      "the request line and headers exceed the server's limit");
      }
      if (r == 0) break;
    }
    c.idle_deadline = SteadyClock::now() + milliseconds(limits.idle_timeout_ms);
  }

  void Handoff(int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    auto node = reading.extract(fd);
    std::unique_ptr<Conn> c = std::move(node.mapped());
    {
      std::lock_guard lock(mu);
      if (ready.size() < limits.queue) {
        ready.push_back(std::move(c));
        cv.notify_one();
        return;
      }
    }
    SendAndForget(*c, RawResponse(503, "Service Unavailable", "unavailable", "the server is busy; retry"));
    open.Remove(c->peer);
  }

  // Cuts connections whose head did not arrive in time.
  void Sweep() {
    auto now = SteadyClock::now();
    std::vector<int> late;
    for (const auto& [fd, c] : reading) {
      if (now >= c->deadline || now >= c->idle_deadline) late.push_back(fd);
    }
    for (int fd : late) {
      Refuse(fd, 408, "Request Timeout", "request_timeout", "the request did not arrive in time");
    }
  }

  void RunReactor() {
    epoll_event events[64];
    auto next_sweep = SteadyClock::now();
    while (!stop.load()) {
      int n = epoll_wait(epoll_fd, events, 64, 100);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listen_fd) {
          AcceptAll();
        } else if (fd != wake_fd) {
          OnEvent(fd);
        }
      }
      if (SteadyClock::now() >= next_sweep) {
        Sweep();
        next_sweep = SteadyClock::now() + milliseconds(100);
      }
    }
    for (const auto& [fd, c] : reading) open.Remove(c->peer);
    reading.clear();
  }

  // A refused request's body may still be arriving: closing with unread
  // bytes would reset the connection, and the client could lose the answer
  // it was sent. So the write side is shut and what arrives is read and
  // dropped, for at most kLingerMs and kLingerBytes, before the close.
  static void LingeringClose(Conn& c) {
    constexpr int kLingerMs = 200;
    constexpr size_t kLingerBytes = 4 << 20;
    ::shutdown(c.fd, SHUT_WR);
    auto until = SteadyClock::now() + milliseconds(kLingerMs);
    char buf[kReadChunk];
    size_t drained = 0;
    while (drained < kLingerBytes && WaitFor(c.fd, POLLIN, MillisUntil(until))) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }

  void RunWorker() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stop.load() || !ready.empty(); });
        if (stop.load()) return;
        c = std::move(ready.front());
        ready.pop_front();
        serving.insert(c->fd);
      }
      try {
        ConnStream stream(*c, limits);
        engine.Process(stream);
      } catch (const std::exception& e) {
        spdlog::error("api: request failed: {}", e.what());
      }
      if (c->ssl) {
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
      }
      LingeringClose(*c);
      {
        std::lock_guard lock(mu);
        serving.erase(c->fd);
      }
      const std::string peer = c->peer;
      c.reset();
      open.Remove(peer);
    }
  }
};

HttpFront::HttpFront(RequestEngine& engine, FrontLimits limits) : impl_(std::make_unique<Impl>(engine, limits)) {}

HttpFront::~HttpFront() { Stop(); }

Status HttpFront::EnableTls(const FrontTls& tls) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("TLS: cannot create a context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1) return Internal("TLS: cipher policy refused");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("api.tls_cert/api.tls_key: cannot load " + tls.cert_file + " and " + tls.key_file +
                           " (not a PEM certificate and matching key?)");
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.client_ca_file.c_str(), nullptr) != 1) {
      ERR_clear_error();
      return InvalidArgument("api.tls_client_ca: cannot load " + tls.client_ca_file + " (not PEM certificates?)");
    }
    SSL_CTX_set_client_CA_list(ctx.get(), SSL_load_client_CA_file(tls.client_ca_file.c_str()));
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  impl_->ctx = std::move(ctx);
  return Status::Ok();
}

Result<int> HttpFront::Start(const std::string& host, int port) {
  auto& i = *impl_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found) != 0 || !found) {
    return InvalidArgument("api.listen: cannot resolve host '" + host + "'");
  }
  int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, found->ai_protocol);
  int one = 1;
  bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            ::bind(fd, found->ai_addr, found->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0;
  freeaddrinfo(found);
  if (!ok) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return Unavailable("api: cannot bind " + host + ":" + service + ": " + std::strerror(err));
  }
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int bound = ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
  i.listen_fd = fd;
  i.engine.SetListening(fd);
  i.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  i.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (int watched : {i.listen_fd, i.wake_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = watched;
    epoll_ctl(i.epoll_fd, EPOLL_CTL_ADD, watched, &ev);
  }
  i.reactor = std::thread([&i] { i.RunReactor(); });
  for (int w = 0; w < i.limits.workers; ++w) i.workers.emplace_back([&i] { i.RunWorker(); });
  return bound;
}

void HttpFront::Stop() {
  auto& i = *impl_;
  if (i.listen_fd < 0) return;
  i.stop.store(true);
  i.engine.SetListening(INVALID_SOCKET);  // ends streamed responses
  uint64_t one = 1;
  (void)::write(i.wake_fd, &one, sizeof one);
  if (i.reactor.joinable()) i.reactor.join();
  {
    std::lock_guard lock(i.mu);
    for (int fd : i.serving) ::shutdown(fd, SHUT_RDWR);  // ends a worker's blocked read or write
    i.ready.clear();
  }
  i.cv.notify_all();
  for (auto& t : i.workers) t.join();
  i.workers.clear();
  ::close(i.listen_fd);
  ::close(i.epoll_fd);
  ::close(i.wake_fd);
  i.listen_fd = i.epoll_fd = i.wake_fd = -1;
}

}  // namespace timevault::api
