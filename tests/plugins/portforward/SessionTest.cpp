// The forwarding rules (Session.h) in memory: a test client talks to the
// plugin's ClientProtocol through one MemoryPair; the plugin's connect is
// answered with a second MemoryPair to a test upstream. Chunk sizes down to 1.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "Session.h"
#include "protohost/testing/MemoryPair.h"

using namespace protohost;
using namespace protohost::plugins::portforward;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryPair;
using protohost::testing::MemoryTransport;

namespace {

// A test peer: records what it gets; optionally echoes; closes on EOF unless told not to.
class Peer : public Protocol {
 public:
  void dataReceived(std::string_view data) override {
    received.append(data);
    if (echo) transport().write(data);
  }
  void readEnded() override {
    ended = true;
    if (closeOnEof) transport().loseConnection();
  }
  void connectionLost(const DisconnectReason& reason) override { lost = reason; }
  void stopRequested() override {}

  std::string received;
  bool echo = false;
  bool closeOnEof = true;
  bool ended = false;
  std::optional<DisconnectReason> lost;
};

std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed + i / 251) % 26);
  return s;
}

class ForwardTest : public ::testing::Test {
 protected:
  explicit ForwardTest(Settings s = base()) : settings_(std::make_shared<const Settings>(std::move(s))) {}

  static Settings base() {
    Settings s;
    s.upstream = "tcp:127.0.0.1:9000";
    s.connectTimeoutMs = 700;
    s.bufferBytes = 4096;
    s.endpoint = "tcp:127.0.0.1:9000:timeout=700";
    return s;
  }

  // The client connects: the plugin's connectionMade asks for the upstream.
  void start() {
    forwarder_ = std::make_unique<ClientProtocol>(settings_);
    clientPair_ = std::make_unique<MemoryPair>(client, *forwarder_, reactor);
  }
  protohost::ConnectId pendingConnect() {
    auto ids = reactor.pendingConnects();
    EXPECT_EQ(ids.size(), 1u);
    return ids.empty() ? protohost::ConnectId{} : ids.front();
  }
  void acceptUpstream() { upstreamPair_ = &reactor.acceptConnect(pendingConnect(), upstream); }

  // Pumps both pairs until neither moves anything for a few rounds.
  void pumpAll() {
    for (int quiet = 0, rounds = 0; quiet < 3; ++rounds) {
      ASSERT_LT(rounds, 100000) << "still busy";
      std::size_t moved = clientPair_->pump();
      if (upstreamPair_) moved += upstreamPair_->pump();
      moved += reactor.runPending();
      quiet = moved == 0 ? quiet + 1 : 0;
    }
  }
  // Writes @p data @p piece bytes at a time, pumping after each, as a socket
  // stream arrives. (The kit's pendingBytes counts what the peer holds unread,
  // updated as pump() moves bytes: one write of everything would reach the
  // plugin in a single delivery before any back-pressure shows.)
  void writeInPieces(MemoryTransport& from, const std::string& data, std::size_t piece) {
    for (std::size_t off = 0; off < data.size(); off += piece) {
      from.write(std::string_view(data).substr(off, piece));
      pumpAll();
    }
  }
  void setChunk(std::size_t n) {
    clientPair_->setChunkSize(n);
    if (upstreamPair_) upstreamPair_->setChunkSize(n);
  }

  // The plugin's two transports, as the test peers' pairs see them.
  MemoryTransport& forwarderClientSide() { return clientPair_->serverTransport(); }
  MemoryTransport& forwarderUpstreamSide() { return upstreamPair_->clientTransport(); }
  MemoryTransport& clientTransport() { return clientPair_->clientTransport(); }
  MemoryTransport& upstreamTransport() { return upstreamPair_->serverTransport(); }

  std::shared_ptr<const Settings> settings_;
  ManualReactor reactor;
  Peer client;
  Peer upstream;
  std::unique_ptr<ClientProtocol> forwarder_;
  std::unique_ptr<MemoryPair> clientPair_;
  MemoryPair* upstreamPair_ = nullptr;  // the reactor's
};

}  // namespace

TEST_F(ForwardTest, ConnectsToTheConfiguredEndpointWithItsTimeout) {
  start();
  EXPECT_EQ(reactor.endpointOf(pendingConnect()), "tcp:127.0.0.1:9000:timeout=700");
}

TEST_F(ForwardTest, ForwardsBothWaysByteExactInAnyChunking) {
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, SIZE_MAX}) {
    SCOPED_TRACE(chunk);
    client = Peer{};
    upstream = Peer{};
    upstream.echo = true;
    upstreamPair_ = nullptr;
    start();
    acceptUpstream();
    setChunk(chunk);
    const std::string data = pattern(20000, chunk);
    for (std::size_t off = 0; off < data.size(); off += 3000) {
      clientTransport().write(std::string_view(data).substr(off, 3000));
      pumpAll();
    }
    EXPECT_EQ(upstream.received.size(), data.size());
    EXPECT_TRUE(upstream.received == data);
    EXPECT_TRUE(client.received == data);
  }
}

