// Operations: T27 log reopen after rotation (log_file + SIGUSR1).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& path, const std::string& text) { return readText(path).find(text) != std::string::npos; }

// T27: log_file = host.log; after `mv host.log host.log.1; kill -USR1` a new
// host.log exists (owned by the service user, mode 0640) and receives the next
// lines (a connection closed at log_level = debug, then a HUP); host.log.1
// gets no further writes.
TEST(Operations, T27_LogReopenAfterRotation) {
  const std::uint16_t port = freeLoopbackPort();
  HostIni ini;
  ini.set("log_level", "debug");
  ini.set("log_file", "host.log");  // relative: resolves against the config's directory
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));

  HostProcess host;
  host.startWithConfig(ini.text());
  const std::string log = host.dir() + "/host.log";
  const std::string rotated = host.dir() + "/host.log.1";
  ASSERT_TRUE(waitUntil([&] { return contains(log, "listening on 127.0.0.1:" + std::to_string(port)); }, 10s))
      << "log file:\n" << readText(log) << "stderr:\n" << host.stderrText();
  {
    TestClient c = TestClient::connect(port);
    ASSERT_EQ(c.roundTrip("before rotation"), "before rotation");
  }
  ASSERT_TRUE(waitUntil([&] { return contains(log, "closed:"); }, 5s)) << "no debug line for a closed connection:\n"
                                                                       << readText(log);

  // logrotate's "create" style: rename, then signal.
  ASSERT_EQ(::rename(log.c_str(), rotated.c_str()), 0) << std::strerror(errno);
  ASSERT_TRUE(host.signal(SIGUSR1));
  ASSERT_TRUE(waitUntil([&] { return contains(log, "log file reopened"); }, 10s))
      << "no new host.log after SIGUSR1; rotated file:\n" << readText(rotated) << "stderr:\n" << host.stderrText();
  const std::string rotatedAfterReopen = readText(rotated);

  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid()) << "new host.log must belong to the service user";
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "mode " << std::oct << (st.st_mode & 07777);

  // The next lines go to the new file only.
  {
    TestClient c = TestClient::connect(port);
    ASSERT_EQ(c.roundTrip("after rotation"), "after rotation");
  }
  EXPECT_TRUE(waitUntil([&] { return contains(log, "closed:"); }, 5s)) << readText(log);
  ASSERT_TRUE(host.signal(SIGHUP));
  EXPECT_TRUE(waitUntil([&] { return contains(log, "configuration reloaded"); }, 10s)) << readText(log);
  std::this_thread::sleep_for(200ms);  // anything misdirected would have landed by now
  EXPECT_EQ(readText(rotated), rotatedAfterReopen) << "host.log.1 was written after SIGUSR1";
  EXPECT_EQ(rotatedAfterReopen.find("SIGHUP"), std::string::npos);
  EXPECT_NE(rotatedAfterReopen.find("listening on"), std::string::npos) << "the old lines stay in host.log.1";

  // Nothing of this went to stderr (the log file is the log).
  EXPECT_EQ(host.stderrText().find("SIGHUP"), std::string::npos) << host.stderrText();
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
  EXPECT_TRUE(contains(log, "stopped")) << readText(log);
}

// T27 (root) with [host] user = nobody: the log file is opened as root before
// the switch; after rotation the host, now nobody, creates the new host.log
// (in a directory the service user owns, like systemd's LogsDirectory=), which
// then belongs to nobody with mode 0640 and receives the next lines.
TEST(Operations, T27_LogReopenAsServiceUser_Root) {
  if (!runningAsRoot()) GTEST_SKIP() << "needs root to start with user = nobody (CI runs as root)";
  const NobodyIds nobody = nobodyIds();
  if (!nobody.found) GTEST_SKIP() << "no user nobody on this system";
  TempDir dir(kMode0755);
  const std::string logs = dir.subdir("logs", kMode0755);
  ASSERT_EQ(::chown(logs.c_str(), nobody.uid, nobody.gid), 0) << std::strerror(errno);
  const std::uint16_t port = freeLoopbackPort();
  HostIni ini(readablePluginsDir(dir, {"echo"}));  // the HUP below re-reads them as nobody
  ini.set("user", "nobody");
  ini.set("log_file", "logs/host.log");
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  fs::permissions(config, kMode0644);

  HostProcess host;
  host.start({"--config", config});
  const std::string log = logs + "/host.log";
  const std::string rotated = logs + "/host.log.1";
  ASSERT_TRUE(waitUntil([&] { return contains(log, "running as user nobody"); }, 10s))
      << readText(log) << host.stderrText();
  ASSERT_EQ(::rename(log.c_str(), rotated.c_str()), 0) << std::strerror(errno);
  ASSERT_TRUE(host.signal(SIGUSR1));
  ASSERT_TRUE(waitUntil([&] { return contains(log, "log file reopened"); }, 10s))
      << "rotated file:\n" << readText(rotated) << "stderr:\n" << host.stderrText();
  const std::string rotatedAfterReopen = readText(rotated);
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody.uid);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "mode " << std::oct << (st.st_mode & 07777);
  ASSERT_TRUE(host.signal(SIGHUP));
  EXPECT_TRUE(waitUntil([&] { return contains(log, "configuration reloaded"); }, 10s)) << readText(log);
  EXPECT_EQ(readText(rotated), rotatedAfterReopen) << "host.log.1 was written after SIGUSR1";
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

}  // namespace
}  // namespace protohost::ops
