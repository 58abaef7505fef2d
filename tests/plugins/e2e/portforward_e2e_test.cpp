// End-to-end tests of the portforward plugin: the real host forwarding to
// real upstreams over loopback -- another host running echo or peer_echo, the
// test's own scripted upstreams, a refused port, a listener that never
// accepts, and HAProxy in front sending PROXY v2.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "PluginE2eSupport.h"
#include "PortForwardE2eSupport.h"

namespace protohost::e2e::portforward {
namespace {

using plugintest::httpGet;
using plugintest::waitAccepting;
using plugintest::waitUntil;
constexpr auto kWait = 10s;

// A host with one portforward listener "fwd" (and [admin]) forwarding to @p upstream.
struct Forwarder {
  explicit Forwarder(const std::string& upstream, HostIni::Keys extra = {}, bool admin = false) {
    HostIni ini;
    HostIni::Keys keys{{"upstream", upstream}};
    keys.insert(keys.end(), extra.begin(), extra.end());
    ini.listener("fwd", "portforward", keys);
    if (admin) ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
    host.startWithConfig(ini.text());
    port = host.port("fwd", kWait);
    if (admin) adminPort = host.port("admin", kWait);
  }
  HostProcess host;
  std::uint16_t port = 0;
  std::uint16_t adminPort = 0;
};

// Another host as the upstream: @p plugin on listener "up" (a test plugin when @p testPlugin).
struct UpstreamHost {
  explicit UpstreamHost(const std::string& plugin, HostIni::Keys keys = {}, bool testPlugin = false)
      : ini(testPlugin ? kTestPluginDir : kPluginDir) {
    ini.listener("up", plugin, std::move(keys));
    host.startWithConfig(ini.text());
    port = host.port("up", kWait);
  }
  HostIni ini;
  HostProcess host;
  std::uint16_t port = 0;
};

std::string tcp(std::uint16_t port) { return "tcp:127.0.0.1:" + std::to_string(port); }

// One client of the 100: sends its pattern and checks the echo, non-blocking.
struct Flow {
  explicit Flow(std::uint16_t port, std::uint64_t seed)
      : client(TestClient::connect(port, TestClient::Options{10s})), pattern(seed) {
    client.setBlocking(false);
  }
  TestClient client;
  PatternStream pattern;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::size_t badAt = std::string::npos;
};

TEST(PortForwardE2e, HundredClientsByOneMiBThroughToAnEchoHostAreByteExact) {
  UpstreamHost echo("echo");
  Forwarder fwd(tcp(echo.port));
  constexpr std::uint64_t kBytes = 1 << 20;
  std::vector<std::unique_ptr<Flow>> flows;
  for (int i = 0; i < 100; ++i) flows.push_back(std::make_unique<Flow>(fwd.port, 1000 + i));
  const auto started = Clock::now();
  const auto deadline = started + 90s;
  std::string chunk;
  char buf[65536];
  std::size_t done = 0;
  while (done < flows.size() && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    for (auto& f : flows)
      fds.push_back({f->client.fd(), static_cast<short>(POLLIN | (f->sent < kBytes ? POLLOUT : 0)), 0});
    ASSERT_GE(::poll(fds.data(), fds.size(), 1000), 0);
    done = 0;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      Flow& f = *flows[i];
      if ((fds[i].revents & POLLOUT) && f.sent < kBytes) {
        chunk = f.pattern.bytes(f.sent, static_cast<std::size_t>(std::min<std::uint64_t>(16384, kBytes - f.sent)));
        const ssize_t n = ::send(f.client.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) f.sent += static_cast<std::uint64_t>(n);
      }
      if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) {
        const ssize_t n = ::recv(f.client.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          const std::string_view got(buf, static_cast<std::size_t>(n));
          if (f.badAt == std::string::npos)
            if (auto at = f.pattern.mismatch(f.received, got); at != std::string_view::npos) f.badAt = f.received + at;
          f.received += static_cast<std::uint64_t>(n);
        }
      }
      if (f.received >= kBytes) ++done;
    }
  }
  std::printf("[ measured ] 100 clients x 1 MiB echoed through the forwarder in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()));
  for (std::size_t i = 0; i < flows.size(); ++i) {
    EXPECT_EQ(flows[i]->received, kBytes) << "client " << i;
    EXPECT_EQ(flows[i]->badAt, std::string::npos) << "client " << i << " first wrong byte";
  }
}

// Holds each connection without reading until the upstream stops.
void holdUnread(const std::atomic<bool>& stopping) {
  while (!stopping) std::this_thread::sleep_for(20ms);
}

TEST(PortForwardE2e, UpstreamThatNeverReadsKeepsHostRssBounded) {
  ScriptedUpstream silent([](int, const std::atomic<bool>& stopping) { holdUnread(stopping); });
  Forwarder fwd(tcp(silent.port()));
  TestClient warm = TestClient::connect(fwd.port);
  warm.sendAll("warm up");
  ASSERT_TRUE(waitUntil([&] { return silent.accepted() == 1; }, kWait));
  const long before = fwd.host.rssKiB();
  ASSERT_GT(before, 0);
  std::vector<TestClient> clients;
  std::uint64_t total = 0;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(TestClient::connect(fwd.port));
    clients.back().setBlocking(false);
  }
  for (auto& c : clients) total += sendUntilStalled(c.fd(), PatternStream(7), 512ull << 20, 700ms);
  const long after = fwd.host.rssKiB();
  std::printf("[ measured ] upstream never reads: 8 clients sent %llu bytes before stalling; host VmRSS %ld -> %ld KiB\n",
              static_cast<unsigned long long>(total), before, after);
  // The kernel's socket buffers took a few MiB per connection; the host held at
  // most buffer_bytes (64 KiB) and a read per connection before it stopped reading.
  EXPECT_LT(total, 8 * (64ull << 20)) << "the host kept reading";
  EXPECT_LT(after - before, 16 * 1024) << "VmRSS grew from " << before << " to " << after << " KiB after "
                                       << total << " bytes";
  silent.stop();
}

