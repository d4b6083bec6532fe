#include "event_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <system_error>
#include <utility>

namespace timevault::store::internal {

namespace {

// An all-ASCII text (the usual case) needs no UTF-8 validation.
constexpr unsigned kAsciiFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;
constexpr unsigned kUtf8Flags = kAsciiFlags | rapidjson::kParseValidateEncodingFlag;

using Type = JsonValue::Type;

bool IsAscii(std::string_view s) {
  uint64_t any = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    any |= word;
  }
  for (; i < s.size(); ++i) any |= static_cast<unsigned char>(s[i]);
  return (any & 0x8080808080808080ULL) == 0;
}

}  // namespace

const JsonValue* JsonValue::Find(std::string_view name) const {
  if (!IsObject()) return nullptr;
  const JsonValue* key = first();
  for (uint32_t i = 0; i < size_; ++i) {
    const JsonValue* value = key->next();
    if (key->text() == name) return value;
    key = value->next();
  }
  return nullptr;
}

namespace {
// Whether AppendString writes `decoded` as `written` (without the quotes).
bool SerializedAs(std::string_view decoded, std::string_view written);
}  // namespace

// SAX handler appending to values_ in preorder. Invariant: open_ holds the
// indexes of the containers whose end has not been seen, innermost last; its
// size is the current depth, at most kMaxJsonDepth.
class JsonParser::Handler {
 public:
  // `input`: the text as given to Parse (the stream reads a copy of it).
  Handler(JsonParser& p, rapidjson::InsituStringStream& stream, std::string_view input)
      : p_(p), stream_(stream), input_(input) {}

  // The input bytes of the tokens parsed so far, without the whitespace
  // between them: the input's size iff it has none.
  uint64_t compact_bytes() const { return compact_bytes_; }
  // Whether every string parsed so far is written in the input as
  // Serialize writes it.
  bool strings_as_serialized() const { return strings_as_serialized_; }

  bool Null() {
    compact_bytes_ += 4;
    return Add(Type::kNull, nullptr, 0);
  }
  bool Bool(bool b) {
    compact_bytes_ += b ? 4 : 5;
    return Add(b ? Type::kTrue : Type::kFalse, nullptr, 0);
  }
  // With kParseNumbersAsStringsFlag the reader calls RawNumber only; these
  // exist because its other branches are compiled too.
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    compact_bytes_ += length;
    return Add(Type::kNumber, str, length);
  }
  bool String(const char* str, rapidjson::SizeType length, bool) { return AddString(str, length, 2); }  // quotes
  bool Key(const char* str, rapidjson::SizeType length, bool) { return AddString(str, length, 3); }     // and colon
  bool StartObject() { return Open(Type::kObject); }
  bool EndObject(rapidjson::SizeType members) { return Close(members); }
  bool StartArray() { return Open(Type::kArray); }
  bool EndArray(rapidjson::SizeType elements) { return Close(elements); }

  bool too_deep() const { return too_deep_; }
  bool lone_surrogate() const { return lone_surrogate_; }

 private:
  // `str`: the string decoded in place, where its input began (just after
  // the opening quote). Each escape decodes shorter than it is written, so
  // a string without one is followed by its closing quote right after
  // `size` input bytes, and only then: with an escape, a quote there is
  // inside the string, escaped by the backslash before it.
  bool AddString(const char* str, uint32_t size, uint32_t punctuation) {
    const size_t start = static_cast<size_t>(str - p_.insitu_.data());
    const char* in = input_.data() + start;
    if (in[size] == '"' && (size == 0 || in[size - 1] != '\\')) {
      compact_bytes_ += size + punctuation;
      return Add(Type::kString, str, size);
    }
    // RapidJSON 1.1.0 decodes the escape of a lone low surrogate ("\\uDC00")
    // to the bytes ED B0 80, which are not UTF-8: refuse it. Raw input bytes
    // cannot produce ED A0..BF here: they are validated or all ASCII.
    for (const char* p = str; (p = static_cast<const char*>(std::memchr(p, 0xED, str + size - p))) != nullptr; ++p) {
      if (p + 1 < str + size && (static_cast<unsigned char>(p[1]) & 0xE0) == 0xA0) {
        lone_surrogate_ = true;
        return false;
      }
    }
    size_t written = 0;  // to the closing quote (the reader has checked the escapes)
    while (in[written] != '"') written += in[written] == '\\' ? 2 : 1;
    compact_bytes_ += written + punctuation;
    if (strings_as_serialized_) {
      strings_as_serialized_ = SerializedAs(std::string_view(str, size), std::string_view(in, written));
    }
    return Add(Type::kString, str, size);
  }
  bool Add(Type type, const char* text, uint32_t size) {
    p_.values_.emplace_back(type, text, size);
    return true;
  }
  bool Open(Type type) {
    if (p_.open_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
      too_deep_ = true;
      return false;
    }
    p_.open_.push_back(static_cast<uint32_t>(p_.values_.size()));
    // The reader calls StartObject/EndObject right after taking the bracket.
    const size_t at = stream_.Tell() - 1;
    p_.values_.emplace_back(type, static_cast<uint32_t>(at), input_.data() + at);
    return true;
  }
  bool Close(uint32_t count) {
    compact_bytes_ += 2 + (count > 0 ? count - 1 : 0);  // brackets, commas
    const uint32_t at = p_.open_.back();
    p_.open_.pop_back();
    p_.values_[at].Close(count, static_cast<uint32_t>(p_.values_.size()) - at, static_cast<uint32_t>(stream_.Tell()));
    return true;
  }

  JsonParser& p_;
  rapidjson::InsituStringStream& stream_;  // Tell() is not const
  const std::string_view input_;
  uint64_t compact_bytes_ = 0;
  bool strings_as_serialized_ = true;
  bool too_deep_ = false;
  bool lone_surrogate_ = false;
};

