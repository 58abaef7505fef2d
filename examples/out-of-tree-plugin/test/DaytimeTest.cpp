#include <gtest/gtest.h>

#include "DaytimeProtocol.h"
#include "protohost/testing/MemoryTransport.h"

TEST(Daytime, SendsOneLineAndCloses) {
  protohost::testing::MemoryTransport transport;
  daytime::DaytimeProtocol protocol([] { return std::time_t{1795731000}; });
  transport.connect(protocol);
  EXPECT_EQ(transport.value(), "Thursday, November 26, 2026 22:10:00-UTC\r\n");
  EXPECT_TRUE(transport.closed());
}

TEST(Daytime, IgnoresInput) {
  protohost::testing::MemoryTransport transport;
  daytime::DaytimeProtocol protocol([] { return std::time_t{0}; });
  transport.connect(protocol);
  transport.clear();
  protocol.dataReceived("anything");
  EXPECT_EQ(transport.value(), "");
}
