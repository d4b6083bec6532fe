#include "engine/envelope_codec.h"

#define ZDICT_STATIC_LINKING_ONLY  // ZDICT_getDictID
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <zdict.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "engine/encoding.h"

namespace timevault::store::engine {
namespace {

// zstd's level 1: ~540 MB/s on a 600-byte envelope with the dictionary, and
// within 2% of level 3's size.
constexpr int kLevel = 1;
// A dictionary larger than this gained nothing on capture's envelopes.
constexpr size_t kMaxDictBytes = 16 << 10;
// zstd refuses frames it cannot size; this bounds what one may claim.
constexpr uint64_t kMaxEnvelopeBytes = uint64_t{1} << 30;
constexpr uint32_t kZstdMagic = 0xFD2FB528;  // little-endian on disk: 28 B5 2F FD

std::string DictKey(uint32_t id) {
  std::string k(kMetaDictPrefix);
  PutU32(&k, id);
  return k;
}

std::optional<uint32_t> ParseU32(std::string_view four) {
  Reader r(four);
  uint32_t v = 0;
  if (!r.U32(&v) || !r.empty()) return std::nullopt;
  return v;
}

bool IsFrame(std::string_view plain) {
  if (plain.size() < 4) return false;
  uint32_t magic = 0;
  std::memcpy(&magic, plain.data(), 4);
  return magic == kZstdMagic;
}

// Row images, message contents and anything unknown: every leaf value
// blanked (strings empty, numbers 0), field names and structure kept.
void Blank(rapidjson::Value* v) {
  if (v->IsObject()) {
    for (auto& m : v->GetObject()) Blank(&m.value);
  } else if (v->IsArray()) {
    for (auto& e : v->GetArray()) Blank(&e);
  } else if (v->IsString()) {
    v->SetString("", 0);
  } else if (v->IsNumber()) {
    v->SetInt(0);
  }
}

// Envelope members that are metadata, not row data (they are in the keys in
// plaintext already: table, LSNs, transaction id, commit time).
bool IsMetadata(std::string_view name) {
  return name == "source" || name == "transaction" || name == "op" || name == "ts_ms" || name == "ts_us" ||
         name == "ts_ns";
}

}  // namespace

EnvelopeCodec::EnvelopeCodec(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta, size_t samples)
    : db_(db), meta_(meta), wanted_(samples), give_up_(samples * 8) {}

EnvelopeCodec::~EnvelopeCodec() {
  ZSTD_freeCDict(cdict_);
  ZSTD_freeCCtx(cctx_);
}

std::optional<std::string> EnvelopeCodec::Redact(std::string_view envelope) {
  rapidjson::Document d;
  d.Parse(envelope.data(), envelope.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  for (auto& m : d.GetObject()) {
    if (!IsMetadata(std::string_view(m.name.GetString(), m.name.GetStringLength()))) Blank(&m.value);
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

Status EnvelopeCodec::LoadForWrite() {
  ZSTD_freeCDict(cdict_);
  cdict_ = nullptr;
  samples_.clear();
  std::string id, dict;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, kMetaDictActive, &id);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return Internal("rocksdb: reading the active envelope dictionary: " + s.ToString());
  const auto active = ParseU32(id);
  if (!active) return Corruption("meta/dict-active is damaged");
  s = db_->Get(rocksdb::ReadOptions(), meta_, DictKey(*active), &dict);
  if (!s.ok()) return Corruption("the active envelope dictionary " + std::to_string(*active) + " is missing");
  cdict_ = ZSTD_createCDict(dict.data(), dict.size(), kLevel);
  if (cdict_ == nullptr) return Corruption("the active envelope dictionary does not load");
  if (cctx_ == nullptr) cctx_ = ZSTD_createCCtx();
  return Status::Ok();
}

std::vector<EnvelopeCodec::Record> EnvelopeCodec::Sample(std::string_view envelope) {
  if (cdict_ != nullptr || wanted_ == 0) return {};
  if (auto r = Redact(envelope)) samples_.push_back(std::move(*r));
  if (samples_.size() < wanted_) return {};
  return Train();
}

std::vector<EnvelopeCodec::Record> EnvelopeCodec::Train() {
  const auto started = std::chrono::steady_clock::now();
  std::string all;
  std::vector<size_t> sizes;
  for (const auto& s : samples_) {
    all += s;
    sizes.push_back(s.size());
  }
  // zstd's guidance: samples at least ten times the dictionary.
  std::string dict(std::clamp<size_t>(all.size() / 10, 256, kMaxDictBytes), '\0');
  const size_t n =
      ZDICT_trainFromBuffer(dict.data(), dict.size(), all.data(), sizes.data(), static_cast<unsigned>(sizes.size()));
  const uint32_t id = ZDICT_isError(n) ? 0 : ZDICT_getDictID(dict.data(), n);
  std::string existing;
  const bool taken = id != 0 && db_->Get(rocksdb::ReadOptions(), meta_, DictKey(id), &existing).ok();
  if (id == 0 || taken) {
    // Too little to learn from (tiny, uniform envelopes): more samples.
    wanted_ *= 2;
    if (wanted_ > give_up_) wanted_ = 0;
    spdlog::warn("store: no envelope dictionary from {} samples ({}); {}", samples_.size(),
                 id == 0 ? (ZDICT_isError(n) ? ZDICT_getErrorName(n) : "no id") : "its id is taken",
                 wanted_ == 0 ? "envelopes stay uncompressed" : "sampling more");
    samples_.clear();
    return {};
  }
  dict.resize(n);
  cdict_ = ZSTD_createCDict(dict.data(), dict.size(), kLevel);
  if (cctx_ == nullptr) cctx_ = ZSTD_createCCtx();
  std::string active;
  PutU32(&active, id);
  // The writer reads envelopes of its own batches before they land (a late
  // 'd' takes its ending event's envelope): they find the dictionary here.
  if (std::shared_ptr<ZSTD_DDict_s> d(ZSTD_createDDict(dict.data(), dict.size()), ZSTD_freeDDict); d) {
    std::lock_guard lock(mu_);
    ddicts_.emplace(id, std::move(d));
  }
  spdlog::info(
      "store: envelope dictionary {} trained from {} samples ({} bytes, {} ms)", id, samples_.size(), n,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
  samples_.clear();
  samples_.shrink_to_fit();
  return {{DictKey(id), std::move(dict)}, {std::string(kMetaDictActive), std::move(active)}};
}

std::string_view EnvelopeCodec::Pack(std::string_view envelope, std::string* buffer) {
  if (cdict_ == nullptr) return envelope;
  buffer->resize(ZSTD_compressBound(envelope.size()));
  const size_t n =
      ZSTD_compress_usingCDict(cctx_, buffer->data(), buffer->size(), envelope.data(), envelope.size(), cdict_);
  if (ZSTD_isError(n)) {
    spdlog::warn("store: compressing an envelope: {}; stored uncompressed", ZSTD_getErrorName(n));
    return envelope;
  }
  buffer->resize(n);
  return *buffer;
}

Result<std::shared_ptr<ZSTD_DDict_s>> EnvelopeCodec::DDict(uint32_t id) {
  std::lock_guard lock(mu_);
  if (auto it = ddicts_.find(id); it != ddicts_.end()) return it->second;
  std::string dict;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, DictKey(id), &dict);
  if (s.IsNotFound()) return Corruption("envelope dictionary " + std::to_string(id) + " is missing");
  if (!s.ok()) return Internal("rocksdb: reading envelope dictionary " + std::to_string(id) + ": " + s.ToString());
  std::shared_ptr<ZSTD_DDict_s> d(ZSTD_createDDict(dict.data(), dict.size()), ZSTD_freeDDict);
  if (!d) return Corruption("envelope dictionary " + std::to_string(id) + " does not load");
  ddicts_.emplace(id, d);
  return d;
}

bool EnvelopeCodec::IsPacked(std::string_view plain) { return IsFrame(plain); }

Status EnvelopeCodec::Unpack(std::string_view plain, std::string* out) {
  if (!IsFrame(plain)) {
    out->assign(plain);
    return Status::Ok();
  }
  const unsigned long long size = ZSTD_getFrameContentSize(plain.data(), plain.size());
  if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > kMaxEnvelopeBytes) {
    return Corruption("compressed envelope has no valid size");
  }
  TV_ASSIGN_OR_RETURN(auto ddict, DDict(ZSTD_getDictID_fromFrame(plain.data(), plain.size())));
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  out->resize(size);
  const size_t n =
      ZSTD_decompress_usingDDict(dctx.get(), out->data(), out->size(), plain.data(), plain.size(), ddict.get());
  if (ZSTD_isError(n) || n != size) {
    return Corruption(std::string("compressed envelope does not decompress: ") +
                      (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  }
  return Status::Ok();
}

}  // namespace timevault::store::engine
