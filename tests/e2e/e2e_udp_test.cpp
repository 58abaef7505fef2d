// echo over UDP with the real host binary on loopback (issue 11): real
// clients no one here wrote (Python's socket module, socat), datagram sizes
// up to 65507 bytes, IPv4 and [::1], oversized datagrams dropped and
// counted, a flood from one source limited, datagrams from source port 19
// dropped, a v6 wildcard beside a v4 socket on the same port (V6ONLY),
// reload and TERM, and the configuration errors.
//
// Loss is allowed by UDP, corruption is not: every answer is compared with
// what was sent. "Nothing was answered" is checked by order, never by a
// sleep: the host reads its one socket in order, so once the answer to a
// later datagram (a marker, from another source) arrived, the earlier ones
// were read and judged, and their answers, if any, were sent before it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "HostProcess.h"
#include "RunCommand.h"
#include "ReliabilitySupport.h"
#include "UdpClient.h"

namespace {

using namespace std::chrono_literals;
using protohost::e2e::HostIni;
using protohost::e2e::HostProcess;
using protohost::reliability::checkExposition;
using protohost::reliability::DumpLogOnFailure;
using protohost::reliability::kAdminSection;
using protohost::reliability::metricValue;
using protohost::reliability::scrapeMetrics;
using protohost::testsupport::UdpClient;

const char* const kUdpLoopback = "udp:0:interface=127.0.0.1";
const char* const kUdpLoopback6 = "udp:0:interface=\\:\\:1";

using protohost::testsupport::RunResult;

RunResult run(const std::string& command) { return protohost::testsupport::runCommand(command); }

// The UDP port of [listener.NAME], from its "listening on udp:ADDR:PORT" line.
std::uint16_t udpPort(HostProcess& host, const std::string& name) {
  std::regex re("\\[listener=" + HostProcess::escapeRegex(name) + "\\] listening on udp:\\S*:([0-9]+) ");
  auto line = host.waitForLog(re, 20s);
  if (!line) throw std::runtime_error("no udp listener " + name + "; stderr:\n" + host.stderrText());
  std::smatch m;
  std::regex_search(*line, m, re);
  return static_cast<std::uint16_t>(std::stoul(m[1].str()));
}

std::optional<double> dropped(const std::string& page, const std::string& reason) {
  return metricValue(page, "protohost_datagrams_dropped_total", {{"listener", "udp"}, {"reason", reason}});
}

// A host serving echo on UDP (and TCP, and the admin endpoint) on loopback.
struct UdpHost {
  explicit UdpHost(HostIni::Keys udpKeys = {}, const char* listen = kUdpLoopback) {
    ini.listener("udp", "echo", std::move(udpKeys), listen);
    ini.raw(kAdminSection);
    host.startWithConfig(ini.text());
    port = udpPort(host, "udp");
    admin = host.port("admin");
  }
  // Sends @p marker from a fresh source (127.0.0.3) and waits for its answer: everything sent before was judged.
  void sync(const std::string& marker = "marker") {
    UdpClient other(false, 0, "127.0.0.3");
    for (int attempt = 0; attempt < 3; ++attempt) {
      ASSERT_TRUE(other.sendTo(port, marker));
      if (auto answer = other.receive(2000)) {
        ASSERT_EQ(*answer, marker);
        return;
      }
    }
    FAIL() << "the marker datagram was never answered";
  }
  HostIni ini;
  HostProcess host;
  DumpLogOnFailure dump{host};
  std::uint16_t port = 0;
  std::uint16_t admin = 0;
};

std::string pythonClient() {
  return R"PY(
import os, socket, sys
port, family = int(sys.argv[1]), sys.argv[2]
host = '::1' if family == '6' else '127.0.0.1'
s = socket.socket(socket.AF_INET6 if family == '6' else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for size in (0, 1, 1472, 8193, 65507):
    data = os.urandom(size)
    for attempt in range(3):  # a lost datagram is retried: loss is allowed, corruption is not
        s.sendto(data, (host, port))
        try:
            got, peer = s.recvfrom(70000)
        except socket.timeout:
            continue
        break
    else:
        print('no answer to %d bytes' % size)
        sys.exit(1)
    if got != data:
        print('corrupted answer to %d bytes' % size)
        sys.exit(2)
    if peer[1] != port:
        print('answer from port %d' % peer[1])
        sys.exit(3)
    print('ok %d' % size)
# A burst of 1,000 numbered datagrams in windows of 50: every answer must be one of them, intact.
sent, answered, n = {}, 0, 1000
for start in range(0, n, 50):
    for i in range(start, start + 50):
        d = b'%06d' % i + os.urandom(200)
        sent[d[:6]] = d
        s.sendto(d, (host, port))
    for i in range(50):
        try:
            d, _ = s.recvfrom(70000)
        except socket.timeout:
            break
        if sent.get(d[:6]) != d:
            print('corrupted burst datagram')
            sys.exit(2)
        answered += 1
print('burst %d of %d answered' % (answered, n))
)PY";
}

void runPython(UdpHost& h, const char* family) {
  const std::string script = h.host.writeFile("udp_client.py", pythonClient());
  RunResult r = run("python3 " + script + " " + std::to_string(h.port) + " " + family + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* size : {"ok 0\n", "ok 1\n", "ok 1472\n", "ok 8193\n", "ok 65507\n"})
    EXPECT_NE(r.out.find(size), std::string::npos) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("burst ([0-9]+) of 1000 answered"))) << r.out;
  // Loopback loses nothing below the socket buffers; a few may go when the machine is busy.
  EXPECT_GE(std::stoi(m[1].str()), 900) << r.out;
  std::cerr << "python client: " << r.out;
}

