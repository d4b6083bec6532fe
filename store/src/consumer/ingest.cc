#include "timevault/store/ingest.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "consumer/applier.h"
#include "consumer/change_merge.h"
#include "consumer/signature.h"
#include "timevault/core/kafka.h"
#include "timevault/store/event.h"

namespace timevault::store {
namespace {

constexpr size_t kMaxBatch = 5000;
constexpr int kBatchWindowMs = 100;
constexpr size_t kMergeRound = 256;  // change messages between two looks at the markers and the consumer
// The longest the loop sleeps when no queue had a message: a message wakes it
// at once (Wakeup); this bounds how late it sees `stop`.
constexpr int kIdleWaitMs = 100;
// Of WAL: how far ENDs are read ahead of the changes. With the changes
// merged by LSN a batch's ENDs then close its transactions in it: 1 MB (two
// batches' worth) left nearly every transaction in flight across two
// batches, with records of its own; below ~8 KB changes begin to wait for
// ENDs not yet read (BENCHMARKS.md, round 7).
constexpr uint64_t kEndsAheadBytes = 32 << 10;
// Once the poll loop has waited this long for a change without one coming,
// ENDs are read whatever their LSN: the look-ahead above only orders a busy
// stream, and an END far ahead of every change (a transaction that committed
// long after its last change, with nothing after it) must not wait for a
// change that may not come. (Waited time, not time since the partitions
// were last empty: a busy loop also finds them empty now and then, and then
// waits for the batch being built, not for Kafka.)
constexpr int kEndsIdleMs = 100;

// Escapes regex metacharacters of a topic prefix.
std::string RegexEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// An eventfd that librdkafka writes to when one of the queues it is given
// gets a message while empty (rd_kafka_queue_io_event_enable): the poll loop
// sleeps on it when it found nothing, instead of waking every few
// milliseconds to look.
class Wakeup {
 public:
  Wakeup() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Wakeup() {
    if (fd_ >= 0) close(fd_);
  }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  Status Check() const {
    return fd_ >= 0 ? Status::Ok() : Internal(std::string("eventfd for the poll loop: ") + std::strerror(errno));
  }
  // Until `q` is destroyed or handed here again.
  void Watch(rd_kafka_queue_t* q) const { rd_kafka_queue_io_event_enable(q, fd_, &kOne, sizeof kOne); }
  // Up to `ms` for a watched queue to get a message; clears the signal.
  // Whether one did (or had since the last Wait).
  bool Wait(int ms) const {
    pollfd p{fd_, POLLIN, 0};
    if (ms > 0) (void)poll(&p, 1, ms);
    uint64_t n = 0;
    return read(fd_, &n, sizeof n) == sizeof n;  // EAGAIN when not signalled
  }

 private:
  static constexpr uint64_t kOne = 1;  // eventfd takes 8-byte writes
  int fd_;
};

// Rebalance: every assigned partition starts at the offset the store holds
// (written in the same WriteBatch as its data), or at the beginning.
//
// Every partition is consumed from its own queue, taken out of the consumer
// queue before it is assigned (librdkafka keeps a queue the application
// re-routed so, and a partition's messages then never reach the consumer
// queue, so each partition is still delivered in offset order). The poll
// loop reads the transaction topic's (end_queues) ahead of the changes, so a
// change mostly finds its END applied, and merges the other partitions'
// (change_queues) by LSN (docs/store.md). Through the shared consumer queue
// librdkafka handed out thousands of messages of one partition at a time,
// partitions millions of LSNs apart: a transaction's events (spread over the
// partitions by tenant) then reached the store in ~6 batches, each of which
// rewrote its bookkeeping records.
class Rebalancer {
 public:
  // Where a partition the store holds nothing of starts: its first offset,
  // asked of the broker. Not RD_KAFKA_OFFSET_BEGINNING: librdkafka 2.0
  // resolves a logical offset for a partition it has not yet placed on its
  // leader only after a retry timer, which left a fresh store idle for
  // 0.5-1 s after its first assignment in 3 runs of 5 (BENCHMARKS.md, round 7).
  // BEGINNING if the broker does not answer (librdkafka then resolves it).
  static int64_t FirstOffset(rd_kafka_t* rk, const char* topic, int32_t partition) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("store: first offset of {}[{}]: {}; starting from the beginning", topic, partition,
                   rd_kafka_err2str(err));
      return RD_KAFKA_OFFSET_BEGINNING;
    }
    return lo;
  }

