#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "HitFormatter.h"
#include "HitHub.h"
#include "WeblogProtocol.h"
#include "WeblogTestSupport.h"

using namespace protohost::plugins::weblog;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryTransport;
using std::chrono::milliseconds;

namespace {

std::string hit(int n) { return *formatLogLine(weblogtest::numberedLine(n)); }

std::vector<std::string> hits(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back(hit(i));
  return v;
}

std::string joined(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += hit(i);
  return s;
}

WeblogSettings pushSettings(int intervalMs, std::size_t backlog = 1 << 20) {
  WeblogSettings s;
  s.accessLog = "/dev/null";
  s.mode = Mode::Push;
  s.pushInterval = milliseconds(intervalMs);
  s.maxClientBacklogBytes = backlog;
  return s;
}

WeblogSettings pollSettings() {
  WeblogSettings s;
  s.accessLog = "/dev/null";
  s.mode = Mode::Poll;
  return s;
}

/// One client: its transport, on the shared test reactor, and its protocol.
struct Client {
  Client(ManualReactor& reactor, HitHub& hub, const WeblogSettings& settings)
      : transport(reactor), protocol(std::make_unique<WeblogProtocol>(hub, settings)) {}
  void connect() { transport.connect(*protocol); }
  void disconnect() { transport.disconnect(*protocol); }
  MemoryTransport transport;
  std::unique_ptr<WeblogProtocol> protocol;
};

}  // namespace

TEST(WeblogProtocol, SendsTheRootElementOnConnect) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pushSettings(5000));
  c.connect();
  EXPECT_EQ(c.transport.value(), "<hits>");
  c.disconnect();
}

TEST(WeblogProtocol, PushSendsOnlyHitsAfterConnectBatchedByInterval) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  hub.publish(hits(0, 2));  // before the client: never sent to it
  Client c(reactor, hub, pushSettings(1000));
  c.connect();
  c.transport.clear();
  hub.publish(hits(2, 3));
  reactor.advance(milliseconds(500));
  EXPECT_EQ(c.transport.value(), "");  // batched: nothing before the interval
  hub.publish(hits(3, 5));
  reactor.advance(milliseconds(500));
  EXPECT_EQ(c.transport.take(), joined(2, 5));
  reactor.advance(milliseconds(1000));
  EXPECT_EQ(c.transport.value(), "");  // nothing twice
  hub.publish(hits(5, 6));
  reactor.advance(milliseconds(1000));
  EXPECT_EQ(c.transport.take(), joined(5, 6));
  c.disconnect();
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // its timer left with it
  EXPECT_EQ(hub.subscriberCount(), 0u);
}

TEST(WeblogProtocol, LaterClientGetsOnlyLaterHits) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client a(reactor, hub, pushSettings(1000));
  a.connect();
  hub.publish(hits(0, 3));
  reactor.advance(milliseconds(400));
  Client b(reactor, hub, pushSettings(1000));
  b.connect();
  hub.publish(hits(3, 4));
  reactor.advance(milliseconds(2000));
  EXPECT_EQ(a.transport.value(), "<hits>" + joined(0, 4));
  EXPECT_EQ(b.transport.value(), "<hits>" + joined(3, 4));
  auto elements = weblogtest::parseHits(a.transport.value(), 3);
  ASSERT_EQ(elements.size(), 4u);
  EXPECT_EQ(elements[3].attr("request"), weblogtest::numberedRequest(3));
  a.disconnect();
  b.disconnect();
}

TEST(WeblogProtocol, PushIntervalZeroDeliversOnEveryPublish) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pushSettings(0));
  c.connect();
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // woken by the hub, no timer
  c.transport.clear();
  hub.publish(hits(0, 1));
  reactor.runPending();  // the wake-up was posted to the connection's reactor
  EXPECT_EQ(c.transport.take(), joined(0, 1));
  hub.publish(hits(1, 2));
  hub.publish(hits(2, 4));  // one wake-up in flight: coalesced
  reactor.runPending();
  EXPECT_EQ(c.transport.take(), joined(1, 4));
  c.disconnect();
}

