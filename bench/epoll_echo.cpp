// epoll_echo: the limit. A minimal single-threaded, level-triggered epoll echo
// server: one shared 64 KiB read buffer, recv then send straight back, and a
// per-connection backlog only when the kernel does not take everything (then
// reading pauses until it drains). Nothing else: no timers, no wake-ups.
// usage: epoll_echo PORT [ADDR=127.0.0.1] [et]; SIGTERM/SIGINT exit 0.
// et: edge-triggered connections (EPOLLET, as Boost.Asio registers them): read until a
// read comes back short instead of once per report (bench/syscalls-per-message.sh epollet).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

static volatile sig_atomic_t stopping = 0;

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: epoll_echo PORT [ADDR] [et]\n"), 64;
  const bool et = argc > 3 && std::string(argv[3]) == "et";
  const std::uint32_t edge = et ? static_cast<std::uint32_t>(EPOLLET) : 0u;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = [](int) { stopping = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) rl.rlim_cur = rl.rlim_max, setrlimit(RLIMIT_NOFILE, &rl);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &a.sin_addr);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(lfd, 511)) return std::perror("bind/listen"), 78;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.fd = lfd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::fprintf(stderr, "epoll_echo listening on %s:%s\n", argc > 2 ? argv[2] : "127.0.0.1", argv[1]);

  static char buf[64 * 1024];
  std::unordered_map<int, std::string> backlog;  // only connections the kernel did not take everything from
  epoll_event evs[256];
  auto drop = [&](int fd) { backlog.erase(fd), close(fd); };
  auto sendAll = [&](int fd, const char* p, size_t n) -> bool {  // false: connection gone
    while (n) {
      ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
      if (w > 0) { p += w, n -= static_cast<size_t>(w); continue; }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        backlog[fd].append(p, n);
        epoll_event e{EPOLLOUT | edge, {.fd = fd}};  // stop reading until drained
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
        return true;
      }
      return false;
    }
    return true;
  };
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{EPOLLIN | edge, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
      } else if (evs[i].events & EPOLLOUT) {
        std::string pending = std::move(backlog[fd]);
        backlog.erase(fd);
        epoll_event e{EPOLLIN | edge, {.fd = fd}};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);  // (with et: reports the input that waited)
        if (!sendAll(fd, pending.data(), pending.size())) drop(fd);
      } else {
        for (;;) {  // level-triggered: once; et: until a short read (or a backlog) drains it
          ssize_t r = recv(fd, buf, sizeof buf, 0);
          if (r > 0) {
            if (!sendAll(fd, buf, static_cast<size_t>(r))) { drop(fd); break; }
            if (!et || static_cast<size_t>(r) < sizeof buf || backlog.count(fd)) break;
          } else {
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
            break;
          }
        }
      }
    }
  }
  return 0;
}
