// Signed change events: what a signature covers, what breaks it, the reasons
// a refused message is dead-lettered with, and the key file checks.
#include "timevault/core/signing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/process.h"

namespace timevault::signing {
namespace {

using testing::TempDir;
using testing::WriteFile;

const std::string kKey(32, '\x9a');
const std::string kOtherKey(32, '\x17');

SignedMessage Sample() {
  SignedMessage m;
  m.topic = "tv.public.accounts";
  m.key = R"({"id":1})";
  m.value = R"({"before":null,"after":{"id":1,"tenant_id":"ta","balance":100},"op":"c"})";
  EXPECT_TRUE(m.SetHeader("__timevault.text", R"({"after":{"balance":"100"}})"));
  return m;
}

EventSigner Signer(const std::string& key) {
  auto s = EventSigner::FromKey(key);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(EventSigner, SignatureVerifiesAndHasItsShape) {
  EventSigner signer = Signer(kKey);
  const std::string sig = signer.Sign(Sample());
  ASSERT_EQ(sig.size(), 2u + 1 + 8 + 1 + 64);
  EXPECT_EQ(sig.substr(0, 3), "v1:");
  EXPECT_EQ(sig.substr(3, 8), signer.key_id());
  EXPECT_TRUE(signer.Verify(Sample(), sig).ok());
  // Deterministic, and another signer with the same key agrees.
  EventSigner again = Signer(kKey);
  EXPECT_EQ(again.Sign(Sample()), sig);
  EXPECT_TRUE(again.Verify(Sample(), sig).ok());
}

TEST(EventSigner, EveryCoveredPartChangedBreaksTheSignature) {
  EventSigner signer = Signer(kKey);
  const std::string sig = signer.Sign(Sample());
  std::vector<std::pair<std::string, SignedMessage>> changed;
  auto with = [&](std::string what, auto edit) {
    SignedMessage m = Sample();
    edit(m);
    changed.emplace_back(std::move(what), m);
  };
  with("topic", [](SignedMessage& m) { m.topic = "tv.public.other"; });
  with("key", [](SignedMessage& m) { m.key = R"({"id":2})"; });
  with("null key", [](SignedMessage& m) { m.key.reset(); });
  with("value", [](SignedMessage& m) {
    m.value = R"({"before":null,"after":{"id":1,"tenant_id":"ta","balance":999},"op":"c"})";
  });
  with("tombstone", [](SignedMessage& m) { m.value.reset(); });
  with("empty value", [](SignedMessage& m) { m.value = ""; });
  with("text header removed", [](SignedMessage& m) { m.headers = {}; });
  with("text header emptied", [](SignedMessage& m) { m.SetHeader("__timevault.text", ""); });
  with("nulls header added", [](SignedMessage& m) { m.SetHeader("__timevault.nulls", R"({"after":["balance"]})"); });
  with("old key header added", [](SignedMessage& m) { m.SetHeader("__debezium.oldkey", R"({"id":7})"); });
  // Moving bytes between fields keeps their concatenation but not the MAC.
  with("bytes moved from key to topic", [](SignedMessage& m) {
    m.topic = "tv.public.accounts{";
    m.key = R"("id":1})";
  });
  for (const auto& [what, m] : changed) {
    Status st = signer.Verify(m, sig);
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << what;
    EXPECT_NE(st.message().find("forged: the signature does not match"), std::string::npos)
        << what << ": " << st.ToString();
  }
}

TEST(EventSigner, RefusalsNameTheirReason) {
  EventSigner signer = Signer(kKey);
  EventSigner other = Signer(kOtherKey);
  ASSERT_NE(signer.key_id(), other.key_id());

  Status unsigned_st = signer.Verify(Sample(), std::nullopt);
  EXPECT_EQ(unsigned_st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(unsigned_st.message().find("unsigned"), std::string::npos) << unsigned_st.ToString();

  Status foreign = signer.Verify(Sample(), other.Sign(Sample()));
  EXPECT_NE(foreign.message().find("signed with key id " + other.key_id()), std::string::npos) << foreign.ToString();
  EXPECT_NE(foreign.message().find("verifies with key id " + signer.key_id()), std::string::npos) << foreign.ToString();

  for (std::string bad :
       {std::string(), std::string("v1"), std::string("v2:") + signer.key_id() + ":" + std::string(64, '0'),
        signer.Sign(Sample()) + "0", std::string(76, 'x')}) {
    Status st = signer.Verify(Sample(), bad);
    EXPECT_NE(st.message().find("not a timevault signature"), std::string::npos) << bad << ": " << st.ToString();
  }
  // The right key id with another key's MAC: forged.
  std::string spliced = signer.Sign(Sample());
  spliced.replace(12, 64, other.Sign(Sample()).substr(12));
  EXPECT_NE(signer.Verify(Sample(), spliced).message().find("does not match"), std::string::npos);
}

TEST(EventSigner, HeadersOutsideTheCoveredListAreRefusedBySetHeader) {
  SignedMessage m;
  EXPECT_FALSE(m.SetHeader("x-custom", "1"));
  for (auto name : kCoveredHeaders) EXPECT_TRUE(m.SetHeader(name, "v"));
}

class KeyFile : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes, mode_t mode) {
    const std::string path = dir_.path() + "/" + name;
    WriteFile(path, bytes);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  TempDir dir_;
};

TEST_F(KeyFile, A0600FileOf32RandomBytesLoadsAndSignsLikeItsBytes) {
  const std::string path = Write("k", kKey, 0600);
  auto loaded = EventSigner::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->Sign(Sample()), Signer(kKey).Sign(Sample()));
  EXPECT_TRUE(EventSigner::Load(Write("r", kKey, 0400)).ok());
}

TEST_F(KeyFile, UnsafeOrWrongFilesAreRefusedWithTheFix) {
  struct Case {
    std::string what;
    Result<EventSigner> result;
    std::string expected;
  };
  const std::string link = dir_.path() + "/link";
  std::filesystem::create_symlink(Write("target", kKey, 0600), link);
  std::vector<Case> cases;
  cases.push_back({"missing", EventSigner::Load(dir_.path() + "/none"), "head -c 32 /dev/urandom"});
  cases.push_back({"group-readable", EventSigner::Load(Write("g", kKey, 0640)), "chmod 600"});
  cases.push_back({"world-readable", EventSigner::Load(Write("w", kKey, 0604)), "has mode 0604"});
  cases.push_back({"symlink", EventSigner::Load(link), "symbolic link"});
  cases.push_back({"short", EventSigner::Load(Write("s", kKey.substr(1), 0600)), "not exactly 32 bytes"});
  cases.push_back({"long", EventSigner::Load(Write("l", kKey + "x", 0600)), "not exactly 32 bytes"});
  cases.push_back({"hex text", EventSigner::Load(Write("h", std::string(32, 'a'), 0600)), "32 bytes of text"});
  cases.push_back({"directory", EventSigner::Load(dir_.path()), "not a regular file"});
  cases.push_back({"empty path", EventSigner::Load(""), "empty"});
  for (const auto& c : cases) {
    ASSERT_FALSE(c.result.ok()) << c.what;
    EXPECT_NE(c.result.status().message().find(c.expected), std::string::npos)
        << c.what << ": " << c.result.status().ToString();
  }
}

}  // namespace
}  // namespace timevault::signing
