// Operations: plugin files. T17 unloadable plugins (start, --check-config and
// HUP), T18 unsafe plugin file or directory permissions, T19 a plugin replaced
// on disk (install + mv) and reloaded with HUP, and unmapped once its
// connections have ended.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

// One way for a configured plugin to be unloadable, and the loader's words for it.
struct BadPlugin {
  const char* what;      // for SCOPED_TRACE
  const char* name;      // plugin = NAME in the config (NAME.so in plugins_dir)
  const char* loaderText;  // dlerror / ABI-check text that must be shown
};

const std::vector<BadPlugin>& badPlugins() {
  static const std::vector<BadPlugin> all = {
      {"missing .so", "missing", "plugin file not found"},
      {"unresolved symbol", "unresolved", "undefined symbol: protohost_fixture_function_defined_nowhere"},
      {"stale SDK ABI record", "bad_abi", "built against SDK 0.9, host SDK is"},
      {"not an ELF file", "x", "invalid ELF header"},
  };
  return all;
}

// A plugins dir (0755) with copies of echo.so, unresolved.so, bad_abi.so and a
// text file x.so; no missing.so.
std::string makeBadPluginsDir(const TempDir& dir) {
  std::string plugins = dir.subdir("plugins", kMode0755);
  TempDir::copy(realPlugin("echo"), plugins + "/echo.so", kMode0644);
  TempDir::copy(testPlugin("unresolved"), plugins + "/unresolved.so", kMode0644);
  TempDir::copy(testPlugin("bad_abi"), plugins + "/bad_abi.so", kMode0644);
  std::string notElf;
  for (int i = 0; i < 20; ++i) notElf += "this is a text file named like a plugin, not an ELF object\n";
  writeText(plugins + "/x.so", notElf);
  fs::permissions(plugins + "/x.so", kMode0644);
  return plugins;
}

// T17: a config naming a plugin that cannot be loaded fails --check-config and
// start with 78, naming the .so path and the loader's reason; nothing is bound.
TEST(Operations, T17_UnloadablePluginExits78WithPathAndLoaderText) {
  TempDir dir;
  const std::string plugins = makeBadPluginsDir(dir);
  for (const auto& bad : badPlugins()) {
    SCOPED_TRACE(bad.what);
    const std::uint16_t port = freeLoopbackPort();
    HostIni ini(plugins);
    ini.listener("bad", bad.name, {}, loopbackEndpoint(port));
    const std::string text = ini.text();
    const int line = lineOf(text, std::string("plugin = ") + bad.name);
    ASSERT_GT(line, 0);
    const std::string config = dir / "host.ini";
    writeText(config, text);
    const std::string soPath = plugins + "/" + bad.name + ".so";
    for (bool check : {true, false}) {
      SCOPED_TRACE(check ? "--check-config" : "start");
      HostProcess host;
      std::vector<std::string> args{"--config", config};
      if (check) args.push_back("--check-config");
      auto r = host.run(args, 20s);
      EXPECT_EQ(r.status, 78) << describe(r);
      EXPECT_NE(r.err.find("host.ini:" + std::to_string(line) + ": plugin: "), std::string::npos) << describe(r);
      EXPECT_NE(r.err.find(soPath), std::string::npos) << describe(r);
      EXPECT_NE(r.err.find(bad.loaderText), std::string::npos) << describe(r);
      EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
      EXPECT_EQ(r.out.find("configuration ok"), std::string::npos) << describe(r);
      EXPECT_TRUE(LocalListener::canListenOn(port)) << "port " << port << " bound after a failed start";
    }
  }
}

