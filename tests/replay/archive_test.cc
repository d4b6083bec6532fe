// ArchiveWriter / ArchiveReader: round trips across blocks and files, and
// every kind of damage (flipped bytes anywhere, truncation, extra and missing
// files, files from another archive, a wrong master key) reported precisely,
// never a crash and never wrong data.
#include "timevault/replay/archive.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "support/legacy_format.h"
#include "support/process.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;

std::string KeyBytes(uint8_t seed) {
  std::string bytes(32, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(seed * 7 + i * 13 + 1);
  return bytes;
}

void WriteKey(const std::string& path, uint8_t seed) {
  const std::string bytes = KeyBytes(seed);
  std::ofstream(path, std::ios::binary) << bytes;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

using Records = std::map<std::string, std::vector<std::string>>;

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteKey(dir_.path() + "/master.key", 1);
    WriteKey(dir_.path() + "/other.key", 2);
    ring_ = Ring("master.key");
  }

  // Two multi-block files of incompressible records, one file of a few
  // small ones (including an empty record) and one with a 2 MiB record.
  static Records Sample() {
    std::mt19937 rng(42);
    Records r;
    for (const char* file : {"alpha.rows", "beta.rows"}) {
      for (int i = 0; i < 8000; ++i) {
        std::string rec(rng() % 600, '\0');
        for (auto& c : rec) c = static_cast<char>(rng());
        r[file].push_back(std::move(rec));
      }
    }
    r["small"] = {"one", "", "three"};
    std::string big(2 << 20, '\0');
    for (auto& c : big) c = static_cast<char>(rng());
    r["big"] = {"before", big, "after"};
    return r;
  }

  // The key ring of the test's directory, opened with `key_file`.
  std::unique_ptr<ArchiveKeyRing> Ring(const std::string& key_file) {
    auto m = crypto::MasterKey::Load(dir_.path() + "/" + key_file);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::make_unique<ArchiveKeyRing>(dir_.path(), std::move(m).value());
  }

  std::string Write(const std::string& id, const Records& records, const std::string& meta = R"({"kind":"test"})",
                    const std::string& tenant = "t") {
    const std::string dir = dir_.path() + "/" + id;
    auto w = ArchiveWriter::Create(dir, id, *ring_, tenant);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    // Interleaved, as a "*" backup writes several files at once.
    size_t longest = 0;
    for (const auto& [f, recs] : records) longest = std::max(longest, recs.size());
    for (size_t i = 0; i < longest; ++i) {
      for (const auto& [f, recs] : records) {
        if (i < recs.size()) {
          EXPECT_TRUE((*w)->Add(f, recs[i]).ok());
        }
      }
    }
    auto infos = (*w)->Finish(meta);
    EXPECT_TRUE(infos.ok()) << infos.status().ToString();
    return dir;
  }

  std::unique_ptr<ArchiveReader> OpenOk(const std::string& dir) {
    auto r = ArchiveReader::Open(dir, *ring_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // Reads `file`; every record emitted must be the next original one.
  static Status ReadChecked(const ArchiveReader& r, const std::string& file, const std::vector<std::string>& want,
                            size_t* emitted) {
    *emitted = 0;
    bool wrong = false;
    Status st = r.Read(file, [&](std::string_view rec) {
      if (*emitted >= want.size() || rec != want[*emitted]) wrong = true;
      ++*emitted;
      return true;
    });
    EXPECT_FALSE(wrong) << file << ": a record differs from what was written";
    return st;
  }

  testing::TempDir dir_;
  std::unique_ptr<ArchiveKeyRing> ring_;
};

TEST_F(ArchiveTest, RoundTripAcrossBlocksAndFiles) {
  const Records records = Sample();
  const std::string dir = Write("a1", records, R"({"kind":"test","tenant":"acme","n":7})");
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->files().size(), records.size());
  for (const auto& info : r->files()) {
    const auto& want = records.at(info.name);
    EXPECT_EQ(info.records, want.size());
    EXPECT_EQ(info.bytes, fs::file_size(dir + "/" + info.name));
    EXPECT_EQ(info.sha256, crypto::Sha256Hex(ReadAll(dir + "/" + info.name)));
    size_t n = 0;
    Status st = ReadChecked(*r, info.name, want, &n);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(n, want.size());
  }
  // Several blocks: the 8000 records of ~300 random bytes are ~2.4 MB.
  EXPECT_GT(fs::file_size(dir + "/alpha.rows"), size_t{2} << 20);
  EXPECT_TRUE(r->Verify().ok());
  EXPECT_NE(r->manifest_json().find("\"tenant\": \"acme\""), std::string::npos) << r->manifest_json();
  EXPECT_NE(r->manifest_json().find("\"manifest_sha256\""), std::string::npos);
}

TEST_F(ArchiveTest, ReadStopsEarlyAndUnknownFileIsNotFound) {
  const std::string dir = Write("a2", {{"f", {"1", "2", "3"}}});
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  int n = 0;
  EXPECT_TRUE(r->Read("f", [&](std::string_view) { return ++n < 2; }).ok());
  EXPECT_EQ(n, 2);
  EXPECT_EQ(r->Read("nope", [](std::string_view) { return true; }).code(), StatusCode::kNotFound);
}

// Blocks sealed on several threads land in order: the archive reads back
// exactly as one written inline. ReadBlocks opens only the range asked for
// and still checks the whole file's hash; CheckFiles finds damage in any
// block without opening one.
TEST_F(ArchiveTest, ThreadedWriterAndBlockRanges) {
  std::mt19937 rng(7);
  std::vector<std::string> recs;
  std::vector<uint64_t> block_of;  // LastBlock after each Add
  const std::string dir = dir_.path() + "/threaded";
  {
    auto w = ArchiveWriter::Create(dir, "threaded", *ring_, "t", 3);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 12000; ++i) {
      std::string rec = std::to_string(i) + ":";
      rec.resize(100 + rng() % 400, static_cast<char>('a' + i % 26));  // compressible: many records per block
      ASSERT_TRUE((*w)->Add("f", rec).ok());
      ASSERT_TRUE((*w)->Add("g", "g" + std::to_string(i)).ok());
      block_of.push_back((*w)->LastBlock("f"));
      recs.push_back(std::move(rec));
    }
    ASSERT_TRUE((*w)->Finish(R"({"kind":"test"})").ok());
  }
  ASSERT_GE(block_of.back(), 2u) << "the sample must span several blocks";
  for (size_t i = 1; i < block_of.size(); ++i) ASSERT_LE(block_of[i - 1], block_of[i]);
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  size_t n = 0;
  Status st = ReadChecked(*r, "f", recs, &n);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(n, recs.size());
  EXPECT_TRUE(r->Verify().ok());
  EXPECT_TRUE(r->CheckFiles().ok());

  // Block 1 alone: exactly the records LastBlock placed in it, in order.
  std::vector<std::string> want;
  for (size_t i = 0; i < recs.size(); ++i) {
    if (block_of[i] == 1) want.push_back(recs[i]);
  }
  ASSERT_FALSE(want.empty());
  std::vector<std::string> got;
  st = r->ReadBlocks("f", 1, 1, [&](std::string_view rec) {
    got.emplace_back(rec);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, want);
  EXPECT_EQ(r->ReadBlocks("f", 2, 1, [](std::string_view) { return true; }).code(), StatusCode::kInvalidArgument);

  // A flipped byte in the last block: block 0's range read still fails (the
  // file's hash), and so does CheckFiles, naming the file.
  const std::string path = dir + "/f";
  std::string bytes = ReadAll(path);
  bytes[bytes.size() - 5] = static_cast<char>(bytes[bytes.size() - 5] ^ 0x01);
  WriteAll(path, bytes);
  auto damaged = OpenOk(dir);
  ASSERT_NE(damaged, nullptr);
  st = damaged->ReadBlocks("f", 0, 0, [](std::string_view) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("hash mismatch"), std::string::npos) << st.ToString();
  st = damaged->CheckFiles();
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("file f"), std::string::npos) << st.ToString();
  // The damaged block itself fails authentication when opened.
  st = damaged->ReadBlocks("f", block_of.back(), block_of.back(), [](std::string_view) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("authentication failed"), std::string::npos) << st.ToString();
}

