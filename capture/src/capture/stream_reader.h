// StreamReader: the replication thread of a streaming session. It reads the
// server's CopyData messages, splits XLogData from keepalives
// (pgoutput::DecodeStream) and hands them, in stream order, to the session
// thread, which decodes pgoutput, encodes Debezium JSON and produces. The
// read-ahead is bounded in bytes (postgres.read_ahead_bytes), counting the
// queue and the batch the session took with the last Pop (it is done with
// it when it calls Pop again): while it is full the reader stops reading
// (the walsender waits on the socket).
//
// The reader owns the replication connection until Stop(): it answers
// keepalives that ask for a reply and sends a standby status update every
// status interval (also while the queue is full), always with the position
// the session last published (Publish). The session publishes only
// AckTracker::Confirmable(), so what is confirmed is still only what Kafka
// acknowledged with everything before it (invariant 1).
//
// Thread-safety: Start, Pop, Publish and Stop are called by the session
// thread only; the reader thread runs between Start and Stop (the destructor
// stops it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "capture/replication.h"
#include "timevault/capture/pgoutput.h"
#include "timevault/core/lsn.h"
#include "timevault/core/status.h"

namespace timevault::capture {

// One CopyData message from the server, owning libpq's buffer.
struct StreamItem {
  struct FreeBuffer {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, FreeBuffer> buffer;
  pgoutput::StreamMessage message;  // views into `buffer`
  size_t bytes = 0;
};

class StreamReader {
 public:
  StreamReader(PgReplication* replication, size_t max_bytes, int64_t status_interval_ms);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // Starts the reader thread; `confirmed` is the position to report until
  // the first Publish.
  void Start(Lsn confirmed);
  // Moves every queued item, in stream order, to the end of `out`, waiting
  // up to `timeout_ms` for one; the items moved by the previous call count
  // as released. Once the queue is empty, the reader's error (a broken
  // connection, malformed bytes) if it stopped on one.
  Status Pop(int timeout_ms, std::deque<StreamItem>* out);
  // The position the reader reports from now on (never decreases).
  void Publish(Lsn confirmable);
  // Stops and joins the reader thread; the connection is the caller's again.
  void Stop();

 private:
  void Loop();
  Status ReadOne();
  Status MaybeSendStatus(bool reply_requested);

  PgReplication* replication_;
  const size_t max_bytes_;
  const int64_t status_interval_ms_;
  std::atomic<uint64_t> published_{0};
  std::atomic<bool> stop_{false};
  int64_t last_status_ms_ = 0;  // reader thread only

  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<StreamItem> queue_;  // guarded by mu_
  size_t queued_bytes_ = 0;       // guarded by mu_; the queue's and handed_bytes_
  size_t handed_bytes_ = 0;       // guarded by mu_; the batch the last Pop handed over
  Status error_;                  // guarded by mu_; set once, when the reader ends on an error
  bool ended_ = false;            // guarded by mu_
  std::thread thread_;
};

}  // namespace timevault::capture