TEST(PortForwardE2e, ClientThatNeverReadsPausesTheUpstreamAndHostRssStaysBounded) {
  std::atomic<std::uint64_t> pushed{0};
  std::atomic<int> stalled{0};
  ScriptedUpstream firehose([&](int fd, const std::atomic<bool>& stopping) {
    pushed += sendUntilStalled(fd, PatternStream(9), 512ull << 20, 700ms);
    ++stalled;
    holdUnread(stopping);
  });
  Forwarder fwd(tcp(firehose.port()));
  const long before = fwd.host.rssKiB();
  std::vector<TestClient> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(TestClient::connect(fwd.port));
  ASSERT_TRUE(waitUntil([&] { return firehose.accepted() == 8; }, kWait));
  // Each upstream sender stops once nothing was taken for 700 ms.
  ASSERT_TRUE(waitUntil([&] { return stalled.load() == 8; }, 30s));
  const long after = fwd.host.rssKiB();
  std::printf("[ measured ] client never reads: 8 upstreams pushed %llu bytes before stalling; host VmRSS %ld -> %ld KiB\n",
              static_cast<unsigned long long>(pushed.load()), before, after);
  EXPECT_LT(pushed.load(), 8 * (64ull << 20));
  EXPECT_LT(after - before, 16 * 1024) << "VmRSS grew from " << before << " to " << after << " KiB";
  firehose.stop();
}

