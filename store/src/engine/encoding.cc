#include "engine/encoding.h"

#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>

#include <cassert>

namespace timevault::store::engine {

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xFF));
}

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

void PutT(std::string* out, std::string_view s) {
  assert(FitsT(s));
  PutU16(out, static_cast<uint16_t>(s.size()));
  out->append(s);
}

uint64_t DecodeU64(std::string_view eight) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(eight[i]);
  return v;
}

bool Reader::Bytes(size_t n, std::string_view* v) {
  if (s_.size() < n) {
    s_ = {};
    return false;
  }
  *v = s_.substr(0, n);
  s_.remove_prefix(n);
  return true;
}

bool Reader::U8(uint8_t* v) {
  std::string_view b;
  if (!Bytes(1, &b)) return false;
  *v = static_cast<uint8_t>(b[0]);
  return true;
}

bool Reader::U16(uint16_t* v) {
  std::string_view b;
  if (!Bytes(2, &b)) return false;
  *v = static_cast<uint16_t>((static_cast<uint8_t>(b[0]) << 8) | static_cast<uint8_t>(b[1]));
  return true;
}

bool Reader::U32(uint32_t* v) {
  std::string_view b;
  if (!Bytes(4, &b)) return false;
  *v = 0;
  for (char c : b) *v = (*v << 8) | static_cast<uint8_t>(c);
  return true;
}

bool Reader::U64(uint64_t* v) {
  std::string_view b;
  if (!Bytes(8, &b)) return false;
  *v = DecodeU64(b);
  return true;
}

bool Reader::T(std::string_view* v) {
  uint16_t n = 0;
  return U16(&n) && Bytes(n, v);
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(s.back());
    if (c != 0xFF) {
      ++c;
      return s;
    }
    s.pop_back();
  }
  return s;
}

std::string TenantPrefix(std::string_view tenant) {
  std::string k;
  PutT(&k, tenant);
  return k;
}

std::string TablePrefix(std::string_view tenant, std::string_view table) {
  std::string k = TenantPrefix(tenant);
  PutT(&k, table);
  return k;
}

std::string RowPrefix(std::string_view tenant, std::string_view table, std::string_view pk) {
  std::string k = TablePrefix(tenant, table);
  PutT(&k, pk);
  return k;
}

std::string VersionKey(std::string_view row_prefix, uint64_t change_lsn) {
  std::string k(row_prefix);
  PutU64(&k, ~change_lsn);
  return k;
}

std::optional<VersionKeyParts> ParseVersionKey(std::string_view key) {
  Reader r(key);
  VersionKeyParts p;
  uint64_t inv = 0;
  if (!r.T(&p.tenant) || !r.T(&p.table) || !r.T(&p.pk)) return std::nullopt;
  p.row_prefix_size = key.size() - r.rest().size();
  if (!r.U64(&inv) || !r.empty()) return std::nullopt;
  p.change_lsn = ~inv;
  return p;
}

std::string EncodeVersionValue(uint8_t flags, uint64_t xid, std::string_view ciphertext) {
  std::string v;
  v.reserve(9 + ciphertext.size());
  v.push_back(static_cast<char>(flags));
  PutU64(&v, xid);
  v.append(ciphertext);
  return v;
}

std::optional<VersionValue> ParseVersionValue(std::string_view value) {
  Reader r(value);
  VersionValue v;
  if (!r.U8(&v.flags) || !r.U64(&v.xid)) return std::nullopt;
  v.ciphertext = r.rest();
  return v;
}

std::string EncodeCurrent(uint64_t change_lsn, std::string_view version_value) {
  std::string v;
  v.reserve(8 + version_value.size());
  PutU64(&v, change_lsn);
  v += version_value;
  return v;
}

std::optional<CurrentValue> ParseCurrent(std::string_view value) {
  Reader r(value);
  CurrentValue c;
  if (!r.U64(&c.change_lsn) || r.rest().size() < 9) return std::nullopt;
  c.version_value = r.rest();
  return c;
}

std::string TxnKey(uint64_t xid, uint64_t commit_lsn) {
  std::string k;
  PutU64(&k, xid);
  PutU64(&k, commit_lsn);
  return k;
}

std::string EncodeTxnValue(const TxnValue& v) {
  std::string s;
  PutU64(&s, static_cast<uint64_t>(v.commit_time_us));
  PutU64(&s, static_cast<uint64_t>(v.expected));
  PutU64(&s, static_cast<uint64_t>(v.stored));
  s.push_back(static_cast<char>(v.flags));
  return s;
}

std::optional<TxnValue> ParseTxnValue(std::string_view value) {
  Reader r(value);
  uint64_t t = 0, e = 0, s = 0;
  TxnValue v;
  if (!r.U64(&t) || !r.U64(&e) || !r.U64(&s) || !r.U8(&v.flags)) return std::nullopt;
  v.commit_time_us = static_cast<int64_t>(t);
  v.expected = static_cast<int64_t>(e);
  v.stored = static_cast<int64_t>(s);
  return v;
}

std::string PendingKey(uint64_t xid, const EntryId& id) {
  std::string k;
  PutU64(&k, xid);
  PutU64(&k, id.change_lsn);
  PutT(&k, id.tenant);
  PutT(&k, id.table);
  PutT(&k, id.pk);
  return k;
}

