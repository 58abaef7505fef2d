// The host's configuration (host/src/config/HostConfig.h): one test per error, each
// asserting the "host.ini:LINE: KEY: " prefix the operator sees.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "config/HostConfig.h"

using protohost::host::ConfigInvalid;
using protohost::host::ConfigUnreadable;
using protohost::host::HostConfig;
using protohost::host::loadHostConfig;
using protohost::host::parseHostConfig;

namespace {
using Errors = std::vector<std::string>;

const char* const kBase = "/etc/protohost";

// A valid file: [host] at 1, plugins_dir at 2, [listener.echo] at 4, plugin 5, listen 6.
const std::string kValid =
    "[host]\n"                  // 1
    "plugins_dir = /opt/ph\n"   // 2
    "\n"                        // 3
    "[listener.echo]\n"         // 4
    "plugin = echo\n"           // 5
    "listen = tcp:7007\n";      // 6

HostConfig parse(const std::string& text) { return parseHostConfig("host.ini", kBase, text); }

Errors errorsOf(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigInvalid& e) {
    return e.errors();
  }
  ADD_FAILURE() << "config was accepted:\n" << text;
  return {};
}

// Exactly one error, starting with @p prefix.
void expectOneError(const std::string& text, const std::string& prefix) {
  Errors errors = errorsOf(text);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].substr(0, prefix.size()), prefix) << "full message: " << errors[0];
}

std::string withListen(const std::string& listen) {
  return "[host]\nplugins_dir = /opt/ph\n\n[listener.echo]\nplugin = echo\nlisten = " + listen + "\n";
}
std::string withHostKey(const std::string& line) {
  return "[host]\nplugins_dir = /opt/ph\n" + line + "\n[listener.echo]\nplugin = echo\nlisten = tcp:7007\n";
}
}  // namespace

TEST(HostConfig, ValidMinimalFile) {
  HostConfig cfg = parse(kValid);
  EXPECT_EQ(cfg.path, "host.ini");
  EXPECT_EQ(cfg.baseDir, kBase);
  EXPECT_EQ(cfg.pluginsDir, "/opt/ph");
  EXPECT_EQ(cfg.threads, 1u);
  EXPECT_EQ(cfg.logLevel, protohost::LogLevel::Info);
  EXPECT_EQ(cfg.logFile, "");
  EXPECT_FALSE(cfg.admin.has_value());
  ASSERT_EQ(cfg.listeners.size(), 1u);
  const auto& l = cfg.listeners[0];
  EXPECT_EQ(l.name, "echo");
  EXPECT_EQ(l.line, 4);
  EXPECT_EQ(l.plugin, "echo");
  EXPECT_EQ(l.pluginLine, 5);
  EXPECT_EQ(l.endpoint.port, 7007);
  EXPECT_EQ(l.endpoint.interface, "0.0.0.0");
  EXPECT_EQ(l.listenLine, 6);
  EXPECT_EQ(l.pluginConfig.section(), "listener.echo");
}

TEST(HostConfig, FactoryDefaultsToThePluginName) {
  HostConfig cfg = parse(kValid);
  EXPECT_EQ(cfg.listeners[0].factory, "echo");
  EXPECT_EQ(cfg.listeners[0].factoryLine, 5);
}

TEST(HostConfig, ExplicitFactory) {
  HostConfig cfg = parse(kValid + "factory = loud\n");
  EXPECT_EQ(cfg.listeners[0].plugin, "echo");
  EXPECT_EQ(cfg.listeners[0].factory, "loud");
  EXPECT_EQ(cfg.listeners[0].factoryLine, 7);
}

TEST(HostConfig, EmptyFactory) {
  expectOneError(kValid + "factory =\n", "host.ini:7: factory: must not be empty");
}

