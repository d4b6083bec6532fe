// Archives: the portable, encrypted, checksummed container that backups and
// snapshots are written in (docs/replay.md "Archive format").
//
// An archive is a directory holding manifest.json and data files. A data file
// is a sequence of blocks; a block holds up to about 1 MiB of records,
// zstd-compressed, then AES-256-GCM-encrypted under the current archive key
// of the archive's tenant, kept in the directory's key ring
// (archive_keys.h) and named in the manifest (format 2; format-1 archives,
// written before rings, carry their own key wrapped by the master key). Each block's AAD
// binds it to the archive id, the file name and its index, so blocks cannot
// be swapped, reordered or moved between files or archives unnoticed. The
// manifest lists every file with its record count, size and SHA-256, and
// carries its own hash (manifest_sha256) over its canonical form.
//
// Records are opaque byte strings; backups and snapshots define what they
// hold.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "timevault/core/crypto.h"
#include "timevault/core/status.h"
#include "timevault/replay/archive_keys.h"

namespace timevault::replay {

struct ArchiveFileInfo {
  std::string name;      // a plain file name inside the archive directory
  uint64_t records = 0;  // records written to it
  uint64_t bytes = 0;    // its size on disk
  std::string sha256;    // hex SHA-256 of its bytes on disk
};

class ArchiveWriter {
 public:
  // Starts writing the archive `id` whose final directory is `dir` (which
  // must not exist; its parent must). Data goes to a temporary sibling that
  // Finish renames into place, so a crash never leaves a half archive under
  // the final name.
  // It is encrypted under the current key of `key_tenant` in `ring` (the
  // archive's tenant, or "*" for an all-tenant backup), created if the
  // tenant has none. With `threads` > 1, closed blocks are compressed and
  // encrypted on that many threads (at most two blocks each in flight) and
  // written in order; the archive is the same.
  static Result<std::unique_ptr<ArchiveWriter>> Create(const std::string& dir, const std::string& id,
                                                       ArchiveKeyRing& ring, const std::string& key_tenant,
                                                       size_t threads = 1);
  ~ArchiveWriter();  // without Finish: removes the temporary directory

  // Appends one record to data file `file` ([A-Za-z0-9._-]+, not
  // "manifest.json"), creating the file on first use.
  Status Add(const std::string& file, std::string_view record);

  // The index of the block that holds the record last added to `file` (0
  // before any): callers that add related records together (a tenant's rows
  // of a table in an all-tenant backup) note the range of blocks they span,
  // so a reader can open only those (ArchiveReader::ReadBlocks).
  uint64_t LastBlock(const std::string& file) const;

  // Seals the archive: flushes every file, writes manifest.json — the fields
  // of `meta_json` (a JSON object the caller fills: kind, tenant, lsn, ...)
  // plus "id", "format", "created_at", "key_tenant", "key_id", "files" and
  // "manifest_sha256" — fsyncs, and renames the directory into place.
  Result<std::vector<ArchiveFileInfo>> Finish(const std::string& meta_json);

 private:
  struct Impl;
  explicit ArchiveWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ArchiveReader {
 public:
  // Opens the archive in `dir`: parses manifest.json, checks its hash, and
  // takes its key from `ring` (format 1: unwraps its own with the ring's
  // master key). Errors name the archive and the problem: NotFound (no such
  // archive), Corruption (manifest unreadable, its hash or MAC wrong),
  // FailedPrecondition (its key is not in the ring — the tenant was
  // shredded — or the master key is not the one it was written with).
  static Result<std::unique_ptr<ArchiveReader>> Open(const std::string& dir, ArchiveKeyRing& ring);
  ~ArchiveReader();

  // The manifest (JSON text, as on disk) and its files.
  const std::string& manifest_json() const;
  const std::vector<ArchiveFileInfo>& files() const;

  // Streams the records of `file` in the order they were added. Every block
  // is authenticated before its records are emitted; at the end the file's
  // size and SHA-256 are checked. Corruption naming the file (and block) on any
  // problem. `emit` returns false to stop early.
  Status Read(const std::string& file, const std::function<bool(std::string_view record)>& emit) const;

  // Like Read, but authenticates, decompresses and emits only the blocks
  // first..last (inclusive) of `file`; the bytes of every other block are
  // still read and hashed, so the file's size and SHA-256 are checked as in
  // Read (its record count is not: skipped blocks are not opened).
  Status ReadBlocks(const std::string& file, uint64_t first, uint64_t last,
                    const std::function<bool(std::string_view record)>& emit) const;

  // Checks the files without opening any block: every listed file present,
  // no unlisted one, and each file's size and SHA-256 as the manifest says.
  // Together with the per-block authentication of what is then read, this
  // is what a load needs; Verify opens every block as well.
  Status CheckFiles() const;

  // Reads every file completely (hash, authentication and decompression of
  // every block) and reports the first problem precisely: the file, the block
  // and what is wrong. A file on disk that the manifest does not list, or a
  // listed one that is missing, is a problem too.
  Status Verify() const;

 private:
  struct Impl;
  explicit ArchiveReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A format-1 archive in `dir`: its own key, wrapped under `current`, is
// wrapped again under `next` (bound to the archive id) and its manifest
// rewritten atomically with a new MAC and hash; the data files are not
// touched. Sets *rewrapped; a format-2 archive, or one already under `next`,
// is left alone.
Status RewrapLegacyArchive(const std::string& dir, const crypto::MasterKey& current, const crypto::MasterKey& next,
                           bool* rewrapped);

}  // namespace timevault::replay