// T17 on HUP: each unloadable plugin, added in a reload, is rejected with
// file:line and the loader text; the old config keeps serving; the reload
// failure counter rises by one each time and last_reload_success is 0.
TEST(Operations, T17_UnloadablePluginOnHupKeepsOldConfig) {
  TempDir dir;
  const std::string plugins = makeBadPluginsDir(dir);
  HostIni good(plugins);
  good.listener("echo", "echo");
  good.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  const std::string config = dir / "host.ini";
  writeText(config, good.text());

  HostProcess host;
  host.start({"--config", config});
  const std::uint16_t echoPort = host.port("echo");
  const std::uint16_t adminPort = host.port("admin");
  const pid_t pid = host.pid();
  TestClient held = TestClient::connect(echoPort);
  ASSERT_EQ(held.roundTrip("before"), "before");
  {
    const std::string page = scrapeMetrics(adminPort);
    EXPECT_EQ(metricValue(page, "protohost_config_reload_failures_total"), 0.0) << page;
    EXPECT_EQ(metricValue(page, "protohost_config_last_reload_success"), 1.0) << page;
  }

  int failures = 0;
  for (const auto& bad : badPlugins()) {
    SCOPED_TRACE(bad.what);
    HostIni next = good;
    next.listener("bad", bad.name);
    const std::string text = next.text();
    const int line = lineOf(text, std::string("plugin = ") + bad.name);
    writeText(config, text);
    const std::size_t mark = host.logLineCount();
    ASSERT_TRUE(host.signal(SIGHUP));
    auto rejected = host.waitForLog("reload rejected", 10s, mark);
    ASSERT_TRUE(rejected.has_value()) << host.stderrText();
    ++failures;
    EXPECT_NE(rejected->find("host.ini:" + std::to_string(line) + ": plugin: "), std::string::npos) << *rejected;
    EXPECT_NE(rejected->find(plugins + "/" + bad.name + ".so"), std::string::npos) << *rejected;
    EXPECT_NE(rejected->find(bad.loaderText), std::string::npos) << *rejected;

    const std::string page = scrapeMetrics(adminPort);
    EXPECT_EQ(metricValue(page, "protohost_config_reload_failures_total"), static_cast<double>(failures)) << page;
    EXPECT_EQ(metricValue(page, "protohost_config_last_reload_success"), 0.0) << page;
    EXPECT_EQ(metricValue(page, "protohost_config_reloads_total"), 0.0) << page;
    EXPECT_EQ(metricValue(page, "protohost_connections_open{listener=\"bad\"}"), std::nullopt) << page;

    EXPECT_TRUE(host.running());
    EXPECT_EQ(host.pid(), pid);
    EXPECT_EQ(held.roundTrip("still " + std::string(bad.name)), "still " + std::string(bad.name));
    TestClient fresh = TestClient::connect(echoPort);
    EXPECT_EQ(fresh.roundTrip("new client"), "new client");
  }
  // A bad deploy of a plugin that is in use: echo.so replaced (install + mv)
  // by a file that is not ELF, then HUP. Rejected; the loaded code serves on.
  writeText(config, good.text());
  const std::string install = "install -m 0644 '" + plugins + "/x.so' '" + plugins + "/.x.tmp' && mv -f '" + plugins +
                              "/.x.tmp' '" + plugins + "/echo.so'";
  ASSERT_EQ(runShell(install), 0) << install;
  std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  auto rejected = host.waitForLog("reload rejected", 10s, mark);
  ASSERT_TRUE(rejected.has_value()) << host.stderrText();
  EXPECT_NE(rejected->find(plugins + "/echo.so: cannot load: "), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("invalid ELF header"), std::string::npos) << *rejected;
  EXPECT_EQ(held.roundTrip("after bad deploy"), "after bad deploy");
  {
    TestClient fresh = TestClient::connect(echoPort);
    EXPECT_EQ(fresh.roundTrip("new client, old code"), "new client, old code");
    const std::string page = scrapeMetrics(adminPort);
    EXPECT_EQ(metricValue(page, "protohost_config_reload_failures_total"), static_cast<double>(failures + 1)) << page;
  }
  // Fixed deploy: accepted, and the gauge returns to 1.
  TempDir::copy(realPlugin("echo"), plugins + "/.y.tmp", kMode0644);
  ASSERT_EQ(::rename((plugins + "/.y.tmp").c_str(), (plugins + "/echo.so").c_str()), 0);
  mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  {
    TestClient fresh = TestClient::connect(echoPort);
    EXPECT_EQ(fresh.roundTrip("fixed deploy"), "fixed deploy");
    const std::string page = scrapeMetrics(adminPort);
    EXPECT_EQ(metricValue(page, "protohost_config_last_reload_success"), 1.0) << page;
  }
  EXPECT_EQ(held.roundTrip("held throughout"), "held throughout");
  EXPECT_EQ(host.pid(), pid);
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// T18: an unsafe plugin file or directory is refused at start with the reason
// and the path, exit 78, and nothing is bound.
TEST(Operations, T18_UnsafePluginModesAreRefused) {
  TempDir dir;
  const std::string plugins = dir.subdir("plugins", kMode0755);
  const std::string so = TempDir::copy(realPlugin("echo"), plugins + "/echo.so", kMode0644);
  const std::uint16_t port = freeLoopbackPort();
  HostIni ini(plugins);
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());

  struct Case {
    const char* what;
    std::string path;  // the file or directory whose mode is changed
    fs::perms mode;
    fs::perms restore;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"chmod o+w echo.so", so, kMode0644 | fs::perms::others_write, kMode0644,
       "file " + so + " is writable by others"},
      {"chmod g+w echo.so", so, kMode0644 | fs::perms::group_write, kMode0644, "file " + so + " is writable by group"},
      {"chmod 0777 plugins dir", plugins, fs::perms::all, kMode0755, "directory " + plugins + " is writable by others"},
  };

  // Sanity: the safe layout starts (check-config only; binds nothing).
  {
    HostProcess host;
    auto r = host.run({"--config", config, "--check-config"}, 20s);
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    fs::permissions(c.path, c.mode);
    for (bool check : {false, true}) {
      SCOPED_TRACE(check ? "--check-config" : "start");
      HostProcess host;
      std::vector<std::string> args{"--config", config};
      if (check) args.push_back("--check-config");
      auto r = host.run(args, 20s);
      EXPECT_EQ(r.status, 78) << describe(r);
      EXPECT_NE(r.err.find("refusing unsafe plugin"), std::string::npos) << describe(r);
      EXPECT_NE(r.err.find(c.expected), std::string::npos) << describe(r);
      EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
      EXPECT_TRUE(LocalListener::canListenOn(port)) << "port " << port << " bound although the plugin was refused";
    }
    fs::permissions(c.path, c.restore);
  }
}

