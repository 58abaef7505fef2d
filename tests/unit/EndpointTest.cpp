// Listening endpoints (host/src/Endpoint.h): "tcp:PORT[:interface=ADDR][:backlog=N]".

#include <gtest/gtest.h>

#include <string>

#include "net/Endpoint.h"

using protohost::host::Endpoint;
using protohost::host::parseEndpoint;
using protohost::host::TlsCertificate;
using protohost::host::TlsOptions;

namespace {
Endpoint ok(const std::string& text) {
  Endpoint ep;
  std::string error;
  EXPECT_TRUE(parseEndpoint(text, ep, error)) << text << ": " << error;
  EXPECT_EQ(error, "");
  return ep;
}

std::string bad(const std::string& text) {
  Endpoint ep;
  ep.port = 4242;  // must stay untouched on failure
  std::string error;
  EXPECT_FALSE(parseEndpoint(text, ep, error)) << text;
  EXPECT_EQ(ep.port, 4242) << text;
  return error;
}
}  // namespace

TEST(Endpoint, TcpPortWithDefaults) {
  Endpoint ep = ok("tcp:7007");
  EXPECT_EQ(ep.scheme, "tcp");
  EXPECT_EQ(ep.port, 7007);
  EXPECT_EQ(ep.interface, "0.0.0.0");
  EXPECT_EQ(ep.backlog, 4096);
  EXPECT_FALSE(ep.isIpv6());
  EXPECT_EQ(ep.toString(), "0.0.0.0:7007");
}

TEST(Endpoint, PortZeroAndLimits) {
  EXPECT_EQ(ok("tcp:0").port, 0);
  EXPECT_EQ(ok("tcp:65535").port, 65535);
}

TEST(Endpoint, Interface) {
  Endpoint ep = ok("tcp:7007:interface=127.0.0.1");
  EXPECT_EQ(ep.interface, "127.0.0.1");
  EXPECT_EQ(ep.toString(), "127.0.0.1:7007");
}

TEST(Endpoint, EscapedIpv6Interface) {
  Endpoint ep = ok("tcp:7007:interface=\\:\\:1");
  EXPECT_EQ(ep.interface, "::1");
  EXPECT_TRUE(ep.isIpv6());
  EXPECT_EQ(ep.toString(), "[::1]:7007");
  EXPECT_EQ(ok("tcp:80:interface=fe80\\:\\:1\\:2").interface, "fe80::1:2");
}

TEST(Endpoint, Backlog) {
  EXPECT_EQ(ok("tcp:7007:backlog=16").backlog, 16);
  Endpoint ep = ok("tcp:7007:backlog=1:interface=10.0.0.1");
  EXPECT_EQ(ep.backlog, 1);
  EXPECT_EQ(ep.interface, "10.0.0.1");
  EXPECT_EQ(ok("tcp:7007:backlog=65535").backlog, 65535);
}

TEST(Endpoint, BadPort) {
  EXPECT_EQ(bad("tcp:70000"), "bad port \"70000\" (0-65535)");
  EXPECT_EQ(bad("tcp:abc"), "bad port \"abc\" (0-65535)");
  EXPECT_EQ(bad("tcp:-1"), "bad port \"-1\" (0-65535)");
  EXPECT_EQ(bad("tcp:80x"), "bad port \"80x\" (0-65535)");
  EXPECT_EQ(bad("tcp: 80"), "bad port \" 80\" (0-65535)");
}

TEST(Endpoint, MissingPort) {
  EXPECT_EQ(bad("tcp"), "missing port in \"tcp\" (tcp:PORT[:interface=ADDR])");
  EXPECT_EQ(bad("tcp:"), "missing port in \"tcp:\" (tcp:PORT[:interface=ADDR])");
}

