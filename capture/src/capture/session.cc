#include "capture/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <span>
#include <string>

#include "capture/partitions.h"
#include "timevault/capture/refusals.h"

namespace timevault::capture {
namespace {

// UTF-8 text as UTF-16 code units (what Java's String holds).
std::u16string Utf16(std::string_view s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += n;
  }
  return out;
}

// Java's String.compareTo: by UTF-16 code unit.
bool JavaStringLess(std::string_view a, std::string_view b) { return Utf16(a) < Utf16(b); }

constexpr int kReadTimeoutMs = 100;
// Stream messages handled between two serves of delivery reports.
constexpr size_t kPollEvery = 64;
constexpr int kFlushTimeoutMs = 60000;
constexpr std::string_view kSnapshotMarker = "timevault:snapshot-completed slot=";
// Where the publication comment keeps the partitioned roots' leaves.
constexpr std::string_view kLeavesMarker = " partitions=";
constexpr int64_t kPartitionPollMs = 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Collection(const TableSchema& t) { return t.schema + "." + t.table; }

// The tenant value of a row, if the table has the tenant column and it is set.
std::optional<std::string_view> TenantOf(const TableSchema& t, const pgoutput::Tuple* row) {
  if (t.tenant_column < 0 || !row || static_cast<size_t>(t.tenant_column) >= row->size()) return std::nullopt;
  const auto& c = (*row)[static_cast<size_t>(t.tenant_column)];
  if (c.kind != pgoutput::ColumnKind::kText && c.kind != pgoutput::ColumnKind::kBinary) return std::nullopt;
  return c.value;
}

// Do the primary-key columns of two rows differ? (Rows of one table.)
bool KeyChanged(const TableSchema& t, const pgoutput::Tuple& a, const pgoutput::Tuple& b) {
  for (size_t i = 0; i < t.columns.size() && i < a.size() && i < b.size(); ++i) {
    if (!t.columns[i].primary_key) continue;
    if (a[i].kind != b[i].kind || a[i].value != b[i].value) return true;
  }
  return false;
}

}  // namespace

Session::Session(const config::Config& config, CaptureMetrics* metrics, const std::atomic<bool>* stop)
    : config_(config),
      metrics_(metrics),
      stop_(stop),
      encoder_(EventEncoder::Options{config.kafka.schemas_enable}),
      header_encoder_(EventEncoder::Options{false}),
      transaction_topic_(config.kafka.topic_prefix + ".transaction"),
      heartbeat_topic_("__debezium-heartbeat." + config.kafka.topic_prefix),
      message_topic_(config.kafka.topic_prefix + ".message") {}

Session::~Session() { metrics_->streaming = false; }

Status Session::Run() {
  TV_RETURN_IF_ERROR(Connect());
  TV_RETURN_IF_ERROR(EnsurePublication());
  TV_RETURN_IF_ERROR(FindTopicCollisions());
  bool snapshot_needed = false;
  CreatedSlot created;
  TV_RETURN_IF_ERROR(PrepareSlot(&snapshot_needed, &created));
  if (snapshot_needed) {
    TV_RETURN_IF_ERROR(Snapshot(created));
    TV_RETURN_IF_ERROR(AnnounceSnapshot(created));
    if (config_.postgres.snapshot_mode == config::SnapshotMode::kInitialOnly) {
      spdlog::info("capture: snapshot_mode=initial_only: snapshot complete, not streaming");
      return Shutdown();
    }
  } else if (config_.postgres.snapshot_mode == config::SnapshotMode::kInitialOnly) {
    spdlog::info("capture: snapshot_mode=initial_only and the snapshot is already complete: nothing to do");
    return Status::Ok();
  }
  TV_RETURN_IF_ERROR(LoadKnownLeaves());
  return Stream();
}

Status Session::Connect() {
  TV_ASSIGN_OR_RETURN(catalog_, pg::PgConn::Connect(config_.postgres.conninfo));
  TV_RETURN_IF_ERROR(catalog_.Run("SET application_name = 'timevault-capture'"));
  TV_ASSIGN_OR_RETURN(replication_, PgReplication::Connect(config_.postgres.conninfo));
  TV_ASSIGN_OR_RETURN(auto db, catalog_.Exec("SELECT current_database()"));
  db_name_ = db.GetString(0, 0);
  TV_ASSIGN_OR_RETURN(sink_, KafkaSink::Create(config_.kafka, config_.signing, &tracker_, metrics_));
  schemas_ = std::make_unique<SchemaCache>(&catalog_, config_.tenant_column, config_.kafka.topic_prefix);
  TV_RETURN_IF_ERROR(sink_->EnsureTopic(transaction_topic_, 1));  // one partition: BEGIN/END in order
  TV_RETURN_IF_ERROR(sink_->EnsureTopic(heartbeat_topic_, 1));
  // A store still reading an earlier run's messages must not meet this
  // run's heartbeats before it has them: snapshot rows in a table topic
  // this run never writes to have no transaction END to wait for.
  TV_RETURN_IF_ERROR(sink_->SeedExistingTopics(config_.kafka.topic_prefix));
  return Status::Ok();
}

