// TCP listeners over IPv6 and IPv4 side by side (issue 11's dual-stack rows
// for the TCP listener kind): the same plugin serves 127.0.0.1 and [::1] and
// sees each client's own address family, and a v6 wildcard ([::]) is V6ONLY,
// so it leaves IPv4's port free. The real host binary, loopback only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

// A blocking TCP client of the test on [::1]; each wait is bounded by a 5 s poll.
class Client6 {
 public:
  explicit Client6(std::uint16_t port) {
    fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error(std::string("connect [::1]: ") + std::strerror(errno));
  }
  ~Client6() { ::close(fd_); }
  Client6(const Client6&) = delete;
  Client6& operator=(const Client6&) = delete;

  void send(const std::string& s) { ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }
  /// Reads until @p n bytes arrived in all (or EOF, an error or 5 s without data).
  std::string read(std::size_t n) {
    char buf[4096];
    while (received_.size() < n) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) break;
      received_.append(buf, static_cast<std::size_t>(r));
    }
    return received_;
  }

 private:
  int fd_ = -1;
  std::string received_;  // everything read so far
};

bool haveIpv6Loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

TEST(Ipv6Listeners, OnePluginServesIpv4AndIpv6LoopbackAndSeesEachFamily) {
  ASSERT_TRUE(haveIpv6Loopback()) << "this machine has no IPv6 loopback ([::1])";
  HostProcess host;
  HostIni ini(host.linkPlugins({std::string(kTestPluginDir) + "/peer_echo.so"}));
  ini.listener("v4", "peer_echo");
  ini.listener("v6", "peer_echo", {}, "tcp:0:interface=\\:\\:1");
  host.startWithConfig(ini.text());
  const std::uint16_t v4 = host.port("v4"), v6 = host.port("v6");
  EXPECT_TRUE(host.waitForLog("\\[listener=v6\\] listening on \\[::1\\]:" + std::to_string(v6) + " ", 1s));

  TestClient c4 = TestClient::connect(v4);
  const std::string line4 = c4.readLine();
  EXPECT_EQ(line4.rfind("peer 127.0.0.1:", 0), 0u) << line4;
  EXPECT_NE(line4.find(" local 127.0.0.1:" + std::to_string(v4)), std::string::npos) << line4;
  EXPECT_EQ(c4.roundTrip("over IPv4"), "over IPv4");

  Client6 c6(v6);
  const std::string hello = "over IPv6";
  c6.send(hello);
  // "peer [::1]:P local [::1]:V6\n", then the echo.
  const std::string head = "peer [::1]:";
  const std::string tail = " local [::1]:" + std::to_string(v6) + "\n";
  std::string got = c6.read(head.size() + 1 + tail.size());
  const std::size_t eol = got.find('\n');
  ASSERT_NE(eol, std::string::npos) << got;
  got = c6.read(eol + 1 + hello.size());
  EXPECT_EQ(got.rfind(head, 0), 0u) << got;
  EXPECT_EQ(got.substr(0, eol + 1).find(tail), eol + 1 - tail.size()) << got;
  EXPECT_EQ(got.substr(eol + 1), hello);
}

TEST(Ipv6Listeners, AV6WildcardIsV6OnlyAndLeavesTheIpv4PortFree) {
  ASSERT_TRUE(haveIpv6Loopback()) << "this machine has no IPv6 loopback ([::1])";
  HostProcess host;
  HostIni ini;
  ini.listener("any6", "echo", {}, "tcp:0:interface=\\:\\:");
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("any6");

  Client6 c6(port);
  c6.send("v6 wildcard");
  EXPECT_EQ(c6.read(11), "v6 wildcard");

  // V6ONLY: the host's [::]:port did not also take 0.0.0.0:port, so the test can bind it.
  LocalListener mine(LocalListener::Options{port});
  TestClient c4 = TestClient::connect(port);
  pollfd p{mine.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the IPv4 connect did not reach the test's own 127.0.0.1:" << port;
  const int accepted = ::accept4(mine.fd(), nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0);
  if (accepted >= 0) ::close(accepted);
}

}  // namespace
}  // namespace protohost::e2e
