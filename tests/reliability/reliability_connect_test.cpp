// Outbound connections (Reactor::connect, SDK 1.3) end to end: the real host
// with the test-only "connector" plugin (tests/fixtures/connector), which
// connects out from a protocol (driven by commands from a test client) and
// from its factory, to listening sockets of the test's own on loopback. Data
// both ways, each failure reason, cancel, the owner ending first, /metrics
// (direction="out") and the out=HOST:PORT log tag.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "HostProcess.h"
#include "Loopback6Socket.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"
#include "WaitUntil.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;
using e2e::IoError;
using e2e::LocalListener;
using e2e::TestClient;
using testsupport::Loopback6Socket;

// One connection the test accepted from the host: line reads with a deadline.
class Accepted {
 public:
  /// Accepts one connection on @p listenFd within @p timeout; throws otherwise.
  Accepted(int listenFd, std::chrono::milliseconds timeout = 5s) {
    pollfd p{listenFd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) throw IoError("no connection to accept", EAGAIN);
    fd_ = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd_ < 0) throw IoError("accept", errno);
  }
  ~Accepted() {
    if (fd_ >= 0) ::close(fd_);
  }
  Accepted(const Accepted&) = delete;
  Accepted& operator=(const Accepted&) = delete;

  void send(const std::string& s) { ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }
  /// The next line without "\n"; throws on timeout or EOF.
  std::string readLine(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (readSome(deadline) <= 0) throw IoError("upstream read", 0);
    }
  }
  /// True when the host closed its side (EOF or reset) within @p timeout.
  bool waitEof(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const ssize_t n = readSome(deadline);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
      if (n < 0) return false;
    }
  }

 private:
  ssize_t readSome(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
      errno = EAGAIN;
      return -1;
    }
    char b[4096];
    const ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n > 0) buf_.append(b, static_cast<std::size_t>(n));
    return n;
  }
  int fd_ = -1;
  std::string buf_;

 public:
  void close() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }
};

// A loopback listening socket that accepts no more connections: backlog 0
// (room for one in Linux's accept queue) filled with connections the test
// makes itself, so the host's SYN goes unanswered and its connect times out.
struct FullBacklog {
  LocalListener listener;
  std::vector<TestClient> fillers;

  FullBacklog() {
    if (::listen(listener.fd(), 0) != 0) throw IoError("listen", errno);
    for (int i = 0; i < 8; ++i) {
      try {
        fillers.push_back(TestClient::connect(listener.port(), TestClient::Options{200ms, 0, 0}));
      } catch (const IoError&) {
        return;  // this one was not answered: the queue is full
      }
    }
    throw std::runtime_error("the accept queue of a backlog-0 socket never filled");
  }
  std::string endpoint(int timeoutMs) const {
    return "tcp:127.0.0.1:" + std::to_string(listener.port()) + ":timeout=" + std::to_string(timeoutMs);
  }
};

// The host: [listener.client] runs "connector" (extra keys for its factory), plus [admin].
struct ConnectHost {
  HostProcess host;
  std::uint16_t client = 0, admin = 0;

  explicit ConnectHost(HostIni::Keys keys = {}) {
    host.startWithConfig(config(keys));
    client = host.port("client");
    admin = host.port("admin");
  }
  std::string config(const HostIni::Keys& keys) {
    HostIni ini(host.linkPlugins({std::string(e2e::kTestPluginDir) + "/connector.so"}));
    ini.listener("client", "connector", keys);
    ini.raw(kAdminSection);
    return ini.text();
  }
  double metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    auto all = labels;
    all["listener"] = "client";
    all["direction"] = "out";
    return metricValue(scrapeMetrics(admin), name, all).value_or(-1);
  }
  bool metricBecomes(const std::string& name, const std::map<std::string, std::string>& labels, double want) {
    return testsupport::waitUntil([&] { return metric(name, labels) == want; }, 5s);
  }
  void stopCleanly() {
    ASSERT_TRUE(host.signal(SIGTERM));
    EXPECT_EQ(host.waitExit(20s), 0);
  }
};

