// Reliability matrix rows about the PROXY protocol
// (docs/reliability.md): T11 malformed v1 headers, T12 a
// missing or late header, T13 v2 edge cases and split delivery. The real host
// binary with listeners set to proxy_protocol = required, serving the
// test-only peer_echo plugin, which writes "peer ADDR:PORT local ADDR:PORT\n"
// from connectionMade and then echoes: a connection that ends with zero bytes
// received never reached any plugin callback. Loopback only.

#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "HostProcess.h"
#include "ProxyHeaders.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;
namespace v2 = protohost::testing::proxyv2;

constexpr const char* kErrors = "protohost_proxy_header_errors_total";

// A host with two PROXY-protocol listeners of peer_echo: "px" with the default
// proxy_protocol_timeout_ms (3000), "fast" with 300 ms, plus [admin].
struct ProxyHost {
  HostProcess host;
  std::uint16_t px = 0, fast = 0, admin = 0;

  explicit ProxyHost(HostIni::Keys pxExtra = {}) {
    HostIni ini(host.linkPlugins({std::string(e2e::kTestPluginDir) + "/peer_echo.so"}));
    ini.set("log_level", "debug");
    HostIni::Keys pxKeys{{"proxy_protocol", "required"}};
    pxKeys.insert(pxKeys.end(), pxExtra.begin(), pxExtra.end());
    ini.listener("px", "peer_echo", pxKeys);
    ini.listener("fast", "peer_echo", {{"proxy_protocol", "required"}, {"proxy_protocol_timeout_ms", "300"}});
    ini.raw(kAdminSection);
    host.startWithConfig(ini.text());
    px = host.port("px");
    fast = host.port("fast");
    admin = host.port("admin");
  }

  /// SIGTERM; the host must drain and exit 0 (under ASan: without a leak report).
  void stopCleanly() {
    ASSERT_TRUE(host.signal(SIGTERM));
    EXPECT_EQ(host.waitExit(20s), 0);
  }

  /// protohost_proxy_header_errors_total{listener=NAME}; -1 when missing.
  double errors(const std::string& listener) {
    return metricValue(scrapeMetrics(admin), kErrors, {{"listener", listener}}).value_or(-1);
  }
};

/// "127.0.0.1:PORT" of the client's own end: what the host sees as the socket peer.
std::string socketPeerOf(const TestClient& c) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(c.fd(), reinterpret_cast<sockaddr*>(&a), &len);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

