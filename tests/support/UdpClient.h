#pragma once
// A UDP socket of the test itself on loopback (127.0.0.1 or [::1]): sends
// datagrams to a port there and waits (poll, bounded) for answers.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace protohost::testsupport {

class UdpClient {
 public:
  /// Binds the loopback of @p ipv6's family on @p port (0: the kernel picks;
  /// below 1024 needs root); an IPv4 socket binds @p ipv4Source (another
  /// loopback address, e.g. 127.0.0.2, is another source to the server).
  /// Throws std::runtime_error when it cannot.
  explicit UdpClient(bool ipv6 = false, std::uint16_t port = 0, const char* ipv4Source = "127.0.0.1") : v6_(ipv6) {
    fd_ = ::socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail("socket");
    sockaddr_storage ss = loopback(port);
    if (!v6_ && ::inet_pton(AF_INET, ipv4Source, &reinterpret_cast<sockaddr_in&>(ss).sin_addr) != 1) {
      errno = EINVAL;
      fail("bad source address");
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), length()) != 0) fail("bind");
    socklen_t len = sizeof ss;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port : reinterpret_cast<sockaddr_in&>(ss).sin_port);
  }
  ~UdpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpClient(const UdpClient&) = delete;
  UdpClient& operator=(const UdpClient&) = delete;

  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }

  /// Sends one datagram to loopback:@p port; false when the kernel refuses it.
  bool sendTo(std::uint16_t port, const std::string& data) {
    sockaddr_storage ss = loopback(port);
    return ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), length()) ==
           static_cast<ssize_t>(data.size());
  }

  /// The next datagram within @p ms (nullopt on timeout); @p fromPort gets its source port.
  std::optional<std::string> receive(int ms = 5000, std::uint16_t* fromPort = nullptr) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return std::nullopt;
    std::string buf(65536, '\0');
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return std::nullopt;
    if (fromPort)
      *fromPort = ntohs(v6_ ? reinterpret_cast<sockaddr_in6&>(from).sin6_port : reinterpret_cast<sockaddr_in&>(from).sin_port);
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

 private:
  sockaddr_storage loopback(std::uint16_t port) const {
    sockaddr_storage ss{};
    if (v6_) {
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      a.sin6_port = htons(port);
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(ss);
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
    }
    return ss;
  }
  socklen_t length() const { return v6_ ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  [[noreturn]] void fail(const char* what) {
    const int e = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(std::string("udp client: ") + what + ": " + std::strerror(e));
  }

  bool v6_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace protohost::testsupport