TEST_F(ForwardTest, HoldsClientBytesAndEofUntilTheUpstreamConnects) {
  start();
  clientTransport().write("early ");
  clientTransport().write("bytes");
  clientTransport().shutdownWrite();
  pumpAll();
  EXPECT_FALSE(forwarderClientSide().paused());  // under the bound: held, reading goes on
  upstream.closeOnEof = false;
  acceptUpstream();
  pumpAll();
  EXPECT_EQ(upstream.received, "early bytes");
  EXPECT_TRUE(upstream.ended);
  EXPECT_FALSE(client.ended);  // the upstream has not sent its EOF yet
  upstreamTransport().write("reply");
  upstreamTransport().shutdownWrite();
  pumpAll();
  EXPECT_EQ(client.received, "reply");
  EXPECT_TRUE(client.ended);
  EXPECT_TRUE(clientPair_->serverLost());
  EXPECT_TRUE(upstreamPair_->clientLost());
}

TEST_F(ForwardTest, PausesTheClientWhileMoreThanTheBoundWaitsForTheConnect) {
  start();
  const std::string data = pattern(3 * 4096);
  clientTransport().write(data);
  setChunk(1000);
  pumpAll();
  EXPECT_TRUE(forwarderClientSide().paused());
  // What the plugin took (and holds) stays within the bound plus one read; the rest waits at the client.
  EXPECT_GE(clientTransport().pendingBytes(), data.size() - 4096 - 1000);
  acceptUpstream();
  pumpAll();
  EXPECT_FALSE(forwarderClientSide().paused());
  EXPECT_TRUE(upstream.received == data);
}

TEST_F(ForwardTest, SlowUpstreamPausesTheClientAndMemoryStaysBounded) {
  start();
  acceptUpstream();
  setChunk(512);
  upstreamTransport().pauseReading();  // the upstream stops reading
  const std::string data = pattern(200000);
  writeInPieces(clientTransport(), data, 512);
  EXPECT_TRUE(forwarderClientSide().paused());
  // Unsent to the upstream: at most the bound plus two pieces (the kit counts a
  // piece as pending one round after the plugin wrote it); the rest waits at the client.
  EXPECT_LE(forwarderUpstreamSide().pendingBytes(), 4096u + 2 * 512u);
  EXPECT_GE(clientTransport().pendingBytes(), data.size() - 4096 - 2 * 512);
  upstreamTransport().resumeReading();
  pumpAll();
  EXPECT_FALSE(forwarderClientSide().paused());
  EXPECT_TRUE(upstream.received == data);
}

TEST_F(ForwardTest, SlowClientPausesTheUpstream) {
  start();
  acceptUpstream();
  setChunk(300);
  clientTransport().pauseReading();  // the client stops reading
  const std::string data = pattern(100000, 3);
  writeInPieces(upstreamTransport(), data, 300);
  EXPECT_TRUE(forwarderUpstreamSide().paused());
  EXPECT_LE(forwarderClientSide().pendingBytes(), 4096u + 2 * 300u);
  EXPECT_GE(upstreamTransport().pendingBytes(), data.size() - 4096 - 2 * 300);
  clientTransport().resumeReading();
  pumpAll();
  EXPECT_FALSE(forwarderUpstreamSide().paused());
  EXPECT_TRUE(client.received == data);
}

TEST_F(ForwardTest, ClientHalfCloseReachesTheUpstreamWhichGoesOnSending) {
  start();
  acceptUpstream();
  upstream.closeOnEof = false;
  clientTransport().write("request");
  clientTransport().shutdownWrite();
  pumpAll();
  EXPECT_TRUE(upstream.ended);
  EXPECT_TRUE(forwarderUpstreamSide().writeShutDown());
  EXPECT_FALSE(clientPair_->serverLost());
  upstreamTransport().write("answer after the client's EOF");
  pumpAll();
  EXPECT_EQ(client.received, "answer after the client's EOF");
  upstreamTransport().loseConnection();
  pumpAll();
  EXPECT_TRUE(client.ended);
  EXPECT_TRUE(clientPair_->serverLost());
  ASSERT_TRUE(client.lost);
  EXPECT_NE(client.lost->kind, DisconnectReason::Kind::Error);
}

TEST_F(ForwardTest, UpstreamHalfCloseReachesTheClientWhichGoesOnSending) {
  start();
  acceptUpstream();
  client.closeOnEof = false;
  upstream.closeOnEof = false;
  upstreamTransport().write("banner");
  upstreamTransport().shutdownWrite();
  pumpAll();
  EXPECT_TRUE(client.ended);
  EXPECT_EQ(client.received, "banner");
  EXPECT_TRUE(forwarderClientSide().writeShutDown());
  clientTransport().write("still talking");
  pumpAll();
  EXPECT_EQ(upstream.received, "still talking");
  EXPECT_FALSE(upstreamPair_->clientLost());
  clientTransport().shutdownWrite();
  pumpAll();
  EXPECT_TRUE(upstream.ended);
  EXPECT_TRUE(upstreamPair_->clientLost());  // both EOFs: the upstream is closed, then the client
  EXPECT_TRUE(clientPair_->serverLost());
}

