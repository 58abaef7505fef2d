#pragma once
// A socket of the test itself on [::1] (TestClient.h's LocalListener is IPv4):
// listening, or bound only, so that a connect to it is refused.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace protohost::testsupport {

class Loopback6Socket {
 public:
  /// Binds [::1] on a port the kernel picks and, with @p listen, listens;
  /// throws std::runtime_error when the machine has no IPv6 loopback.
  explicit Loopback6Socket(bool listen) {
    fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (listen && ::listen(fd_, 16) != 0) ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      const int e = errno;
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("cannot bind [::1]: " + std::string(std::strerror(e)));
    }
    port_ = ntohs(a.sin6_port);
  }
  ~Loopback6Socket() { ::close(fd_); }
  Loopback6Socket(const Loopback6Socket&) = delete;
  Loopback6Socket& operator=(const Loopback6Socket&) = delete;

  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace protohost::testsupport
