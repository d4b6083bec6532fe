// JSON layer of the event parser (private to store/src): RapidJSON's reader,
// in situ, feeding a flat DOM that is reused across messages; numbers kept as
// their original text; nesting refused past kMaxJsonDepth; values written
// back as compact JSON.
//
// Why not rapidjson::Document and rapidjson::Writer: numbers would go through
// double and back (a float8 or a bigint must be re-serialised byte for byte),
// and RapidJSON 1.1.0's internal::Stack does arithmetic on a null pointer on
// its first push (UB that clang's UBSan reports). The reader in
// insitu, recursive mode uses no stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"

namespace timevault::store::internal {

inline constexpr size_t kMaxMessageBytes = size_t{64} << 20;  // a larger key or value is refused
inline constexpr int kMaxJsonDepth = 128;                     // Debezium envelopes nest < 20 levels

// One value of a parsed document. The document is a preorder array of
// values: a container's members (for an object: name, value, name, value...)
// follow it, and next() skips a whole subtree. Valid until the parser that
// made it parses again.
class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kFalse, kTrue, kNumber, kString, kObject, kArray };

  Type type() const { return type_; }
  bool IsNull() const { return type_ == Type::kNull; }
  bool IsBool() const { return type_ == Type::kFalse || type_ == Type::kTrue; }
  bool IsNumber() const { return type_ == Type::kNumber; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsObject() const { return type_ == Type::kObject; }
  bool IsArray() const { return type_ == Type::kArray; }
  bool GetBool() const { return type_ == Type::kTrue; }
  // A string's unescaped bytes or a number's text as written; empty otherwise.
  std::string_view text() const {
    return IsString() || IsNumber() ? std::string_view(text_, size_) : std::string_view();
  }
  // Members of an object, elements of an array.
  uint32_t size() const { return IsObject() || IsArray() ? size_ : 0; }

  // The first member's name (object) or first element (array): only if size() > 0.
  const JsonValue* first() const { return this + 1; }
  // The value after this one and its subtree.
  const JsonValue* next() const { return this + span_; }

  // The value of member `name` of an object, or nullptr (also for non-objects).
  const JsonValue* Find(std::string_view name) const;

  // Bytes this value took in the input, for an object or array: with no
  // whitespace and no escapes to shorten, its compact JSON is not longer.
  uint32_t input_bytes() const { return input_bytes_; }

  // Turns this value into null. Its subtree stays where it was and next()
  // still skips it, so the values around it are unaffected.
  void MakeNull() {
    type_ = Type::kNull;
    text_ = nullptr;
    size_ = 0;
  }

  // For the parser: a scalar; a container opened at `offset` in the input
  // (`start`: that byte of the input as given to Parse), then closed with its
  // size, span and the offset after its last byte.
  JsonValue(Type type, const char* text, uint32_t size) : text_(text), size_(size), type_(type) {}
  JsonValue(Type type, uint32_t offset, const char* start)
      : text_(start), size_(0), input_bytes_(offset), type_(type) {}
  void Close(uint32_t size, uint32_t span, uint32_t end_offset) {
    size_ = size;
    span_ = span;
    input_bytes_ = end_offset - input_bytes_;
  }

 private:
  friend class JsonParser;
  const char* text_;          // strings, numbers: their text; containers: their input bytes (JsonParser::Verbatim)
  uint32_t size_;             // string/number length, or member/element count
  uint32_t span_ = 1;         // this value and its subtree, in values
  uint32_t input_bytes_ = 0;  // containers: from '{' or '[' to the matching bracket (while open: its offset)
  Type type_;
};

// Calls f(std::string_view name, const JsonValue& value) for each member.
template <typename F>
void ForEachMember(const JsonValue& object, F&& f) {
  const JsonValue* name = object.first();
  for (uint32_t i = 0; i < object.size(); ++i) {
    const JsonValue* value = name->next();
    f(name->text(), *value);
    name = value->next();
  }
}