// Sends "connect ENDPOINT" and checks the "id N" answer (N > 0).
void startConnect(TestClient& c, const std::string& endpoint) {
  c.sendAll("connect " + endpoint + "\n");
  const std::string id = c.readLine();
  ASSERT_TRUE(std::regex_match(id, std::regex("id [1-9][0-9]*"))) << id;
}

// A client of @p h whose protocol connected out to @p upstream (the kernel
// completes the handshake before the test accepts).
TestClient clientConnectedTo(ConnectHost& h, const LocalListener& upstream) {
  TestClient c = TestClient::connect(h.client);
  startConnect(c, "tcp:127.0.0.1:" + std::to_string(upstream.port()));
  EXPECT_EQ(c.readLine(), "connected");
  return c;
}

TEST(ReliabilityConnect, ProtocolConnectsOutDataBothWaysThenOwnerEndsFirst) {
  ConnectHost h;
  LocalListener upstream;
  TestClient c = clientConnectedTo(h, upstream);
  Accepted server(upstream.fd());
  c.sendAll("send hello upstream\n");
  EXPECT_EQ(server.readLine(), "hello upstream");
  server.send("hello client\n");
  EXPECT_EQ(c.readLine(), "upstream: hello client");
  // Tagged out=HOST:PORT in the outbound connection's log lines.
  const std::string target = "127.0.0.1:" + std::to_string(upstream.port());
  EXPECT_TRUE(h.host.waitForLog(std::regex("listener=client out=" + target + ".*upstream connected"), 5s))
      << h.host.stderrText();
  EXPECT_EQ(h.metric("protohost_connections_opened_total", {}), 1);
  EXPECT_EQ(h.metric("protohost_connections_active", {}), 1);
  // Outbound connections are not accepted ones: the inbound gauge counts only the client.
  EXPECT_EQ(metricValue(scrapeMetrics(h.admin), "protohost_connections_open", {{"listener", "client"}}), 1);

  // The owner (the client's connection) ends: the outbound one is closed with it.
  c.close();
  EXPECT_TRUE(server.waitEof()) << "the outbound connection outlived its owner";
  EXPECT_TRUE(h.metricBecomes("protohost_connections_active", {}, 0));
  EXPECT_EQ(h.metric("protohost_connections_ended_total", {{"reason", "shutdown"}}), 1);
  h.stopCleanly();
}

TEST(ReliabilityConnect, UpstreamClosingFirstReachesTheProtocol) {
  ConnectHost h;
  LocalListener upstream;
  TestClient c = clientConnectedTo(h, upstream);
  { Accepted server(upstream.fd()); }  // closed by the upstream
  EXPECT_EQ(c.readLine(), "upstream lost peer");
  EXPECT_TRUE(h.metricBecomes("protohost_connections_ended_total", {{"reason", "peer"}}, 1));
  EXPECT_EQ(h.metric("protohost_connections_active", {}), 0);
  c.close();
  h.stopCleanly();
}

TEST(ReliabilityConnect, RefusedTimeoutAndBadEndpointReachOnFailed) {
  ConnectHost h;
  TestClient c = TestClient::connect(h.client);
  // Refused: a port bound but not listening answers the SYN with a RST.
  LocalListener closed(LocalListener::Options{0, false, false, false});
  startConnect(c, "tcp:127.0.0.1:" + std::to_string(closed.port()));
  const std::string refused = c.readLine();
  EXPECT_TRUE(std::regex_match(refused, std::regex("failed refused 127\\.0\\.0\\.1:[0-9]+: Connection refused"))) << refused;
  // Timeout: nobody answers the SYN; within timeout=MS, not the kernel's minutes.
  FullBacklog full;
  const auto begin = std::chrono::steady_clock::now();
  startConnect(c, full.endpoint(300));
  const std::string timedOut = c.readLine();
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(timedOut.rfind("failed timeout ", 0) == 0) << timedOut;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 3s);
  // Bad endpoints name where they went wrong.
  startConnect(c, "tcp:127.0.0.1:99999");
  const std::string bad = c.readLine();
  EXPECT_TRUE(bad.rfind("failed bad_endpoint ", 0) == 0 && bad.find("at character 15") != std::string::npos) << bad;
  for (const char* reason : {"refused", "timeout", "bad_endpoint"})
    EXPECT_EQ(h.metric("protohost_connections_failed_total", {{"reason", reason}}), 1) << reason;
  EXPECT_EQ(h.metric("protohost_connections_opened_total", {}), 0);
  c.close();
  h.stopCleanly();
}

