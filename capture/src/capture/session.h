// Session: one connected run of capture — publication and slot setup, the
// initial snapshot when needed, then streaming until stopped or until a
// connection breaks. capture::Run restarts sessions with backoff; each new
// session resumes from the slot's confirmed position, so a broken session
// may duplicate events in Kafka but never lose one.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "capture/ack_tracker.h"
#include "capture/kafka_sink.h"
#include "capture/partitions.h"
#include "capture/replication.h"
#include "capture/schema_cache.h"
#include "capture/stream_reader.h"
#include "timevault/capture/capture.h"
#include "timevault/capture/debezium.h"
#include "timevault/config/config.h"
#include "timevault/core/pg.h"

namespace timevault::capture {

class Session {
 public:
  Session(const config::Config& config, CaptureMetrics* metrics, const std::atomic<bool>* stop);
  ~Session();

  // OK when stopped on request (or after initial_only's snapshot); an error
  // otherwise (Unavailable: worth retrying).
  Status Run();
  // True once the session reached streaming (used to reset the backoff).
  bool reached_streaming() const { return reached_streaming_; }

 private:
  struct Transaction {
    uint32_t xid = 0;
    CommitTime commit_time;
    Lsn final_lsn;
    AckTracker::Ticket ticket = 0;
    std::string origin;  // replication origin name, if the Origin message came
    std::optional<Lsn> origin_lsn;
    int64_t total_order = 0;
    // "schema.table" -> events, in order of first appearance (END lists them
    // in that order before the encoder applies Debezium's HashMap order).
    std::vector<CollectionCount> per_collection;
    int64_t& CountFor(std::string_view collection);
  };

  Status Connect();
  Status EnsurePublication();
  // Topic names: collisions after sanitising refuse the tables involved.
  using TableKey = std::pair<std::string, std::string>;  // schema, table
  Status FindTopicCollisions();
  void Refuse(const TableKey& table, const std::string& why);
  bool Refused(const TableSchema& table);  // registers the table's topic if free
  std::string DisplayName(const TableKey& table) const;
  Status PrepareSlot(bool* snapshot_needed, CreatedSlot* created);
  Result<bool> SnapshotCompleted();
  Status MarkSnapshotCompleted(Lsn consistent_point, const PartitionLeaves& leaves);
  Result<std::string> PublicationComment();
  Status StoreLeaves(const PartitionLeaves& leaves);
  Status LoadKnownLeaves();
  Status PollPartitions();
  Status EmitLeafChanges(const PartitionLeaves& now);
  Status Snapshot(const CreatedSlot& created);
  // Where a table stands in the snapshot (for Debezium's snapshot markers).
  struct SnapshotPosition {
    bool first_table = false;     // the first table of the snapshot
    bool last_with_rows = false;  // no later table has a row
    bool partitioned = false;     // read with its partitions
  };
  Status SnapshotTable(const TableSchema& table, Lsn lsn, int64_t xid, SnapshotPosition position);
  Status Stream();
  Status StreamLoop();
  // One message of the stream, in order (the session thread's part).
  Status OnStreamItem(const StreamItem& item);
  Status Dispatch(const pgoutput::XLogData& data);
  Status OnBegin(const pgoutput::Begin& begin, Lsn lsn);
  Status OnCommit(const pgoutput::Commit& commit, Lsn lsn);
  // `key_header`: the __debezium.oldkey/newkey header of a primary-key change.
  Status OnChange(uint32_t relation_oid, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after, Lsn lsn,
                  const KafkaSink::Header* key_header = nullptr);
  Status OnTableChange(const TableSchema& table, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                       Lsn lsn, const KafkaSink::Header* key_header = nullptr);
  Status OnPartitionMessage(const pgoutput::LogicalMessage& message, Lsn lsn);
  Status OnUpdate(const pgoutput::Update& update, Lsn lsn);
  Status OnTruncate(const pgoutput::Truncate& truncate, Lsn lsn);
  Status OnMessage(const pgoutput::LogicalMessage& message, Lsn lsn);
  Status ProduceRow(const TableSchema& table, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                    const SourceInfo& source, const TransactionBlock* block, AckTracker::Ticket ticket,
                    const KafkaSink::Header* key_header = nullptr);
  Status EnsureTableTopic(const TableSchema& table);
  // Slot loss (session_slot.cc): compares the slot with what the previous
  // run's last heartbeat says it streamed from; sets slot_loss_ when the
  // slot is lost or replaced (dropping a lost slot), or stops when
  // postgres.on_slot_loss = "stop".
  Status CheckSlotLoss(SlotState* state);
  // Reads the server's clock right after the slot was created: every
  // commit below its consistent point happened before it.
  Status NoteSnapshotTime();
  // After a full snapshot: the heartbeat carrying the `timevault_snapshot`
  // marker (the tables read, the cause, whether history was lost).
  Status AnnounceSnapshot(const CreatedSlot& created);
  const HeartbeatSource* Source();
  Status SendStatus(bool reply_requested);
  Status MaybeHeartbeat(bool force);
  // The idle probe (session_idle.cc): every heartbeat interval, a
  // non-transactional kIdleProbePrefix message carrying a server time that
  // bounds every commit before it; delivered, it is a marker and a heartbeat.
  Status MaybeProbeIdle();
  Result<std::optional<int64_t>> IdleBound();
  Status OnIdleProbe(const pgoutput::LogicalMessage& message, Lsn lsn);
  Status Shutdown();
  SourceInfo StreamSource(const TableSchema* table, Lsn lsn) const;

  const config::Config& config_;
  CaptureMetrics* metrics_;
  const std::atomic<bool>* stop_;
  bool reached_streaming_ = false;

  pg::PgConn catalog_;
  std::unique_ptr<PgReplication> replication_;
  std::unique_ptr<StreamReader> reader_;  // owns replication_ while streaming
  AckTracker tracker_;
  std::unique_ptr<KafkaSink> sink_;
  std::unique_ptr<SchemaCache> schemas_;
  EventEncoder encoder_;
  EventEncoder header_encoder_;  // schemaless keys for __debezium.oldkey/newkey headers
  std::string db_name_;
  std::string transaction_topic_;
  std::string heartbeat_topic_;
  std::string message_topic_;

  std::map<std::string, TableKey> topic_owner_;  // topic -> the table whose events it holds
  std::set<TableKey> refused_;
  PartitionLeaves known_leaves_;  // as recorded in the publication comment
  int64_t last_partition_poll_ms_ = 0;
  std::map<uint32_t, TableSchema> partition_roots_;  // roots loaded for partition messages

  std::optional<Transaction> tx_;
  std::optional<Lsn> last_commit_lsn_;
  CommitTime last_commit_time_;
  Lsn server_wal_end_;
  int64_t last_status_ms_ = 0;
  int64_t last_heartbeat_ms_ = 0;
  Lsn last_heartbeat_lsn_;
  bool probe_enabled_ = true;
  int64_t last_probe_ms_ = 0;
  int64_t last_probe_time_us_ = 0;  // the newest time a probe claimed
  std::string key_buf_, value_buf_, old_key_, new_key_;
  std::string nulls_buf_;                 // the kNullsHeader value of the event being produced
  std::string text_buf_;                  // the kTextHeader value of the event being produced
  std::optional<std::string> slot_loss_;  // why the slot is new although history came before (a gap)
  std::optional<HeartbeatSource> source_;
  CommitTime snapshot_time_;
};

}  // namespace timevault::capture