Status Session::EnsurePublication() {
  const auto& pub = config_.postgres.publication;
  TV_ASSIGN_OR_RETURN(auto res, catalog_.ExecParams("SELECT 1 FROM pg_publication WHERE pubname = $1", {pub}));
  if (res.rows() == 0) {
    std::string what = "FOR ALL TABLES";
    if (!config_.postgres.tables.empty()) {
      what = "FOR TABLE ";
      for (size_t i = 0; i < config_.postgres.tables.size(); ++i) {
        const auto& t = config_.postgres.tables[i];
        auto dot = t.find('.');
        what += (i ? ", " : "") + pg::QualifiedName(catalog_, t.substr(0, dot), t.substr(dot + 1));
      }
    }
    // Partitioned tables publish under the root's name (one topic per logical table).
    TV_RETURN_IF_ERROR(catalog_.Run("CREATE PUBLICATION " + catalog_.QuoteIdent(pub) + " " + what +
                                    " WITH (publish_via_partition_root = true)"));
    spdlog::info("capture: created publication {} {}", pub, what);
  }
  // Tables that cannot replicate UPDATE/DELETE break the application once published.
  TV_ASSIGN_OR_RETURN(auto bad, catalog_.ExecParams(R"SQL(
      SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt
      JOIN pg_namespace n ON n.nspname = pt.schemaname
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND c.relreplident IN ('d', 'n')
        AND (c.relreplident = 'n' OR NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))SQL",
                                                    {pub}));
  for (int r = 0; r < bad.rows(); ++r) {
    spdlog::warn(
        "capture: table {} has no primary key or replica identity: Postgres rejects UPDATE and DELETE on it while it "
        "is published. Exclude it (postgres.tables) or ALTER TABLE ... REPLICA IDENTITY FULL",
        bad.GetString(r, 0));
  }
  return Status::Ok();
}

std::string Session::DisplayName(const TableKey& table) const {
  return catalog_.QuoteIdent(table.first) + "." + catalog_.QuoteIdent(table.second);
}

// Tables whose topic names collide after Debezium's sanitising ("a.b" and
// "a_b", "Order Lines" and "Order_Lines") would mix their events in one
// topic: all of them are refused (which one came first would depend on event
// order). The others stream.
Status Session::FindTopicCollisions() {
  TV_ASSIGN_OR_RETURN(auto refused,
                      FindRefusedTables(catalog_, config_.postgres.publication, config_.kafka.topic_prefix));
  for (const auto& t : refused) Refuse({t.schema, t.table}, t.reason);
  TV_ASSIGN_OR_RETURN(auto res, catalog_.ExecParams("SELECT schemaname, tablename FROM pg_publication_tables "
                                                    "WHERE pubname = $1 ORDER BY 1, 2",
                                                    {config_.postgres.publication}));
  for (int r = 0; r < res.rows(); ++r) {
    TableKey key{res.GetString(r, 0), res.GetString(r, 1)};
    if (refused_.contains(key) || IsDebeziumSystemTable(key.first, key.second)) continue;
    topic_owner_.emplace(SanitizeTopicName(config_.kafka.topic_prefix + "." + key.first + "." + key.second), key);
  }
  return Status::Ok();
}

void Session::Refuse(const TableKey& table, const std::string& why) {
  if (!refused_.insert(table).second) return;
  metrics_->refused_tables.fetch_add(1, std::memory_order_relaxed);
  spdlog::error(
      "capture: REFUSING table {}: {}; its changes are NOT captured (rename one of the tables, or leave it "
      "out with postgres.tables); the other tables stream",
      DisplayName(table), why);
}

bool Session::Refused(const TableSchema& table) {
  if (IsDebeziumSystemTable(table.schema, table.table)) return true;  // left out as Debezium does; not an error
  TableKey key{table.schema, table.table};
  if (refused_.contains(key)) return true;
  auto [owner, inserted] = topic_owner_.emplace(table.topic, key);
  if (inserted || owner->second == key) return false;
  Refuse(key, "its topic " + table.topic + " is already table " + DisplayName(owner->second) + "'s");
  return true;
}

Result<bool> Session::SnapshotCompleted() {
  TV_ASSIGN_OR_RETURN(
      auto res,
      catalog_.ExecParams("SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
                          {config_.postgres.publication}));
  if (res.rows() == 0 || res.IsNull(0, 0)) return false;
  std::string marker = std::string(kSnapshotMarker) + config_.postgres.slot + " ";
  return res.GetString(0, 0).rfind(marker, 0) == 0;
}

// The completion of the initial snapshot is recorded next to the slot, in the
// comment of the publication, so a capture killed mid-snapshot redoes it.
Status Session::MarkSnapshotCompleted(Lsn consistent_point, const PartitionLeaves& leaves) {
  std::string comment = std::string(kSnapshotMarker) + config_.postgres.slot + " lsn=" + consistent_point.ToString();
  comment += std::string(kLeavesMarker) + SerializeLeaves(leaves);
  return catalog_.Run("COMMENT ON PUBLICATION " + catalog_.QuoteIdent(config_.postgres.publication) + " IS " +
                      catalog_.QuoteLiteral(comment));
}

// The publication comment, "" if none.
Result<std::string> Session::PublicationComment() {
  TV_ASSIGN_OR_RETURN(
      auto res,
      catalog_.ExecParams("SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
                          {config_.postgres.publication}));
  if (res.rows() == 0 || res.IsNull(0, 0)) return std::string();
  return res.GetString(0, 0);
}

