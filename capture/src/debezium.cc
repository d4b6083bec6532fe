// EventEncoder: Debezium's Postgres change events as Kafka Connect's
// JsonConverter serialises them. Schemas and field orders follow Debezium
// 3.6 (SchemaFactory, PostgresSourceInfoStructMaker, Envelope, TableSchemaBuilder,
// the transaction struct makers); docs/compat.md says where each was verified.
#include "timevault/capture/debezium.h"

#include <algorithm>
#include <unordered_map>

#include "timevault/wire/java_format.h"
#include "timevault/wire/to_json.h"
#include "timevault/wire/type_table.h"

namespace timevault::capture {
namespace {

using wire::ColumnCodec;
using wire::JsonWriter;
using wire::Kind;

// --- Constant Connect schemas (JsonConverter.asJsonSchema key order). ---

// PostgresSourceInfoStructMaker over SchemaFactory.sourceInfoSchemaBuilder().
constexpr std::string_view kSourceSchema =
    R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},)"
    R"({"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},)"
    R"({"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,)"
    R"("name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":)"
    R"("true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},)"
    R"("default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},)"
    R"({"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},)"
    R"({"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},)"
    R"({"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},)"
    R"({"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},)"
    R"({"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],)"
    R"("optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"})";

// SchemaFactory.transactionBlockSchema().
constexpr std::string_view kTransactionBlockSchema =
    R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},)"
    R"({"type":"int64","optional":false,"field":"total_order"},)"
    R"({"type":"int64","optional":false,"field":"data_collection_order"}],)"
    R"("optional":true,"name":"event.block","version":1,"field":"transaction"})";

// Envelope.Builder.build(): op, ts_ms, ts_us, ts_ns after before/after/source/transaction.
constexpr std::string_view kEnvelopeTail =
    R"({"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},)"
    R"({"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"})";

constexpr std::string_view kTransactionKeySchema =
    R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,)"
    R"("name":"io.debezium.connector.common.TransactionMetadataKey","version":1})";

constexpr std::string_view kTransactionValueSchema =
    R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},)"
    R"({"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},)"
    R"({"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,)"
    R"("field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":true,)"
    R"("name":"event.collection","version":1},"optional":true,"field":"data_collections"},)"
    R"({"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,)"
    R"("name":"io.debezium.connector.common.TransactionMetadataValue","version":1})";

constexpr std::string_view kHeartbeatKeySchema =
    R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"serverName"}],"optional":false,)"
    R"("name":"io.debezium.connector.common.ServerNameKey","version":1})";

// SchemaFactory.heartbeatValueSchema() plus timevault's two optional fields.
constexpr std::string_view kHeartbeatValueSchema =
    R"({"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"},)"
    R"({"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"server_ts_ms"}],)"
    R"("optional":false,"name":"io.debezium.connector.common.Heartbeat","version":1})";

constexpr std::string_view kMessageKeySchema =
    R"({"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"}],"optional":false,)"
    R"("name":"io.debezium.connector.postgresql.MessageKey","version":1})";

constexpr std::string_view kMessageBlockSchema =
    R"({"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"},)"
    R"({"type":"bytes","optional":true,"field":"content"}],"optional":false,)"
    R"("name":"io.debezium.connector.postgresql.Message","version":1,"field":"message"})";

void Key(JsonWriter& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void Raw(JsonWriter& w, std::string_view json) { w.RawValue(json.data(), json.size(), rapidjson::kObjectType); }

std::string MessageValueSchema() {
  std::string s = R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"op"},)"
                  R"({"type":"int64","optional":true,"field":"ts_ms"},)";
  s.append(kSourceSchema).append(",").append(kTransactionBlockSchema).append(",").append(kMessageBlockSchema);
  s += R"(],"optional":false,"name":"io.debezium.connector.postgresql.MessageValue","version":1})";
  return s;
}

