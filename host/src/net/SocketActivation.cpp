#include "net/SocketActivation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace protohost::host {

namespace {
// A datagram socket or a connected/unlistened stream socket in LISTEN_FDS
// (a wrong ListenStream=/ListenDatagram= in the .socket unit) would be put on
// the accept loop, where accept4() fails on every readiness: refuse it here.
void requireListeningStreamSocket(int fd) {
  const std::string what = "socket activation: fd " + std::to_string(fd) + " ";
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    throw std::runtime_error(what + "is not a socket (" + std::strerror(errno) + ")");
  if (type != SOCK_STREAM)
    throw std::runtime_error(what + "is not a stream socket (" + (type == SOCK_DGRAM ? "a datagram socket" : "type " + std::to_string(type)) +
                             "); only listening TCP sockets can be handed to the host");
  len = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
    throw std::runtime_error(what + "is a stream socket that is not listening; only listening TCP sockets can be handed to the host");
}
}  // namespace

std::vector<InheritedSocket> takeInheritedSockets() {
  std::vector<InheritedSocket> out;
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  bool mine = pid && fds && std::strtol(pid, nullptr, 10) == static_cast<long>(::getpid());
  int n = mine ? static_cast<int>(std::strtol(fds, nullptr, 10)) : 0;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  constexpr int kFirst = 3;  // SD_LISTEN_FDS_START
  for (int fd = kFirst; fd < kFirst + n; ++fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    requireListeningStreamSocket(fd);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET) {
      auto& a = reinterpret_cast<sockaddr_in&>(ss);
      ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
      out.push_back({fd, std::string(buf) + ":" + std::to_string(ntohs(a.sin_port))});
    } else if (ss.ss_family == AF_INET6) {
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
      out.push_back({fd, "[" + std::string(buf) + "]:" + std::to_string(ntohs(a.sin6_port))});
    }
  }
  return out;
}

}  // namespace protohost::host