TEST(PortForwardE2e, RefusedUpstreamClosesTheClientWithALogLineAndACounter) {
  const std::uint16_t dead = freeLoopbackPort();
  Forwarder fwd(tcp(dead), {}, true);
  TestClient c = TestClient::connect(fwd.port);
  c.sendAll("hello?");
  const auto closed = c.waitClosed(5s);
  EXPECT_NE(closed.how, TestClient::Close::Timeout);
  EXPECT_EQ(closed.data, "");
  EXPECT_TRUE(fwd.host.waitForLog("WARN \\[listener=fwd peer=127\\.0\\.0\\.1:[0-9]+\\] upstream tcp:127\\.0\\.0\\.1:" +
                                      std::to_string(dead) + " refused: ",
                                  kWait));
  const std::string metrics = httpGet(fwd.adminPort, "/metrics").body;
  EXPECT_NE(metrics.find("protohost_connections_failed_total{listener=\"fwd\",direction=\"out\",reason=\"refused\"} 1"),
            std::string::npos)
      << metrics;
}

TEST(PortForwardE2e, UpstreamThatNeverAcceptsClosesTheClientWithinTheConnectTimeout) {
  FullBacklogListener blackhole;
  if (!blackhole.full()) GTEST_SKIP() << "this kernel answered every connect to a full backlog";
  Forwarder fwd(tcp(blackhole.port()), {{"connect_timeout_ms", "400"}}, true);
  const auto t0 = Clock::now();
  TestClient c = TestClient::connect(fwd.port);
  c.sendAll("anyone?");
  const auto closed = c.waitClosed(10s);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_NE(closed.how, TestClient::Close::Timeout);
  EXPECT_GE(ms, 350);
  EXPECT_LT(ms, 3000);
  EXPECT_TRUE(fwd.host.waitForLog("upstream tcp:127\\.0\\.0\\.1:[0-9]+ timeout: ", kWait));
  EXPECT_NE(httpGet(fwd.adminPort, "/metrics")
                .body.find("protohost_connections_failed_total{listener=\"fwd\",direction=\"out\",reason=\"timeout\"} 1"),
            std::string::npos);
}

TEST(PortForwardE2e, UnresolvableUpstreamClosesTheClient) {
  Forwarder fwd("tcp:no-such-host.invalid:80", {{"connect_timeout_ms", "2000"}});
  TestClient c = TestClient::connect(fwd.port);
  const auto closed = c.waitClosed(8s);
  EXPECT_NE(closed.how, TestClient::Close::Timeout);
  EXPECT_TRUE(fwd.host.waitForLog("upstream tcp:no-such-host\\.invalid:80 (unresolvable|timeout): ", kWait));
}

TEST(PortForwardE2e, UpstreamResetMidStreamResetsTheClient) {
  ScriptedUpstream resetter([](int fd, const std::atomic<bool>&) {
    std::string got;
    recvUpTo(fd, got, 1000, 5s);
    ::send(fd, "partial", 7, MSG_NOSIGNAL);
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);  // close() below sends RST
  });
  Forwarder fwd(tcp(resetter.port()));
  TestClient c = TestClient::connect(fwd.port);
  c.sendAll(std::string(1000, 'r'));
  const auto closed = c.waitClosed(5s);
  EXPECT_EQ(closed.how, TestClient::Close::Reset) << "got " << closed.data.size() << " bytes, then "
                                                   << static_cast<int>(closed.how);
}

TEST(PortForwardE2e, ClientResetResetsTheUpstream) {
  std::promise<std::string> ended;
  std::atomic<bool> heardHello{false};
  ScriptedUpstream watcher([&](int fd, const std::atomic<bool>&) {
    std::string got;
    recvUpTo(fd, got, 5, 5s);
    heardHello = got == "hello";
    ended.set_value(readToEnd(fd, got, 5s));
  });
  Forwarder fwd(tcp(watcher.port()));
  TestClient c = TestClient::connect(fwd.port);
  c.sendAll("hello");
  ASSERT_TRUE(waitUntil([&] { return heardHello.load(); }, kWait));  // the upstream reads "hello" first
  c.resetClose();
  auto f = ended.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), "reset");
}

