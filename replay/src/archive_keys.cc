// Archive key rings (archive_keys.h; docs/replay.md "Archive keys").
//
// <dir>/keyring.json:
//   {"format": 1,
//    "master_check": hex HMAC-SHA256(DeriveKey("archive-keyring/v1"), kCheckText),
//    "keys": {"<tenant>": ["<hex MasterKey::Wrap(key, binding(tenant))>", ...], ...}}
// A tenant's keys oldest first; the last encrypts new archives.
#include "timevault/replay/archive_keys.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "hex.h"
#include "timevault/core/file.h"
#include "timevault/replay/archive.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;

constexpr int kRingFormat = 1;
constexpr std::string_view kCheckText = "timevault archive key ring";
constexpr size_t kMaxRingBytes = size_t{16} << 20;

std::string Binding(const std::string& tenant) {
  std::string b("timevault/archive-key\0", 22);
  b += tenant;
  return b;
}

std::string MasterCheck(const crypto::MasterKey& master) {
  return crypto::HmacSha256Hex(master.DeriveKey("archive-keyring/v1"), kCheckText);
}

uint32_t NewKeyId() {
  std::random_device rd;
  uint32_t id = 0;
  while (id == 0) id = rd();
  return id;
}

// An exclusive flock on <dir>/keyring.lock for as long as it lives.
class RingLock {
 public:
  static Result<RingLock> Take(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("creating " + dir + ": " + ec.message());
    const std::string path = dir + "/keyring.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Internal("opening " + path + ": " + std::strerror(errno));
    RingLock lock(fd);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) return Internal("locking " + path + ": " + std::strerror(errno));
    }
    return lock;
  }
  RingLock(RingLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RingLock(const RingLock&) = delete;
  RingLock& operator=(const RingLock&) = delete;
  RingLock& operator=(RingLock&&) = delete;
  ~RingLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit RingLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

struct ArchiveKeyRing::Ring {
  std::string master_check;                                 // empty: no file yet
  std::map<std::string, std::vector<std::string>> wrapped;  // tenant -> wrapped keys, oldest first
};

ArchiveKeyRing::ArchiveKeyRing(std::string dir, crypto::MasterKey master)
    : dir_(std::move(dir)), master_(std::move(master)) {}

Result<ArchiveKeyRing::Ring> ArchiveKeyRing::Read() const {
  const std::string path = dir_ + "/" + kFileName;
  const std::string where = "archive key ring " + path + ": ";
  Ring ring;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return ring;
    return Internal(where + "cannot be read: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  if (json.size() > kMaxRingBytes) return Corruption(where + "too large (" + std::to_string(json.size()) + " bytes)");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Corruption(where + "not a JSON object");
  auto format = doc.FindMember("format");
  if (format == doc.MemberEnd() || !format->value.IsInt() || format->value.GetInt() != kRingFormat) {
    return FailedPrecondition(where + "unsupported format (this timevault reads format " + std::to_string(kRingFormat) +
                              ")");
  }
  auto check = doc.FindMember("master_check");
  auto keys = doc.FindMember("keys");
  if (check == doc.MemberEnd() || !check->value.IsString() || keys == doc.MemberEnd() || !keys->value.IsObject()) {
    return Corruption(where + "lacks master_check or keys");
  }
  ring.master_check.assign(check->value.GetString(), check->value.GetStringLength());
  for (const auto& m : keys->value.GetObject()) {
    std::string tenant(m.name.GetString(), m.name.GetStringLength());
    if (!m.value.IsArray() || m.value.Empty())
      return Corruption(where + "the keys of tenant " + tenant + " are damaged");
    auto& list = ring.wrapped[tenant];
    for (const auto& k : m.value.GetArray()) {
      auto bytes = k.IsString() ? Unhex(std::string_view(k.GetString(), k.GetStringLength())) : std::nullopt;
      if (!bytes || bytes->size() != crypto::MasterKey::kWrappedKeyBytes) {
        return Corruption(where + "a key of tenant " + tenant + " is damaged");
      }
      list.push_back(std::move(*bytes));
    }
  }
  return ring;
}

Status ArchiveKeyRing::Write(const Ring& ring) const {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("format");
  w.Int(kRingFormat);
  w.Key("master_check");
  w.String(ring.master_check.c_str(), static_cast<rapidjson::SizeType>(ring.master_check.size()));
  w.Key("keys");
  w.StartObject();
  for (const auto& [tenant, list] : ring.wrapped) {
    w.Key(tenant.c_str(), static_cast<rapidjson::SizeType>(tenant.size()));
    w.StartArray();
    for (const auto& k : list) w.String(Hex(k).c_str());
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return WriteFileAtomically(dir_ + "/" + kFileName, std::string(buf.GetString(), buf.GetSize()) + "\n");
}

namespace {

Status CheckMaster(const std::string& dir, const std::string& stored, const std::string& mine) {
  if (stored.empty() || stored == mine) return Status::Ok();
  return FailedPrecondition("the archive key ring in " + dir +
                            " is wrapped under another master key than store.key_file (rotated by `timevault store "
                            "rekey` since this process started?): restart with the current key file");
}

}  // namespace

Result<crypto::DataKey> ArchiveKeyRing::KeyForWrite(const std::string& tenant) {
  std::lock_guard guard(mu_);
  TV_ASSIGN_OR_RETURN(RingLock lock, RingLock::Take(dir_));
  TV_ASSIGN_OR_RETURN(Ring ring, Read());
  const std::string mine = MasterCheck(master_);
  TV_RETURN_IF_ERROR(CheckMaster(dir_, ring.master_check, mine));
  if (auto it = ring.wrapped.find(tenant); it != ring.wrapped.end()) {
    auto key = master_.Unwrap(it->second.back(), Binding(tenant));
    if (!key.ok()) {
      return Corruption("the archive key ring in " + dir_ + ": the newest key of tenant " + tenant +
                        " does not unwrap for that tenant: damaged, or moved from another tenant's entry");
    }
    return std::move(key).value();
  }
  crypto::DataKey key = crypto::DataKey::Generate(NewKeyId());
  ring.master_check = mine;
  ring.wrapped[tenant].push_back(master_.Wrap(key, Binding(tenant)));
  TV_RETURN_IF_ERROR(Write(ring));
  return key;
}

Result<crypto::DataKey> ArchiveKeyRing::KeyForRead(const std::string& tenant, uint32_t id) {
  TV_ASSIGN_OR_RETURN(Ring ring, Read());
  TV_RETURN_IF_ERROR(CheckMaster(dir_, ring.master_check, MasterCheck(master_)));
  auto it = ring.wrapped.find(tenant);
  if (it != ring.wrapped.end()) {
    for (const auto& w : it->second) {
      auto key = master_.Unwrap(w, Binding(tenant));
      if (!key.ok()) {
        return Corruption("the archive key ring in " + dir_ + ": a key of tenant " + tenant +
                          " does not unwrap for that tenant: damaged, or moved from another tenant's entry");
      }
      if (key->id() == id) return std::move(key).value();
    }
  }
  return FailedPrecondition("archive key " + std::to_string(id) + " of tenant " + tenant +
                            " is not in the key ring of " + dir_ +
                            ": the tenant was shredded (its archives are unreadable for good), or the archive was "
                            "copied here from another directory");
}

Result<size_t> ArchiveKeyRing::Rewrap(const crypto::MasterKey& next) {
  std::lock_guard guard(mu_);
  TV_ASSIGN_OR_RETURN(RingLock lock, RingLock::Take(dir_));
  TV_ASSIGN_OR_RETURN(Ring ring, Read());
  if (ring.wrapped.empty()) return size_t{0};
  if (!ring.master_check.empty() && ring.master_check != MasterCheck(master_) &&
      ring.master_check != MasterCheck(next)) {
    return FailedPrecondition("the archive key ring in " + dir_ +
                              " is wrapped under neither store.key_file nor the new master key");
  }
  size_t n = 0;
  for (auto& [tenant, list] : ring.wrapped) {
    for (auto& w : list) {
      auto key = master_.Unwrap(w, Binding(tenant));
      if (!key.ok()) {
        if (next.Unwrap(w, Binding(tenant)).ok()) continue;  // rewrapped by an earlier run
        return Corruption("the archive key ring in " + dir_ + ": a key of tenant " + tenant +
                          " unwraps under neither the current nor the new master key");
      }
      w = next.Wrap(*key, Binding(tenant));
      ++n;
    }
  }
  ring.master_check = MasterCheck(next);
  TV_RETURN_IF_ERROR(Write(ring));
  return n;
}

Result<size_t> ArchiveKeyRing::Shred(const std::string& tenant) {
  std::lock_guard guard(mu_);
  TV_ASSIGN_OR_RETURN(RingLock lock, RingLock::Take(dir_));
  TV_ASSIGN_OR_RETURN(Ring ring, Read());
  auto it = ring.wrapped.find(tenant);
  if (it == ring.wrapped.end()) return size_t{0};
  const size_t n = it->second.size();
  ring.wrapped.erase(it);
  TV_RETURN_IF_ERROR(Write(ring));
  return n;
}

// ---- shredding and rekeying every archive directory ----------------------------

namespace {

// The archive directories in `dir` (finished ones: a manifest, not a
// temporary or doomed name), with their manifests' "tenant" and "key_tenant".
struct ArchiveDir {
  std::string name, tenant, key_tenant;
};

Result<std::vector<ArchiveDir>> ListArchives(const std::string& dir) {
  std::vector<ArchiveDir> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_directory() || name.starts_with(".") || name.find(".tmp-") != std::string::npos ||
        name.find(".deleting-") != std::string::npos) {
      continue;
    }
    std::ifstream in(it->path() / "manifest.json", std::ios::binary);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    const std::string json = text.str();
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str(), json.size());
    if (doc.HasParseError() || !doc.IsObject()) continue;
    auto str = [&doc](const char* field) {
      auto m = doc.FindMember(field);
      return m != doc.MemberEnd() && m->value.IsString() ? std::string(m->value.GetString(), m->value.GetStringLength())
                                                         : std::string();
    };
    out.push_back(ArchiveDir{name, str("tenant"), str("key_tenant")});
  }
  if (ec) return Internal("listing " + dir + ": " + ec.message());
  return out;
}

// Renamed first, so a crash mid-removal never leaves a half archive under its name.
Status RemoveArchive(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  const std::string doomed = path + ".deleting-" + std::to_string(std::random_device{}());
  std::error_code ec;
  fs::rename(path, doomed, ec);
  if (ec) return Internal("removing " + path + ": " + ec.message());
  fs::remove_all(doomed, ec);
  if (ec) return Internal("removing " + doomed + ": " + ec.message());
  return Status::Ok();
}

// Deletes the tenant's archives in `dir`, then its keys. Returns the keys
// destroyed; the deleted archives and the all-tenant ones go to the lists.
Result<size_t> ShredDir(const std::string& dir, const std::string& tenant, const std::string& key_file,
                        std::vector<std::string>* deleted, std::vector<std::string>* shared) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return size_t{0};
  TV_ASSIGN_OR_RETURN(auto archives, ListArchives(dir));
  for (const auto& a : archives) {
    if (a.tenant == tenant || a.key_tenant == tenant) {
      TV_RETURN_IF_ERROR(RemoveArchive(dir, a.name));
      deleted->push_back(a.name);
    } else if (a.tenant == "*" && shared != nullptr) {
      shared->push_back(a.name);
    }
  }
  TV_ASSIGN_OR_RETURN(auto master, crypto::MasterKey::Load(key_file));
  ArchiveKeyRing ring(dir, std::move(master));
  return ring.Shred(tenant);
}

}  // namespace

