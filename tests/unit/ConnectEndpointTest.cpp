// Outbound endpoints (host/src/net/ConnectEndpoint.h): "tcp:HOST:PORT[:timeout=MS]",
// and the Resolver's two paths that need no socket (net/Resolver.h).

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "net/ConnectEndpoint.h"
#include "net/Resolver.h"

using protohost::ConnectError;
using protohost::WorkStatus;
using protohost::host::ConnectEndpoint;
using protohost::host::parseConnectEndpoint;
using protohost::host::Resolver;

namespace {
ConnectEndpoint ok(const std::string& text) {
  ConnectEndpoint ep;
  std::string error;
  EXPECT_TRUE(parseConnectEndpoint(text, ep, error)) << text << ": " << error;
  EXPECT_EQ(error, "");
  return ep;
}

std::string bad(const std::string& text) {
  ConnectEndpoint ep;
  ep.port = 4242;  // must stay untouched on failure
  std::string error;
  EXPECT_FALSE(parseConnectEndpoint(text, ep, error)) << text;
  EXPECT_EQ(ep.port, 4242) << text;
  return error;
}
}  // namespace

TEST(ConnectEndpoint, NameWithDefaultTimeout) {
  ConnectEndpoint ep = ok("tcp:db.example.org:5432");
  EXPECT_EQ(ep.host, "db.example.org");
  EXPECT_EQ(ep.port, 5432);
  EXPECT_EQ(ep.timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(ep.numericFamily, 0);  // to resolve
  EXPECT_EQ(ep.toString(), "db.example.org:5432");
}

TEST(ConnectEndpoint, LiteralAddressesNeedNoResolution) {
  ConnectEndpoint v4 = ok("tcp:127.0.0.1:80:timeout=250");
  EXPECT_EQ(v4.numericFamily, AF_INET);
  EXPECT_EQ(v4.timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(v4.toString(), "127.0.0.1:80");
  ConnectEndpoint v6 = ok("tcp:[::1]:65535");
  EXPECT_EQ(v6.numericFamily, AF_INET6);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 65535);
  EXPECT_EQ(v6.toString(), "[::1]:65535");
  EXPECT_EQ(ok("tcp:localhost:1").port, 1);
}

TEST(ConnectEndpoint, SslWithVerificationOptions) {
  ConnectEndpoint plain = ok("ssl:example.org:443");
  EXPECT_TRUE(plain.tls);
  EXPECT_EQ(plain.caCerts, "");      // the system's trust store
  EXPECT_EQ(plain.serverName, "");   // HOST
  ConnectEndpoint e = ok("ssl:127.0.0.1:8443:timeout=500:caCerts=/etc/ca.pem:hostname=svc.internal:certKey=/c.pem:privateKey=/k.pem");
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.toString(), "127.0.0.1:8443");
  EXPECT_EQ(e.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(e.caCerts, "/etc/ca.pem");
  EXPECT_EQ(e.serverName, "svc.internal");
  EXPECT_EQ(e.certKey, "/c.pem");
  EXPECT_EQ(e.privateKey, "/k.pem");
  EXPECT_FALSE(ok("tcp:h:1").tls);
}

TEST(ConnectEndpoint, EachErrorNamesItsPosition) {
  EXPECT_EQ(bad(""), "at character 1: expected \"tcp:HOST:PORT[:timeout=MS]\"");
  EXPECT_EQ(bad("7007"), "at character 1: expected \"tcp:HOST:PORT[:timeout=MS]\"");
  EXPECT_EQ(bad("tls:h:1"), "at character 1: scheme \"tls\" is not supported (tcp or ssl)");
  EXPECT_EQ(bad("http:h:1"), "at character 1: unknown scheme \"http\" (expected tcp or ssl)");
  EXPECT_EQ(bad("tcp:h:1:caCerts=x"), "at character 9: unknown option \"caCerts\" (expected timeout=MS)");
  EXPECT_EQ(bad("ssl:h:1:caCerts="), "at character 9: caCerts= needs a value");
  EXPECT_EQ(bad("ssl:h:1:certKey=c.pem"), "at character 1: certKey and privateKey go together (a client certificate and its key)");
  EXPECT_EQ(bad("ssl:h:1:sni=x"),
            "at character 9: unknown option \"sni\" (expected timeout=MS, caCerts=FILE, hostname=NAME, certKey=FILE, "
            "privateKey=FILE)");
  EXPECT_EQ(bad("tcp::80"), "at character 5: missing host");
  EXPECT_EQ(bad("tcp:"), "at character 5: missing host");
  EXPECT_EQ(bad("tcp:ho st:80"), "at character 7: ' ' in host \"ho st\" (an IPv6 address goes in brackets: [::1])");
  EXPECT_EQ(bad("tcp:::1:80").rfind("at character 5: missing host", 0), 0u);
  EXPECT_EQ(bad("tcp:300.1.1.1:80"), "at character 5: \"300.1.1.1\" is not an IPv4 address");
  EXPECT_EQ(bad("tcp:[::1:80"), "at character 5: IPv6 address without a closing ']'");
  EXPECT_EQ(bad("tcp:[]:80"), "at character 6: \"\" is not an IPv6 address");
  EXPECT_EQ(bad("tcp:[1.2.3.4]:80"), "at character 6: \"1.2.3.4\" is not an IPv6 address");
  EXPECT_EQ(bad("tcp:[::1]80"), "at character 10: expected ':PORT' after the host");
  EXPECT_EQ(bad("tcp:host"), "at character 9: expected ':PORT' after the host");
  EXPECT_EQ(bad("tcp:host:"), "at character 10: missing port");
  EXPECT_EQ(bad("tcp:host:0"), "at character 10: port \"0\" is not in 1-65535");
  EXPECT_EQ(bad("tcp:host:65536"), "at character 10: port \"65536\" is not in 1-65535");
  EXPECT_EQ(bad("tcp:host:8x"), "at character 10: port \"8x\" is not in 1-65535");
  EXPECT_EQ(bad("tcp:host:-1"), "at character 10: port \"-1\" is not in 1-65535");
  EXPECT_EQ(bad("tcp:host:80:"), "at character 13: unknown option \"\" (expected timeout=MS)");
  EXPECT_EQ(bad("tcp:host:80:backlog=5"), "at character 13: unknown option \"backlog\" (expected timeout=MS)");
  EXPECT_EQ(bad("tcp:host:80:timeout"), "at character 20: expected timeout=MS");
  EXPECT_EQ(bad("tcp:host:80:timeout=0"), "at character 21: timeout \"0\" is not in 1-86400000 ms");
  EXPECT_EQ(bad("tcp:host:80:timeout=abc"), "at character 21: timeout \"abc\" is not in 1-86400000 ms");
  EXPECT_EQ(bad("tcp:host:80:timeout=86400001"), "at character 21: timeout \"86400001\" is not in 1-86400000 ms");
  EXPECT_EQ(bad("tcp:host:80:timeout=5:timeout=6"), "at character 23: timeout given twice");
  EXPECT_EQ(bad("tcp:" + std::string(254, 'a') + ":80"), "at character 5: host name longer than 253 characters");
}

TEST(Resolver, LiteralAddressIsConvertedInPlace) {
  EXPECT_EQ(Resolver::numeric("127.0.0.1", AF_INET, 8080).toString(), "127.0.0.1:8080");
  EXPECT_EQ(Resolver::numeric("::1", AF_INET6, 443).toString(), "[::1]:443");
}

TEST(Resolver, WithoutAWorkerPoolANameIsUnresolvable) {
  for (WorkStatus refusal : {WorkStatus::ShuttingDown, WorkStatus::QueueFull}) {
    std::vector<Resolver::Result> results;
    Resolver::resolve("localhost", 80, [&](auto, auto) { return refusal; },
                      [&](Resolver::Result r) { results.push_back(std::move(r)); });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].addresses.empty());
    EXPECT_EQ(results[0].error.kind, ConnectError::Kind::Unresolvable);
    EXPECT_EQ(results[0].error.detail, refusal == WorkStatus::QueueFull
                                           ? "localhost: not resolved (the worker queue is full)"
                                           : "localhost: not resolved (no worker pool)");
  }
}

