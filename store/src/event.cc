// ParseEvent: one Kafka message from capture -> StoreEvent (event.h).
//
// Every rejection is InvalidArgument naming the field (paths are relative to
// the Debezium payload: "source.lsn"); the message is the dead-letter reason.
// Decisions and known limits:
//
// * schemas.enable is detected by shape: a top-level object whose only
//   members are "schema" (an object or null) and "payload" is Kafka Connect's
//   wrapper and its payload is used. (A schemas-false key whose only columns
//   are called "schema" and "payload" would be misread as wrapped.)
// * Topics: `__debezium-heartbeat.<prefix>`, `<prefix>.transaction`,
//   `<prefix>.message`, and `<prefix>.<schema>.<table>` for everything else
//   under the prefix. A change event's topic must equal
//   `<prefix>.<source.schema>.<source.table>` as a whole string, so dots in
//   schema or table names are fine. A tombstone has no source: its table is
//   the topic minus `<prefix>.` (it must contain a dot); "schema.table" is the
//   same string wherever the split falls, but with dotted names schema and
//   table cannot be told apart (schema "a.b" table "c" = schema "a" table
//   "b.c"), a limit of the "schema.table" naming.
// * Tables without a primary key get a null Kafka key: pk is then the row
//   image (see StoreEvent::keyless). Two identical rows in such a table are
//   one row to the store.
// * Unchanged-TOAST placeholders are recognised in every form capture writes
//   (string, bytea base64, one-element string array, int-array of the
//   placeholder's bytes); a genuine value equal to a placeholder is
//   indistinguishable from it, as in Debezium. They can appear in 'c' too: a
//   primary-key change is d + c, and the c keeps the placeholder.
// * Numbers are kept as their original text (event_json.h).
// * NULLs written as defaults: Debezium's JsonConverter writes a column's
//   default (a NOT NULL column: also a fallback such as 0 or "") in place of
//   null, so the JSON cannot tell them apart. Capture names those fields in
//   the `__timevault.nulls` header (kNullsHeader); they are set to null
//   before anything is derived from the images. Without the header (another
//   producer, or real Debezium) the values are kept as they are.
// * Fidelity texts: where a column's Debezium value is lossy or absent,
//   capture adds the `__timevault.text` header (kTextHeader) with Postgres's
//   own text of it. Each image's texts are kept inside that image as the
//   member "" (kTextMember: no Postgres column can have an empty name), in
//   the row, the envelope's before/after and a keyless table's pk, so that
//   every copy of the image (versions, history, backups, snapshots) carries
//   them. Parsed strictly: anything off goes to the dead letters.
// * source.txId may be null only for a logical message without a
//   transaction block; source.lsn must be positive; a heartbeat with an lsn
//   must carry server_ts_ms.
#include "timevault/store/event.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "event_json.h"

