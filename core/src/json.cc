#include "timevault/core/json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <string>

namespace timevault::json {
namespace {

// Forwards SAX events to the Document being built and fails the parse once
// objects and arrays nest deeper than `max_depth`.
class DepthGuard {
 public:
  DepthGuard(rapidjson::Document& doc, int max_depth) : doc_(doc), max_depth_(max_depth) {}
  bool too_deep() const { return too_deep_; }

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return Enter() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return Enter() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

 private:
  bool Enter() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }
  rapidjson::Document& doc_;
  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
};

constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

}  // namespace

Status Parse(std::string_view text, rapidjson::Document* doc, int max_depth) {
  // RapidJSON reads a NUL byte as the end of the input, which would let
  // anything after one pass unread; JSON text never holds a raw NUL.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    doc->SetNull();
    return InvalidArgument("a NUL byte at offset " + std::to_string(nul));
  }
  rapidjson::ParseResult result;
  bool too_deep = false;
  // Populate runs the generator against the document's own stack and moves
  // the single root value into it on success.
  auto generate = [&](rapidjson::Document& d) {
    DepthGuard guard(d, max_depth);
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
    rapidjson::Reader reader;
    result = reader.Parse<kFlags>(in, guard);
    too_deep = guard.too_deep();
    return !result.IsError();
  };
  doc->Populate(generate);
  if (!result.IsError()) return Status::Ok();
  doc->SetNull();
  if (too_deep) {
    return InvalidArgument("nested deeper than " + std::to_string(max_depth) + " levels at offset " +
                           std::to_string(result.Offset()));
  }
  return InvalidArgument(std::string(rapidjson::GetParseError_En(result.Code())) + " at offset " +
                         std::to_string(result.Offset()));
}

bool IsValid(std::string_view text, int max_depth) {
  rapidjson::Document d;
  return Parse(text, &d, max_depth).ok();
}

}  // namespace timevault::json