Result<const JsonValue*> JsonParser::Parse(std::string_view text, std::string_view what) {
  values_.clear();
  open_.clear();
  if (text.size() > high_water_) high_water_ = text.size();
  if (text.size() > kMaxMessageBytes) {
    return InvalidArgument(std::string(what) + ": " + std::to_string(text.size()) +
                           " bytes, over the limit of 64 MiB per message");
  }
  // The in-situ stream stops at a NUL: one inside the text would hide what follows.
  if (const void* nul = std::memchr(text.data(), 0, text.size())) {
    const size_t at = static_cast<size_t>(static_cast<const char*>(nul) - text.data());
    return InvalidArgument(std::string(what) + ": invalid JSON at offset " + std::to_string(at) + ": a NUL byte");
  }
  insitu_.assign(text);

  rapidjson::Reader reader;  // its stack stays unused (and unallocated) in insitu recursive mode
  rapidjson::InsituStringStream stream(insitu_.data());
  Handler handler(*this, stream, text);
  compact_ = false;
  const rapidjson::ParseResult result =
      IsAscii(text) ? reader.Parse<kAsciiFlags>(stream, handler) : reader.Parse<kUtf8Flags>(stream, handler);
  if (!result.IsError()) {
    compact_ = handler.strings_as_serialized() && handler.compact_bytes() == text.size();
    return &values_.front();
  }

  std::string message = std::string(what) + ": invalid JSON at offset " + std::to_string(result.Offset()) + ": ";
  if (handler.too_deep()) return InvalidArgument(message + "nested deeper than 128 levels");
  if (handler.lone_surrogate()) return InvalidArgument(message + "a \\u escape of a lone UTF-16 low surrogate");
  message += rapidjson::GetParseError_En(result.Code());
  if (result.Offset() >= text.size()) message += " (the text ends there: truncated?)";
  return InvalidArgument(std::move(message));
}

void JsonParser::SetNull(const JsonValue& v) {
  const JsonValue* begin = values_.data();
  const JsonValue* end = begin + values_.size();
  const std::less<const JsonValue*> before;                 // a total order, also for pointers into other arrays
  if (before(&v, begin) || !before(&v, end)) std::abort();  // not of this document: a bug
  values_[static_cast<size_t>(&v - begin)].MakeNull();
  compact_ = false;  // the input no longer says what the document holds
}

std::optional<std::string_view> JsonParser::Verbatim(const JsonValue& v) const {
  if (!compact_ || !(v.IsObject() || v.IsArray())) return std::nullopt;
  return std::string_view(v.text_, v.input_bytes_);
}