TEST(HostConfig, RelativePluginsDirResolvesAgainstBaseDir) {
  auto dirOf = [](const std::string& value) {
    return parse("[host]\nplugins_dir = " + value + "\n[listener.e]\nplugin = echo\nlisten = tcp:1\n").pluginsDir;
  };
  EXPECT_EQ(dirOf("plugins"), "/etc/protohost/plugins");
  EXPECT_EQ(dirOf("./plugins/"), "/etc/protohost/plugins");
  EXPECT_EQ(dirOf("../build/plugins"), "/etc/build/plugins");
  EXPECT_EQ(dirOf("/abs//dir/"), "/abs/dir");
  EXPECT_EQ(dirOf("/"), "/");
}

TEST(HostConfig, HashAndSemicolonCommentsAccepted) {
  HostConfig cfg = parse(
      "# protohost\n"
      "; configuration\n"
      "[host]\n"
      "# the plugins\n"
      "plugins_dir = /opt/ph\n"
      "; threads = 99\n"
      "[listener.echo]\n"
      "  # indented\n"
      "plugin = echo\n"
      "listen = tcp:7007\n");
  EXPECT_EQ(cfg.threads, 1u);
  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_EQ(cfg.listeners[0].line, 7);
}

TEST(HostConfig, HostKeys) {
  HostConfig cfg = parse(
      "[host]\nplugins_dir = /opt/ph\nthreads = 4\nlog_level = warning\nlog_file = log/host.log\n"
      "max_connections = 100\ndrain_timeout_ms = 250\nwatchdog_ms = 0\nwatchdog_abort = yes\n"
      "[listener.echo]\nplugin = echo\nlisten = tcp:7007\n");
  EXPECT_EQ(cfg.threads, 4u);
  EXPECT_EQ(cfg.logLevel, protohost::LogLevel::Warning);
  EXPECT_EQ(cfg.logFile, "/etc/protohost/log/host.log");
  EXPECT_EQ(cfg.maxConnections, 100u);
  EXPECT_EQ(cfg.drainTimeoutMs, 250);
  EXPECT_EQ(cfg.watchdogMs, 0);
  EXPECT_TRUE(cfg.watchdogAbort);
}

TEST(HostConfig, ThreadsZeroMeansOnePerCore) {
  HostConfig cfg = parse(withHostKey("threads = 0"));
  EXPECT_EQ(cfg.threads, std::max(1u, std::thread::hardware_concurrency()));
}

// ---- one test per error ----

TEST(HostConfig, UnknownKeyInHost) {
  expectOneError(withHostKey("colour = blue"), "host.ini:3: colour: unknown key in [host] (plugins_dir, threads,");
}

TEST(HostConfig, UnknownSection) {
  expectOneError(kValid + "\n[database]\nurl = x\n",
                 "host.ini:8: [database]: unknown section (expected [host], [admin] or [listener.NAME])");
}

TEST(HostConfig, ListenerNameMustBeOneWord) {
  expectOneError(kValid + "[listener.a.b]\nplugin = echo\nlisten = tcp:1\n",
                 "host.ini:7: [listener.a.b]: listener name must be one word, as in [listener.echo]");
}

TEST(HostConfig, MissingHostSection) {
  expectOneError("[listener.echo]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:1: [host]: missing section [host] (it needs at least plugins_dir)");
}

TEST(HostConfig, MissingPluginsDir) {
  expectOneError("\n[host]\nthreads = 1\n[listener.echo]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:2: plugins_dir: missing required key in [host]");
}

TEST(HostConfig, EmptyPluginsDirIsReportedAtItsOwnLine) {
  expectOneError("[host]\nthreads = 1\nplugins_dir =\n[listener.echo]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:3: plugins_dir: missing required key in [host]");
}

TEST(HostConfig, MissingPlugin) {
  expectOneError("[host]\nplugins_dir = /opt/ph\n\n[listener.echo]\nlisten = tcp:7007\n",
                 "host.ini:4: plugin: missing required key in [listener.echo]");
}

