// Operations: T39 systemd socket activation (LISTEN_FDS / LISTEN_PID).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "OperationsSupport.h"

namespace protohost::ops {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSocketActivate = "/usr/bin/systemd-socket-activate";

// T39: `systemd-socket-activate -l 127.0.0.1:PORT host --config ...` binds the
// socket before the host exists (the test connects while only
// systemd-socket-activate runs); the host, exec'd in the same process with
// LISTEN_FDS=1 and LISTEN_PID = its PID, adopts fd 3 (logs "from socket
// activation"; a bind of its own would fail with "Address already in use")
// and serves that first client and later ones.
TEST(Operations, T39_SocketActivationAdoptsListenFd) {
  if (!fs::exists(kSocketActivate)) GTEST_SKIP() << kSocketActivate << " not installed (package systemd)";
  const std::uint16_t port = freeLoopbackPort();
  HostIni ini;
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  TempDir dir;
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());

  ChildProcess proc(
      {.argv = {kSocketActivate, "-l", "127.0.0.1:" + std::to_string(port), kHostBinary, "--config", config}});
  ASSERT_TRUE(proc.waitForLog("Listening on 127\\.0\\.0\\.1:" + std::to_string(port), 10s).has_value())
      << proc.stderrText();
  // The host has not started yet (systemd-socket-activate execs it on the first connection).
  EXPECT_FALSE(proc.waitForLog("protohost .* started", 0ms).has_value()) << proc.stderrText();

  TestClient first = TestClient::connect(port, TestClient::Options{15s, 0, 0});
  EXPECT_EQ(first.roundTrip("first client"), "first client") << proc.stderrText();
  auto adopted = proc.waitForLog("\\[listener=echo\\] using socket 127\\.0\\.0\\.1:" + std::to_string(port) +
                                     " from socket activation",
                                 10s);
  EXPECT_TRUE(adopted.has_value()) << proc.stderrText();
  auto started = proc.waitForLog("protohost .* started, pid ([0-9]+)", 10s);
  ASSERT_TRUE(started.has_value()) << proc.stderrText();
  EXPECT_NE(started->find("pid " + std::to_string(proc.pid())), std::string::npos)
      << "the host should run in the process systemd-socket-activate exec'd into: " << *started;
  EXPECT_EQ(proc.stderrText().find("Address already in use"), std::string::npos) << proc.stderrText();

  TestClient second = TestClient::connect(port);
  EXPECT_EQ(second.roundTrip("second client"), "second client");
  EXPECT_EQ(first.roundTrip("first again"), "first again");

  ASSERT_TRUE(proc.signal(SIGTERM));
  EXPECT_EQ(proc.waitExit(20s), 0) << proc.stderrText();
  EXPECT_TRUE(connectRefused(port)) << "the activated socket must be closed when the host stops";
}

// T39: LISTEN_FDS=1 with LISTEN_PID of another process (this test's) is not
// meant for the host: it ignores fd 3 (a listener of the test on another
// port, which it must not accept from) and binds its configured port itself.
TEST(Operations, T39_ListenFdsForAnotherPidAreIgnored) {
  const std::uint16_t port = freeLoopbackPort();
  LocalListener foreign;  // handed over as fd 3 but addressed to another PID
  ASSERT_NE(foreign.port(), port);
  HostIni ini;
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  TempDir dir;
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());

  ChildProcess host({.argv = {kHostBinary, "--config", config},
                     .env = {{"LISTEN_FDS", "1"},
                             {"LISTEN_PID", std::to_string(::getpid())},
                             {"LISTEN_FDNAMES", "echo"}},
                     .inheritFds = {{foreign.fd(), 3}}});
  auto listening = host.waitForLog("\\[listener=echo\\] listening on 127\\.0\\.0\\.1:" + std::to_string(port), 10s);
  ASSERT_TRUE(listening.has_value()) << host.stderrText();
  TestClient c = TestClient::connect(port);
  EXPECT_EQ(c.roundTrip("bound by itself"), "bound by itself");
  EXPECT_EQ(host.stderrText().find("socket activation"), std::string::npos)
      << "LISTEN_PID names another process; the host must not use or mention fd 3:\n"
      << host.stderrText();

  // The foreign socket is not served by the host: a client there gets no echo.
  TestClient stray = TestClient::connect(foreign.port(), TestClient::Options{300ms, 0, 0});
  stray.sendAll("anyone?");
  char buf[16];
  const ssize_t n = stray.recvSome(buf, sizeof buf);
  EXPECT_LT(n, 0) << "the host answered on the socket meant for another process";

  ASSERT_TRUE(host.signal(SIGTERM));
  EXPECT_EQ(host.waitExit(20s), 0) << host.stderrText();
}

// Runs the host with @p fd as its fd 3 and LISTEN_FDS=1, LISTEN_PID = the
// host's own PID (a shell exports its $$ and execs the host in its place), the
// way systemd hands over sockets, with a listener on 127.0.0.1:@p port.
void hostRefusingInheritedFd(int fd, std::uint16_t port, const std::string& expected) {
  HostIni ini;
  ini.listener("echo", "echo", {}, loopbackEndpoint(port));
  TempDir dir;
  const std::string config = dir / "host.ini";
  writeText(config, ini.text());
  ChildProcess host({.argv = {"/bin/sh", "-c", "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"", kHostBinary, "--config", config},
                     .inheritFds = {{fd, 3}}});
  const std::optional<int> status = host.waitExit(20s);
  if (!status) host.signal(SIGKILL);
  EXPECT_EQ(status, std::optional<int>(78)) << "the host served with fd 3:\n" << host.stderrText();
  EXPECT_TRUE(host.waitForLog(expected, 0ms).has_value()) << host.stderrText();
}

// T39: a socket-activated fd that is not a listening stream socket (a
// ListenDatagram= or a wrong fd in the .socket unit) is refused at start with
// a message naming the fd, exit 78, instead of being put on the accept loop
// where every accept4() would fail. Both are bound to the listener's address.
TEST(Operations, T39_InheritedFdThatIsNotAListeningStreamSocketIsRefused) {
  const std::uint16_t port = freeLoopbackPort();
  {
    SCOPED_TRACE("a UDP socket");
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(udp, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    hostRefusingInheritedFd(udp, port, "socket activation: fd 3 is not a stream socket \\(a datagram socket\\)");
    ::close(udp);
  }
  {
    SCOPED_TRACE("a TCP socket bound but not listening");
    LocalListener bound(LocalListener::Options{.port = port, .listen = false});
    hostRefusingInheritedFd(bound.fd(), port, "socket activation: fd 3 is a stream socket that is not listening");
  }
}

}  // namespace
}  // namespace protohost::ops