TEST(PortForwardE2e, ClientHalfCloseReachesTheUpstreamAndTheAnswerComesBack) {
  ScriptedUpstream answerer([](int fd, const std::atomic<bool>&) {
    std::string got;
    if (readToEnd(fd, got, 5s) != "eof") return;  // the client's FIN, forwarded
    const std::string reply = "got " + std::to_string(got.size()) + " bytes after EOF\n";
    ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  });
  Forwarder fwd(tcp(answerer.port()));
  TestClient c = TestClient::connect(fwd.port);
  c.sendAll(std::string(100000, 'q'));
  c.shutdownWrite();
  const auto closed = c.waitClosed(10s);
  EXPECT_EQ(closed.how, TestClient::Close::Eof);
  EXPECT_EQ(closed.data, "got 100000 bytes after EOF\n");
}

TEST(PortForwardE2e, UpstreamHalfCloseReachesTheClientWhichGoesOnSending) {
  std::promise<std::string> heard;
  ScriptedUpstream banner([&](int fd, const std::atomic<bool>&) {
    ::send(fd, "banner\n", 7, MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    std::string got;
    const std::string how = readToEnd(fd, got, 10s);
    heard.set_value(how + ":" + got);
  });
  Forwarder fwd(tcp(banner.port()));
  TestClient c = TestClient::connect(fwd.port);
  std::string got;
  EXPECT_EQ(readToEnd(c.fd(), got, 5s), "eof");  // the upstream's FIN, forwarded
  EXPECT_EQ(got, "banner\n");
  c.sendAll("still here");  // the client's sending side is still open
  c.shutdownWrite();
  auto f = heard.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), "eof:still here");
}

// HAProxy (mode tcp, send-proxy-v2) -> host listener "fwd" (proxy_protocol =
// required, portforward send_proxy = MODE) -> host listener "up" (proxy_protocol
// = required, peer_echo: prints the addresses it was given). The client binds
// 127.0.0.5: the line the upstream prints must name it.
class HaproxyInFront : public ::testing::TestWithParam<std::string> {};

TEST_P(HaproxyInFront, OriginalClientAddressPassesThrough) {
  if (::system("command -v haproxy >/dev/null 2>&1") != 0) GTEST_SKIP() << "haproxy not installed (scripts/bootstrap.sh)";
  UpstreamHost up("peer_echo", {{"proxy_protocol", "required"}}, true);
  Forwarder fwd(tcp(up.port), {{"send_proxy", GetParam()}, {"proxy_protocol", "required"}});
  const std::uint16_t front = freeLoopbackPort();
  testsupport::TempDir dir;
  const std::string cfg = dir.path() + "/haproxy.cfg";
  std::ofstream(cfg) << "global\n    nbthread 1\n"
                        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
                        "frontend fe\n    bind 127.0.0.1:"
                     << front << "\n    default_backend be\n"
                     << "backend be\n    server fwd 127.0.0.1:" << fwd.port << " send-proxy-v2\n";
  testsupport::ChildProcess haproxy({.argv = {"haproxy", "-db", "-f", cfg}, .searchPath = true});
  ASSERT_TRUE(waitAccepting(front, kWait)) << haproxy.stderrText();
  TestClient c = TestClient::connect(front, TestClient::Options{5s, 0, 0, "127.0.0.5"});
  sockaddr_in me{};
  socklen_t len = sizeof me;
  ::getsockname(c.fd(), reinterpret_cast<sockaddr*>(&me), &len);
  const std::string line = c.readLine();
  EXPECT_EQ(line, "peer 127.0.0.5:" + std::to_string(ntohs(me.sin_port)) + " local 127.0.0.1:" + std::to_string(front));
  EXPECT_EQ(c.roundTrip("echo through three hops\n"), "echo through three hops\n");
}

INSTANTIATE_TEST_SUITE_P(SendProxy, HaproxyInFront, ::testing::Values("v1", "v2"));

}  // namespace
}  // namespace protohost::e2e::portforward