Result<ArchiveShredReport> ShredArchives(const config::Config& cfg, const std::string& tenant) {
  if (tenant.empty() || tenant == "*") return InvalidArgument("shredding needs one tenant, not '" + tenant + "'");
  ArchiveShredReport r;
  TV_ASSIGN_OR_RETURN(r.backup_keys,
                      ShredDir(cfg.replay.backup_dir, tenant, cfg.store.key_file, &r.backups, &r.shared_backups));
  // PITR previews keep a row sample next to their plan, under the snapshots' ring.
  const std::string plans = cfg.replay.snapshot_dir + "/.plans";
  TV_ASSIGN_OR_RETURN(auto samples, ListArchives(plans));
  for (const auto& a : samples) {
    if (a.key_tenant != tenant) continue;
    TV_RETURN_IF_ERROR(RemoveArchive(plans, a.name));
    r.samples.push_back(a.name);
  }
  TV_ASSIGN_OR_RETURN(r.snapshot_keys,
                      ShredDir(cfg.replay.snapshot_dir, tenant, cfg.store.key_file, &r.snapshots, nullptr));
  return r;
}

Result<ArchiveRekeyReport> RewrapArchives(const config::Config& cfg, const std::string& new_key_file) {
  ArchiveRekeyReport r;
  struct Dir {
    const std::string& path;
    size_t* keys;
    size_t* legacy;
  };
  for (const Dir& d : {Dir{cfg.replay.backup_dir, &r.backup_keys, &r.legacy_backups},
                       Dir{cfg.replay.snapshot_dir, &r.snapshot_keys, &r.legacy_snapshots}}) {
    std::error_code ec;
    if (!fs::is_directory(d.path, ec)) continue;
    TV_ASSIGN_OR_RETURN(auto current, crypto::MasterKey::Load(cfg.store.key_file));
    TV_ASSIGN_OR_RETURN(auto next, crypto::MasterKey::Load(new_key_file));
    TV_ASSIGN_OR_RETURN(auto archives, ListArchives(d.path));
    for (const auto& a : archives) {
      bool rewrapped = false;
      TV_RETURN_IF_ERROR(RewrapLegacyArchive(d.path + "/" + a.name, current, next, &rewrapped));
      if (rewrapped) ++*d.legacy;
    }
    ArchiveKeyRing ring(d.path, std::move(current));
    TV_ASSIGN_OR_RETURN(*d.keys, ring.Rewrap(next));
  }
  return r;
}

}  // namespace timevault::replay
