// Archives (archive.h; docs/replay.md "Archive format").
//
// A data file on disk:
//
//   "TVARCH01"                        8-byte magic
//   block*                            until the end of the file
//   block = u32 BE n | n bytes        DataKey::Encrypt(zstd(payload), aad)
//   payload = (u32 BE len | len bytes)*   the records, in order
//   aad = "tv-archive\0" id "\0" file "\0" u64 BE block index
//
// manifest.json: the caller's fields, then id, format, created_at, the key
// (format 2: key_tenant and key_id, the archive key ring's key it is
// encrypted under, archive_keys.h; format 1, written before rings:
// wrapped_key, the archive's own key wrapped by the master key, in hex),
// files, manifest_mac and manifest_sha256. The canonical
// form is the compact RapidJSON serialization of the manifest object, members
// in file order, without manifest_sha256 and manifest_mac.
// manifest_sha256 = hex SHA-256 of it (detects damage); manifest_mac = hex of
// DataKey::Encrypt("", "tv-archive-manifest\0" + canonical) (proves the
// manifest was written by a holder of the master key: without it, someone
// could drop a file from the list and recompute the hash).
#include "timevault/replay/archive.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "hex.h"
#include "timevault/core/file.h"
#include "timevault/core/time.h"
#include "timevault/core/worker.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;
using crypto::DataKey;
using crypto::MasterKey;

constexpr std::string_view kMagic = "TVARCH01";
constexpr int kFormatVersion = 2;                       // what is written: the key in the ring
constexpr int kLegacyFormatVersion = 1;                 // read too: its own wrapped key
constexpr size_t kBlockTarget = size_t{1} << 20;        // close a block once its payload reaches 1 MiB
constexpr size_t kMaxBufferedBytes = size_t{64} << 20;  // all files' open blocks together
constexpr size_t kMaxBlockBytes = size_t{256} << 20;    // larger stored/decompressed blocks are refused
constexpr size_t kMaxManifestBytes = size_t{64} << 20;
constexpr int kZstdLevel = 3;
constexpr const char* kManifest = "manifest.json";
constexpr std::string_view kManifestMacContext{"tv-archive-manifest\0", 20};
const std::set<std::string, std::less<>> kReservedFields = {
    "id", "format", "created_at", "key_tenant", "key_id", "wrapped_key", "files", "manifest_mac", "manifest_sha256"};

// ---- small helpers ---------------------------------------------------------

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) *out += static_cast<char>((v >> shift) & 0xFF);
}
uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

std::string BlockAad(const std::string& id, const std::string& file, uint64_t index) {
  std::string aad("tv-archive\0", 11);
  aad += id;
  aad += '\0';
  aad += file;
  aad += '\0';
  for (int shift = 56; shift >= 0; shift -= 8) aad += static_cast<char>((index >> shift) & 0xFF);
  return aad;
}

// What a format-1 archive's own key is bound to when a rekey wraps it again.
std::string LegacyKeyBinding(const std::string& id) {
  std::string b("timevault/archive\0", 18);
  b += id;
  return b;
}

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string raw;
  for (size_t i = 0; i < bytes; ++i) raw += static_cast<char>(rd() & 0xFF);
  return Hex(raw);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name == kManifest || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

Status AppendFile(const std::string& path, std::string_view data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Internal(Errno("opening", path));
  return WriteAll(fd.get(), data, path);
}

// Reads up to `n` bytes; fewer only at the end of the file.
Result<std::string> ReadUpTo(int fd, size_t n, const std::string& path) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Internal(Errno("reading", path));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// The manifest's canonical form: compact, members in order, without the two
// self-referencing fields.
std::string Canonical(const rapidjson::Value& manifest) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& m : manifest.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (name == "manifest_sha256" || name == "manifest_mac") continue;
    w.Key(m.name.GetString(), m.name.GetStringLength());
    m.value.Accept(w);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ManifestMacAad(const std::string& canonical) {
  std::string aad(kManifestMacContext);
  aad += canonical;
  return aad;
}

}  // namespace