std::string loopback(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

TestClient connectNoDelay(std::uint16_t port) {
  TestClient c = TestClient::connect(port);
  c.setIntOption(IPPROTO_TCP, TCP_NODELAY, 1);  // each small send is its own segment
  return c;
}

// Sends @p bytes on a fresh connection and expects the host to close it
// without one byte from the plugin, within @p within (well below the header
// timeout: an invalid header fails at once). Returns the client's socket peer.
std::string expectDropped(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds within = 1000ms) {
  TestClient c = TestClient::connect(port);
  const std::string peer = socketPeerOf(c);
  const auto t0 = Clock::now();
  try {
    c.sendAll(bytes);
  } catch (const IoError& e) {  // the close may beat the last bytes: that is a drop too
    EXPECT_TRUE(e.error() == ECONNRESET || e.error() == EPIPE) << e.what();
  }
  TestClient::Closed r = c.waitClosed(5s);
  EXPECT_TRUE(r.how == Ending::Eof || r.how == Ending::Reset) << endingName(r.how);
  EXPECT_EQ(r.data, "") << "the plugin was reached";
  EXPECT_LT(msSince(t0), within.count()) << "closed only after " << msSince(t0) << " ms";
  return peer;
}

// Sends @p header + "ping\n" and expects the plugin's greeting with @p peer and
// @p local, then the echo.
void expectServed(std::uint16_t port, const std::string& header, const std::string& peer, const std::string& local) {
  TestClient c = TestClient::connect(port);
  c.sendAll(header + "ping\n");
  EXPECT_EQ(c.readLine(), "peer " + peer + " local " + local);
  EXPECT_EQ(c.readLine(), "ping");
}

// Same, with the real socket endpoints expected.
void expectServedWithRealEndpoints(std::uint16_t port, const std::string& header) {
  TestClient c = TestClient::connect(port);
  const std::string peer = socketPeerOf(c);
  c.sendAll(header + "ping\n");
  EXPECT_EQ(c.readLine(), "peer " + peer + " local " + loopback(port));
  EXPECT_EQ(c.readLine(), "ping");
}

// ---------------------------------------------------------------- T11

// T11: each malformed v1 header closes the connection before any plugin
// callback (zero bytes back), at once, counts +1 in
// protohost_proxy_header_errors_total and leaves its reason in the log under
// the real socket peer. UNKNOWN, with or without trailing garbage, is
// accepted with the real endpoints; TCP4/TCP6 give the proxied addresses.
TEST(Reliability, T11_MalformedProxyV1ClosedBeforeAnyPluginCallback) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  struct Variant {
    const char* what;
    std::string bytes;
    const char* reason;  // in the "closed:" log line
  };
  const std::vector<Variant> variants = {
      {"missing fields", "PROXY TCP4 192.0.2.1 198.51.100.7 49152\r\nping\n", "missing fields"},
      {"lowercase proxy", "proxy TCP4 192.0.2.1 198.51.100.7 49152 443\r\nping\n", "not a PROXY protocol header"},
      {"bad IP", "PROXY TCP4 192.0.2.256 198.51.100.7 49152 443\r\nping\n", "bad source address"},
      {"port 70000", "PROXY TCP4 192.0.2.1 198.51.100.7 70000 443\r\nping\n", "bad source port"},
      {"108 bytes without CRLF", "PROXY UNKNOWN " + std::string(94, 'x'), "no CRLF within 107 bytes"},
      {"LF without CR", "PROXY TCP4 192.0.2.1 198.51.100.7 49152 443\nping\n", "LF instead of CRLF"},
  };
  ASSERT_EQ(variants[4].bytes.size(), 108u);
  ASSERT_EQ(f.errors("px"), 0);
  double expected = 0;
  for (const auto& v : variants) {
    SCOPED_TRACE(v.what);
    const std::size_t since = f.host.logLineCount();
    const std::string peer = expectDropped(f.px, v.bytes);
    EXPECT_EQ(f.errors("px"), ++expected) << "not counted exactly once";
    EXPECT_TRUE(f.host.waitForLog("\\[listener=px peer=" + HostProcess::escapeRegex(peer) +
                                      "\\] closed: invalid PROXY header: .*" + v.reason,
                                  2s, since))
        << "no log line with the reason under the socket peer " << peer;
  }
  EXPECT_EQ(f.errors("fast"), 0);

  // Accepted: UNKNOWN (real endpoints, the rest of its line ignored), TCP4, TCP6.
  expectServedWithRealEndpoints(f.px, "PROXY UNKNOWN\r\n");
  expectServedWithRealEndpoints(f.px, "PROXY UNKNOWN trailing garbage 1.2.3.4\r\n");
  expectServed(f.px, "PROXY TCP4 192.0.2.1 198.51.100.7 49152 443\r\n", "192.0.2.1:49152", "198.51.100.7:443");
  expectServed(f.px, "PROXY TCP6 2001:db8::1 2001:DB8::2 1234 80\r\n", "[2001:db8::1]:1234", "[2001:db8::2]:80");
  // Log lines name the proxied client once the header is in.
  EXPECT_TRUE(f.host.waitForLog("\\[listener=px peer=192\\.0\\.2\\.1:49152\\] closed: ", 2s));
  EXPECT_EQ(f.errors("px"), expected) << "a valid header was counted as an error";
  const std::vector<std::string> problems = checkExposition(scrapeMetrics(f.admin));
  EXPECT_TRUE(problems.empty()) << problems.front();
  f.stopCleanly();
}

// ---------------------------------------------------------------- T12

