#pragma once
// The system calls of the hot path, made without glibc's cancellation points.
//
// In a multi-threaded process glibc wraps every cancellable call (recv, send,
// epoll_wait, ...) in __pthread_enable_asynccancel / disable: about 45
// user-space instructions per call, three calls per echoed message, against
// ~10 for the same call in a single-threaded process (callgrind, see
// docs/performance.md). The host never cancels a thread, so it calls the
// kernel through syscall(2) instead: same arguments, same -1/errno contract.
// Any thread.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>

namespace protohost::host::sys {

inline ssize_t recv(int fd, void* buf, std::size_t len, int flags) {
  return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
}

inline ssize_t send(int fd, const void* buf, std::size_t len, int flags) {
  return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}

/// epoll_wait through epoll_pwait with no signal mask (the one every Linux architecture has).
inline int epollWait(int epfd, epoll_event* events, int maxEvents, int timeoutMs) {
  return static_cast<int>(::syscall(SYS_epoll_pwait, epfd, events, maxEvents, timeoutMs, nullptr, 0));
}

}  // namespace protohost::host::sys