// An IPv6 literal, in brackets: no resolution, data both ways, the peer and
// the log tag in [::1]:PORT form; a refused one names its address the same way.
TEST(ReliabilityConnect, ConnectsToAnIpv6LiteralOnLoopback) {
  ConnectHost h;
  Loopback6Socket upstream(true);
  TestClient c = TestClient::connect(h.client);
  const std::string target = "[::1]:" + std::to_string(upstream.port());
  startConnect(c, "tcp:" + target);
  EXPECT_EQ(c.readLine(), "connected");
  Accepted server(upstream.fd());
  c.sendAll("send over six\n");
  EXPECT_EQ(server.readLine(), "over six");
  server.send("and back\n");
  EXPECT_EQ(c.readLine(), "upstream: and back");
  EXPECT_TRUE(h.host.waitForLog(std::regex("out=" + HostProcess::escapeRegex(target) + ".*upstream connected"), 5s))
      << h.host.stderrText();
  EXPECT_EQ(h.metric("protohost_connections_opened_total", {}), 1);

  Loopback6Socket refusing(false);
  startConnect(c, "tcp:[::1]:" + std::to_string(refusing.port()));
  EXPECT_EQ(c.readLine(), "failed refused [::1]:" + std::to_string(refusing.port()) + ": Connection refused");
  c.close();
  EXPECT_TRUE(server.waitEof()) << "the IPv6 outbound connection outlived its owner";
  h.stopCleanly();
}

// A name is resolved on the worker pool ([host] worker_threads): "localhost"
// comes from /etc/hosts, so no DNS is involved. A host without a pool (its
// /metrics has no protohost_worker_* family) refuses names as Unresolvable.
TEST(ReliabilityConnect, NameResolvesOnTheWorkerPool) {
  ConnectHost h;  // worker_threads defaults to 2
  ASSERT_NE(scrapeMetrics(h.admin).find("\nprotohost_worker_"), std::string::npos) << "no worker pool in /metrics";
  LocalListener upstream;
  TestClient c = TestClient::connect(h.client);
  startConnect(c, "tcp:localhost:" + std::to_string(upstream.port()));
  Accepted server(upstream.fd());
  EXPECT_EQ(c.readLine(), "connected");
  EXPECT_TRUE(h.host.waitForLog(std::regex("out=localhost:" + std::to_string(upstream.port()) + ".*upstream connected"), 5s));
  c.close();
  h.stopCleanly();
}

TEST(ReliabilityConnect, CancelReportsCancelledOnceAndOwnerEndDropsOnFailed) {
  ConnectHost h;
  FullBacklog full;
  {
    TestClient c = TestClient::connect(h.client);
    startConnect(c, full.endpoint(2000));
    c.sendAll("cancel\n");
    EXPECT_EQ(c.readLine(), "cancel true");
    EXPECT_TRUE(c.readLine().rfind("failed cancelled ", 0) == 0);
    c.sendAll("cancel\n");
    EXPECT_EQ(c.readLine(), "cancel false");  // it already failed
  }
  EXPECT_TRUE(h.metricBecomes("protohost_connections_failed_total", {{"reason", "cancelled"}}, 1));
  // A connect in progress when its owner ends: dropped, onFailed never runs
  // (the plugin's callback would write to a connection that is gone).
  ASSERT_TRUE(h.host.waitForLog(std::regex("onFailed cancelled"), 5s));  // logged by its own thread
  const std::size_t since = h.host.logLineCount();
  {
    TestClient c = TestClient::connect(h.client);
    startConnect(c, full.endpoint(300));
  }
  EXPECT_TRUE(h.metricBecomes("protohost_connections_failed_total", {{"reason", "cancelled"}}, 2));
  // Another connect with the same timeout, started later, times out: the
  // dropped one would have by then.
  TestClient later = TestClient::connect(h.client);
  startConnect(later, full.endpoint(300));
  EXPECT_TRUE(later.readLine().rfind("failed timeout ", 0) == 0);
  // The log is written by its own thread: wait for the later line before counting.
  EXPECT_TRUE(h.host.waitForLog(std::regex("onFailed timeout"), 5s, since));
  const std::string log = h.host.stderrText();
  EXPECT_EQ(countMatches(log, std::regex("onFailed ")), 2u) << log;  // "cancelled" and the later "timeout"
  EXPECT_FALSE(h.host.waitForLog(std::regex("onFailed cancelled"), 0ms, since));
  later.close();
  h.stopCleanly();
}