std::optional<PendingKeyParts> ParsePendingKey(std::string_view key) {
  Reader r(key);
  PendingKeyParts p;
  std::string_view tenant, table, pk;
  if (!r.U64(&p.xid) || !r.U64(&p.id.change_lsn) || !r.T(&tenant) || !r.T(&table) || !r.T(&pk) || !r.empty())
    return std::nullopt;
  p.id.tenant = tenant;
  p.id.table = table;
  p.id.pk = pk;
  return p;
}

std::string LogKey(uint64_t commit_lsn, const EntryId& id) {
  std::string k = TenantPrefix(id.tenant);
  PutU64(&k, commit_lsn);
  PutU64(&k, id.change_lsn);
  PutT(&k, id.table);
  PutT(&k, id.pk);
  return k;
}

std::optional<LogKeyParts> ParseLogKey(std::string_view key) {
  Reader r(key);
  LogKeyParts p;
  if (!r.T(&p.tenant) || !r.U64(&p.commit_lsn) || !r.U64(&p.change_lsn) || !r.T(&p.table) || !r.T(&p.pk) || !r.empty())
    return std::nullopt;
  return p;
}

std::string CommitKey(int64_t time_us, uint64_t commit_lsn) {
  std::string k;
  PutU64(&k, static_cast<uint64_t>(time_us));
  PutU64(&k, commit_lsn);
  return k;
}

std::string EncodeCommitValue(uint64_t xid, int64_t event_count) {
  std::string v;
  PutU64(&v, xid);
  PutU64(&v, static_cast<uint64_t>(event_count));
  return v;
}

std::string TruncatePrefix(std::string_view table) { return TenantPrefix(table); }

std::string TruncateKey(std::string_view table, uint64_t change_lsn) {
  std::string k = TruncatePrefix(table);
  PutU64(&k, ~change_lsn);
  return k;
}

std::string DeadLetterKey(std::string_view topic, int32_t partition, int64_t offset) {
  std::string k = TenantPrefix(topic);
  PutU32(&k, static_cast<uint32_t>(partition));
  PutU64(&k, static_cast<uint64_t>(offset));
  return k;
}

std::string RowTenantPrefix(std::string_view table, std::string_view pk) {
  std::string k = TenantPrefix(table);
  PutT(&k, pk);
  return k;
}

std::string RowTenantKey(std::string_view table, std::string_view pk, uint64_t change_lsn) {
  std::string k = RowTenantPrefix(table, pk);
  PutU64(&k, ~change_lsn);
  return k;
}

std::string EncodeRowTenant(uint8_t flags, uint64_t xid, std::string_view tenant) {
  std::string v(1, static_cast<char>(flags));
  PutU64(&v, xid);
  v.append(tenant);
  return v;
}

std::optional<RowTenantEntry> ParseRowTenant(std::string_view key, size_t prefix_size, std::string_view value) {
  if (key.size() != prefix_size + 8) return std::nullopt;
  Reader r(value);
  RowTenantEntry e;
  e.change_lsn = ~DecodeU64(key.substr(prefix_size));
  if (!r.U8(&e.flags) || !r.U64(&e.xid)) return std::nullopt;
  e.tenant = r.rest();
  return e;
}

std::string OffsetKey(std::string_view topic, int32_t partition) {
  std::string k(kMetaOffsetPrefix);
  k.append(topic).append("/").append(std::to_string(partition));
  return k;
}

namespace {

// Length of the first `fields` T() fields of `key`, or 0 if it is shorter.
size_t LeadingTFields(const rocksdb::Slice& key, int fields) {
  size_t pos = 0;
  for (int i = 0; i < fields; ++i) {
    if (key.size() < pos + 2) return 0;
    size_t n = (static_cast<uint8_t>(key[pos]) << 8) | static_cast<uint8_t>(key[pos + 1]);
    pos += 2 + n;
    if (key.size() < pos) return 0;
  }
  return pos;
}

class LeadingFieldsExtractor final : public rocksdb::SliceTransform {
 public:
  LeadingFieldsExtractor(int fields, const char* name) : fields_(fields), name_(name) {}
  const char* Name() const override { return name_; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), LeadingTFields(key, fields_));
  }
  bool InDomain(const rocksdb::Slice& key) const override { return LeadingTFields(key, fields_) > 0; }

 private:
  int fields_;
  const char* name_;
};

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> NewTenantTablePrefixExtractor() {
  return std::make_shared<LeadingFieldsExtractor>(2, "timevault.TenantTable");
}

std::shared_ptr<const rocksdb::SliceTransform> NewRowPrefixExtractor() {
  return std::make_shared<LeadingFieldsExtractor>(2, "timevault.TablePk");
}

std::shared_ptr<const rocksdb::SliceTransform> NewTenantPrefixExtractor() {
  return std::make_shared<LeadingFieldsExtractor>(1, "timevault.Tenant");
}

std::string EncodeSpliced(uint32_t offset, std::string_view packed_rest) {
  std::string out;
  out.reserve(4 + packed_rest.size());
  PutU32(&out, offset);
  out.append(packed_rest);
  return out;
}

std::optional<Spliced> ParseSpliced(std::string_view plaintext) {
  Reader r(plaintext);
  Spliced s;
  if (!r.U32(&s.offset)) return std::nullopt;
  s.rest = r.rest();
  return s;
}

bool Unsplice(std::string_view rest, uint32_t offset, std::string_view row, std::string* envelope) {
  if (offset > rest.size()) return false;
  envelope->clear();
  envelope->reserve(rest.size() + row.size());
  envelope->append(rest.substr(0, offset));
  envelope->append(row);
  envelope->append(rest.substr(offset));
  return true;
}

}  // namespace timevault::store::engine