TEST(UdpEcho, PythonClientIpv4SizesAndBurst) {
  UdpHost h(HostIni::Keys{{"max_datagrams_per_s_per_ip", "0"}});
  runPython(h, "4");
  const std::string page = scrapeMetrics(h.admin);
  auto received = metricValue(page, "protohost_datagrams_received_total", {{"listener", "udp"}});
  auto sent = metricValue(page, "protohost_datagrams_sent_total", {{"listener", "udp"}});
  ASSERT_TRUE(received && sent) << page;
  EXPECT_GE(*received, 905);
  EXPECT_EQ(*sent, *received);  // echo answers every datagram it receives (no limit here)
  EXPECT_EQ(dropped(page, "too_large"), 0);
  const std::vector<std::string> problems = checkExposition(page);  // the datagram families keep the format valid
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

TEST(UdpEcho, PythonClientIpv6Loopback) {
  UdpHost h(HostIni::Keys{{"max_datagrams_per_s_per_ip", "0"}}, kUdpLoopback6);
  runPython(h, "6");
}

TEST(UdpEcho, SocatClientsIpv4AndIpv6) {
  UdpHost h;
  UdpHost h6(HostIni::Keys{}, kUdpLoopback6);
  // socat sends its stdin as one datagram and prints the answer; -t 2: it
  // ends 2 s after its stdin did (UDP has no EOF to wait for).
  RunResult r4 = run("printf 'hello over udp4' | timeout 20 socat -t 2 - UDP4:127.0.0.1:" + std::to_string(h.port));
  EXPECT_EQ(r4.status, 0);
  EXPECT_EQ(r4.out, "hello over udp4");
  RunResult r6 = run("printf 'hello over udp6' | timeout 20 socat -t 2 - UDP6:[::1]:" + std::to_string(h6.port));
  EXPECT_EQ(r6.status, 0);
  EXPECT_EQ(r6.out, "hello over udp6");
}

TEST(UdpEcho, OversizedDatagramsAreDroppedAndCounted) {
  UdpHost h(HostIni::Keys{{"max_datagram_bytes", "512"}});
  UdpClient client;
  ASSERT_TRUE(client.sendTo(h.port, std::string(513, 'L')));
  ASSERT_TRUE(client.sendTo(h.port, std::string(65507, 'M')));
  ASSERT_TRUE(client.sendTo(h.port, std::string(512, 'k')));
  auto answer = client.receive();
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, std::string(512, 'k'));  // the first answer is the third datagram's
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(dropped(page, "too_large"), 2) << page;
  EXPECT_EQ(metricValue(page, "protohost_datagrams_sent_total", {{"listener", "udp"}}), 1);
}