TEST(ReliabilityConnect, FactoryConnectsOutAtStartAndClosesAtStop) {
  LocalListener upstream;
  const std::string target = "127.0.0.1:" + std::to_string(upstream.port());
  ConnectHost h({{"connect_at_start", "tcp:" + target}});
  Accepted server(upstream.fd());
  EXPECT_EQ(server.readLine(), "hello from factory");
  server.send("ping\n");
  EXPECT_EQ(server.readLine(), "pong:ping");
  EXPECT_TRUE(h.host.waitForLog(std::regex("listener=client out=" + target + ".*factory upstream connected"), 5s));
  EXPECT_EQ(h.metric("protohost_connections_active", {}), 1);
  // A drain asks outbound protocols to finish too (stopRequested: the default closes).
  ASSERT_TRUE(h.host.signal(SIGTERM));
  EXPECT_TRUE(server.waitEof());
  server.close();  // the host's lingering close waits for this side's FIN
  EXPECT_EQ(h.host.waitExit(20s), 0);
  EXPECT_TRUE(h.host.waitForLog(std::regex("factory upstream lost local"), 0ms)) << h.host.stderrText();
}

// A reload that replaces the factory retires the old one; with no accepted
// connection left it is released at once, although its own outbound
// connection still holds it, and that connection is closed with it.
TEST(ReliabilityConnect, ReloadReleasesAFactoryHeldOnlyByItsOutboundConnection) {
  LocalListener first, second;
  const auto endpointOf = [](const LocalListener& l) { return "tcp:127.0.0.1:" + std::to_string(l.port()); };
  ConnectHost h({{"connect_at_start", endpointOf(first)}});
  Accepted a(first.fd());
  EXPECT_EQ(a.readLine(), "hello from factory");
  h.host.writeConfig(h.config({{"connect_at_start", endpointOf(second)}}));
  ASSERT_TRUE(h.host.signal(SIGHUP));
  Accepted b(second.fd());
  EXPECT_EQ(b.readLine(), "hello from factory");
  EXPECT_TRUE(a.waitEof()) << "the retired factory's outbound connection was not closed";
  EXPECT_TRUE(h.host.waitForLog(std::regex("previous configuration of this listener released"), 5s)) << h.host.stderrText();
  EXPECT_TRUE(h.host.waitForLog(std::regex("factory upstream lost shutdown"), 5s));
  EXPECT_TRUE(h.metricBecomes("protohost_connections_active", {}, 1));
  a.close();
  b.close();
  h.stopCleanly();
}

TEST(ReliabilityConnect, FactoryConnectFailureReachesTheFactory) {
  LocalListener closed(LocalListener::Options{0, false, false, false});
  ConnectHost h({{"connect_at_start", "tcp:127.0.0.1:" + std::to_string(closed.port())}});
  EXPECT_TRUE(h.host.waitForLog(std::regex("factory onFailed refused 127\\.0\\.0\\.1:"), 5s)) << h.host.stderrText();
  EXPECT_EQ(h.metric("protohost_connections_failed_total", {{"reason", "refused"}}), 1);
  h.stopCleanly();
}

}  // namespace
}  // namespace protohost::reliability