// Records `leaves` in the publication comment, keeping its snapshot marker
// (in the caller's transaction, if one is open).
Status Session::StoreLeaves(const PartitionLeaves& leaves) {
  TV_ASSIGN_OR_RETURN(std::string comment, PublicationComment());
  if (size_t at = comment.find(kLeavesMarker); at != std::string::npos) comment.resize(at);
  if (comment.empty()) comment = "timevault:";
  comment += std::string(kLeavesMarker) + SerializeLeaves(leaves);
  return catalog_.Run("COMMENT ON PUBLICATION " + catalog_.QuoteIdent(config_.postgres.publication) + " IS " +
                      catalog_.QuoteLiteral(comment));
}

// The leaves recorded by the snapshot or the last partition change; when
// none are recorded (snapshot_mode no_data, or an older comment), today's.
// Differences to the catalog are emitted by the first PollPartitions, so an
// ATTACH or DETACH while capture was down is not missed.
Status Session::LoadKnownLeaves() {
  TV_ASSIGN_OR_RETURN(std::string comment, PublicationComment());
  if (size_t at = comment.find(kLeavesMarker); at != std::string::npos) {
    if (auto parsed = ParseLeaves(std::string_view(comment).substr(at + kLeavesMarker.size()))) {
      known_leaves_ = std::move(*parsed);
      return Status::Ok();
    }
    spdlog::warn("capture: the publication comment's partition list is malformed; taking today's partitions");
  }
  TV_ASSIGN_OR_RETURN(known_leaves_, ReadPartitionLeaves(catalog_, config_.postgres.publication));
  return StoreLeaves(known_leaves_);
}

// ATTACH / DETACH / DROP PARTITION move rows in or out of a root without row
// events. When the leaves of a root changed, one transaction locks each
// attached or detached leaf, emits its rows as kPartitionMessagePrefix
// messages and records the new leaves; the stream then turns the messages
// into events (OnPartitionMessage). docs/capture.md, "Partitioned tables".
Status Session::PollPartitions() {
  if (NowMs() - last_partition_poll_ms_ < kPartitionPollMs) return Status::Ok();
  last_partition_poll_ms_ = NowMs();
  TV_ASSIGN_OR_RETURN(PartitionLeaves now, ReadPartitionLeaves(catalog_, config_.postgres.publication));
  if (now == known_leaves_) return Status::Ok();
  TV_RETURN_IF_ERROR(catalog_.Run("BEGIN; SET LOCAL lock_timeout = '5s'"));
  Status s = EmitLeafChanges(now);
  if (!s.ok()) {
    (void)catalog_.Run("ROLLBACK");
    spdlog::warn("capture: partition change not emitted yet, retrying: {}", s.ToString());
    return Status::Ok();
  }
  TV_RETURN_IF_ERROR(StoreLeaves(now));
  TV_RETURN_IF_ERROR(catalog_.Run("COMMIT"));
  known_leaves_ = std::move(now);
  return Status::Ok();
}

Status Session::EmitLeafChanges(const PartitionLeaves& now) {
  static const std::set<uint32_t> kNone;
  for (const auto& [root_oid, leaves] : now) {
    auto known_it = known_leaves_.find(root_oid);
    const std::set<uint32_t>& known = known_it == known_leaves_.end() ? kNone : known_it->second;
    if (leaves == known) continue;
    TV_ASSIGN_OR_RETURN(TableSchema root, schemas_->Load(root_oid));
    for (uint32_t leaf : leaves) {
      if (known.contains(leaf)) continue;
      TV_ASSIGN_OR_RETURN(int64_t n, EmitPartitionRows(catalog_, root, leaf, 'c'));
      spdlog::info("capture: partition {} attached to {}.{}: its {} rows are emitted as creates", leaf, root.schema,
                   root.table, n);
    }
    for (uint32_t leaf : known) {
      if (leaves.contains(leaf)) continue;
      Result<int64_t> n = EmitPartitionRows(catalog_, root, leaf, 'd');
      if (n.status().code() == StatusCode::kNotFound) {
        spdlog::error(
            "capture: partition {} of {}.{} was dropped: its rows left the table without change events and cannot "
            "be read any more; the store keeps them until they are deleted (docs/capture.md)",
            leaf, root.schema, root.table);
        continue;
      }
      TV_RETURN_IF_ERROR(n.status());
      spdlog::info("capture: partition {} detached from {}.{}: its {} rows are emitted as deletes", leaf, root.schema,
                   root.table, *n);
    }
  }
  return Status::Ok();
}

