// Operations: privileges (root only; skipped otherwise). T22 a privileged port
// without the right to bind it, T23 user = nobody: bind as root, then run
// unprivileged, and a reload that needs a new privileged port fails cleanly.

#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

long unprivilegedPortStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  long v = -1;
  in >> v;
  return v;
}

// T22: as uid/gid 65534 (setpriv, no capabilities), a listener on
// 127.0.0.1:80 fails at once (no bind retry): non-zero exit, the endpoint,
// "Permission denied" and a hint (CAP_NET_BIND_SERVICE / socket activation) on stderr.
TEST(Operations, T22_PrivilegedPortWithoutRightsFailsWithHint_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to start the host through setpriv as uid 65534 (CI runs as root)";
  const long start = unprivilegedPortStart();
  if (start <= 80) GTEST_SKIP() << "net.ipv4.ip_unprivileged_port_start = " << start << ": port 80 needs no privilege here";
  if (!fs::exists("/usr/bin/setpriv")) GTEST_SKIP() << "setpriv (util-linux) not installed";

  // Binary, plugins and config all readable by uid 65534, wherever the checkout lives.
  TempDir dir(kMode0755);
  const std::string hostBinary = readableHostBinary(dir);
  HostIni ini(readablePluginsDir(dir, {"echo"}));
  ini.listener("web", "echo", {}, "tcp:80:interface=127.0.0.1");
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  fs::permissions(config, kMode0644);

  ChildProcess host({.argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", hostBinary,
                              "--config", config}});
  auto status = host.waitExit(30s);
  ASSERT_TRUE(status.has_value()) << "host still running as uid 65534 with port 80:\n" << host.stderrText();
  const std::string err = host.stderrText();
  EXPECT_NE(*status, 0) << err;
  EXPECT_EQ(*status, 78) << err;
  EXPECT_NE(err.find("127.0.0.1:80"), std::string::npos) << err;
  EXPECT_NE(err.find("Permission denied"), std::string::npos) << err;
  EXPECT_NE(err.find("CAP_NET_BIND_SERVICE"), std::string::npos) << "no hint in:\n" << err;
  EXPECT_NE(err.find("socket activation"), std::string::npos) << "no hint in:\n" << err;
  EXPECT_EQ(err.find("listening on"), std::string::npos) << err;
  // Only EADDRINUSE is retried (bind_retries, default 5): EACCES fails at once.
  EXPECT_EQ(err.find("retrying"), std::string::npos) << err;
}

