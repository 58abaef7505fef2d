// ssl: listeners with the real host binary on loopback (issue 11): the
// test-only peer_echo plugin (it writes "peer ..." and, on TLS, a "tls ..."
// line with what Transport::tls() says, then echoes) and the echo and
// fibonacci plugins, driven by clients no one here wrote (openssl s_client,
// Python's ssl module) and by an OpenSSL client (TlsTestClient.h).
// Certificates are made at test time by tests/tls/make-test-certs.sh.
//
// Covered: the handshake and echo with a verified chain in chunks down to
// one byte; SNI picking the second certificate; ALPN; TLS 1.0/1.1 refused and
// 1.2 served; plaintext, a truncated ClientHello and a trickled handshake
// closed and counted without any plugin code running; client certificates
// (mTLS) with the subject and fingerprint the plugin sees; unsafe and
// mismatched keys refused at start with file:line; HUP reloading the
// certificate (old connections keep theirs, a broken file keeps the old one
// serving); a PROXY header and the ClientHello in one segment; session
// resumption by ticket.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "HostProcess.h"
#include "RunCommand.h"
#include "ReliabilitySupport.h"
#include "TempDir.h"
#include "TestClient.h"
#include "TlsTestClient.h"
#include "WaitUntil.h"

namespace {

using namespace std::chrono_literals;
using protohost::e2e::HostIni;
using protohost::e2e::HostProcess;
using protohost::reliability::DumpLogOnFailure;
using protohost::reliability::kAdminSection;
using protohost::reliability::metricValue;
using protohost::reliability::scrapeMetrics;
using protohost::testsupport::TempDir;
using protohost::e2e::TestClient;
using protohost::testsupport::TlsTestClient;

using protohost::testsupport::RunResult;

// Runs @p command with /bin/sh, stderr joined to stdout.
RunResult run(const std::string& command) { return protohost::testsupport::runCommand(command, true); }

// The test certificates, made once per test in a fresh directory.
struct Certs {
  TempDir dir{"protohost-tls"};
  Certs() {
    const RunResult r = run(std::string(PROTOHOST_SOURCE_DIR) + "/tests/tls/make-test-certs.sh " + dir.path());
    if (r.status != 0) throw std::runtime_error("make-test-certs.sh failed:\n" + r.out);
  }
  std::string operator()(const std::string& name) const { return dir.path() + "/" + name; }
};

std::string esc(const std::string& path) {  // a path inside an endpoint string: ':' escaped
  std::string out;
  for (char c : path) out += c == ':' ? std::string("\\:") : std::string(1, c);
  return out;
}

std::string sslEndpoint(const Certs& c, const std::string& extra = "", const std::string& cert = "localhost") {
  return "ssl:0:interface=127.0.0.1:certKey=" + esc(c(cert + ".pem")) + ":privateKey=" + esc(c(cert + ".key")) + extra;
}

std::optional<double> handshakes(const std::string& page, const std::string& listener, const std::string& result) {
  return metricValue(page, "protohost_tls_handshakes_total", {{"listener", listener}, {"result", result}});
}

// A host with one ssl: listener "tls" of peer_echo (plus the admin endpoint).
struct TlsHost {
  HostProcess host;
  std::uint16_t port = 0, admin = 0;
  TlsHost(const std::string& listen, HostIni::Keys keys = {}) {
    HostIni ini(host.linkPlugins({std::string(protohost::e2e::kTestPluginDir) + "/peer_echo.so"}));
    ini.listener("tls", "peer_echo", std::move(keys), listen);
    ini.raw(kAdminSection);
    host.startWithConfig(ini.text());
    port = host.port("tls");
    admin = host.port("admin");
  }
};

TlsTestClient::Options verified(const Certs& c) {
  TlsTestClient::Options o;
  o.caFile = c("ca.pem");
  return o;
}

// "tls version=... cipher=... sni=... alpn=... fingerprint=... subject=..." -> the value of KEY.
std::string field(const std::string& tlsLine, const std::string& key) {
  const auto at = tlsLine.find(" " + key + "=");
  if (at == std::string::npos) return "<missing>";
  const auto start = at + key.size() + 2;
  if (key == "subject") return tlsLine.substr(start);  // last, may hold spaces
  return tlsLine.substr(start, tlsLine.find(' ', start) - start);
}

TEST(E2eTls, EchoOverTlsWithAVerifiedChainInChunksDownToOneByte) {
  Certs certs;
  TlsHost h(sslEndpoint(certs));
  DumpLogOnFailure dump{h.host};
  TlsTestClient c = TlsTestClient::connect(h.port, verified(certs));
  EXPECT_EQ(c.version(), "TLSv1.3");
  EXPECT_EQ(c.peerCommonName(), "localhost");
  EXPECT_EQ(c.readLine().rfind("peer 127.0.0.1:", 0), 0u);
  const std::string tls = c.readLine();
  EXPECT_EQ(field(tls, "version"), "TLSv1.3") << tls;
  EXPECT_EQ(field(tls, "sni"), "localhost") << tls;
  EXPECT_EQ(field(tls, "fingerprint"), "") << "no client certificate was sent: " << tls;

  const std::string message = "hello over TLS";
  for (char ch : message) c.write(std::string(1, ch));  // one byte per record
  EXPECT_EQ(c.readExactly(message.size()), message);
  std::string big(256 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  for (std::size_t chunk : {1u, 7u, 4096u, 16384u, 65536u}) {
    const std::string piece = big.substr(0, chunk);
    c.write(piece);
    ASSERT_EQ(c.readExactly(piece.size()), piece) << "chunk " << chunk;
  }
  c.write(big);
  EXPECT_EQ(c.readExactly(big.size()), big);
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(handshakes(page, "tls", "ok"), std::optional<double>(1)) << page;
  EXPECT_EQ(handshakes(page, "tls", "failed"), std::optional<double>(0));
}

TEST(E2eTls, OpensslSClientSniPicksTheSecondCertificateAndAlpnTheServersPreference) {
  Certs certs;
  const std::string second = ":certKey=" + esc(certs("other.pem")) + ":privateKey=" + esc(certs("other.key"));
  TlsHost h(sslEndpoint(certs, second + ":alpn=echo,h2"));
  DumpLogOnFailure dump{h.host};
  auto sclient = [&](const std::string& args) {
    return run("openssl s_client -connect 127.0.0.1:" + std::to_string(h.port) + " -CAfile " + certs("ca.pem") +
               " -verify_return_error " + args + " </dev/null");
  };
  RunResult other = sclient("-servername other.test -alpn h2,echo");
  EXPECT_EQ(other.status, 0) << other.out;
  EXPECT_NE(other.out.find("subject=CN = other.test"), std::string::npos) << other.out;
  EXPECT_NE(other.out.find("ALPN protocol: echo"), std::string::npos) << other.out;
  EXPECT_NE(other.out.find("Verify return code: 0 (ok)"), std::string::npos) << other.out;

  RunResult def = sclient("-servername localhost -alpn echo");
  EXPECT_EQ(def.status, 0) << def.out;
  EXPECT_NE(def.out.find("subject=CN = localhost"), std::string::npos) << def.out;

  // No ALPN overlap: the handshake fails with no_application_protocol (RFC 7301 §3.2).
  RunResult none = sclient("-servername localhost -alpn imap");
  EXPECT_NE(none.status, 0) << none.out;
  EXPECT_NE(none.out.find("no application protocol"), std::string::npos) << none.out;

  // The SDK sees the SNI name and the ALPN choice.
  TlsTestClient::Options o = verified(certs);
  o.serverName = "other.test";
  o.alpn = {"h2"};
  TlsTestClient c = TlsTestClient::connect(h.port, o);
  EXPECT_EQ(c.alpn(), "h2");
  c.readLine();
  const std::string tls = c.readLine();
  EXPECT_EQ(field(tls, "sni"), "other.test") << tls;
  EXPECT_EQ(field(tls, "alpn"), "h2") << tls;
}

TEST(E2eTls, Tls10And11AreRefusedAnd12IsServed) {
  Certs certs;
  TlsHost h(sslEndpoint(certs));
  DumpLogOnFailure dump{h.host};
  for (const char* flag : {"-tls1", "-tls1_1"}) {
    RunResult r = run("openssl s_client -connect 127.0.0.1:" + std::to_string(h.port) + " " + flag +
                      " -cipher DEFAULT@SECLEVEL=0 -brief </dev/null");
    EXPECT_NE(r.status, 0) << flag << ":\n" << r.out;
  }
  TlsTestClient::Options o = verified(certs);
  o.maxVersion = TLS1_2_VERSION;
  TlsTestClient c = TlsTestClient::connect(h.port, o);
  EXPECT_EQ(c.version(), "TLSv1.2");
  c.readLine();
  EXPECT_NE(field(c.readLine(), "cipher").find("ECDHE-ECDSA-"), std::string::npos);
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(handshakes(page, "tls", "failed"), std::optional<double>(2)) << page;
}

// Plaintext, a truncated ClientHello and a byte-per-interval trickle: each is
// closed, counted under its own result, and no plugin code runs (peer_echo
// would have written its "peer" line).
TEST(E2eTls, PlaintextTruncatedAndTrickledHandshakesAreClosedCountedAndNeverReachThePlugin) {
  Certs certs;
  TlsHost h(sslEndpoint(certs), {{"tls_handshake_timeout_ms", "400"}});
  DumpLogOnFailure dump{h.host};
  // The host closes (an EOF or RST within the client's receive timeout); what
  // it sent before, if anything, is a TLS alert record, never plugin output.
  auto endsWithoutData = [](TestClient& c) {
    std::string got;
    char buf[256];
    for (;;) {
      const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;  // still open
      return got.empty() || (got[0] == '\x15' && got.find("peer") == std::string::npos);  // 0x15: an alert record
    }
  };
  {
    TestClient plain = TestClient::connect(h.port);
    plain.sendAll("GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(endsWithoutData(plain)) << "plaintext was answered or left open";
  }
  {
    TestClient truncated = TestClient::connect(h.port);
    // A handshake record header announcing 512 bytes and a ClientHello start, then the end.
    truncated.sendAll(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    ::shutdown(truncated.fd(), SHUT_WR);
    EXPECT_TRUE(endsWithoutData(truncated));
  }
  const auto t0 = std::chrono::steady_clock::now();
  {
    TestClient trickle = TestClient::connect(h.port);
    trickle.sendAll(std::string("\x16\x03\x01", 3));  // and nothing more: the deadline ends it
    EXPECT_TRUE(endsWithoutData(trickle));
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 350ms);
  EXPECT_LT(waited, 3s);
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(handshakes(page, "tls", "failed"), std::optional<double>(1)) << page;
  EXPECT_EQ(handshakes(page, "tls", "closed"), std::optional<double>(1)) << page;
  EXPECT_EQ(handshakes(page, "tls", "timeout"), std::optional<double>(1)) << page;
  EXPECT_EQ(handshakes(page, "tls", "ok"), std::optional<double>(0)) << page;
  EXPECT_TRUE(h.host.waitForLog("TLS handshake failed: TLS: ", 5s).has_value()) << h.host.stderrText();
}

TEST(E2eTls, ClientCertificatesAreVerifiedAndThePluginSeesSubjectAndFingerprint) {
  Certs certs;
  TlsHost h(sslEndpoint(certs, ":caCerts=" + esc(certs("ca.pem"))));
  DumpLogOnFailure dump{h.host};
  {
    // TLS 1.3: the client finishes before the server checks its (missing)
    // certificate; the refusal arrives as an alert on the first read.
    TlsTestClient anonymous = TlsTestClient::connect(h.port, verified(certs));
    EXPECT_NE(anonymous.readToEnd(), "close_notify");
  }
  TlsTestClient::Options o = verified(certs);
  o.certFile = certs("client.pem");
  o.keyFile = certs("client.key");
  TlsTestClient c = TlsTestClient::connect(h.port, o);
  c.readLine();
  const std::string tls = c.readLine();
  EXPECT_EQ(field(tls, "subject"), "O=protohost tests,CN=test-client") << tls;
  RunResult fp = run("openssl x509 -in " + certs("client.pem") + " -noout -fingerprint -sha256");
  std::string expected;
  for (char ch : fp.out.substr(fp.out.find('=') + 1))
    if (std::isxdigit(static_cast<unsigned char>(ch))) expected += static_cast<char>(std::tolower(ch));
  EXPECT_EQ(field(tls, "fingerprint"), expected) << tls;
  c.write("ping");
  EXPECT_EQ(c.readExactly(4), "ping");
  const std::string page = scrapeMetrics(h.admin);
  EXPECT_EQ(handshakes(page, "tls", "failed"), std::optional<double>(1)) << page;
  EXPECT_EQ(handshakes(page, "tls", "ok"), std::optional<double>(1)) << page;
}

TEST(E2eTls, UnsafeOrMismatchedKeysAreRefusedAtStartWithFileAndLine) {
  Certs certs;
  ::chmod(certs("other.key").c_str(), 0640);
  struct Case {
    std::string listen, expected;
  };
  const Case cases[] = {
      {sslEndpoint(certs, "", "other"), "refusing private key " + certs("other.key") + ": it is readable or writable by group"},
      {"ssl:0:interface=127.0.0.1:certKey=" + esc(certs("localhost.pem")) + ":privateKey=" + esc(certs("stranger.key")),
       "privateKey " + certs("stranger.key") + " does not match certKey " + certs("localhost.pem")},
      {"ssl:0:interface=127.0.0.1:certKey=" + esc(certs("missing.pem")) + ":privateKey=" + esc(certs("localhost.key")),
       "certKey " + certs("missing.pem") + ": cannot open"},
  };
  for (const auto& tc : cases) {
    HostProcess host;
    HostIni ini;
    ini.listener("tls", "echo", {}, tc.listen);
    host.writeConfig(ini.text());
    const auto r = host.run({"--config", host.dir() + "/host.ini"});
    EXPECT_EQ(r.status, std::optional<int>(78)) << r.err;
    const std::string where = "host.ini:" + std::to_string(ini.lineOf("listen =")) + ": listen: ";
    EXPECT_NE(r.err.find(where + tc.expected), std::string::npos) << "expected: " << where << tc.expected << "\n" << r.err;
  }
}

TEST(E2eTls, HupReloadsTheCertificateOldConnectionsKeepTheirsAndABrokenOneKeepsTheOldServing) {
  Certs certs;
  // The listener's files are copies the test replaces: served.pem/served.key.
  namespace fs = std::filesystem;
  auto install = [&](const std::string& name) {
    fs::copy_file(certs(name + ".pem"), certs("served.pem"), fs::copy_options::overwrite_existing);
    fs::copy_file(certs(name + ".key"), certs("served.key"), fs::copy_options::overwrite_existing);
    ::chmod(certs("served.key").c_str(), 0600);
  };
  install("localhost");
  TlsHost h(sslEndpoint(certs, "", "served"));
  DumpLogOnFailure dump{h.host};
  TlsTestClient::Options anyName;  // the two certificates differ in name; verification is not the point here
  anyName.serverName = "";
  TlsTestClient before = TlsTestClient::connect(h.port, anyName);
  EXPECT_EQ(before.peerCommonName(), "localhost");

  install("other");
  std::size_t mark = h.host.logLineCount();
  ASSERT_TRUE(h.host.signal(SIGHUP));
  ASSERT_TRUE(h.host.waitForLog("configuration reloaded", 10s, mark).has_value()) << h.host.stderrText();
  TlsTestClient after = TlsTestClient::connect(h.port, anyName);
  EXPECT_EQ(after.peerCommonName(), "other.test");
  before.readLine();
  before.readLine();
  before.write("still here");
  EXPECT_EQ(before.readExactly(10), "still here");

  {
    std::ofstream broken(certs("served.pem"), std::ios::trunc);
    broken << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  }
  mark = h.host.logLineCount();
  ASSERT_TRUE(h.host.signal(SIGHUP));
  auto rejected = h.host.waitForLog("reload rejected, old configuration kept", 10s, mark);
  ASSERT_TRUE(rejected.has_value()) << h.host.stderrText();
  EXPECT_NE(h.host.stderrText().find("host.ini:"), std::string::npos);
  EXPECT_NE(h.host.stderrText().find("certKey " + certs("served.pem")), std::string::npos) << h.host.stderrText();
  TlsTestClient third = TlsTestClient::connect(h.port, anyName);
  EXPECT_EQ(third.peerCommonName(), "other.test");
}

// HAProxy's send-proxy-v2 in front of TLS passthrough: the PROXY header, then
// the ClientHello, here in one TCP segment (MSG_MORE).
TEST(E2eTls, ProxyHeaderAndClientHelloInOneSegment) {
  Certs certs;
  TlsHost h(sslEndpoint(certs), {{"proxy_protocol", "required"}});
  DumpLogOnFailure dump{h.host};
  TlsTestClient::Options o = verified(certs);
  o.prefix = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n";
  TlsTestClient c = TlsTestClient::connect(h.port, o);
  EXPECT_EQ(c.readLine(), "peer 192.0.2.7:40000 local 127.0.0.1:443");
  EXPECT_EQ(field(c.readLine(), "version"), "TLSv1.3");
  c.write("through the proxy");
  EXPECT_EQ(c.readExactly(17), "through the proxy");
}

// Session tickets: a second connection resumes with the first one's ticket.
TEST(E2eTls, SessionTicketsResume) {
  Certs certs;
  TlsHost h(sslEndpoint(certs));
  DumpLogOnFailure dump{h.host};
  const std::string sess = certs("session.pem");
  const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(h.port) + " -CAfile " +
                           certs("ca.pem") + " -servername localhost ";
  // -ign_eof with a short input: s_client reads the NewSessionTicket before it quits.
  RunResult first = run("(sleep 0.3) | " + base + "-sess_out " + sess);
  ASSERT_EQ(first.status, 0) << first.out;
  RunResult second = run("(sleep 0.3) | " + base + "-sess_in " + sess);
  ASSERT_EQ(second.status, 0) << second.out;
  EXPECT_NE(second.out.find("Reused, TLSv1.3"), std::string::npos) << second.out;
}

// Real clients: Python's ssl module verifying the chain, against fibonacci.
TEST(E2eTls, PythonSslClientVerifiesTheChainAndGetsFibonacciNumbers) {
  Certs certs;
  HostProcess host;
  TempDir state("protohost-fib");
  HostIni ini;
  ini.listener("fib", "fibonacci", {{"state_file", state.path() + "/fib.state"}}, sslEndpoint(certs));
  host.startWithConfig(ini.text());
  DumpLogOnFailure dump{host};
  const std::uint16_t port = host.port("fib");
  const std::string script =
      "import socket, ssl, sys\n"
      "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
      "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10) as raw:\n"
      "    with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n"
      "        f = s.makefile('rwb')\n"
      "        for _ in range(5):\n"
      "            f.write(b'NEXT\\r\\n'); f.flush()\n"
      "            print(f.readline().decode().strip())\n"
      "        print(s.version())\n";
  {
    std::ofstream out(state.path() + "/client.py");
    out << script;
  }
  RunResult r = run("python3 " + state.path() + "/client.py " + std::to_string(port) + " " + certs("ca.pem"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("TLSv1.3"), std::string::npos) << r.out;
  // Five numbers, each the sum of the two before it where it has two.
  std::vector<unsigned long long> n;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && std::isdigit(static_cast<unsigned char>(line.back())) && line.rfind("TLS", 0) != 0)
      n.push_back(std::stoull(line.substr(line.find_last_of(' ') + 1)));
  ASSERT_EQ(n.size(), 5u) << r.out;
  for (std::size_t i = 2; i < n.size(); ++i) EXPECT_EQ(n[i], n[i - 1] + n[i - 2]) << r.out;
}

TEST(E2eTls, OptionalClientCertificatesAcceptAClientWithoutOne) {
  Certs certs;
  TlsHost h(sslEndpoint(certs, ":caCerts=" + esc(certs("ca.pem")) + ":clientCert=optional"));
  DumpLogOnFailure dump{h.host};
  TlsTestClient anonymous = TlsTestClient::connect(h.port, verified(certs));
  anonymous.readLine();
  const std::string tls = anonymous.readLine();
  EXPECT_EQ(field(tls, "fingerprint"), "") << tls;
  anonymous.write("no cert");
  EXPECT_EQ(anonymous.readExactly(7), "no cert");
  TlsTestClient::Options o = verified(certs);
  o.certFile = certs("client.pem");
  o.keyFile = certs("client.key");
  TlsTestClient withCert = TlsTestClient::connect(h.port, o);
  withCert.readLine();
  EXPECT_NE(field(withCert.readLine(), "subject").find("CN=test-client"), std::string::npos);
}

// close_notify both ways: a client's close_notify is the end of its stream
// (echo's readEnded closes, with a close_notify back); a client that just
// closes the socket ended it without one, which counts as an error close.
TEST(E2eTls, CloseNotifyEndsTheStreamAndAnEofWithoutItIsAnError) {
  Certs certs;
  HostProcess host;
  HostIni ini;
  ini.listener("tls", "echo", {}, sslEndpoint(certs));
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  DumpLogOnFailure dump{host};
  const std::uint16_t port = host.port("tls"), admin = host.port("admin");
  {
    TlsTestClient c = TlsTestClient::connect(port, verified(certs));
    c.write("bye");
    EXPECT_EQ(c.readExactly(3), "bye");
    c.closeNotify();
    EXPECT_EQ(c.readToEnd(), "close_notify");
  }
  auto closed = [&](const std::string& reason) {
    return metricValue(scrapeMetrics(admin), "protohost_connections_closed_total", {{"listener", "tls"}, {"reason", reason}});
  };
  EXPECT_TRUE(protohost::testsupport::waitUntil([&] { return closed("peer") == std::optional<double>(1); }, 5s))
      << scrapeMetrics(admin);
  {
    TlsTestClient c = TlsTestClient::connect(port, verified(certs));
    c.write("x");
    EXPECT_EQ(c.readExactly(1), "x");
    ::shutdown(c.fd(), SHUT_RDWR);  // a FIN, no close_notify
  }
  EXPECT_TRUE(protohost::testsupport::waitUntil([&] { return closed("error") == std::optional<double>(1); }, 5s))
      << scrapeMetrics(admin);
}

// Back-pressure over TLS: 4 MiB sent before reading any of it (the host
// pauses reading while its output is over pause_reading_above, with records
// decrypted and waiting inside OpenSSL), then all of it read back in order.
TEST(E2eTls, LargeEchoWithBackPressureArrivesWholeAndInOrder) {
  Certs certs;
  HostProcess host;
  HostIni ini;
  ini.listener("tls", "echo", {{"max_output_bytes", "16777216"}}, sslEndpoint(certs));
  host.startWithConfig(ini.text());
  DumpLogOnFailure dump{host};
  TlsTestClient::Options o = verified(certs);
  o.timeout = 20s;
  TlsTestClient c = TlsTestClient::connect(host.port("tls"), o);
  std::string data(1 << 20, '\0');
  std::uint32_t x = 12345;
  for (auto& ch : data) ch = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  c.write(data);  // 1 MiB: the host's output queue and the socket buffers hold what is not read yet
  EXPECT_EQ(c.readExactly(data.size()), data);
  for (int round = 0; round < 3; ++round) {  // then in pieces, reading as it goes
    for (std::size_t at = 0; at < data.size(); at += 65536) c.write(std::string_view(data).substr(at, 65536));
    ASSERT_EQ(c.readExactly(data.size()), data) << "round " << round;
  }
}

// ktls=on where the kernel has no tls module (CI's: tcp_available_ulp lists
// only mptcp) serves in user space: the same bytes.
TEST(E2eTls, KtlsOnServesTheSameBytesWhereverTheRecordLayerRuns) {
  Certs certs;
  TlsHost h(sslEndpoint(certs, ":ktls=on"));
  DumpLogOnFailure dump{h.host};
  TlsTestClient c = TlsTestClient::connect(h.port, verified(certs));
  c.readLine();
  c.readLine();
  const std::string data(100000, 'k');
  c.write(data);
  EXPECT_EQ(c.readExactly(data.size()), data);
  EXPECT_NE(h.host.stderrText().find("ktls on"), std::string::npos) << h.host.stderrText();
  // Whether the kernel took it is reported, whichever way it went (this kernel: tcp_available_ulp).
  const std::string page = scrapeMetrics(h.admin);
  const auto send = metricValue(page, "protohost_tls_ktls_connections_total", {{"listener", "tls"}, {"direction", "send"}});
  ASSERT_TRUE(send.has_value()) << page;
  std::ifstream ulp("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string ulps;
  std::getline(ulp, ulps);
  if (ulps.find("tls") == std::string::npos) {
    EXPECT_EQ(*send, 0) << "no tls ULP here, yet kTLS was reported";
  }
}

// Twisted's TLS client (python3-twisted, Debian's /usr/bin/python3): weblog
// over TLS, verifying the chain and the name; a hit appended to the log
// arrives as a <hit/> element.
TEST(E2eTls, TwistedTlsClientReceivesWeblogHits) {
  Certs certs;
  HostProcess host;
  TempDir dir("protohost-weblog");
  const std::string log = dir.path() + "/access.log";
  { std::ofstream(log) << ""; }
  HostIni ini;
  ini.listener("weblog", "weblog", {{"access_log", log}, {"mode", "push"}, {"push_interval_ms", "0"}, {"poll_interval_ms", "20"}},
               sslEndpoint(certs));
  host.startWithConfig(ini.text());
  DumpLogOnFailure dump{host};
  const std::uint16_t port = host.port("weblog");
  const std::string script = dir.path() + "/twisted_client.py";
  {
    std::ofstream out(script);
    out << R"PY(import sys
from twisted.internet import endpoints, protocol, reactor, ssl, task
port, ca, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
received = []
class Client(protocol.Protocol):
    def dataReceived(self, data):
        received.append(data)
        if len(received) == 1:
            # The stream has begun (<hits>): a hit appended now arrives as a pushed <hit/>.
            with open(log, "a") as f:
                f.write('127.0.0.9 - - [07/Dec/2026:10:00:00 +0000] "GET /tls HTTP/1.1" 200 42 "-" "twisted"\n')
        if b'request="GET /tls HTTP/1.1"' in b"".join(received):
            print(b"".join(received).decode()); reactor.stop()
def failed(f):
    print("FAILED", f.getErrorMessage()); reactor.stop()
options = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(open(ca, "rb").read()))
ep = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, options)
ep.connect(protocol.Factory.forProtocol(Client)).addErrback(failed)
reactor.callLater(20, lambda: (print("TIMEOUT", b"".join(received)), reactor.stop()))
reactor.run()
)PY";
  }
  RunResult r = run("/usr/bin/python3 " + script + " " + std::to_string(port) + " " + certs("ca.pem") + " " + log);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("<hits>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("<hit ip=\"127.0.0.9\""), std::string::npos) << r.out;
}

// Outbound TLS (portforward's upstream = ssl:...): a plain client through a
// forwarding host to an ssl: host of peer_echo. The upstream's certificate is
// verified against upstream_ca_certs (else the system's store) and must name
// upstream_server_name (else the upstream's HOST); when it does not, the
// connect fails with OpenSSL's reason and the client is closed.
struct ForwardToTls {
  HostProcess forwarder;
  std::uint16_t port = 0;
  ForwardToTls(std::uint16_t upstreamPort, HostIni::Keys keys) {
    HostIni ini;
    keys.insert(keys.begin(), {"upstream", "ssl:127.0.0.1:" + std::to_string(upstreamPort)});
    ini.listener("fwd", "portforward", std::move(keys));
    forwarder.startWithConfig(ini.text());
    port = forwarder.port("fwd");
  }
};

TEST(E2eTls, PortforwardToAnSslUpstreamVerifiesItsCertificateAndName) {
  Certs certs;
  TlsHost upstream(sslEndpoint(certs));
  DumpLogOnFailure dumpUpstream{upstream.host};
  {
    ForwardToTls f(upstream.port, {{"upstream_ca_certs", certs("ca.pem")}});
    DumpLogOnFailure dump{f.forwarder};
    TestClient c = TestClient::connect(f.port);
    EXPECT_EQ(c.readLine().rfind("peer 127.0.0.1:", 0), 0u);
    const std::string tls = c.readLine();
    EXPECT_EQ(field(tls, "version"), "TLSv1.3") << tls;
    EXPECT_EQ(field(tls, "sni"), "") << "no SNI for an IP address (RFC 6066): " << tls;
    EXPECT_EQ(c.roundTrip("through TLS"), "through TLS");
  }
  {
    ForwardToTls f(upstream.port, {{"upstream_ca_certs", certs("ca.pem")}, {"upstream_server_name", "localhost"}});
    TestClient c = TestClient::connect(f.port);
    c.readLine();
    EXPECT_EQ(field(c.readLine(), "sni"), "localhost");
  }
  {
    ForwardToTls f(upstream.port, {{"upstream_ca_certs", certs("ca.pem")}, {"upstream_server_name", "wrong.test"}});
    TestClient c = TestClient::connect(f.port);
    char buf[64];
    EXPECT_LE(::recv(c.fd(), buf, sizeof buf, 0), 0) << "the client is closed, nothing forwarded";
    auto line = f.forwarder.waitForLog("TLS handshake failed: .*certificate verify failed \\(hostname mismatch\\)", 5s);
    EXPECT_TRUE(line.has_value()) << f.forwarder.stderrText();
  }
  {
    ForwardToTls f(upstream.port, {});  // the system's store does not know the test CA
    TestClient c = TestClient::connect(f.port);
    char buf[64];
    EXPECT_LE(::recv(c.fd(), buf, sizeof buf, 0), 0);
    auto line = f.forwarder.waitForLog("certificate verify failed \\(unable to get local issuer certificate\\)", 5s);
    EXPECT_TRUE(line.has_value()) << f.forwarder.stderrText();
  }
}

// A HUP may switch a listener between tcp: and ssl: on the same address: the
// socket is kept (same port, no accept gap) and new connections get the new layer.
TEST(E2eTls, HupSwitchesAListenerBetweenTcpAndSslOnTheSameSocket) {
  Certs certs;
  HostProcess host;
  HostIni tcpIni(host.linkPlugins({std::string(protohost::e2e::kTestPluginDir) + "/peer_echo.so"}));
  tcpIni.listener("sw", "peer_echo");
  host.startWithConfig(tcpIni.text());
  DumpLogOnFailure dump{host};
  const std::uint16_t port = host.port("sw");
  TestClient plain = TestClient::connect(port);
  EXPECT_EQ(plain.readLine().rfind("peer ", 0), 0u);

  HostIni sslIni(host.dir() + "/plugins");
  sslIni.listener("sw", "peer_echo", {}, sslEndpoint(certs));
  host.writeConfig(sslIni.text());
  std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  TlsTestClient c = TlsTestClient::connect(port, verified(certs));  // the same port, now TLS
  c.readLine();
  EXPECT_EQ(field(c.readLine(), "version"), "TLSv1.3");
  EXPECT_EQ(plain.roundTrip("old plain connection"), "old plain connection");

  host.writeConfig(tcpIni.text());
  mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  TestClient again = TestClient::connect(port);
  EXPECT_EQ(again.readLine().rfind("peer ", 0), 0u) << "plaintext again";
  c.write("tls still");
  EXPECT_EQ(c.readExactly(9), "tls still");
}

}  // namespace
