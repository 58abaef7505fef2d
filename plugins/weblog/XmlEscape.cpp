#include "XmlEscape.h"

#include <cstddef>

namespace protohost::plugins::weblog {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool isContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at @p s[i] (2-4), or 0 when it is
// ill-formed; then @p bad is the length of its maximal subpart (>= 1).
std::size_t multiByteLength(std::string_view s, std::size_t i, std::size_t& bad) {
  const auto c0 = static_cast<unsigned char>(s[i]);
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    need = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    need = 3;
    if (c0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (c0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    need = 4;
    if (c0 == 0xF0) lo = 0x90;  // no overlong forms
    if (c0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    bad = 1;  // 0x80-0xC1, 0xF5-0xFF
    return 0;
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      bad = k;
      return 0;
    }
    const auto c = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : isContinuation(c);
    if (!ok) {
      bad = k;
      return 0;
    }
  }
  return need;
}

}  // namespace

void appendXmlAttributeValue(std::string& out, std::string_view raw) {
  std::size_t i = 0;
  while (i < raw.size()) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\t': out += "&#9;"; break;
        case '\n': out += "&#10;"; break;
        case '\r': out += "&#13;"; break;
        default:
          if (c >= 0x20) out += static_cast<char>(c);  // other C0 controls are dropped
      }
      ++i;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t n = multiByteLength(raw, i, bad);
    if (n == 0) {
      out += kReplacement;
      i += bad;
      continue;
    }
    // U+FFFE and U+FFFF (EF BF BE, EF BF BF) are not XML characters.
    if (n == 3 && c == 0xEF && static_cast<unsigned char>(raw[i + 1]) == 0xBF &&
        static_cast<unsigned char>(raw[i + 2]) >= 0xBE) {
      i += n;
      continue;
    }
    out.append(raw.substr(i, n));
    i += n;
  }
}

std::string escapeXmlAttributeValue(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 8);
  appendXmlAttributeValue(out, raw);
  return out;
}

}  // namespace protohost::plugins::weblog
