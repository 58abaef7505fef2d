#pragma once
/// @file TestClient.h
/// Blocking TCP test clients for end-to-end tests (see HostProcess.h).
///
/// Header-only, standard library + POSIX only. Loopback (127.0.0.1) only.
///
///  - TestClient: one connection with SO_RCVTIMEO/SO_SNDTIMEO, so no call
///    blocks forever: sendAll, recvExactly, readUntilEof, waitClosed.
///    Failures throw IoError, whose error() is the errno (EAGAIN = timed out,
///    0 = the peer closed too early).
///  - LocalListener: a listening socket of the test's own (port-in-use tests,
///    reserving a port number).
///  - PatternStream: deterministic pseudo-random bytes computable at any
///    offset, so large transfers can be generated and checked in chunks.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace protohost::e2e {

/// A failed socket operation. error() is the errno; EAGAIN/EWOULDBLOCK means a
/// timeout, 0 means the peer closed before the expected data arrived.
class IoError : public std::runtime_error {
 public:
  IoError(const std::string& what, int error)
      : std::runtime_error(what + ": " + (error == 0 ? std::string("connection closed by peer") : std::strerror(error))),
        error_(error) {}
  int error() const { return error_; }
  bool timedOut() const { return error_ == EAGAIN || error_ == EWOULDBLOCK; }

 private:
  int error_;
};

namespace detail {
inline timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}
inline sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}
}  // namespace detail

/// One blocking TCP connection to 127.0.0.1:PORT.
class TestClient {
 public:
  struct Options {
    /// SO_RCVTIMEO and SO_SNDTIMEO: the longest any single call blocks.
    std::chrono::milliseconds timeout{5000};
    /// SO_RCVBUF / SO_SNDBUF, set before connect (0: the kernel's default). A
    /// small receive buffer set before connect also keeps the advertised window small.
    int receiveBuffer = 0;
    int sendBuffer = 0;
  };