// T12(a): "hello\n" on a PROXY port is dropped at once, never treated as
// payload (no echo, no greeting), and counted.
TEST(Reliability, T12_PlainDataInsteadOfHeaderDropped) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  const std::string peer = expectDropped(f.px, "hello\n", 1000ms);  // px waits up to 3 s for a header
  EXPECT_EQ(f.errors("px"), 1);
  EXPECT_TRUE(f.host.waitForLog("\\[listener=px peer=" + HostProcess::escapeRegex(peer) +
                                    "\\] invalid PROXY header: not a PROXY protocol header.*; closing",
                                2s))
      << "no info-level line with the reason";
}

// T12(b): a client that sends nothing is closed at proxy_protocol_timeout_ms
// (300 ms here), not before, and well before 3 s; counted, reason logged.
TEST(Reliability, T12_SilentClientClosedAtHeaderTimeout) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  const auto t0 = Clock::now();
  TestClient c = TestClient::connect(f.fast);
  TestClient::Closed r = c.waitClosed(5s);
  const long long ms = msSince(t0);
  EXPECT_TRUE(r.how == Ending::Eof || r.how == Ending::Reset) << endingName(r.how);
  EXPECT_EQ(r.data, "");
  EXPECT_GE(ms, 300);
  EXPECT_LT(ms, 3000);
  EXPECT_EQ(f.errors("fast"), 1);
  EXPECT_TRUE(f.host.waitForLog("\\[listener=fast peer=.*\\] no complete PROXY header within "
                                "proxy_protocol_timeout_ms = 300; closing",
                                2s));
  std::cout << "[   INFO   ] T12: silent client closed after " << ms << " ms (timeout 300 ms)\n";
}

// T12 with T04's trickle: a valid header prefix dribbled one byte per 50 ms
// does not extend the deadline: closed at 300 ms, not kept alive by the bytes.
TEST(Reliability, T12_TrickledHeaderClosedAtDeadline) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  const std::string prefix = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff";
  const auto t0 = Clock::now();
  TestClient c = connectNoDelay(f.fast);
  bool closed = false;
  std::size_t sent = 0;
  for (; sent < prefix.size() && !closed && msSince(t0) < 3000; ++sent) {
    if (c.sendSome(prefix.data() + sent, 1) != 1) break;  // reset: closed
    pollfd p{c.fd(), POLLIN, 0};
    closed = ::poll(&p, 1, 50) == 1;  // the pause between bytes, ended early by the close
  }
  TestClient::Closed r = c.waitClosed(3s);
  const long long ms = msSince(t0);
  EXPECT_TRUE(r.how == Ending::Eof || r.how == Ending::Reset) << endingName(r.how);
  EXPECT_EQ(r.data, "");
  EXPECT_GE(ms, 300);
  EXPECT_LT(ms, 1500) << "the trickle kept the connection open";
  EXPECT_LT(sent, prefix.size()) << "the whole prefix went through before the close";
  EXPECT_EQ(f.errors("fast"), 1);
}

// ---------------------------------------------------------------- T13