TEST(Resolver, NamesResolveOnTheDeferredWorkAndReportThroughItsCompletion) {
  // A deferToThread that runs the work when the test says so (here: at once, on this thread).
  std::function<void()> work;
  std::function<void(std::exception_ptr)> done;
  std::vector<Resolver::Result> results;
  Resolver::resolve("localhost", 7007,
                    [&](std::function<void()> w, std::function<void(std::exception_ptr)> d) {
                      work = std::move(w);
                      done = std::move(d);
                      return WorkStatus::Queued;
                    },
                    [&](Resolver::Result r) { results.push_back(std::move(r)); });
  EXPECT_TRUE(results.empty());  // nothing before the completion
  work();
  done(nullptr);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].addresses.empty()) << results[0].error.detail;
  for (const auto& a : results[0].addresses)
    EXPECT_TRUE(a.toString() == "127.0.0.1:7007" || a.toString() == "[::1]:7007") << a.toString();

  // A completion with the work's exception is Unresolvable too.
  results.clear();
  Resolver::resolve("localhost", 1, [&](auto, std::function<void(std::exception_ptr)> d) {
    d(std::make_exception_ptr(std::runtime_error("worker died")));
    return WorkStatus::Queued;
  }, [&](Resolver::Result r) { results.push_back(std::move(r)); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error.kind, ConnectError::Kind::Unresolvable);
  EXPECT_EQ(results[0].error.detail, "localhost: worker died");
}
