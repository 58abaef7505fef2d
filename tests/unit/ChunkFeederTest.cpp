// The test helper itself (tests/support/ChunkFeeder.h): a helper that fed the
// wrong chunks would make every chunked test pass vacuously.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ChunkFeeder.h"
#include "protohost/Protocol.h"

using protohost::testing::MemoryTransport;

namespace {
class ChunkRecorder : public protohost::Protocol {
 public:
  void dataReceived(std::string_view data) override {
    chunks.emplace_back(data);
    if (data.find('!') != std::string_view::npos) transport().loseConnection();
  }
  std::vector<std::string> chunks;
};
}  // namespace

TEST(ChunkFeeder, SplitCutsConsecutivePieces) {
  EXPECT_EQ(chunkfeeder::split("abcdefg", 3), (std::vector<std::string_view>{"abc", "def", "g"}));
  EXPECT_EQ(chunkfeeder::split("ab", 5), (std::vector<std::string_view>{"ab"}));
  EXPECT_TRUE(chunkfeeder::split("", 2).empty());
}

TEST(ChunkFeeder, FeedsEveryChunkSizeFromOneToWholeInputPlusOne) {
  std::vector<std::size_t> sizes;
  std::size_t runs = chunkfeeder::forEveryChunkSize(
      "abcde", [] { return std::make_unique<ChunkRecorder>(); },
      [&](std::size_t chunk, ChunkRecorder& p, MemoryTransport&) {
        sizes.push_back(chunk);
        std::vector<std::string> expected;
        for (auto piece : chunkfeeder::split("abcde", chunk)) expected.emplace_back(piece);
        EXPECT_EQ(p.chunks, expected) << "chunk size " << chunk;
      });
  EXPECT_EQ(runs, 6u);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3, 4, 5, 6}));
}

TEST(ChunkFeeder, StopsFeedingOnceTheProtocolCloses) {
  auto outputs = chunkfeeder::forEveryChunkSize(
      "ab!cd", [] { return std::make_unique<ChunkRecorder>(); },
      [&](std::size_t chunk, ChunkRecorder& p, MemoryTransport& t) {
        EXPECT_TRUE(t.closed());
        if (chunk == 1) {
          EXPECT_EQ(p.chunks, (std::vector<std::string>{"a", "b", "!"}));
        } else {
          EXPECT_EQ(p.chunks, (std::vector<std::string>{"ab", "!c"}));
        }
      },
      2);
  EXPECT_EQ(outputs, 2u);
}

TEST(ChunkFeeder, OutputsPerChunkSize) {
  class Upper : public protohost::Protocol {
   public:
    void dataReceived(std::string_view data) override {
      std::string s(data);
      for (char& c : s) c = static_cast<char>(c - 'a' + 'A');
      transport().write(s + "|");
    }
  };
  auto outputs = chunkfeeder::outputsForEveryChunkSize("abc", [] { return std::make_unique<Upper>(); });
  EXPECT_EQ(outputs, (std::vector<std::string>{"A|B|C|", "AB|C|", "ABC|", "ABC|"}));
}