TEST_F(ArchiveTest, EmptyArchive) {
  const std::string dir = Write("empty", {});
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->files().empty());
  EXPECT_TRUE(r->Verify().ok());
}

TEST_F(ArchiveTest, WriterErrorsAndAbandonedWriterLeavesNothing) {
  const std::string dir = dir_.path() + "/w";
  {
    auto w = ArchiveWriter::Create(dir, "w", *ring_, "t");
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->Add("manifest.json", "x").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->Add("a/b", "x").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->Add("", "x").code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE((*w)->Add("f", "x").ok());
  }  // no Finish
  EXPECT_TRUE(fs::is_empty(dir_.path()) || !fs::exists(dir));
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find("w.tmp-"), std::string::npos) << e.path();
  }
  auto reserved = ArchiveWriter::Create(dir, "w", *ring_, "t");
  ASSERT_TRUE(reserved.ok());
  ASSERT_TRUE((*reserved)->Add("f", "x").ok());
  EXPECT_EQ((*reserved)->Finish(R"({"files":[]})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*reserved)->Finish("not json").status().code(), StatusCode::kInvalidArgument);
  reserved->reset();

  Write("exists", {{"f", {"x"}}});
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/exists", "exists", *ring_, "t").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/no/such/a", "a", *ring_, "t").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/x", "bad id", *ring_, "t").status().code(),
            StatusCode::kInvalidArgument);
}