TEST(WeblogProtocol, WakeUpPostedBeforeTheClientLeftDoesNotTouchIt) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  auto c = std::make_unique<Client>(reactor, hub, pushSettings(0));
  c->connect();
  hub.publish(hits(0, 1));  // posts a wake-up...
  c->disconnect();          // ...the client leaves before it runs...
  c.reset();                // ...and is destroyed.
  reactor.runPending();     // must not reach the destroyed protocol (ASan would tell)
  SUCCEED();
}

TEST(WeblogProtocol, BurstWakesAPushClientBeforeItsIntervalToStayWithinTheBound) {
  ManualReactor reactor;
  const std::size_t backlog = 8 * 1024;
  HitHub hub({0, backlog});
  Client c(reactor, hub, pushSettings(5000, backlog));
  c.connect();
  c.transport.clear();
  std::string expected;
  int n = 0;
  while (expected.size() < 3 * backlog) {  // three bounds' worth within one interval
    hub.publish(hits(n, n + 1));
    expected += hit(n++);
    reactor.runPending();
  }
  reactor.advance(milliseconds(5000));
  EXPECT_FALSE(c.transport.closed());
  EXPECT_EQ(c.transport.value(), expected);
  EXPECT_EQ(hub.slowClients(), 0u);
  c.disconnect();
}

// A push client (pacing on: the hub holds the publisher at 3/4 of the bound)
// whose peer is behind: a quarter of its bound plus one byte is still unsent.
class PushClientWithPeerBehind : public ::testing::Test {
 protected:
  static constexpr std::size_t backlog = 8192;
  void SetUp() override {
    c.connect();
    c.transport.clear();
    c.transport.setPendingBytes(backlog / 4 + 1);
  }
  ManualReactor reactor;
  HitHub hub{{0, backlog, backlog / 4 * 3}};
  Client c{reactor, hub, pushSettings(1000, backlog)};
};

TEST_F(PushClientWithPeerBehind, WaitsForItsPeerAndThenGetsEverything) {
  hub.publish(hits(0, 3));
  reactor.advance(milliseconds(1000));
  EXPECT_EQ(c.transport.value(), "") << "took hits while its peer was behind";
  EXPECT_TRUE(c.transport.drainRequested());
  EXPECT_LT(hub.room(), backlog / 4 * 3) << "the waiting client should hold the publisher back";
  hub.publish(hits(3, 5));
  c.transport.setPendingBytes(backlog / 4);  // the peer read: whenDrained fires
  EXPECT_EQ(c.transport.value(), joined(0, 5));
  EXPECT_FALSE(c.transport.closed());
  EXPECT_EQ(hub.room(), backlog / 4 * 3);
  EXPECT_EQ(hub.slowClients(), 0u);
  c.disconnect();
}

TEST_F(PushClientWithPeerBehind, StopHandsOutPendingHitsAnyway) {
  hub.publish(hits(0, 3));
  reactor.runPending();
  EXPECT_EQ(c.transport.value(), "");  // waiting for its peer
  c.protocol->stopRequested();
  EXPECT_EQ(c.transport.value(), joined(0, 3));
  EXPECT_TRUE(c.transport.closed());
  EXPECT_FALSE(c.transport.aborted());
  c.disconnect();
}