TEST(HostConfig, PluginMustBeAFileStem) {
  expectOneError("[host]\nplugins_dir = /opt/ph\n[listener.echo]\nplugin = ../echo\nlisten = tcp:7007\n",
                 "host.ini:4: plugin: expected a plugin name (the file stem in plugins_dir), got \"../echo\"");
  expectOneError("[host]\nplugins_dir = /opt/ph\n[listener.echo]\nplugin = a/b\nlisten = tcp:7007\n",
                 "host.ini:4: plugin: expected a plugin name");
}

TEST(HostConfig, MissingListen) {
  expectOneError("[host]\nplugins_dir = /opt/ph\n\n[listener.echo]\nplugin = echo\n",
                 "host.ini:4: listen: missing required key in [listener.echo]");
}

TEST(HostConfig, DuplicateKey) {
  expectOneError(kValid + "listen = tcp:7008\n",
                 "host.ini:7: listen: duplicate key in [listener.echo] (first set at line 6)");
}

TEST(HostConfig, DuplicateSection) {
  expectOneError(kValid + "[host]\nthreads = 2\n", "host.ini:7: [host]: duplicate section (first defined at line 1)");
}

TEST(HostConfig, DuplicateEndpointSamePort) {
  expectOneError(kValid + "[listener.two]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:9: listen: duplicate endpoint 0.0.0.0:7007 (also used by [listener.echo] at line 6)");
}

TEST(HostConfig, DuplicateEndpointWildcardAndLoopbackSamePort) {
  expectOneError(kValid + "[listener.two]\nplugin = echo\nlisten = tcp:7007:interface=127.0.0.1\n",
                 "host.ini:9: listen: duplicate endpoint 127.0.0.1:7007 (also used by [listener.echo] at line 6)");
  expectOneError(withListen("tcp:7007:interface=127.0.0.1") + "[listener.two]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:9: listen: duplicate endpoint 0.0.0.0:7007 (also used by [listener.echo] at line 6)");
}

TEST(HostConfig, SamePortOnDistinctAddressesOrPortZeroIsFine) {
  HostConfig cfg = parse(
      "[host]\nplugins_dir = /opt/ph\n"
      "[listener.a]\nplugin = echo\nlisten = tcp:7007:interface=127.0.0.1\n"
      "[listener.b]\nplugin = echo\nlisten = tcp:7007:interface=127.0.0.2\n"
      "[listener.c]\nplugin = echo\nlisten = tcp:7007:interface=\\:\\:1\n"
      "[listener.d]\nplugin = echo\nlisten = tcp:0\n"
      "[listener.e]\nplugin = echo\nlisten = tcp:0\n");
  EXPECT_EQ(cfg.listeners.size(), 5u);
}

TEST(HostConfig, BadPort) {
  expectOneError(withListen("tcp:70000"), "host.ini:6: listen: bad port \"70000\" (0-65535)");
  expectOneError(withListen("tcp:abc"), "host.ini:6: listen: bad port \"abc\" (0-65535)");
}

TEST(HostConfig, UnsupportedScheme) {
  expectOneError(withListen("unix:/run/x"), "host.ini:6: listen: endpoint scheme \"unix:\" is not supported yet (tcp:, ssl: and udp:)");
}

TEST(HostConfig, SslPathsResolveAgainstTheConfigDirectoryAndTheHandshakeTimeoutIsRead) {
  HostConfig cfg = parse(withListen("ssl:7443:certKey=tls/c.pem:privateKey=/abs/k.pem:caCerts=ca.pem") +
                         "tls_handshake_timeout_ms = 2500\n");
  ASSERT_EQ(cfg.listeners.size(), 1u);
  const auto& tls = cfg.listeners[0].endpoint.tls;
  ASSERT_EQ(tls.certificates.size(), 1u);
  EXPECT_EQ(tls.certificates[0].cert, cfg.baseDir + "/tls/c.pem");
  EXPECT_EQ(tls.certificates[0].key, "/abs/k.pem");
  EXPECT_EQ(tls.caCerts, cfg.baseDir + "/ca.pem");
  EXPECT_EQ(cfg.listeners[0].limits.tlsHandshakeTimeoutMs, 2500);
}