namespace timevault::store {
namespace {

using internal::Fields;
using internal::JsonParser;
using internal::JsonValue;
using internal::Quote;
using internal::Serialize;
using internal::TypeName;

// Serialize(v), copied from the input when it is that already.
void CompactJson(const JsonParser& parser, const JsonValue& v, std::string* out) {
  if (auto verbatim = parser.Verbatim(v)) {
    out->assign(*verbatim);
  } else {
    Serialize(v, out);
  }
}

constexpr std::string_view kHeartbeatTopicPrefix = "__debezium-heartbeat.";
using wire::kUnavailableBase64;
constexpr std::string_view kUnavailable = wire::kUnavailableValue;
constexpr std::string_view kDefaultTenantColumn = "tenant_id";

enum class TopicKind { kTable, kTransaction, kMessage, kHeartbeat };

struct Route {
  TopicKind kind = TopicKind::kTable;
  std::string_view table;  // kTable: "schema.table" (the topic after "<prefix>.")
};

Result<Route> RouteTopic(std::string_view prefix, std::string_view topic) {
  if (prefix.empty()) return InvalidArgument("topic prefix is not configured");
  if (topic.size() == kHeartbeatTopicPrefix.size() + prefix.size() && topic.starts_with(kHeartbeatTopicPrefix) &&
      topic.ends_with(prefix)) {
    return Route{TopicKind::kHeartbeat, {}};
  }
  if (topic.size() <= prefix.size() || !topic.starts_with(prefix) || topic[prefix.size()] != '.') {
    return InvalidArgument("topic " + Quote(topic, 256) + ": not a topic of prefix " + Quote(prefix, 256));
  }
  const std::string_view rest = topic.substr(prefix.size() + 1);
  if (rest == "transaction") return Route{TopicKind::kTransaction, {}};
  if (rest == "message") return Route{TopicKind::kMessage, {}};
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size()) {
    return InvalidArgument("topic " + Quote(topic, 256) + ": expected <prefix>.<schema>.<table>");
  }
  return Route{TopicKind::kTable, rest};
}

// Kafka Connect's {"schema":...,"payload":...} wrapper (schemas.enable=true).
const JsonValue& Unwrap(const JsonValue& root) {
  if (!root.IsObject() || root.size() != 2) return root;
  const JsonValue* schema = root.Find("schema");
  const JsonValue* payload = root.Find("payload");
  if (schema == nullptr || payload == nullptr || !(schema->IsObject() || schema->IsNull())) return root;
  return *payload;
}

// Parses a message value and returns its (unwrapped) envelope object.
Result<const JsonValue*> ParseEnvelope(JsonParser& parser, std::string_view value) {
  TV_ASSIGN_OR_RETURN(const JsonValue* root, parser.Parse(value, "value"));
  const JsonValue& envelope = Unwrap(*root);
  if (!envelope.IsObject()) {
    return InvalidArgument(std::string(&envelope == root ? "value" : "value.payload") + ": expected an object, got " +
                           std::string(TypeName(envelope)));
  }
  return &envelope;
}

// The key's payload as compact JSON; nullopt for a null key (Kafka null or JSON null).
Result<std::optional<std::string>> ParseKey(JsonParser& parser, std::optional<std::string_view> key) {
  if (!key) return std::optional<std::string>();
  TV_ASSIGN_OR_RETURN(const JsonValue* root, parser.Parse(*key, "key"));
  const JsonValue& payload = Unwrap(*root);
  if (payload.IsNull()) return std::optional<std::string>();
  if (!payload.IsObject()) {
    return InvalidArgument("key: expected an object of primary-key columns, got " + std::string(TypeName(payload)));
  }
  std::string pk;
  CompactJson(parser, payload, &pk);
  return std::optional<std::string>(std::move(pk));
}

Status MillisToTime(const Fields& fields, std::string_view name, int64_t millis, CommitTime* out) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 1000;
  if (millis > kMax || millis < -kMax) return InvalidArgument(fields.Path(name) + ": out of range");
  *out = CommitTime(millis * 1000);
  return Status::Ok();
}

// The fields of `source` the store needs.
struct Source {
  Lsn lsn;
  std::optional<int64_t> xid;
  CommitTime time;
  bool snapshot = false;
  std::string_view schema;
  std::string_view table;
};

// Debezium's SnapshotRecord values (the io.debezium.data.Enum of source.snapshot).
bool IsSnapshotMarker(std::string_view s) {
  return s == "false" || s == "true" || s == "first" || s == "first_in_data_collection" ||
         s == "last_in_data_collection" || s == "last" || s == "incremental";
}

Status ParseSource(const Fields& envelope, Source* out) {
  const JsonValue* object = nullptr;
  TV_RETURN_IF_ERROR(envelope.Object("source", &object));
  const Fields source(*object, "source");
  int64_t lsn = 0;
  TV_RETURN_IF_ERROR(source.Int("lsn", 1, &lsn));
  out->lsn = Lsn(static_cast<uint64_t>(lsn));
  TV_RETURN_IF_ERROR(source.NullableInt("txId", 0, /*required=*/true, &out->xid));
  std::optional<int64_t> micros;
  TV_RETURN_IF_ERROR(source.NullableInt("ts_us", std::numeric_limits<int64_t>::min(), false, &micros));
  if (micros) {
    out->time = CommitTime(*micros);
  } else {
    int64_t millis = 0;
    TV_RETURN_IF_ERROR(source.Int("ts_ms", std::numeric_limits<int64_t>::min(), &millis));
    TV_RETURN_IF_ERROR(MillisToTime(source, "ts_ms", millis, &out->time));
  }
  std::string_view snapshot;
  TV_RETURN_IF_ERROR(source.String("snapshot", &snapshot));
  if (!IsSnapshotMarker(snapshot)) {
    return InvalidArgument(
        "source.snapshot: expected one of true, first, first_in_data_collection, "
        "last_in_data_collection, last, false, incremental, got " +
        Quote(snapshot));
  }
  out->snapshot = snapshot != "false";
  TV_RETURN_IF_ERROR(source.String("schema", &out->schema));
  return source.String("table", &out->table);
}

