// The API's HTTP front: the accept loop, connection limits, timeouts and TLS
// in front of cpp-httplib's request handling (docs/api.md, "HTTP front").
//
// Debian's cpp-httplib 0.11.4 reads headers without a count limit, gives each
// connection a pool thread for as long as the client trickles bytes (its
// timeouts are per read, not per request) and queues accepted connections
// without bound. So the front does what httplib cannot:
//   - one reactor thread (epoll) accepts and reads every request head, up to
//     `max_head_bytes` and within `head_timeout_ms` of the accept (and
//     `idle_timeout_ms` between bytes); slow or silent clients wait there,
//     costing a buffer, never a worker;
//   - at most `max_connections` connections are open, and at most
//     `max_per_address` from one source address (IPv4, or IPv6 /64); more
//     are answered 503 and closed, so one client cannot take every slot;
//   - a complete head goes to one of `workers` threads through a queue of at
//     most `queue` entries (full: 503), which hands it to httplib's
//     process_request through a Stream that replays the head and reads the
//     body under `body_timeout_ms` in total;
//   - TLS (OpenSSL, non-blocking handshake in the reactor) with TLS 1.2 as the
//     minimum, forward-secret AEAD ciphers only, optional client certificates.
// Body framing, sizes and authentication are checked by the server's
// pre-routing handler, which httplib runs after the head and before the body.
//
// Lifetime: Start() binds and starts the threads; Stop() (or the destructor)
// closes the listener and every connection and joins the threads.
// Thread-safety: Start/Stop from one thread.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "timevault/core/status.h"

namespace timevault::api {

struct FrontLimits {
  size_t max_connections = 512;
  size_t max_per_address = 64;
  size_t max_head_bytes = 16 * 1024;
  int head_timeout_ms = 10000;
  int idle_timeout_ms = 5000;
  int body_timeout_ms = 30000;
  int write_timeout_ms = 30000;
  int workers = 8;
  size_t queue = 128;
};

struct FrontTls {
  std::string cert_file, key_file;
  std::string client_ca_file;  // non-empty: clients must present a certificate signed by it
};

// httplib's request processing (request line, headers, pre-routing handler,
// bounded body, routing, response) without its accept loop.
class RequestEngine : public httplib::Server {
 public:
  bool Process(httplib::Stream& stream) {
    bool closed = true;
    return process_request(stream, true, closed, [](httplib::Request&) {});
  }
  // httplib's streamed responses (content providers) stop as soon as the
  // server looks shut down, which it judges by its listening socket: the
  // front's, while it serves; none once it stops.
  void SetListening(int fd) { svr_sock_ = fd; }
};

class HttpFront {
 public:
  // `engine` outlives the front.
  HttpFront(RequestEngine& engine, FrontLimits limits);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Loads the certificate and key (and the client CA) into a TLS context.
  Status EnableTls(const FrontTls& tls);
  // Binds host:port (0: any free port) and starts the reactor and workers.
  Result<int> Start(const std::string& host, int port);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace timevault::api
