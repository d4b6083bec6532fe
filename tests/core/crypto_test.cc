#include "timevault/core/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

namespace timevault::crypto {
namespace {

namespace fs = std::filesystem;

std::string RandomBytes(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// 32 bytes that are not text (the loader rejects printable "keys").
std::string KeyFileBytes(uint8_t first) {
  std::string s(kKeyBytes, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(first + i);
  return s;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "crypto_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, std::string_view bytes, fs::perms mode = fs::perms::owner_read) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    fs::permissions(p, mode);
    return p.string();
  }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

MasterKey LoadKey(const TempDir& dir, const std::string& name, uint8_t first) {
  auto key = MasterKey::Load(dir.Write(name, KeyFileBytes(first)));
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

// ---- values ----

TEST(DataKey, RoundTripsEmptyOneByteAndOneMegabyte) {
  DataKey key = DataKey::Generate(42);
  for (const std::string& plain : {std::string(), std::string("x"), RandomBytes(1 << 20)}) {
    std::string ct, back = "stale";
    key.Encrypt(plain, "row/1", &ct);
    ASSERT_EQ(ct.size(), plain.size() + kValueOverhead);
    ASSERT_TRUE(key.Decrypt(ct, "row/1", &back).ok());
    EXPECT_EQ(back, plain);
    if (plain.size() > 16) {
      EXPECT_EQ(ct.find(plain.substr(0, 16)), std::string::npos) << "plaintext visible";
    }
  }
}

TEST(DataKey, WritesTheDocumentedHeader) {
  DataKey key = DataKey::Generate(0x01020304);
  std::string ct;
  key.Encrypt("v", "", &ct);
  EXPECT_EQ(ct.substr(0, 5), std::string("\x01\x01\x02\x03\x04", 5));
  EXPECT_EQ(*PeekKeyId(ct), 0x01020304u);
  DataKey max = DataKey::Generate(0xFFFFFFFF);
  max.Encrypt("v", "", &ct);
  EXPECT_EQ(*PeekKeyId(ct), 0xFFFFFFFFu);
}

TEST(DataKey, ReusesTheCallersBuffer) {
  DataKey key = DataKey::Generate(1);
  std::string ct, plain;
  key.Encrypt(std::string(300, 'a'), "k", &ct);
  const char* buf = ct.data();
  key.Encrypt(std::string(300, 'b'), "k", &ct);
  EXPECT_EQ(ct.data(), buf);
  ASSERT_TRUE(key.Decrypt(ct, "k", &plain).ok());
  EXPECT_EQ(plain, std::string(300, 'b'));
}

TEST(DataKey, AadMismatchFails) {
  DataKey key = DataKey::Generate(1);
  std::string ct, out;
  key.Encrypt("balance=100", "tenant-a/accounts/7", &ct);
  // A trailing NUL is a different aad: lengths count, not C strings.
  const std::string_view with_nul("tenant-a/accounts/7\0", 20);
  for (std::string_view other : {std::string_view("tenant-b/accounts/7"), std::string_view("tenant-a/accounts/8"),
                                 std::string_view(), with_nul}) {
    Status s = key.Decrypt(ct, other, &out);
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << other;
    EXPECT_NE(s.message().find("authentication failed"), std::string::npos) << s.message();
    EXPECT_TRUE(out.empty());
  }
  key.Encrypt("v", "", &ct);
  EXPECT_EQ(key.Decrypt(ct, "x", &out).code(), StatusCode::kCorruption);
  EXPECT_TRUE(key.Decrypt(ct, "", &out).ok());
}

TEST(DataKey, EveryBitFlipFailsWithCorruption) {
  DataKey key = DataKey::Generate(9);
  std::string ct, out;
  key.Encrypt("a row version of a modest size", "key", &ct);
  for (size_t i = 0; i < ct.size() * 8; ++i) {
    std::string bad = ct;
    bad[i / 8] = static_cast<char>(bad[i / 8] ^ (1 << (i % 8)));
    out = "stale";
    Status s = key.Decrypt(bad, "key", &out);
    ASSERT_EQ(s.code(), StatusCode::kCorruption) << "bit " << i << ": " << s.ToString();
    ASSERT_TRUE(out.empty()) << "bit " << i;
  }
  // A failed decryption leaves the key's context usable.
  ASSERT_TRUE(key.Decrypt(ct, "key", &out).ok());
  EXPECT_EQ(out, "a row version of a modest size");
}

TEST(DataKey, TruncatedOrExtendedCiphertextFailsCleanly) {
  DataKey key = DataKey::Generate(9);
  std::string ct, out;
  key.Encrypt("0123456789", "k", &ct);
  for (size_t len = 0; len < ct.size(); ++len) {
    out = "stale";
    Status s = key.Decrypt(std::string_view(ct).substr(0, len), "k", &out);
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << len;
    EXPECT_TRUE(out.empty()) << len;
  }
  EXPECT_EQ(key.Decrypt(ct + "x", "k", &out).code(), StatusCode::kCorruption);
  Status shortest = key.Decrypt(ct.substr(0, 3), "k", &out);
  EXPECT_NE(shortest.message().find("3 bytes"), std::string::npos) << shortest.message();
}

TEST(DataKey, WrongKeyIdNamesBothIds) {
  DataKey seven = DataKey::Generate(7);
  DataKey three = DataKey::Generate(3);
  std::string ct, out;
  seven.Encrypt("v", "k", &ct);
  Status s = three.Decrypt(ct, "k", &out);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("data key 7"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("data key 3"), std::string::npos) << s.message();
}

TEST(DataKey, SameIdOtherKeyFailsAuthentication) {
  DataKey a = DataKey::Generate(5);
  DataKey b = DataKey::Generate(5);
  std::string ct, out;
  a.Encrypt("v", "k", &ct);
  Status s = b.Decrypt(ct, "k", &out);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("encrypted under another key"), std::string::npos) << s.message();
}

TEST(DataKey, UnknownFormatVersionIsNamed) {
  DataKey key = DataKey::Generate(1);
  std::string ct, out;
  key.Encrypt("v", "k", &ct);
  ct[0] = 2;
  Status s = key.Decrypt(ct, "k", &out);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("format version 2"), std::string::npos) << s.message();
  EXPECT_EQ(PeekKeyId(ct).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(PeekKeyId("short").status().code(), StatusCode::kCorruption);
}

TEST(DataKey, NoncesNeverRepeatOver100kEncryptions) {
  DataKey key = DataKey::Generate(1);
  std::unordered_set<std::string> nonces, ciphertexts;
  std::string ct;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    key.Encrypt("the same plaintext", "the same aad", &ct);
    nonces.insert(ct.substr(5, kNonceBytes));
    ciphertexts.insert(ct);
  }
  EXPECT_EQ(nonces.size(), size_t{kN});
  EXPECT_EQ(ciphertexts.size(), size_t{kN});
}

// Nonces come from a per-instance pool: a clone and a moved-to key must draw
// their own, never the original's remaining ones.
TEST(DataKey, ClonesAndMovedKeysNeverShareNonces) {
  DataKey key = DataKey::Generate(1);
  std::string ct;
  key.Encrypt("x", "", &ct);  // the pool now holds 255 unused nonces
  DataKey clone = key.Clone();
  std::unordered_set<std::string> nonces{ct.substr(5, kNonceBytes)};
  for (int i = 0; i < 600; ++i) {
    key.Encrypt("x", "", &ct);
    EXPECT_TRUE(nonces.insert(ct.substr(5, kNonceBytes)).second) << "original, encryption " << i;
    clone.Encrypt("x", "", &ct);
    EXPECT_TRUE(nonces.insert(ct.substr(5, kNonceBytes)).second) << "clone, encryption " << i;
  }
  DataKey moved = std::move(key);
  for (int i = 0; i < 300; ++i) {
    moved.Encrypt("x", "", &ct);
    EXPECT_TRUE(nonces.insert(ct.substr(5, kNonceBytes)).second) << "moved, encryption " << i;
    std::string out;
    ASSERT_TRUE(clone.Decrypt(ct, "", &out).ok());
  }
}

TEST(DataKey, GeneratedKeysDiffer) {
  DataKey a = DataKey::Generate(1);
  DataKey b = DataKey::Generate(1);
  std::string ct, out;
  a.Encrypt("v", "", &ct);
  EXPECT_FALSE(b.Decrypt(ct, "", &out).ok());
}

TEST(DataKey, ClonesAndMovesKeepTheKey) {
  DataKey key = DataKey::Generate(11);
  DataKey clone = key.Clone();
  EXPECT_EQ(clone.id(), 11u);
  std::string ct, out;
  key.Encrypt("from original", "k", &ct);
  ASSERT_TRUE(clone.Decrypt(ct, "k", &out).ok());
  EXPECT_EQ(out, "from original");
  clone.Encrypt("from clone", "k", &ct);
  DataKey moved = std::move(key);
  ASSERT_TRUE(moved.Decrypt(ct, "k", &out).ok());
  EXPECT_EQ(out, "from clone");
}

TEST(DataKey, OneClonePerThreadRunsConcurrently) {
  DataKey key = DataKey::Generate(2);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&failures, t, mine = key.Clone()]() mutable {
      std::string ct, out;
      for (int i = 0; i < 2000; ++i) {
        const std::string plain = std::to_string(t) + ":" + std::to_string(i);
        mine.Encrypt(plain, plain, &ct);
        if (!mine.Decrypt(ct, plain, &out).ok() || out != plain) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(DataKey, Throughput300ByteValues) {
  DataKey key = DataKey::Generate(1);
  const std::string plain = RandomBytes(300);
  const std::string aad = "tenant-42/public.orders/00000000000012345/0000000000abcdef";
  std::string ct, out;
  int ops = 0;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::duration<double> elapsed{};
  while (elapsed.count() < 0.5) {
    for (int i = 0; i < 1000; ++i) {
      key.Encrypt(plain, aad, &ct);
      if (!key.Decrypt(ct, aad, &out).ok()) FAIL();
    }
    ops += 1000;
    elapsed = std::chrono::steady_clock::now() - start;
  }
  const double per_second = ops / elapsed.count();
  std::printf("encrypt+decrypt of 300-byte values: %.0f pairs/s on one core\n", per_second);
  RecordProperty("pairs_per_second", std::to_string(static_cast<long>(per_second)));
#if defined(NDEBUG)
  // Optimized builds only, and not under valgrind, which is ~50x slower.
  if (!RUNNING_ON_VALGRIND) {
    EXPECT_GT(per_second, 200'000);
  }
#endif
}

// Decrypts with OpenSSL directly, following only the documented layout, so the
// format is a fixed contract and not whatever the library happens to do.
std::string IndependentOpen(std::string_view key, std::string_view sealed, std::string_view aad) {
  const auto* u = reinterpret_cast<const unsigned char*>(sealed.data());
  const size_t body = sealed.size() - kValueOverhead;
  std::string out(body, '\0');
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.data()),
                               u + 5) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &n, u, 5) == 1 &&
            (aad.empty() || EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                                              static_cast<int>(aad.size())) == 1) &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n, u + kValueHeaderBytes,
                              static_cast<int>(body)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + body, &n) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok ? out : "<failed>";
}

TEST(Format, MatchesTheDocumentedLayoutForAnyAes256GcmImplementation) {
  TempDir dir;
  const std::string master_bytes = KeyFileBytes(0);
  auto master = MasterKey::Load(dir.Write("key", master_bytes));
  ASSERT_TRUE(master.ok()) << master.status().ToString();
  DataKey key = DataKey::Generate(77);
  const std::string wrapped = master->Wrap(key, "the binding");
  ASSERT_EQ(wrapped.size(), MasterKey::kWrappedKeyBytes);
  EXPECT_EQ(wrapped[0], 2) << "wrapped-key format version 2: bound";
  EXPECT_EQ(IndependentOpen(master_bytes, wrapped, ""), "<failed>");
  const std::string data_key_bytes = IndependentOpen(master_bytes, wrapped, "the binding");
  ASSERT_EQ(data_key_bytes.size(), kKeyBytes);
  std::string ct;
  key.Encrypt("hello", "row", &ct);
  EXPECT_EQ(IndependentOpen(data_key_bytes, ct, "row"), "hello");
  EXPECT_EQ(IndependentOpen(data_key_bytes, ct, "other"), "<failed>");
}

// ---- wrapping ----

TEST(MasterKey, WrapUnwrapRoundTrips) {
  TempDir dir;
  MasterKey master = LoadKey(dir, "key", 0);
  DataKey key = DataKey::Generate(1234);
  const std::string wrapped = master.Wrap(key, "owner");
  EXPECT_EQ(wrapped.size(), MasterKey::kWrappedKeyBytes);
  EXPECT_TRUE(MasterKey::IsBound(wrapped));
  EXPECT_NE(master.Wrap(key, "owner"), wrapped) << "each wrap draws a fresh nonce";
  auto back = master.Unwrap(wrapped, "owner");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id(), 1234u);
  std::string ct, out;
  key.Encrypt("secret row", "k", &ct);
  ASSERT_TRUE(back->Decrypt(ct, "k", &out).ok());
  EXPECT_EQ(out, "secret row");
}

