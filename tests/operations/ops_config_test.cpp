// Operations: configuration files and the command line. T20 bad config
// fixtures, T21 a port in use: the bounded bind retry, then "Address already
// in use" naming the endpoint (tests/e2e checks exit 78 without retries),
// T38 command-line forms tests/e2e does not cover.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

// A valid two-listener config with comment lines of both kinds (so every
// expected line number also proves that comments are counted, not parsed).
std::string baseConfig(std::uint16_t p1, std::uint16_t p2) {
  return "; protohost operations test fixture\n"
         "# '#' and ';' start whole-line comments\n"
         "[host]\n"
         "plugins_dir = " + std::string(kPluginDir) + "\n"
         "threads = 1\n"
         "\n"
         "[listener.one]\n"
         "plugin = echo\n"
         "listen = " + loopbackEndpoint(p1) + "\n"
         "\n"
         "[listener.two]\n"
         "plugin = echo\n"
         "listen = " + loopbackEndpoint(p2) + "\n";
}

// Inserts @p line after the first line of @p text starting with @p after.
std::string insertAfter(const std::string& text, const std::string& after, const std::string& line) {
  auto at = text.find("\n" + after);
  if (at == std::string::npos) throw std::logic_error("no line starting with " + after);
  auto end = text.find('\n', at + 1);
  return text.substr(0, end + 1) + line + "\n" + text.substr(end + 1);
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// T20: each bad fixture makes start and --check-config exit 78 with
// "host.ini:LINE: KEY:" on stderr, and nothing is bound (the test binds both
// configured ports itself afterwards).
TEST(Operations, T20_BadConfigFixturesExit78WithFileLineKey) {
  const std::uint16_t p1 = freeLoopbackPort();
  std::uint16_t p2 = freeLoopbackPort();
  for (int i = 0; p2 == p1 && i < 10; ++i) p2 = freeLoopbackPort();
  const std::string base = baseConfig(p1, p2);

  struct Fixture {
    const char* what;
    std::string text;
    std::string lineOfPrefix;  // the offending line starts with this ("" with fixedLine)
    int fixedLine;             // used when lineOfPrefix is empty
    std::string key;
    std::string detail;  // a further substring of the message
  };
  const std::vector<Fixture> fixtures = {
      {"unknown key (typo of idle_timeout_ms)", insertAfter(base, "plugin = echo", "idle_timout_ms = 500"),
       "idle_timout_ms", 0, "idle_timout_ms", "unknown key"},
      {"unknown section", base + "\n[listner.three]\nplugin = echo\nlisten = tcp:0:interface=127.0.0.1\n",
       "[listner.three]", 0, "[listner.three]", "unknown section"},
      {"duplicate port in two sections", replaceAll(base, loopbackEndpoint(p2), loopbackEndpoint(p1)), "", 13,
       "listen", "duplicate endpoint 127.0.0.1:" + std::to_string(p1)},
      {"duplicate key in one section", insertAfter(base, "listen = " + loopbackEndpoint(p1), "plugin = echo"), "", 10,
       "plugin", "duplicate key"},
      {"port 70000", replaceAll(base, loopbackEndpoint(p2), "tcp:70000:interface=127.0.0.1"),
       "listen = tcp:70000", 0, "listen", "70000"},
      {"non-numeric timeout", insertAfter(base, "plugin = echo", "idle_timeout_ms = abc"), "idle_timeout_ms", 0,
       "idle_timeout_ms", "abc"},
      {"empty file", "", "", 1, "[host]", "missing section [host]"},
  };

  TempDir dir;
  const std::string config = dir / "host.ini";
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.what);
    const int line = f.lineOfPrefix.empty() ? f.fixedLine : lineOf(f.text, f.lineOfPrefix);
    ASSERT_GT(line, 0) << f.text;
    writeText(config, f.text);
    const std::string expected = "host.ini:" + std::to_string(line) + ": " + f.key + ":";
    for (bool check : {false, true}) {
      SCOPED_TRACE(check ? "--check-config" : "start");
      HostProcess host;
      std::vector<std::string> args{"--config", config};
      if (check) args.push_back("--check-config");
      auto r = host.run(args, 20s);
      EXPECT_EQ(r.status, 78) << describe(r) << "--- config ---\n" << f.text;
      EXPECT_NE(r.err.find(expected), std::string::npos) << "expected \"" << expected << "\"\n" << describe(r);
      EXPECT_NE(r.err.find(f.detail), std::string::npos) << describe(r);
      EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
      EXPECT_TRUE(LocalListener::canListenOn(p1)) << "port " << p1 << " was left bound";
      EXPECT_TRUE(LocalListener::canListenOn(p2)) << "port " << p2 << " was left bound";
    }
  }
}