// Parses one JSON text at a time into a DOM whose buffers keep their
// capacity, so that a typical message allocates nothing here. Not
// thread-safe: use ThreadJsonParser().
class JsonParser {
 public:
  JsonParser() = default;
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // Parses `text`; the result stays valid until the next Parse. On failure:
  // InvalidArgument "<what>: invalid JSON at offset N: <reason>".
  Result<const JsonValue*> Parse(std::string_view text, std::string_view what);

  // Replaces a value of the current document by null (JsonValue::MakeNull).
  // `v` must come from the last Parse.
  void SetNull(const JsonValue& v);

  // The input bytes of object or array `v` of the last Parse when they are
  // exactly what Serialize(v) writes: the input had no whitespace between
  // tokens and no escape at all (so every string is written back as it
  // was), and no value was set to null since. Otherwise nullopt. Points into
  // the text given to Parse: use while it lives.
  std::optional<std::string_view> Verbatim(const JsonValue& v) const;

  // Bytes of the largest input parsed since construction.
  size_t high_water() const { return high_water_; }

 private:
  class Handler;

  std::string insitu_;    // the text being parsed; strings and numbers point into it
  bool compact_ = false;  // the last text parsed is as Serialize would write it (Verbatim)
  std::vector<JsonValue> values_;
  std::vector<uint32_t> open_;  // indexes of the containers being parsed
  size_t high_water_ = 0;
};

// The calling thread's parser. A parser that has seen an input larger than
// kRetainBytes is replaced on the next call so that one huge message does not
// pin its memory.
JsonParser& ThreadJsonParser();
inline constexpr size_t kRetainBytes = size_t{1} << 20;

// Compact JSON of `v` (numbers exactly as in the input, strings escaped as
// Jackson and RapidJSON do: \" \\ \b \f \n \r \t, other controls \u00XX).
void Serialize(const JsonValue& v, std::string* out);

// "a string", "an object", ... for error messages.
std::string_view TypeName(const JsonValue& v);

// Parses the text of a JSON number as an integer. kNotInteger: it has a
// fraction or an exponent; kOutOfRange: it does not fit.
enum class IntParse { kOk, kNotInteger, kOutOfRange };
IntParse ParseInt64(std::string_view text, int64_t* out);

// `text` for an error message: at most `max` bytes, quoted, non-printable bytes as '?'.
std::string Quote(std::string_view text, size_t max = 40);

// Typed reads of the members of one JSON object. Errors are InvalidArgument
// naming the member's path ("source.lsn: expected an integer, got a string").
// References the object: use while the parsed DOM is alive.
class Fields {
 public:
  // `path` is the object's path ("" for the top level, else "source", ...).
  Fields(const JsonValue& object, std::string_view path) : object_(object), path_(path) {}

  // The member or nullptr when absent.
  const JsonValue* Find(std::string_view name) const { return object_.Find(name); }

  // Required members.
  Status Object(std::string_view name, const JsonValue** out) const;
  Status String(std::string_view name, std::string_view* out) const;
  Status Int(std::string_view name, int64_t min, int64_t* out) const;
  // Absent or null gives nullopt; `required` makes absence (not null) an error.
  Status NullableInt(std::string_view name, int64_t min, bool required, std::optional<int64_t>* out) const;
  // Absent or null gives nullptr; otherwise the member must be an object.
  Status NullableObject(std::string_view name, const JsonValue** out) const;

  // "<path>.<name>", and errors about a member.
  std::string Path(std::string_view name) const;
  Status Missing(std::string_view name) const;
  Status WrongType(std::string_view name, std::string_view expected, const JsonValue& got) const;
  // Checks a value read elsewhere (e.g. an offsets entry) as an integer >= min.
  Status IntValue(std::string_view name, const JsonValue& v, int64_t min, int64_t* out) const;

 private:
  const JsonValue& object_;
  std::string_view path_;
};

}  // namespace timevault::store::internal