TEST(MasterKey, WrongMasterKeyCannotUnwrap) {
  TempDir dir;
  MasterKey a = LoadKey(dir, "a", 0);
  MasterKey b = LoadKey(dir, "b", 100);
  auto r = b.Unwrap(a.Wrap(DataKey::Generate(1), "t"), "t");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("wrong master key, damaged key record"), std::string::npos)
      << r.status().message();
}

TEST(MasterKey, AKeyWrappedForOneOwnerDoesNotUnwrapForAnother) {
  TempDir dir;
  MasterKey master = LoadKey(dir, "key", 0);
  const std::string tenant_a("timevault/tenant-key\0a", 22), tenant_b("timevault/tenant-key\0b", 22);
  const std::string wrapped = master.Wrap(DataKey::Generate(5), tenant_a);
  EXPECT_TRUE(master.Unwrap(wrapped, tenant_a).ok());
  for (const std::string& other : {tenant_b, std::string(), std::string("timevault/tenant-key")}) {
    auto r = master.Unwrap(wrapped, other);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("bound to another owner"), std::string::npos) << r.status().message();
  }
}

TEST(MasterKey, TamperedWrappedKeyIsRejected) {
  TempDir dir;
  MasterKey master = LoadKey(dir, "key", 0);
  const std::string wrapped = master.Wrap(DataKey::Generate(8), "b");
  for (size_t i = 0; i < wrapped.size() * 8; ++i) {
    std::string bad = wrapped;
    bad[i / 8] = static_cast<char>(bad[i / 8] ^ (1 << (i % 8)));
    auto r = master.Unwrap(bad, "b");
    ASSERT_FALSE(r.ok()) << "bit " << i;
    // The version byte is checked first; every other bit, the key id included, fails authentication.
    ASSERT_EQ(r.status().code(), i < 8 ? StatusCode::kCorruption : StatusCode::kPermissionDenied) << "bit " << i;
  }
  for (size_t len = 0; len < wrapped.size(); ++len) {
    EXPECT_EQ(master.Unwrap(wrapped.substr(0, len), "b").status().code(), StatusCode::kCorruption) << len;
  }
  EXPECT_EQ(master.Unwrap(wrapped + "x", "b").status().code(), StatusCode::kCorruption);
}

