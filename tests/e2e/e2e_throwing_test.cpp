// End-to-end: a plugin that throws from dataReceived (the test plugin
// "throwing", tests/fixtures/throwing) loses only that connection; the error
// is logged with the plugin's name, and the rest of the host serves on.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

class E2eThrowingPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    // One plugins_dir holding the shipped echo.so and the test-only throwing.so.
    std::string plugins = host_.linkPlugins({std::string(kPluginDir) + "/echo.so",
                                             std::string(kTestPluginDir) + "/throwing.so"});
    HostIni ini(plugins);
    ini.listener("echo", "echo");
    ini.listener("throwing", "throwing");
    host_.startWithConfig(ini.text());
    echoPort_ = host_.port("echo");
    throwingPort_ = host_.port("throwing");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- host stderr ----\n" << host_.stderrText() << "---------------------\n";
  }

  /// Sends @p trigger on a fresh throwing-listener connection and expects the
  /// host to close it (EOF or reset) without echoing, and to log an ERROR line
  /// matching @p logPattern. Returns that line.
  std::string expectDisconnectAndError(const std::string& trigger, const std::string& logPattern) {
    const std::size_t mark = host_.logLineCount();
    TestClient c = TestClient::connect(throwingPort_, TestClient::Options{5s, 0, 0});
    c.sendAll(trigger);
    TestClient::Closed closed = c.waitClosed();
    EXPECT_TRUE(closed.how == TestClient::Close::Eof || closed.how == TestClient::Close::Reset)
        << "after \"" << trigger << "\": connection not closed (how=" << static_cast<int>(closed.how)
        << ", errno=" << closed.error << ")";
    EXPECT_EQ(closed.data, "") << "a failed dataReceived must not send anything";
    auto line = host_.waitForLog(std::regex(logPattern), 5s, mark);
    EXPECT_TRUE(line.has_value()) << "no log line matching /" << logPattern << "/";
    return line.value_or("");
  }

  HostProcess host_;
  std::uint16_t echoPort_ = 0;
  std::uint16_t throwingPort_ = 0;
};

// 4. std::runtime_error("boom") and `throw 42` from dataReceived.
TEST_F(E2eThrowingPlugin, ThrowingConnectionIsClosedAndLoggedWhileOthersServeOn) {
  // Connected before the failures, and used across them.
  TestClient echo = TestClient::connect(echoPort_);
  ASSERT_EQ(echo.roundTrip("before"), "before");
  TestClient survivor = TestClient::connect(throwingPort_);
  ASSERT_EQ(survivor.roundTrip("plain data"), "plain data");

  std::string boom = expectDisconnectAndError("please throw now", "ERROR.*throwing.*boom");
  EXPECT_NE(boom.find("throwing"), std::string::npos);
  EXPECT_NE(boom.find("boom"), std::string::npos);
  EXPECT_EQ(echo.roundTrip("between"), "between");

  std::string nonStd = expectDisconnectAndError("an int please", "ERROR.*throwing.*non-standard");
  EXPECT_NE(nonStd.find("throwing"), std::string::npos);

  // The host is alive, the echo connection and the other throwing-listener
  // connection kept working, and new connections of both listeners work.
  ASSERT_TRUE(host_.running());
  EXPECT_EQ(echo.roundTrip("after"), "after");
  EXPECT_EQ(survivor.roundTrip("still echoing"), "still echoing");
  TestClient fresh = TestClient::connect(throwingPort_);
  EXPECT_EQ(fresh.roundTrip("new connection"), "new connection");
  TestClient freshEcho = TestClient::connect(echoPort_);
  EXPECT_EQ(freshEcho.roundTrip("new echo"), "new echo");

  // Orderly shutdown afterwards.
  ASSERT_TRUE(host_.signal(SIGTERM));
  EXPECT_EQ(host_.waitExit(10s), 0);
}

}  // namespace
}  // namespace protohost::e2e
