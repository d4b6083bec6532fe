#include "timevault/wire/java_format.h"

#include <openssl/evp.h>

#include <charconv>
#include <cstring>
#include <vector>

namespace timevault::wire {

void AppendBase64(std::string_view bytes, std::string* out) {
  // EVP_EncodeBlock takes an int length; encode in chunks that are a multiple
  // of 3 bytes so the concatenation equals one encoding of the whole input.
  constexpr size_t kChunk = 3 * (1 << 20);
  size_t pos = 0;
  do {
    const size_t n = std::min(kChunk, bytes.size() - pos);
    const size_t start = out->size();
    out->resize(start + 4 * ((n + 2) / 3) + 1);
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data() + start),
                        reinterpret_cast<const unsigned char*>(bytes.data() + pos), static_cast<int>(n));
    out->resize(start + static_cast<size_t>(written));
    pos += n;
  } while (pos < bytes.size());
}

namespace {

// Renders the shortest round-trip decimal `sci` ("-1.2345e+02" as printed by
// std::to_chars scientific) the way Java's Double.toString does.
std::string_view JavaStyle(const char* sci, size_t len, char* buf) {
  size_t i = 0;
  char* o = buf;
  if (sci[i] == '-') *o++ = sci[i++];
  char digits[32];
  size_t nd = 0;
  for (; i < len && sci[i] != 'e'; ++i)
    if (sci[i] != '.') digits[nd++] = sci[i];
  int exp = 0;
  std::from_chars(sci + i + 1 + (sci[i + 1] == '+'), sci + len, exp);
  if (nd == 1 && digits[0] == '0') {  // zero (sign already copied)
    std::memcpy(o, "0.0", 3);
    return {buf, static_cast<size_t>(o + 3 - buf)};
  }
  if (exp >= -3 && exp < 7) {  // 1e-3 <= |v| < 1e7: plain notation
    if (exp < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int z = -1; z > exp; --z) *o++ = '0';
      for (size_t k = 0; k < nd; ++k) *o++ = digits[k];
    } else {
      const size_t int_digits = static_cast<size_t>(exp) + 1;
      for (size_t k = 0; k < int_digits; ++k) *o++ = k < nd ? digits[k] : '0';
      *o++ = '.';
      if (nd <= int_digits) *o++ = '0';
      for (size_t k = int_digits; k < nd; ++k) *o++ = digits[k];
    }
  } else {  // computerized scientific notation: d.dddE[-]n
    *o++ = digits[0];
    *o++ = '.';
    if (nd == 1) *o++ = '0';
    for (size_t k = 1; k < nd; ++k) *o++ = digits[k];
    *o++ = 'E';
    o = std::to_chars(o, o + 8, exp).ptr;
  }
  return {buf, static_cast<size_t>(o - buf)};
}

}  // namespace

std::string_view FormatJavaDouble(double value, char* buf) {
  char sci[40];
  auto r = std::to_chars(sci, sci + sizeof(sci), value, std::chars_format::scientific);
  return JavaStyle(sci, static_cast<size_t>(r.ptr - sci), buf);
}

std::string_view FormatJavaFloat(float value, char* buf) {
  char sci[40];
  auto r = std::to_chars(sci, sci + sizeof(sci), value, std::chars_format::scientific);
  return JavaStyle(sci, static_cast<size_t>(r.ptr - sci), buf);
}

namespace {

// Big-endian magnitude bytes of a decimal digit string, without leading zeros.
std::string MagnitudeBytes(std::string_view digits) {
  std::vector<uint32_t> limbs;  // little-endian base 2^32
  size_t pos = 0;
  while (pos < digits.size()) {
    const size_t take = std::min<size_t>(9, digits.size() - pos);
    uint32_t chunk = 0, scale = 1;
    for (size_t k = 0; k < take; ++k) {
      chunk = chunk * 10 + static_cast<uint32_t>(digits[pos + k] - '0');
      scale *= 10;
    }
    pos += take;
    uint64_t carry = chunk;
    for (auto& limb : limbs) {
      const uint64_t v = static_cast<uint64_t>(limb) * scale + carry;
      limb = static_cast<uint32_t>(v);
      carry = v >> 32;
    }
    if (carry != 0) limbs.push_back(static_cast<uint32_t>(carry));
  }
  std::string bytes;
  bytes.reserve(limbs.size() * 4);
  for (size_t k = limbs.size(); k-- > 0;)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((limbs[k] >> shift) & 0xFF));
  size_t first = 0;
  while (first < bytes.size() && bytes[first] == 0) ++first;
  return bytes.substr(first);
}

}  // namespace

void AppendTwosComplement(std::string_view digits, bool negative, std::string* out) {
  // One extra leading zero byte gives room for the sign bit; redundant sign
  // bytes are stripped afterwards, as BigInteger.toByteArray() does.
  std::string bytes(1, '\0');
  bytes += MagnitudeBytes(digits);
  if (negative && bytes.size() > 1) {
    bool carry = true;
    for (size_t k = bytes.size(); k-- > 0;) {
      unsigned v = static_cast<unsigned char>(~static_cast<unsigned char>(bytes[k]));
      if (carry) {
        v = (v + 1) & 0xFF;
        carry = v == 0;
      }
      bytes[k] = static_cast<char>(v);
    }
  }
  const unsigned char sign = static_cast<unsigned char>(bytes[0]);  // 0x00 or 0xFF
  size_t first = 0;
  while (first + 1 < bytes.size() && static_cast<unsigned char>(bytes[first]) == sign &&
         ((static_cast<unsigned char>(bytes[first + 1]) & 0x80) == (sign & 0x80)))
    ++first;
  out->append(bytes, first, std::string::npos);
}

int32_t JavaStringHash(std::string_view utf8) {
  uint32_t h = 0;
  size_t i = 0;
  while (i < utf8.size()) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80)
      cp = c, n = 1;
    else if ((c >> 5) == 0x6)
      cp = c & 0x1F, n = 2;
    else if ((c >> 4) == 0xE)
      cp = c & 0x0F, n = 3;
    else
      cp = c & 0x07, n = 4;
    for (size_t k = 1; k < n && i + k < utf8.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
    i += n;
    if (cp >= 0x10000) {  // surrogate pair
      cp -= 0x10000;
      h = h * 31 + (0xD800 + (cp >> 10));
      h = h * 31 + (0xDC00 + (cp & 0x3FF));
    } else {
      h = h * 31 + cp;
    }
  }
  return static_cast<int32_t>(h);
}

}  // namespace timevault::wire
