// Operations: T27 log reopen after rotation (log_file + SIGUSR1); a blocked
// log output (stderr a pipe nobody reads) does not stall serving.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <regex>
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

// stderr is a pipe nobody reads (a stuck journald, a paused `| less`), at
// log_level = debug, where every closed connection logs a line: once the pipe
// and the log queue are full, echo still answers every connection at once;
// the lines that do not fit are dropped and counted
// (protohost_log_lines_dropped_total). When the pipe is read again one line
// reports them, the log goes on, and TERM's last line ("stopped") reaches the
// output before the process exits.
TEST(Operations, BlockedLogOutputDoesNotStallServing) {
  HostIni ini;
  ini.set("log_level", "debug");
  ini.listener("echo", "echo");
  ini.raw("\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n");
  HostProcess host;
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), admin = host.port("admin");
  host.pauseStderr(true);

  // About 80 bytes a line: 64 KiB of pipe and 256 KiB of queue hold some 4,000.
  int connections = 0;
  double dropped = 0;
  const auto begin = Clock::now();
  while (dropped <= 0 && Clock::now() - begin < 120s) {
    for (int i = 0; i < 500; ++i, ++connections) {
      const std::string msg = "ping " + std::to_string(connections);
      try {
        TestClient c = TestClient::connect(echo, TestClient::Options{2s, 0, 0});
        ASSERT_EQ(c.roundTrip(msg), msg);
      } catch (const std::exception& e) {
        FAIL() << "echo stopped answering after " << connections << " connections with the log blocked: " << e.what();
      }
    }
    dropped = metricValue(scrapeMetrics(admin), "protohost_log_lines_dropped_total").value_or(-1);
  }
  ASSERT_GT(dropped, 0) << "nothing dropped after " << connections << " connections";

  const std::size_t mark = host.logLineCount();
  host.pauseStderr(false);
  const auto report = host.waitForLog("[0-9]+ log lines dropped: output blocked", 10s, mark);
  ASSERT_TRUE(report.has_value()) << host.stderrText().substr(0, 2000);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*report, m, std::regex("WARN ([0-9]+) log lines dropped"))) << *report;
  EXPECT_GE(std::stod(m[1].str()), dropped) << *report;  // the scrape saw some of them
  std::cout << "[   INFO   ] " << connections << " connections with stderr unread; " << *report << "\n";

  // The log flows again.
  const std::size_t afterReport = host.logLineCount();
  {
    TestClient c = TestClient::connect(echo);
    ASSERT_EQ(c.roundTrip("after"), "after");
  }
  EXPECT_TRUE(host.waitForLog("closed:", 10s, afterReport).has_value());
  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0);
  EXPECT_TRUE(host.waitForLog("INFO stopped", 0ms, afterReport).has_value()) << "the last line did not reach stderr";
}

}  // namespace
}  // namespace protohost::ops