TEST(HostConfig, TlsKeysOnAPlainListenerAreErrors) {
  expectOneError(withListen("tcp:7007") + "tls_handshake_timeout_ms = 100\n",
                 "host.ini:7: tls_handshake_timeout_ms: applies to ssl: listeners only; this one listens on tcp:");
}

TEST(HostConfig, UdpListener) {
  HostConfig cfg = parse(withListen("udp:7007:interface=127.0.0.1") + "max_datagram_bytes = 1472\n");
  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_TRUE(cfg.listeners[0].endpoint.isDatagram());
  EXPECT_EQ(cfg.listeners[0].limits.maxDatagramBytes, 1472u);
  // The default answers every IPv4 datagram (RFC 862).
  EXPECT_EQ(parse(withListen("udp:7")).listeners[0].limits.maxDatagramBytes, 65507u);
}

TEST(HostConfig, UdpAndTcpOnTheSamePortAreFine) {
  HostConfig cfg = parse(kValid + "[listener.udp]\nplugin = echo\nlisten = udp:7007\n");
  EXPECT_EQ(cfg.listeners.size(), 2u);
  expectOneError(withListen("udp:7007") + "[listener.two]\nplugin = echo\nlisten = udp:7007:interface=127.0.0.1\n",
                 "host.ini:9: listen: duplicate endpoint 127.0.0.1:7007 (also used by [listener.echo] at line 6)");
}

TEST(HostConfig, MaxDatagramBytesRangeAndScheme) {
  expectOneError(withListen("udp:7") + "max_datagram_bytes = 0\n",
                 "host.ini:7: max_datagram_bytes: value 0 out of range [1, 65535]");
  expectOneError(withListen("udp:7") + "max_datagram_bytes = 65536\n",
                 "host.ini:7: max_datagram_bytes: value 65536 out of range [1, 65535]");
  expectOneError(withListen("tcp:7") + "max_datagram_bytes = 512\n",
                 "host.ini:7: max_datagram_bytes: applies to udp: listeners only; this one listens on tcp:");
}

TEST(HostConfig, ConnectionKeysOnAUdpListenerAreErrors) {
  for (const char* key : {"max_connections = 5", "max_connections_per_ip = 5", "idle_timeout_ms = 5",
                          "max_output_bytes = 65536", "proxy_protocol = required", "proxy_protocol_timeout_ms = 5"}) {
    const std::string name = std::string(key).substr(0, std::string(key).find(' '));
    expectOneError(withListen("udp:7") + key + "\n",
                   "host.ini:7: " + name + ": applies to tcp: listeners only; this one listens on udp:");
  }
}

TEST(HostConfig, AdminIsTcpOnly) {
  expectOneError(kValid + "[admin]\nlisten = udp:9090\n",
                 "host.ini:8: listen: the admin endpoint serves plain HTTP: a tcp: endpoint, not udp:");
  expectOneError(kValid + "[admin]\nlisten = ssl:9090:certKey=c.pem\n",
                 "host.ini:8: listen: the admin endpoint serves plain HTTP: a tcp: endpoint, not ssl:");
}

TEST(HostConfig, BadInterface) {
  expectOneError(withListen("tcp:7007:interface=localhost"),
                 "host.ini:6: listen: bad interface address \"localhost\" (an IPv4 or IPv6 literal;");
}

TEST(HostConfig, ThreadsOutOfRange) {
  expectOneError(withHostKey("threads = 65"), "host.ini:3: threads: value 65 out of range [0, 64]");
  expectOneError(withHostKey("threads = -1"), "host.ini:3: threads: value -1 out of range [0, 64]");
}

TEST(HostConfig, ThreadsNotANumber) {
  expectOneError(withHostKey("threads = many"), "host.ini:3: threads: expected an integer, got \"many\"");
  expectOneError(withHostKey("threads = 4x"), "host.ini:3: threads: expected an integer, got \"4x\"");
}

