// The portforward keys: defaults, every accepted form, and an error naming the
// key and its line for each bad value.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "PortForwardFactory.h"
#include "Settings.h"

using namespace protohost::plugins::portforward;
using protohost::ConfigError;
using protohost::ConfigView;

namespace {

// Keys on lines 2, 3, ... in map order; the section header on line 1.
ConfigView config(std::map<std::string, std::string> values) {
  std::map<std::string, ConfigView::Entry> entries;
  int line = 2;
  for (auto& [k, v] : values) entries[k] = {v, line++};
  return ConfigView("host.ini", "listener.fwd", 1, "/etc", std::move(entries));
}

std::string configError(std::map<std::string, std::string> values) {
  PortForwardFactory f;
  try {
    f.configure(config(std::move(values)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PortForwardSettings, DefaultsAndEveryKeyIsRead) {
  auto c = config({{"upstream", "tcp:127.0.0.1:8080"}});
  Settings s = readSettings(c);
  EXPECT_EQ(s.upstream, "tcp:127.0.0.1:8080");
  EXPECT_EQ(s.connectTimeoutMs, 5000);
  EXPECT_EQ(s.sendProxy, SendProxy::Off);
  EXPECT_EQ(s.bufferBytes, 64u * 1024);
  EXPECT_EQ(s.endpoint, "tcp:127.0.0.1:8080:timeout=5000");
  EXPECT_TRUE(c.unreadKeys().empty());

  auto all = config({{"upstream", "tcp:[::1]:9"},
                     {"connect_timeout_ms", "250"},
                     {"send_proxy", "v2"},
                     {"buffer_bytes", "4096"}});
  s = readSettings(all);
  EXPECT_EQ(s.endpoint, "tcp:[::1]:9:timeout=250");
  EXPECT_EQ(s.sendProxy, SendProxy::V2);
  EXPECT_EQ(s.bufferBytes, 4096u);
  EXPECT_TRUE(all.unreadKeys().empty());
  EXPECT_EQ(readSettings(config({{"upstream", "tcp:backend.example:80"}, {"send_proxy", "v1"}})).sendProxy,
            SendProxy::V1);
}

TEST(PortForwardSettings, MissingUpstreamNamesTheKeyAtTheSectionLine) {
  EXPECT_EQ(configError({}), "host.ini:1: upstream: missing required key");
}

TEST(PortForwardSettings, BadUpstreamFormsNameTheKey) {
  for (const char* bad : {"127.0.0.1:8080", "unix:/tmp/x", "tcp:", "tcp:host", "tcp::80", "tcp:host:",
                          "tcp:host:0", "tcp:host:65536", "tcp:host:8o", "tcp:[::1", "tcp:[::1]", "tcp:[]:80",
                          "tcp:host:80:timeout=5"}) {
    const std::string e = configError({{"upstream", bad}});
    EXPECT_EQ(e.rfind("host.ini:2: upstream: ", 0), 0u) << bad << " -> " << e;
  }
  EXPECT_NE(configError({{"upstream", "tcp:h:80:timeout=5"}}).find("connect_timeout_ms"), std::string::npos);
}

TEST(PortForwardSettings, BadValuesNameTheirKey) {
  // Each bad key sorts before "upstream", so it is on line 2.
  EXPECT_EQ(configError({{"upstream", "tcp:h:1"}, {"send_proxy", "v3"}}),
            "host.ini:2: send_proxy: expected one of off, v1, v2, got \"v3\"");
  EXPECT_EQ(configError({{"upstream", "tcp:h:1"}, {"connect_timeout_ms", "0"}}),
            "host.ini:2: connect_timeout_ms: value 0 out of range [1, 600000]");
  EXPECT_EQ(configError({{"upstream", "tcp:h:1"}, {"connect_timeout_ms", "5s"}}),
            "host.ini:2: connect_timeout_ms: expected an integer, got \"5s\"");
  EXPECT_EQ(configError({{"upstream", "tcp:h:1"}, {"buffer_bytes", "10"}}),
            "host.ini:2: buffer_bytes: value 10 out of range [1024, 16777216]");
}

TEST(PortForwardSettings, FactoryBuildsAClientProtocolOnceConfigured) {
  PortForwardFactory f;
  EXPECT_EQ(f.buildProtocol(), nullptr);
  f.configure(config({{"upstream", "tcp:127.0.0.1:1"}}));
  EXPECT_NE(f.buildProtocol(), nullptr);
}

TEST(PortForwardSettings, SslUpstreamVerifiesAgainstTheConfiguredCaAndName) {
  auto c = config({{"upstream", "ssl:10.0.0.5:8443"}, {"upstream_ca_certs", "tls/ca.pem"}, {"upstream_server_name", "svc.internal"}});
  Settings s = readSettings(c);
  EXPECT_EQ(s.endpoint, "ssl:10.0.0.5:8443:timeout=5000:caCerts=/etc/tls/ca.pem:hostname=svc.internal");
  EXPECT_TRUE(c.unreadKeys().empty());
  auto plain = config({{"upstream", "ssl:example.org:443"}});
  EXPECT_EQ(readSettings(plain).endpoint, "ssl:example.org:443:timeout=5000");  // the system's store, HOST's name
}

TEST(PortForwardSettings, TlsKeysOnATcpUpstreamAndBadNamesAreErrors) {
  EXPECT_EQ(configError({{"upstream", "tcp:127.0.0.1:80"}, {"upstream_ca_certs", "ca.pem"}}),
            "host.ini:3: upstream_ca_certs: applies to an ssl: upstream only");
  EXPECT_EQ(configError({{"upstream", "ssl:127.0.0.1:80"}, {"upstream_server_name", "a b"}}),
            "host.ini:3: upstream_server_name: \"a b\" is not a host name or IPv4 address");
  EXPECT_EQ(configError({{"upstream", "tls:127.0.0.1:80"}}),
            "host.ini:2: upstream: \"tls:127.0.0.1:80\" does not start with tcp: or ssl: (expected tcp:HOST:PORT or "
            "ssl:HOST:PORT, e.g. tcp:127.0.0.1:8080)");
}