Status Session::PrepareSlot(bool* snapshot_needed, CreatedSlot* created) {
  const auto& slot = config_.postgres.slot;
  const auto mode = config_.postgres.snapshot_mode;
  TV_ASSIGN_OR_RETURN(auto state, replication_->GetSlot(slot));
  TV_RETURN_IF_ERROR(CheckSlotLoss(&state));
  if (state.exists) {
    if (state.plugin != "pgoutput" || state.database != db_name_) {
      return FailedPrecondition("replication slot '" + slot + "' exists for plugin '" + state.plugin +
                                "' on database '" + state.database + "'; timevault needs pgoutput on '" + db_name_ +
                                "': choose another postgres.slot or drop it");
    }
    if (mode == config::SnapshotMode::kNoData) return Status::Ok();
    TV_ASSIGN_OR_RETURN(bool done, SnapshotCompleted());
    if (done) return Status::Ok();
    // The slot exists but its snapshot never finished (killed mid-snapshot):
    // start over with a new slot and a new snapshot.
    spdlog::warn("capture: slot {} exists but its initial snapshot did not complete; recreating it", slot);
    if (state.active) return Unavailable("replication slot '" + slot + "' is in use by another process");
    TV_RETURN_IF_ERROR(replication_->DropSlot(slot));
  }
  bool want_snapshot = mode != config::SnapshotMode::kNoData;
  TV_ASSIGN_OR_RETURN(*created, replication_->CreateSlot(slot, want_snapshot));
  spdlog::info("capture: created slot {} at {}", slot, created->consistent_point.ToString());
  TV_RETURN_IF_ERROR(NoteSnapshotTime());
  *snapshot_needed = want_snapshot;
  return Status::Ok();
}

Status Session::EnsureTableTopic(const TableSchema& table) {
  return sink_->EnsureTopic(table.topic, static_cast<int>(config_.kafka.topic_partitions));
}

Status Session::ProduceRow(const TableSchema& table, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                           const SourceInfo& source, const TransactionBlock* block, AckTracker::Ticket ticket,
                           const KafkaSink::Header* key_header) {
  const pgoutput::Tuple* key_row = after ? after : before;
  std::optional<std::string_view> key;
  if (key_row) {
    Status ks = encoder_.EncodeKey(table, *key_row, &key_buf_);
    if (ks.ok()) {
      key = key_buf_;
    } else if (ks.code() != StatusCode::kNotFound) {
      return ks;
    }
  }
  TV_RETURN_IF_ERROR(encoder_.EncodeChange(table, op, before, after, source, block, SystemClock().Now(), &value_buf_,
                                           &nulls_buf_, &text_buf_));
  auto tenant = TenantOf(table, key_row);
  int32_t partition = tenant ? sink_->PartitionForTenant(table.topic, *tenant) : RD_KAFKA_PARTITION_UA;
  KafkaSink::Header headers[3];
  size_t header_count = 0;
  if (key_header != nullptr) headers[header_count++] = *key_header;
  const std::span<const KafkaSink::Header> key_headers(headers, header_count);
  // NULLs that JsonConverter's rules wrote as defaults (kNullsHeader).
  if (!nulls_buf_.empty()) headers[header_count++] = KafkaSink::Header{kNullsHeader, nulls_buf_};
  // Postgres's text of the columns whose Debezium value is lossy (kTextHeader).
  if (!text_buf_.empty()) headers[header_count++] = KafkaSink::Header{kTextHeader, text_buf_};
  TV_RETURN_IF_ERROR(sink_->Produce(table.topic, partition, key, value_buf_, ticket, {headers, header_count}));
  if (op == Op::kDelete) {
    // Debezium's tombstone: same key, null value, so compaction can drop the row.
    TV_RETURN_IF_ERROR(sink_->Produce(table.topic, partition, key, std::nullopt, ticket, key_headers));
  }
  return Status::Ok();
}

Status Session::Snapshot(const CreatedSlot& created) {
  spdlog::info("capture: initial snapshot at {}", created.consistent_point.ToString());
  TV_RETURN_IF_ERROR(catalog_.Run("BEGIN ISOLATION LEVEL REPEATABLE READ"));
  TV_RETURN_IF_ERROR(catalog_.Run("SET TRANSACTION SNAPSHOT " + catalog_.QuoteLiteral(created.snapshot_name)));
  // Debezium reports the snapshot transaction's own xid as source.txId.
  TV_ASSIGN_OR_RETURN(auto xid_res, catalog_.Exec("SELECT txid_current()"));
  int64_t xid = std::stoll(xid_res.GetString(0, 0));
  // A partitioned table (relkind 'p', published as its root) is read with
  // its partitions: `FROM ONLY root` holds no rows.
  TV_ASSIGN_OR_RETURN(auto tables, catalog_.ExecParams(R"SQL(
      SELECT c.oid, c.relkind = 'p', pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt
      JOIN pg_namespace n ON n.nspname = pt.schemaname
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1)SQL",
                                                       {config_.postgres.publication}));
  // Debezium snapshots its tables in TableId order: Java's String.compareTo
  // of "schema.table" (UTF-16 code units), whatever the database collation.
  std::vector<int> order(static_cast<size_t>(tables.rows()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return JavaStringLess(tables.GetString(a, 2), tables.GetString(b, 2)); });
  std::vector<TableSchema> schemas;
  std::vector<bool> partitioned;
  int last_with_rows = -1;  // Debezium marks the snapshot's last record "last", whichever table it is in
  for (int row : order) {
    const int i = static_cast<int>(schemas.size());
    TV_ASSIGN_OR_RETURN(auto schema, schemas_->Load(static_cast<uint32_t>(std::stoul(tables.GetString(row, 0))),
                                                    /*with_generated=*/true));
    partitioned.push_back(tables.Get(row, 1) == "t");
    if (Refused(schema)) {
      schemas.push_back(std::move(schema));
      continue;
    }
    TV_ASSIGN_OR_RETURN(auto any,
                        catalog_.Exec("SELECT EXISTS (SELECT 1 FROM " + std::string(partitioned.back() ? "" : "ONLY ") +
                                      pg::QualifiedName(catalog_, schema.schema, schema.table) + ")"));
    if (any.Get(0, 0) == "t") last_with_rows = i;
    schemas.push_back(std::move(schema));
  }
  int first = -1;  // the first table snapshotted (tables Debezium leaves out or refused ones are not)
  for (int i = 0; i < tables.rows(); ++i) {
    if (stop_->load()) return Aborted("stopped during the initial snapshot; it restarts with the next run");
    if (Refused(schemas[static_cast<size_t>(i)])) continue;
    if (first < 0) first = i;
    const SnapshotPosition position{i == first, i == last_with_rows, partitioned[static_cast<size_t>(i)]};
    TV_RETURN_IF_ERROR(SnapshotTable(schemas[static_cast<size_t>(i)], created.consistent_point, xid, position));
  }
  TV_ASSIGN_OR_RETURN(PartitionLeaves leaves, ReadPartitionLeaves(catalog_, config_.postgres.publication));
  TV_RETURN_IF_ERROR(catalog_.Run("COMMIT"));
  TV_RETURN_IF_ERROR(sink_->Flush(kFlushTimeoutMs));
  if (tracker_.pending() != 0) return Unavailable("snapshot events not acknowledged by Kafka");
  TV_RETURN_IF_ERROR(MarkSnapshotCompleted(created.consistent_point, leaves));
  spdlog::info("capture: initial snapshot complete ({} events)", metrics_->acked_events.load());
  return Status::Ok();
}