TEST(WeblogProtocol, SlowPushClientGivenUpOnIsDisconnectedAndOthersAreUnaffected) {
  ManualReactor reactor;
  const std::size_t backlog = 4096;
  HitHub hub({100, backlog, backlog / 4 * 3});
  Client slow(reactor, hub, pushSettings(1000, backlog));
  Client fast(reactor, hub, pushSettings(1000, backlog));
  slow.connect();
  fast.connect();
  slow.transport.setPendingBytes(backlog - 100);  // the peer stopped reading
  hub.publish(hits(0, 1));
  reactor.advance(milliseconds(1000));
  EXPECT_FALSE(slow.transport.closed());  // it waits for its peer ...
  EXPECT_EQ(fast.transport.value(), "<hits>" + joined(0, 1));
  // ... until the factory gives up on it: it holds one hit, and the next
  // publish needs room for nearly the whole pacing bound.
  EXPECT_EQ(hub.cutLaggards(backlog / 4 * 3 - hit(0).size() + 1), 1u);
  reactor.runPending();
  EXPECT_TRUE(slow.transport.aborted());
  EXPECT_EQ(slow.transport.value(), "<hits>");
  EXPECT_EQ(hub.slowClients(), 1u);
  EXPECT_EQ(hub.subscriberCount(), 1u);  // left the hub at once
  bool logged = false;
  for (const auto& l : slow.transport.memoryLogger().lines)
    logged = logged || (l.level == protohost::LogLevel::Warning &&
                        l.text.find("held the log tailer back") != std::string::npos);
  EXPECT_TRUE(logged);
  slow.disconnect();
  hub.publish(hits(1, 2));
  reactor.advance(milliseconds(1000));
  EXPECT_EQ(fast.transport.value(), "<hits>" + joined(0, 2));
  fast.disconnect();
  EXPECT_EQ(reactor.pendingTimers(), 0u);
}

TEST(WeblogProtocol, ClientWhoseUnsentOutputPassesTheBoundIsDisconnected) {
  ManualReactor reactor;
  const std::size_t backlog = 4096;
  HitHub hub({100, backlog});
  Client c(reactor, hub, pushSettings(1000, backlog));
  c.connect();
  c.transport.setPendingBytes(backlog + 1);
  hub.publish(hits(0, 1));
  reactor.advance(milliseconds(1000));
  EXPECT_TRUE(c.transport.aborted());
  EXPECT_EQ(hub.slowClients(), 1u);
  bool logged = false;
  for (const auto& l : c.transport.memoryLogger().lines)
    logged = logged || (l.level == protohost::LogLevel::Warning &&
                        l.text.find("max_client_backlog_bytes") != std::string::npos);
  EXPECT_TRUE(logged);
  c.disconnect();
}

TEST(WeblogProtocol, ClientWhoseUnreadHitsOutgrowTheBoundIsDisconnectedNotSkipped) {
  ManualReactor reactor;
  const std::size_t backlog = 4096;
  HitHub hub({0, backlog});  // not paced: the hub drops what nobody can hold
  Client c(reactor, hub, pushSettings(1000, backlog));
  c.connect();
  c.transport.setPendingBytes(backlog / 2 + 1);  // half full: it waits for its peer
  int n = 0;
  while (hub.publishedHits() * hit(0).size() < 2 * backlog) {
    hub.publish(hits(n, n + 1));
    ++n;
  }
  reactor.runPending();
  EXPECT_FALSE(c.transport.closed());
  c.transport.setPendingBytes(0);  // the peer reads again: the hits it missed are gone
  EXPECT_TRUE(c.transport.aborted());
  EXPECT_EQ(c.transport.value(), "<hits>");
  EXPECT_EQ(hub.slowClients(), 1u);
  c.disconnect();
}

TEST(WeblogProtocol, PollAnswersEachRequestWithNewHitsOrNone) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  hub.publish(hits(0, 1));
  Client c(reactor, hub, pollSettings());
  c.connect();
  EXPECT_EQ(c.transport.take(), "<hits>");
  c.transport.feed(*c.protocol, "NEW?");
  EXPECT_EQ(c.transport.take(), "<none/>");
  hub.publish(hits(1, 3));
  c.transport.feed(*c.protocol, "NEW?");
  EXPECT_EQ(c.transport.take(), joined(1, 3));
  c.transport.feed(*c.protocol, "NEW?\r\nNEW?\n");
  EXPECT_EQ(c.transport.take(), "<none/><none/>");
  hub.publish(hits(3, 4));
  c.transport.feed(*c.protocol, "NEW?NEW?");  // several in one read: the first gets the hit
  EXPECT_EQ(c.transport.take(), joined(3, 4) + "<none/>");
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // poll mode runs no timer
  c.disconnect();
}

