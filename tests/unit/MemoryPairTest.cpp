// The SDK test kit's in-memory connection (sdk/include/protohost/testing/
// MemoryPair.h, Twisted's iosim) and ManualReactor::connect answered with it.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "EchoProtocol.h"
#include "protohost/LineProtocol.h"
#include "protohost/testing/MemoryPair.h"

using protohost::ConnectError;
using protohost::ConnectId;
using protohost::DisconnectReason;
using protohost::Protocol;
using protohost::plugins::echo::EchoProtocol;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryPair;

namespace {

// Records what arrives, how the connection ended, and optionally sends on connect.
class Peer : public Protocol {
 public:
  explicit Peer(std::string hello = {}) : hello_(std::move(hello)) {}
  void connectionMade() override {
    if (!hello_.empty()) transport().write(hello_);
  }
  void dataReceived(std::string_view data) override {
    got += data;
    ++chunks;
  }
  void readEnded() override {
    ++eofs;
    if (closeOnEof) transport().loseConnection();
  }
  void connectionLost(const DisconnectReason& reason) override {
    lost = true;
    lostKind = reason.kind;
  }
  std::string got;
  int chunks = 0;
  int eofs = 0;
  bool closeOnEof = true;
  bool lost = false;
  DisconnectReason::Kind lostKind{};

 private:
  std::string hello_;
};

}  // namespace

TEST(MemoryPair, BytesGoBothWaysInEveryChunkSize) {
  const std::string request(100, 'q');
  for (std::size_t chunk = 1; chunk <= request.size() + 1; ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    ManualReactor r;
    Peer client(request);
    EchoProtocol server;
    MemoryPair pair(client, server, r);
    pair.setChunkSize(chunk);
    EXPECT_EQ(pair.pump(), 2 * request.size());
    EXPECT_EQ(client.got, request);
    EXPECT_EQ(client.chunks, static_cast<int>((request.size() + chunk - 1) / chunk));
    EXPECT_FALSE(pair.clientLost());
  }
}

TEST(MemoryPair, LoseConnectionFlushesThenTheServerSeesEofAndBothEnd) {
  ManualReactor r;
  Peer client("ping");
  EchoProtocol server;
  MemoryPair pair(client, server, r);
  client.transport().loseConnection();
  pair.pump();
  EXPECT_TRUE(pair.clientLost());
  EXPECT_EQ(client.lostKind, DisconnectReason::Kind::ClosedLocally);
  EXPECT_EQ(client.got, "") << "the echo comes back after the client closed: dropped";
  EXPECT_TRUE(pair.serverLost()) << "echo's default readEnded closes";
}

TEST(MemoryPair, ShutdownWriteIsAHalfCloseTheOtherSideStillAnswers) {
  ManualReactor r;
  Peer client("request");
  client.closeOnEof = true;
  EchoProtocol server;
  MemoryPair pair(client, server, r);
  client.transport().shutdownWrite();
  pair.pump();
  EXPECT_EQ(client.got, "request") << "the answer after the half-close arrives";
  EXPECT_EQ(client.eofs, 1) << "the server closed after its EOF: the client sees the EOF";
  EXPECT_TRUE(pair.serverLost());
  EXPECT_TRUE(pair.clientLost());
  EXPECT_EQ(client.lostKind, DisconnectReason::Kind::ClosedByPeer);
}

TEST(MemoryPair, AbortIsAResetForThePeerAndDropsUnsentOutput) {
  ManualReactor r;
  Peer client;
  Peer server;
  MemoryPair pair(client, server, r);
  client.transport().write("never sent");
  client.transport().abortConnection();
  pair.pump();
  EXPECT_EQ(server.got, "");
  EXPECT_TRUE(client.lost);
  EXPECT_EQ(client.lostKind, DisconnectReason::Kind::ClosedLocally);
  EXPECT_TRUE(server.lost);
  EXPECT_EQ(server.lostKind, DisconnectReason::Kind::Error);
}

TEST(MemoryPair, APausedReaderHoldsBytesAndTheWriterSeesThemPending) {
  ManualReactor r;
  Peer client;
  Peer server;
  MemoryPair pair(client, server, r);
  server.transport().pauseReading();
  int drained = 0;
  client.transport().write(std::string(1000, 'x'));
  pair.pump();
  EXPECT_EQ(server.got, "");
  EXPECT_EQ(client.transport().pendingBytes(), 1000u);
  client.transport().whenDrained(0, [&] { ++drained; });
  pair.pump();
  EXPECT_EQ(drained, 0);
  server.transport().resumeReading();
  pair.pump();
  EXPECT_EQ(server.got.size(), 1000u);
  EXPECT_EQ(client.transport().pendingBytes(), 0u);
  EXPECT_EQ(drained, 1);
}

