// The udp: listener without a host process (net/DatagramListener,
// net/DatagramSocket): a DatagramListener on 127.0.0.1 or [::1], driven by
// one EventLoop on its own thread, its owner a test ConnectionOwner, its
// protocol the test's; the test is the client (tests/support/UdpClient.h).
// Every wait is bounded. A check that something was NOT answered relies on
// order: loopback UDP is delivered in order to one socket, so once the
// answer to a later datagram arrived, the earlier one was read and dropped.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "UdpClient.h"
#include "net/ConnectionOwner.h"
#include "net/DatagramListener.h"
#include "reactor/EventLoop.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;
using testsupport::UdpClient;

struct TestOwner final : ConnectionOwner {
  std::unique_ptr<Protocol> buildProtocol() override { return nullptr; }
  Refusal admit(const std::string&) override { return Refusal::None; }
  void release(const std::string&) override {}
  std::unique_ptr<OutboundService> outboundFor(EventLoop&, TrackedReactor&) override { return nullptr; }
};

// Echoes, or does what the test's lambda says; records its hooks (loop thread).
class ScriptedDatagram final : public DatagramProtocol {
 public:
  explicit ScriptedDatagram(std::vector<std::string>* hooks) : hooks_(hooks) {}
  std::function<void(ScriptedDatagram&, std::string_view, const Address&)> onDatagram =
      [](ScriptedDatagram& p, std::string_view d, const Address& from) { p.transport().sendTo(d, from); };
  void startProtocol() override { hooks_->push_back("start"); }
  void datagramReceived(std::string_view data, const Address& from) override { onDatagram(*this, data, from); }
  void stopProtocol() override { hooks_->push_back("stop"); }

 private:
  std::vector<std::string>* hooks_;
};

struct Fixture {
  explicit Fixture(const std::string& endpointText, std::size_t maxBytes = 65507) {
    owner->name = "udp";
    owner->pluginName = "test";
    owner->limits.maxDatagramBytes = maxBytes;
    Endpoint ep;
    std::string error;
    if (!parseEndpoint(endpointText, ep, error)) throw std::runtime_error(error);
    listener = std::make_unique<DatagramListener>(owner, ep, loop);
    listener->bind();
    auto p = std::make_unique<ScriptedDatagram>(&hooks);
    protocol = p.get();
    listener->serve(owner, std::move(p));  // the loop is not running yet: on this thread
    loop.startThread();
  }
  ~Fixture() {
    loop.runAndWait([&] { listener->close(); });
    loop.stopAndJoin();
  }
  std::uint16_t port() const { return listener->endpoint().port; }
  const DatagramStats& stats() const { return owner->stats.datagrams; }

  std::shared_ptr<TestOwner> owner = std::make_shared<TestOwner>();
  EventLoop loop{0, "udp-test"};
  std::vector<std::string> hooks;  // loop thread (read after runAndWait)
  ScriptedDatagram* protocol = nullptr;
  std::unique_ptr<DatagramListener> listener;
};

TEST(DatagramListener, EchoesOverIpv4AndCounts) {
  Fixture f("udp:0:interface=127.0.0.1");
  ASSERT_NE(f.port(), 0);
  UdpClient client;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  for (const std::string& d : {std::string("hello"), binary, std::string(), std::string(65507, 'z')}) {
    ASSERT_TRUE(client.sendTo(f.port(), d));
    std::uint16_t from = 0;
    auto answer = client.receive(5000, &from);
    ASSERT_TRUE(answer) << "no answer to a datagram of " << d.size() << " bytes";
    EXPECT_EQ(*answer, d);
    EXPECT_EQ(from, f.port());
  }
  f.loop.runAndWait([] {});
  EXPECT_EQ(f.stats().received.load(), 4u);
  EXPECT_EQ(f.stats().sent.load(), 4u);
  EXPECT_EQ(f.owner->stats.bytesIn.load(), 5u + 256u + 65507u);
  EXPECT_TRUE(f.stats().active.load());
}