TEST(Endpoint, UnsupportedAndUnknownSchemes) {
  EXPECT_EQ(bad("unix:/run/x.sock"), "endpoint scheme \"unix:\" is not supported yet (tcp:, ssl: and udp:)");
  const std::string expected =
      "expected an endpoint like tcp:PORT[:interface=ADDR], ssl:PORT:certKey=CERT:privateKey=KEY or "
      "udp:PORT[:interface=ADDR], got ";
  EXPECT_EQ(bad("http:80"), expected + "\"http:80\"");
  EXPECT_EQ(bad("7007"), expected + "\"7007\"");
  EXPECT_EQ(bad(""), expected + "\"\"");
  EXPECT_EQ(bad("UDP:7"), expected + "\"UDP:7\"");  // schemes are lower case, as in Twisted
}

TEST(Endpoint, Udp) {
  Endpoint ep;
  std::string error;
  ASSERT_TRUE(parseEndpoint("udp:7", ep, error)) << error;
  EXPECT_TRUE(ep.isDatagram());
  EXPECT_EQ(ep.scheme, "udp");
  EXPECT_EQ(ep.port, 7);
  EXPECT_EQ(ep.interface, "0.0.0.0");
  EXPECT_EQ(ep.toString(), "0.0.0.0:7");

  ASSERT_TRUE(parseEndpoint("udp:0:interface=127.0.0.1", ep, error)) << error;
  EXPECT_EQ(ep.port, 0);
  EXPECT_EQ(ep.interface, "127.0.0.1");

  ASSERT_TRUE(parseEndpoint("udp:7007:interface=\\:\\:1", ep, error)) << error;
  EXPECT_TRUE(ep.isIpv6());
  EXPECT_EQ(ep.toString(), "[::1]:7007");

  ASSERT_TRUE(parseEndpoint("udp:7007:interface=\\:\\:", ep, error)) << error;
  EXPECT_EQ(ep.interface, "::");

  ASSERT_TRUE(parseEndpoint("tcp:7", ep, error)) << error;
  EXPECT_FALSE(ep.isDatagram());
}

TEST(Endpoint, UdpErrors) {
  EXPECT_EQ(bad("udp"), "missing port in \"udp\" (udp:PORT[:interface=ADDR])");
  EXPECT_EQ(bad("udp:"), "missing port in \"udp:\" (udp:PORT[:interface=ADDR])");
  EXPECT_EQ(bad("udp:65536"), "bad port \"65536\" (0-65535)");
  EXPECT_EQ(bad("udp:53:interface=localhost"),
            "bad interface address \"localhost\" (an IPv4 or IPv6 literal; escape ':' as '\\:')");
  // A datagram socket has no accept backlog.
  EXPECT_EQ(bad("udp:53:backlog=10"), "unknown endpoint option \"backlog\" (interface)");
  EXPECT_EQ(bad("udp:53:colour=red"), "unknown endpoint option \"colour\" (interface)");
}

TEST(Endpoint, UdpAndTcpPortsAreApart) {
  auto parse = [](const std::string& text) {
    Endpoint ep;
    std::string error;
    EXPECT_TRUE(parseEndpoint(text, ep, error)) << error;
    return ep;
  };
  EXPECT_FALSE(parse("udp:7007").conflictsWith(parse("tcp:7007")));
  EXPECT_TRUE(parse("udp:7007").conflictsWith(parse("udp:7007:interface=127.0.0.1")));
  EXPECT_FALSE(parse("udp:7007:interface=\\:\\:").conflictsWith(parse("udp:7007")));  // v6 wildcard is V6ONLY
  EXPECT_TRUE(parse("udp:7007:interface=\\:\\:").conflictsWith(parse("udp:7007:interface=\\:\\:1")));
}