Status ParseOp(const Fields& envelope, bool message_topic, char* op) {
  std::string_view text;
  TV_RETURN_IF_ERROR(envelope.String("op", &text));
  const std::string_view allowed = message_topic ? "m" : "cudrt";
  if (text.size() == 1 && allowed.find(text[0]) != std::string_view::npos) {
    *op = text[0];
    return Status::Ok();
  }
  if (!message_topic && text == "m") return InvalidArgument("op: \"m\" (a logical message) on a table topic");
  return InvalidArgument("op: expected " + std::string(message_topic ? "\"m\"" : "one of c, u, d, r, t") + ", got " +
                         Quote(text));
}

// One of the forms of __debezium_unavailable_value (docs/compat.md 7.5).
bool IsUnavailable(const JsonValue& v) {
  if (v.IsString()) return v.text() == kUnavailable || v.text() == kUnavailableBase64;
  if (!v.IsArray()) return false;
  if (v.size() == 1) return v.first()->IsString() && v.first()->text() == kUnavailable;
  if (v.size() != kUnavailable.size()) return false;
  const JsonValue* e = v.first();
  for (const char expected : kUnavailable) {
    int64_t byte = 0;
    if (!e->IsNumber() || internal::ParseInt64(e->text(), &byte) != internal::IntParse::kOk ||
        byte != static_cast<unsigned char>(expected)) {
      return false;
    }
    e = e->next();
  }
  return true;
}

void ExtractTenant(const JsonValue& row, std::string_view column, bool is_delete, StoreEvent* e) {
  const JsonValue* v = row.Find(column);
  if (v == nullptr || v->IsNull()) return;
  if (v->IsString() || v->IsNumber()) {
    // A replica-identity-default delete fills NOT NULL non-key columns with "".
    if (is_delete && v->IsString() && v->text().empty()) return;
    e->tenant.assign(v->text());
  } else if (v->IsBool()) {
    e->tenant = v->GetBool() ? "true" : "false";
  } else {
    Serialize(*v, &e->tenant);
  }
  e->tenant_known = true;
}

Status CheckTopicTable(std::string_view topic_table, const Source& source) {
  const bool match = topic_table.size() == source.schema.size() + 1 + source.table.size() &&
                     topic_table.starts_with(source.schema) && topic_table[source.schema.size()] == '.' &&
                     topic_table.ends_with(source.table);
  if (match) return Status::Ok();
  return InvalidArgument("source.schema/source.table " +
                         Quote(std::string(source.schema) + "." + std::string(source.table), 256) +
                         " do not match the topic's table " + Quote(topic_table, 256));
}

// The before/after images an op requires (c/u/r: after, d: before).
Status RowImages(const Fields& envelope, char op, const JsonValue** before, const JsonValue** after) {
  TV_RETURN_IF_ERROR(envelope.NullableObject("before", before));
  TV_RETURN_IF_ERROR(envelope.NullableObject("after", after));
  const std::string op_text(1, op);
  if (op == 'd' && *before == nullptr) return InvalidArgument("before: op \"d\" requires an object, got none");
  if ((op == 'c' || op == 'u' || op == 'r') && *after == nullptr) {
    return InvalidArgument("after: op \"" + op_text + "\" requires an object, got none");
  }
  return Status::Ok();
}

// The fields kNullsHeader names, per image.
struct NullColumns {
  std::vector<std::string> before;
  std::vector<std::string> after;
};

constexpr std::string_view kNullsWhat = "header __timevault.nulls";

Status NullsError(std::string_view detail) {
  return InvalidArgument(std::string(kNullsWhat) + ": " + std::string(detail));
}