// Flips one byte at many positions of every data file: Open still works
// (the manifest is intact), Verify and Read fail naming the file, and no
// record that was not written is ever emitted.
TEST_F(ArchiveTest, FlippedByteInAnyDataFileIsNamed) {
  const Records records = Sample();
  const std::string dir = Write("flip", records);
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  std::mt19937 rng(7);
  int checked = 0;
  for (const auto& [file, want] : records) {
    const std::string path = dir + "/" + file;
    const std::string original = ReadAll(path);
    std::vector<size_t> positions;
    for (size_t i = 0; i < std::min<size_t>(40, original.size()); ++i) positions.push_back(i);  // magic, first header
    for (int i = 0; i < 60; ++i) positions.push_back(rng() % original.size());
    positions.push_back(original.size() - 1);
    for (size_t pos : positions) {
      std::string damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ 0x5a);
      WriteAll(path, damaged);
      Status v = r->Verify();
      EXPECT_EQ(v.code(), StatusCode::kCorruption) << file << " @" << pos << ": " << v.ToString();
      EXPECT_NE(v.message().find("file " + file), std::string::npos) << v.message();
      size_t n = 0;
      Status st = ReadChecked(*r, file, want, &n);
      EXPECT_EQ(st.code(), StatusCode::kCorruption) << file << " @" << pos;
      EXPECT_NE(st.message().find("file " + file), std::string::npos) << st.message();
      const bool named =
          st.message().find("block") != std::string::npos || st.message().find("header") != std::string::npos;
      EXPECT_TRUE(named) << st.message();
      ++checked;
    }
    WriteAll(path, original);
  }
  EXPECT_TRUE(r->Verify().ok());
  EXPECT_GT(checked, 300);
}

TEST_F(ArchiveTest, FlippedByteInManifestIsRefusedAtOpen) {
  const std::string dir = Write("mflip", {{"f", {"a", "b"}}}, R"({"kind":"test","tenant":"acme"})");
  const std::string path = dir + "/manifest.json";
  const std::string original = ReadAll(path);
  for (size_t pos = 0; pos < original.size(); ++pos) {
    for (uint8_t mask : {0x01, 0x20, 0x80}) {
      std::string damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ mask);
      WriteAll(path, damaged);
      auto r = ArchiveReader::Open(dir, *ring_);
      ASSERT_FALSE(r.ok()) << "byte " << pos << " mask " << int(mask) << " accepted";
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
      EXPECT_NE(r.status().message().find("manifest.json"), std::string::npos) << r.status().message();
    }
  }
  WriteAll(path, original);
  EXPECT_NE(OpenOk(dir), nullptr);
}

// A manifest rewritten with a correct manifest_sha256 (e.g. a file dropped
// from the list) still fails: manifest_mac needs the archive's data key.
TEST_F(ArchiveTest, ReHashedManifestFailsAuthentication) {
  const std::string dir = Write("rehash", {{"f", {"a"}}, {"g", {"b"}}});
  const std::string path = dir + "/manifest.json";
  std::string text = ReadAll(path);
  // Rename file "f" in the list to "h" and recompute the hash the way the format defines it.
  size_t at = text.find("\"name\": \"f\"");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 11, "\"name\": \"h\"");
  fs::rename(dir + "/f", dir + "/h");
  // Canonical: compact, without the two self-referencing fields.
  size_t mac = text.find(",\n  \"manifest_mac\"");
  ASSERT_NE(mac, std::string::npos);
  std::string body = text.substr(0, mac) + "\n}";
  std::string compact;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '"' && (i == 0 || body[i - 1] != '\\')) in_string = !in_string;
    if (!in_string && (c == ' ' || c == '\n')) continue;
    compact += c;
  }
  std::string tail = text.substr(mac);
  size_t sha = tail.find("\"manifest_sha256\": \"");
  ASSERT_NE(sha, std::string::npos);
  tail.replace(sha + 20, 64, crypto::Sha256Hex(compact));
  WriteAll(path, text.substr(0, mac) + tail);
  auto r = ArchiveReader::Open(dir, *ring_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("manifest_mac"), std::string::npos) << r.status().message();
}