// ---- writer ------------------------------------------------------------------

struct ArchiveWriter::Impl {
  struct File {
    std::string pending;  // the open block's payload
    uint64_t records = 0;
    uint64_t bytes = 0;   // written to disk so far
    uint64_t blocks = 0;  // closed so far (written or being sealed)
    crypto::Sha256 sha;
  };
  // A closed block on its way to disk: compressed and encrypted by a sealer
  // (or inline), then appended to its file in the order blocks were closed.
  struct InFlight {
    std::string file;
    std::shared_ptr<std::string> sealed;
    std::future<Status> done;
  };

  std::string dir, tmp, id;
  DataKey key;
  std::string key_tenant;
  std::map<std::string, File> files;
  size_t buffered = 0;
  bool finished = false;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx{ZSTD_createCCtx()};
  std::string sealed;
  // Sealers (ArchiveWriter::Create's `threads` > 1): each with its own zstd
  // context and cipher; blocks go to them round robin. Declared last: they
  // are joined first, before the contexts their tasks use go away.
  std::vector<std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree>> sealer_cctx;
  std::vector<DataKey> sealer_key;
  std::deque<InFlight> inflight;
  size_t next_sealer = 0;
  std::vector<std::unique_ptr<SerialWorker>> sealers;

  std::string PathOf(const std::string& file) const { return tmp + "/" + file; }

