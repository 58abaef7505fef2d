#include <gtest/gtest.h>

#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;

TEST(StateFormat, Crc32KnownVector) {
  EXPECT_EQ(crc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(crc32(""), 0u);
}

TEST(StateFormat, EncodesOneVersionedCheckedLine) {
  std::string s = encodeState(12345);
  EXPECT_EQ(s.rfind("protohost-fibonacci v1 next=12345 crc32=", 0), 0u) << s;
  EXPECT_EQ(s.back(), '\n');
  EXPECT_EQ(s.size(), std::string("protohost-fibonacci v1 next=12345 crc32=").size() + 8 + 1);
  EXPECT_EQ(decodeState(s), 12345u);
  EXPECT_EQ(decodeState(encodeState(1)), 1u);
  EXPECT_EQ(decodeState(encodeState(UINT64_MAX)), UINT64_MAX);
}

TEST(StateFormat, RejectsEveryDamagedForm) {
  const std::string good = encodeState(4097);
  std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {good.substr(0, good.size() - 1), "truncated"},
      {good.substr(0, 20), "truncated"},
      {good.substr(0, good.size() - 5) + "\n", "crc32"},
      {good + good, "line"},
      {good + "x", "truncated"},
      {"PROTOHOST-fibonacci v1 next=1 crc32=00000000\n", "not a protohost-fibonacci"},
      {std::string(300, 'a'), "bytes"},
      {"protohost-fibonacci v2 next=4097 crc32=00000000\n", "version"},
      {"protohost-fibonacci next=4097 crc32=00000000\n", "version"},
      {encodeState(0), "next=0"},
  };
  // Flip each byte of the record in turn (keeping the newline): the checksum or the syntax catches it.
  for (std::size_t i = 0; i + 1 < good.size(); ++i) {
    std::string s = good;
    s[i] = static_cast<char>(s[i] ^ 0x01);
    bad.emplace_back(s, "");
  }
  // Digits swapped without fixing the checksum.
  std::string swapped = good;
  std::size_t pos = swapped.find("4097");
  swapped.replace(pos, 4, "4096");
  bad.emplace_back(swapped, "checksum mismatch");
  std::string upper = good;
  for (std::size_t i = upper.size() - 9; i + 1 < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  if (upper != good) bad.emplace_back(upper, "lowercase");

  for (const auto& [content, why] : bad) {
    try {
      decodeState(content);
      ADD_FAILURE() << "accepted: \"" << content << "\"";
    } catch (const StateFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what() << " for \"" << content << "\"";
    }
  }
}