TEST_F(ArchiveTest, TruncatedFiles) {
  const Records records = Sample();
  const std::string dir = Write("trunc", records);
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  const std::string path = dir + "/alpha.rows";
  const std::string original = ReadAll(path);
  for (size_t cut : {size_t{1}, size_t{100}, original.size() / 2, original.size() - 8, original.size()}) {
    WriteAll(path, original.substr(0, original.size() - cut));
    Status v = r->Verify();
    EXPECT_EQ(v.code(), StatusCode::kCorruption);
    EXPECT_NE(v.message().find("file alpha.rows"), std::string::npos) << v.message();
    EXPECT_NE(v.message().find("truncated"), std::string::npos) << v.message();
    size_t n = 0;
    EXPECT_EQ(ReadChecked(*r, "alpha.rows", records.at("alpha.rows"), &n).code(), StatusCode::kCorruption);
  }
  // Grown by garbage at the end.
  WriteAll(path, original + "garbage");
  EXPECT_EQ(r->Verify().code(), StatusCode::kCorruption);
  WriteAll(path, original);
  EXPECT_TRUE(r->Verify().ok());
}

TEST_F(ArchiveTest, ExtraAndMissingFiles) {
  const std::string dir = Write("files", {{"f", {"a"}}, {"g", {"b"}}});
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  WriteAll(dir + "/extra.bin", "hello");
  Status v = r->Verify();
  EXPECT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_NE(v.message().find("unexpected file extra.bin"), std::string::npos) << v.message();
  fs::remove(dir + "/extra.bin");
  const std::string g = ReadAll(dir + "/g");
  fs::remove(dir + "/g");
  v = r->Verify();
  EXPECT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_NE(v.message().find("file g: missing"), std::string::npos) << v.message();
  EXPECT_EQ(r->Read("g", [](std::string_view) { return true; }).code(), StatusCode::kCorruption);
  WriteAll(dir + "/g", g);
  EXPECT_TRUE(r->Verify().ok());
}

// The same records in another archive, or under another file name, do not
// authenticate: blocks are bound to archive id, file and index.
TEST_F(ArchiveTest, FilesMovedBetweenArchivesOrNamesFail) {
  const Records same = {{"f", {"x", "y"}}, {"g", {"x", "y"}}};
  const std::string a = Write("one", same);
  const std::string b = Write("two", same);
  ASSERT_EQ(fs::file_size(a + "/f"), fs::file_size(b + "/f"));
  fs::copy_file(b + "/f", a + "/f", fs::copy_options::overwrite_existing);
  auto r = OpenOk(a);
  ASSERT_NE(r, nullptr);
  Status v = r->Verify();
  EXPECT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_NE(v.message().find("authentication failed"), std::string::npos) << v.message();

  auto r2 = OpenOk(b);
  ASSERT_NE(r2, nullptr);
  fs::copy_file(b + "/g", b + "/f", fs::copy_options::overwrite_existing);  // g's bytes under f's name
  v = r2->Verify();
  EXPECT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_NE(v.message().find("file f block 0: authentication failed"), std::string::npos) << v.message();
}

TEST_F(ArchiveTest, WrongMasterKeyAndMissingArchive) {
  const std::string dir = Write("keyed", {{"f", {"a"}}});
  auto other = Ring("other.key");
  auto r = ArchiveReader::Open(dir, *other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("master key"), std::string::npos) << r.status().message();

  EXPECT_EQ(ArchiveReader::Open(dir_.path() + "/nothing", *ring_).status().code(), StatusCode::kNotFound);
  fs::remove(dir + "/manifest.json");
  auto no_manifest = ArchiveReader::Open(dir, *ring_);
  EXPECT_EQ(no_manifest.status().code(), StatusCode::kCorruption);
  EXPECT_NE(no_manifest.status().message().find("manifest.json is missing"), std::string::npos);
  WriteAll(dir + "/manifest.json", "");
  EXPECT_EQ(ArchiveReader::Open(dir, *ring_).status().code(), StatusCode::kCorruption);
}