TEST(WeblogProtocol, PollFramingInEveryChunkSize) {
  const std::string requests = "NEW?NEW?\r\nNEW?\n  NEW?";
  for (std::size_t chunk = 1; chunk <= requests.size(); ++chunk) {
    ManualReactor reactor;
    HitHub hub({100, 1 << 20});
    Client c(reactor, hub, pollSettings());
    c.connect();
    hub.publish(hits(0, 2));
    c.transport.feed(*c.protocol, requests, chunk);
    EXPECT_EQ(c.transport.value(), "<hits>" + joined(0, 2) + "<none/><none/><none/>") << "chunk " << chunk;
    EXPECT_FALSE(c.transport.closed());
    weblogtest::parseHits(c.transport.value(), chunk);
    c.disconnect();
  }
}

TEST(WeblogProtocol, RequestSplitAcrossReadsIsAnsweredOnce) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pollSettings());
  c.connect();
  c.transport.clear();
  c.transport.feed(*c.protocol, "NE");
  EXPECT_EQ(c.transport.value(), "");
  c.transport.feed(*c.protocol, "W?");
  EXPECT_EQ(c.transport.value(), "<none/>");
  c.disconnect();
}

TEST(WeblogProtocol, PollGarbageClosesAfterAnsweringEarlierRequests) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pollSettings());
  c.connect();
  c.transport.feed(*c.protocol, "NEW?GET / HTTP/1.0\r\n");
  EXPECT_EQ(c.transport.value(), "<hits><none/>");
  EXPECT_TRUE(c.transport.closed());
  EXPECT_FALSE(c.transport.aborted());  // what was answered is still flushed
  EXPECT_EQ(hub.subscriberCount(), 0u);
  c.disconnect();
}

TEST(WeblogProtocol, PollClientThatNeverReadsIsDisconnected) {
  ManualReactor reactor;
  HitHub hub({100, 4096});
  WeblogSettings s = pollSettings();
  s.maxClientBacklogBytes = 4096;
  Client c(reactor, hub, s);
  c.connect();
  c.transport.setPendingBytes(5000);
  c.transport.feed(*c.protocol, "NEW?");
  EXPECT_TRUE(c.transport.aborted());
  EXPECT_EQ(hub.slowClients(), 1u);
  c.disconnect();
}

TEST(WeblogProtocol, PushClientInputIsIgnoredAndHalfCloseKeepsStreaming) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pushSettings(1000));
  c.connect();
  c.transport.feed(*c.protocol, "NEW?whatever\n");
  c.protocol->readEnded();
  EXPECT_FALSE(c.transport.closed());
  hub.publish(hits(0, 1));
  reactor.advance(milliseconds(1000));
  EXPECT_EQ(c.transport.value(), "<hits>" + joined(0, 1));
  c.disconnect();
}

TEST(WeblogProtocol, StopRequestedFlushesPendingHitsAndCloses) {
  ManualReactor reactor;
  HitHub hub({100, 1 << 20});
  Client c(reactor, hub, pushSettings(5000));
  c.connect();
  hub.publish(hits(0, 2));
  c.protocol->stopRequested();
  EXPECT_EQ(c.transport.value(), "<hits>" + joined(0, 2));
  EXPECT_TRUE(c.transport.closed());
  EXPECT_FALSE(c.transport.aborted());
  EXPECT_EQ(reactor.pendingTimers(), 0u);
  c.disconnect();
}