TEST(DatagramListener, EchoesOverIpv6Loopback) {
  std::unique_ptr<Fixture> f;
  try {
    f = std::make_unique<Fixture>("udp:0:interface=\\:\\:1");
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  UdpClient client(true);
  ASSERT_TRUE(client.sendTo(f->port(), "over v6"));
  auto answer = client.receive();
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, "over v6");
}

TEST(DatagramListener, DatagramsLongerThanTheMaximumAreDroppedAndCounted) {
  Fixture f("udp:0:interface=127.0.0.1", 100);
  UdpClient client;
  ASSERT_TRUE(client.sendTo(f.port(), std::string(101, 'L')));
  ASSERT_TRUE(client.sendTo(f.port(), std::string(100, 'k')));  // exactly the maximum: served
  auto answer = client.receive();
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, std::string(100, 'k'));  // the first answer is the second datagram's
  f.loop.runAndWait([] {});
  EXPECT_EQ(f.stats().dropped[static_cast<std::size_t>(DatagramDrop::TooLarge)].load(), 1u);
  EXPECT_EQ(f.stats().received.load(), 2u);
  EXPECT_EQ(f.stats().sent.load(), 1u);
}

TEST(DatagramListener, AThrowDropsThatDatagramOnly) {
  Fixture f("udp:0:interface=127.0.0.1");
  f.loop.runAndWait([&] {
    f.protocol->onDatagram = [](ScriptedDatagram& p, std::string_view d, const Address& from) {
      if (d == "throw") throw std::runtime_error("bad datagram");
      p.transport().sendTo(d, from);
    };
  });
  UdpClient client;
  ASSERT_TRUE(client.sendTo(f.port(), "throw"));
  ASSERT_TRUE(client.sendTo(f.port(), "fine"));
  auto answer = client.receive();
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, "fine");
  f.loop.runAndWait([] {});
  EXPECT_EQ(f.stats().dropped[static_cast<std::size_t>(DatagramDrop::PluginError)].load(), 1u);
  EXPECT_EQ(f.owner->stats.pluginErrors.load(), 1u);
}

TEST(DatagramListener, SendsFromATimerGoOutAtTheEndOfTheRound) {
  Fixture f("udp:0:interface=127.0.0.1");
  f.loop.runAndWait([&] {
    f.protocol->onDatagram = [](ScriptedDatagram& p, std::string_view d, const Address& from) {
      // Three answers from a timer (not from a receive batch), to another address object.
      p.transport().reactor().callLater(1ms, [&p, text = std::string(d), to = Address{from.host, from.port}] {
        for (int i = 0; i < 3; ++i) p.transport().sendTo(text + std::to_string(i), to);
      });
    };
  });
  UdpClient client;
  ASSERT_TRUE(client.sendTo(f.port(), "t"));
  for (int i = 0; i < 3; ++i) {
    auto answer = client.receive();
    ASSERT_TRUE(answer);
    EXPECT_EQ(*answer, "t" + std::to_string(i));
  }
}

TEST(DatagramListener, ManySendsInOneBatchAreAllSent) {
  Fixture f("udp:0:interface=127.0.0.1");
  f.loop.runAndWait([&] {
    f.protocol->onDatagram = [](ScriptedDatagram& p, std::string_view, const Address& from) {
      for (int i = 0; i < 100; ++i) p.transport().sendTo(std::to_string(i), from);  // > kMaxQueued
    };
  });
  UdpClient client;
  ASSERT_TRUE(client.sendTo(f.port(), "go"));
  for (int i = 0; i < 100; ++i) {
    auto answer = client.receive();
    ASSERT_TRUE(answer) << "answer " << i;
    EXPECT_EQ(*answer, std::to_string(i));
  }
  f.loop.runAndWait([] {});
  EXPECT_EQ(f.stats().sent.load(), 100u);
}

TEST(DatagramListener, ASendToAnotherFamilyIsDroppedAndCounted) {
  Fixture f("udp:0:interface=127.0.0.1");
  f.loop.runAndWait([&] {
    f.protocol->onDatagram = [](ScriptedDatagram& p, std::string_view d, const Address& from) {
      p.transport().sendTo(d, Address{"::1", from.port});  // an IPv4 socket cannot
      p.transport().sendTo(d, from);
    };
  });
  UdpClient client;
  ASSERT_TRUE(client.sendTo(f.port(), "x"));
  ASSERT_TRUE(client.receive());
  f.loop.runAndWait([] {});
  EXPECT_EQ(f.stats().dropped[static_cast<std::size_t>(DatagramDrop::SendFailed)].load(), 1u);
  EXPECT_EQ(f.stats().sent.load(), 1u);
}