Status Session::SnapshotTable(const TableSchema& table, Lsn lsn, int64_t xid, SnapshotPosition position) {
  TV_RETURN_IF_ERROR(EnsureTableTopic(table));
  std::string cols;
  for (const auto& c : table.columns) cols += (cols.empty() ? "" : ", ") + catalog_.QuoteIdent(c.name);
  TV_RETURN_IF_ERROR(catalog_.Run("DECLARE tv_snapshot NO SCROLL CURSOR FOR SELECT " + cols + " FROM " +
                                  (position.partitioned ? "" : "ONLY ") +
                                  pg::QualifiedName(catalog_, table.schema, table.table)));
  const std::string fetch = "FETCH " + std::to_string(config_.postgres.snapshot_chunk_rows) + " FROM tv_snapshot";
  std::string collection = Collection(table);
  AckTracker::Ticket ticket = tracker_.Open();
  TV_ASSIGN_OR_RETURN(auto chunk, catalog_.Exec(fetch));
  pgoutput::Tuple row(table.columns.size());
  bool first_in_table = true;
  while (chunk.rows() > 0) {
    // One chunk of lookahead tells whether a row is the table's last.
    TV_ASSIGN_OR_RETURN(auto next, catalog_.Exec(fetch));
    for (int r = 0; r < chunk.rows(); ++r) {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        bool null = chunk.IsNull(r, static_cast<int>(c));
        row[c].kind = null ? pgoutput::ColumnKind::kNull : pgoutput::ColumnKind::kText;
        row[c].value = null ? std::string_view() : chunk.Get(r, static_cast<int>(c));
      }
      bool last_in_table = next.rows() == 0 && r + 1 == chunk.rows();
      // RelationalSnapshotChangeEventSource.setSnapshotMarker, in its order;
      // "first" only in the first table of the snapshot (empty or not), and
      // the snapshot's last record is "last" even when later tables are
      // empty (the buffering receiver re-marks it when the snapshot ends).
      std::string_view marker = "true";
      if (last_in_table && position.last_with_rows) {
        marker = "last";
      } else if (first_in_table && position.first_table) {
        marker = "first";
      } else if (last_in_table) {
        marker = "last_in_data_collection";
      } else if (first_in_table) {
        marker = "first_in_data_collection";
      }
      first_in_table = false;
      SourceInfo source{config_.kafka.topic_prefix,
                        db_name_,
                        SystemClock().Now(),
                        marker,
                        std::nullopt,
                        lsn,
                        table.schema,
                        table.table,
                        xid};
      TV_RETURN_IF_ERROR(ProduceRow(table, Op::kRead, nullptr, &row, source, nullptr, ticket));
      sink_->Poll(0);
    }
    chunk = std::move(next);
  }
  tracker_.Close(ticket, Lsn(), CommitTime());
  spdlog::info("capture: snapshot of {} done", collection);
  return catalog_.Run("CLOSE tv_snapshot");
}

// Two threads (docs/capture.md, "Pipeline"): the StreamReader reads the
// replication connection; this thread decodes, encodes and produces, and
// publishes what is confirmable for the reader's status updates.
Status Session::Stream() {
  TV_RETURN_IF_ERROR(replication_->Start(config_.postgres.slot, Lsn(), config_.postgres.publication));
  spdlog::info("capture: streaming from slot {}", config_.postgres.slot);
  reached_streaming_ = true;
  metrics_->streaming = true;
  last_heartbeat_ms_ = NowMs();
  reader_ = std::make_unique<StreamReader>(replication_.get(), static_cast<size_t>(config_.postgres.read_ahead_bytes),
                                           config_.postgres.status_interval_ms);
  reader_->Start(tracker_.Confirmable().lsn);
  Status st = StreamLoop();
  reader_->Stop();  // the connection is this thread's again, for the last status update
  TV_RETURN_IF_ERROR(st);
  return Shutdown();
}