TEST(HostConfig, BadLogLevel) {
  expectOneError(withHostKey("log_level = loud"),
                 "host.ini:3: log_level: expected debug, info, warning or error, got \"loud\"");
}

TEST(HostConfig, BadWatchdogAbort) {
  expectOneError(withHostKey("watchdog_abort = maybe"),
                 "host.ini:3: watchdog_abort: expected true or false, got \"maybe\"");
}

TEST(HostConfig, UnknownUser) {
  expectOneError(withHostKey("user = no-such-user-protohost-test"),
                 "host.ini:3: user: unknown user \"no-such-user-protohost-test\"");
}

TEST(HostConfig, KeyOutsideAnySection) {
  expectOneError("threads = 2\n" + kValid, "host.ini:1: threads: key outside of any [section]");
}

TEST(HostConfig, EmptyFileHasNoHostSection) {
  EXPECT_EQ(errorsOf(""), Errors{"host.ini:1: [host]: missing section [host] (it needs at least plugins_dir)"});
}

TEST(HostConfig, NoListeners) {
  EXPECT_EQ(errorsOf("[host]\nplugins_dir = /opt/ph\n"),
            Errors{"host.ini:1: [listener.NAME]: no listeners configured"});
}

TEST(HostConfig, ListenerLimitKeysAreCheckedByTheHost) {
  expectOneError(kValid + "idle_timeout_ms = soon\n", "host.ini:7: idle_timeout_ms: expected an integer, got \"soon\"");
  expectOneError(kValid + "max_output_bytes = 10\n", "host.ini:7: max_output_bytes: value 10 out of range [4096, ");
  HostConfig cfg = parse(kValid + "idle_timeout_ms = 1500\nmax_connections = 3\nmax_connections_per_ip = 2\n"
                                  "max_output_bytes = 8192\n");
  const auto& limits = cfg.listeners[0].limits;
  EXPECT_EQ(limits.idleTimeoutMs, 1500);
  EXPECT_EQ(limits.maxConnections, 3u);
  EXPECT_EQ(limits.maxConnectionsPerIp, 2u);
  EXPECT_EQ(limits.maxOutputBytes, 8192u);
  EXPECT_EQ(limits.pauseReadingAbove, 4096u);  // at most half the output bound
}

// proxy_protocol and proxy_protocol_timeout_ms (T11-T13): host keys with
// their defaults, and file:line:key errors like the other keys.
TEST(HostConfig, ProxyProtocolKeys) {
  HostConfig defaults = parse(kValid);
  EXPECT_FALSE(defaults.listeners[0].limits.proxyProtocol);
  EXPECT_EQ(defaults.listeners[0].limits.proxyProtocolTimeoutMs, 3000);
  HostConfig cfg = parse(kValid + "proxy_protocol = required\nproxy_protocol_timeout_ms = 250\n");
  EXPECT_TRUE(cfg.listeners[0].limits.proxyProtocol);
  EXPECT_EQ(cfg.listeners[0].limits.proxyProtocolTimeoutMs, 250);
  EXPECT_TRUE(cfg.listeners[0].pluginConfig.unreadKeys().empty()) << "the plugin must not see the host's keys";
  EXPECT_FALSE(parse(kValid + "proxy_protocol = off\n").listeners[0].limits.proxyProtocol);
  expectOneError(kValid + "proxy_protocol = on\n",
                 "host.ini:7: proxy_protocol: expected one of off, required, got \"on\"");
  expectOneError(kValid + "proxy_protocol = Required\n", "host.ini:7: proxy_protocol: expected one of off, required");
  expectOneError(kValid + "proxy_protocol_timeout_ms = 0\n",
                 "host.ini:7: proxy_protocol_timeout_ms: value 0 out of range [1, ");
  expectOneError(kValid + "proxy_protocol = required\nproxy_protocol_timeout_ms = 3s\n",
                 "host.ini:8: proxy_protocol_timeout_ms: expected an integer, got \"3s\"");
}

