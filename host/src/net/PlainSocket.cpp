#include "net/PlainSocket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace protohost::host {

void closeWithReset(int fd) {
  const linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

PlainSocket::~PlainSocket() {
  if (fd_ >= 0) ::close(fd_);
}

ssize_t PlainSocket::read(char* buf, std::size_t len) { return ::recv(fd_, buf, len, 0); }

ssize_t PlainSocket::write(const char* data, std::size_t len) {
  return ::send(fd_, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t PlainSocket::writev(const iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  return ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int PlainSocket::shutdownWrite() { return ::shutdown(fd_, SHUT_WR); }

void PlainSocket::close(bool reset) {
  if (fd_ < 0) return;
  // No EPOLL_CTL_DEL needed first: close() takes the fd out of every epoll
  // set, since the host never dups a connection's socket.
  if (reset) closeWithReset(std::exchange(fd_, -1));
  else ::close(std::exchange(fd_, -1));
}

int PlainSocket::release() { return std::exchange(fd_, -1); }

}  // namespace protohost::host
