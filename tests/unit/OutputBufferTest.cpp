// A connection's unsent output (host/src/OutputBuffer.h). Built as its own
// executable (unit_alloc_tests) because it replaces the global operator new to
// count live heap blocks: "releases memory when drained" is checked as "holds
// no heap block", the only observable form of capacity 0 (OutputBuffer has no
// capacity accessor).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "net/OutputBuffer.h"

namespace {
std::atomic<long> gLiveBlocks{0};
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  gLiveBlocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept {
  if (!p) return;
  gLiveBlocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }

using protohost::host::OutputBuffer;

namespace {
long liveBlocks() { return gLiveBlocks.load(std::memory_order_relaxed); }
const std::string kBig(64 * 1024, 'x');  // well past any small-string buffer
}  // namespace

TEST(OutputBufferAlloc, CounterSeesStringAllocations) {
  // Guards the other tests: if the counter did not work they would pass vacuously.
  const long before = liveBlocks();
  auto* s = new std::string(kBig);
  const long during = liveBlocks();
  delete s;
  EXPECT_EQ(during - before, 2);  // the string object and its buffer
  EXPECT_EQ(liveBlocks(), before);
}

TEST(OutputBuffer, AppendConsumeFront) {
  OutputBuffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.front(), "");
  b.append("hello ");
  b.append("world");
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.size(), 11u);
  EXPECT_EQ(b.front(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.front(), "world");
  EXPECT_EQ(b.size(), 5u);
  b.append("!");  // head >= half: compacts, order kept
  EXPECT_EQ(b.front(), "world!");
  b.consume(1);
  b.append("?");
  EXPECT_EQ(b.front(), "orld!?");
  b.consume(6);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.front(), "");
  b.append("again");
  EXPECT_EQ(b.front(), "again");
}

TEST(OutputBuffer, ManySmallPartialSendsKeepOrder) {
  OutputBuffer b;
  std::string expected;
  std::string sent;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = std::to_string(i) + ",";
    b.append(piece);
    expected += piece;
    std::size_t n = std::min<std::size_t>(b.size(), static_cast<std::size_t>(i % 7));
    sent += std::string(b.front().substr(0, n));
    b.consume(n);
  }
  sent += std::string(b.front());
  b.consume(b.size());
  EXPECT_EQ(sent, expected);
  EXPECT_TRUE(b.empty());
}

TEST(OutputBuffer, HoldsNoHeapMemoryWhenNew) {
  const long before = liveBlocks();
  OutputBuffer b;
  EXPECT_EQ(liveBlocks(), before);
}

TEST(OutputBuffer, ReleasesMemoryWhenDrainedAtOnce) {
  OutputBuffer b;
  const long before = liveBlocks();
  b.append(kBig);
  const long holding = liveBlocks();
  b.consume(kBig.size());
  const long drained = liveBlocks();
  EXPECT_EQ(holding - before, 1);
  EXPECT_EQ(drained, before) << "capacity kept after the buffer drained";
  EXPECT_TRUE(b.empty());
}

TEST(OutputBuffer, ReleasesMemoryWhenDrainedInPieces) {
  OutputBuffer b;
  const long before = liveBlocks();
  b.append(kBig);
  b.append(kBig);
  for (std::size_t left = b.size(); left > 0;) {
    std::size_t n = std::min<std::size_t>(left, 10000);
    b.consume(n);
    left -= n;
  }
  const long drained = liveBlocks();
  EXPECT_EQ(drained, before);
}

TEST(OutputBuffer, ReleaseDropsEverything) {
  OutputBuffer b;
  const long before = liveBlocks();
  b.append(kBig);
  b.consume(10);
  b.release();
  const long after = liveBlocks();
  EXPECT_EQ(after, before);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
}