  // The stored next offset of a partition, checked against what the
  // partition holds: below its first offset (its retention deleted messages
  // the store never read) or past its end (the topic was deleted and
  // recreated, or truncated: its offsets started over, and the store would
  // take the new messages below `next` for re-deliveries) is a gap, recorded
  // with the partition's first offset as its next one (docs/store.md, "Kafka
  // offsets that jump"). When the broker does not answer, the stored offset
  // (a jump forward is still found by the ingest of the first message read).
  // A partition with no stored offset starts at its first offset (FirstOffset);
  // when the store already vouches for history, a first offset above 0 means
  // messages deleted before the store ever read one of them: a gap too.
  int64_t CheckedOffset(rd_kafka_t* rk, const char* topic, int32_t partition, std::optional<int64_t> stored) {
    if (!stored && !store_->RecoverablePoint().ok()) return FirstOffset(rk, topic, partition);
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!stored) return FirstOffset(rk, topic, partition);
      spdlog::warn("store: offsets held by {}[{}]: {}; resuming at the stored {} unchecked", topic, partition,
                   rd_kafka_err2str(err), *stored);
      return *stored;
    }
    const int64_t next = stored.value_or(0);
    if (next >= lo && next <= hi) return stored ? next : lo;
    auto resumed = store_->RecordSkippedOffsets(topic, partition, next, lo, hi);
    if (!resumed.ok()) {
      error_ = resumed.status();
      return RD_KAFKA_OFFSET_INVALID;
    }
    return *resumed;
  }

  Rebalancer(Store* store, IngestMetrics* metrics, Applier* applier, std::vector<IngestItem>* pending,
             std::string txn_topic, const Wakeup* wakeup)
      : store_(store),
        metrics_(metrics),
        applier_(applier),
        pending_(pending),
        txn_topic_(std::move(txn_topic)),
        wakeup_(wakeup) {}
  Rebalancer(const Rebalancer&) = delete;
  Rebalancer& operator=(const Rebalancer&) = delete;
  ~Rebalancer() { ReleaseQueues(); }

  static void Callback(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<Rebalancer*>(opaque)->On(rk, err, parts);
  }

  const Status& error() const { return error_; }
  const std::vector<rd_kafka_queue_t*>& end_queues() const { return end_queues_; }
  const std::vector<rd_kafka_queue_t*>& change_queues() const { return change_queues_; }
  // Changes at every rebalance (the queues above are replaced).
  uint64_t generation() const { return generation_; }
  // Before the consumer handle goes (the queues hold references into it).
  void ReleaseQueues() {
    for (auto* queues : {&end_queues_, &change_queues_}) {
      for (rd_kafka_queue_t* q : *queues) rd_kafka_queue_destroy(q);
      queues->clear();
    }
    ++generation_;
  }

 private:
  void On(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    metrics_->rebalances.fetch_add(1);
    // Messages consumed before the rebalance are applied first (the batch in
    // flight, then the one being filled), so the offsets read below include
    // them (no batch ever holds a message twice).
    if (Status st = applier_->Wait(); !st.ok() && error_.ok()) error_ = st;
    // Held-back messages are applied now (as `pending` where their END is
    // still missing): the partitions may go to another consumer. Never
    // after a failed batch: they and the batch being filled follow messages
    // that were not applied, and their offsets would be stored past them.
    applier_->TakeHeldBack(pending_);
    if (!error_.ok()) pending_->clear();
    if (!pending_->empty()) {
      error_ = store_->Apply(*pending_);
      if (error_.ok()) {
        metrics_->consumed.fetch_add(pending_->size());
        pending_->clear();
      }
    }
    // Messages left in the partition queues (and the heads the poll loop
    // took out of them) were not applied: they are fetched again from the
    // stored offsets.
    ReleaseQueues();
    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, nullptr);
      return;
    }
    for (int i = 0; i < parts->cnt; ++i) {
      auto& p = parts->elems[i];
      auto next = store_->NextOffset(p.topic, p.partition);
      if (!next.ok()) {
        error_ = next.status();
        p.offset = RD_KAFKA_OFFSET_INVALID;
        continue;
      }
      p.offset = CheckedOffset(rk, p.topic, p.partition, *next);
      if (!error_.ok()) {
        p.offset = RD_KAFKA_OFFSET_INVALID;
        continue;
      }
      spdlog::info("store: assigned {}[{}] from offset {}{}", p.topic, p.partition,
                   p.offset == RD_KAFKA_OFFSET_BEGINNING ? "beginning" : std::to_string(p.offset),
                   next->has_value() ? "" : " (nothing stored yet)");
      if (rd_kafka_queue_t* q = rd_kafka_queue_get_partition(rk, p.topic, p.partition)) {
        rd_kafka_queue_forward(q, nullptr);  // before assign: its messages never reach the consumer queue
        wakeup_->Watch(q);
        (p.topic == txn_topic_ ? end_queues_ : change_queues_).push_back(q);
      }
    }
    rd_kafka_assign(rk, parts);
  }

  Store* store_;
  IngestMetrics* metrics_;
  Applier* applier_;
  std::vector<IngestItem>* pending_;
  Status error_;
  std::string txn_topic_;
  const Wakeup* wakeup_;
  std::vector<rd_kafka_queue_t*> end_queues_;
  std::vector<rd_kafka_queue_t*> change_queues_;
  uint64_t generation_ = 0;
};