Status Session::StreamLoop() {
  std::deque<StreamItem> items;
  while (!stop_->load()) {
    TV_RETURN_IF_ERROR(reader_->Pop(kReadTimeoutMs, &items));
    for (size_t n = 1; !items.empty(); items.pop_front(), ++n) {
      TV_RETURN_IF_ERROR(OnStreamItem(items.front()));
      if (n % kPollEvery == 0) sink_->Poll(0);  // delivery reports, so acknowledgements keep up
    }
    metrics_->server_wal_end = server_wal_end_.value();
    sink_->Poll(0);
    if (!sink_->error().ok()) return sink_->error();
    const Lsn confirmable = tracker_.Confirmable().lsn;
    reader_->Publish(confirmable);
    metrics_->confirmed_lsn = confirmable.value();
    TV_RETURN_IF_ERROR(MaybeHeartbeat(false));
    TV_RETURN_IF_ERROR(MaybeProbeIdle());
    TV_RETURN_IF_ERROR(PollPartitions());
  }
  return Status::Ok();
}

Status Session::OnStreamItem(const StreamItem& item) {
  if (const auto* data = std::get_if<pgoutput::XLogData>(&item.message)) {
    if (data->wal_end > server_wal_end_) server_wal_end_ = data->wal_end;
    return Dispatch(*data);
  }
  const auto& ka = std::get<pgoutput::Keepalive>(item.message);
  if (ka.wal_end > server_wal_end_) server_wal_end_ = ka.wal_end;
  if (!tx_) tracker_.Marker(ka.wal_end, CommitTime::FromPostgres(ka.send_time));
  return Status::Ok();
}

Status Session::Shutdown() {
  spdlog::info("capture: stopping: flushing the producer and confirming");
  TV_RETURN_IF_ERROR(sink_->Flush(kFlushTimeoutMs));
  if (replication_ && reached_streaming_) TV_RETURN_IF_ERROR(SendStatus(false));
  TV_RETURN_IF_ERROR(MaybeHeartbeat(true));
  return sink_->Flush(kFlushTimeoutMs);
}

// Only while no StreamReader runs (it sends the updates while streaming).
Status Session::SendStatus(bool reply_requested) {
  sink_->Poll(0);
  auto pos = tracker_.Confirmable();
  TV_RETURN_IF_ERROR(replication_->SendStatus(pos.lsn, reply_requested));
  metrics_->confirmed_lsn = pos.lsn.value();
  last_status_ms_ = NowMs();
  return Status::Ok();
}

// Heartbeats carry the position up to which Kafka holds everything, so the
// store's recoverable point advances while the database is idle.
Status Session::MaybeHeartbeat(bool force) {
  if (!force && NowMs() - last_heartbeat_ms_ < config_.kafka.heartbeat_interval_ms) return Status::Ok();
  last_heartbeat_ms_ = NowMs();
  auto pos = tracker_.Confirmable();
  if (!pos.lsn.valid()) return Status::Ok();
  TV_RETURN_IF_ERROR(encoder_.EncodeHeartbeatKey(config_.kafka.topic_prefix, &key_buf_));
  sink_->Poll(0);
  TV_RETURN_IF_ERROR(
      encoder_.EncodeHeartbeat(SystemClock().Now(), pos.lsn, pos.time, sink_->acked_offsets(), &value_buf_, Source()));
  last_heartbeat_lsn_ = pos.lsn;
  return sink_->Produce(heartbeat_topic_, 0, key_buf_, value_buf_, 0);
}

SourceInfo Session::StreamSource(const TableSchema* table, Lsn lsn) const {
  SourceInfo s;
  s.name = config_.kafka.topic_prefix;
  s.db = db_name_;
  s.ts = tx_ ? tx_->commit_time : last_commit_time_;
  s.snapshot = "false";
  s.last_commit_lsn = last_commit_lsn_;
  s.lsn = lsn;
  if (table) {
    s.schema = table->schema;
    s.table = table->table;
  }
  if (tx_) {
    s.tx_id = tx_->xid;
    s.origin = tx_->origin;
    s.origin_lsn = tx_->origin_lsn;
  }
  return s;
}

Status Session::Dispatch(const pgoutput::XLogData& data) {
  TV_ASSIGN_OR_RETURN(auto msg, pgoutput::Decode(data.payload));
  Lsn lsn = data.wal_start;
  if (auto* m = std::get_if<pgoutput::Begin>(&msg)) return OnBegin(*m, lsn);
  if (auto* m = std::get_if<pgoutput::Commit>(&msg)) return OnCommit(*m, lsn);
  if (auto* m = std::get_if<pgoutput::Relation>(&msg)) {
    encoder_.Invalidate(m->oid);
    header_encoder_.Invalidate(m->oid);
    return schemas_->Update(*m);
  }
  if (auto* m = std::get_if<pgoutput::Insert>(&msg))
    return OnChange(m->relation_oid, Op::kCreate, nullptr, &m->new_tuple, lsn);
  if (auto* m = std::get_if<pgoutput::Update>(&msg)) return OnUpdate(*m, lsn);
  if (auto* m = std::get_if<pgoutput::Delete>(&msg))
    return OnChange(m->relation_oid, Op::kDelete, &m->old_tuple, nullptr, lsn);
  if (auto* m = std::get_if<pgoutput::Truncate>(&msg)) return OnTruncate(*m, lsn);
  if (auto* m = std::get_if<pgoutput::LogicalMessage>(&msg)) return OnMessage(*m, lsn);
  if (auto* m = std::get_if<pgoutput::Origin>(&msg)) {
    if (tx_) {
      tx_->origin = std::string(m->name);
      tx_->origin_lsn = m->commit_lsn;
    }
    return Status::Ok();
  }
  return Status::Ok();  // Type: nothing to emit (types come from the catalog)
}