// Checks one /proc/PID[/task/TID]/status file of the dropped host.
void expectUnprivileged(const std::string& statusPath, uid_t uid, gid_t gid) {
  SCOPED_TRACE(statusPath);
  const std::string u = std::to_string(uid), g = std::to_string(gid);
  EXPECT_EQ(procStatusField(statusPath, "Uid"), u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(procStatusField(statusPath, "Gid"), g + "\t" + g + "\t" + g + "\t" + g);
  EXPECT_EQ(procStatusField(statusPath, "Groups"), "");
  EXPECT_EQ(procStatusField(statusPath, "CapEff"), "0000000000000000");
  EXPECT_EQ(procStatusField(statusPath, "CapPrm"), "0000000000000000");
}

// T23: [host] user = nobody with a port below 1024: the port is bound as root,
// then every thread runs as nobody (Uid/Gid all nobody's, no supplementary
// groups, no effective capabilities); the port serves; a HUP adding another
// port below 1024 is rejected (logged with file:line and the reason) and the
// old configuration keeps serving.
TEST(Operations, T23_PrivilegeDropAfterBinding_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to bind a port below 1024 and switch user (CI runs as root)";
  const NobodyIds nobody = nobodyIds();
  if (!nobody.found) GTEST_SKIP() << "no user nobody on this system";
  const std::uint16_t low1 = freePrivilegedPort(1023);
  const std::uint16_t low2 = freePrivilegedPort(1022, {low1});
  ASSERT_NE(low1, 0) << "no free port below 1024 on 127.0.0.1";
  ASSERT_NE(low2, 0) << "no second free port below 1024 on 127.0.0.1";

  // The config and the plugins must stay readable after the switch: HUP re-reads them as nobody.
  TempDir dir(kMode0755);
  HostIni ini(readablePluginsDir(dir, {"echo"}));
  ini.set("user", "nobody");
  ini.listener("low", "echo", {}, loopbackEndpoint(low1));
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  fs::permissions(config, kMode0644);

  HostProcess host;
  host.start({"--config", config});
  ASSERT_EQ(host.port("low"), low1) << host.stderrText();
  const std::uint16_t adminPort = host.port("admin");
  ASSERT_TRUE(host.waitForLog("running as user nobody", 5s).has_value()) << host.stderrText();
  const std::string proc = "/proc/" + std::to_string(host.pid());

  expectUnprivileged(proc + "/status", nobody.uid, nobody.gid);
  std::size_t threads = 0;
  for (const auto& task : fs::directory_iterator(proc + "/task")) {
    expectUnprivileged((task.path() / "status").string(), nobody.uid, nobody.gid);
    ++threads;
  }
  EXPECT_GE(threads, 2u) << "expected the main thread and at least one reactor thread";

  TestClient held = TestClient::connect(low1);
  ASSERT_EQ(held.roundTrip("served by nobody"), "served by nobody");

  // Reload that adds a second privileged port: rejected, old config kept.
  HostIni next = ini;
  next.listener("low2", "echo", {}, loopbackEndpoint(low2));
  const std::string nextText = next.text();
  writeText(config, nextText);
  const int line = lineOf(nextText, "listen = " + loopbackEndpoint(low2));
  const std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  auto rejected = host.waitForLog("reload rejected", 10s, mark);
  ASSERT_TRUE(rejected.has_value()) << host.stderrText();
  EXPECT_NE(rejected->find("host.ini:" + std::to_string(line) + ": listen:"), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("127.0.0.1:" + std::to_string(low2)), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("Permission denied"), std::string::npos) << *rejected;
  EXPECT_FALSE(host.waitForLog("configuration reloaded", 0ms, mark).has_value()) << host.stderrText();

  EXPECT_TRUE(host.running());
  EXPECT_EQ(held.roundTrip("old config serves"), "old config serves");
  TestClient fresh = TestClient::connect(low1);
  EXPECT_EQ(fresh.roundTrip("new client"), "new client");
  EXPECT_TRUE(connectRefused(low2)) << "port " << low2 << " must not be served";
  EXPECT_TRUE(LocalListener::canListenOn(low2)) << "the rejected reload left port " << low2 << " bound";
  const std::string page = scrapeMetrics(adminPort);
  EXPECT_EQ(metricValue(page, "protohost_config_reload_failures_total"), 1.0) << page;
  EXPECT_EQ(metricValue(page, "protohost_config_last_reload_success"), 0.0) << page;
  expectUnprivileged(proc + "/status", nobody.uid, nobody.gid);

  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// T23 at start: with user = nobody, a reload re-reads the config file and loads
// plugins as nobody, so a start whose config file, plugins directory or plugin
// file nobody cannot reach is refused (exit 78) after binding and before any
// plugin code runs, naming the path at fault; nothing keeps serving. Each case
// differs from a valid start (T23 above) in one mode only.
TEST(Operations, T23_PathsTheServiceUserCannotReachAreRefusedAtStart_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to start with user = nobody (CI runs as root)";
  const NobodyIds nobody = nobodyIds();
  if (!nobody.found) GTEST_SKIP() << "no user nobody on this system";
  constexpr fs::perms kMode0700 = fs::perms::owner_all;
  constexpr fs::perms kMode0600 = fs::perms::owner_read | fs::perms::owner_write;

  struct Case {
    const char* name;
    bool configInPrivateDir, pluginsInPrivateDir, pluginFilePrivate;
    const char* expected;  // with {private}, {config}, {plugins} substituted
  };
  const Case cases[] = {
      {"config file under a 0700 directory", true, false, false,
       "cannot search directory {private} (mode 0700, owner uid 0 gid 0) on the way to config file {config}"},
      {"plugins directory under a 0700 directory", false, true, false,
       "cannot search directory {private} (mode 0700, owner uid 0 gid 0) on the way to plugins directory {plugins}"},
      {"plugin file 0600", false, false, true, "cannot read plugin file {plugins}/echo.so (mode 0600"},
      {"all reachable", false, false, false, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir(kMode0755);
    const std::string priv = dir.subdir("private", kMode0700);
    const std::string plugins = c.pluginsInPrivateDir ? priv + "/plugins" : dir / "plugins";
    fs::create_directories(plugins);
    fs::permissions(plugins, kMode0755);
    TempDir::copy(realPlugin("echo"), plugins + "/echo.so", c.pluginFilePrivate ? kMode0600 : kMode0644);
    const std::uint16_t port = freeLoopbackPort();
    HostIni ini(plugins);
    ini.set("user", "nobody");
    ini.listener("echo", "echo", {}, loopbackEndpoint(port));
    const std::string config = c.configInPrivateDir ? priv + "/host.ini" : dir / "host.ini";
    writeText(config, ini.text());
    fs::permissions(config, kMode0644);

    HostProcess host;
    if (!c.expected) {  // the control: the same set-up with every path reachable starts and reloads
      host.start({"--config", config});
      ASSERT_EQ(host.port("echo"), port) << host.stderrText();
      const std::size_t mark = host.logLineCount();
      ASSERT_TRUE(host.signal(SIGHUP));
      EXPECT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
      ASSERT_TRUE(host.signal(SIGTERM));
      EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
      continue;
    }
    std::string expected = c.expected;
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"{private}", priv}, {"{config}", config},
                                     {"{plugins}", plugins}})
      for (std::size_t at; (at = expected.find(key)) != std::string::npos;) expected.replace(at, key.size(), value);
    auto r = host.run({"--config", config}, 20s);
    EXPECT_EQ(r.status, 78) << describe(r);
    EXPECT_NE(r.err.find("user: nobody (uid " + std::to_string(nobody.uid) + ") could not reload the configuration"),
              std::string::npos)
        << describe(r);
    EXPECT_NE(r.err.find(expected), std::string::npos) << "expected: " << expected << "\n" << describe(r);
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
    EXPECT_TRUE(LocalListener::canListenOn(port)) << "port " << port << " still bound";
  }
}

}  // namespace
}  // namespace protohost::ops