TEST(UdpEcho, AFloodFromOneSourceIsLimited) {
  UdpHost h(HostIni::Keys{{"max_datagrams_per_s_per_ip", "50"}});
  UdpClient flood(false, 0, "127.0.0.2");
  int sent = 0;
  for (int i = 0; i < 2000; ++i) sent += flood.sendTo(h.port, "flood " + std::to_string(i)) ? 1 : 0;
  h.sync();  // another source is still answered, after the flood was judged
  int answered = 0;
  while (auto answer = flood.receive(0)) {
    EXPECT_EQ(answer->rfind("flood ", 0), 0u);
    ++answered;
  }
  // At most the budget of the window(s) the flood spanned (a window is one second).
  EXPECT_GE(answered, 1);
  EXPECT_LE(answered, 150);
  const std::string page = scrapeMetrics(h.admin);
  auto limited = dropped(page, "rate_limited");
  auto received = metricValue(page, "protohost_datagrams_received_total", {{"listener", "udp"}});
  ASSERT_TRUE(limited && received) << page;
  // Every flood datagram that reached the socket was answered or limited; the kernel may drop some before.
  EXPECT_EQ(*limited + answered + 1, *received) << page;
  // The kernel may drop some of the flood before the host reads it (a full socket buffer), not most of it.
  EXPECT_GE(*limited, 200) << "sent " << sent << "; " << page;
}

TEST(UdpEcho, DatagramsFromSourcePort19AreDroppedAndCounted) {
  if (::geteuid() != 0) GTEST_SKIP() << "binding source port 19 needs root";
  UdpHost h;
  UdpClient chargen(false, 19);
  ASSERT_TRUE(chargen.sendTo(h.port, "chargen says hi"));
  h.sync();
  EXPECT_FALSE(chargen.receive(0).has_value());
  UdpClient echo7(false, 7);
  ASSERT_TRUE(echo7.sendTo(h.port, "echo says hi"));
  h.sync();
  EXPECT_FALSE(echo7.receive(0).has_value());
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(dropped(page, "loop_source_port"), 2) << page;
}

TEST(UdpEcho, V6WildcardIsV6OnlyAndAReloadAddsAV4SocketOnItsPort) {
  UdpHost h(HostIni::Keys{}, "udp:0:interface=\\:\\:");
  // With V6ONLY, [::]:P leaves 127.0.0.1:P free: a reload binds it.
  const std::size_t mark = h.host.logLineCount();
  h.ini.listener("udp4", "echo", {}, "udp:" + std::to_string(h.port) + ":interface=127.0.0.1");
  h.host.writeConfig(h.ini.text());
  ASSERT_TRUE(h.host.signal(SIGHUP));
  ASSERT_TRUE(h.host.waitForLog("configuration reloaded", 20s, mark).has_value()) << h.host.stderrText();
  UdpClient v4;
  ASSERT_TRUE(v4.sendTo(h.port, "to v4"));
  EXPECT_EQ(v4.receive(), "to v4");
  UdpClient v6(true);
  ASSERT_TRUE(v6.sendTo(h.port, "to v6"));
  EXPECT_EQ(v6.receive(), "to v6");
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(metricValue(page, "protohost_datagrams_sent_total", {{"listener", "udp4"}}), 1) << page;
  EXPECT_EQ(metricValue(page, "protohost_datagrams_sent_total", {{"listener", "udp"}}), 1) << page;
}