// T20: '#' comment lines are comments (Poco's own INI reader would turn
// "# plugin = x" into a key named "# plugin"): commented-out keys, sections and
// garbage are ignored, and the configuration validates and serves.
TEST(Operations, T20_HashCommentLinesAreAccepted) {
  const std::uint16_t p1 = freeLoopbackPort();
  std::uint16_t p2 = freeLoopbackPort();
  for (int i = 0; p2 == p1 && i < 10; ++i) p2 = freeLoopbackPort();
  std::string text = baseConfig(p1, p2);
  text = insertAfter(text, "[host]", "# threads = not-a-number");
  text = insertAfter(text, "plugin = echo", "#plugin = no_such_plugin");
  text = insertAfter(text, "listen = " + loopbackEndpoint(p1), "   # [listener.ghost]");
  text += "# colour = red\n#\n;\n# = = =\n";
  TempDir dir;
  const std::string config = dir / "host.ini";
  writeText(config, text);
  {
    HostProcess host;
    auto r = host.run({"--config", config, "--check-config"}, 20s);
    EXPECT_EQ(r.status, 0) << describe(r) << "--- config ---\n" << text;
    EXPECT_NE(r.out.find("configuration ok (2 listeners)"), std::string::npos) << describe(r);
  }
  HostProcess host;
  host.start({"--config", config});
  EXPECT_EQ(host.port("one"), p1);
  EXPECT_EQ(host.port("two"), p2);
  TestClient c = TestClient::connect(p1);
  EXPECT_EQ(c.roundTrip("commented"), "commented");
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// T21: a port in use is retried bind_retries times, 500 ms apart (nginx's
// bounded retry: the previous instance may still be closing its socket). The
// tests use bind_retries = 2 to stay fast.
constexpr int kBindRetries = 2;
constexpr long long kRetryIntervalMs = 500;

// Starts a host whose only listener is 127.0.0.1:@p port with bind_retries = 2.
void startRetrying(HostProcess& host, std::uint16_t port) {
  HostIni ini;
  ini.set("bind_retries", std::to_string(kBindRetries));
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  host.startWithConfig(ini.text());
}

std::regex retryLine(std::uint16_t port, int retry) {
  return std::regex("\\[listener=echo\\] cannot listen on 127\\.0\\.0\\.1:" + std::to_string(port) +
                    ": bind: Address already in use; retrying in 500 ms \\(retry " + std::to_string(retry) + " of " +
                    std::to_string(kBindRetries) + "\\)");
}

// After the host started with startRetrying at @p t0 exits: it retried
// exactly bind_retries times, each logged once, waited at least
// bind_retries x 500 ms in all, and failed as without retries: exit 78 and
// "Address already in use" naming the endpoint, nothing listening.
void expectRetriedThenFailed(HostProcess& host, std::uint16_t port, Clock::time_point t0) {
  const auto status = host.waitExit(20s);
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  const std::string err = host.stderrText();
  EXPECT_EQ(status, 78) << err;
  for (int retry = 1; retry <= kBindRetries; ++retry) {
    std::size_t lines = 0;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);) lines += std::regex_search(line, retryLine(port, retry)) ? 1 : 0;
    EXPECT_EQ(lines, 1u) << "retry " << retry << " logged " << lines << " times:\n" << err;
  }
  EXPECT_EQ(err.find("retry " + std::to_string(kBindRetries + 1)), std::string::npos) << err;
  EXPECT_GE(ms, kBindRetries * kRetryIntervalMs) << err;
  EXPECT_LT(ms, 10000) << err;
  EXPECT_TRUE(std::regex_search(err, std::regex("host\\.ini:[0-9]+: listen: cannot listen on 127\\.0\\.0\\.1:" +
                                                std::to_string(port) + ": bind: Address already in use")))
      << err;
  EXPECT_EQ(err.find("listening on"), std::string::npos) << err;
}

// The holder still owns its port: a connect lands in its backlog.
void expectHolderKeepsPort(LocalListener& holder) {
  TestClient c = TestClient::connect(holder.port());
  const int accepted = ::accept(holder.fd(), nullptr, nullptr);
  EXPECT_GE(accepted, 0) << std::strerror(errno);
  if (accepted >= 0) ::close(accepted);
}

// T21 (a) a plain listener and (b) a SO_REUSEPORT listener hold the port: the
// host retries, then fails; it never co-binds through SO_REUSEPORT.
TEST(Operations, T21_PortHeldByAnotherSocketRetriedThenFails) {
  for (bool reusePort : {false, true}) {
    SCOPED_TRACE(reusePort ? "(b) SO_REUSEPORT listener holds the port" : "(a) plain listener holds the port");
    LocalListener holder(LocalListener::Options{0, reusePort, reusePort, true});
    HostProcess host;
    const auto t0 = Clock::now();
    startRetrying(host, holder.port());
    expectRetriedThenFailed(host, holder.port(), t0);
    expectHolderKeepsPort(holder);
  }
}