// Rotating the master key rewrites the ring, not the archives: every archive
// opens and verifies under the new key, none under the old one.
TEST_F(ArchiveTest, RewrappedRingOpensEveryArchiveUnderTheNewMasterKeyOnly) {
  const std::string a = Write("a1", {{"f", {"x", "y"}}}, R"({"kind":"test"})", "a");
  const std::string b = Write("b1", {{"f", {"z"}}}, R"({"kind":"test"})", "b");
  const std::string a2 = Write("a2", {{"f", {"w"}}}, R"({"kind":"test"})", "a");
  const std::string manifest_before = ReadAll(a + "/manifest.json");
  auto other = crypto::MasterKey::Load(dir_.path() + "/other.key");
  ASSERT_TRUE(other.ok());
  auto rewrapped = ring_->Rewrap(*other);
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status().ToString();
  EXPECT_EQ(*rewrapped, 2u) << "one key per tenant";
  EXPECT_EQ(ReadAll(a + "/manifest.json"), manifest_before) << "archives are not rewritten";
  auto again = ring_->Rewrap(*other);  // a rekey run again after a crash
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 0u);

  ring_ = Ring("other.key");
  for (const auto& dir : {a, b, a2}) {
    auto r = OpenOk(dir);
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->Verify().ok()) << dir;
  }
  auto old = Ring("master.key");
  auto stale = ArchiveReader::Open(a, *old);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("wrapped under another master key"), std::string::npos)
      << stale.status().message();
  EXPECT_EQ(old->KeyForWrite("c").status().code(), StatusCode::kFailedPrecondition)
      << "a process still on the old key adds no key nobody can read";
}

// Shredding a tenant deletes its keys from the ring: its archives, and copies
// of them, no longer open; the other tenants' do.
TEST_F(ArchiveTest, ShreddedTenantsArchivesAndTheirCopiesNoLongerOpen) {
  const std::string a = Write("a1", {{"f", {"x"}}}, R"({"kind":"test"})", "a");
  const std::string b = Write("b1", {{"f", {"z"}}}, R"({"kind":"test"})", "b");
  fs::copy(a, dir_.path() + "/copy-of-a1", fs::copy_options::recursive);
  auto shredded = ring_->Shred("a");
  ASSERT_TRUE(shredded.ok()) << shredded.status().ToString();
  EXPECT_EQ(*shredded, 1u);
  EXPECT_EQ(*ring_->Shred("a"), 0u);
  for (const auto& dir : {a, dir_.path() + "/copy-of-a1"}) {
    auto r = ArchiveReader::Open(dir, *ring_);
    ASSERT_FALSE(r.ok()) << dir;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("of tenant a is not in the key ring"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("the tenant was shredded"), std::string::npos) << r.status().message();
  }
  auto rb = OpenOk(b);
  ASSERT_NE(rb, nullptr);
  EXPECT_TRUE(rb->Verify().ok());
  // A tenant that comes back gets a new key; the old archives stay unreadable.
  const std::string a_new = Write("a2", {{"f", {"y"}}}, R"({"kind":"test"})", "a");
  EXPECT_NE(OpenOk(a_new), nullptr);
  EXPECT_FALSE(ArchiveReader::Open(dir_.path() + "/copy-of-a1", *ring_).ok());
}

