#pragma once
// The system calls of the hot path, made without glibc's wrappers.
//
// In a multi-threaded process glibc wraps every cancellable call (recv, send,
// epoll_wait, ...) in __pthread_enable_asynccancel / disable: about 45
// user-space instructions per call, three calls per echoed message, against
// ~10 for the same call in a single-threaded process (callgrind, see
// docs/performance.md). The host never cancels a thread, so it enters the
// kernel directly: on x86-64 with an inline `syscall` instruction (a handful
// of register moves, no call, no errno store), elsewhere through syscall(2).
//
// Contract (the kernel's, not libc's): the result, or -errno on failure;
// errno is not touched. Any thread.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace protohost::host::sys {

#if defined(__x86_64__)
namespace detail {
// rax = number and result; arguments in rdi, rsi, rdx, r10, r8, r9; the
// instruction clobbers rcx and r11. "memory": the kernel reads and writes the buffers.
inline long syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}
}  // namespace detail

inline ssize_t recv(int fd, void* buf, std::size_t len, int flags) {
  return detail::syscall6(SYS_recvfrom, fd, reinterpret_cast<long>(buf), static_cast<long>(len), flags, 0, 0);
}

inline ssize_t send(int fd, const void* buf, std::size_t len, int flags) {
  return detail::syscall6(SYS_sendto, fd, reinterpret_cast<long>(buf), static_cast<long>(len), flags, 0, 0);
}

/// epoll_wait through epoll_pwait with no signal mask (the one every Linux architecture has).
inline int epollWait(int epfd, epoll_event* events, int maxEvents, int timeoutMs) {
  return static_cast<int>(
      detail::syscall6(SYS_epoll_pwait, epfd, reinterpret_cast<long>(events), maxEvents, timeoutMs, 0, 0));
}
#else
namespace detail {
inline long orNegativeErrno(long r) { return r < 0 ? -errno : r; }
}  // namespace detail

inline ssize_t recv(int fd, void* buf, std::size_t len, int flags) {
  return detail::orNegativeErrno(::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr));
}

inline ssize_t send(int fd, const void* buf, std::size_t len, int flags) {
  return detail::orNegativeErrno(::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0));
}

inline int epollWait(int epfd, epoll_event* events, int maxEvents, int timeoutMs) {
  return static_cast<int>(detail::orNegativeErrno(::syscall(SYS_epoll_pwait, epfd, events, maxEvents, timeoutMs, nullptr, 0)));
}
#endif

}  // namespace protohost::host::sys
