// net/PlainSocket: the plaintext SocketLayer over a real loopback TCP pair
// (an AF_UNIX socketpair has no RST to observe). Each call keeps the system
// call's contract: bytes, 0 for EOF, -1 with errno.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <utility>

#include "net/PlainSocket.h"

namespace protohost::host {
namespace {

// A connected loopback TCP pair: first is the host's side (non-blocking), second the peer's.
std::pair<int, int> tcpPair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(listener, 1), 0);
  EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(peer, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const int host = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ::close(listener);
  return {host, peer};
}

std::string readSome(int fd) {
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

TEST(PlainSocket, ReadsAndWritesWithTheSystemCallsContract) {
  auto [fd, peer] = tcpPair();
  PlainSocket s(fd);
  char buf[64];
  errno = 0;
  EXPECT_EQ(s.read(buf, sizeof buf), -1);  // nothing yet, non-blocking
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(s.write("ping", 4), 4);
  EXPECT_EQ(readSome(peer), "ping");
  iovec iov[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
  EXPECT_EQ(s.writev(iov, 2), 4);
  EXPECT_EQ(readSome(peer), "abcd");
  ASSERT_EQ(::send(peer, "pong", 4, 0), 4);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(s.read(buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  ::shutdown(peer, SHUT_WR);
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(s.read(buf, sizeof buf), 0);  // the peer's EOF
  ::close(peer);
}

TEST(PlainSocket, ShutdownWriteGivesThePeerEofAndReadingGoesOn) {
  auto [fd, peer] = tcpPair();
  PlainSocket s(fd);
  EXPECT_EQ(s.write("last", 4), 4);
  EXPECT_EQ(s.shutdownWrite(), 0);
  EXPECT_EQ(readSome(peer), "last");
  char buf[8];
  EXPECT_EQ(::recv(peer, buf, sizeof buf, 0), 0);  // EOF after what was written
  ASSERT_EQ(::send(peer, "more", 4, 0), 4);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(s.read(buf, sizeof buf), 4);
  ::close(peer);
}

TEST(PlainSocket, CloseWithResetSendsAnRstAndAPlainCloseAFin) {
  for (const bool reset : {true, false}) {
    auto [fd, peer] = tcpPair();
    PlainSocket s(fd);
    s.close(reset);
    EXPECT_EQ(s.fd(), -1);
    s.close(reset);  // a second close does nothing
    pollfd p{peer, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    char buf[8];
    errno = 0;
    const ssize_t n = ::recv(peer, buf, sizeof buf, 0);
    if (reset) {
      EXPECT_EQ(n, -1);
      EXPECT_EQ(errno, ECONNRESET);
    } else {
      EXPECT_EQ(n, 0);
    }
    ::close(peer);
  }
}

TEST(PlainSocket, ReleaseHandsTheFdOverWithoutClosingIt) {
  auto [fd, peer] = tcpPair();
  int released = -1;
  {
    PlainSocket s(fd);
    released = s.release();
    EXPECT_EQ(s.fd(), -1);
  }  // the destructor must not close it
  EXPECT_EQ(released, fd);
  EXPECT_EQ(::send(released, "x", 1, MSG_NOSIGNAL), 1);
  EXPECT_EQ(readSome(peer), "x");
  ::close(released);
  ::close(peer);
}

}  // namespace
}  // namespace protohost::host
