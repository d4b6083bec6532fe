// Archive key rings (docs/replay.md "Archive keys"): the per-tenant keys
// backups and snapshots are encrypted with, kept wrapped under the master key
// in one small file beside the archives (<dir>/keyring.json, mode 0600).
//
// An archive of tenant T (archive format 2) is encrypted under T's current
// archive key and names it in its manifest (key_tenant, key_id); the key is
// only in the ring. So rotating the master key (`store rekey`) rewrites the
// ring, never the archives; and shredding T deletes T's keys from the ring,
// after which every archive of T — and every copy of one — is unreadable
// (unless a copy of the ring made before the shred is kept with the master
// key). Ring entries are wrapped bound to "timevault/archive-key" NUL tenant,
// so an entry moved to another tenant does not unwrap; the ring records a
// check value of the master key that wrapped it, so a process still holding
// the old master key after a rekey is told so instead of adding keys no one
// can read.
//
// Thread-safety: every method may be called from any thread. Across
// processes, changes are serialized by an flock on <dir>/keyring.lock and
// each change re-reads the file under it; readers re-read the file when it
// changed on disk. Lifetime: independent of the archives it serves.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "timevault/config/config.h"
#include "timevault/core/crypto.h"
#include "timevault/core/status.h"

namespace timevault::replay {

class ArchiveKeyRing {
 public:
  static constexpr const char* kFileName = "keyring.json";

  // The ring of the archive directory `dir` (its file need not exist yet).
  ArchiveKeyRing(std::string dir, crypto::MasterKey master);
  ArchiveKeyRing(const ArchiveKeyRing&) = delete;
  ArchiveKeyRing& operator=(const ArchiveKeyRing&) = delete;

  const std::string& dir() const { return dir_; }
  // Format-1 archives (written before rings) carry their own key wrapped
  // under the master key.
  const crypto::MasterKey& master() const { return master_; }

  // The key a new archive of `tenant` is encrypted with: the tenant's newest,
  // created (the ring rewritten and fsynced) if it has none.
  Result<crypto::DataKey> KeyForWrite(const std::string& tenant);

  // Key `id` of `tenant`. FailedPrecondition if the ring has no such key
  // (the tenant was shredded, or the archive was moved here from another
  // directory) or was wrapped under another master key.
  Result<crypto::DataKey> KeyForRead(const std::string& tenant, uint32_t id);

  // Wraps every key anew under `next`: one atomic replacement of the file.
  // Entries already wrapped under `next` are kept (a rekey run again after a
  // crash). Returns the number of keys. This ring keeps the old master key:
  // open a new one to use the ring afterwards.
  Result<size_t> Rewrap(const crypto::MasterKey& next);

  // Deletes every key of `tenant` (crypto-shredding its archives): one
  // atomic replacement of the file. Returns how many keys went (0: none).
  Result<size_t> Shred(const std::string& tenant);

 private:
  struct Ring;
  Result<Ring> Read() const;
  Status Write(const Ring& ring) const;

  const std::string dir_;
  const crypto::MasterKey master_;
  std::mutex mu_;  // serializes this process's changes (flock does across processes)
};

// What shredding a tenant did to the archives (`store shred`).
struct ArchiveShredReport {
  size_t backup_keys = 0, snapshot_keys = 0;    // ring keys destroyed
  std::vector<std::string> backups, snapshots;  // the tenant's archives deleted
  std::vector<std::string> samples;             // PITR preview row samples deleted
  std::vector<std::string> shared_backups;      // all-tenant ("*") backups, unchanged (docs: known limit)
};

// Shreds `tenant` in replay.backup_dir and replay.snapshot_dir: deletes its
// archives (found by their plaintext manifests: no key needed) and then its
// ring keys, so copies of its archives made before are unreadable too.
Result<ArchiveShredReport> ShredArchives(const config::Config& cfg, const std::string& tenant);

// What a master-key rotation did to the archives (`store rekey`).
struct ArchiveRekeyReport {
  size_t backup_keys = 0, snapshot_keys = 0;        // ring keys rewrapped
  size_t legacy_backups = 0, legacy_snapshots = 0;  // format-1 manifests rewritten
};

// Rewraps the rings of replay.backup_dir and replay.snapshot_dir from
// store.key_file to the master key in `new_key_file`, and the own key of
// every format-1 archive there (its manifest rewritten atomically; its data
// files unchanged). Idempotent: what is under the new key already is left.
Result<ArchiveRekeyReport> RewrapArchives(const config::Config& cfg, const std::string& new_key_file);

}  // namespace timevault::replay