TEST(Endpoint, BadOptions) {
  EXPECT_EQ(bad("tcp:7007:interface=localhost"),
            "bad interface address \"localhost\" (an IPv4 or IPv6 literal; escape ':' as '\\:')");
  EXPECT_EQ(bad("tcp:7007:interface="), "bad interface address \"\" (an IPv4 or IPv6 literal; escape ':' as '\\:')");
  EXPECT_EQ(bad("tcp:7007:interface=256.0.0.1"),
            "bad interface address \"256.0.0.1\" (an IPv4 or IPv6 literal; escape ':' as '\\:')");
  // An unescaped IPv6 address splits into options.
  EXPECT_EQ(bad("tcp:7007:interface=::1"), "bad interface address \"\" (an IPv4 or IPv6 literal; escape ':' as '\\:')");
  EXPECT_EQ(bad("tcp:7007:backlog=0"), "bad backlog \"0\" (1-65535)");
  EXPECT_EQ(bad("tcp:7007:backlog=65536"), "bad backlog \"65536\" (1-65535)");
  EXPECT_EQ(bad("tcp:7007:backlog=lots"), "bad backlog \"lots\" (1-65535)");
  EXPECT_EQ(bad("tcp:7007:colour=red"), "unknown endpoint option \"colour\" (interface, backlog)");
  EXPECT_EQ(bad("tcp:7007:"), "unknown endpoint option \"\" (interface, backlog)");
}

// ---- conflictsWith ----

namespace {
bool conflict(const std::string& a, const std::string& b) {
  Endpoint x = ok(a), y = ok(b);
  bool c = x.conflictsWith(y);
  EXPECT_EQ(c, y.conflictsWith(x)) << "not symmetric: " << a << " / " << b;
  return c;
}
}  // namespace

TEST(EndpointConflicts, SamePortSameAddress) {
  EXPECT_TRUE(conflict("tcp:7007", "tcp:7007"));
  EXPECT_TRUE(conflict("tcp:7007:interface=127.0.0.1", "tcp:7007:interface=127.0.0.1:backlog=5"));
  EXPECT_TRUE(conflict("tcp:7007:interface=\\:\\:1", "tcp:7007:interface=\\:\\:1"));
}

TEST(EndpointConflicts, WildcardCoversItsFamily) {
  EXPECT_TRUE(conflict("tcp:7007", "tcp:7007:interface=127.0.0.1"));
  EXPECT_TRUE(conflict("tcp:7007:interface=\\:\\:", "tcp:7007:interface=\\:\\:1"));
}

TEST(EndpointConflicts, FamiliesAreSeparate) {
  // The host binds IPv6 listeners with IPV6_V6ONLY, so [::]:p and 0.0.0.0:p coexist.
  EXPECT_FALSE(conflict("tcp:7007", "tcp:7007:interface=\\:\\:"));
  EXPECT_FALSE(conflict("tcp:7007", "tcp:7007:interface=\\:\\:1"));
  EXPECT_FALSE(conflict("tcp:7007:interface=\\:\\:", "tcp:7007:interface=127.0.0.1"));
}

TEST(EndpointConflicts, DifferentPortsOrAddressesOrPortZero) {
  EXPECT_FALSE(conflict("tcp:7007", "tcp:7008"));
  EXPECT_FALSE(conflict("tcp:7007:interface=127.0.0.1", "tcp:7007:interface=127.0.0.2"));
  EXPECT_FALSE(conflict("tcp:0", "tcp:0"));  // the kernel picks two different ports
  EXPECT_FALSE(conflict("tcp:0", "tcp:7007"));
}

TEST(EndpointConflicts, SameAddressSpelledDifferently) {
  // "::1" and "0:0:0:0:0:0:0:1" are one address, as are "::" and "0::0": the
  // second bind would fail with EADDRINUSE at start instead of a config error.
  EXPECT_TRUE(conflict("tcp:7007:interface=\\:\\:1", "tcp:7007:interface=0\\:0\\:0\\:0\\:0\\:0\\:0\\:1"));
  EXPECT_TRUE(conflict("tcp:7007:interface=0\\:\\:0", "tcp:7007:interface=\\:\\:1"));
  EXPECT_TRUE(conflict("tcp:7007:interface=\\:\\:FFFF", "tcp:7007:interface=\\:\\:ffff"));
}

