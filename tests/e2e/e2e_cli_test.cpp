// End-to-end: the command line and start-up errors of the real binary, with
// their exit codes (0 ok, 64 usage, 66 config missing, 78 config/plugin/bind)
// and "FILE:LINE: KEY: problem" messages.

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

std::string describe(const HostProcess::Result& r) {
  return "status " + (r.status ? std::to_string(*r.status) : std::string("(still running: killed)")) +
         "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

std::string loopbackEndpoint(std::uint16_t port) { return "tcp:" + std::to_string(port) + ":interface=127.0.0.1"; }

TEST(E2eCli, VersionPrintsToStdoutAndExitsZero) {
  HostProcess host;
  auto r = host.run({"--version"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^protohost [0-9]+\\.[0-9]+\\.[0-9]+"))) << describe(r);
}

TEST(E2eCli, HelpPrintsUsageToStdoutAndExitsZero) {
  HostProcess host;
  auto r = host.run({"--help"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("--config"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("--check-config"), std::string::npos) << describe(r);
}

TEST(E2eCli, UnknownOptionExits64) {
  HostProcess host;
  auto r = host.run({"--no-such-option"});
  EXPECT_EQ(r.status, 64) << describe(r);
  EXPECT_NE(r.err, "") << describe(r);
  EXPECT_EQ(r.out.find("listening on"), std::string::npos);
}

TEST(E2eCli, MissingConfigFileExits66) {
  HostProcess host;
  const std::string path = host.dir() + "/does-not-exist.ini";
  auto r = host.run({"--config", path});
  EXPECT_EQ(r.status, 66) << describe(r);
  EXPECT_NE(r.err.find(path), std::string::npos) << describe(r);
}

// --check-config validates (plugins loaded and configured) but binds nothing:
// it succeeds while the test itself holds the configured port, and the port
// can be bound afterwards.
TEST(E2eCli, CheckConfigExitsZeroAndBindsNothing) {
  LocalListener occupied;
  const std::uint16_t port = occupied.port();
  HostIni ini;
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  {
    HostProcess host;
    auto r = host.run({"--config", host.writeConfig(ini.text()), "--check-config"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("configuration ok"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("Address already in use"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
  }
  occupied.close();
  {
    HostProcess host;
    auto r = host.run({"--config", host.writeConfig(ini.text()), "--check-config"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_TRUE(LocalListener::canListenOn(port)) << "port " << port << " not free after --check-config";
  }
}

TEST(E2eCli, UnknownHostKeyExits78WithFileLineKey) {
  HostIni ini;
  ini.set("no_such_key", "1");
  ini.listener("echo", "echo");
  const int line = ini.lineOf("no_such_key =");
  ASSERT_GT(line, 0);
  HostProcess host;
  auto r = host.run({"--config", host.writeConfig(ini.text())});
  EXPECT_EQ(r.status, 78) << describe(r);
  EXPECT_NE(r.err.find("host.ini:" + std::to_string(line) + ": no_such_key:"), std::string::npos) << describe(r);
  EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
}

TEST(E2eCli, MissingPluginExits78NamingItsPath) {
  HostIni ini;
  ini.listener("ghost", "no_such_plugin");
  const int line = ini.lineOf("plugin = no_such_plugin");
  HostProcess host;
  auto r = host.run({"--config", host.writeConfig(ini.text())});
  EXPECT_EQ(r.status, 78) << describe(r);
  EXPECT_NE(r.err.find(std::string(kPluginDir) + "/no_such_plugin.so"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("host.ini:" + std::to_string(line) + ": plugin:"), std::string::npos) << describe(r);
}

TEST(E2eCli, UnknownPluginKeyExits78WithFileLineKey) {
  HostIni ini;
  ini.listener("echo", "echo", {{"colour", "red"}});
  const int line = ini.lineOf("colour =");
  HostProcess host;
  auto r = host.run({"--config", host.writeConfig(ini.text())});
  EXPECT_EQ(r.status, 78) << describe(r);
  EXPECT_NE(r.err.find("host.ini:" + std::to_string(line) + ": colour:"), std::string::npos) << describe(r);
  EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
}

// The port is taken by a plain listening socket, and by one with SO_REUSEPORT
// (which a host setting SO_REUSEPORT would silently share): both must fail
// with "Address already in use" and exit 78 instead of co-binding.
// bind_retries = 0 keeps these fast; tests/operations (T21) covers the retry.
TEST(E2eCli, PortInUseExits78AndDoesNotCoBind) {
  for (bool reusePort : {false, true}) {
    SCOPED_TRACE(reusePort ? "SO_REUSEPORT listener" : "plain listener");
    LocalListener occupied(LocalListener::Options{0, reusePort, reusePort, true});
    HostIni ini;
    ini.set("bind_retries", "0");
    ini.listener("echo", "echo", {}, loopbackEndpoint(occupied.port()));
    const int line = ini.lineOf("listen =");
    HostProcess host;
    auto r = host.run({"--config", host.writeConfig(ini.text())}, 5s);
    EXPECT_EQ(r.status, 78) << describe(r);
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("host.ini:" + std::to_string(line) + ": listen:"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << describe(r);
  }
}

// A second host on the port of a running one fails the same way, and the
// first keeps serving.
TEST(E2eCli, SecondInstanceOnSamePortExits78) {
  HostIni first;
  first.listener("echo", "echo");
  HostProcess running;
  running.startWithConfig(first.text());
  const std::uint16_t port = running.port("echo");

  HostIni second;
  second.set("bind_retries", "0");
  second.listener("echo", "echo", {}, loopbackEndpoint(port));
  HostProcess host;
  auto r = host.run({"--config", host.writeConfig(second.text())}, 5s);
  EXPECT_EQ(r.status, 78) << describe(r);
  EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << describe(r);

  TestClient c = TestClient::connect(port);
  EXPECT_EQ(c.roundTrip("first still serves"), "first still serves");
  ASSERT_TRUE(running.signal(SIGTERM));
  EXPECT_EQ(running.waitExit(10s), 0);
}

}  // namespace
}  // namespace protohost::e2e
