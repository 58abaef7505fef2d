#pragma once
// systemd socket activation (sd_listen_fds(3)) without libsystemd: listening
// sockets passed as fds 3.. with LISTEN_FDS, for this process only (LISTEN_PID).

#include <string>
#include <vector>

namespace protohost::host {

struct InheritedSocket {
  int fd;
  std::string address;  // "127.0.0.1:7007" / "[::1]:7007", from getsockname
};

/// Takes the sockets passed to this process and unsets LISTEN_PID, LISTEN_FDS
/// and LISTEN_FDNAMES so children do not inherit them. Empty when the variables
/// are absent or meant for another process. Throws std::runtime_error naming
/// the fd when one of them is not a listening stream socket.
std::vector<InheritedSocket> takeInheritedSockets();

}  // namespace protohost::host