// {"before":["a",...],"after":[...]}: members optional, nothing else allowed.
Result<NullColumns> ParseNullsHeader(JsonParser& parser, std::string_view header) {
  TV_ASSIGN_OR_RETURN(const JsonValue* root, parser.Parse(header, kNullsWhat));
  if (!root->IsObject()) return NullsError("expected an object, got " + std::string(TypeName(*root)));
  NullColumns out;
  const JsonValue* name = root->first();
  for (uint32_t i = 0; i < root->size(); ++i, name = name->next()->next()) {
    const JsonValue& list = *name->next();
    std::vector<std::string>* columns = name->text() == "before"  ? &out.before
                                        : name->text() == "after" ? &out.after
                                                                  : nullptr;
    if (columns == nullptr) return NullsError("unknown member " + Quote(name->text()) + " (expected before, after)");
    if (!list.IsArray()) {
      return NullsError(std::string(name->text()) + ": expected an array of column names, got " +
                        std::string(TypeName(list)));
    }
    const JsonValue* column = list.first();
    for (uint32_t j = 0; j < list.size(); ++j, column = column->next()) {
      if (!column->IsString()) {
        return NullsError(std::string(name->text()) + "[" + std::to_string(j) + "]: expected a column name, got " +
                          std::string(TypeName(*column)));
      }
      columns->emplace_back(column->text());
    }
  }
  return out;
}

// Sets the named fields of `image` (a member of the envelope) to null.
Status ApplyNulls(JsonParser& parser, std::string_view image_name, const JsonValue* image,
                  const std::vector<std::string>& columns) {
  if (columns.empty()) return Status::Ok();
  if (image == nullptr) {
    return NullsError("names columns of " + std::string(image_name) + ", but the event's " + std::string(image_name) +
                      " is null");
  }
  for (const std::string& column : columns) {
    const JsonValue* value = image->Find(column);
    if (value == nullptr) {
      return NullsError(std::string(image_name) + ": " + Quote(column, 256) + " is not a field of the event's " +
                        std::string(image_name));
    }
    parser.SetNull(*value);
  }
  return Status::Ok();
}

// The texts kTextHeader gives for one image: its columns (is the text null?)
// and the compact JSON object kept in the image as member kTextMember.
struct ImageTexts {
  std::vector<std::pair<std::string, bool>> columns;  // name, text is null
  std::string json;                                   // empty: no texts for this image
  bool given = false;                                 // the header has a member for this image
};

struct FidelityTexts {
  ImageTexts before;
  ImageTexts after;
};

constexpr std::string_view kTextWhat = "header __timevault.text";

Status TextError(std::string_view detail) {
  return InvalidArgument(std::string(kTextWhat) + ": " + std::string(detail));
}

// One image's {"col":"text"|null,...}.
Status ParseImageTexts(const JsonParser& parser, std::string_view image, const JsonValue& object, ImageTexts* out) {
  if (out->given) return TextError(std::string(image) + " is given twice");
  out->given = true;
  if (!object.IsObject()) {
    return TextError(std::string(image) + ": expected an object of column texts, got " + std::string(TypeName(object)));
  }
  const JsonValue* name = object.first();
  for (uint32_t i = 0; i < object.size(); ++i, name = name->next()->next()) {
    const JsonValue& text = *name->next();
    if (name->text().empty()) return TextError(std::string(image) + ": an empty column name");
    if (!text.IsString() && !text.IsNull()) {
      return TextError(std::string(image) + "." + Quote(name->text(), 256) +
                       ": expected the column's text or null, got " + std::string(TypeName(text)));
    }
    for (const auto& [seen, is_null] : out->columns) {
      if (seen == name->text())
        return TextError(std::string(image) + ": column " + Quote(seen, 256) + " is given twice");
    }
    out->columns.emplace_back(name->text(), text.IsNull());
  }
  if (object.size() > 0) CompactJson(parser, object, &out->json);
  return Status::Ok();
}

// {"before":{...},"after":{...}}: members optional, nothing else allowed.
Result<FidelityTexts> ParseTextHeader(JsonParser& parser, std::string_view header) {
  TV_ASSIGN_OR_RETURN(const JsonValue* root, parser.Parse(header, kTextWhat));
  if (!root->IsObject()) return TextError("expected an object, got " + std::string(TypeName(*root)));
  FidelityTexts out;
  const JsonValue* name = root->first();
  for (uint32_t i = 0; i < root->size(); ++i, name = name->next()->next()) {
    ImageTexts* image = name->text() == "before" ? &out.before : name->text() == "after" ? &out.after : nullptr;
    if (image == nullptr) return TextError("unknown member " + Quote(name->text()) + " (expected before, after)");
    TV_RETURN_IF_ERROR(ParseImageTexts(parser, name->text(), *name->next(), image));
  }
  return out;
}