// T13: v2 LOCAL with and without an address block and AF_UNIX use the real
// endpoints; PROXY TCP4 with TLVs and TCP6 give the proxied ones; length
// 0xFFFF and version nibble 1 are dropped at once (zero bytes, +1 each).
TEST(Reliability, T13_ProxyV2EdgeCases) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  expectServedWithRealEndpoints(f.px, v2::header(v2::kLocal, v2::kUnspec));
  expectServedWithRealEndpoints(f.px, v2::header(v2::kLocal, v2::kTcp4, v2::inet4({192, 0, 2, 9}, {192, 0, 2, 10}, 1, 2)));
  expectServedWithRealEndpoints(f.px, v2::header(v2::kProxy, v2::kUnixStream, v2::unixPaths("/run/lb.sock", "/run/app.sock")));
  expectServedWithRealEndpoints(f.px, v2::header(v2::kProxy, v2::kUnspec));
  expectServed(f.px,
               v2::header(v2::kProxy, v2::kTcp4,
                          v2::inet4({192, 0, 2, 1}, {198, 51, 100, 7}, 49152, 443) + v2::tlv(0x01, "h2") +
                              v2::tlv(0x04, std::string(5, '\0'))),
               "192.0.2.1:49152", "198.51.100.7:443");
  expectServed(f.px, v2::header(v2::kProxy, v2::kTcp6, v2::inet6(v2::docV6(1), v2::docV6(2), 1234, 80)),
               "[2001:db8::1]:1234", "[2001:db8::2]:80");
  EXPECT_EQ(f.errors("px"), 0);

  // Over the cap: refused on the length bytes, without waiting for 65535 bytes.
  expectDropped(f.px, v2::header(v2::kProxy, v2::kTcp4, v2::inet4({1, 2, 3, 4}, {5, 6, 7, 8}, 9, 10), 0xFFFF));
  EXPECT_EQ(f.errors("px"), 1);
  std::string version1 = v2::header(v2::kProxy, v2::kTcp4, v2::inet4({1, 2, 3, 4}, {5, 6, 7, 8}, 9, 10));
  version1[12] = 0x11;
  expectDropped(f.px, version1 + "ping\n");
  EXPECT_EQ(f.errors("px"), 2);
  f.stopCleanly();
}

// A drain (SIGTERM) does not wait for headers still on their way: such a
// connection is closed at once without reaching the plugin, and not counted
// as a header error; the host exits 0.
TEST(Reliability, T12_DrainClosesConnectionsStillWaitingForTheirHeader) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  TestClient c = TestClient::connect(f.px);
  c.sendAll("PROXY TCP4 192.0.2.1 ");
  // Accepted and waiting for the rest of its header.
  ASSERT_TRUE(waitUntil(
      [&] {
        return metricValue(scrapeMetrics(f.admin), "protohost_connections_open", {{"listener", "px"}}) ==
               std::optional<double>(1);
      },
      5s));
  const auto t0 = Clock::now();
  ASSERT_TRUE(f.host.signal(SIGTERM));
  TestClient::Closed r = c.waitClosed(5s);
  EXPECT_TRUE(r.how == Ending::Eof || r.how == Ending::Reset) << endingName(r.how);
  EXPECT_EQ(r.data, "");
  EXPECT_LT(msSince(t0), 2000) << "the drain waited for the header";
  EXPECT_EQ(f.host.waitExit(20s), 0) << "exit status";
  EXPECT_EQ(f.host.stderrText().find("invalid PROXY header"), std::string::npos);
}

// T13 split delivery: a header sent one byte per 10 ms (nothing may come back
// before its last byte: no plugin callback on a partial header) and the same
// header coalesced with the first request in one segment give the same
// bytes back, for v1 and v2.
TEST(Reliability, T13_SplitAndCoalescedHeadersGiveTheSameResult) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  const std::string expected = "peer 203.0.113.5:40000 local 198.51.100.1:8889\nNEXT\r\n";
  for (const std::string& header :
       {std::string("PROXY TCP4 203.0.113.5 198.51.100.1 40000 8889\r\n"),
        v2::header(v2::kProxy, v2::kTcp4, v2::inet4({203, 0, 113, 5}, {198, 51, 100, 1}, 40000, 8889) + v2::tlv(0x04, "pad"))}) {
    SCOPED_TRACE(header[0] == 'P' ? "v1" : "v2");
    TestClient split = connectNoDelay(f.px);
    for (std::size_t i = 0; i < header.size(); ++i) {
      ASSERT_EQ(split.sendSome(&header[i], 1), 1);
      if (i + 1 == header.size()) break;
      pollfd p{split.fd(), POLLIN, 0};  // the 10 ms pause, which nothing may end
      ASSERT_EQ(::poll(&p, 1, 10), 0) << "the host answered (or closed) after " << i + 1 << " of " << header.size()
                                      << " header bytes";
    }
    split.sendAll("NEXT\r\n");
    const std::string fromSplit = split.recvExactly(expected.size());

    TestClient coalesced = connectNoDelay(f.px);
    coalesced.sendAll(header + "NEXT\r\n");
    const std::string fromCoalesced = coalesced.recvExactly(expected.size());
    EXPECT_EQ(fromSplit, expected);
    EXPECT_EQ(fromCoalesced, fromSplit);
  }
  EXPECT_EQ(f.errors("px"), 0);
}