int64_t& Session::Transaction::CountFor(std::string_view collection) {
  for (auto& c : per_collection) {
    if (c.name == collection) return c.event_count;
  }
  per_collection.push_back({std::string(collection), 0});
  return per_collection.back().event_count;
}

Status Session::OnBegin(const pgoutput::Begin& begin, Lsn lsn) {
  if (tx_) {
    return Corruption("pgoutput: Begin of xid " + std::to_string(begin.xid) + " inside transaction " +
                      std::to_string(tx_->xid));
  }
  Transaction tx;
  tx.xid = begin.xid;
  tx.commit_time = begin.commit_time;
  tx.final_lsn = begin.final_lsn;
  tx.ticket = tracker_.Open();
  tx_ = std::move(tx);
  // Debezium's transaction id is "<xid>:<lsn of the message at hand>".
  std::string id = TransactionId(begin.xid, lsn);
  TV_RETURN_IF_ERROR(encoder_.EncodeTransactionKey(id, &key_buf_));
  TV_RETURN_IF_ERROR(encoder_.EncodeTransactionBegin(id, tx_->commit_time, &value_buf_));
  return sink_->Produce(transaction_topic_, 0, key_buf_, value_buf_, tx_->ticket);
}

Status Session::OnCommit(const pgoutput::Commit& commit, Lsn lsn) {
  if (!tx_) return Corruption("pgoutput: Commit at " + commit.commit_lsn.ToString() + " without Begin");
  std::string id = TransactionId(tx_->xid, lsn);
  TV_RETURN_IF_ERROR(encoder_.EncodeTransactionKey(id, &key_buf_));
  TV_RETURN_IF_ERROR(
      encoder_.EncodeTransactionEnd(id, tx_->commit_time, tx_->total_order, tx_->per_collection, &value_buf_));
  TV_RETURN_IF_ERROR(sink_->Produce(transaction_topic_, 0, key_buf_, value_buf_, tx_->ticket));
  tracker_.Close(tx_->ticket, commit.end_lsn, commit.commit_time);
  last_commit_lsn_ = commit.end_lsn;  // equals the Commit message's WAL position
  last_commit_time_ = commit.commit_time;
  metrics_->transactions.fetch_add(1, std::memory_order_relaxed);
  metrics_->last_commit_time_us = commit.commit_time.micros();
  tx_.reset();
  return Status::Ok();
}

Status Session::OnChange(uint32_t relation_oid, Op op, const pgoutput::Tuple* before, const pgoutput::Tuple* after,
                         Lsn lsn, const KafkaSink::Header* key_header) {
  const TableSchema* table = schemas_->Find(relation_oid);
  if (!table)
    return Corruption("pgoutput: change for relation " + std::to_string(relation_oid) + " before its Relation message");
  return OnTableChange(*table, op, before, after, lsn, key_header);
}

Status Session::OnTableChange(const TableSchema& table, Op op, const pgoutput::Tuple* before,
                              const pgoutput::Tuple* after, Lsn lsn, const KafkaSink::Header* key_header) {
  if (!tx_) return Corruption("pgoutput: change outside a transaction");
  if (Refused(table)) return Status::Ok();  // logged once; not counted in the transaction
  TV_RETURN_IF_ERROR(EnsureTableTopic(table));
  int64_t& in_collection = tx_->CountFor(Collection(table));
  ++in_collection;
  ++tx_->total_order;
  std::string id = TransactionId(tx_->xid, lsn);
  TransactionBlock block{id, tx_->total_order, in_collection};
  return ProduceRow(table, op, before, after, StreamSource(&table, lsn), &block, tx_->ticket, key_header);
}

// The rows of an attached (c) or detached (d) partition, as events of its
// root in the transaction that emitted them (PollPartitions).
Status Session::OnPartitionMessage(const pgoutput::LogicalMessage& message, Lsn lsn) {
  auto parsed = ParsePartitionMessage(message.content);
  if (!parsed.ok() || !tx_) {
    spdlog::error("capture: ignoring a {} message at {}: {}", kPartitionMessagePrefix, lsn.ToString(),
                  parsed.ok() ? "outside a transaction" : parsed.status().ToString());
    return Status::Ok();
  }
  const TableSchema* table = schemas_->Find(parsed->root);
  if (table == nullptr) {
    auto loaded = schemas_->Load(parsed->root);
    if (!loaded.ok()) {
      spdlog::error("capture: rows of partition {} for table {}, which is gone: not emitted ({})", parsed->leaf,
                    parsed->root, loaded.status().ToString());
      return Status::Ok();
    }
    table = &(partition_roots_[parsed->root] = std::move(*loaded));
  }
  pgoutput::Tuple row(table->columns.size());
  for (const auto& values : parsed->rows) {
    if (values.size() != row.size()) {
      spdlog::error("capture: a row of partition {} has {} columns, {}.{} {}: not emitted", parsed->leaf, values.size(),
                    table->schema, table->table, row.size());
      continue;
    }
    for (size_t c = 0; c < row.size(); ++c) {
      row[c].kind = values[c] ? pgoutput::ColumnKind::kText : pgoutput::ColumnKind::kNull;
      row[c].value = values[c] ? std::string_view(*values[c]) : std::string_view();
    }
    if (parsed->op == 'c')
      TV_RETURN_IF_ERROR(OnTableChange(*table, Op::kCreate, nullptr, &row, lsn));
    else
      TV_RETURN_IF_ERROR(OnTableChange(*table, Op::kDelete, &row, nullptr, lsn));
    sink_->Poll(0);
  }
  return Status::Ok();
}

