// ReadContext: one read call's RocksDB snapshot and the visibility rule
// (docs/store.md, "Visibility"), shared by reads.cc and retention.cc.
// One per call and thread; not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/impl.h"

namespace timevault::store::engine {

// A stored version chosen by the visibility walk.
struct Candidate {
  std::string key, value;
  uint64_t change_lsn = 0;
};

// One read call: a snapshot, its read options and the commit lookups.
class ReadContext {
 public:
  explicit ReadContext(StoreImpl* s) : s_(s), refresh_lock_(s->refresh_mu), snap_(s->db.get(), s->options.read_only) {
    ro_.snapshot = snap_.get();
    ro_.total_order_seek = true;
  }

  const rocksdb::Snapshot* snapshot() const { return snap_.get(); }
  const rocksdb::ReadOptions& read_options() const { return ro_; }
  rocksdb::Iterator* NewIterator(rocksdb::ColumnFamilyHandle* cf, bool prefix_mode) {
    rocksdb::ReadOptions ro = ro_;
    if (prefix_mode) {
      ro.total_order_seek = false;
      ro.prefix_same_as_start = true;
    }
    return s_->db->NewIterator(ro, cf);
  }

  // The commit LSN of the transaction `xid` holding a change at `change_lsn`
  // (nullopt: its END is not stored).
  // The last answer is remembered: a seek from (xid, lo) found (xid, commit),
  // so no entry of xid lies in between and any change LSN in [lo, commit]
  // has the same answer (rows of one transaction follow each other).
  std::optional<uint64_t> CommitOf(uint64_t xid, uint64_t change_lsn) {
    if (last_ && last_->xid == xid && last_->lo <= change_lsn && change_lsn <= last_->commit) return last_->commit;
    if (!txns_) txns_.reset(NewIterator(s_->txns, false));
    txns_->Seek(TxnKey(xid, change_lsn));
    if (txns_->Valid() && txns_->key().size() == 16 && DecodeU64(txns_->key().ToStringView()) == xid) {
      const uint64_t commit = DecodeU64(txns_->key().ToStringView().substr(8));
      last_ = LastCommit{xid, change_lsn, commit};
      return commit;
    }
    Check(*txns_);
    return std::nullopt;
  }

  // The first iterator error met by the lookups above (they read on, so the
  // caller checks it before trusting a result).
  const Status& status() const { return status_; }
  void Check(const rocksdb::Iterator& it) {
    if (status_.ok() && !it.status().ok()) status_ = Internal(RocksError("read", it.status()));
  }

  // The change LSN of the newest truncate of `table` committed at or before
  // `point` (0: none): versions older than it are hidden.
  uint64_t VisibleTruncate(const std::string& table, uint64_t point) {
    std::unique_ptr<rocksdb::Iterator> it(NewIterator(s_->truncates, false));
    const std::string prefix = TruncatePrefix(table);
    for (it->Seek(TruncateKey(table, point)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const uint64_t lsn = ~DecodeU64(it->key().ToStringView().substr(prefix.size()));
      if (it->value().size() != 8) continue;
      const uint64_t xid = DecodeU64(it->value().ToStringView());
      if (xid == kNoTransaction) return lsn;
      auto commit = CommitOf(xid, lsn);
      if (commit && *commit <= point) return lsn;
    }
    Check(*it);
    return 0;
  }

  // The row version visible at `point`, the iterator standing on the row's
  // newest version with change LSN <= point. Streamed versions are in commit
  // order (row locks); a snapshot version is visible from its LSN but is
  // older than a streamed version committed after that LSN even when that
  // version's change LSN is smaller (a transaction in flight at the snapshot).
  std::optional<Candidate> Choose(rocksdb::Iterator* it, std::string_view row_prefix, uint64_t point) {
    std::optional<Candidate> snap;
    for (; it->Valid() && it->key().starts_with(row_prefix); it->Next()) {
      s_->read_steps.fetch_add(1, std::memory_order_relaxed);
      auto k = ParseVersionKey(it->key().ToStringView());
      auto v = ParseVersionValue(it->value().ToStringView());
      if (!k || !v) continue;
      Candidate c{it->key().ToString(), it->value().ToString(), k->change_lsn};
      if (v->flags & kVersionSnapshot) {
        if (snap) return snap;
        snap = std::move(c);
        continue;
      }
      uint64_t commit = 0;
      if (!(v->flags & kVersionSettled)) {
        auto found = CommitOf(v->xid, k->change_lsn);
        if (!found || *found > point) continue;  // not committed at `point`
        commit = *found;
      }
      if (snap && commit <= snap->change_lsn) return snap;
      return c;
    }
    return snap;
  }

 private:
  StoreImpl* s_;
  std::shared_lock<std::shared_mutex> refresh_lock_;
  ScopedSnapshot snap_;
  rocksdb::ReadOptions ro_;
  std::unique_ptr<rocksdb::Iterator> txns_;
  struct LastCommit {
    uint64_t xid, lo, commit;
  };
  std::optional<LastCommit> last_;
  Status status_;
};

}  // namespace timevault::store::engine