// ---- key file ----

TEST(MasterKeyFile, LoadsExactly32RawBytes) {
  TempDir dir;
  auto key = MasterKey::Load(dir.Write("key", KeyFileBytes(0), fs::perms::owner_read | fs::perms::owner_write));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
}

TEST(MasterKeyFile, MissingFileSaysHowToCreateOne) {
  TempDir dir;
  const std::string path = dir.Path("nope");
  auto key = MasterKey::Load(path);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kNotFound);
  EXPECT_NE(key.status().message().find(path), std::string::npos);
  EXPECT_NE(key.status().message().find("head -c 32 /dev/urandom > " + path), std::string::npos)
      << key.status().message();
  EXPECT_EQ(MasterKey::Load("").status().code(), StatusCode::kInvalidArgument);
}

TEST(MasterKeyFile, DirectoryIsRejected) {
  TempDir dir;
  fs::create_directory(dir.Path("d"));
  auto key = MasterKey::Load(dir.Path("d"));
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(key.status().message().find("is a directory"), std::string::npos) << key.status().message();
}

TEST(MasterKeyFile, UnreadablePathsGiveTheOsReason) {
  TempDir dir;
  // A path through a regular file cannot be opened, even by root.
  const std::string file = dir.Write("file", KeyFileBytes(0));
  auto key = MasterKey::Load(file + "/key");
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(key.status().message().find("Not a directory"), std::string::npos) << key.status().message();

  // A FIFO is not a key file, and loading must not block on it.
  ASSERT_EQ(::mkfifo(dir.Path("fifo").c_str(), 0600), 0);
  key = MasterKey::Load(dir.Path("fifo"));
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(key.status().message().find("not a regular file"), std::string::npos) << key.status().message();

  // Mode 000 stops only non-root users: root has CAP_DAC_OVERRIDE and reads
  // it anyway (the test container runs as root), so the PermissionDenied
  // branch is checked only when it can be observed.
  const std::string locked = dir.Write("locked", KeyFileBytes(0), fs::perms::none);
  if (::geteuid() != 0) {
    key = MasterKey::Load(locked);
    EXPECT_EQ(key.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(key.status().message().find("Permission denied"), std::string::npos) << key.status().message();
  }
}

TEST(MasterKeyFile, WrongSizesAreRejectedWithTheSize) {
  TempDir dir;
  for (size_t size : {0, 31, 33, 64, 4096}) {
    auto key = MasterKey::Load(dir.Write("key" + std::to_string(size), RandomBytes(size)));
    EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument) << size;
    EXPECT_NE(
        key.status().message().find("is " + std::to_string(size) + " bytes; a master key is exactly 32 random bytes"),
        std::string::npos)
        << key.status().message();
  }
}