// Checks one image against its texts: the image exists, no text for an
// unchanged-TOAST column or for a column the nulls header says is NULL, and
// no member of the image has the reserved name (with or without texts).
Status CheckImageTexts(std::string_view image_name, const JsonValue* image, const ImageTexts& texts,
                       const std::vector<std::string>& nulls) {
  if (image != nullptr && image->Find(kTextMember) != nullptr) {
    return InvalidArgument(std::string(image_name) +
                           ": a field with an empty name (no Postgres column has one; the store keeps fidelity "
                           "texts under that name)");
  }
  if (texts.json.empty()) return Status::Ok();
  if (image == nullptr) {
    return TextError("gives texts for " + std::string(image_name) + ", but the event's " + std::string(image_name) +
                     " is null");
  }
  for (const auto& [column, is_null] : texts.columns) {
    const JsonValue* value = image->Find(column);
    if (value != nullptr && IsUnavailable(*value)) {
      return TextError(std::string(image_name) + ": " + Quote(column, 256) +
                       " is an unchanged-TOAST placeholder, which never has a text");
    }
    if (!is_null && std::find(nulls.begin(), nulls.end(), column) != nulls.end()) {
      return TextError(std::string(image_name) + ": " + Quote(column, 256) +
                       " has a text, but header __timevault.nulls says it is NULL");
    }
  }
  return Status::Ok();
}

// Compact JSON of an image with its texts as member kTextMember (last).
void ImageJson(const JsonParser& parser, const JsonValue& image, const ImageTexts& texts, std::string* out) {
  CompactJson(parser, image, out);
  if (texts.json.empty()) return;
  out->pop_back();  // '}'
  if (out->size() > 1) out->push_back(',');
  out->append("\"\":");
  out->append(texts.json);
  out->push_back('}');
}

// The envelope's compact JSON, before/after with their texts.
void EnvelopeJson(const JsonParser& parser, const JsonValue& envelope, const FidelityTexts& texts, std::string* out) {
  if (texts.before.json.empty() && texts.after.json.empty()) {
    CompactJson(parser, envelope, out);
    return;
  }
  out->assign("{");
  std::string part;
  const JsonValue* name = envelope.first();
  for (uint32_t i = 0; i < envelope.size(); ++i, name = name->next()->next()) {
    const JsonValue& value = *name->next();
    if (i > 0) out->push_back(',');
    Serialize(*name, &part);
    out->append(part);
    out->push_back(':');
    const ImageTexts* image = name->text() == "before"  ? &texts.before
                              : name->text() == "after" ? &texts.after
                                                        : nullptr;
    if (image != nullptr && value.IsObject()) {
      ImageJson(parser, value, *image, &part);
    } else {
      CompactJson(parser, value, &part);
    }
    out->append(part);
  }
  out->push_back('}');
}

// row, tenant, unavailable_columns and pk of a c/u/d/r event.
void FillRow(const JsonParser& parser, const ParseOptions& options, const JsonValue* before, const JsonValue* after,
             const FidelityTexts& texts, std::optional<std::string> pk, StoreEvent* e) {
  const JsonValue& row = e->op == 'd' ? *before : *after;
  ImageJson(parser, row, e->op == 'd' ? texts.before : texts.after, &e->row);
  const std::string_view column = options.tenant_column.empty() ? kDefaultTenantColumn : options.tenant_column;
  ExtractTenant(row, column, e->op == 'd', e);
  if (e->op != 'd') {
    internal::ForEachMember(*after, [e](std::string_view name, const JsonValue& value) {
      if (IsUnavailable(value)) e->unavailable_columns.emplace_back(name);
    });
  }
  if (pk) {
    e->pk = std::move(*pk);
    return;
  }
  e->keyless = true;
  e->pk = e->row;
  if (e->op == 'u' && before != nullptr) ImageJson(parser, *before, texts.before, &e->previous_pk);
}

