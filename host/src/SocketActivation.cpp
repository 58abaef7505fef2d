#include "SocketActivation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace protohost::host {

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