// T18 (root): a plugin file owned by another uid than root or the service user is refused.
TEST(Operations, T18_PluginOwnedByOtherUidIsRefused_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to chown the plugin to uid 12345 (CI runs as root)";
  TempDir dir;
  const std::string plugins = dir.subdir("plugins", kMode0755);
  const std::string so = TempDir::copy(realPlugin("echo"), plugins + "/echo.so", kMode0644);
  ASSERT_EQ(::chown(so.c_str(), 12345, static_cast<gid_t>(-1)), 0) << std::strerror(errno);
  const std::uint16_t port = freeLoopbackPort();
  HostIni ini(plugins);
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  for (bool check : {false, true}) {
    SCOPED_TRACE(check ? "--check-config" : "start");
    HostProcess host;
    std::vector<std::string> args{"--config", config};
    if (check) args.push_back("--check-config");
    auto r = host.run(args, 20s);
    EXPECT_EQ(r.status, 78) << describe(r);
    EXPECT_NE(r.err.find("file " + so + " is owned by uid 12345"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
    EXPECT_TRUE(LocalListener::canListenOn(port));
  }
  // The plugins directory owned by another uid is refused the same way.
  ASSERT_EQ(::chown(so.c_str(), 0, static_cast<gid_t>(-1)), 0);
  ASSERT_EQ(::chown(plugins.c_str(), 12345, static_cast<gid_t>(-1)), 0);
  HostProcess host;
  auto r = host.run({"--config", config}, 20s);
  EXPECT_EQ(r.status, 78) << describe(r);
  EXPECT_NE(r.err.find("directory " + plugins + " is owned by uid 12345"), std::string::npos) << describe(r);
}

// T18 on HUP: a reload that needs a plugin file writable by others is
// rejected with the reason (the old config serves on); once the mode is fixed
// the same reload is accepted.
TEST(Operations, T18_UnsafePluginOnHupIsRejected) {
  TempDir dir;
  const std::string plugins = dir.subdir("plugins", kMode0755);
  TempDir::copy(realPlugin("echo"), plugins + "/echo.so", kMode0644);
  const std::string ver = TempDir::copy(testPlugin("versioned_v1"), plugins + "/versioned.so",
                                        kMode0644 | fs::perms::others_write);
  HostIni ini(plugins);
  ini.listener("echo", "echo");
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  HostProcess host;
  host.start({"--config", config});
  const std::uint16_t echoPort = host.port("echo");

  HostIni next = ini;
  next.listener("ver", "versioned");
  writeText(config, next.text());
  std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  auto rejected = host.waitForLog("reload rejected", 10s, mark);
  ASSERT_TRUE(rejected.has_value()) << host.stderrText();
  EXPECT_NE(rejected->find("host.ini:" + std::to_string(next.lineOf("plugin = versioned")) + ": plugin: "),
            std::string::npos)
      << *rejected;
  EXPECT_NE(rejected->find("file " + ver + " is writable by others"), std::string::npos) << *rejected;
  TestClient c = TestClient::connect(echoPort);
  EXPECT_EQ(c.roundTrip("old config"), "old config");

  fs::permissions(ver, kMode0644);
  mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  TestClient v = TestClient::connect(host.port("ver"));
  EXPECT_EQ(v.recvExactly(3), "v1\n");
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// Reads the one-line version banner a versioned plugin sends on connect.
std::string readVersion(TestClient& c) { return c.recvExactly(3); }

// T19: versioned_v1 installed as versioned.so serves a client; v2 is installed
// with `install -m 0644 ... .x.tmp && mv` and HUP applied: a new client gets
// v2, the old connection keeps answering v1 (old code still mapped); no crash,
// same PID; a second replacement (back to v1) loads again.
TEST(Operations, T19_PluginReplacedOnDiskAndReloaded) {
  TempDir dir;
  const std::string plugins = dir.subdir("plugins", kMode0755);
  TempDir::copy(testPlugin("versioned_v1"), plugins + "/versioned.so", kMode0644);
  HostIni ini(plugins);
  ini.listener("ver", "versioned");
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());

  HostProcess host;
  host.start({"--config", config});
  const std::uint16_t port = host.port("ver");
  const pid_t pid = host.pid();
  // Where the host makes its "fresh name" links for reloaded plugins (PluginLibrary.cpp).
  const fs::path aliasDir = fs::temp_directory_path() / ("protohost-" + std::to_string(pid));
  const bool aliasDirPreexisting = fs::exists(aliasDir);  // left by an earlier process with this PID

  TestClient old = TestClient::connect(port);
  ASSERT_EQ(readVersion(old), "v1\n");
  old.sendAll("p");
  ASSERT_EQ(old.recvExactly(3), "v1\n");

  auto replaceWith = [&](const std::string& source) {
    const std::string cmd = "install -m 0644 '" + source + "' '" + plugins + "/.x.tmp' && mv -f '" + plugins +
                            "/.x.tmp' '" + plugins + "/versioned.so'";
    ASSERT_EQ(runShell(cmd), 0) << cmd;
    const std::size_t mark = host.logLineCount();
    ASSERT_TRUE(host.signal(SIGHUP));
    ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  };

  replaceWith(testPlugin("versioned_v2"));
  TestClient fresh = TestClient::connect(port);
  EXPECT_EQ(readVersion(fresh), "v2\n");
  fresh.sendAll("x");
  EXPECT_EQ(fresh.recvExactly(3), "v2\n");
  old.sendAll("y");
  EXPECT_EQ(old.recvExactly(3), "v1\n") << "the old connection must keep the old plugin code";
  EXPECT_TRUE(host.running());
  EXPECT_EQ(host.pid(), pid);

  // Back to v1 (a third load of the same path) while both older connections live.
  replaceWith(testPlugin("versioned_v1"));
  TestClient third = TestClient::connect(port);
  EXPECT_EQ(readVersion(third), "v1\n");
  fresh.sendAll("z");
  EXPECT_EQ(fresh.recvExactly(3), "v2\n");
  old.sendAll("w");
  EXPECT_EQ(old.recvExactly(3), "v1\n");

  // Once the old connections end, their factories and libraries are released.
  const std::size_t mark = host.logLineCount();
  old.close();
  fresh.close();
  EXPECT_TRUE(host.waitForLog("previous configuration of this listener released", 10s, mark).has_value())
      << host.stderrText();
  TestClient last = TestClient::connect(port);
  EXPECT_EQ(readVersion(last), "v1\n");
  EXPECT_EQ(host.pid(), pid);
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
  // Nothing of the host is left in the shared temp directory once it exited.
  if (!aliasDirPreexisting) {
    EXPECT_FALSE(fs::exists(aliasDir)) << aliasDir << " left behind by the host (one per process that reloaded a "
                                          "replaced plugin)";
  }
}

// Lines of /proc/PID/maps that map the file with inode @p ino.
std::vector<std::string> mappingsOfInode(pid_t pid, ino_t ino) {
  std::vector<std::string> lines;
  std::istringstream maps(readText("/proc/" + std::to_string(pid) + "/maps"));
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev;
    unsigned long long inode = 0;
    if (fields >> range >> perms >> offset >> dev >> inode && inode == ino) lines.push_back(line);
  }
  return lines;
}

// T19, issue 9 item 6: the replaced copy of a real plugin (fibonacci, which
// uses libstdc++ templates with static data) is unmapped once the last
// connection that used it has ended. With GNU unique symbols the dynamic
// loader marks it NODELETE and it stays mapped, "(deleted)", until exit.
TEST(Operations, T19_ReplacedPluginIsUnmappedOnceItsConnectionsEnd) {
  TempDir dir;
  const std::string plugins = dir.subdir("plugins", kMode0755);
  const std::string so = plugins + "/fibonacci.so";
  TempDir::copy(realPlugin("fibonacci"), so, kMode0644);
  HostIni ini(plugins);
  ini.listener("fib", "fibonacci", {{"state_file", dir / "fib.state"}});
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());

  HostProcess host;
  host.start({"--config", config});
  const std::uint16_t port = host.port("fib");
  struct stat before {};
  ASSERT_EQ(::stat(so.c_str(), &before), 0);
  ASSERT_FALSE(mappingsOfInode(host.pid(), before.st_ino).empty()) << readText("/proc/" + std::to_string(host.pid()) + "/maps");
  TestClient old = TestClient::connect(port);
  old.sendAll("NEXT\n");
  const std::string first = old.readLine();
  ASSERT_FALSE(first.empty());

  // Rename-replace, as an installer does, then reload: new connections get the new copy.
  const std::string cmd = "install -m 0644 '" + realPlugin("fibonacci") + "' '" + plugins + "/.x.tmp' && mv -f '" +
                          plugins + "/.x.tmp' '" + so + "'";
  ASSERT_EQ(runShell(cmd), 0) << cmd;
  std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(host.waitForLog("configuration reloaded", 10s, mark).has_value()) << host.stderrText();
  struct stat after {};
  ASSERT_EQ(::stat(so.c_str(), &after), 0);
  ASSERT_NE(after.st_ino, before.st_ino);
  TestClient fresh = TestClient::connect(port);
  fresh.sendAll("NEXT\n");
  EXPECT_FALSE(fresh.readLine().empty());
  old.sendAll("NEXT\n");
  EXPECT_FALSE(old.readLine().empty()) << "the old connection keeps the old copy";
  EXPECT_FALSE(mappingsOfInode(host.pid(), before.st_ino).empty()) << "the old copy is unmapped while still in use";

  // The old connection ends: its factory is released, then its library unmapped.
  mark = host.logLineCount();
  old.close();
  ASSERT_TRUE(host.waitForLog("previous configuration of this listener released", 10s, mark).has_value())
      << host.stderrText();
  EXPECT_TRUE(waitUntil([&] { return mappingsOfInode(host.pid(), before.st_ino).empty(); }, 5s))
      << "the replaced plugin is still mapped:\n"
      << [&] {
           std::string all;
           for (const auto& l : mappingsOfInode(host.pid(), before.st_ino)) all += l + "\n";
           return all;
         }();
  EXPECT_FALSE(mappingsOfInode(host.pid(), after.st_ino).empty()) << "the new copy must stay mapped";
  fresh.sendAll("NEXT\n");
  EXPECT_FALSE(fresh.readLine().empty());
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// T19 (root): the directory for the fresh-name links has a predictable name in
// the shared /tmp (protohost-PID). Another local user who creates it first
// (here uid 12345, mode 0700) must neither block the reload of a replaced
// plugin nor have the host use, chmod or write into that directory.
TEST(Operations, T19_ReloadNotBlockedByForeignTempDir_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to run the host as nobody and plant a directory of uid 12345";
  const NobodyIds nobody = nobodyIds();
  if (!nobody.found) GTEST_SKIP() << "no user nobody on this system";
  TempDir dir(kMode0755);
  const std::string plugins = dir.subdir("plugins", kMode0755);
  TempDir::copy(testPlugin("versioned_v1"), plugins + "/versioned.so", kMode0644);
  HostIni ini(plugins);
  ini.set("user", "nobody");
  ini.listener("ver", "versioned");
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  fs::permissions(config, kMode0644);

  HostProcess host;
  host.start({"--config", config});
  const std::uint16_t port = host.port("ver");
  const fs::path planted = fs::temp_directory_path() / ("protohost-" + std::to_string(host.pid()));
  std::error_code ec;
  fs::remove_all(planted, ec);  // left over from an earlier process with this PID
  ASSERT_TRUE(fs::create_directory(planted));
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{planted};
  ASSERT_EQ(::chown(planted.c_str(), 12345, 12345), 0) << std::strerror(errno);
  fs::permissions(planted, fs::perms::owner_all);

  TestClient old = TestClient::connect(port);
  ASSERT_EQ(readVersion(old), "v1\n");
  const std::string cmd = "install -m 0644 '" + testPlugin("versioned_v2") + "' '" + plugins + "/.x.tmp' && mv -f '" +
                          plugins + "/.x.tmp' '" + plugins + "/versioned.so'";
  ASSERT_EQ(runShell(cmd), 0) << cmd;
  const std::size_t mark = host.logLineCount();
  ASSERT_TRUE(host.signal(SIGHUP));
  auto outcome = host.waitForLog("configuration reloaded|reload rejected", 10s, mark);
  ASSERT_TRUE(outcome.has_value()) << host.stderrText();
  EXPECT_NE(outcome->find("configuration reloaded"), std::string::npos)
      << "a directory planted by another user blocked the reload:\n" << *outcome;
  TestClient fresh = TestClient::connect(port);
  EXPECT_EQ(readVersion(fresh), "v2\n");

  struct stat st {};
  ASSERT_EQ(::lstat(planted.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 12345u);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "the host changed the mode of a directory it does not own";
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

}  // namespace
}  // namespace protohost::ops
