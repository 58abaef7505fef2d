#include "net/BindSocket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace protohost::host {

int bindEndpoint(const Endpoint& endpoint, int type, int& err, const char*& step) {
  const bool v6 = endpoint.isIpv6();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(endpoint.port);
    ::inet_pton(AF_INET6, endpoint.interface.c_str(), &a.sin6_addr);
    len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_port = htons(endpoint.port);
    ::inet_pton(AF_INET, endpoint.interface.c_str(), &a.sin_addr);
    len = sizeof a;
  }
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto fail = [&](const char* what) {
    err = errno;
    if (fd >= 0) ::close(fd);
    step = what;
    return -1;
  };
  if (fd < 0) return fail("socket");
  // SO_REUSEADDR (restart while old connections sit in TIME_WAIT) but never
  // SO_REUSEPORT, which Poco's ServerSocket(address) sets: a second instance
  // must fail with "Address already in use", not silently share the port.
  int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Without V6ONLY, [::]:P would also take IPv4's 0.0.0.0:P (whether it does
  // is a sysctl): the endpoint would mean something else on another machine.
  if (v6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) return fail("setsockopt IPV6_V6ONLY");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("bind");
  return fd;
}

}  // namespace protohost::host
