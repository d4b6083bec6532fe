// History envelopes compressed with a zstd dictionary before they are
// encrypted (docs/store.md, "Envelope compression"). A change event's
// envelope is ~600 bytes of JSON, two thirds of every byte the store writes;
// each one alone compresses poorly (1.7x), but most of it is field names and
// source metadata that every envelope repeats, which a dictionary holds
// (5x). The dictionary is trained from the store's first envelopes with
// every row value blanked (before, after, a message's content: only their
// field names stay), so it holds no tenant data and is kept in plaintext in
// `meta`; crypto-shredding a tenant leaves nothing of its rows in it.
//
// A plaintext that starts with zstd's magic number is a compressed
// envelope naming its dictionary; anything else (JSON starts with '{') is
// an envelope stored as it is, so stores written before compression, and
// envelopes written before the dictionary was trained, read unchanged.
//
// Thread-safety: the writer side (Sample, Pack, LoadForWrite) belongs to the
// store's writer (write_mu); Unpack may run on any thread.
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/status.h"

struct ZSTD_CDict_s;
struct ZSTD_CCtx_s;
struct ZSTD_DDict_s;

namespace timevault::store::engine {

class EnvelopeCodec {
 public:
  // `samples`: envelopes sampled before training (0: never compress).
  EnvelopeCodec(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta, size_t samples);
  ~EnvelopeCodec();
  EnvelopeCodec(const EnvelopeCodec&) = delete;
  EnvelopeCodec& operator=(const EnvelopeCodec&) = delete;

  // Writer: the active dictionary from the database (none: sampling starts
  // over). Called at open and after a failed batch.
  Status LoadForWrite();

  // Writer, before Pack while no dictionary is active: adds the envelope's
  // redacted form to the samples. Once there are enough, trains the
  // dictionary, makes it the active one and returns the `meta` records to
  // write in the same batch as the first envelopes packed with it.
  struct Record {
    std::string key, value;
  };
  std::vector<Record> Sample(std::string_view envelope);

  // Writer: the plaintext to encrypt for `envelope`: compressed with the
  // active dictionary into *buffer, or the envelope itself.
  std::string_view Pack(std::string_view envelope, std::string* buffer);

  // Any thread: the envelope of a decrypted plaintext.
  Status Unpack(std::string_view plain, std::string* out);
  // Whether a plaintext is packed (a zstd frame), not a text as it is.
  static bool IsPacked(std::string_view plain);

  // An envelope with every value of its row images (and of anything else
  // that is not source metadata) blanked: what the dictionary learns from.
  // Nullopt for a text that is not a JSON object.
  static std::optional<std::string> Redact(std::string_view envelope);

 private:
  Result<std::shared_ptr<ZSTD_DDict_s>> DDict(uint32_t id);
  std::vector<Record> Train();

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* meta_;
  size_t wanted_;         // samples to train from (0: no more training)
  const size_t give_up_;  // a sample count past which training is no longer tried

  // writer
  ZSTD_CDict_s* cdict_ = nullptr;
  ZSTD_CCtx_s* cctx_ = nullptr;
  std::vector<std::string> samples_;

  // readers
  std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<ZSTD_DDict_s>> ddicts_;
};

}  // namespace timevault::store::engine