Status Session::OnUpdate(const pgoutput::Update& update, Lsn lsn) {
  const TableSchema* table = schemas_->Find(update.relation_oid);
  if (!table) return Corruption("pgoutput: Update for unknown relation " + std::to_string(update.relation_oid));
  const pgoutput::Tuple* before = update.old_kind ? &update.old_tuple : nullptr;
  // A primary-key change is a delete of the old key and a create of the new
  // one, as Debezium emits it (so keyed consumers and compaction stay right).
  if (before && table->HasPrimaryKey() && KeyChanged(*table, update.old_tuple, update.new_tuple)) {
    TV_RETURN_IF_ERROR(header_encoder_.EncodeKey(*table, update.old_tuple, &old_key_));
    TV_RETURN_IF_ERROR(header_encoder_.EncodeKey(*table, update.new_tuple, &new_key_));
    KafkaSink::Header to_new{"__debezium.newkey", new_key_};
    KafkaSink::Header from_old{"__debezium.oldkey", old_key_};
    TV_RETURN_IF_ERROR(OnChange(update.relation_oid, Op::kDelete, before, nullptr, lsn, &to_new));
    return OnChange(update.relation_oid, Op::kCreate, nullptr, &update.new_tuple, lsn, &from_old);
  }
  return OnChange(update.relation_oid, Op::kUpdate, before, &update.new_tuple, lsn);
}

Status Session::OnTruncate(const pgoutput::Truncate& truncate, Lsn lsn) {
  if (!tx_) return Corruption("pgoutput: Truncate outside a transaction");
  for (uint32_t oid : truncate.relation_oids) {
    const TableSchema* table = schemas_->Find(oid);
    if (!table) return Corruption("pgoutput: Truncate of unknown relation " + std::to_string(oid));
    if (Refused(*table)) continue;
    TV_RETURN_IF_ERROR(EnsureTableTopic(*table));
    int64_t& in_collection = tx_->CountFor(Collection(*table));
    ++in_collection;
    ++tx_->total_order;
    std::string id = TransactionId(tx_->xid, lsn);
    TransactionBlock block{id, tx_->total_order, in_collection};
    TV_RETURN_IF_ERROR(
        encoder_.EncodeTruncate(*table, StreamSource(table, lsn), &block, SystemClock().Now(), &value_buf_));
    TV_RETURN_IF_ERROR(sink_->Produce(table->topic, 0, std::nullopt, value_buf_, tx_->ticket));
  }
  return Status::Ok();
}

Status Session::OnMessage(const pgoutput::LogicalMessage& message, Lsn lsn) {
  if (message.prefix == kPartitionMessagePrefix) return OnPartitionMessage(message, lsn);
  if (message.prefix == kIdleProbePrefix) return OnIdleProbe(message, lsn);
  TV_RETURN_IF_ERROR(sink_->EnsureTopic(message_topic_, 1));
  TV_RETURN_IF_ERROR(encoder_.EncodeMessageKey(message.prefix, &key_buf_));
  SourceInfo source = StreamSource(nullptr, lsn);
  if (message.transactional && tx_) {
    int64_t& in_collection = tx_->CountFor(kMessageDataCollection);
    ++in_collection;
    ++tx_->total_order;
    std::string id = TransactionId(tx_->xid, lsn);
    TransactionBlock block{id, tx_->total_order, in_collection};
    TV_RETURN_IF_ERROR(encoder_.EncodeMessage(message, source, &block, SystemClock().Now(), &value_buf_));
    return sink_->Produce(message_topic_, 0, key_buf_, value_buf_, tx_->ticket);
  }
  // Debezium treats a non-transactional message as a unit of its own: it
  // becomes the "last commit" of `sequence`, its own included.
  last_commit_lsn_ = lsn;
  source.last_commit_lsn = lsn;
  source.tx_id.reset();
  TV_RETURN_IF_ERROR(encoder_.EncodeMessage(message, source, nullptr, SystemClock().Now(), &value_buf_));
  // A non-transactional message stands alone: track it as its own entry.
  AckTracker::Ticket ticket = tracker_.Open();
  TV_RETURN_IF_ERROR(sink_->Produce(message_topic_, 0, key_buf_, value_buf_, ticket));
  tracker_.Close(ticket, Lsn(), CommitTime());
  return Status::Ok();
}

}  // namespace timevault::capture
