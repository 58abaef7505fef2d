// End-to-end: signals. TERM and INT stop cleanly (exit 0, connected clients
// get EOF); HUP is logged and the host keeps serving.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

class E2eSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    HostIni ini;
    ini.listener("echo", "echo");
    host_.startWithConfig(ini.text());
    port_ = host_.port("echo");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- host stderr ----\n" << host_.stderrText() << "---------------------\n";
  }

  HostProcess host_;
  std::uint16_t port_ = 0;
};

// 5a. SIGTERM with clients connected: they get EOF, the host exits 0.
TEST_F(E2eSignals, SigtermWithClientsConnectedExitsZeroAndClientsGetEof) {
  std::vector<TestClient> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(TestClient::connect(port_, TestClient::Options{10s, 0, 0}));
    ASSERT_EQ(clients.back().roundTrip("hi " + std::to_string(i)), "hi " + std::to_string(i));
  }
  ASSERT_TRUE(host_.signal(SIGTERM));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    TestClient::Closed closed = clients[i].waitClosed();
    EXPECT_EQ(closed.how, TestClient::Close::Eof) << "client " << i << " (errno " << closed.error << ")";
    EXPECT_EQ(closed.data, "") << "client " << i;
  }
  EXPECT_EQ(host_.waitExit(10s), 0);
  EXPECT_TRUE(host_.waitForLog("SIGTERM", 0ms).has_value());
}

// 5b. SIGINT exits 0 as well.
TEST_F(E2eSignals, SigintExitsZero) {
  TestClient c = TestClient::connect(port_, TestClient::Options{10s, 0, 0});
  ASSERT_EQ(c.roundTrip("x"), "x");
  ASSERT_TRUE(host_.signal(SIGINT));
  EXPECT_EQ(c.waitClosed().how, TestClient::Close::Eof);
  EXPECT_EQ(host_.waitExit(10s), 0);
  EXPECT_TRUE(host_.waitForLog("SIGINT", 0ms).has_value());
}

// 5c. SIGHUP is logged and does not stop the host: connections made before
// keep working, new ones are served, and a later TERM still exits 0.
TEST_F(E2eSignals, SighupDoesNotStopTheHost) {
  TestClient before = TestClient::connect(port_);
  ASSERT_EQ(before.roundTrip("before HUP"), "before HUP");

  for (int round = 0; round < 2; ++round) {
    const std::size_t mark = host_.logLineCount();
    ASSERT_TRUE(host_.signal(SIGHUP));
    ASSERT_TRUE(host_.waitForLog("SIGHUP", 5s, mark).has_value()) << "SIGHUP not logged (round " << round << ")";
    EXPECT_EQ(before.roundTrip("after HUP " + std::to_string(round)), "after HUP " + std::to_string(round));
    TestClient after = TestClient::connect(port_);
    EXPECT_EQ(after.roundTrip("new after HUP"), "new after HUP");
    EXPECT_TRUE(host_.running());
  }

  ASSERT_TRUE(host_.signal(SIGTERM));
  EXPECT_EQ(host_.waitExit(10s), 0);
}

}  // namespace
}  // namespace protohost::e2e