TEST(DatagramListener, ServeReplacesTheProtocolOnTheSameSocket) {
  Fixture f("udp:0:interface=127.0.0.1");
  UdpClient client;
  std::vector<std::string> newHooks;
  auto owner2 = std::make_shared<TestOwner>();
  owner2->name = "udp";
  f.loop.runAndWait([&] {
    auto p = std::make_unique<ScriptedDatagram>(&newHooks);
    p->onDatagram = [](ScriptedDatagram& q, std::string_view d, const Address& from) {
      q.transport().sendTo("new:" + std::string(d), from);
    };
    f.listener->serve(owner2, std::move(p));
    f.protocol = nullptr;  // destroyed
  });
  EXPECT_EQ(f.hooks, (std::vector<std::string>{"start", "stop"}));
  EXPECT_EQ(newHooks, (std::vector<std::string>{"start"}));
  ASSERT_TRUE(client.sendTo(f.port(), "a"));
  auto answer = client.receive();
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, "new:a");
  EXPECT_EQ(f.listener->owner(), owner2);
  f.loop.runAndWait([&] { f.listener->close(); });
  EXPECT_EQ(newHooks, (std::vector<std::string>{"start", "stop"}));
}

// A client that sent to 127.0.0.2 with a connected socket takes answers from
// 127.0.0.2 only; without IP_PKTINFO the host would answer from 127.0.0.1
// (the route's source address) and the client would never see it.
TEST(DatagramListener, AWildcardBindAnswersFromTheAddressTheRequestWentTo) {
  Fixture f("udp:0");
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(f.port());
  ASSERT_EQ(::inet_pton(AF_INET, "127.0.0.2", &to.sin_addr), 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  ASSERT_EQ(::send(fd, "via .2", 6, 0), 6);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no answer from 127.0.0.2";
  char buf[64];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))), "via .2");
  ::close(fd);
}

TEST(DatagramListener, BindingAPortInUseFails) {
  Fixture f("udp:0:interface=127.0.0.1");
  Endpoint ep;
  std::string error;
  ASSERT_TRUE(parseEndpoint("udp:" + std::to_string(f.port()) + ":interface=127.0.0.1", ep, error));
  auto owner = std::make_shared<TestOwner>();
  DatagramListener second(owner, ep, f.loop);
  try {
    second.bind();
    FAIL() << "a second socket bound the same UDP port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bind: Address already in use"), std::string::npos) << e.what();
  }
}

TEST(DatagramStats, ProtocolReasonsAreBoundedAndCannotImpersonateTheHosts) {
  DatagramStats stats;
  stats.countPluginDrop("rate_limited");
  stats.countPluginDrop("rate_limited");
  stats.countPluginDrop("Bad Reason");               // not [a-z0-9_]
  stats.countPluginDrop("");                         // empty
  stats.countPluginDrop(std::string(33, 'a'));       // too long
  stats.countPluginDrop("too_large");                // the host's own reason
  for (int i = 0; i < 40; ++i) stats.countPluginDrop("r" + std::to_string(i));
  const auto drops = stats.pluginDrops();
  std::map<std::string, std::uint64_t> byName(drops.begin(), drops.end());
  EXPECT_EQ(byName["rate_limited"], 2u);
  EXPECT_EQ(byName.count("too_large"), 0u);
  // 16 names at most, then "other": rate_limited, other (the four bad ones) and r0..r13 fill them.
  EXPECT_LE(drops.size(), DatagramStats::kMaxPluginReasons + 1);
  EXPECT_EQ(byName["other"], 4u + (40u - 14u));
  EXPECT_EQ(byName.count("r13"), 1u);
  EXPECT_EQ(byName.count("r14"), 0u);
}

}  // namespace
}  // namespace protohost::host