// Ring entries are bound to their tenant: an entry moved to another tenant's
// name does not unwrap.
TEST_F(ArchiveTest, RingEntriesSwappedBetweenTenantsDoNotUnwrap) {
  const std::string a = Write("a1", {{"f", {"x"}}}, R"({"kind":"test"})", "a");
  Write("b1", {{"f", {"z"}}}, R"({"kind":"test"})", "b");
  const std::string path = dir_.path() + "/keyring.json";
  std::string ring = ReadAll(path);
  const size_t ka = ring.find("\"a\": ["), kb = ring.find("\"b\": [");
  ASSERT_NE(ka, std::string::npos) << ring;
  ASSERT_NE(kb, std::string::npos) << ring;
  ring[ka + 1] = 'b';
  ring[kb + 1] = 'a';
  WriteAll(path, ring);
  auto r = ArchiveReader::Open(a, *ring_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("does not unwrap for that tenant"), std::string::npos) << r.status().message();
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string BytesOf(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

// Turns the format-2 archive in `dir` (of `tenant`, its key in the ring of
// `ring_dir`) into the format-1 archive today's main wrote for the same data
// (docs/replay.md): the manifest carries the archive's key wrapped by the
// master key (unbound) instead of naming a ring key; "format" is 1; a new
// MAC and hash over the canonical form. The data files are the same bytes.
void ToFormat1(const std::string& dir, const std::string& ring_dir, const std::string& master,
               const std::string& tenant) {
  rapidjson::Document ring;
  const std::string ring_text = ReadAll(ring_dir + "/keyring.json");
  ring.Parse(ring_text.c_str());
  ASSERT_TRUE(ring.IsObject()) << ring_text;
  const std::string wrapped = BytesOf(ring["keys"][tenant.c_str()][0].GetString());
  const std::string legacy =
      testing::UnboundWrappedKey(master, wrapped, std::string("timevault/archive-key\0", 22) + tenant);
  ASSERT_FALSE(legacy.empty());
  rapidjson::Document doc;
  const std::string text = ReadAll(dir + "/manifest.json");
  doc.Parse(text.c_str());
  ASSERT_TRUE(doc.IsObject());
  rapidjson::Document out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  for (auto& m : doc.GetObject()) {
    const std::string name = m.name.GetString();
    if (name == "key_id" || name == "manifest_mac" || name == "manifest_sha256") continue;
    if (name == "key_tenant") {
      out.AddMember("wrapped_key", rapidjson::Value(HexOf(legacy).c_str(), a), a);
    } else if (name == "format") {
      out.AddMember("format", 1, a);
    } else {
      out.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
    }
  }
  rapidjson::StringBuffer compact;
  rapidjson::Writer<rapidjson::StringBuffer> cw(compact);
  out.Accept(cw);
  const std::string canonical(compact.GetString(), compact.GetSize());
  auto m = crypto::MasterKey::Load(ring_dir + "/master.key");
  ASSERT_TRUE(m.ok());
  auto key = m->Unwrap(legacy, "");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  std::string mac;
  key->Encrypt("", std::string("tv-archive-manifest\0", 20) + canonical, &mac);
  out.AddMember("manifest_mac", rapidjson::Value(HexOf(mac).c_str(), a), a);
  out.AddMember("manifest_sha256", rapidjson::Value(crypto::Sha256Hex(canonical).c_str(), a), a);
  rapidjson::StringBuffer pretty;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> pw(pretty);
  out.Accept(pw);
  WriteAll(dir + "/manifest.json", std::string(pretty.GetString(), pretty.GetSize()) + "\n");
}

// An archive written before key rings (format 1, its own key in the
// manifest) opens and verifies; a rekey wraps its key again under the new
// master key (manifest rewritten, data untouched), after which only the new
// key opens it.
TEST_F(ArchiveTest, Format1ArchivesOpenAndARekeyRewrapsTheirOwnKey) {
  const Records records = {{"f", {"one", "two"}}, {"g", {"three"}}};
  const std::string dir = Write("old", records, R"({"kind":"test"})", "legacy");
  ASSERT_NO_FATAL_FAILURE(ToFormat1(dir, dir_.path(), KeyBytes(1), "legacy"));
  fs::remove(dir_.path() + "/keyring.json");  // archives of that time had no ring
  ASSERT_NE(ReadAll(dir + "/manifest.json").find("\"format\": 1"), std::string::npos);
  ring_ = Ring("master.key");
  {
    auto r = OpenOk(dir);
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->Verify().ok());
    size_t emitted = 0;
    EXPECT_TRUE(ReadChecked(*r, "f", records.at("f"), &emitted).ok());
    EXPECT_EQ(emitted, 2u);
  }
  const std::string data_before = ReadAll(dir + "/f");
  auto current = crypto::MasterKey::Load(dir_.path() + "/master.key");
  auto next = crypto::MasterKey::Load(dir_.path() + "/other.key");
  ASSERT_TRUE(current.ok() && next.ok());
  bool rewrapped = false;
  ASSERT_TRUE(RewrapLegacyArchive(dir, *current, *next, &rewrapped).ok());
  EXPECT_TRUE(rewrapped);
  EXPECT_EQ(ReadAll(dir + "/f"), data_before);
  ASSERT_TRUE(RewrapLegacyArchive(dir, *current, *next, &rewrapped).ok());
  EXPECT_FALSE(rewrapped) << "already under the new key";
  ring_ = Ring("other.key");
  auto r = OpenOk(dir);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->Verify().ok());
  auto old = Ring("master.key");
  auto stale = ArchiveReader::Open(dir, *old);
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition) << stale.status().ToString();
}

}  // namespace
}  // namespace timevault::replay