  /// Connects to 127.0.0.1:@p port; throws IoError on failure.
  static TestClient connect(std::uint16_t port, Options options) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw IoError("socket", errno);
    TestClient c(fd);
    if (options.receiveBuffer > 0) c.setIntOption(SOL_SOCKET, SO_RCVBUF, options.receiveBuffer);
    if (options.sendBuffer > 0) c.setIntOption(SOL_SOCKET, SO_SNDBUF, options.sendBuffer);
    c.setTimeout(options.timeout);
    sockaddr_in a = detail::loopback(port);
    while (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (errno == EINTR) continue;
      throw IoError("connect to 127.0.0.1:" + std::to_string(port), errno);
    }
    return c;
  }
  static TestClient connect(std::uint16_t port) { return connect(port, Options{}); }

  TestClient(TestClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TestClient& operator=(TestClient&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;
  ~TestClient() { close(); }

  int fd() const { return fd_; }

  /// Sets both SO_RCVTIMEO and SO_SNDTIMEO.
  void setTimeout(std::chrono::milliseconds timeout) {
    setReceiveTimeout(timeout);
    setSendTimeout(timeout);
  }
  void setReceiveTimeout(std::chrono::milliseconds timeout) { setTimeval(SO_RCVTIMEO, timeout); }
  void setSendTimeout(std::chrono::milliseconds timeout) { setTimeval(SO_SNDTIMEO, timeout); }

  void setIntOption(int level, int name, int value) {
    if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) throw IoError("setsockopt", errno);
  }

  /// One send(2) (MSG_NOSIGNAL): bytes sent, or -1 with errno set (EAGAIN: timed out).
  ssize_t sendSome(const void* data, std::size_t size) {
    for (;;) {
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }

  /// One recv(2): bytes received, 0 on EOF, or -1 with errno set (EAGAIN: timed out).
  ssize_t recvSome(void* data, std::size_t size) {
    for (;;) {
      ssize_t n = ::recv(fd_, data, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }

  /// Sends all of @p data; throws IoError on error or when one send times out.
  void sendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = sendSome(data.data(), data.size());
      if (n < 0) throw IoError("send", errno);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Receives exactly @p size bytes; throws IoError on error, timeout or early EOF.
  std::string recvExactly(std::size_t size) {
    std::string out(size, '\0');
    std::size_t got = 0;
    while (got < size) {
      ssize_t n = recvSome(out.data() + got, size - got);
      if (n < 0) throw IoError("recv (" + std::to_string(got) + " of " + std::to_string(size) + " bytes)", errno);
      if (n == 0) throw IoError("recv (" + std::to_string(got) + " of " + std::to_string(size) + " bytes)", 0);
      got += static_cast<std::size_t>(n);
    }
    return out;
  }

  /// Sends @p message and receives as many bytes back (an echo round trip).
  std::string roundTrip(std::string_view message) {
    sendAll(message);
    return recvExactly(message.size());
  }

  /// Reads until EOF and returns everything read; throws IoError on error or timeout.
  std::string readUntilEof() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = recvSome(buf, sizeof buf);
      if (n < 0) throw IoError("recv (" + std::to_string(out.size()) + " bytes before)", errno);
      if (n == 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

  /// How a connection ended, as seen by waitClosed.
  enum class Close { Eof, Reset, Timeout, Error };
  struct Closed {
    Close how = Close::Timeout;
    int error = 0;     ///< errno for Reset/Error/Timeout
    std::string data;  ///< bytes read before the end
  };

  /// Reads (keeping the data) until EOF, an error such as ECONNRESET, or a
  /// receive timeout; never throws for those.
  Closed waitClosed() {
    Closed c;
    char buf[65536];
    for (;;) {
      ssize_t n = recvSome(buf, sizeof buf);
      if (n > 0) {
        c.data.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        c.how = Close::Eof;
        return c;
      }
      c.error = errno;
      c.how = errno == EAGAIN || errno == EWOULDBLOCK ? Close::Timeout
              : errno == ECONNRESET || errno == EPIPE ? Close::Reset
                                                      : Close::Error;
      return c;
    }
  }

  /// shutdown(SHUT_WR): the peer reads EOF; this side can still read.
  void shutdownWrite() {
    if (::shutdown(fd_, SHUT_WR) != 0) throw IoError("shutdown", errno);
  }

  void close() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  explicit TestClient(int fd) : fd_(fd) {}
  void setTimeval(int name, std::chrono::milliseconds timeout) {
    timeval tv = detail::toTimeval(timeout);
    if (::setsockopt(fd_, SOL_SOCKET, name, &tv, sizeof tv) != 0) throw IoError("setsockopt", errno);
  }
  int fd_ = -1;
};

/// A listening socket of the test itself on 127.0.0.1.
class LocalListener {
 public:
  struct Options {
    std::uint16_t port = 0;  ///< 0: the kernel picks
    bool reuseAddr = false;  ///< SO_REUSEADDR
    bool reusePort = false;  ///< SO_REUSEPORT (lets another socket with it co-bind)
    bool listen = true;      ///< false: bind only
  };

  /// Binds (and listens); throws IoError on failure, e.g. EADDRINUSE.
  explicit LocalListener(Options options) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw IoError("socket", errno);
    int one = 1;
    if (options.reuseAddr) ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (options.reusePort) ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in a = detail::loopback(options.port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("bind 127.0.0.1:" + std::to_string(options.port));
    if (options.listen && ::listen(fd_, 16) != 0) fail("listen");
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) fail("getsockname");
    port_ = ntohs(a.sin_port);
  }
  LocalListener() : LocalListener(Options{}) {}
  LocalListener(const LocalListener&) = delete;
  LocalListener& operator=(const LocalListener&) = delete;
  ~LocalListener() { close(); }

  std::uint16_t port() const { return port_; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

  /// True when 127.0.0.1:@p port can be bound and listened on right now (no SO_REUSE*).
  static bool canListenOn(std::uint16_t port) {
    try {
      LocalListener probe(Options{port, false, false, true});
      return true;
    } catch (const IoError&) {
      return false;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    int e = errno;
    close();
    throw IoError(what, e);
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

/// Deterministic pseudo-random byte stream (splitmix64 per 8-byte block):
/// byte i of stream @p seed can be computed at any offset, so a sender and a
/// checker of a multi-megabyte transfer need not keep the data in memory.
class PatternStream {
 public:
  explicit PatternStream(std::uint64_t seed) : seed_(seed) {}

  /// Writes bytes [offset, offset + size) of the stream to @p out.
  void fill(std::uint64_t offset, char* out, std::size_t size) const {
    std::size_t i = 0;
    while (i < size) {
      std::uint64_t pos = offset + i;
      std::uint64_t word = block(pos / 8);
      for (unsigned b = static_cast<unsigned>(pos % 8); b < 8 && i < size; ++b, ++i)
        out[i] = static_cast<char>(static_cast<unsigned char>(word >> (8 * b)));
    }
  }

  std::string bytes(std::uint64_t offset, std::size_t size) const {
    std::string s(size, '\0');
    fill(offset, s.data(), size);
    return s;
  }

  /// Index in @p data of the first byte that differs from the stream at
  /// @p offset, or std::string_view::npos when all match.
  std::size_t mismatch(std::uint64_t offset, std::string_view data) const {
    char expected[4096];
    for (std::size_t done = 0; done < data.size();) {
      std::size_t n = std::min(sizeof expected, data.size() - done);
      fill(offset + done, expected, n);
      if (std::memcmp(expected, data.data() + done, n) != 0)
        for (std::size_t k = 0; k < n; ++k)
          if (expected[k] != data[done + k]) return done + k;
      done += n;
    }
    return std::string_view::npos;
  }

 private:
  std::uint64_t block(std::uint64_t index) const {
    std::uint64_t z = seed_ * 0xD1B54A32D192ED03ull + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t seed_;
};

}  // namespace protohost::e2e