TEST(MemoryPair, PumpGivesUpOnAConversationThatNeverEnds) {
  struct PingPong : Protocol {
    void connectionMade() override { transport().write("x"); }
    void dataReceived(std::string_view data) override { transport().write(data); }
  };
  ManualReactor r;
  PingPong a, b;
  MemoryPair pair(a, b, r);
  EXPECT_THROW(pair.pump(1000), std::runtime_error);
}

TEST(MemoryPair, LinesAndHandlesWorkAcrossThePair) {
  struct Shout : protohost::LineProtocol {
    void lineReceived(std::string_view line) override {
      std::string up(line);
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      sendLine(up);
    }
  };
  ManualReactor r;
  Peer client("hi\nthere\n");
  Shout server;
  MemoryPair pair(client, server, r);
  pair.setChunkSize(1);
  pair.pump();
  EXPECT_EQ(client.got, "HI\nTHERE\n");
  auto handle = server.transport().handle();
  EXPECT_TRUE(handle.post([](protohost::Transport& t) { t.write("pushed\n"); }));
  pair.pump();
  EXPECT_EQ(client.got, "HI\nTHERE\npushed\n");
  client.transport().loseConnection();
  pair.pump();
  EXPECT_FALSE(handle.alive());
}

// ---- ManualReactor::connect, answered by the test ----

TEST(ManualReactorConnect, AcceptConnectWiresTheClientToAServer) {
  ManualReactor r;
  std::vector<std::string> failures;
  ConnectId id = r.connect("tcp:db.example:5432:timeout=500", std::make_unique<Peer>("hello"),
                           [&](const ConnectError& e) { failures.push_back(e.detail); });
  ASSERT_TRUE(id);
  ASSERT_EQ(r.pendingConnects().size(), 1u);
  EXPECT_EQ(r.endpointOf(id), "tcp:db.example:5432:timeout=500");
  EchoProtocol server;
  MemoryPair& pair = r.acceptConnect(id, server);
  EXPECT_TRUE(r.pendingConnects().empty());
  pair.pump();
  auto& client = static_cast<Peer&>(pair.client());
  EXPECT_EQ(client.got, "hello");
  EXPECT_TRUE(failures.empty());
  EXPECT_FALSE(r.cancelConnect(id)) << "already connected";
  EXPECT_THROW(r.acceptConnect(id, server), std::invalid_argument);
}

TEST(ManualReactorConnect, FailConnectReportsTheReasonAndDestroysTheProtocolWithoutAHook) {
  struct Watched : Peer {
    explicit Watched(bool& destroyed, bool& made) : destroyed_(destroyed), made_(made) {}
    ~Watched() override { destroyed_ = true; }
    void connectionMade() override { made_ = true; }
    bool& destroyed_;
    bool& made_;
  };
  ManualReactor r;
  bool destroyed = false, made = false;
  std::vector<ConnectError::Kind> failures;
  ConnectId id = r.connect("tcp:127.0.0.1:9", std::make_unique<Watched>(destroyed, made),
                           [&](const ConnectError& e) { failures.push_back(e.kind); });
  EXPECT_TRUE(r.failConnect(id, {ConnectError::Kind::Refused, "127.0.0.1:9: Connection refused"}));
  EXPECT_EQ(failures, std::vector<ConnectError::Kind>{ConnectError::Kind::Refused});
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(made);
  EXPECT_FALSE(r.failConnect(id, {}));
}

TEST(ManualReactorConnect, CancelConnectReportsCancelledLater) {
  ManualReactor r;
  std::vector<ConnectError::Kind> failures;
  ConnectId a = r.connect("tcp:a:1", std::make_unique<Peer>(), [&](const ConnectError& e) { failures.push_back(e.kind); });
  ConnectId b = r.connect("tcp:b:1", std::make_unique<Peer>(), [&](const ConnectError& e) { failures.push_back(e.kind); });
  EXPECT_NE(a, b);
  EXPECT_TRUE(r.cancelConnect(a));
  EXPECT_TRUE(failures.empty()) << "never from inside cancelConnect";
  r.runPending();
  EXPECT_EQ(failures, std::vector<ConnectError::Kind>{ConnectError::Kind::Cancelled});
  EXPECT_FALSE(r.cancelConnect(a));
  ASSERT_EQ(r.pendingConnects().size(), 1u);
  EXPECT_EQ(r.pendingConnects()[0], b);
}
