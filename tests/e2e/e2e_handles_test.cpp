// End-to-end: the handle example of docs/writing-a-plugin.md (the test-only
// background plugin, tests/fixtures/background) in the real host. A std::thread
// of the plugin's own answers through ConnectionHandle::post; a post for a
// connection that is gone returns false; the factory joins its thread at stop.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

class E2eHandles : public ::testing::Test {
 protected:
  void SetUp() override {
    HostIni ini(host_.linkPlugins({std::string(kTestPluginDir) + "/background.so"}));
    ini.listener("background", "background");
    host_.startWithConfig(ini.text());
    port_ = host_.port("background");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- host stderr ----\n" << host_.stderrText() << "---------------------\n";
  }
  void stopCleanly() {
    ASSERT_TRUE(host_.signal(SIGTERM));
    EXPECT_EQ(host_.waitExit(20s), 0) << "the factory's stop did not join its thread";
  }

  HostProcess host_;
  std::uint16_t port_ = 0;
};

TEST_F(E2eHandles, APluginThreadAnswersThroughTheConnectionsHandle) {
  TestClient c = TestClient::connect(port_);
  c.sendAll("abc\nhello handles\n");
  EXPECT_EQ(c.readLine(), "cba");
  EXPECT_EQ(c.readLine(), "seldnah olleh");
  c.sendAll("dropped\n");
  EXPECT_EQ(c.readLine(), "dropped 0");
  c.close();
  stopCleanly();
}

TEST_F(E2eHandles, APostForAConnectionThatIsGoneReturnsFalse) {
  {
    TestClient gone = TestClient::connect(port_);
    gone.sendAll("hold\n");  // the thread posts for it once it is gone
  }
  TestClient c = TestClient::connect(port_);
  // The hold may still be waiting for the first client's end: ask until it was counted.
  std::string answer;
  const auto until = std::chrono::steady_clock::now() + 10s;
  do {
    c.sendAll("dropped\n");
    answer = c.readLine();
  } while (answer == "dropped 0" && std::chrono::steady_clock::now() < until);
  EXPECT_EQ(answer, "dropped 1");
  c.close();
  stopCleanly();
}

}  // namespace
}  // namespace protohost::e2e
