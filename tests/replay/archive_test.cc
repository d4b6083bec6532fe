// ArchiveWriter / ArchiveReader: round trips across blocks and files, and
// every kind of damage (flipped bytes anywhere, truncation, extra and missing
// files, files from another archive, a wrong master key) reported precisely,
// never a crash and never wrong data.
#include "timevault/replay/archive.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "support/process.h"

namespace timevault::replay {
namespace {

namespace fs = std::filesystem;

void WriteKey(const std::string& path, uint8_t seed) {
  std::string bytes(32, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(seed * 7 + i * 13 + 1);
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
    auto m = crypto::MasterKey::Load(dir_.path() + "/master.key");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    master_.emplace(std::move(m).value());
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

  std::string Write(const std::string& id, const Records& records, const std::string& meta = R"({"kind":"test"})") {
    const std::string dir = dir_.path() + "/" + id;
    auto w = ArchiveWriter::Create(dir, id, *master_);
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
    auto r = ArchiveReader::Open(dir, *master_);
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
  std::optional<crypto::MasterKey> master_;
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
    auto w = ArchiveWriter::Create(dir, "w", *master_);
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
  auto reserved = ArchiveWriter::Create(dir, "w", *master_);
  ASSERT_TRUE(reserved.ok());
  ASSERT_TRUE((*reserved)->Add("f", "x").ok());
  EXPECT_EQ((*reserved)->Finish(R"({"files":[]})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*reserved)->Finish("not json").status().code(), StatusCode::kInvalidArgument);
  reserved->reset();

  Write("exists", {{"f", {"x"}}});
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/exists", "exists", *master_).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/no/such/a", "a", *master_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ArchiveWriter::Create(dir_.path() + "/x", "bad id", *master_).status().code(),
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
      auto r = ArchiveReader::Open(dir, *master_);
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
  auto r = ArchiveReader::Open(dir, *master_);
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
  auto other = crypto::MasterKey::Load(dir_.path() + "/other.key");
  ASSERT_TRUE(other.ok());
  auto r = ArchiveReader::Open(dir, *other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("master key"), std::string::npos) << r.status().message();

  EXPECT_EQ(ArchiveReader::Open(dir_.path() + "/nothing", *master_).status().code(), StatusCode::kNotFound);
  fs::remove(dir + "/manifest.json");
  auto no_manifest = ArchiveReader::Open(dir, *master_);
  EXPECT_EQ(no_manifest.status().code(), StatusCode::kCorruption);
  EXPECT_NE(no_manifest.status().message().find("manifest.json is missing"), std::string::npos);
  WriteAll(dir + "/manifest.json", "");
  EXPECT_EQ(ArchiveReader::Open(dir, *master_).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace timevault::replay