Result<StoreEvent> ParseChange(const ParseOptions& options, std::string_view topic_table,
                               std::optional<std::string_view> key, std::string_view value,
                               std::optional<std::string_view> nulls_header,
                               std::optional<std::string_view> text_header) {
  JsonParser& parser = internal::ThreadJsonParser();
  // The key and the headers first: parsing the value reuses the parser's DOM.
  TV_ASSIGN_OR_RETURN(std::optional<std::string> pk, ParseKey(parser, key));
  NullColumns nulls;
  if (nulls_header) {
    TV_ASSIGN_OR_RETURN(nulls, ParseNullsHeader(parser, *nulls_header));
  }
  FidelityTexts texts;
  if (text_header) {
    TV_ASSIGN_OR_RETURN(texts, ParseTextHeader(parser, *text_header));
  }
  TV_ASSIGN_OR_RETURN(const JsonValue* envelope, ParseEnvelope(parser, value));
  const Fields fields(*envelope, "");
  StoreEvent e;
  e.kind = EventKind::kChange;
  TV_RETURN_IF_ERROR(ParseOp(fields, false, &e.op));
  Source source;
  TV_RETURN_IF_ERROR(ParseSource(fields, &source));
  if (!source.xid) {
    return InvalidArgument("source.txId: null, but only a logical message outside a transaction may have none");
  }
  TV_RETURN_IF_ERROR(CheckTopicTable(topic_table, source));
  const JsonValue* before = nullptr;
  const JsonValue* after = nullptr;
  TV_RETURN_IF_ERROR(RowImages(fields, e.op, &before, &after));
  TV_RETURN_IF_ERROR(ApplyNulls(parser, "before", before, nulls.before));
  TV_RETURN_IF_ERROR(ApplyNulls(parser, "after", after, nulls.after));
  TV_RETURN_IF_ERROR(CheckImageTexts("before", before, texts.before, nulls.before));
  TV_RETURN_IF_ERROR(CheckImageTexts("after", after, texts.after, nulls.after));

  e.table.assign(topic_table);
  e.change_lsn = source.lsn;
  e.xid = source.xid;
  e.commit_time = source.time;
  e.snapshot = source.snapshot;
  EnvelopeJson(parser, *envelope, texts, &e.envelope);
  if (e.op != 't') FillRow(parser, options, before, after, texts, std::move(pk), &e);
  return e;
}

Result<StoreEvent> ParseTombstone(std::string_view topic_table, std::optional<std::string_view> key) {
  JsonParser& parser = internal::ThreadJsonParser();
  TV_ASSIGN_OR_RETURN(std::optional<std::string> pk, ParseKey(parser, key));
  if (!pk) return InvalidArgument("value: null with a null key (a tombstone needs the row's key)");
  StoreEvent e;
  e.kind = EventKind::kTombstone;
  e.table.assign(topic_table);
  e.pk = std::move(*pk);
  return e;
}

Result<StoreEvent> ParseMessage(std::string_view value) {
  JsonParser& parser = internal::ThreadJsonParser();
  TV_ASSIGN_OR_RETURN(const JsonValue* envelope, ParseEnvelope(parser, value));
  const Fields fields(*envelope, "");
  StoreEvent e;
  e.kind = EventKind::kMessage;
  TV_RETURN_IF_ERROR(ParseOp(fields, true, &e.op));
  Source source;
  TV_RETURN_IF_ERROR(ParseSource(fields, &source));
  const JsonValue* transaction = nullptr;
  TV_RETURN_IF_ERROR(fields.NullableObject("transaction", &transaction));
  e.transactional = transaction != nullptr;
  if (e.transactional && !source.xid) return InvalidArgument("source.txId: null in a message with a transaction block");
  const JsonValue* message = nullptr;
  TV_RETURN_IF_ERROR(fields.Object("message", &message));
  const Fields body(*message, "message");
  const JsonValue* prefix = body.Find("prefix");
  if (prefix != nullptr && !prefix->IsNull()) {
    if (!prefix->IsString()) return body.WrongType("prefix", "a string or null", *prefix);
    e.message_prefix.assign(prefix->text());
  }
  const JsonValue* content = body.Find("content");
  if (content != nullptr && !content->IsNull() && !content->IsString()) {
    return body.WrongType("content", "a base64 string or null", *content);
  }
  e.change_lsn = source.lsn;
  e.xid = source.xid;
  e.commit_time = source.time;
  e.snapshot = source.snapshot;
  CompactJson(parser, *envelope, &e.envelope);
  return e;
}