TEST(MasterKeyFile, TextIsNotAKey) {
  TempDir dir;
  // `openssl rand -hex 32 > key`: 65 bytes of hex and a newline.
  auto hex = MasterKey::Load(dir.Write("hex", std::string(64, 'a') + "\n"));
  EXPECT_EQ(hex.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(hex.status().message().find("holds text"), std::string::npos) << hex.status().message();
  // A 32-character passphrase has the right length but is not random bytes.
  auto phrase = MasterKey::Load(dir.Write("phrase", "correct horse battery staple 123"));
  EXPECT_EQ(phrase.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(phrase.status().message().find("not a passphrase"), std::string::npos) << phrase.status().message();
}

TEST(MasterKeyFile, RefusesAModeOtherThan0600Or0400) {
  TempDir dir;
  using P = fs::perms;
  for (P ok : {P::owner_read, P::owner_read | P::owner_write}) {
    auto key = MasterKey::Load(dir.Write("ok", KeyFileBytes(0), ok));
    EXPECT_TRUE(key.ok()) << key.status().ToString();
  }
  const std::pair<P, const char*> refused[] = {
      {P::owner_read | P::group_read | P::others_read, "0444"},
      {P::owner_read | P::owner_write | P::group_read, "0640"},
      {P::owner_read | P::others_read, "0404"},
      {P::owner_all, "0700"},
  };
  for (const auto& [mode, octal] : refused) {
    const std::string path = dir.Write("key", KeyFileBytes(0), mode);
    auto key = MasterKey::Load(path);
    ASSERT_FALSE(key.ok()) << octal;
    EXPECT_EQ(key.status().code(), StatusCode::kPermissionDenied) << octal;
    EXPECT_NE(key.status().message().find(std::string("has mode ") + octal), std::string::npos)
        << key.status().message();
    EXPECT_NE(key.status().message().find("chmod 600 " + path), std::string::npos) << key.status().message();
  }
}

TEST(MasterKeyFile, RefusesASymbolicLinkInsteadOfFollowingIt) {
  TempDir dir;
  const std::string target = dir.Write("real", KeyFileBytes(0), fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(MasterKey::Load(target).ok());
  fs::create_symlink(target, dir.Path("link"));
  auto key = MasterKey::Load(dir.Path("link"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(key.status().message().find("is a symbolic link"), std::string::npos) << key.status().message();
}

TEST(MasterKeyFile, RefusesAFileOwnedByAnotherUser) {
  TempDir dir;
  const std::string path = dir.Write("key", KeyFileBytes(0), fs::perms::owner_read | fs::perms::owner_write);
  // Changing a file's owner needs root (the test container runs as root); as
  // another user the file is someone else's only if root made it so.
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), 4242, 4242), 0);
    auto key = MasterKey::Load(path);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(key.status().message().find("owned by uid 4242, not by the user running timevault (uid 0)"),
              std::string::npos)
        << key.status().message();
  } else {
    EXPECT_TRUE(MasterKey::Load(path).ok());
  }
}

// ---- SHA-256 ----

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 appendix B and the empty string.
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1'000'000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShotAndRestarts) {
  const std::string data = RandomBytes(100'000, 7);
  Sha256 h;
  for (size_t pos = 0; pos < data.size(); pos += 997) h.Update(std::string_view(data).substr(pos, 997));
  EXPECT_EQ(h.FinishHex(), Sha256Hex(data));
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.FinishHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(h.FinishHex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace timevault::crypto
