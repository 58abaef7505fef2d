#include <gtest/gtest.h>

#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;

TEST(StateFormat, Crc32KnownVector) {
  EXPECT_EQ(crc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(crc32(""), 0u);
}

TEST(StateFormat, EncodesOneVersionedCheckedLine) {
  std::string s = encodeStateV1(12345);  // format v1, read and converted at start
  EXPECT_EQ(s.rfind("protohost-fibonacci v1 next=12345 crc32=", 0), 0u) << s;
  EXPECT_EQ(s.back(), '\n');
  EXPECT_EQ(s.size(), std::string("protohost-fibonacci v1 next=12345 crc32=").size() + 8 + 1);
  EXPECT_EQ(decodeState(s), 12345u);
  EXPECT_EQ(decodeState(encodeStateV1(1)), 1u);
  EXPECT_EQ(decodeState(encodeStateV1(UINT64_MAX)), UINT64_MAX);
}

TEST(StateFormat, RejectsEveryDamagedForm) {
  const std::string good = encodeStateV1(4097);
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
      {encodeStateV1(0), "next=0"},
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

// ---------------------------------------------------------------- format v2: two slots

TEST(StateFormat, Version2IsTwoFixedSlotsOfOneCheckedLineEach) {
  const std::string slot = encodeSlot(1, 17, 12345);
  ASSERT_EQ(slot.size(), kSlotBytes);
  const std::string line = "protohost-fibonacci v2 slot=1 gen=17 next=12345 crc32=";
  EXPECT_EQ(slot.rfind(line, 0), 0u) << slot.substr(0, 80);
  const std::size_t eol = slot.find('\n');
  EXPECT_EQ(eol, line.size() + 8);
  EXPECT_EQ(slot.substr(eol + 1).find_first_not_of('\0'), std::string::npos);
  const std::string file = encodeStateFile(3, 99);
  ASSERT_EQ(file.size(), kStateFileBytes);
  EXPECT_EQ(file.substr(kSlotBytes), std::string(kSlotBytes, '\0'));  // slot 1 unused
  StateImage image = decodeStateImage(file);
  EXPECT_EQ(image.version, 2);
  EXPECT_EQ(image.next, 99u);
  EXPECT_EQ(image.gen, 3u);
  EXPECT_EQ(image.slot, 0u);
  EXPECT_EQ(image.damaged[0], "");
  EXPECT_EQ(image.damaged[1], "");
  EXPECT_EQ(decodeState(encodeStateFile(UINT64_MAX, UINT64_MAX)), UINT64_MAX);
}

TEST(StateFormat, TheHighestGenerationWinsWhateverItsCeiling) {
  std::string file = encodeStateFile(4, 100);
  file.replace(kSlotBytes, kSlotBytes, encodeSlot(1, 5, 101));
  EXPECT_EQ(decodeStateImage(file).slot, 1u);
  EXPECT_EQ(decodeState(file), 101u);
  // A clean stop lowers the ceiling to the exact next answer: a newer generation, a lower value.
  file.replace(0, kSlotBytes, encodeSlot(0, 6, 40));
  EXPECT_EQ(decodeState(file), 40u);
  EXPECT_EQ(decodeStateImage(file).slot, 0u);
}

TEST(StateFormat, ATornOrDamagedSlotLeavesTheOtherOne) {
  std::string file = encodeStateFile(4, 100);
  const std::string newer = encodeSlot(1, 5, 200);
  // The write of slot 1 torn after every byte count up to the whole line, then damaged in other ways.
  std::vector<std::string> slots;
  for (std::size_t n = 1; n < newer.find('\n') + 1; ++n) {
    std::string torn(kSlotBytes, '\0');
    torn.replace(0, n, newer.substr(0, n));
    slots.push_back(torn);
  }
  std::string flipped = newer;
  flipped[30] = static_cast<char>(flipped[30] ^ 0x04);
  slots.push_back(flipped);
  std::string tail = newer;
  tail[kSlotBytes - 1] = 'x';
  slots.push_back(tail);
  slots.push_back(encodeSlot(0, 5, 200));  // a record of the other slot
  std::string v1 = encodeStateV1(200);
  v1.resize(kSlotBytes, '\0');
  slots.push_back(v1);
  for (const auto& s : slots) {
    file.replace(kSlotBytes, kSlotBytes, s);
    StateImage image = decodeStateImage(file);
    EXPECT_EQ(image.next, 100u) << s.substr(0, 80);
    EXPECT_EQ(image.slot, 0u);
    EXPECT_EQ(image.damaged[0], "");
    EXPECT_NE(image.damaged[1], "") << s.substr(0, 80);
  }
}

TEST(StateFormat, NoValidSlotAnotherSizeOrAnotherVersionIsCorrupt) {
  std::string bothBad = encodeStateFile(4, 100);
  bothBad[50] = static_cast<char>(bothBad[50] ^ 0x01);
  bothBad.replace(kSlotBytes, 3, "xyz");
  std::string newerVersion = encodeStateFile(4, 100);
  std::string v3 = encodeSlot(1, 5, 200);
  v3.replace(v3.find("v2"), 2, "v3");
  newerVersion.replace(kSlotBytes, kSlotBytes, v3);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {std::string(kStateFileBytes, '\0'), "no valid record"},
      {bothBad, "no valid record"},
      {encodeStateFile(4, 100).substr(0, kStateFileBytes - 1), "bytes"},
      {encodeStateFile(4, 100) + "\n", "bytes"},
      {encodeStateFile(4, 100).substr(0, 200), "bytes"},
      {encodeStateFile(4, 100).substr(0, 100), "truncated"},
      {newerVersion, "unsupported format version"},
      {encodeStateFile(4, 0), "next=0"},
  };
  for (const auto& [content, why] : bad) {
    try {
      decodeStateImage(content);
      ADD_FAILURE() << "accepted: \"" << content.substr(0, 80) << "\" (" << content.size() << " bytes)";
    } catch (const StateFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}