TEST(UdpEcho, ReloadKeepsTheSocketAndAppliesTheNewLimitThenTermEnds) {
  UdpHost h(HostIni::Keys{{"max_datagrams_per_s_per_ip", "1000"}});
  UdpClient client(false, 0, "127.0.0.2");
  ASSERT_TRUE(client.sendTo(h.port, "before"));
  EXPECT_EQ(client.receive(), "before");
  // The new factory's protocol takes over the same socket: the port stays.
  const std::size_t mark = h.host.logLineCount();
  HostIni next;
  next.listener("udp", "echo", {{"max_datagrams_per_s_per_ip", "1"}, {"max_datagram_bytes", "100"}},
                kUdpLoopback);  // the same endpoint text
  next.raw(kAdminSection);
  h.host.writeConfig(next.text());
  ASSERT_TRUE(h.host.signal(SIGHUP));
  ASSERT_TRUE(h.host.waitForLog("configuration reloaded", 20s, mark).has_value()) << h.host.stderrText();
  ASSERT_TRUE(h.host.waitForLog("previous configuration of this listener released", 20s, mark).has_value()) << h.host.stderrText();
  ASSERT_TRUE(client.sendTo(h.port, std::string(101, 'x')));  // over the new max_datagram_bytes
  ASSERT_TRUE(client.sendTo(h.port, "one"));
  ASSERT_TRUE(client.sendTo(h.port, "two"));  // over the new budget of 1 a second
  h.sync();
  EXPECT_EQ(client.receive(0), "one");
  EXPECT_FALSE(client.receive(0).has_value());
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(dropped(page, "rate_limited"), 1) << page;
  EXPECT_EQ(dropped(page, "too_large"), 1) << page;
  ASSERT_TRUE(h.host.signal(SIGTERM));
  EXPECT_EQ(h.host.waitExit(20s), 0) << h.host.stderrText();
}

TEST(UdpEcho, AFactoryWithoutADatagramProtocolIsAConfigError) {
  HostIni ini(protohost::e2e::kTestPluginDir);
  ini.listener("peer", "peer_echo", {}, kUdpLoopback);
  HostProcess host;
  const std::string path = host.writeConfig(ini.text());
  HostProcess::Result r = host.run({"--config", path}, 20s);
  EXPECT_EQ(r.status, 78) << r.err;
  const std::string where = path + ":" + std::to_string(ini.lineOf("listen =")) + ": listen: [listener.peer]";
  EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("serves no datagrams"), std::string::npos) << r.err;
}

TEST(UdpEcho, APluginBuiltAgainstSdk12IsRefusedOnUdpAndAcceptedOnTcp) {
  // Its Factory vtable predates buildDatagramProtocol: the host must not call it.
  HostIni ini(protohost::e2e::kTestPluginDir);
  ini.listener("old", "sdk12", {}, kUdpLoopback);
  HostProcess host;
  const std::string path = host.writeConfig(ini.text());
  HostProcess::Result r = host.run({"--config", path, "--check-config"}, 20s);
  EXPECT_EQ(r.status, 78) << r.err;
  EXPECT_NE(r.err.find(path + ":" + std::to_string(ini.lineOf("listen =")) +
                       ": listen: plugin sdk12 is built against SDK 1.2; a udp: listener needs a plugin built "
                       "against SDK 1.3 or later"),
            std::string::npos)
      << r.err;
  HostIni tcp(protohost::e2e::kTestPluginDir);
  tcp.listener("old", "sdk12");
  HostProcess tcpHost;
  const std::string tcpPath = tcpHost.writeConfig(tcp.text());
  HostProcess::Result ok = tcpHost.run({"--config", tcpPath, "--check-config"}, 20s);
  EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST(UdpEcho, ConnectionKeysOnAUdpListenerAreRefusedByCheckConfig) {
  HostIni ini;
  ini.listener("udp", "echo", {{"proxy_protocol", "required"}}, kUdpLoopback);
  HostProcess host;
  const std::string path = host.writeConfig(ini.text());
  HostProcess::Result r = host.run({"--config", path, "--check-config"}, 20s);
  EXPECT_EQ(r.status, 78) << r.err;
  EXPECT_NE(r.err.find("proxy_protocol: applies to tcp: listeners only"), std::string::npos) << r.err;
}

}  // namespace
