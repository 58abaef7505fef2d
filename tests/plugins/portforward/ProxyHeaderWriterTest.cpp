// The PROXY headers portforward sends upstream, against the spec's examples
// and the test kit's own v2 builder (tests/support/ProxyHeaders.h).

#include <gtest/gtest.h>

#include "ProxyHeaderWriter.h"
#include "ProxyHeaders.h"

using namespace protohost::plugins::portforward;
using protohost::Address;
namespace proxyv2 = protohost::testing::proxyv2;

TEST(ProxyHeaderWriter, V1Tcp4) {
  EXPECT_EQ(proxyHeaderV1({"192.0.2.1", 49152}, {"198.51.100.7", 443}),
            "PROXY TCP4 192.0.2.1 198.51.100.7 49152 443\r\n");
}

TEST(ProxyHeaderWriter, V1Tcp6IsCanonical) {
  EXPECT_EQ(proxyHeaderV1({"2001:0db8:0:0:0:0:0:1", 1}, {"::1", 65535}), "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
}

TEST(ProxyHeaderWriter, V1MappedBesideV4IsTcp4) {
  EXPECT_EQ(proxyHeaderV1({"::ffff:192.0.2.1", 5}, {"127.0.0.1", 6}), "PROXY TCP4 192.0.2.1 127.0.0.1 5 6\r\n");
}

TEST(ProxyHeaderWriter, V1UnknownForMixedOrNonNumeric) {
  EXPECT_EQ(proxyHeaderV1({"2001:db8::1", 5}, {"127.0.0.1", 6}), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxyHeaderV1({"", 0}, {"127.0.0.1", 6}), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxyHeaderV1({"localhost", 1}, {"127.0.0.1", 6}), "PROXY UNKNOWN\r\n");
}

TEST(ProxyHeaderWriter, V2Inet4) {
  EXPECT_EQ(proxyHeaderV2({"192.0.2.1", 49152}, {"198.51.100.7", 443}),
            proxyv2::header(proxyv2::kProxy, proxyv2::kTcp4,
                            proxyv2::inet4({192, 0, 2, 1}, {198, 51, 100, 7}, 49152, 443)));
}

TEST(ProxyHeaderWriter, V2Inet6) {
  EXPECT_EQ(proxyHeaderV2({"2001:db8::1", 1}, {"2001:db8::7", 2}),
            proxyv2::header(proxyv2::kProxy, proxyv2::kTcp6, proxyv2::inet6(proxyv2::docV6(1), proxyv2::docV6(7), 1, 2)));
}

TEST(ProxyHeaderWriter, V2UnspecForMixed) {
  const std::string h = proxyHeaderV2({"2001:db8::1", 5}, {"127.0.0.1", 6});
  EXPECT_EQ(h, proxyv2::header(proxyv2::kProxy, proxyv2::kUnspec));
  EXPECT_EQ(h.size(), 16u);
}