JsonParser& ThreadJsonParser() {
  thread_local std::unique_ptr<JsonParser> parser;
  if (!parser || parser->high_water() > kRetainBytes) parser = std::make_unique<JsonParser>();
  return *parser;
}

namespace {

// Writes into a std::string sized up front to a bound of the output. Every
// write is preceded by Reserve() for its size, so a wrong bound costs a
// reallocation, never an overflow.
class Sink {
 public:
  Sink(std::string* out, size_t bound) : out_(out) {
    out_->resize(bound);
    p_ = out_->data();
  }
  void Reserve(size_t n) {
    if (static_cast<size_t>(out_->data() + out_->size() - p_) < n) Grow(n);
  }
  void Put(char c) { *p_++ = c; }            // after Reserve
  void Append(const char* data, size_t n) {  // after Reserve
    std::memcpy(p_, data, n);
    p_ += n;
  }
  void Finish() { out_->resize(static_cast<size_t>(p_ - out_->data())); }

 private:
  void Grow(size_t n) {
    const auto used = static_cast<size_t>(p_ - out_->data());
    out_->resize(std::max(out_->size() * 2, used + n));
    p_ = out_->data() + used;
  }

  std::string* out_;
  char* p_;
};

// Bytes JSON strings escape: '"', '\\' and the control characters.
constexpr auto kEscaped = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = t['\\'] = true;
  return t;
}();

// Whether any of the 8 bytes of `w` is escaped (exact: the borrow tricks can
// only misreport bytes after a true hit).
constexpr bool AnyEscaped(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t control = (w - kOnes * 0x20) & ~w & kHigh;  // a byte < 0x20
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return (control | ((quote - kOnes) & ~quote & kHigh) | ((backslash - kOnes) & ~backslash & kHigh)) != 0;
}

void AppendString(std::string_view s, Sink& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.Reserve(s.size() + 2);
  out.Put('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    if ((i & 7) == 0 && i + 8 <= s.size()) {  // skip 8 clean bytes at once
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (!AnyEscaped(word)) {
        i += 7;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kEscaped[c]) continue;
    out.Append(s.data() + run, i - run);
    run = i + 1;
    out.Reserve(6 + (s.size() - run) + 1);  // this escape, the rest, the quote
    out.Put('\\');
    switch (c) {
      case '"': out.Put('"'); break;
      case '\\': out.Put('\\'); break;
      case '\b': out.Put('b'); break;
      case '\f': out.Put('f'); break;
      case '\n': out.Put('n'); break;
      case '\r': out.Put('r'); break;
      case '\t': out.Put('t'); break;
      default:
        out.Append("u00", 3);
        out.Put(kHex[c >> 4]);
        out.Put(kHex[c & 0xF]);
    }
  }
  out.Append(s.data() + run, s.size() - run);
  out.Put('"');
}

bool SerializedAs(std::string_view decoded, std::string_view written) {
  thread_local std::string scratch;
  Sink sink(&scratch, decoded.size() + 2);
  AppendString(decoded, sink);
  sink.Finish();
  return scratch.size() == written.size() + 2 && std::string_view(scratch).substr(1, written.size()) == written;
}

void AppendLiteral(std::string_view s, Sink& out) {
  out.Reserve(s.size());
  out.Append(s.data(), s.size());
}

// Depth is bounded by kMaxJsonDepth, so the recursion is too.
void Write(const JsonValue& v, Sink& out) {
  switch (v.type()) {
    case Type::kNull: AppendLiteral("null", out); return;
    case Type::kFalse: AppendLiteral("false", out); return;
    case Type::kTrue: AppendLiteral("true", out); return;
    case Type::kNumber: AppendLiteral(v.text(), out); return;
    case Type::kString: AppendString(v.text(), out); return;
    case Type::kObject: {
      AppendLiteral("{", out);
      bool first = true;
      ForEachMember(v, [&](std::string_view name, const JsonValue& value) {
        if (!first) AppendLiteral(",", out);
        first = false;
        AppendString(name, out);
        AppendLiteral(":", out);
        Write(value, out);
      });
      AppendLiteral("}", out);
      return;
    }
    case Type::kArray: {
      AppendLiteral("[", out);
      const JsonValue* e = v.first();
      for (uint32_t i = 0; i < v.size(); ++i, e = e->next()) {
        if (i > 0) AppendLiteral(",", out);
        Write(*e, out);
      }
      AppendLiteral("]", out);
      return;
    }
  }
}

}  // namespace