TEST_F(ForwardTest, UpstreamResetAbortsTheClient) {
  start();
  acceptUpstream();
  clientTransport().write("x");
  pumpAll();
  upstreamTransport().abortConnection();
  pumpAll();
  ASSERT_TRUE(client.lost);
  EXPECT_EQ(client.lost->kind, DisconnectReason::Kind::Error);  // the kit's reset
  EXPECT_TRUE(forwarderClientSide().aborted());
}

TEST_F(ForwardTest, ClientResetAbortsTheUpstream) {
  start();
  acceptUpstream();
  clientTransport().write("x");
  pumpAll();
  clientTransport().abortConnection();
  pumpAll();
  ASSERT_TRUE(upstream.lost);
  EXPECT_EQ(upstream.lost->kind, DisconnectReason::Kind::Error);
  EXPECT_TRUE(forwarderUpstreamSide().aborted());
}

TEST_F(ForwardTest, UpstreamCleanCloseClosesTheClientAfterFlushing) {
  start();
  acceptUpstream();
  upstreamTransport().write("bye");
  upstreamTransport().loseConnection();
  pumpAll();
  EXPECT_EQ(client.received, "bye");
  ASSERT_TRUE(client.lost);
  EXPECT_FALSE(forwarderClientSide().aborted());
}

TEST_F(ForwardTest, ConnectFailureClosesTheClientWithAWarning) {
  start();
  clientTransport().write("lost bytes");
  pumpAll();
  reactor.failConnect(pendingConnect(), {ConnectError::Kind::Refused, "127.0.0.1:9000: Connection refused"});
  pumpAll();
  ASSERT_TRUE(client.lost);
  EXPECT_TRUE(client.received.empty());
  EXPECT_FALSE(forwarderClientSide().aborted());
  const auto& lines = forwarderClientSide().memoryLogger().lines;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, LogLevel::Warning);
  EXPECT_EQ(lines[0].text,
            "upstream tcp:127.0.0.1:9000 refused: 127.0.0.1:9000: Connection refused; closing the client");
}

TEST_F(ForwardTest, ClientGoneBeforeTheConnectAnswerLeavesNothing) {
  start();
  clientTransport().abortConnection();
  pumpAll();
  EXPECT_TRUE(clientPair_->serverLost());
  // The host drops the connect with its owner; a late failure report finds no client.
  reactor.failConnect(pendingConnect(), {ConnectError::Kind::Timeout, "timed out"});
  EXPECT_TRUE(forwarderClientSide().memoryLogger().lines.empty());
}

TEST_F(ForwardTest, DrainingLeavesConnectionsInFlightOpen) {
  start();
  acceptUpstream();
  forwarder_->stopRequested();
  pumpAll();
  EXPECT_FALSE(clientPair_->serverLost());
  clientTransport().write("after TERM");
  pumpAll();
  EXPECT_EQ(upstream.received, "after TERM");
}

namespace {
Settings withProxy(SendProxy mode) {
  Settings s;
  s.upstream = "tcp:127.0.0.1:9000";
  s.sendProxy = mode;
  return s;
}
class ProxyV1Test : public ForwardTest {
 protected:
  ProxyV1Test() : ForwardTest(withProxy(SendProxy::V1)) {}
};
class ProxyV2Test : public ForwardTest {
 protected:
  ProxyV2Test() : ForwardTest(withProxy(SendProxy::V2)) {}
};
}  // namespace

TEST_F(ProxyV1Test, HeaderCarriesTheClientAddressBeforeItsBytes) {
  start();
  clientTransport().write("GET /");
  pumpAll();
  forwarderClientSide().setPeer({"192.0.2.1", 49152});
  forwarderClientSide().setLocal({"198.51.100.7", 443});
  acceptUpstream();
  pumpAll();
  EXPECT_EQ(upstream.received, "PROXY TCP4 192.0.2.1 198.51.100.7 49152 443\r\nGET /");
}

TEST_F(ProxyV2Test, HeaderIsTheBinaryForm) {
  start();
  forwarderClientSide().setPeer({"2001:db8::1", 1});
  forwarderClientSide().setLocal({"2001:db8::7", 2});
  acceptUpstream();
  clientTransport().write("x");
  pumpAll();
  ASSERT_EQ(upstream.received.size(), 16u + 36u + 1u);
  EXPECT_EQ(upstream.received.substr(0, 12), std::string("\r\n\r\n\0\r\nQUIT\n", 12));
  EXPECT_EQ(upstream.received[13], '\x21');
  EXPECT_EQ(upstream.received.back(), 'x');
}
