// Operations: a plugin that throws from the control plane (issue 9 item 2).
// The test plugin "throwing" (tests/fixtures/throwing) throws a non-standard
// `throw 42` from configure, start, stop or isReady (throw_from = ...) or from
// its factory's constructor (factory = throw_on_create). At start the host
// exits 78 naming the plugin, the listener and the error; on HUP the reload is
// rejected, counted and logged while the old configuration serves on; a
// throwing stop() is logged and the host still drains and exits 0; a throwing
// isReady() reads as not ready.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

const char* const kAdmin = "\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n";
const char* const kNonStandard = "non-standard exception (int)";

// One way to make the listener "boom" throw: the keys of its section.
struct Throw {
  const char* where;
  HostIni::Keys keys;
};

const std::vector<Throw>& throwsBeforeServing() {
  static const std::vector<Throw> all = {
      {"factory creation", {{"factory", "throw_on_create"}}},
      {"configure", {{"throw_from", "configure"}}},
      {"start", {{"throw_from", "start"}}},
  };
  return all;
}

// plugins_dir with echo.so and throwing.so.
std::string pluginsDir(const TempDir& dir) {
  const std::string plugins = dir.subdir("plugins", kMode0755);
  TempDir::copy(realPlugin("echo"), plugins + "/echo.so", kMode0644);
  TempDir::copy(testPlugin("throwing"), plugins + "/throwing.so", kMode0644);
  return plugins;
}

HostIni config(const std::string& plugins, const HostIni::Keys& boom) {
  HostIni ini(plugins);
  ini.listener("echo", "echo");
  ini.listener("boom", "throwing", boom);
  ini.raw(kAdmin);
  return ini;
}

// A host serving "echo", "boom" (the throwing plugin) and [admin] from a config it reloads.
class PluginThrows : public ::testing::Test {
 protected:
  /// (Re)writes the config with @p boom as the keys of [listener.boom].
  void writeConfig(const HostIni::Keys& boom) { writeText(path_, config(plugins_, boom).text()); }
  void start(const HostIni::Keys& boom) {
    writeConfig(boom);
    host_.start({"--config", path_});
  }

  TempDir dir_;
  const std::string plugins_ = pluginsDir(dir_);
  const std::string path_ = dir_ / "host.ini";
  HostProcess host_;
};

