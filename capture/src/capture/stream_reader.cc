#include "capture/stream_reader.h"

#include <libpq-fe.h>

#include <chrono>
#include <utility>

namespace timevault::capture {
namespace {

constexpr int kReadTimeoutMs = 100;
// Counted per queued message besides its bytes (the item and its slot).
constexpr size_t kItemOverhead = 64;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void StreamItem::FreeBuffer::operator()(char* p) const { PQfreemem(p); }

StreamReader::StreamReader(PgReplication* replication, size_t max_bytes, int64_t status_interval_ms)
    : replication_(replication), max_bytes_(max_bytes), status_interval_ms_(status_interval_ms) {}

StreamReader::~StreamReader() { Stop(); }

void StreamReader::Start(Lsn confirmed) {
  published_ = confirmed.value();
  last_status_ms_ = NowMs();
  thread_ = std::thread([this] { Loop(); });
}

void StreamReader::Stop() {
  stop_ = true;
  not_full_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamReader::Publish(Lsn confirmable) {
  uint64_t v = confirmable.value();
  uint64_t cur = published_.load(std::memory_order_relaxed);
  while (v > cur && !published_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

Status StreamReader::Pop(int timeout_ms, std::deque<StreamItem>* out) {
  std::unique_lock lock(mu_);
  // The batch handed over last time is done with: its bytes leave the budget.
  if (handed_bytes_ > 0) {
    queued_bytes_ -= handed_bytes_;
    handed_bytes_ = 0;
    not_full_.notify_one();
  }
  if (queue_.empty() && !ended_) {
    not_empty_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty() || ended_; });
  }
  if (queue_.empty()) return ended_ ? error_ : Status::Ok();
  if (out->empty()) {
    out->swap(queue_);
  } else {
    for (auto& item : queue_) out->push_back(std::move(item));
    queue_.clear();
  }
  handed_bytes_ = queued_bytes_;  // still counted until the next Pop
  return Status::Ok();
}

void StreamReader::Loop() {
  Status st;
  while (!stop_.load() && st.ok()) st = ReadOne();
  std::lock_guard lock(mu_);
  error_ = st.ok() ? Unavailable("replication stream: reader stopped") : st;
  ended_ = true;
  not_empty_.notify_one();
}

// Reads one message (or times out), queues it, and keeps the server
// informed; waits, still sending status updates, while the queue is full.
Status StreamReader::ReadOne() {
  TV_ASSIGN_OR_RETURN(auto bytes, replication_->Read(kReadTimeoutMs));
  if (bytes) {
    StreamItem item;
    item.bytes = bytes->size() + kItemOverhead;
    TV_ASSIGN_OR_RETURN(item.message, pgoutput::DecodeStream(*bytes));
    item.buffer.reset(replication_->TakeBuffer());  // the views stay valid: the buffer moves with them
    bool reply = false;
    if (const auto* ka = std::get_if<pgoutput::Keepalive>(&item.message)) reply = ka->reply_requested;
    std::unique_lock lock(mu_);
    while (queued_bytes_ + item.bytes > max_bytes_ && !queue_.empty() && !stop_.load()) {
      not_full_.wait_for(lock, std::chrono::milliseconds(kReadTimeoutMs));
      if (NowMs() - last_status_ms_ >= status_interval_ms_) {
        lock.unlock();
        TV_RETURN_IF_ERROR(MaybeSendStatus(false));
        lock.lock();
      }
    }
    const bool was_empty = queue_.empty();
    queued_bytes_ += item.bytes;
    queue_.push_back(std::move(item));
    lock.unlock();
    if (was_empty) not_empty_.notify_one();
    if (reply) return MaybeSendStatus(true);
  }
  return MaybeSendStatus(false);
}

Status StreamReader::MaybeSendStatus(bool reply_requested) {
  if (!reply_requested && NowMs() - last_status_ms_ < status_interval_ms_) return Status::Ok();
  last_status_ms_ = NowMs();
  return replication_->SendStatus(Lsn(published_.load(std::memory_order_relaxed)), reply_requested);
}

}  // namespace timevault::capture
