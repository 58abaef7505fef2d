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
// Sanitizer builds (ASan, TSan) go through libc's recv/send/epoll_wait instead:
// the sanitizers check memory and model synchronisation in their interceptors
// of those functions, which a raw system call bypasses (ASan would never check
// the send of plugin-supplied bytes; TSan would lose epoll's release/acquire).
//
// Contract (the kernel's, not libc's): the result, or -errno on failure;
// errno is not touched (except on the libc path). Any thread.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PROTOHOST_SYSCALLS_VIA_LIBC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PROTOHOST_SYSCALLS_VIA_LIBC 1
#endif

namespace protohost::host::sys {

#if defined(PROTOHOST_SYSCALLS_VIA_LIBC)
/// True when the hot-path calls go through libc (and its sanitizer interceptors).
inline constexpr bool kViaLibc = true;
namespace detail {
inline long orNegativeErrno(long r) { return r < 0 ? -errno : r; }
}  // namespace detail

inline ssize_t recv(int fd, void* buf, std::size_t len, int flags) { return detail::orNegativeErrno(::recv(fd, buf, len, flags)); }

inline ssize_t send(int fd, const void* buf, std::size_t len, int flags) {
  return detail::orNegativeErrno(::send(fd, buf, len, flags));
}

inline int epollWait(int epfd, epoll_event* events, int maxEvents, int timeoutMs) {
  return static_cast<int>(detail::orNegativeErrno(::epoll_wait(epfd, events, maxEvents, timeoutMs)));
}
#elif defined(__x86_64__)
inline constexpr bool kViaLibc = false;
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
inline constexpr bool kViaLibc = false;
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