// Everything the encoder derives from a TableSchema, built once per relation.
struct TableCache {
  // What the cache was built from, to notice a TableSchema that changed
  // without Invalidate().
  struct ColumnSignature {
    uint32_t type_oid;
    int32_t type_modifier;
    bool not_null;
    bool primary_key;
    bool operator==(const ColumnSignature&) const = default;
  };
  std::vector<ColumnSignature> signature;
  std::string topic;
  std::vector<ColumnCodec> codecs;  // parallel to TableSchema::columns
  std::vector<size_t> key_columns;  // indices, in key order
  std::string key_schema;           // Connect schema JSON of the key
  std::string envelope_schema;      // Connect schema JSON of the value
};

bool Matches(const TableCache& c, const TableSchema& t) {
  if (c.signature.size() != t.columns.size() || c.topic != t.topic) return false;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const ColumnSchema& col = t.columns[i];
    if (!(c.signature[i] ==
          TableCache::ColumnSignature{col.type_oid, col.type_modifier, col.not_null, col.primary_key}))
      return false;
  }
  return true;
}

std::string ValueStructSchema(const TableSchema& t, const std::vector<ColumnCodec>& codecs, std::string_view field) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Key(w, "type");
  Str(w, "struct");
  Key(w, "fields");
  w.StartArray();
  for (size_t i = 0; i < codecs.size(); ++i)
    if (codecs[i].scalar.kind != Kind::kSkip) wire::WriteFieldSchema(w, codecs[i], t.columns[i].name);
  w.EndArray();
  Key(w, "optional");
  w.Bool(true);
  Key(w, "name");
  Str(w, t.topic + ".Value");
  Key(w, "field");
  Str(w, field);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::unique_ptr<TableCache> BuildCache(const TableSchema& t) {
  auto c = std::make_unique<TableCache>();
  c->topic = t.topic;
  for (const auto& col : t.columns) {
    c->signature.push_back({col.type_oid, col.type_modifier, col.not_null, col.primary_key});
    c->codecs.push_back(wire::ResolveCodec(col, col.not_null, col.default_expression));
    if (col.primary_key && c->codecs.back().scalar.kind != Kind::kSkip) c->key_columns.push_back(c->codecs.size() - 1);
  }
  // JdbcConnection.readPrimaryKeyNames places columns by KEY_SEQ.
  std::stable_sort(c->key_columns.begin(), c->key_columns.end(), [&](size_t a, size_t b) {
    return t.columns[a].primary_key_position < t.columns[b].primary_key_position;
  });
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Key(w, "type");
  Str(w, "struct");
  Key(w, "fields");
  w.StartArray();
  for (size_t i : c->key_columns) wire::WriteFieldSchema(w, c->codecs[i], t.columns[i].name);
  w.EndArray();
  Key(w, "optional");
  w.Bool(false);
  Key(w, "name");
  Str(w, t.topic + ".Key");
  w.EndObject();
  c->key_schema.assign(buf.GetString(), buf.GetSize());

  std::string& e = c->envelope_schema;
  e = R"({"type":"struct","fields":[)";
  e += ValueStructSchema(t, c->codecs, "before") + "," + ValueStructSchema(t, c->codecs, "after") + ",";
  e.append(kSourceSchema).append(",").append(kTransactionBlockSchema).append(",").append(kEnvelopeTail);
  e += R"(],"optional":false,"name":")" + t.topic + R"(.Envelope","version":2})";
  return c;
}

std::string Truncated(std::string_view v) {
  constexpr size_t kMax = 100;
  return v.size() <= kMax ? std::string(v) : std::string(v.substr(0, kMax)) + "...";
}

