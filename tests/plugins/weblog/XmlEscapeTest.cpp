#include <gtest/gtest.h>

#include <random>
#include <string>

#include "XmlEscape.h"
#include "WeblogTestSupport.h"

using protohost::plugins::weblog::escapeXmlAttributeValue;

namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// The value expat reads back from <hits><hit v="ESCAPED"/>, fed one byte at a time.
std::string roundTrip(const std::string& raw) {
  weblogtest::HitStreamParser p;
  const std::string doc = "<hits><hit v=\"" + escapeXmlAttributeValue(raw) + "\"/>";
  EXPECT_TRUE(p.feedInChunks(doc, 1)) << p.error() << " for input of " << raw.size() << " bytes";
  if (p.elements().size() != 1) return "<no element>";
  return p.elements()[0].attr("v");
}

// Strict UTF-8 check, independent of the escaper's own decoder.
bool isValidUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    char32_t cp;
    if (c < 0x80) { n = 1; cp = c; }
    else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const char32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

}  // namespace

TEST(XmlEscape, MarkupCharacters) {
  EXPECT_EQ(escapeXmlAttributeValue("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e'f");
  EXPECT_EQ(escapeXmlAttributeValue("&amp;"), "&amp;amp;");
  EXPECT_EQ(roundTrip("a&b<c>d\"e'f"), "a&b<c>d\"e'f");
}

TEST(XmlEscape, WhitespaceControlsAreCharacterReferences) {
  EXPECT_EQ(escapeXmlAttributeValue("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
  EXPECT_EQ(roundTrip("a\tb\nc\rd"), "a\tb\nc\rd");
}

TEST(XmlEscape, OtherControlCharactersAreDropped) {
  std::string raw;
  for (int c = 0; c < 0x20; ++c) raw += static_cast<char>(c);
  EXPECT_EQ(escapeXmlAttributeValue(raw), "&#9;&#10;&#13;");
  EXPECT_EQ(escapeXmlAttributeValue(std::string("x\x01y\x1bz\0w", 8)), "xyzw");
  EXPECT_EQ(escapeXmlAttributeValue("del\x7f"), "del\x7f");  // DEL is an XML character
}

TEST(XmlEscape, ValidUtf8IsKept) {
  const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E \xEF\xBF\xBD \xC2\x85 \xF4\x8F\xBF\xBD";
  EXPECT_EQ(escapeXmlAttributeValue(s), s);
  EXPECT_EQ(roundTrip(s), s);
}

TEST(XmlEscape, IllFormedUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(escapeXmlAttributeValue("\xFF"), kFffd);
  EXPECT_EQ(escapeXmlAttributeValue("\x80"), kFffd);                              // stray continuation
  EXPECT_EQ(escapeXmlAttributeValue("a\xC3"), "a" + kFffd);                       // truncated at the end
  EXPECT_EQ(escapeXmlAttributeValue("\xE2\x82"), kFffd);                          // one maximal subpart
  EXPECT_EQ(escapeXmlAttributeValue("\xE2\x82x"), kFffd + "x");
  EXPECT_EQ(escapeXmlAttributeValue("\xC0\xAF"), kFffd + kFffd);                  // overlong '/'
  EXPECT_EQ(escapeXmlAttributeValue("\xE0\x80\xAF"), kFffd + kFffd + kFffd);      // overlong
  EXPECT_EQ(escapeXmlAttributeValue("\xED\xA0\x80"), kFffd + kFffd + kFffd);      // surrogate U+D800
  EXPECT_EQ(escapeXmlAttributeValue("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(escapeXmlAttributeValue("\xF0\x9F\x98"), kFffd);                      // truncated 4-byte
}

TEST(XmlEscape, NonCharactersFffeAndFfffAreDropped) {
  EXPECT_EQ(escapeXmlAttributeValue("a\xEF\xBF\xBE" "b\xEF\xBF\xBF" "c"), "abc");
}

TEST(XmlEscape, EverySingleByteAndPairIsWellFormed) {
  for (int a = 0; a < 256; ++a) {
    std::string one(1, static_cast<char>(a));
    std::string out = escapeXmlAttributeValue(one);
    ASSERT_TRUE(isValidUtf8(out)) << a;
    roundTrip(one);
    for (int b = 0x80; b < 256; b += 7) {
      std::string two = one + static_cast<char>(b);
      ASSERT_TRUE(isValidUtf8(escapeXmlAttributeValue(two))) << a << "," << b;
    }
  }
}

TEST(XmlEscape, RandomBytesAlwaysParse) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 64);
  weblogtest::HitStreamParser p;
  ASSERT_TRUE(p.feed("<hits>"));
  for (int i = 0; i < 2000; ++i) {
    std::string raw;
    for (int n = length(rng); n > 0; --n) raw += static_cast<char>(byte(rng));
    const std::string escaped = escapeXmlAttributeValue(raw);
    ASSERT_TRUE(isValidUtf8(escaped));
    ASSERT_LE(escaped.size(), 6 * raw.size());
    ASSERT_TRUE(p.feedInChunks("<hit v=\"" + escaped + "\"/>", 1 + static_cast<std::size_t>(i % 7))) << p.error();
  }
  EXPECT_EQ(p.elements().size(), 2000u);
}