// T21 (c) the same config started twice: the second instance retries, then
// fails; the first serves before, during and after the second's retries.
TEST(Operations, T21_SecondInstanceRetriesThenFailsWhileFirstServes) {
  const std::uint16_t port = freeLoopbackPort();
  HostProcess first;
  startRetrying(first, port);
  ASSERT_EQ(first.port("echo"), port);
  TestClient held = TestClient::connect(port);
  EXPECT_EQ(held.roundTrip("before"), "before");

  HostProcess second;
  const auto t0 = Clock::now();
  startRetrying(second, port);
  ASSERT_TRUE(second.waitForLog(retryLine(port, 1), 10s)) << second.stderrText();
  EXPECT_EQ(held.roundTrip("during"), "during");
  TestClient fresh = TestClient::connect(port);
  EXPECT_EQ(fresh.roundTrip("new client during"), "new client during");
  expectRetriedThenFailed(second, port, t0);

  EXPECT_EQ(held.roundTrip("after"), "after");
  EXPECT_TRUE(first.running());
  held.close();
  fresh.close();
  ASSERT_TRUE(first.signal(SIGTERM));
  EXPECT_EQ(first.waitExit(20s), 0) << first.stderrText();
}

// T21: the point of retrying: when the holder lets go during the retries
// (an old instance finishing its shutdown), the host binds and serves.
TEST(Operations, T21_PortFreedDuringRetriesIsTaken) {
  auto holder = std::make_unique<LocalListener>(LocalListener::Options{0, false, false, true});
  const std::uint16_t port = holder->port();
  HostProcess host;
  startRetrying(host, port);
  ASSERT_TRUE(host.waitForLog(retryLine(port, 1), 10s)) << host.stderrText();
  holder.reset();
  ASSERT_EQ(host.port("echo"), port) << host.stderrText();
  TestClient c = TestClient::connect(port);
  EXPECT_EQ(c.roundTrip("bound after a retry"), "bound after a retry");
  c.close();  // (an open client would make the drain wait for its lingering close)
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// T38 (what tests/e2e does not cover): short options and the --opt=VALUE form,
// --check-config on a bad file, missing option argument, stray argument.
TEST(Operations, T38_CommandLineFormsAndExitCodes) {
  TempDir dir;
  HostIni ini;
  ini.listener("echo", "echo");
  const std::string good = dir / "good.ini";
  writeText(good, ini.text());
  HostIni broken;
  broken.set("threads", "many");
  broken.listener("echo", "echo");
  const std::string bad = dir / "bad.ini";
  writeText(bad, broken.text());
  const int badLine = lineOf(broken.text(), "threads =");

  struct Case {
    std::vector<std::string> args;
    int status;
    std::string out;  // substring of stdout ("" = no check)
    std::string err;  // substring of stderr ("" = no check)
  };
  const std::vector<Case> cases = {
      {{"-c", good, "-t"}, 0, "configuration ok", ""},
      {{"-t", "-c", good}, 0, "configuration ok", ""},
      {{"-c" + good, "-t"}, 0, "configuration ok", ""},
      {{"--config=" + good, "--check-config"}, 0, "configuration ok", ""},
      {{"--check-config", "--config", good}, 0, "configuration ok", ""},
      {{"-c", bad, "-t"}, 78, "", "bad.ini:" + std::to_string(badLine) + ": threads:"},
      {{"--config=" + bad, "--check-config"}, 78, "", "bad.ini:" + std::to_string(badLine) + ": threads:"},
      {{"-c", dir / "missing.ini", "-t"}, 66, "", "missing.ini"},
      {{"--config"}, 64, "", ""},
      {{"-c"}, 64, "", ""},
      {{"--config", good, "stray-argument"}, 64, "", "stray-argument"},
      {{"-h"}, 0, "--check-config", ""},
      {{"-v"}, 0, "protohost ", ""},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += " " + a;
    SCOPED_TRACE("host" + joined);
    HostProcess host;
    auto r = host.run(c.args, 20s);
    EXPECT_EQ(r.status, c.status) << describe(r);
    if (!c.out.empty()) {
      EXPECT_NE(r.out.find(c.out), std::string::npos) << describe(r);
    }
    if (!c.err.empty()) {
      EXPECT_NE(r.err.find(c.err), std::string::npos) << describe(r);
    }
    if (c.status != 0) {
      EXPECT_NE(r.err, "") << "a failure must say why on stderr\n" << describe(r);
    }
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
  }
}

// T38: --help describes the host as it is: HUP reloads the configuration
// (README "Operations"), and the text ends with a newline like every other
// line the host prints.
TEST(Operations, T38_HelpDescribesCurrentSignals) {
  HostProcess host;
  auto r = host.run({"--help"}, 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out.find("reload comes later"), std::string::npos) << "stale help text:\n" << r.out;
  EXPECT_TRUE(!r.out.empty() && r.out.back() == '\n') << "help output does not end with a newline:\n" << r.out;
}

}  // namespace
}  // namespace protohost::ops