// Java HashMap iteration order of String keys for a table of `capacity`
// buckets: by (h ^ h >>> 16) & (capacity - 1), insertion order within a bucket.
std::vector<const CollectionCount*> JavaHashMapOrder(const std::vector<CollectionCount>& in, size_t capacity) {
  std::vector<std::pair<uint32_t, const CollectionCount*>> keyed;
  keyed.reserve(in.size());
  for (const auto& c : in) {
    const auto h = static_cast<uint32_t>(wire::JavaStringHash(c.name));
    keyed.emplace_back((h ^ (h >> 16)) & static_cast<uint32_t>(capacity - 1), &c);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const CollectionCount*> out;
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

}  // namespace

struct EventEncoder::Impl {
  Options options;
  std::unordered_map<uint32_t, std::unique_ptr<TableCache>> cache;
  rapidjson::StringBuffer buf;
  JsonWriter w;
  std::string message_value_schema = MessageValueSchema();
  std::string scratch;
  // Columns of the event being encoded whose NULL became a default or
  // fallback (views into its TableSchema).
  std::vector<std::string_view> before_nulls, after_nulls;
  // Columns of the event being encoded whose Postgres text goes into the
  // kTextHeader: name and text (nullopt for NULL), views into the schema and
  // the tuples.
  using TextColumn = std::pair<std::string_view, std::optional<std::string_view>>;
  std::vector<TextColumn> before_texts, after_texts;
  // Debezium's TransactionContext reuses one HashMap whose table only grows
  // (clear() keeps it), so its iteration order depends on the largest
  // transaction seen so far.
  size_t txn_map_capacity = 16;

  explicit Impl(Options o) : options(o), w(buf) {}

  // Starts a message; with schemas enabled writes {"schema":<schema>,"payload":
  void Begin(std::string_view schema) {
    buf.Clear();
    w.Reset(buf);
    if (!options.schemas_enable) return;
    w.StartObject();
    Key(w, "schema");
    Raw(w, schema);
    Key(w, "payload");
  }

  Status Finish(std::string* out) {
    if (options.schemas_enable) w.EndObject();
    out->assign(buf.GetString(), buf.GetSize());
    return Status::Ok();
  }

  Result<const TableCache*> For(const TableSchema& t) {
    if (t.topic.empty()) return InvalidArgument("table " + t.schema + "." + t.table + " has no topic");
    auto& slot = cache[t.relation_oid];
    if (!slot || !Matches(*slot, t)) slot = BuildCache(t);
    return slot.get();
  }

  // Writes a row image; the names of its columns whose NULL is written as
  // something else than null are appended to *replaced_nulls.
  // Its columns that need their Postgres text beside the JSON are appended
  // to *texts.
  Status WriteRow(const TableSchema& t, const TableCache& c, const pgoutput::Tuple& row, const pgoutput::Tuple* old,
                  std::vector<std::string_view>* replaced_nulls, std::vector<TextColumn>* texts) {
    if (row.size() != t.columns.size())
      return InvalidArgument(t.schema + "." + t.table + ": row has " + std::to_string(row.size()) +
                             " columns, the relation " + std::to_string(t.columns.size()));
    w.StartObject();
    for (size_t i = 0; i < row.size(); ++i) {
      const ColumnCodec& codec = c.codecs[i];
      CollectText(t.columns[i], codec, row[i], texts);
      if (codec.scalar.kind == Kind::kSkip) continue;
      Key(w, t.columns[i].name);
      TV_RETURN_IF_ERROR(WriteColumn(t, i, codec, row[i], old));
      if (row[i].kind == pgoutput::ColumnKind::kNull && codec.null_json != "null")
        replaced_nulls->push_back(t.columns[i].name);
    }
    w.EndObject();
    return Status::Ok();
  }

  // Appends the column to *texts if Debezium's value of it loses information.
  static void CollectText(const ColumnSchema& col, const ColumnCodec& codec, const pgoutput::TupleColumn& value,
                          std::vector<TextColumn>* texts) {
    if (codec.fidelity == wire::Fidelity::kExact) return;
    switch (value.kind) {
      case pgoutput::ColumnKind::kNull:
        if (codec.fidelity == wire::Fidelity::kLossy) texts->emplace_back(col.name, std::nullopt);
        return;
      case pgoutput::ColumnKind::kText:
        if (codec.fidelity == wire::Fidelity::kLossy || wire::LossyValue(codec, value.value))
          texts->emplace_back(col.name, value.value);
        return;
      case pgoutput::ColumnKind::kUnchangedToast:  // the store resolves it from the previous version
      case pgoutput::ColumnKind::kBinary: return;  // refused by WriteColumn (kSkip: never asked for)
    }
  }

  // The kTextHeader value for the images' lossy columns; empty if none.
  void WriteTextHeader(std::string* out) {
    out->clear();
    if (before_texts.empty() && after_texts.empty()) return;
    rapidjson::StringBuffer b;
    JsonWriter hw(b);
    hw.StartObject();
    for (const auto& [image, texts] : {std::pair{"before", &before_texts}, std::pair{"after", &after_texts}}) {
      if (texts->empty()) continue;
      Key(hw, image);
      hw.StartObject();
      for (const auto& [name, text] : *texts) {
        Key(hw, name);
        if (text)
          Str(hw, *text);
        else
          hw.Null();
      }
      hw.EndObject();
    }
    hw.EndObject();
    out->assign(b.GetString(), b.GetSize());
  }

  // The kNullsHeader value for the images' replaced NULLs; empty if none.
  void WriteNullsHeader(std::string* out) {
    out->clear();
    if (before_nulls.empty() && after_nulls.empty()) return;
    rapidjson::StringBuffer b;
    JsonWriter hw(b);
    hw.StartObject();
    for (const auto& [image, names] : {std::pair{"before", &before_nulls}, std::pair{"after", &after_nulls}}) {
      if (names->empty()) continue;
      Key(hw, image);
      hw.StartArray();
      for (std::string_view name : *names) Str(hw, name);
      hw.EndArray();
    }
    hw.EndObject();
    out->assign(b.GetString(), b.GetSize());
  }

  Status WriteColumn(const TableSchema& t, size_t i, const ColumnCodec& codec, const pgoutput::TupleColumn& col,
                     const pgoutput::Tuple* old) {
    switch (col.kind) {
      case pgoutput::ColumnKind::kNull: wire::WriteNull(w, codec); return Status::Ok();
      case pgoutput::ColumnKind::kUnchangedToast:
        // PostgresChangeRecordEmitter reuses the old tuple's value if it has one.
        if (old != nullptr && i < old->size() && (*old)[i].kind == pgoutput::ColumnKind::kText)
          return WriteColumn(t, i, codec, (*old)[i], nullptr);
        wire::WriteToastPlaceholder(w, codec);
        return Status::Ok();
      case pgoutput::ColumnKind::kText:
        if (wire::WriteValue(w, codec, col.value)) return Status::Ok();
        break;
      case pgoutput::ColumnKind::kBinary: break;
    }
    const ColumnSchema& cs = t.columns[i];
    return InvalidArgument(t.schema + "." + t.table + "." + cs.name + " (" + std::string(wire::TypeNameForErrors(cs)) +
                           "): cannot convert value '" + Truncated(col.value) + "'" +
                           (col.kind == pgoutput::ColumnKind::kBinary ? " (binary format not supported)" : ""));
  }

  void WriteSource(const SourceInfo& s) {
    const int64_t us = s.ts.micros();
    w.StartObject();
    Key(w, "version");
    Str(w, kConnectorVersion);
    Key(w, "connector");
    Str(w, "postgresql");
    Key(w, "name");
    Str(w, s.name);
    Key(w, "ts_ms");
    w.Int64(wire::FloorDiv(us, 1000));
    Key(w, "snapshot");
    Str(w, s.snapshot.empty() ? std::string_view("false") : s.snapshot);
    Key(w, "db");
    Str(w, s.db);
    Key(w, "sequence");  // Jackson's rendering of [lastCommitLsn, lsn] as strings
    scratch = "[";
    scratch += s.last_commit_lsn ? "\"" + std::to_string(s.last_commit_lsn->value()) + "\"" : "null";
    scratch += ",\"" + std::to_string(s.lsn.value()) + "\"]";
    Str(w, scratch);
    Key(w, "ts_us");
    w.Int64(us);
    Key(w, "ts_ns");
    w.Int64(us * 1000);
    Key(w, "schema");
    Str(w, s.schema);
    Key(w, "table");
    Str(w, s.table);
    Key(w, "txId");
    if (s.tx_id)
      w.Int64(*s.tx_id);
    else
      w.Null();
    Key(w, "lsn");
    w.Int64(static_cast<int64_t>(s.lsn.value()));
    Key(w, "xmin");
    w.Null();
    Key(w, "origin");  // the replication origin of the transaction (pgoutput Origin message)
    if (s.origin.empty())
      w.Null();
    else
      Str(w, s.origin);
    Key(w, "origin_lsn");
    if (s.origin_lsn)
      w.Int64(static_cast<int64_t>(s.origin_lsn->value()));
    else
      w.Null();
    w.EndObject();
  }

  void WriteTransaction(const TransactionBlock* t) {
    if (t == nullptr) {
      w.Null();
      return;
    }
    w.StartObject();
    Key(w, "id");
    Str(w, t->id);
    Key(w, "total_order");
    w.Int64(t->total_order);
    Key(w, "data_collection_order");
    w.Int64(t->data_collection_order);
    w.EndObject();
  }

  void WriteTimestamps(CommitTime now) {
    Key(w, "ts_ms");
    w.Int64(wire::FloorDiv(now.micros(), 1000));
    Key(w, "ts_us");
    w.Int64(now.micros());
    Key(w, "ts_ns");
    w.Int64(now.micros() * 1000);
  }

  Status SingleStringKey(std::string_view schema, std::string_view field, std::string_view value, std::string* out) {
    Begin(schema);
    w.StartObject();
    Key(w, field);
    Str(w, value);
    w.EndObject();
    return Finish(out);
  }
};

EventEncoder::EventEncoder(Options options) : impl_(std::make_unique<Impl>(options)) {}
EventEncoder::~EventEncoder() = default;

void EventEncoder::Invalidate(uint32_t relation_oid) { impl_->cache.erase(relation_oid); }

Status EventEncoder::EncodeKey(const TableSchema& table, const pgoutput::Tuple& row, std::string* out) {
  TV_ASSIGN_OR_RETURN(const TableCache* c, impl_->For(table));
  if (c->key_columns.empty()) return NotFound(table.schema + "." + table.table + " has no primary key");
  if (row.size() != table.columns.size())
    return InvalidArgument(table.schema + "." + table.table + ": key row has " + std::to_string(row.size()) +
                           " columns, the relation " + std::to_string(table.columns.size()));
  impl_->Begin(c->key_schema);
  JsonWriter& w = impl_->w;
  w.StartObject();
  for (size_t i : c->key_columns) {
    Key(w, table.columns[i].name);
    TV_RETURN_IF_ERROR(impl_->WriteColumn(table, i, c->codecs[i], row[i], nullptr));
  }
  w.EndObject();
  return impl_->Finish(out);
}

Status EventEncoder::EncodeChange(const TableSchema& table, Op op, const pgoutput::Tuple* before,
                                  const pgoutput::Tuple* after, const SourceInfo& source,
                                  const TransactionBlock* transaction, CommitTime now, std::string* out,
                                  std::string* nulls_header, std::string* text_header) {
  TV_ASSIGN_OR_RETURN(const TableCache* c, impl_->For(table));
  impl_->Begin(c->envelope_schema);
  impl_->before_nulls.clear();
  impl_->after_nulls.clear();
  impl_->before_texts.clear();
  impl_->after_texts.clear();
  JsonWriter& w = impl_->w;
  w.StartObject();
  Key(w, "before");
  if (before != nullptr)
    TV_RETURN_IF_ERROR(impl_->WriteRow(table, *c, *before, nullptr, &impl_->before_nulls, &impl_->before_texts));
  else
    w.Null();
  Key(w, "after");
  if (after != nullptr)
    TV_RETURN_IF_ERROR(impl_->WriteRow(table, *c, *after, before, &impl_->after_nulls, &impl_->after_texts));
  else
    w.Null();
  if (nulls_header != nullptr) impl_->WriteNullsHeader(nulls_header);
  if (text_header != nullptr) impl_->WriteTextHeader(text_header);
  Key(w, "source");
  impl_->WriteSource(source);
  Key(w, "transaction");
  impl_->WriteTransaction(transaction);
  Key(w, "op");
  const char code = static_cast<char>(op);
  w.String(&code, 1);
  impl_->WriteTimestamps(now);
  w.EndObject();
  return impl_->Finish(out);
}

Status EventEncoder::EncodeTruncate(const TableSchema& table, const SourceInfo& source,
                                    const TransactionBlock* transaction, CommitTime now, std::string* out) {
  return EncodeChange(table, Op::kTruncate, nullptr, nullptr, source, transaction, now, out);
}

Status EventEncoder::EncodeMessageKey(std::string_view prefix, std::string* out) {
  return impl_->SingleStringKey(kMessageKeySchema, "prefix", prefix, out);
}

Status EventEncoder::EncodeMessage(const pgoutput::LogicalMessage& message, const SourceInfo& source,
                                   const TransactionBlock* transaction, CommitTime now, std::string* out) {
  impl_->Begin(impl_->message_value_schema);
  JsonWriter& w = impl_->w;
  w.StartObject();
  Key(w, "op");
  Str(w, "m");
  Key(w, "ts_ms");
  w.Int64(wire::FloorDiv(now.micros(), 1000));
  Key(w, "source");
  impl_->WriteSource(source);
  Key(w, "transaction");
  impl_->WriteTransaction(transaction);
  Key(w, "message");
  w.StartObject();
  Key(w, "prefix");
  Str(w, message.prefix);
  Key(w, "content");
  impl_->scratch.clear();
  wire::AppendBase64(message.content, &impl_->scratch);
  Str(w, impl_->scratch);
  w.EndObject();
  w.EndObject();
  return impl_->Finish(out);
}

Status EventEncoder::EncodeTransactionKey(std::string_view id, std::string* out) {
  return impl_->SingleStringKey(kTransactionKeySchema, "id", id, out);
}

Status EventEncoder::EncodeTransactionBegin(std::string_view id, CommitTime ts, std::string* out) {
  impl_->Begin(kTransactionValueSchema);
  JsonWriter& w = impl_->w;
  w.StartObject();
  Key(w, "status");
  Str(w, "BEGIN");
  Key(w, "id");
  Str(w, id);
  Key(w, "event_count");
  w.Null();
  Key(w, "data_collections");
  w.Null();
  Key(w, "ts_ms");
  w.Int64(wire::FloorDiv(ts.micros(), 1000));
  w.EndObject();
  return impl_->Finish(out);
}

Status EventEncoder::EncodeTransactionEnd(std::string_view id, CommitTime ts, int64_t event_count,
                                          const std::vector<CollectionCount>& collections, std::string* out) {
  // HashMap resizes when its size exceeds 0.75 of the capacity.
  while (collections.size() * 4 > impl_->txn_map_capacity * 3) impl_->txn_map_capacity *= 2;
  impl_->Begin(kTransactionValueSchema);
  JsonWriter& w = impl_->w;
  w.StartObject();
  Key(w, "status");
  Str(w, "END");
  Key(w, "id");
  Str(w, id);
  Key(w, "event_count");
  w.Int64(event_count);
  Key(w, "data_collections");
  w.StartArray();
  for (const CollectionCount* c : JavaHashMapOrder(collections, impl_->txn_map_capacity)) {
    w.StartObject();
    Key(w, "data_collection");
    Str(w, c->name);
    Key(w, "event_count");
    w.Int64(c->event_count);
    w.EndObject();
  }
  w.EndArray();
  Key(w, "ts_ms");
  w.Int64(wire::FloorDiv(ts.micros(), 1000));
  w.EndObject();
  return impl_->Finish(out);
}

Status EventEncoder::EncodeHeartbeatKey(std::string_view server_name, std::string* out) {
  return impl_->SingleStringKey(kHeartbeatKeySchema, "serverName", server_name, out);
}

Status EventEncoder::EncodeHeartbeat(CommitTime now, Lsn lsn, CommitTime server_time, const AckedOffsets& offsets,
                                     std::string* out, const HeartbeatSource* source, const SnapshotMarker* marker) {
  impl_->Begin(kHeartbeatValueSchema);
  JsonWriter& w = impl_->w;
  w.StartObject();
  Key(w, "ts_ms");
  w.Int64(wire::FloorDiv(now.micros(), 1000));
  Key(w, "lsn");
  w.Int64(static_cast<int64_t>(lsn.value()));
  Key(w, "server_ts_ms");
  w.Int64(wire::FloorDiv(server_time.micros(), 1000));
  Key(w, "offsets");
  w.StartObject();
  for (const auto& [topic, partitions] : offsets) {
    w.Key(topic.data(), static_cast<rapidjson::SizeType>(topic.size()));
    w.StartObject();
    for (const auto& [partition, offset] : partitions) {
      std::string p = std::to_string(partition);
      w.Key(p.data(), static_cast<rapidjson::SizeType>(p.size()));
      w.Int64(offset);
    }
    w.EndObject();
  }
  w.EndObject();
  if (source != nullptr) {
    Key(w, "timevault_source");
    w.StartObject();
    Key(w, "slot");
    w.String(source->slot.data(), static_cast<rapidjson::SizeType>(source->slot.size()));
    Key(w, "system_id");
    w.String(source->system_id.data(), static_cast<rapidjson::SizeType>(source->system_id.size()));
    Key(w, "timeline");
    w.Int64(source->timeline);
    w.EndObject();
  }
  if (marker != nullptr) {
    Key(w, "timevault_snapshot");
    w.StartObject();
    Key(w, "tables");
    w.StartArray();
    for (const auto& t : marker->tables) w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
    w.EndArray();
    Key(w, "cause");
    w.String(marker->cause.data(), static_cast<rapidjson::SizeType>(marker->cause.size()));
    Key(w, "gap");
    w.Bool(marker->gap);
    Key(w, "all_tables");
    w.Bool(marker->all_tables);
    w.EndObject();
  }
  w.EndObject();
  return impl_->Finish(out);
}

std::string SanitizeTopicName(std::string_view name) {
  constexpr size_t kMaxNameLength = 249;  // TopicNamingStrategy.MAX_NAME_LENGTH
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size();) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x80) {
      const bool valid = c == '.' || c == '_' || c == '-' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9');
      out += valid ? static_cast<char>(c) : '_';
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte; 4 bytes are a
    // supplementary character, two UTF-16 code units in Java.
    const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    out += length == 4 ? "__" : "_";
    i += length;
  }
  if (out.size() > kMaxNameLength) out.resize(kMaxNameLength);
  if (out == ".") return "_";
  if (out == "..") return "__";
  return out;
}

std::string TransactionId(uint32_t xid, Lsn lsn) { return std::to_string(xid) + ":" + std::to_string(lsn.value()); }

}  // namespace timevault::capture
