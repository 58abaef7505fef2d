// The echo plugin's protocol (plugins/echo/EchoProtocol.h) on a MemoryTransport.

#include <gtest/gtest.h>

#include <string>

#include "ChunkFeeder.h"
#include "EchoFactory.h"
#include "protohost/testing/MemoryTransport.h"

using protohost::DisconnectReason;
using protohost::plugins::echo::EchoFactory;
using protohost::plugins::echo::EchoProtocol;
using protohost::testing::MemoryTransport;

namespace {
std::string binaryInput() {
  std::string s = "hello\r\nworld\n";
  s += std::string("\0\x01\xff\xfe", 4);
  s += "||last line without newline";
  return s;
}
}  // namespace

TEST(EchoProtocol, OutputEqualsInputInEveryChunkSize) {
  const std::string input = binaryInput();
  std::size_t runs = chunkfeeder::forEveryChunkSize(
      input, [] { return std::make_unique<EchoProtocol>(); },
      [&](std::size_t chunk, EchoProtocol&, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        EXPECT_EQ(t.value(), input);
        EXPECT_FALSE(t.closed());
      });
  EXPECT_EQ(runs, input.size() + 1);
}

TEST(EchoProtocol, NothingWrittenBeforeData) {
  MemoryTransport t;
  EchoProtocol p;
  t.connect(p);
  EXPECT_EQ(t.value(), "");
  EXPECT_FALSE(t.closed());
}

TEST(EchoProtocol, ReadEndedClosesAfterFlushingNotAbort) {
  MemoryTransport t;
  EchoProtocol p;
  t.connect(p);
  t.feed(p, "bye");
  p.readEnded();
  EXPECT_TRUE(t.closed());
  EXPECT_FALSE(t.aborted());
  EXPECT_EQ(t.value(), "bye");
  t.disconnect(p, {DisconnectReason::Kind::ClosedByPeer, "eof"});
}

TEST(EchoProtocol, StopRequestedClosesGracefully) {
  MemoryTransport t;
  EchoProtocol p;
  t.connect(p);
  p.stopRequested();
  EXPECT_TRUE(t.closed());
  EXPECT_FALSE(t.aborted());
}

TEST(EchoProtocol, FactoryBuildsIndependentProtocols) {
  EchoFactory f;
  auto a = f.buildProtocol();
  auto b = f.buildProtocol();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a.get(), b.get());
  MemoryTransport ta, tb;
  ta.connect(*a);
  tb.connect(*b);
  ta.feed(*a, "a");
  tb.feed(*b, "b");
  EXPECT_EQ(ta.value(), "a");
  EXPECT_EQ(tb.value(), "b");
}
