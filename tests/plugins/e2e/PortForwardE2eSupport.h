#pragma once
/// @file PortForwardE2eSupport.h
/// Peers for the portforward end-to-end tests (portforward_e2e_test.cpp):
///
///  - ScriptedUpstream: a loopback listener of the test whose every accepted
///    connection runs a handler (on its own thread) with the connected fd:
///    never read, read then reset, echo, ... The listener closes in the destructor.
///  - FullBacklogListener: a listener whose accept queue is full (filled by
///    the test's own connects), so a further connect gets no answer.
///  - freeLoopbackPort: a port that was free on 127.0.0.1 a moment ago (for
///    HAProxy's config, which cannot take port 0 and report it).
///  - sendUntilStalled: sends a pattern until the peer stops taking bytes.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "TestClient.h"

namespace protohost::e2e::portforward {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Receives into @p out until @p n bytes, EOF, an error or @p timeout; returns recv's last result.
inline ssize_t recvUpTo(int fd, std::string& out, std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  ssize_t r = 1;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (r > 0) out.append(buf, static_cast<std::size_t>(r));
    else if (r == 0 || (errno != EAGAIN && errno != EINTR)) return r;
  }
  return r;
}

/// What happened when reading @p fd until it ended: "eof", "reset" or "timeout".
inline std::string readToEnd(int fd, std::string& out, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return "timeout";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) out.append(buf, static_cast<std::size_t>(r));
    else if (r == 0) return "eof";
    else if (errno == ECONNRESET) return "reset";
    else if (errno != EAGAIN && errno != EINTR) return "error " + std::to_string(errno);
  }
}

class ScriptedUpstream {
 public:
  /// @p stopping turns true when stop() is called or the upstream is destroyed:
  /// a handler that holds its connection open waits for it.
  using Handler = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  /// @p handler runs once per accepted connection, on its own thread; the fd
  /// is closed after it returns.
  explicit ScriptedUpstream(Handler handler) : handler_(std::move(handler)) {
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;
  ~ScriptedUpstream() {
    stop();
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }

  std::uint16_t port() const { return listener_.port(); }
  /// Connections accepted so far.
  int accepted() const { return accepted_.load(); }
  /// Stops accepting and lets waiting handlers return (their connections
  /// close); any thread. The destructor calls it, so a failed ASSERT cannot hang.
  void stop() { stop_ = true; }

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      workers_.emplace_back([this, fd] {
        handler_(fd, stop_);
        ::close(fd);
      });
    }
  }

  LocalListener listener_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::thread> workers_;  // the acceptor's; joined in the destructor
  std::thread acceptor_;
};

/// A listening socket with backlog 0 whose queue the test fills, so that the
/// kernel drops further SYNs: a connect to it neither succeeds nor is refused.
class FullBacklogListener {
 public:
  FullBacklogListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = detail::loopback(0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 0) != 0)
      throw IoError("backlog listener", errno);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    // Fill the queue: connects until one gets no answer within 300 ms.
    for (int i = 0; i < 8; ++i) {
      TestClient c = TestClient::start(port_, TestClient::Options{300ms});
      pollfd p{c.fd(), POLLOUT, 0};
      const bool answered = ::poll(&p, 1, 300) > 0 && c.socketError() == 0;
      fillers_.push_back(std::move(c));
      if (!answered) {
        full_ = true;
        break;
      }
    }
  }
  ~FullBacklogListener() {
    fillers_.clear();
    if (fd_ >= 0) ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  /// False when the kernel kept answering (the test then cannot run).
  bool full() const { return full_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  bool full_ = false;
  std::vector<TestClient> fillers_;
};

/// A port that could be bound on 127.0.0.1 just now.
inline std::uint16_t freeLoopbackPort() {
  LocalListener l;
  return l.port();
}

/// Sends bytes of @p pattern on @p fd (non-blocking) until no byte is taken for
/// @p quiet or @p most bytes went; returns how many went.
inline std::uint64_t sendUntilStalled(int fd, const PatternStream& pattern, std::uint64_t most,
                                      std::chrono::milliseconds quiet) {
  std::uint64_t sent = 0;
  std::string chunk;
  while (sent < most) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
    chunk = pattern.bytes(sent, 65536);
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::uint64_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
  }
  return sent;
}

}  // namespace protohost::e2e::portforward
