// echo over UDP (plugins/echo/EchoDatagramProtocol.h) on the test kit's
// MemoryDatagramTransport: one datagram in, the same bytes out to the
// sender; the echo/chargen loop guard; the per-source rate limit and the
// bound of its table (SourceRateLimit.h). Time is the kit's ManualReactor.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "EchoFactory.h"
#include "protohost/testing/MemoryDatagramTransport.h"

using namespace std::chrono_literals;
using protohost::Address;
using protohost::plugins::echo::EchoDatagramLimits;
using protohost::plugins::echo::EchoDatagramProtocol;
using protohost::plugins::echo::EchoFactory;
using protohost::plugins::echo::SourceRateLimit;
using protohost::testing::MemoryDatagramTransport;

namespace {

const Address kClient{"127.0.0.1", 40000};

std::string allBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(EchoDatagram, AnswersEachDatagramWithTheSameBytesToItsSender) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p;
  t.start(p);
  const Address v6{"::1", 5353};
  t.receive(p, "hello", kClient);
  t.receive(p, allBytes(), v6);
  t.receive(p, "", kClient);  // an empty datagram gets an empty answer
  ASSERT_EQ(t.sent().size(), 3u);
  EXPECT_EQ(t.sent()[0].data, "hello");
  EXPECT_EQ(t.sent()[0].to.toString(), "127.0.0.1:40000");
  EXPECT_EQ(t.sent()[1].data, allBytes());
  EXPECT_EQ(t.sent()[1].to.toString(), "[::1]:5353");
  EXPECT_EQ(t.sent()[2].data, "");
  EXPECT_TRUE(t.droppedByReason().empty());
  t.stop(p);
}

TEST(EchoDatagram, TheLargestDatagramIsAnswered) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p;
  t.start(p);
  const std::string big(65507, 'x');
  t.receive(p, big, kClient);
  ASSERT_EQ(t.sent().size(), 1u);
  EXPECT_EQ(t.sent()[0].data, big);
}

TEST(EchoDatagram, DatagramsFromEchoDaytimeQotdAndChargenPortsAreDroppedAndCounted) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p;
  t.start(p);
  for (std::uint16_t port : {7, 13, 17, 19, 0}) t.receive(p, "loop?", Address{"127.0.0.1", port});
  EXPECT_TRUE(t.sent().empty());
  EXPECT_EQ(t.dropped("loop_source_port"), 5u);
  // Their neighbours are ordinary clients.
  for (std::uint16_t port : {6, 8, 12, 14, 16, 18, 20, 1024}) t.receive(p, "ok", Address{"127.0.0.1", port});
  EXPECT_EQ(t.sent().size(), 8u);
  EXPECT_EQ(t.dropped("loop_source_port"), 5u);
}

TEST(EchoDatagram, RateLimitPerSourceAddressPerSecond) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p(EchoDatagramLimits{3, 100});
  t.start(p);
  for (int i = 0; i < 5; ++i) t.receive(p, "a", Address{"10.0.0.1", static_cast<std::uint16_t>(5000 + i)});
  EXPECT_EQ(t.sent().size(), 3u);  // per address: another source port does not help
  EXPECT_EQ(t.dropped("rate_limited"), 2u);
  // Another source has its own budget.
  for (int i = 0; i < 3; ++i) t.receive(p, "b", Address{"10.0.0.2", 5000});
  EXPECT_EQ(t.sent().size(), 6u);
  // The next second starts a new window.
  t.manualReactor().advance(999ms);
  t.receive(p, "a", Address{"10.0.0.1", 5000});
  EXPECT_EQ(t.dropped("rate_limited"), 3u);
  t.manualReactor().advance(1ms);
  t.receive(p, "a", Address{"10.0.0.1", 5000});
  EXPECT_EQ(t.sent().size(), 7u);
}

TEST(EchoDatagram, ZeroMeansNoRateLimit) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p(EchoDatagramLimits{0, 1});
  t.start(p);
  for (int i = 0; i < 10000; ++i) t.receive(p, "x", kClient);
  EXPECT_EQ(t.sent().size(), 10000u);
  EXPECT_EQ(p.rateLimit().trackedSources(), 0u);
}

TEST(EchoDatagram, TheRateTableIsBoundedAndUntrackedSourcesShareOneBudget) {
  MemoryDatagramTransport t;
  EchoDatagramProtocol p(EchoDatagramLimits{2, 4});
  t.start(p);
  // 1,000 spoofed sources in one second: 4 are tracked (2 each), the rest share 2.
  for (int i = 0; i < 1000; ++i)
    t.receive(p, "x", Address{"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256), 5000});
  EXPECT_EQ(p.rateLimit().trackedSources(), 4u);
  EXPECT_EQ(t.sent().size(), 4u + 2u);
  EXPECT_EQ(t.dropped("rate_limited"), 1000u - 6u);
  // A new window empties the table.
  t.manualReactor().advance(1s);
  t.receive(p, "x", Address{"10.9.9.9", 5000});
  EXPECT_EQ(p.rateLimit().trackedSources(), 1u);
  EXPECT_EQ(t.sent().size(), 7u);
}

TEST(EchoDatagram, SourceRateLimitAlone) {
  SourceRateLimit limit(1, 2);
  const auto t0 = SourceRateLimit::Clock::time_point{} + 10s;
  EXPECT_TRUE(limit.allow("a", t0));
  EXPECT_FALSE(limit.allow("a", t0));
  EXPECT_TRUE(limit.allow("b", t0));
  EXPECT_TRUE(limit.allow("c", t0));   // overflow budget: 1
  EXPECT_FALSE(limit.allow("d", t0));  // shared with c
  EXPECT_TRUE(limit.allow("a", t0 + 1s));
}

TEST(EchoDatagram, FactoryReadsItsKeysAndBuildsBothKinds) {
  EchoFactory f;
  std::map<std::string, protohost::ConfigView::Entry> entries;
  entries["max_datagrams_per_s_per_ip"] = {"1", 7};
  entries["max_tracked_sources"] = {"10", 8};
  protohost::ConfigView view("host.ini", "listener.echo", 6, "/", entries);
  f.configure(view);
  EXPECT_TRUE(view.unreadKeys().empty());
  ASSERT_NE(f.buildProtocol(), nullptr);
  auto p = f.buildDatagramProtocol();
  ASSERT_NE(p, nullptr);
  MemoryDatagramTransport t;
  t.start(*p);
  t.receive(*p, "1", kClient);
  t.receive(*p, "2", kClient);
  EXPECT_EQ(t.sent().size(), 1u);  // max_datagrams_per_s_per_ip = 1
  EXPECT_EQ(t.dropped("rate_limited"), 1u);
}

TEST(EchoDatagram, FactoryRejectsBadKeys) {
  EchoFactory f;
  std::map<std::string, protohost::ConfigView::Entry> entries;
  entries["max_datagrams_per_s_per_ip"] = {"-1", 7};
  protohost::ConfigView view("host.ini", "listener.echo", 6, "/", entries);
  try {
    f.configure(view);
    FAIL() << "accepted -1";
  } catch (const protohost::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("host.ini:7: max_datagrams_per_s_per_ip: value -1 out of range"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