// bind_retries (T21): default 5 (nginx's tries), 0 allowed, bounded.
TEST(HostConfig, BindRetries) {
  EXPECT_EQ(parse(kValid).bindRetries, 5);
  EXPECT_EQ(parse(withHostKey("bind_retries = 0")).bindRetries, 0);
  EXPECT_EQ(parse(withHostKey("bind_retries = 2")).bindRetries, 2);
  expectOneError(withHostKey("bind_retries = -1"), "host.ini:3: bind_retries: value -1 out of range [0, 100]");
  expectOneError(withHostKey("bind_retries = many"), "host.ini:3: bind_retries: expected an integer, got \"many\"");
}

// worker_threads / worker_queue (Reactor::deferToThread's pool): 2 and 1024 by default, 0 threads = no pool.
TEST(HostConfig, WorkerPoolKeys) {
  EXPECT_EQ(parse(kValid).workerThreads, 2u);
  EXPECT_EQ(parse(kValid).workerQueue, 1024u);
  EXPECT_EQ(parse(withHostKey("worker_threads = 0")).workerThreads, 0u);
  EXPECT_EQ(parse(withHostKey("worker_threads = 8")).workerThreads, 8u);
  EXPECT_EQ(parse(withHostKey("worker_queue = 1")).workerQueue, 1u);
  expectOneError(withHostKey("worker_threads = -1"), "host.ini:3: worker_threads: value -1 out of range [0, 256]");
  expectOneError(withHostKey("worker_threads = lots"), "host.ini:3: worker_threads: expected an integer, got \"lots\"");
  expectOneError(withHostKey("worker_queue = 0"), "host.ini:3: worker_queue: value 0 out of range [1, 1000000]");
}

TEST(HostConfig, PluginKeysAreLeftForThePlugin) {
  HostConfig cfg = parse(kValid + "greeting = hello\nidle_timeout_ms = 100\nfactory = echo\nzeta = 1\n");
  const auto& view = cfg.listeners[0].pluginConfig;
  EXPECT_EQ(view.unreadKeys(), (std::vector<std::string>{"greeting", "zeta"}));
  EXPECT_EQ(view.getString("greeting"), "hello");
  EXPECT_EQ(view.unreadKeys(), (std::vector<std::string>{"zeta"}));
  // The plugin's view names the file and lines like the host's own messages.
  try {
    view.getInt("zeta", 0, 5, 10);
    ADD_FAILURE() << "no ConfigError";
  } catch (const protohost::ConfigError& e) {
    EXPECT_STREQ(e.what(), "host.ini:10: zeta: value 1 out of range [5, 10]");
  }
}

TEST(HostConfig, AdminEndpoint) {
  HostConfig cfg = parse("[host]\nplugins_dir = /opt/ph\n[admin]\nlisten = tcp:9100:interface=127.0.0.1\n"
                         "[listener.echo]\nplugin = echo\nlisten = tcp:7007\n");
  ASSERT_TRUE(cfg.admin.has_value());
  EXPECT_EQ(cfg.admin->port, 9100);
  EXPECT_EQ(cfg.adminLine, 4);
  expectOneError("[host]\nplugins_dir = /opt/ph\n[admin]\nlisten = tcp:7007\n"
                 "[listener.echo]\nplugin = echo\nlisten = tcp:7007:interface=127.0.0.1\n",
                 "host.ini:7: listen: endpoint 127.0.0.1:7007 is also the [admin] endpoint");
  expectOneError("[host]\nplugins_dir = /opt/ph\n[admin]\nlisten = tcp:9100\nport = 1\n"
                 "[listener.echo]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:5: port: unknown key in [admin] (listen)");
  expectOneError("[host]\nplugins_dir = /opt/ph\n[admin]\n"
                 "[listener.echo]\nplugin = echo\nlisten = tcp:7007\n",
                 "host.ini:3: listen: missing required key");
}