// T13: the bytes after the header reach the plugin intact, also when they
// fill more than the host's 64 KiB read buffer in the header's first read.
TEST(Reliability, T13_PayloadAfterHeaderArrivesIntact) {
  ProxyHost f;
  DumpLogOnFailure dump{f.host};
  const e2e::PatternStream pattern(13);
  const std::string payload = pattern.bytes(0, 64 * 1024 + 1000);
  for (const std::string& header : {std::string("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n"),
                                    v2::header(v2::kProxy, v2::kTcp4, v2::inet4({192, 0, 2, 1}, {198, 51, 100, 7}, 1, 2))}) {
    SCOPED_TRACE(header[0] == 'P' ? "v1" : "v2");
    TestClient c = TestClient::connect(f.px);
    c.sendAll(header + payload);
    const std::string greeting = "peer 192.0.2.1:1 local 198.51.100.7:2\n";
    EXPECT_EQ(c.recvExactly(greeting.size()), greeting);  // (readLine would buffer echoed bytes)
    const std::string back = c.recvExactly(payload.size());
    EXPECT_EQ(pattern.mismatch(0, back), std::string::npos);
  }
}

// Input that came in the header's segment while connectionMade had paused
// reading is held and delivered when the protocol resumes; reading then goes on
// (a held delivery whose hook changed nothing must still re-arm the read).
TEST(Reliability, T13_InputHeldWhileConnectionMadePausedIsDeliveredThenReadingGoesOn) {
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini(host.linkPlugins({std::string(e2e::kTestPluginDir) + "/peer_echo.so"}));
  ini.listener("paused", "peer_echo", {{"factory", "peer_echo_paused"}, {"proxy_protocol", "required"}});
  host.startWithConfig(ini.text());
  TestClient c = TestClient::connect(host.port("paused"));
  c.sendAll("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\nheld\n");
  const std::string greeting = "peer 192.0.2.1:1 local 198.51.100.7:2\n";
  EXPECT_EQ(c.recvExactly(greeting.size()), greeting);
  EXPECT_EQ(c.recvExactly(5), "held\n");
  for (const std::string line : {"after 1\n", "after 2\n"}) {
    c.sendAll(line);
    EXPECT_EQ(c.recvExactly(line.size()), line);
  }
}

// max_connections_per_ip counts the real socket peer, not the address a
// PROXY header claims (a proxy's clients all share the proxy's address).
TEST(Reliability, T06_PerIpLimitCountsTheSocketPeerBehindProxyProtocol) {
  ProxyHost f(HostIni::Keys{{"max_connections_per_ip", "1"}});
  DumpLogOnFailure dump{f.host};
  TestClient first = TestClient::connect(f.px);
  first.sendAll("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n");
  EXPECT_EQ(first.readLine(), "peer 192.0.2.1:1 local 198.51.100.7:2");
  // Another claimed client, same socket peer (127.0.0.1): over the limit.
  std::string how;
  try {
    TestClient second = TestClient::connect(f.px);
    second.sendSome("PROXY TCP4 192.0.2.2 198.51.100.7 1 2\r\n", 39);
    TestClient::Closed r = second.waitClosed(2s);
    EXPECT_EQ(r.data, "") << "served above max_connections_per_ip";
    how = endingName(r.how);
  } catch (const IoError& e) {
    how = e.what();
  }
  EXPECT_TRUE(how == "RST" || how == "EOF" || how.find("reset") != std::string::npos) << how;
  EXPECT_EQ(metricValue(scrapeMetrics(f.admin), "protohost_connections_refused_total",
                        {{"listener", "px"}, {"reason", "max_connections_per_ip"}}),
            std::optional<double>(1));
  EXPECT_EQ(f.errors("px"), 0);
}

}  // namespace
}  // namespace protohost::reliability
