// net/Connector on a real EventLoop and real loopback sockets, with a fake
// resolver (Connector's last constructor argument) that answers a name with
// addresses of the test's choosing: the fallback from an address that refuses
// to the next one, across families ([::1] then 127.0.0.1), and the reason
// reported when every address fails. (On this machine "localhost" resolves to
// 127.0.0.1 only, so no real name gives such a list.)

#include "net/Connector.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "Loopback6Socket.h"
#include "TestClient.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;
using protohost::e2e::LocalListener;
using protohost::testsupport::Loopback6Socket;

constexpr auto kWithin = 10s;  // generous: only a broken loop comes near it

struct Outcome {
  bool connected = false;
  std::string peer;  // connected: the address it connected to
  ConnectError error;
};

class ConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override { loop.startThread(); }
  void TearDown() override {
    loop.runAndWait([&] { connector.reset(); });
    loop.stopAndJoin();
    loop.clearCallbacks();
  }

  // Connects to "fallback.test:@p port", which the fake resolver turns into @p addresses.
  Outcome connectVia(std::vector<SocketAddress> addresses, std::uint16_t port = 7000) {
    auto outcome = std::make_shared<std::promise<Outcome>>();
    Resolver::Function fake = [this, addresses](const std::string& host, std::uint16_t p, const Resolver::Defer&,
                                                std::function<void(Resolver::Result)> done) {
      asked = host + ":" + std::to_string(p);
      loop.runSoon([addresses, done] { done({addresses, {ConnectError::Kind::Unresolvable, "fake: no address"}}); });
    };
    ConnectEndpoint endpoint;
    endpoint.host = "fallback.test";
    endpoint.port = port;
    endpoint.timeout = std::chrono::milliseconds(5000);
    EXPECT_TRUE(loop.runAndWait([&] {
      connector = std::make_shared<Connector>(
          loop, endpoint, nullptr,
          [outcome](int fd, const SocketAddress& peer, std::uint32_t) {
            ::close(fd);
            outcome->set_value(Outcome{true, peer.toString(), {}});
          },
          [outcome](const ConnectError& e) { outcome->set_value(Outcome{false, "", e}); }, fake);
      connector->start();
    }));
    auto future = outcome->get_future();
    if (future.wait_for(kWithin) != std::future_status::ready) {
      ADD_FAILURE() << "the connector reported nothing";
      return {};
    }
    return future.get();
  }

  static SocketAddress v4(std::uint16_t port) { return Resolver::numeric("127.0.0.1", AF_INET, port); }
  static SocketAddress v6(std::uint16_t port) { return Resolver::numeric("::1", AF_INET6, port); }

  EventLoop loop{0, "test-loop"};
  std::shared_ptr<Connector> connector;  // the loop thread's
  std::string asked;                     // what the fake resolver was asked for
};

TEST_F(ConnectorTest, AnAddressThatRefusesFallsBackToTheNextOne) {
  LocalListener refusing(LocalListener::Options{0, false, false, false});  // bound, not listening
  LocalListener accepting;
  const Outcome o = connectVia({v4(refusing.port()), v4(accepting.port())});
  EXPECT_EQ(asked, "fallback.test:7000");
  ASSERT_TRUE(o.connected) << o.error.detail;
  EXPECT_EQ(o.peer, "127.0.0.1:" + std::to_string(accepting.port()));
}

TEST_F(ConnectorTest, AnIpv6AddressThatRefusesFallsBackToIpv4) {
  Loopback6Socket refusing(false);
  LocalListener accepting;
  const Outcome o = connectVia({v6(refusing.port()), v4(accepting.port())});
  ASSERT_TRUE(o.connected) << o.error.detail;
  EXPECT_EQ(o.peer, "127.0.0.1:" + std::to_string(accepting.port()));
}

TEST_F(ConnectorTest, TheFirstAddressThatAcceptsWinsAndTheRestAreNotTried) {
  Loopback6Socket accepting(true);
  LocalListener alsoAccepting;
  const Outcome o = connectVia({v6(accepting.port()), v4(alsoAccepting.port())});
  ASSERT_TRUE(o.connected) << o.error.detail;
  EXPECT_EQ(o.peer, "[::1]:" + std::to_string(accepting.port()));
}

TEST_F(ConnectorTest, WhenEveryAddressRefusesTheLastOnesReasonIsReported) {
  Loopback6Socket first(false);
  LocalListener last(LocalListener::Options{0, false, false, false});
  const Outcome o = connectVia({v6(first.port()), v4(last.port())});
  ASSERT_FALSE(o.connected) << o.peer;
  EXPECT_EQ(o.error.kind, ConnectError::Kind::Refused);
  EXPECT_EQ(o.error.detail, "127.0.0.1:" + std::to_string(last.port()) + ": Connection refused");
}

TEST_F(ConnectorTest, AResolverFailureIsReportedAsItsError) {
  const Outcome o = connectVia({});
  ASSERT_FALSE(o.connected);
  EXPECT_EQ(o.error.kind, ConnectError::Kind::Unresolvable);
  EXPECT_EQ(o.error.detail, "fake: no address");
}

}  // namespace
}  // namespace protohost::host