void Serialize(const JsonValue& v, std::string* out) {
  const size_t bound = v.IsObject() || v.IsArray() ? v.input_bytes() : v.text().size() + 6;
  Sink sink(out, bound);
  Write(v, sink);
  sink.Finish();
}

std::string_view TypeName(const JsonValue& v) {
  switch (v.type()) {
    case Type::kNull: return "null";
    case Type::kFalse:
    case Type::kTrue: return "a boolean";
    case Type::kNumber: return "a number";
    case Type::kString: return "a string";
    case Type::kObject: return "an object";
    case Type::kArray: return "an array";
  }
  return "an unknown value";
}

IntParse ParseInt64(std::string_view text, int64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  if (ec == std::errc::result_out_of_range) return IntParse::kOutOfRange;
  if (ec != std::errc() || ptr != end) return IntParse::kNotInteger;
  return IntParse::kOk;
}

std::string Quote(std::string_view text, size_t max) {
  std::string q = "\"";
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    q += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  q += text.size() > max ? "\"..." : "\"";
  return q;
}

// ------------------------------------------------------------------ Fields --

std::string Fields::Path(std::string_view name) const {
  std::string path(path_);
  if (!path.empty()) path += '.';
  path += name;
  return path;
}

Status Fields::Missing(std::string_view name) const { return InvalidArgument(Path(name) + ": missing"); }

Status Fields::WrongType(std::string_view name, std::string_view expected, const JsonValue& got) const {
  return InvalidArgument(Path(name) + ": expected " + std::string(expected) + ", got " + std::string(TypeName(got)));
}

Status Fields::Object(std::string_view name, const JsonValue** out) const {
  const JsonValue* v = Find(name);
  if (v == nullptr) return Missing(name);
  if (!v->IsObject()) return WrongType(name, "an object", *v);
  *out = v;
  return Status::Ok();
}

Status Fields::NullableObject(std::string_view name, const JsonValue** out) const {
  const JsonValue* v = Find(name);
  *out = nullptr;
  if (v == nullptr || v->IsNull()) return Status::Ok();
  if (!v->IsObject()) return WrongType(name, "an object or null", *v);
  *out = v;
  return Status::Ok();
}

Status Fields::String(std::string_view name, std::string_view* out) const {
  const JsonValue* v = Find(name);
  if (v == nullptr) return Missing(name);
  if (!v->IsString()) return WrongType(name, "a string", *v);
  *out = v->text();
  return Status::Ok();
}

Status Fields::IntValue(std::string_view name, const JsonValue& v, int64_t min, int64_t* out) const {
  if (!v.IsNumber()) return WrongType(name, "an integer", v);
  switch (ParseInt64(v.text(), out)) {
    case IntParse::kOk: break;
    case IntParse::kNotInteger: return InvalidArgument(Path(name) + ": expected an integer, got " + Quote(v.text()));
    case IntParse::kOutOfRange: return InvalidArgument(Path(name) + ": " + Quote(v.text()) + " is out of range");
  }
  if (*out < min) {
    return InvalidArgument(Path(name) + ": " + std::to_string(*out) + " is below the minimum " + std::to_string(min));
  }
  return Status::Ok();
}

Status Fields::Int(std::string_view name, int64_t min, int64_t* out) const {
  const JsonValue* v = Find(name);
  if (v == nullptr) return Missing(name);
  return IntValue(name, *v, min, out);
}

Status Fields::NullableInt(std::string_view name, int64_t min, bool required, std::optional<int64_t>* out) const {
  const JsonValue* v = Find(name);
  out->reset();
  if (v == nullptr) return required ? Missing(name) : Status::Ok();
  if (v->IsNull()) return Status::Ok();
  if (!v->IsNumber()) return WrongType(name, "an integer or null", *v);
  int64_t n = 0;
  TV_RETURN_IF_ERROR(IntValue(name, *v, min, &n));
  *out = n;
  return Status::Ok();
}

}  // namespace timevault::store::internal