  // zstd then AES-256-GCM of one block's payload, framed (u32 length).
  static Status SealBlock(ZSTD_CCtx* z, DataKey& k, const std::string& aad, const std::string& payload,
                          std::string* out) {
    std::string compressed(ZSTD_compressBound(payload.size()), '\0');
    size_t n = ZSTD_compressCCtx(z, compressed.data(), compressed.size(), payload.data(), payload.size(), kZstdLevel);
    if (ZSTD_isError(n)) return Internal(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
    compressed.resize(n);
    std::string block;
    k.Encrypt(compressed, aad, &block);
    out->clear();
    PutU32(out, static_cast<uint32_t>(block.size()));
    *out += block;
    return Status::Ok();
  }

  Status WriteSealed(const std::string& name, const std::string& block) {
    File& f = files[name];
    std::string out;
    if (f.bytes == 0) out.assign(kMagic);
    out += block;
    TV_RETURN_IF_ERROR(AppendFile(PathOf(name), out));
    f.sha.Update(out);
    f.bytes += out.size();
    return Status::Ok();
  }

  // Writes the oldest block in flight once its sealer is done.
  Status WriteOldest() {
    InFlight next = std::move(inflight.front());
    inflight.pop_front();
    TV_RETURN_IF_ERROR(next.done.get());
    return WriteSealed(next.file, *next.sealed);
  }

  Status Drain() {
    Status first = Status::Ok();
    while (!inflight.empty()) {
      Status st = WriteOldest();
      if (first.ok()) first = st;
    }
    return first;
  }

  Status FlushBlock(const std::string& name, File& f) {
    if (f.pending.empty()) return Status::Ok();
    const std::string aad = BlockAad(id, name, f.blocks);
    ++f.blocks;
    buffered -= f.pending.size();
    if (sealers.empty()) {
      TV_RETURN_IF_ERROR(SealBlock(cctx.get(), key, aad, f.pending, &sealed));
      f.pending.clear();
      return WriteSealed(name, sealed);
    }
    const size_t slot = next_sealer++ % sealers.size();
    auto out = std::make_shared<std::string>();
    auto done =
        sealers[slot]->Submit([z = sealer_cctx[slot].get(), k = &sealer_key[slot], aad, payload = std::move(f.pending),
                               out]() { return SealBlock(z, *k, aad, payload, out.get()); });
    f.pending = std::string();
    inflight.push_back(InFlight{name, std::move(out), std::move(done)});
    // At most two blocks per sealer in flight (their payloads are memory).
    while (inflight.size() > 2 * sealers.size()) TV_RETURN_IF_ERROR(WriteOldest());
    return Status::Ok();
  }

  // Keeps the open blocks of all files within kMaxBufferedBytes by closing
  // the largest early (a "*" backup writes many tables' files at once).
  Status Rebalance() {
    while (buffered > kMaxBufferedBytes) {
      auto largest = std::max_element(files.begin(), files.end(), [](const auto& a, const auto& b) {
        return a.second.pending.size() < b.second.pending.size();
      });
      TV_RETURN_IF_ERROR(FlushBlock(largest->first, largest->second));
    }
    return Status::Ok();
  }

  Result<std::string> BuildManifest(const std::string& meta_json, const std::vector<ArchiveFileInfo>& infos);

  explicit Impl(DataKey k) : key(std::move(k)) {}
  ~Impl() { sealers.clear(); }  // joined before anything their tasks use
};

ArchiveWriter::ArchiveWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ArchiveWriter::~ArchiveWriter() {
  if (impl_ && !impl_->finished) {
    impl_->sealers.clear();  // no block is written into the directory being removed
    std::error_code ec;
    fs::remove_all(impl_->tmp, ec);
  }
}

Result<std::unique_ptr<ArchiveWriter>> ArchiveWriter::Create(const std::string& dir, const std::string& id,
                                                             ArchiveKeyRing& ring, const std::string& key_tenant,
                                                             size_t threads) {
  if (!ValidName(id)) return InvalidArgument("archive id '" + id + "': use letters, digits, '.', '_' and '-'");
  std::error_code ec;
  if (fs::exists(dir, ec)) return AlreadyExists("archive " + dir + " exists already");
  fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return NotFound("archive " + dir + ": the directory " + parent.string() + " does not exist");
  }
  if (key_tenant.empty()) return InvalidArgument("archive " + id + ": no tenant to take the key of");
  TV_ASSIGN_OR_RETURN(DataKey key, ring.KeyForWrite(key_tenant));
  auto impl = std::make_unique<Impl>(std::move(key));
  impl->dir = dir;
  impl->id = id;
  impl->tmp = dir + ".tmp-" + RandomHex(4);
  impl->key_tenant = key_tenant;
  if (threads > 1) {
    for (size_t i = 0; i < threads; ++i) {
      impl->sealer_cctx.emplace_back(ZSTD_createCCtx());
      impl->sealer_key.push_back(impl->key.Clone());
    }
    for (size_t i = 0; i < threads; ++i) impl->sealers.push_back(std::make_unique<SerialWorker>());
  }
  if (::mkdir(impl->tmp.c_str(), 0700) != 0) return Internal(Errno("creating", impl->tmp));
  return std::unique_ptr<ArchiveWriter>(new ArchiveWriter(std::move(impl)));
}

Status ArchiveWriter::Add(const std::string& file, std::string_view record) {
  Impl& s = *impl_;
  if (s.finished) return FailedPrecondition("archive " + s.id + ": Add after Finish");
  if (!ValidName(file)) {
    return InvalidArgument("archive " + s.id + ": file name '" + file + "': use letters, digits, '.', '_' and '-'");
  }
  if (record.size() > kMaxBlockBytes / 2) {
    return InvalidArgument("archive " + s.id + ": a record of " + std::to_string(record.size()) +
                           " bytes is larger than the limit of " + std::to_string(kMaxBlockBytes / 2));
  }
  auto& f = s.files[file];
  if (!f.pending.empty() && f.pending.size() + record.size() + 4 > kBlockTarget) {
    TV_RETURN_IF_ERROR(s.FlushBlock(file, f));
  }
  PutU32(&f.pending, static_cast<uint32_t>(record.size()));
  f.pending.append(record);
  s.buffered += record.size() + 4;
  ++f.records;
  if (f.pending.size() >= kBlockTarget) return s.FlushBlock(file, f);
  return s.Rebalance();
}