TEST_F(PluginThrows, AtStartExits78NamingPluginListenerAndError) {
  for (const auto& t : throwsBeforeServing()) {
    SCOPED_TRACE(t.where);
    writeConfig(t.keys);
    HostProcess host;
    HostProcess::Result r = host.run({"--config", path_}, 20s);
    EXPECT_EQ(r.status, 78) << describe(r);
    EXPECT_NE(r.err.find("host.ini:"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("[listener.boom]"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("throwing"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find(kNonStandard), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
  }
}

TEST_F(PluginThrows, OnHupTheReloadIsRejectedAndTheOldConfigServes) {
  start({});
  const std::uint16_t boom = host_.port("boom"), admin = host_.port("admin");
  const pid_t pid = host_.pid();
  TestClient held = TestClient::connect(boom);
  ASSERT_EQ(held.roundTrip("before"), "before");

  int failures = 0;
  for (const auto& t : throwsBeforeServing()) {
    SCOPED_TRACE(t.where);
    writeConfig(t.keys);
    const std::size_t mark = host_.logLineCount();
    ASSERT_TRUE(host_.signal(SIGHUP));
    auto rejected = host_.waitForLog("reload rejected|configuration reloaded", 10s, mark);
    ASSERT_TRUE(rejected.has_value()) << host_.stderrText();
    ++failures;
    EXPECT_NE(rejected->find("reload rejected, old configuration kept"), std::string::npos) << *rejected;
    EXPECT_NE(rejected->find("[listener.boom]"), std::string::npos) << *rejected;
    EXPECT_NE(rejected->find(kNonStandard), std::string::npos) << *rejected;
    ASSERT_TRUE(host_.running()) << host_.stderrText();
    EXPECT_EQ(host_.pid(), pid);

    const std::string page = scrapeMetrics(admin);
    EXPECT_EQ(metricValue(page, "protohost_config_reload_failures_total"), static_cast<double>(failures)) << page;
    EXPECT_EQ(metricValue(page, "protohost_config_last_reload_success"), 0.0) << page;
    EXPECT_EQ(held.roundTrip(std::string("held after ") + t.where), std::string("held after ") + t.where);
    TestClient fresh = TestClient::connect(boom);
    EXPECT_EQ(fresh.roundTrip("old configuration"), "old configuration");
  }
  ASSERT_TRUE(host_.signal(SIGTERM));
  EXPECT_EQ(host_.waitExit(20s), 0) << host_.stderrText();
}

// stop() throws twice: for the factory a reload replaced (once its last
// connection ended) and at TERM. Both are logged; the host serves on, then
// drains and exits 0 (no std::terminate, no exit 70).
TEST_F(PluginThrows, InStopItIsLoggedAndTheHostStillDrainsAndExits) {
  start({{"throw_from", "stop"}});
  const std::uint16_t boom = host_.port("boom"), admin = host_.port("admin");
  {
    TestClient old = TestClient::connect(boom);
    ASSERT_EQ(old.roundTrip("old factory"), "old factory");
    // A changed limit: new connections go to a new factory, the old one retires.
    writeConfig({{"throw_from", "stop"}, {"max_connections", "100"}});
    const std::size_t mark = host_.logLineCount();
    ASSERT_TRUE(host_.signal(SIGHUP));
    ASSERT_TRUE(host_.waitForLog("configuration reloaded", 10s, mark).has_value()) << host_.stderrText();
    EXPECT_EQ(old.roundTrip("still old"), "still old");
  }  // the old factory's last connection ends: it is stopped (and throws) within a second
  auto stopped = host_.waitForLog("listener=boom.*factory stop threw: .*" + std::string("non-standard exception \\(int\\)"), 10s);
  ASSERT_TRUE(stopped.has_value()) << host_.stderrText();
  ASSERT_TRUE(host_.running()) << host_.stderrText();
  TestClient fresh = TestClient::connect(boom);
  EXPECT_EQ(fresh.roundTrip("new factory"), "new factory");
  const std::string page = scrapeMetrics(admin);
  EXPECT_EQ(metricValue(page, "protohost_plugin_errors_total{listener=\"boom\",plugin=\"throwing\"}"), 1.0) << page;

  const std::size_t mark = host_.logLineCount();
  ASSERT_TRUE(host_.signal(SIGTERM));
  EXPECT_EQ(host_.waitExit(20s), 0) << host_.stderrText();
  EXPECT_TRUE(host_.waitForLog("factory stop threw", 1s, mark).has_value()) << host_.stderrText();
  EXPECT_TRUE(host_.waitForLog("\\bstopped$", 1s, mark).has_value()) << host_.stderrText();
}

TEST_F(PluginThrows, InIsReadyItReadsAsNotReady) {
  start({{"throw_from", "is_ready"}});
  const std::uint16_t boom = host_.port("boom"), echo = host_.port("echo"), admin = host_.port("admin");

  HttpResponse ready = httpGet(admin, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.head << "\n" << ready.body;
  EXPECT_EQ(ready.body, "not ready: listener boom\n");
  const std::string page = scrapeMetrics(admin);
  EXPECT_EQ(metricValue(page, "protohost_listener_ready{listener=\"boom\"}"), 0.0) << page;
  EXPECT_EQ(metricValue(page, "protohost_listener_ready{listener=\"echo\"}"), 1.0) << page;
  EXPECT_TRUE(host_.waitForLog("ERROR.*listener=boom.*isReady threw: non-standard exception \\(int\\)", 5s).has_value())
      << host_.stderrText();

  ASSERT_TRUE(host_.running());
  TestClient b = TestClient::connect(boom);
  EXPECT_EQ(b.roundTrip("serving"), "serving");
  TestClient e = TestClient::connect(echo);
  EXPECT_EQ(e.roundTrip("serving"), "serving");
  ASSERT_TRUE(host_.signal(SIGTERM));
  EXPECT_EQ(host_.waitExit(20s), 0) << host_.stderrText();
}

}  // namespace
}  // namespace protohost::ops
