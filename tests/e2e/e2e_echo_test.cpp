// End-to-end: the real host serving the echo plugin to many real clients.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

class E2eEcho : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && host_) std::cerr << "---- host stderr ----\n" << host_->stderrText() << "---------------------\n";
  }

  /// Starts a host with one echo listener and returns its port.
  std::uint16_t startEchoHost(unsigned threads = 1) {
    HostIni ini;
    ini.set("threads", std::to_string(threads));
    ini.listener("echo", "echo");
    host_ = std::make_unique<HostProcess>();
    host_->startWithConfig(ini.text());
    return host_->port("echo");
  }

  std::unique_ptr<HostProcess> host_;
};

/// @p clients connections each send @p bytesEach bytes of their own pattern
/// and read the echo back at the same time, all driven by one poll loop over
/// non-blocking sockets. Every byte is compared. Afterwards each client
/// half-closes and must read EOF with no extra byte. Returns "" on success,
/// else a description of the first failure.
std::string echoConcurrently(std::uint16_t port, int clients, std::size_t bytesEach,
                             std::chrono::milliseconds stallTimeout = 10s) {
  struct Peer {
    TestClient client;
    PatternStream pattern;
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
  };
  std::vector<Peer> peers;
  peers.reserve(static_cast<std::size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    peers.push_back(Peer{TestClient::connect(port), PatternStream(1000 + static_cast<std::uint64_t>(i))});
    int flags = ::fcntl(peers.back().client.fd(), F_GETFL);
    ::fcntl(peers.back().client.fd(), F_SETFL, flags | O_NONBLOCK);
  }
  std::vector<char> buf(65536), expected(65536);
  std::vector<pollfd> fds(peers.size());
  auto lastProgress = std::chrono::steady_clock::now();
  std::size_t complete = 0;
  while (complete < peers.size()) {
    for (std::size_t i = 0; i < peers.size(); ++i) {
      fds[i].fd = peers[i].received < bytesEach ? peers[i].client.fd() : -1;
      fds[i].events = static_cast<short>(POLLIN | (peers[i].sent < bytesEach ? POLLOUT : 0));
      fds[i].revents = 0;
    }
    int ready = ::poll(fds.data(), fds.size(), 100);
    if (ready < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
    bool progress = false;
    for (std::size_t i = 0; i < peers.size() && ready > 0; ++i) {
      Peer& p = peers[i];
      if (fds[i].revents & POLLOUT) {
        std::size_t n = std::min<std::size_t>(buf.size(), bytesEach - p.sent);
        p.pattern.fill(p.sent, buf.data(), n);
        ssize_t w = ::send(p.client.fd(), buf.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          p.sent += static_cast<std::uint64_t>(w);
          progress = true;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return "client " + std::to_string(i) + ": send: " + std::strerror(errno);
        }
      }
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = ::recv(p.client.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (r == 0)
          return "client " + std::to_string(i) + ": EOF after " + std::to_string(p.received) + " of " +
                 std::to_string(bytesEach) + " bytes";
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          return "client " + std::to_string(i) + ": recv: " + std::strerror(errno);
        if (r > 0) {
          auto n = static_cast<std::size_t>(r);
          if (p.received + n > p.sent)
            return "client " + std::to_string(i) + ": received more than it sent";
          p.pattern.fill(p.received, expected.data(), n);
          if (std::memcmp(expected.data(), buf.data(), n) != 0) {
            std::size_t k = 0;
            while (expected[k] == buf[k]) ++k;
            return "client " + std::to_string(i) + ": wrong byte at offset " + std::to_string(p.received + k);
          }
          p.received += n;
          progress = true;
          if (p.received == bytesEach) ++complete;
        }
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (progress) {
      lastProgress = now;
    } else if (now - lastProgress > stallTimeout) {
      std::string state;
      for (std::size_t i = 0; i < peers.size(); ++i)
        if (peers[i].received < bytesEach)
          state += " [" + std::to_string(i) + ": sent " + std::to_string(peers[i].sent) + ", received " +
                   std::to_string(peers[i].received) + "]";
      return "no progress for " + std::to_string(stallTimeout.count()) + " ms; incomplete clients:" + state;
    }
  }
  // Nothing extra may follow: half-close, then the echo must end with EOF.
  for (std::size_t i = 0; i < peers.size(); ++i) {
    TestClient& c = peers[i].client;
    int flags = ::fcntl(c.fd(), F_GETFL);
    ::fcntl(c.fd(), F_SETFL, flags & ~O_NONBLOCK);
    c.shutdownWrite();
    std::string extra = c.readUntilEof();
    if (!extra.empty()) return "client " + std::to_string(i) + ": " + std::to_string(extra.size()) + " extra bytes";
  }
  return {};
}

// 1. 100 concurrent clients x 1 MiB of random bytes, sent and read back at
// the same time; every byte checked.
TEST_F(E2eEcho, HundredConcurrentClientsEchoOneMiBEach) {
  const std::uint16_t port = startEchoHost();
  EXPECT_EQ(echoConcurrently(port, 100, 1u << 20), "");
  EXPECT_TRUE(host_->running());
}

// 7. Half-close: data, then shutdown(SHUT_WR); all data comes back, then EOF.
TEST_F(E2eEcho, HalfCloseReturnsAllDataThenEof) {
  const std::uint16_t port = startEchoHost();
  {
    TestClient c = TestClient::connect(port);
    c.sendAll("hello, half-closed world\n");
    c.shutdownWrite();
    EXPECT_EQ(c.readUntilEof(), "hello, half-closed world\n");
  }
  {
    // The EOF must not cut off output the host still holds. This client has a
    // tiny receive window and does not read until it has sent everything and
    // half-closed (given up to 2 s), so the host reads the EOF while much of
    // the echo is still queued. Sending runs on a thread so that, should the
    // buffers along the way be too small, reading starts anyway instead of
    // deadlocking.
    const std::size_t size = 4 << 20;
    const std::string data = PatternStream(7).bytes(0, size);
    TestClient c = TestClient::connect(port, TestClient::Options{5s, 4096, 0});
    std::mutex m;
    std::condition_variable cv;
    bool sent = false;
    std::string sendError;
    std::thread sender([&] {
      try {
        c.sendAll(data);
        c.shutdownWrite();
      } catch (const IoError& e) {
        sendError = e.what();
      }
      std::lock_guard<std::mutex> lock(m);
      sent = true;
      cv.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait_for(lock, 2s, [&] { return sent; });
    }
    std::string back;
    try {
      back = c.readUntilEof();
    } catch (const IoError& e) {
      ADD_FAILURE() << "reading the echo: " << e.what();
    }
    sender.join();
    EXPECT_EQ(sendError, "");
    ASSERT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data) << "first difference at " << PatternStream(7).mismatch(0, back);
  }
  {
    // Half-close with nothing sent: just EOF.
    TestClient c = TestClient::connect(port);
    c.shutdownWrite();
    EXPECT_EQ(c.readUntilEof(), "");
  }
}

// 8. threads = 2: two reactor threads, 20 clients echoing concurrently.
TEST_F(E2eEcho, TwoReactorThreadsServeTwentyConcurrentClients) {
  const std::uint16_t port = startEchoHost(2);
  EXPECT_TRUE(host_->waitForLog("2 reactor thread", 5s).has_value()) << "start line does not mention 2 reactor threads";
  EXPECT_EQ(echoConcurrently(port, 20, 512 * 1024), "");
  // Named by the threads themselves once running: they have served by now.
  auto names = host_->threadNames();
  EXPECT_EQ(std::count(names.begin(), names.end(), "reactor-0"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "reactor-1"), 1);
  EXPECT_TRUE(host_->running());
}

}  // namespace
}  // namespace protohost::e2e