TEST(HostConfig, AllErrorsAreReportedTogether) {
  Errors errors = errorsOf(
      "[host]\n"                       // 1
      "plugins_dir = /opt/ph\n"        // 2
      "threads = 100\n"                // 3
      "[listener.a]\n"                 // 4
      "plugin = echo\n"                // 5
      "listen = tcp:99999\n"           // 6
      "[listener.b]\n"                 // 7
      "listen = tcp:1\n");             // 8
  EXPECT_EQ(errors, (Errors{"host.ini:3: threads: value 100 out of range [0, 64]",
                            "host.ini:6: listen: bad port \"99999\" (0-65535)",
                            "host.ini:7: plugin: missing required key in [listener.b]"}));
  try {
    parse("[host]\nplugins_dir = /opt/ph\nthreads = 100\n[listener.a]\nplugin = echo\nlisten = tcp:99999\n");
    ADD_FAILURE() << "accepted";
  } catch (const ConfigInvalid& e) {
    EXPECT_STREQ(e.what(), "host.ini:3: threads: value 100 out of range [0, 64]\n"
                           "host.ini:6: listen: bad port \"99999\" (0-65535)");
  }
}

// ---- loading from disk ----

TEST(HostConfigFile, MissingFileAndDirectoryAreUnreadable) {
  try {
    loadHostConfig("/nonexistent/protohost-test/host.ini");
    ADD_FAILURE() << "no exception";
  } catch (const ConfigUnreadable& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/protohost-test/host.ini: config file not found");
  }
  try {
    loadHostConfig(std::filesystem::temp_directory_path().string(), "shown.ini");
    ADD_FAILURE() << "no exception";
  } catch (const ConfigUnreadable& e) {
    EXPECT_STREQ(e.what(), "shown.ini: is a directory, not a config file");
  }
}

TEST(HostConfigFile, RelativePathsResolveAgainstTheFilesDirectory) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("protohost-unit-config-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "conf");
  {
    std::ofstream out(dir / "conf" / "host.ini");
    out << "[host]\nplugins_dir = ../plugins\n[listener.echo]\nplugin = echo\nlisten = tcp:0\n";
  }
  HostConfig cfg = loadHostConfig((dir / "conf" / "host.ini").string(), "host.ini");
  EXPECT_EQ(cfg.path, "host.ini");
  EXPECT_EQ(cfg.baseDir, (dir / "conf").string());
  EXPECT_EQ(cfg.pluginsDir, (dir / "plugins").string());
  fs::remove_all(dir);
}

TEST(HostConfigFile, ShippedDefaultConfigParses) {
  HostConfig cfg = loadHostConfig(PROTOHOST_SOURCE_DIR "/etc/host.ini");
  EXPECT_EQ(cfg.pluginsDir, std::string(PROTOHOST_SOURCE_DIR) + "/build/plugins");
  EXPECT_FALSE(cfg.listeners.empty());
  // The shipped UDP echo answers loopback only (a UDP echo reflects spoofed sources).
  bool udpEcho = false;
  for (const auto& l : cfg.listeners) {
    if (!l.endpoint.isDatagram()) continue;
    udpEcho = udpEcho || l.plugin == "echo";
    EXPECT_EQ(l.endpoint.interface, "127.0.0.1") << l.name;
  }
  EXPECT_TRUE(udpEcho);
}

TEST(HostConfig, DrainDelayKey) {
  EXPECT_EQ(parse(kValid).drainDelayMs, 0);
  EXPECT_EQ(parse(withHostKey("drain_delay_ms = 5000")).drainDelayMs, 5000);
  expectOneError(withHostKey("drain_delay_ms = -1"), "host.ini:3: drain_delay_ms: value -1 out of range [0, 3600000]");
  expectOneError(withHostKey("drain_delay_ms = soon"), "host.ini:3: drain_delay_ms: expected an integer, got \"soon\"");
}