uint64_t ArchiveWriter::LastBlock(const std::string& file) const {
  auto it = impl_->files.find(file);
  if (it == impl_->files.end()) return 0;
  const Impl::File& f = it->second;
  return f.pending.empty() && f.blocks > 0 ? f.blocks - 1 : f.blocks;
}

Result<std::string> ArchiveWriter::Impl::BuildManifest(const std::string& meta_json,
                                                       const std::vector<ArchiveFileInfo>& infos) {
  rapidjson::Document meta;
  meta.Parse(meta_json.c_str(), meta_json.size());
  if (meta.HasParseError() || !meta.IsObject()) {
    return InvalidArgument("archive " + id + ": the manifest fields are not a JSON object");
  }
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  auto str = [&](const std::string& s) {
    return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
  };
  doc.AddMember("id", str(id), a);
  doc.AddMember("format", kFormatVersion, a);
  doc.AddMember("created_at", str(SystemClock().Now().ToIso()), a);
  for (auto& m : meta.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (kReservedFields.count(name) != 0) {
      return InvalidArgument("archive " + id + ": the manifest field '" + name + "' is the archive's own");
    }
    doc.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
  }
  doc.AddMember("key_tenant", str(key_tenant), a);
  doc.AddMember("key_id", key.id(), a);
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& info : infos) {
    rapidjson::Value f(rapidjson::kObjectType);
    f.AddMember("name", str(info.name), a);
    f.AddMember("records", info.records, a);
    f.AddMember("bytes", info.bytes, a);
    f.AddMember("sha256", str(info.sha256), a);
    list.PushBack(f, a);
  }
  doc.AddMember("files", list, a);
  const std::string canonical = Canonical(doc);
  std::string mac;
  key.Encrypt("", ManifestMacAad(canonical), &mac);
  doc.AddMember("manifest_mac", str(Hex(mac)), a);
  doc.AddMember("manifest_sha256", str(crypto::Sha256Hex(canonical)), a);
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<std::vector<ArchiveFileInfo>> ArchiveWriter::Finish(const std::string& meta_json) {
  Impl& s = *impl_;
  if (s.finished) return FailedPrecondition("archive " + s.id + ": Finish called twice");
  std::vector<ArchiveFileInfo> infos;
  for (auto& [name, f] : s.files) TV_RETURN_IF_ERROR(s.FlushBlock(name, f));
  TV_RETURN_IF_ERROR(s.Drain());
  for (auto& [name, f] : s.files) {
    TV_RETURN_IF_ERROR(FsyncPath(s.PathOf(name), false));
    infos.push_back(ArchiveFileInfo{name, f.records, f.bytes, f.sha.FinishHex()});
  }
  TV_ASSIGN_OR_RETURN(std::string manifest, s.BuildManifest(meta_json, infos));
  const std::string manifest_path = s.tmp + "/" + kManifest;
  {
    Fd fd(::open(manifest_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Internal(Errno("creating", manifest_path));
    TV_RETURN_IF_ERROR(WriteAll(fd.get(), manifest, manifest_path));
    if (::fsync(fd.get()) != 0) return Internal(Errno("fsync of", manifest_path));
  }
  TV_RETURN_IF_ERROR(FsyncPath(s.tmp, true));
  if (::rename(s.tmp.c_str(), s.dir.c_str()) != 0) return Internal(Errno("renaming " + s.tmp + " to", s.dir));
  s.finished = true;
  fs::path parent = fs::path(s.dir).parent_path();
  TV_RETURN_IF_ERROR(FsyncPath(parent.empty() ? "." : parent.string(), true));
  return infos;
}

// ---- reader ------------------------------------------------------------------

struct ArchiveReader::Impl {
  std::string dir, id, manifest;
  std::vector<ArchiveFileInfo> files;
  std::optional<DataKey> key;  // set by ParseManifest

  std::string Where(const std::string& file) const { return "archive " + id + " (" + dir + "): file " + file; }
  Status ParseManifest(ArchiveKeyRing& ring);
  Status LegacyKey(const rapidjson::Value& doc, const MasterKey& master);
  Status ParseFiles(const rapidjson::Value& list);
  // Reads `file`: every block's bytes are hashed; those in `range` (all
  // without one) are authenticated, decompressed and their records emitted.
  Status ReadFile(const std::string& file, std::optional<std::pair<uint64_t, uint64_t>> range,
                  const std::function<bool(std::string_view record)>& emit) const;
  Status CheckListing() const;  // listed files present, no unlisted one
};

namespace {

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string StringMember(const rapidjson::Value& obj, const char* name) {
  const rapidjson::Value* v = Member(obj, name);
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

}  // namespace

Status ArchiveReader::Impl::ParseFiles(const rapidjson::Value& list) {
  const std::string where = "archive " + dir + ": manifest.json: ";
  if (!list.IsArray()) return Corruption(where + "\"files\" is not an array");
  std::set<std::string> seen;
  for (const auto& f : list.GetArray()) {
    if (!f.IsObject()) return Corruption(where + "an entry of \"files\" is not an object");
    const rapidjson::Value* records = Member(f, "records");
    const rapidjson::Value* bytes = Member(f, "bytes");
    ArchiveFileInfo info;
    info.name = StringMember(f, "name");
    info.sha256 = StringMember(f, "sha256");
    if (!ValidName(info.name) || !seen.insert(info.name).second || records == nullptr || !records->IsUint64() ||
        bytes == nullptr || !bytes->IsUint64() || info.sha256.size() != 64) {
      return Corruption(where + "the entry of file '" + info.name + "' in \"files\" is malformed");
    }
    info.records = records->GetUint64();
    info.bytes = bytes->GetUint64();
    files.push_back(std::move(info));
  }
  return Status::Ok();
}

// A format-1 archive's own key, wrapped by the master key in the manifest.
Status ArchiveReader::Impl::LegacyKey(const rapidjson::Value& doc, const MasterKey& master) {
  const std::string where = "archive " + dir + ": manifest.json: ";
  auto wrapped = Unhex(StringMember(doc, "wrapped_key"));
  if (!wrapped) return Corruption(where + "\"wrapped_key\" is not hex");
  auto unwrapped = master.Unwrap(*wrapped, LegacyKeyBinding(id));
  if (!unwrapped.ok()) {
    if (unwrapped.status().code() == StatusCode::kPermissionDenied) {
      return FailedPrecondition("archive " + dir +
                                ": the master key is not the one it was written with (its data key does not unwrap)");
    }
    return Corruption(where + "\"wrapped_key\": " + unwrapped.status().message());
  }
  key = std::move(unwrapped).value();
  return Status::Ok();
}

Status ArchiveReader::Impl::ParseManifest(ArchiveKeyRing& ring) {
  const std::string where = "archive " + dir + ": manifest.json: ";
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(manifest.c_str(), manifest.size());
  if (doc.HasParseError()) {
    return Corruption(where + "not valid JSON at offset " + std::to_string(doc.GetErrorOffset()) + " (" +
                      rapidjson::GetParseError_En(doc.GetParseError()) + ")");
  }
  if (!doc.IsObject()) return Corruption(where + "not a JSON object");
  const std::string expected = StringMember(doc, "manifest_sha256");
  if (expected.empty()) return Corruption(where + "no manifest_sha256");
  const std::string canonical = Canonical(doc);
  if (crypto::Sha256Hex(canonical) != expected) {
    return Corruption(where + "hash mismatch (manifest_sha256 " + expected + ", content hashes to " +
                      crypto::Sha256Hex(canonical) + "): the manifest was changed or damaged");
  }
  const rapidjson::Value* format = Member(doc, "format");
  if (format == nullptr || !format->IsInt() ||
      (format->GetInt() != kFormatVersion && format->GetInt() != kLegacyFormatVersion)) {
    return FailedPrecondition(where + "unsupported archive format (this timevault reads formats " +
                              std::to_string(kLegacyFormatVersion) + " and " + std::to_string(kFormatVersion) + ")");
  }
  id = StringMember(doc, "id");
  if (!ValidName(id)) return Corruption(where + "missing or invalid \"id\"");
  if (format->GetInt() == kLegacyFormatVersion) {
    TV_RETURN_IF_ERROR(LegacyKey(doc, ring.master()));
  } else {
    const std::string key_tenant = StringMember(doc, "key_tenant");
    const rapidjson::Value* key_id = Member(doc, "key_id");
    if (key_tenant.empty() || key_id == nullptr || !key_id->IsUint()) {
      return Corruption(where + "missing or invalid \"key_tenant\" or \"key_id\"");
    }
    auto ring_key = ring.KeyForRead(key_tenant, key_id->GetUint());
    if (!ring_key.ok()) return ring_key.status().WithContext("archive " + dir);
    key = std::move(ring_key).value();
  }
  auto mac = Unhex(StringMember(doc, "manifest_mac"));
  std::string ignored;
  if (!mac || !key->Decrypt(*mac, ManifestMacAad(canonical), &ignored).ok()) {
    return Corruption(where +
                      "manifest_mac does not authenticate: the manifest was not written with this archive's key");
  }
  const rapidjson::Value* list = Member(doc, "files");
  if (list == nullptr) return Corruption(where + "no \"files\"");
  return ParseFiles(*list);
}

Status RewrapLegacyArchive(const std::string& dir, const MasterKey& current, const MasterKey& next, bool* rewrapped) {
  *rewrapped = false;
  const std::string path = dir + "/" + kManifest;
  const std::string where = "archive " + dir + ": manifest.json: ";
  std::string manifest;
  {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Internal(Errno("opening", path));
    TV_ASSIGN_OR_RETURN(manifest, ReadUpTo(fd.get(), kMaxManifestBytes, path));
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(manifest.c_str(), manifest.size());
  if (doc.HasParseError() || !doc.IsObject()) return Corruption(where + "not a JSON object");
  const rapidjson::Value* format = Member(doc, "format");
  if (format == nullptr || !format->IsInt() || format->GetInt() != kLegacyFormatVersion) return Status::Ok();
  const std::string canonical = Canonical(doc);
  if (crypto::Sha256Hex(canonical) != StringMember(doc, "manifest_sha256")) {
    return Corruption(where + "hash mismatch: the manifest was changed or damaged; not rewrapped");
  }
  const std::string id = StringMember(doc, "id");
  auto wrapped = Unhex(StringMember(doc, "wrapped_key"));
  if (!wrapped) return Corruption(where + "\"wrapped_key\" is not hex");
  auto key = current.Unwrap(*wrapped, LegacyKeyBinding(id));
  if (!key.ok()) {
    if (next.Unwrap(*wrapped, LegacyKeyBinding(id)).ok()) return Status::Ok();  // an earlier run did it
    return FailedPrecondition("archive " + dir + ": its key unwraps under neither the current nor the new master key");
  }
  auto& a = doc.GetAllocator();
  const std::string rewrapped_key = Hex(next.Wrap(*key, LegacyKeyBinding(id)));
  doc["wrapped_key"].SetString(rewrapped_key.c_str(), static_cast<rapidjson::SizeType>(rewrapped_key.size()), a);
  const std::string new_canonical = Canonical(doc);
  std::string mac;
  key->Encrypt("", ManifestMacAad(new_canonical), &mac);
  const std::string mac_hex = Hex(mac), sha = crypto::Sha256Hex(new_canonical);
  doc["manifest_mac"].SetString(mac_hex.c_str(), static_cast<rapidjson::SizeType>(mac_hex.size()), a);
  doc["manifest_sha256"].SetString(sha.c_str(), static_cast<rapidjson::SizeType>(sha.size()), a);
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  TV_RETURN_IF_ERROR(WriteFileAtomically(path, std::string(buf.GetString(), buf.GetSize()) + "\n"));
  *rewrapped = true;
  return Status::Ok();
}

ArchiveReader::ArchiveReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArchiveReader::~ArchiveReader() = default;

Result<std::unique_ptr<ArchiveReader>> ArchiveReader::Open(const std::string& dir, ArchiveKeyRing& ring) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("archive " + dir + " does not exist");
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  const std::string path = dir + "/" + kManifest;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Corruption("archive " + dir + ": manifest.json is missing");
    return Internal(Errno("opening", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Internal(Errno("stat of", path));
  if (static_cast<uint64_t>(st.st_size) > kMaxManifestBytes) {
    return Corruption("archive " + dir + ": manifest.json is too large (" + std::to_string(st.st_size) + " bytes)");
  }
  TV_ASSIGN_OR_RETURN(impl->manifest, ReadUpTo(fd.get(), static_cast<size_t>(st.st_size), path));
  TV_RETURN_IF_ERROR(impl->ParseManifest(ring));
  return std::unique_ptr<ArchiveReader>(new ArchiveReader(std::move(impl)));
}

const std::string& ArchiveReader::manifest_json() const { return impl_->manifest; }
const std::vector<ArchiveFileInfo>& ArchiveReader::files() const { return impl_->files; }

namespace {

// Splits a block's payload into records.
Status EmitRecords(std::string_view payload, const std::string& where, uint64_t* count, bool* stopped,
                   const std::function<bool(std::string_view)>& emit) {
  while (!payload.empty()) {
    if (payload.size() < 4) return Corruption(where + ": bad record length (a partial length prefix)");
    uint32_t len = GetU32(payload.data());
    payload.remove_prefix(4);
    if (len > payload.size()) {
      return Corruption(where + ": bad record length " + std::to_string(len) + " (only " +
                        std::to_string(payload.size()) + " bytes left in the block)");
    }
    ++*count;
    if (!emit(payload.substr(0, len))) {
      *stopped = true;
      return Status::Ok();
    }
    payload.remove_prefix(len);
  }
  return Status::Ok();
}

}  // namespace

Status ArchiveReader::Read(const std::string& file, const std::function<bool(std::string_view record)>& emit) const {
  return impl_->ReadFile(file, std::nullopt, emit);
}

Status ArchiveReader::ReadBlocks(const std::string& file, uint64_t first, uint64_t last,
                                 const std::function<bool(std::string_view record)>& emit) const {
  if (first > last)
    return InvalidArgument("archive " + impl_->id + ": block range " + std::to_string(first) + ".." +
                           std::to_string(last) + " is empty");
  return impl_->ReadFile(file, std::make_pair(first, last), emit);
}

Status ArchiveReader::CheckFiles() const {
  const Impl& s = *impl_;
  TV_RETURN_IF_ERROR(s.CheckListing());
  for (const auto& f : s.files) {
    // An empty range past every block: nothing is opened, everything hashed.
    TV_RETURN_IF_ERROR(
        s.ReadFile(f.name, std::make_pair(~uint64_t{0}, ~uint64_t{0}), [](std::string_view) { return true; }));
  }
  return Status::Ok();
}

Status ArchiveReader::Impl::ReadFile(const std::string& file, std::optional<std::pair<uint64_t, uint64_t>> range,
                                     const std::function<bool(std::string_view record)>& emit) const {
  auto info = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.name == file; });
  if (info == files.end()) return NotFound("archive " + id + " has no file " + file);
  const std::string where = Where(file);
  const std::string path = dir + "/" + file;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Corruption(where + ": missing (listed in the manifest)");
    return Internal(Errno("opening", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Internal(Errno("stat of", path));
  if (static_cast<uint64_t>(st.st_size) != info->bytes) {
    return Corruption(where + ": " + std::to_string(st.st_size) + " bytes on disk, the manifest says " +
                      std::to_string(info->bytes) +
                      (static_cast<uint64_t>(st.st_size) < info->bytes ? " (truncated)" : ""));
  }
  crypto::Sha256 sha;
  TV_ASSIGN_OR_RETURN(std::string magic, ReadUpTo(fd.get(), kMagic.size(), path));
  sha.Update(magic);
  if (magic != kMagic) return Corruption(where + ": bad file header (not an archive data file, or damaged)");
  DataKey block_key = key->Clone();
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
  std::string sealed, plain, payload;
  uint64_t records = 0;
  bool stopped = false;
  for (uint64_t block = 0;; ++block) {
    TV_ASSIGN_OR_RETURN(std::string header, ReadUpTo(fd.get(), 4, path));
    if (header.empty()) break;
    sha.Update(header);
    if (header.size() < 4)
      return Corruption(where + " block " + std::to_string(block) + ": truncated block (partial length)");
    uint32_t len = GetU32(header.data());
    if (len < crypto::kValueOverhead || len > kMaxBlockBytes) {
      return Corruption(where + " block " + std::to_string(block) + ": bad block length " + std::to_string(len));
    }
    TV_ASSIGN_OR_RETURN(sealed, ReadUpTo(fd.get(), len, path));
    sha.Update(sealed);
    if (sealed.size() < len) {
      return Corruption(where + " block " + std::to_string(block) + ": truncated block (" + std::to_string(len) +
                        " bytes expected, " + std::to_string(sealed.size()) + " left)");
    }
    // Blocks outside the range are hashed only.
    if (stopped || (range && (block < range->first || block > range->second))) continue;
    const std::string bwhere = where + " block " + std::to_string(block);
    if (Status d = block_key.Decrypt(sealed, BlockAad(id, file, block), &plain); !d.ok()) {
      return Corruption(bwhere +
                        ": authentication failed (the block was changed, reordered or moved from another "
                        "file or archive): " +
                        d.message());
    }
    unsigned long long size = ZSTD_getFrameContentSize(plain.data(), plain.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxBlockBytes) {
      return Corruption(bwhere + ": decompression error (no valid zstd frame size)");
    }
    payload.resize(size);
    size_t n = ZSTD_decompressDCtx(dctx.get(), payload.data(), payload.size(), plain.data(), plain.size());
    if (ZSTD_isError(n) || n != size) {
      return Corruption(bwhere + ": decompression error (" + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short") + ")");
    }
    TV_RETURN_IF_ERROR(EmitRecords(payload, bwhere, &records, &stopped, emit));
    if (stopped && !range) return Status::Ok();
  }
  if (!range && records != info->records) {
    return Corruption(where + ": " + std::to_string(records) + " records, the manifest says " +
                      std::to_string(info->records));
  }
  if (std::string got = sha.FinishHex(); got != info->sha256) {
    return Corruption(where + ": hash mismatch (SHA-256 " + got + ", the manifest says " + info->sha256 + ")");
  }
  return Status::Ok();
}

Status ArchiveReader::Impl::CheckListing() const {
  std::set<std::string> listed;
  for (const auto& f : files) listed.insert(f.name);
  std::error_code ec;
  std::set<std::string> present;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    present.insert(it->path().filename().string());
  }
  if (ec) return Internal("listing archive " + dir + ": " + ec.message());
  for (const auto& name : present) {
    if (name != kManifest && listed.count(name) == 0) {
      return Corruption("archive " + id + " (" + dir + "): unexpected file " + name + " (not in the manifest)");
    }
  }
  for (const auto& f : files) {
    if (present.count(f.name) == 0) return Corruption(Where(f.name) + ": missing (listed in the manifest)");
  }
  return Status::Ok();
}

Status ArchiveReader::Verify() const {
  const Impl& s = *impl_;
  TV_RETURN_IF_ERROR(s.CheckListing());
  for (const auto& f : s.files) {
    TV_RETURN_IF_ERROR(Read(f.name, [](std::string_view) { return true; }));
  }
  return Status::Ok();
}

}  // namespace timevault::replay
