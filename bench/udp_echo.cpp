// udp_echo: the UDP limit. A minimal single-threaded UDP echo: blocking
// recvmmsg (MSG_WAITFORONE: returns as soon as one datagram is there, with
// as many as are queued, up to 32), then one sendmmsg of the same buffers
// back to their senders. No epoll, no timers, no per-datagram allocation.
// usage: udp_echo PORT [ADDR=127.0.0.1]; SIGTERM/SIGINT exit 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

static volatile sig_atomic_t stopping = 0;

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: udp_echo PORT [ADDR]\n"), 64;
  struct sigaction sa{};
  sa.sa_handler = [](int) { stopping = 1; };
  sigaction(SIGTERM, &sa, nullptr);  // no SA_RESTART: recvmmsg returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<unsigned short>(std::atoi(argv[1])));
  inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &a.sin_addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::perror("bind"), 1;
  constexpr unsigned kBatch = 32;
  constexpr std::size_t kSlot = 65536;
  std::vector<char> buf(kBatch * kSlot);
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iovs(kBatch);
  std::vector<sockaddr_storage> peers(kBatch);
  while (!stopping) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iovs[i] = iovec{buf.data() + i * kSlot, kSlot};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;  // EINTR (a signal): the loop condition decides
    for (int i = 0; i < n; ++i) iovs[static_cast<unsigned>(i)].iov_len = msgs[static_cast<unsigned>(i)].msg_len;
    for (int sent = 0; sent < n;) {
      const int k = sendmmsg(fd, msgs.data() + sent, static_cast<unsigned>(n - sent), 0);
      if (k <= 0) break;  // dropped, as the host drops what the kernel refuses
      sent += k;
    }
  }
  close(fd);
  return 0;
}
