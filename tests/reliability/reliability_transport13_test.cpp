// The SDK 1.3 Transport calls on the real host, with the test-only
// transport13 plugin (tests/fixtures/transport13): writeSequence arrives whole
// and in order also when the kernel takes only part of it (a client with a
// small receive buffer) and with more pieces than one sendmsg carries;
// shutdownWrite sends a FIN after what was written, drops later writes and
// keeps reading; abortConnection resets; ConnectionHandle and FactoryHandle posts from a worker thread
// run on the reactor, and a post after the connection ended returns false.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "HostProcess.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;
using e2e::TestClient;

class Transport13E2e : public ::testing::Test {
 protected:
  void SetUp() override {
    HostIni ini(host.linkPlugins({std::string(e2e::kTestPluginDir) + "/transport13.so"}));
    ini.listener("t13", "transport13");
    host.startWithConfig(ini.text());
    port = host.port("t13");
  }
  static std::string pattern(std::size_t bytes) {
    std::string s(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
  }
  HostProcess host;
  DumpLogOnFailure dump{host};
  std::uint16_t port = 0;
};

TEST_F(Transport13E2e, WriteSequenceLargerThanTheSocketTakesArrivesWholeAndInOrder) {
  TestClient::Options small;
  small.receiveBuffer = 4096;  // the host's sendmsg is partial; the rest is queued in order
  TestClient c = TestClient::connect(port, small);
  constexpr std::size_t kBytes = 8u << 20;
  c.sendAll("seq " + std::to_string(kBytes) + " 100\n");
  const std::string got = c.recvExactly(kBytes + 5);
  EXPECT_TRUE(got.substr(0, kBytes) == pattern(kBytes)) << "the sequence arrived changed or out of order";
  EXPECT_EQ(got.substr(kBytes), "\nend\n");
}

TEST_F(Transport13E2e, WriteSequenceWithMorePiecesThanOneSendmsgCarries) {
  TestClient c = TestClient::connect(port);
  c.sendAll("seq 100000 1000\n");  // 1000 pieces of 100 bytes: 64 per sendmsg at most
  const std::string got = c.recvExactly(100000 + 5);
  EXPECT_TRUE(got.substr(0, 100000) == pattern(100000));
  EXPECT_EQ(got.substr(100000), "\nend\n");
}

TEST_F(Transport13E2e, ShutdownWriteSendsFinAfterTheOutputDropsLaterWritesAndKeepsReading) {
  TestClient c = TestClient::connect(port);
  c.sendAll("half\n");
  const TestClient::Closed closed = c.waitClosed(5s);
  ASSERT_EQ(closed.how, TestClient::Close::Eof) << "no FIN from shutdownWrite";
  EXPECT_EQ(closed.data, "bye\n") << "what was written before shutdownWrite, and nothing after it";
  // The host's sending side is shut, its receiving side is not: these lines reach the protocol.
  c.sendAll("one\ntwo\nthree\n");
  c.shutdownWrite();
  EXPECT_TRUE(host.waitForLog("after half-close: 3 lines", 5s)) << "the protocol stopped reading after shutdownWrite";
}

TEST_F(Transport13E2e, AbortConnectionResetsTheConnection) {
  TestClient c = TestClient::connect(port);
  c.sendAll("abort\n");
  const TestClient::Closed closed = c.waitClosed(5s);
  EXPECT_EQ(closed.how, TestClient::Close::Reset) << "an abort must reach the peer as RST, not FIN (error "
                                                  << closed.error << ")";
}

TEST_F(Transport13E2e, HandlesPostFromAWorkerThreadRunOnTheReactor) {
  TestClient c = TestClient::connect(port);
  c.sendAll("handle\n");
  std::set<std::string> lines{c.readLine(), c.readLine()};
  EXPECT_EQ(lines, (std::set<std::string>{"via connection handle", "via factory handle"}));
}

TEST_F(Transport13E2e, APostThroughAHandleOfAClosedConnectionReturnsFalse) {
  TestClient c = TestClient::connect(port);
  c.sendAll("gone\n");
  const TestClient::Closed closed = c.waitClosed(5s);
  EXPECT_EQ(closed.how, TestClient::Close::Eof);
  EXPECT_EQ(closed.data, "");
  EXPECT_TRUE(host.waitForLog("post after close: false", 10s));
}

}  // namespace
}  // namespace protohost::reliability