// "<digits>" (no sign, no space) as a value in [0, max].
bool ParseDigits(std::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && *out <= max;
}

// Debezium's transaction id "<xid>:<lsn as decimal>".
Status ParseTransactionId(std::string_view id, int64_t* xid, Lsn* lsn) {
  const size_t colon = id.find(':');
  uint64_t x = 0;
  uint64_t l = 0;
  if (colon == std::string_view::npos || !ParseDigits(id.substr(0, colon), std::numeric_limits<int64_t>::max(), &x) ||
      !ParseDigits(id.substr(colon + 1), std::numeric_limits<uint64_t>::max(), &l)) {
    return InvalidArgument("id: expected \"<xid>:<lsn>\" (decimal digits), got " + Quote(id));
  }
  if (l == 0) return InvalidArgument("id: LSN 0 in " + Quote(id));
  *xid = static_cast<int64_t>(x);
  *lsn = Lsn(l);
  return Status::Ok();
}

Result<StoreEvent> ParseTransaction(std::string_view value) {
  JsonParser& parser = internal::ThreadJsonParser();
  TV_ASSIGN_OR_RETURN(const JsonValue* envelope, ParseEnvelope(parser, value));
  const Fields fields(*envelope, "");
  StoreEvent e;
  std::string_view status;
  TV_RETURN_IF_ERROR(fields.String("status", &status));
  if (status == "BEGIN") {
    e.kind = EventKind::kTransactionBegin;
  } else if (status == "END") {
    e.kind = EventKind::kTransactionEnd;
  } else {
    return InvalidArgument("status: expected \"BEGIN\" or \"END\", got " + Quote(status));
  }
  std::string_view id;
  TV_RETURN_IF_ERROR(fields.String("id", &id));
  TV_RETURN_IF_ERROR(ParseTransactionId(id, &e.tx_xid, &e.tx_lsn));
  int64_t millis = 0;
  TV_RETURN_IF_ERROR(fields.Int("ts_ms", std::numeric_limits<int64_t>::min(), &millis));
  TV_RETURN_IF_ERROR(MillisToTime(fields, "ts_ms", millis, &e.tx_time));
  if (e.kind == EventKind::kTransactionEnd) TV_RETURN_IF_ERROR(fields.Int("event_count", 0, &e.event_count));
  CompactJson(parser, *envelope, &e.envelope);
  return e;
}

// "offsets": {"<topic>": {"<partition>": <offset>, ...}, ...}
Status ParseOffsets(const JsonValue& offsets, std::vector<HeartbeatOffset>* out) {
  const JsonValue* t = offsets.first();
  for (uint32_t i = 0; i < offsets.size(); ++i, t = t->next()->next()) {
    const std::string_view topic = t->text();
    const JsonValue& partitions = *t->next();
    const std::string path = "offsets." + Quote(topic, 256);
    if (topic.empty()) return InvalidArgument("offsets: an empty topic name");
    if (!partitions.IsObject()) {
      return InvalidArgument(path + ": expected an object, got " + std::string(TypeName(partitions)));
    }
    const Fields fields(partitions, path);
    const JsonValue* p = partitions.first();
    for (uint32_t j = 0; j < partitions.size(); ++j, p = p->next()->next()) {
      uint64_t partition = 0;
      if (!ParseDigits(p->text(), std::numeric_limits<int32_t>::max(), &partition)) {
        return InvalidArgument(path + ": partition " + Quote(p->text()) + " is not a non-negative 32-bit integer");
      }
      HeartbeatOffset& entry = out->emplace_back();
      TV_RETURN_IF_ERROR(fields.IntValue(p->text(), *p->next(), 0, &entry.offset));
      entry.topic.assign(topic);
      entry.partition = static_cast<int32_t>(partition);
    }
  }
  return Status::Ok();
}

