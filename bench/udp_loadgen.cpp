// udp_loadgen: datagrams per second through a UDP echo on loopback. S client
// sockets (distinct source ports) each keep D numbered datagrams of B bytes
// in flight; each answer is checked byte for byte (a corrupted or foreign
// answer is counted and fails the run) and answered with the next datagram.
// UDP may lose: a socket that got no answer for 200 ms sends a fresh window.
// Prints one line: "datagrams_per_s N answered N lost_windows N corrupt N".
// usage: udp_loadgen PORT [seconds=3] [sockets=8] [depth=16] [bytes=64]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Datagram n of socket s: an 8-byte sequence number, the socket index, then a
// pattern derived from both, so a corrupted or misrouted answer is detected.
void fill(std::string& d, std::uint64_t n, std::uint32_t s, std::size_t bytes) {
  d.assign(std::max<std::size_t>(bytes, 12), '\0');
  std::memcpy(d.data(), &n, 8);
  std::memcpy(d.data() + 8, &s, 4);
  for (std::size_t i = 12; i < d.size(); ++i) d[i] = static_cast<char>((n * 31 + s * 7 + i) & 0xff);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: udp_loadgen PORT [seconds] [sockets] [depth] [bytes]\n"), 64;
  const int port = std::atoi(argv[1]);
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const int sockets = argc > 3 ? std::atoi(argv[3]) : 8;
  const int depth = argc > 4 ? std::atoi(argv[4]) : 16;
  const std::size_t bytes = argc > 5 ? static_cast<std::size_t>(std::atoi(argv[5])) : 64;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<unsigned short>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  struct Client {
    int fd = -1;
    std::uint64_t next = 0;
    Clock::time_point lastAnswer;
  };
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  std::string d;
  auto sendOne = [&](Client& c, std::uint32_t s) {
    fill(d, c.next++, s, bytes);
    sendto(c.fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  };
  const auto start = Clock::now();
  for (int s = 0; s < sockets; ++s) {
    Client c;
    c.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c.lastAnswer = start;
    clients.push_back(c);
    fds.push_back(pollfd{c.fd, POLLIN, 0});
    for (int k = 0; k < depth; ++k) sendOne(clients.back(), static_cast<std::uint32_t>(s));
  }
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::uint64_t answered = 0, corrupt = 0, lostWindows = 0;
  std::vector<char> buf(65536);
  std::string expected;
  while (Clock::now() < end) {
    if (poll(fds.data(), fds.size(), 50) < 0) break;
    const auto now = Clock::now();
    for (std::size_t s = 0; s < clients.size(); ++s) {
      Client& c = clients[s];
      for (;;) {
        const ssize_t n = recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) break;
        std::uint64_t seq = 0;
        if (n >= 12) std::memcpy(&seq, buf.data(), 8);
        fill(expected, seq, static_cast<std::uint32_t>(s), bytes);
        if (static_cast<std::size_t>(n) != expected.size() || std::memcmp(buf.data(), expected.data(), expected.size()) != 0) {
          ++corrupt;
          continue;
        }
        ++answered;
        c.lastAnswer = now;
        sendOne(c, static_cast<std::uint32_t>(s));
      }
      if (now - c.lastAnswer > std::chrono::milliseconds(200)) {  // the window was lost: start another
        ++lostWindows;
        c.lastAnswer = now;
        for (int k = 0; k < depth; ++k) sendOne(c, static_cast<std::uint32_t>(s));
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("datagrams_per_s %.0f answered %llu lost_windows %llu corrupt %llu\n", answered / elapsed,
              static_cast<unsigned long long>(answered), static_cast<unsigned long long>(lostWindows),
              static_cast<unsigned long long>(corrupt));
  for (auto& c : clients) close(c.fd);
  return corrupt ? 1 : 0;
}
