// The lookup example on the SDK's test kit: the client's bytes through a
// MemoryTransport, the file read as deterministic deferred work
// (ManualReactor::runWork), and the upstream as a MemoryPair made by
// ManualReactor::acceptConnect (or refused by failConnect). Every input is fed
// in chunk sizes from 1 byte up, both from the client and from the upstream.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "LookupProtocol.h"
#include "protohost/testing/MemoryPair.h"

namespace {

using protohost::ConnectError;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryTransport;

// The upstream server: answers "GET key" with "VALUE up-key", or closes.
class FakeUpstream : public protohost::LineProtocol {
 public:
  void lineReceived(std::string_view line) override {
    asked.emplace_back(line);
    if (closeOnRequest) return transport().loseConnection();
    if (!silent) sendLine("VALUE up-" + std::string(line.substr(4)));
  }
  std::vector<std::string> asked;
  bool closeOnRequest = false;
  bool silent = false;  // never answers
};

std::filesystem::path makeRoot() {
  std::string dir = (std::filesystem::temp_directory_path() / "lookup-test-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  std::ofstream(std::filesystem::path(dir) / "alpha") << "local one\nnot this line\n";
  return dir;
}

class LookupTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override { client_.connect(lookup_); }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // The client sends @p bytes in chunks of the test's size.
  void send(std::string_view bytes) { client_.feed(lookup_, bytes, GetParam()); }
  // The one connect the protocol asked for (to the configured endpoint).
  protohost::ConnectId onlyConnect() {
    auto pending = reactor_.pendingConnects();
    if (pending.size() != 1) {
      ADD_FAILURE() << pending.size() << " connects pending, not 1";
      return {};
    }
    EXPECT_EQ(reactor_.endpointOf(pending[0]), "tcp:upstream.test:7000");
    return pending[0];
  }
  // The upstream accepts: bytes flow both ways, in the test's chunk size.
  protohost::testing::MemoryPair& accept() {
    auto& pair = reactor_.acceptConnect(onlyConnect(), upstream_);
    pair.setChunkSize(GetParam());
    pair.pump();
    return pair;
  }

  const std::filesystem::path root_ = makeRoot();
  FakeUpstream upstream_;  // outlives the reactor's MemoryPair
  ManualReactor reactor_;
  lookup::LookupProtocol lookup_{lookup::Settings{"tcp:upstream.test:7000", root_.string()}};
  MemoryTransport client_{reactor_};
};

TEST_P(LookupTest, ALocalFileIsReadOnTheWorkerPoolWithoutConnecting) {
  send("GET alpha\r\n");
  EXPECT_EQ(client_.value(), "");  // nothing before the work ran
  EXPECT_EQ(reactor_.queuedWork(), 1u);
  EXPECT_EQ(reactor_.runWork(), 1u);
  EXPECT_EQ(client_.value(), "VALUE local one\n");
  EXPECT_TRUE(reactor_.pendingConnects().empty());
  EXPECT_FALSE(client_.paused());
}

TEST_P(LookupTest, MissesGoUpstreamOverOneConnectionInOrder) {
  send("GET beta\nGET alpha\nGET gamma\n");  // pipelined: answered one at a time
  reactor_.runWork();
  auto& pair = accept();
  EXPECT_EQ(client_.value(), "VALUE up-beta\n");
  reactor_.runPending();  // the held lines come after the resume
  reactor_.runWork();     // alpha: local
  reactor_.runWork();     // gamma: upstream, over the same connection
  pair.pump();
  EXPECT_EQ(client_.value(), "VALUE up-beta\nVALUE local one\nVALUE up-gamma\n");
  EXPECT_EQ(upstream_.asked, (std::vector<std::string>{"GET beta", "GET gamma"}));
  EXPECT_TRUE(reactor_.pendingConnects().empty());
}

TEST_P(LookupTest, AFailedConnectIsAnErrorAndTheNextMissConnectsAgain) {
  send("GET beta\n");
  reactor_.runWork();
  ASSERT_TRUE(reactor_.failConnect(onlyConnect(), {ConnectError::Kind::Refused, "127.0.0.1:9: Connection refused"}));
  EXPECT_EQ(client_.value(), "ERROR upstream: 127.0.0.1:9: Connection refused\n");
  reactor_.runPending();
  send("GET gamma\n");
  reactor_.runWork();
  accept();
  EXPECT_EQ(client_.value(), "ERROR upstream: 127.0.0.1:9: Connection refused\nVALUE up-gamma\n");
}

TEST_P(LookupTest, AnUpstreamThatClosesWhileAskedIsAnError) {
  upstream_.closeOnRequest = true;
  send("GET beta\n");
  reactor_.runWork();
  auto& pair = accept();
  EXPECT_TRUE(pair.clientLost());
  EXPECT_EQ(client_.value(), "ERROR upstream closed\n");
  EXPECT_FALSE(client_.closed());  // the client is served on
}

TEST_P(LookupTest, BadRequestsAreRefusedWithoutWork) {
  send("PUT alpha\nGET ../alpha\nGET .hidden\nGET \nGET a/b\n");
  reactor_.runPending();
  EXPECT_EQ(reactor_.queuedWork(), 0u);
  std::string usage = "ERROR usage: GET key\n";
  EXPECT_EQ(client_.value(), usage + usage + usage + usage + usage);
}

TEST_P(LookupTest, AFullWorkerQueueIsAnsweredAtOnce) {
  reactor_.setWorkQueueLimit(0);
  send("GET alpha\n");
  EXPECT_EQ(client_.value(), "ERROR busy\n");
  reactor_.stopWork();  // as when the host stops
  reactor_.runPending();
  send("GET alpha\n");
  EXPECT_EQ(client_.value(), "ERROR busy\nERROR busy\n");
}

TEST_P(LookupTest, TheClientLeavingWhileTheUpstreamIsAskedWritesNothing) {
  upstream_.silent = true;
  send("GET beta\n");
  reactor_.runWork();
  auto& pair = accept();
  ASSERT_EQ(upstream_.asked.size(), 1u);
  // The client goes; as the host does, its outbound connection is closed
  // before its own connectionLost, and the answer has nowhere to go.
  client_.abortConnection();
  pair.clientTransport().abortConnection();
  pair.pump();
  EXPECT_TRUE(pair.clientLost());
  client_.disconnect(lookup_);
  EXPECT_EQ(client_.value(), "");
}

INSTANTIATE_TEST_SUITE_P(Chunk, LookupTest, ::testing::Values(1, 2, 3, 5, 8, 13, 64),
                         ::testing::PrintToStringParamName());

}  // namespace