Result<kafka::Handle> NewConsumer(const config::Config& config, Rebalancer* rebalancer) {
  kafka::Conf conf;
  TV_RETURN_IF_ERROR(conf.Set("bootstrap.servers", config.kafka.bootstrap));
  TV_RETURN_IF_ERROR(conf.Set("group.id", config.kafka.consumer_group));
  TV_RETURN_IF_ERROR(conf.Set("enable.auto.commit", "false"));
  TV_RETURN_IF_ERROR(conf.Set("enable.auto.offset.store", "false"));
  // A fetch out of range (the topic deleted and recreated under a running
  // store, its retention past the store's position) is an error event, not
  // a reset: with "earliest" librdkafka started the partition over without
  // a word, and the recreated topic's first messages were taken for
  // re-deliveries (KafkaGapsFault.TopicDeletedAndRecreatedWhileTheStoreRuns).
  // The store then joins again, and the assignment's offset check
  // (Rebalancer::CheckedOffset) records the gap.
  TV_RETURN_IF_ERROR(conf.Set("auto.offset.reset", "error"));
  TV_RETURN_IF_ERROR(conf.Set("topic.metadata.refresh.interval.ms", "5000"));
  TV_RETURN_IF_ERROR(conf.Set("fetch.max.bytes", "67108864"));
  // At most 1 MB per partition per fetch (librdkafka's default; it was 16 MB):
  // fetched data arrives partition by partition, and a transaction's events
  // whose END comes in a later batch take the `pending` path, which costs
  // about twice as much. With 16 MB a catching-up store got the whole
  // transaction topic after all change topics in 1 run of 5 (every event
  // pending: 53k instead of 85k messages per CPU second); with 1 MB the
  // ENDs, far denser per byte, stay ahead (BENCHMARKS.md, round 5).
  TV_RETURN_IF_ERROR(conf.Set("max.partition.fetch.bytes", "1048576"));
  // The prefetch queue must hold more than a second of consumption:
  // librdkafka 2.0 stops fetching a partition for 0.5-1 s once the queue
  // is over either limit, and with the defaults (64 MB, 100,000
  // messages: 0.4-0.5 s of ingest here) the store then ran dry for 0.5-1 s at
  // a time (BENCHMARKS.md, round 7). At most 256 MB (the messages
  // themselves; kafka.properties may set less).
  TV_RETURN_IF_ERROR(conf.Set("queued.max.messages.kbytes", "262144"));
  TV_RETURN_IF_ERROR(conf.Set("queued.min.messages", "1000000"));
  TV_RETURN_IF_ERROR(conf.SetAll(config.kafka.properties));
  rd_kafka_conf_set_rebalance_cb(conf.raw(), &Rebalancer::Callback);
  rd_kafka_conf_set_opaque(conf.raw(), rebalancer);
  TV_ASSIGN_OR_RETURN(auto handle, kafka::NewHandle(RD_KAFKA_CONSUMER, conf));
  rd_kafka_poll_set_consumer(handle.get());
  return handle;
}

