// The SDK test kit's MemoryDatagramTransport
// (sdk/include/protohost/testing/MemoryDatagramTransport.h): what a plugin
// author's unit test of a DatagramProtocol relies on.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protohost/testing/MemoryDatagramTransport.h"

using namespace std::chrono_literals;
using protohost::Address;
using protohost::DatagramProtocol;
using protohost::testing::MemoryDatagramTransport;

namespace {

// Answers "time?" a second later; records its hooks.
class Delayed : public DatagramProtocol {
 public:
  std::vector<std::string> hooks;
  void startProtocol() override { hooks.push_back("start"); }
  void datagramReceived(std::string_view data, const Address& from) override {
    hooks.push_back("datagram " + std::string(data) + " from " + from.toString());
    if (data == "drop") return transport().countDropped("asked_to");
    transport().reactor().callLater(1s, [this, from] { transport().sendTo("later", from); });
  }
  void stopProtocol() override { hooks.push_back("stop"); }
};

TEST(MemoryDatagramTransport, HooksSendsAndTimers) {
  MemoryDatagramTransport t;
  Delayed p;
  t.start(p);
  t.receive(p, "time?", Address{"::1", 1234});
  EXPECT_TRUE(t.sent().empty());
  t.manualReactor().advance(1s);
  ASSERT_EQ(t.sent().size(), 1u);
  EXPECT_EQ(t.sent()[0].data, "later");
  EXPECT_EQ(t.sent()[0].to.toString(), "[::1]:1234");
  EXPECT_EQ(t.take().size(), 1u);
  EXPECT_TRUE(t.sent().empty());
  t.stop(p);
  EXPECT_EQ(p.hooks, (std::vector<std::string>{"start", "datagram time? from [::1]:1234", "stop"}));
}

TEST(MemoryDatagramTransport, OversizedDatagramsAreDroppedAndCountedBothWays) {
  MemoryDatagramTransport t;
  t.setMaxDatagramSize(4);
  EXPECT_EQ(t.maxDatagramSize(), 4u);
  Delayed p;
  t.start(p);
  t.receive(p, "12345", Address{"127.0.0.1", 9});
  EXPECT_EQ(p.hooks.size(), 1u);  // only "start": the protocol never saw it
  EXPECT_EQ(t.dropped("too_large"), 1u);
  t.sendTo("12345", Address{"127.0.0.1", 9});
  t.sendTo("1234", Address{"127.0.0.1", 9});
  EXPECT_EQ(t.sent().size(), 1u);
  EXPECT_EQ(t.dropped("send_too_large"), 1u);
}

TEST(MemoryDatagramTransport, CountsTheProtocolsOwnDrops) {
  MemoryDatagramTransport t;
  Delayed p;
  t.start(p);
  t.receive(p, "drop", Address{"127.0.0.1", 9});
  t.receive(p, "drop", Address{"127.0.0.1", 9});
  EXPECT_EQ(t.dropped("asked_to"), 2u);
  EXPECT_EQ(t.dropped("other"), 0u);
  EXPECT_EQ(t.localAddress().toString(), "127.0.0.1:7");
  t.setLocal(Address{"::", 7});
  EXPECT_EQ(t.localAddress().toString(), "[::]:7");
  t.logger().info("logged");
  ASSERT_EQ(t.memoryLogger().lines.size(), 1u);
  EXPECT_EQ(t.memoryLogger().lines[0].text, "logged");
}

}  // namespace