// "timevault_snapshot": {"tables": ["schema.table", ...], "cause": "...", "gap": bool, "all_tables": bool}
Status ParseSnapshotMarker(const JsonValue& marker, StoreEvent* e) {
  const Fields fields(marker, "timevault_snapshot");
  const JsonValue* tables = fields.Find("tables");
  if (tables == nullptr || !tables->IsArray()) return InvalidArgument("timevault_snapshot.tables: expected an array");
  const JsonValue* t = tables->first();
  for (uint32_t i = 0; i < tables->size(); ++i, t = t->next()) {
    if (!t->IsString() || t->text().empty()) return InvalidArgument("timevault_snapshot.tables: expected table names");
    e->snapshot_tables.emplace_back(t->text());
  }
  std::string_view cause;
  TV_RETURN_IF_ERROR(fields.String("cause", &cause));
  const JsonValue* gap = fields.Find("gap");
  if (gap == nullptr || !gap->IsBool()) return InvalidArgument("timevault_snapshot.gap: expected a boolean");
  e->snapshot_image = true;
  e->snapshot_gap = gap->GetBool();
  e->snapshot_cause.assign(cause);
  const JsonValue* all = fields.Find("all_tables");  // absent: capture before coverage (a FOR TABLE publication)
  if (all != nullptr && !all->IsBool()) return InvalidArgument("timevault_snapshot.all_tables: expected a boolean");
  e->snapshot_all_tables = all != nullptr && all->GetBool();
  return Status::Ok();
}

Result<StoreEvent> ParseHeartbeat(std::string_view value) {
  JsonParser& parser = internal::ThreadJsonParser();
  TV_ASSIGN_OR_RETURN(const JsonValue* envelope, ParseEnvelope(parser, value));
  const Fields fields(*envelope, "");
  StoreEvent e;
  e.kind = EventKind::kHeartbeat;
  int64_t ts_ms = 0;
  TV_RETURN_IF_ERROR(fields.Int("ts_ms", std::numeric_limits<int64_t>::min(), &ts_ms));
  std::optional<int64_t> lsn;
  TV_RETURN_IF_ERROR(fields.NullableInt("lsn", 0, false, &lsn));
  std::optional<int64_t> server_ms;
  TV_RETURN_IF_ERROR(fields.NullableInt("server_ts_ms", std::numeric_limits<int64_t>::min(), false, &server_ms));
  if (lsn && !server_ms) return InvalidArgument("server_ts_ms: missing in a heartbeat with an lsn");
  if (lsn) e.heartbeat_lsn = Lsn(static_cast<uint64_t>(*lsn));
  if (server_ms) TV_RETURN_IF_ERROR(MillisToTime(fields, "server_ts_ms", *server_ms, &e.heartbeat_time));
  const JsonValue* offsets = nullptr;
  TV_RETURN_IF_ERROR(fields.NullableObject("offsets", &offsets));
  if (offsets != nullptr) TV_RETURN_IF_ERROR(ParseOffsets(*offsets, &e.heartbeat_offsets));
  const JsonValue* marker = nullptr;
  TV_RETURN_IF_ERROR(fields.NullableObject("timevault_snapshot", &marker));
  if (marker != nullptr) {
    if (!lsn) return InvalidArgument("timevault_snapshot: in a heartbeat without an lsn");
    TV_RETURN_IF_ERROR(ParseSnapshotMarker(*marker, &e));
  }
  CompactJson(parser, *envelope, &e.envelope);
  return e;
}

}  // namespace

Result<StoreEvent> ParseEvent(const ParseOptions& options, std::string_view topic, std::optional<std::string_view> key,
                              std::optional<std::string_view> value, std::optional<std::string_view> nulls_header,
                              std::optional<std::string_view> text_header) {
  TV_ASSIGN_OR_RETURN(const Route route, RouteTopic(options.topic_prefix, topic));
  if (route.kind == TopicKind::kTable && value) {
    return ParseChange(options, route.table, key, *value, nulls_header, text_header);
  }
  if (nulls_header) return NullsError("on a message without row images (a tombstone or not a table topic)");
  if (text_header) return TextError("on a message without row images (a tombstone or not a table topic)");
  if (route.kind == TopicKind::kTable) return ParseTombstone(route.table, key);
  if (!value) return InvalidArgument("value: null (only a table topic has tombstones)");
  switch (route.kind) {
    case TopicKind::kTransaction: return ParseTransaction(*value);
    case TopicKind::kMessage: return ParseMessage(*value);
    case TopicKind::kHeartbeat: return ParseHeartbeat(*value);
    case TopicKind::kTable: break;
  }
  return InvalidArgument("unreachable");
}

}  // namespace timevault::store