// `check`: signed change events (null: signing off); a message that fails
// it is dead-lettered unparsed.
IngestItem ToItem(const ParseOptions& options, SignatureCheck* check, const rd_kafka_message_t* m) {
  IngestItem item;
  item.position.topic = rd_kafka_topic_name(m->rkt);
  item.position.partition = m->partition;
  item.position.offset = m->offset;
  std::optional<std::string_view> key, value;
  if (m->key) key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) value = std::string_view(static_cast<const char*>(m->payload), m->len);
  // Capture's headers: the create of a primary-key change names the old key;
  // kNullsHeader names fields whose NULL Debezium's format wrote as a default;
  // kTextHeader carries Postgres's text of the columns Debezium's is lossy for.
  rd_kafka_headers_t* headers = nullptr;
  const bool has_headers = rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR;
  auto header = [&](const char* name) -> std::optional<std::string_view> {
    const void* v = nullptr;
    size_t len = 0;
    if (!has_headers || rd_kafka_header_get_last(headers, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return std::nullopt;
    return v ? std::string_view(static_cast<const char*>(v), len) : std::string_view();
  };
  Status signature = check != nullptr ? check->Check(m) : Status::Ok();
  auto parsed = signature.ok()
                    ? ParseEvent(options, item.position.topic, key, value, header(std::string(kNullsHeader).c_str()),
                                 header(std::string(kTextHeader).c_str()))
                    : Result<StoreEvent>(std::move(signature));
  if (parsed.ok()) {
    item.event = std::move(parsed).value();
    if (auto old_key = header("__debezium.oldkey"); old_key && !old_key->empty()) item.event->old_pk.assign(*old_key);
  } else {
    item.dead_letter_reason = parsed.status().message();
    if (value) item.raw.assign(*value);
    spdlog::warn("store: dead letter {}[{}]@{}: {}", item.position.topic, item.position.partition, item.position.offset,
                 item.dead_letter_reason);
  }
  return item;
}

void UpdateLag(rd_kafka_t* rk, IngestMetrics* metrics) {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(rk, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned) return;
  kafka::PartitionList owned(assigned);
  rd_kafka_position(rk, assigned);
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(rk, p.topic, p.partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    int64_t pos = p.offset >= 0 ? p.offset : lo;
    metrics->SetLag(std::string(p.topic) + "/" + std::to_string(p.partition), hi > pos ? hi - pos : 0);
  }
}

// One consumer's run (RunIngest); *rejoin set when it ended on a fetch out of
// range, to be checked by a new consumer's assignment.
Status IngestWithOneConsumer(const config::Config& config, Store* store, IngestMetrics* metrics,
                             const std::atomic<bool>* stop, bool* rejoin) {
  const Wakeup wakeup;  // outlives every queue it watches
  TV_RETURN_IF_ERROR(wakeup.Check());
  std::vector<IngestItem> batch;
  batch.reserve(kMaxBatch);
  Applier applier(Applier::Target::Of(store), metrics);
  Rebalancer rebalancer(store, metrics, &applier, &batch, config.kafka.topic_prefix + ".transaction", &wakeup);
  TV_ASSIGN_OR_RETURN(auto consumer, NewConsumer(config, &rebalancer));
  struct ReleaseFirst {  // the queues go before the consumer handle
    Rebalancer* r;
    rd_kafka_queue_t* consumer_queue;
    ~ReleaseFirst() {
      r->ReleaseQueues();
      if (consumer_queue != nullptr) rd_kafka_queue_destroy(consumer_queue);
    }
  } release_first{&rebalancer, rd_kafka_queue_get_consumer(consumer.get())};
  if (release_first.consumer_queue == nullptr) {
    return InvalidArgument("kafka.consumer_group: the consumer has no group (empty group.id?)");
  }
  wakeup.Watch(release_first.consumer_queue);  // rebalances and errors
  const std::string prefix = RegexEscape(config.kafka.topic_prefix);
  kafka::PartitionList topics(rd_kafka_topic_partition_list_new(2));
  rd_kafka_topic_partition_list_add(topics.get(), ("^" + prefix + "\\..+").c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics.get(), ("^__debezium-heartbeat\\." + prefix + "$").c_str(),
                                    RD_KAFKA_PARTITION_UA);
  TV_RETURN_IF_ERROR(kafka::FromError(rd_kafka_subscribe(consumer.get(), topics.get()), "subscribing"));
  spdlog::info("store: consuming {}.* into {}", config.kafka.topic_prefix, config.store.path);

  ParseOptions options{config.kafka.topic_prefix, config.tenant_column};
  TV_ASSIGN_OR_RETURN(std::optional<SignatureCheck> signature_check, SignatureCheck::FromConfig(config.signing));
  if (signature_check) {
    spdlog::info("store: signed change events: checking every message{}",
                 config.signing.require ? "" : " (unsigned ones accepted: signing.require = false)");
  }
  // LSNs polled: of the change partitions (a change's or a logical
  // message's; not a heartbeat's, which is read as soon as it arrives, far
  // ahead of a catching-up store's changes), of an END's commit.
  uint64_t newest_change = 0, newest_end = 0;
  std::chrono::steady_clock::duration idle{};  // waited for a change since the last one taken
  auto last_lag = std::chrono::steady_clock::now();
  Status result;
  Status fatal;  // a fatal consumer error
  // nullopt for an error event (logged; `fatal` set if it is one).
  const auto parse = [&](const kafka::Message& m) -> std::optional<IngestItem> {
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return std::nullopt;
      // Topics appear as capture creates them; a regex subscription sees them later.
      if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::nullopt;
      spdlog::warn("store: kafka: {}", rd_kafka_message_errstr(m.get()));
      if (m->err == RD_KAFKA_RESP_ERR__FATAL && fatal.ok()) fatal = kafka::FromError(m->err, "consuming");
      if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && fatal.ok()) {
        *rejoin = true;
        fatal = Unavailable(
            fmt::format("the offsets of {}[{}] are out of range (the topic deleted and recreated, or "
                        "its retention past the store): {}",
                        m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition, rd_kafka_message_errstr(m.get())));
      }
      return std::nullopt;
    }
    return ToItem(options, signature_check ? &*signature_check : nullptr, m.get());
  };
  auto add = [&](IngestItem&& item) {
    if (!item.dead_letter_reason.empty()) metrics->dead_letters.fetch_add(1);
    if (item.event && (item.event->kind == EventKind::kChange || item.event->kind == EventKind::kMessage)) {
      newest_change = std::max(newest_change, item.event->change_lsn.value());
    } else if (item.event && item.event->kind == EventKind::kTransactionEnd) {
      newest_end = std::max(newest_end, item.event->tx_lsn.value());
    }
    batch.push_back(std::move(item));
  };
  ChangeMerge merge;
  const ChangeMerge::Pop pop = [&](size_t i) -> std::optional<IngestItem> {
    while (true) {
      kafka::Message m(rd_kafka_consume_queue(rebalancer.change_queues()[i], 0));
      if (!m) return std::nullopt;
      if (auto item = parse(m)) return item;
      if (!fatal.ok()) return std::nullopt;  // else an error event that is not fatal: the next message
    }
  };
  while (!stop->load()) {
    auto window_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBatchWindowMs);
    while (batch.size() < kMaxBatch && std::chrono::steady_clock::now() < window_end && !stop->load() && fatal.ok()) {
      // Transaction markers until the ENDs are a little ahead of the newest
      // change polled (kEndsAheadBytes of WAL): the ENDs of most changes
      // are then in the same batch, and not far ahead either (a transaction
      // whose END is applied long before its events waits in flight,
      // which costs records of its own).
      bool took = false;
      const bool ends_unbounded = idle >= std::chrono::milliseconds(kEndsIdleMs);
      for (rd_kafka_queue_t* q : rebalancer.end_queues()) {
        while ((ends_unbounded || newest_end <= newest_change + kEndsAheadBytes) && batch.size() < kMaxBatch &&
               fatal.ok()) {
          kafka::Message m(rd_kafka_consume_queue(q, 0));
          if (!m) break;
          took = true;
          if (auto item = parse(m)) add(std::move(*item));
        }
      }
      // A round of changes in LSN order, then the markers again.
      merge.StartRound(rebalancer.generation(), rebalancer.change_queues().size(), pop);
      for (size_t n = 0; n < kMergeRound && batch.size() < kMaxBatch && fatal.ok(); ++n) {
        IngestItem* item = merge.Front();
        if (item == nullptr) break;
        idle = {};
        took = true;
        add(std::move(*item));
        merge.Taken(pop);
      }
      // Serves rebalances and consumer errors (every partition's messages
      // go to its own queue).
      kafka::Message m(rd_kafka_consumer_poll(consumer.get(), 0));
      if (m) {
        if (auto item = parse(m)) add(std::move(*item));
      } else if (!took) {
        // Nothing was ready: a batch with messages goes to the store now
        // rather than at the window's end (commit -> recoverable latency,
        // bench/latency.sh); a busy stream, which always has messages
        // ready, still fills whole batches, and batches in flight
        // (Applier) make the next one grow meanwhile.
        if (!batch.empty()) break;
        // An empty batch: sleep until a queue gets a message, at most
        // until the batch window ends.
        const auto now = std::chrono::steady_clock::now();
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(window_end - now).count();
        if (wakeup.Wait(static_cast<int>(std::clamp<int64_t>(left, 0, kIdleWaitMs)))) metrics->idle_woken.fetch_add(1);
        idle += std::chrono::steady_clock::now() - now;
        metrics->idle_sleeps.fetch_add(1);
      }
    }
    if (!fatal.ok()) {
      result = fatal;
      batch.clear();  // consumed, not applied: read again from the stored offsets
      break;
    }
    if (!rebalancer.error().ok()) {
      result = rebalancer.error().WithContext("reading stored offsets");
      batch.clear();
      break;
    }
    const bool idle_window = batch.empty();
    result = idle_window ? applier.StartHeldBack() : applier.Start(&batch);
    // Nothing new: wait for the batches in flight, so a failed write (a full
    // volume) stops ingest now rather than when the next message comes.
    if (result.ok() && idle_window) result = applier.Wait();
    if (!result.ok()) {
      batch.clear();  // never apply messages after a failed batch (its offsets were not stored)
      break;
    }
    if (std::chrono::steady_clock::now() - last_lag > std::chrono::seconds(5)) {
      UpdateLag(consumer.get(), metrics);
      last_lag = std::chrono::steady_clock::now();
    }
  }
  if (Status st = applier.Wait(); result.ok()) result = st;
  rd_kafka_consumer_close(consumer.get());
  return result;
}

}  // namespace

Status RunIngest(const config::Config& config, Store* store, IngestMetrics* metrics, const std::atomic<bool>* stop) {
  while (true) {
    bool rejoin = false;
    Status st = IngestWithOneConsumer(config, store, metrics, stop, &rejoin);
    if (!rejoin || stop->load()) return st;
    // Nothing past the last applied batch was stored: the new consumer
    // resumes at the stored offsets, checked against the partitions.
    spdlog::warn("store: {}; joining again to check every partition's offsets", st.message());
  }
}

}  // namespace timevault::store