TEST(Endpoint, SslWithTwistedKeyNames) {
  Endpoint ep;
  std::string why;
  ASSERT_TRUE(parseEndpoint("ssl:8443:interface=127.0.0.1:certKey=c.pem:privateKey=k.pem:extraCertChain=chain.pem:"
                            "caCerts=ca.pem:alpn=h2,http/1.1:ktls=on",
                            ep, why))
      << why;
  EXPECT_TRUE(ep.isTls());
  EXPECT_FALSE(ep.isDatagram());
  EXPECT_EQ(ep.port, 8443);
  ASSERT_EQ(ep.tls.certificates.size(), 1u);
  EXPECT_EQ(ep.tls.certificates[0], (TlsCertificate{"c.pem", "k.pem"}));
  EXPECT_EQ(ep.tls.extraCertChain, "chain.pem");
  EXPECT_EQ(ep.tls.caCerts, "ca.pem");
  EXPECT_EQ(ep.tls.clientCert, TlsOptions::ClientCert::Required);  // caCerts alone: required
  EXPECT_EQ(ep.tls.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(ep.tls.ktls);
}

TEST(Endpoint, SslRepeatedPairsAreSniCertificatesAndOneFileMayHoldBoth) {
  Endpoint ep;
  std::string why;
  ASSERT_TRUE(parseEndpoint("ssl:0:certKey=a.pem:privateKey=a.key:certKey=b.pem:privateKey=b.key:privateKey=both.pem", ep,
                            why))
      << why;
  ASSERT_EQ(ep.tls.certificates.size(), 3u);
  EXPECT_EQ(ep.tls.certificates[0], (TlsCertificate{"a.pem", "a.key"}));
  EXPECT_EQ(ep.tls.certificates[1], (TlsCertificate{"b.pem", "b.key"}));
  EXPECT_EQ(ep.tls.certificates[2], (TlsCertificate{"both.pem", "both.pem"}));
  EXPECT_EQ(ep.tls.clientCert, TlsOptions::ClientCert::Off);
}

TEST(Endpoint, SslErrors) {
  EXPECT_EQ(bad("ssl:443"), "an ssl: endpoint needs a certificate: certKey=CERT.pem[:privateKey=KEY.pem]");
  EXPECT_EQ(bad("ssl:443:certKey=c.pem:alpn=h2,,x"),
            "bad alpn list \"h2,,x\" (comma-separated protocol names, e.g. alpn=h2,http/1.1)");
  EXPECT_EQ(bad("ssl:443:certKey=c.pem:ktls=yes"), "bad ktls \"yes\" (on or off)");
  EXPECT_EQ(bad("ssl:443:certKey=c.pem:clientCert=optional"),
            "clientCert needs caCerts=CA.pem (the CAs client certificates are verified against)");
  EXPECT_EQ(bad("ssl:443:certKey="), "endpoint option certKey= needs a value");
  EXPECT_EQ(bad("tcp:443:certKey=c.pem"), "unknown endpoint option \"certKey\" (interface, backlog)");
  EXPECT_EQ(bad("ssl:443:certKey=c.pem:sslmethod=x"),
            "unknown endpoint option \"sslmethod\" (interface, backlog, certKey, privateKey, extraCertChain, caCerts, "
            "clientCert, alpn, ktls)");
}

TEST(Endpoint, TcpAndSslShareTcpPorts) {
  Endpoint a, b, u;
  std::string why;
  ASSERT_TRUE(parseEndpoint("tcp:7443:interface=127.0.0.1", a, why));
  ASSERT_TRUE(parseEndpoint("ssl:7443:interface=127.0.0.1:certKey=c.pem", b, why));
  ASSERT_TRUE(parseEndpoint("udp:7443:interface=127.0.0.1", u, why));
  EXPECT_TRUE(a.conflictsWith(b));
  EXPECT_FALSE(b.conflictsWith(u));
}
