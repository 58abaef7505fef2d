// tls_echo: the TLS limit. A minimal single-threaded, level-triggered epoll echo
// over OpenSSL, like bench/epoll_echo.cpp: non-blocking accept, a non-blocking
// handshake (SSL_do_handshake), then SSL_read into one shared 64 KiB buffer and
// SSL_write straight back, with a per-connection backlog only when the socket
// does not take everything (then reading pauses until it drains). Nothing else:
// no timers, no handshake timeout, no metrics.
//
// The TLS settings are the host's (host/src/net/TlsContext.cpp): TLS 1.2 and 1.3,
// the same cipher list, groups and options, SSL_MODE_ENABLE_PARTIAL_WRITE |
// ACCEPT_MOVING_WRITE_BUFFER | RELEASE_BUFFERS, no session cache (tickets only,
// here with OpenSSL's own ticket keys), one certificate and key. A closing
// connection gets one close_notify (SSL_shutdown once), as the host sends.
//
// usage: tls_echo PORT CERT.pem KEY.pem [ADDR=127.0.0.1]; SIGTERM/SIGINT exit 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

namespace {
struct Conn {
  SSL* ssl = nullptr;
  bool handshaken = false;
  std::string backlog;  // plaintext SSL_write did not take yet
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return std::fprintf(stderr, "usage: tls_echo PORT CERT.pem KEY.pem [ADDR]\n"), 64;
  const char* addr = argc > 4 ? argv[4] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = [](int) { stopping = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) rl.rlim_cur = rl.rlim_max, setrlimit(RLIMIT_NOFILE, &rl);

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                          "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                          "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  SSL_CTX_set_dh_auto(ctx, 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_print_errors_fp(stderr);
    return 78;
  }

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  inet_pton(AF_INET, addr, &a.sin_addr);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(lfd, 511)) return std::perror("bind/listen"), 78;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.fd = lfd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::fprintf(stderr, "tls_echo listening on %s:%s\n", addr, argv[1]);

  static char buf[64 * 1024];
  std::unordered_map<int, Conn> conns;
  epoll_event evs[256];
  auto want = [&](int fd, std::uint32_t events) {
    epoll_event e{events, {.fd = fd}};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
  };
  auto drop = [&](int fd, bool notify) {
    auto it = conns.find(fd);
    if (it != conns.end()) {
      if (notify) SSL_shutdown(it->second.ssl);  // one close_notify, not waited for
      SSL_free(it->second.ssl);
      conns.erase(it);
    }
    ERR_clear_error();
    close(fd);
  };
  // Writes plaintext; false: the connection is gone. What SSL_write does not take
  // waits in the backlog, and reading stops until it drained (EPOLLOUT only).
  auto writeAll = [&](int fd, Conn& c, const char* p, size_t n) -> bool {
    while (n) {
      int w = SSL_write(c.ssl, p, static_cast<int>(n));
      if (w > 0) { p += w, n -= static_cast<size_t>(w); continue; }
      int e = SSL_get_error(c.ssl, w);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        c.backlog.append(p, n);
        want(fd, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
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
          SSL* ssl = SSL_new(ctx);
          SSL_set_fd(ssl, c);
          SSL_set_accept_state(ssl);
          conns[c].ssl = ssl;
          epoll_event e{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      if (!c.handshaken) {
        int r = SSL_do_handshake(c.ssl);
        if (r != 1) {
          int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ) want(fd, EPOLLIN);
          else if (e == SSL_ERROR_WANT_WRITE) want(fd, EPOLLOUT);
          else drop(fd, false);
          continue;
        }
        c.handshaken = true;
        want(fd, EPOLLIN);
        continue;  // level-triggered: data already here is reported again
      }
      if (!c.backlog.empty()) {  // waiting for the socket (or a read) to take the backlog
        std::string pending = std::move(c.backlog);
        c.backlog.clear();
        want(fd, EPOLLIN);
        if (!writeAll(fd, c, pending.data(), pending.size())) drop(fd, false);
        continue;
      }
      // level-triggered: one record per report, plus what OpenSSL already decrypted
      do {
        int r = SSL_read(c.ssl, buf, sizeof buf);
        if (r > 0) {
          if (!writeAll(fd, c, buf, static_cast<size_t>(r))) { drop(fd, false); break; }
          if (!c.backlog.empty()) break;
          continue;
        }
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) drop(fd, true);  // close_notify: answer it
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) drop(fd, false);
        break;
      } while (SSL_pending(c.ssl) > 0);
    }
  }
  SSL_CTX_free(ctx);
  return 0;
}
