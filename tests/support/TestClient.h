#pragma once
/// @file TestClient.h
/// Blocking TCP test clients for end-to-end tests (see HostProcess.h).
///
/// Header-only, standard library + POSIX only. Loopback (127.0.0.1) only.
///
///  - TestClient: one connection with SO_RCVTIMEO/SO_SNDTIMEO, so no call
///    blocks forever: sendAll, recvExactly, readLine, readUntilEof,
///    waitClosed (also with a deadline). Options: receive/send buffer sizes,
///    a source address (127.0.0.x); start() connects without waiting;
///    resetClose() closes with a RST. Failures throw IoError, whose error()
///    is the errno (EAGAIN = timed out, 0 = the peer closed too early).
///  - LocalListener: a listening socket of the test's own (port-in-use tests,
///    reserving a port number).
///  - PatternStream: deterministic pseudo-random bytes computable at any
///    offset, so large transfers can be generated and checked in chunks.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
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

/// One TCP connection to 127.0.0.1:PORT, optionally from a chosen source
/// address. Blocking once connected (except after start()), with SO_RCVTIMEO
/// and SO_SNDTIMEO so that no call blocks forever.
///
/// Threads: one object is used by one thread at a time, except that one
/// thread may send (sendSome, sendAll) while another receives (recvSome,
/// recvExactly, readLine, waitClosed). Moving, close(), resetClose() and the
/// destructor need the object to themselves.
class TestClient {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    /// SO_RCVTIMEO and SO_SNDTIMEO: the longest any single call blocks; also
    /// how long connect() waits for the connection to be set up.
    std::chrono::milliseconds timeout{5000};
    /// SO_RCVBUF / SO_SNDBUF, set before connect (0: the kernel's default). A
    /// small receive buffer set before connect also keeps the advertised window small.
    int receiveBuffer = 0;
    int sendBuffer = 0;
    /// Bind to this IPv4 address (e.g. "127.0.0.2") before connecting; "": the kernel chooses.
    /// (The "= {}" lets Options{timeout, 0, 0} leave it out without a warning.)
    std::string source = {};
  };

  /// Connects to 127.0.0.1:@p port, waiting up to options.timeout for the
  /// connection to be set up; throws IoError on failure (ETIMEDOUT when it
  /// took too long; ECONNRESET when the peer reset it before it was reported).
  static TestClient connect(std::uint16_t port, const Options& options) {
    TestClient c = start(port, options);
    pollfd p{c.fd_, POLLOUT, 0};
    int n;
    while ((n = ::poll(&p, 1, static_cast<int>(options.timeout.count()))) < 0 && errno == EINTR) {
    }
    if (n == 0) throw IoError("connect to 127.0.0.1:" + std::to_string(port), ETIMEDOUT);
    if (int err = c.socketError()) throw IoError("connect to 127.0.0.1:" + std::to_string(port), err);
    c.setBlocking(true);
    return c;
  }
  static TestClient connect(std::uint16_t port) { return connect(port, Options{}); }

  /// Starts a non-blocking connect and returns at once; the socket stays
  /// non-blocking (see setBlocking, socketError). Throws IoError only when the
  /// connect fails immediately.
  static TestClient start(std::uint16_t port, const Options& options) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw IoError("socket", errno);
    TestClient c(fd);
    if (options.receiveBuffer > 0) c.setIntOption(SOL_SOCKET, SO_RCVBUF, options.receiveBuffer);
    if (options.sendBuffer > 0) c.setIntOption(SOL_SOCKET, SO_SNDBUF, options.sendBuffer);
    c.setTimeout(options.timeout);
    if (!options.source.empty()) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      ::inet_pton(AF_INET, options.source.c_str(), &src.sin_addr);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
        throw IoError("bind " + options.source, errno);
    }
    sockaddr_in a = detail::loopback(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)
      throw IoError("connect to 127.0.0.1:" + std::to_string(port), errno);
    return c;
  }

  TestClient(TestClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)), buffered_(std::move(o.buffered_)) {}
  TestClient& operator=(TestClient&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
      buffered_ = std::move(o.buffered_);
    }
    return *this;
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;
  ~TestClient() { close(); }

  int fd() const { return fd_; }

  /// SO_ERROR: the socket's pending error (0: none); reading it clears it.
  int socketError() const {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    return err;
  }

  /// Sets or clears O_NONBLOCK (connect() leaves the socket blocking, start() non-blocking).
  void setBlocking(bool blocking) {
    int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
  }

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
  /// Does not see what readLine read ahead.
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
  /// Does not see what readLine read ahead.
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

  /// Reads one line ending in '\n' and returns it without "\r\n" / "\n";
  /// throws IoError on error, timeout or EOF. Bytes read past the line are
  /// kept for the next readLine and for waitClosed (recvSome and recvExactly
  /// do not see them).
  std::string readLine() {
    for (;;) {
      if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      char buf[4096];
      ssize_t n = recvSome(buf, sizeof buf);
      if (n <= 0) throw IoError("recv line", n == 0 ? 0 : errno);
      buffered_.append(buf, static_cast<std::size_t>(n));
    }
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
    int error = 0;     ///< errno for Reset/Error, and for Timeout without a deadline (EAGAIN)
    std::string data;  ///< bytes read before the end (readLine's read-ahead first)
    long long ms = 0;  ///< how long waitClosed waited
  };

  /// Reads (keeping the data) until EOF, an error such as ECONNRESET, or a
  /// receive timeout (SO_RCVTIMEO, counted per recv); never throws for those.
  Closed waitClosed() { return waitClosedUntil(std::nullopt); }

  /// The same, but ends with Close::Timeout once @p timeout has passed in all,
  /// however the data trickles in.
  Closed waitClosed(std::chrono::milliseconds timeout) { return waitClosedUntil(Clock::now() + timeout); }

  /// shutdown(SHUT_WR): the peer reads EOF; this side can still read.
  void shutdownWrite() {
    if (::shutdown(fd_, SHUT_WR) != 0) throw IoError("shutdown", errno);
  }

  /// Closes with SO_LINGER {1, 0}: the peer gets a RST instead of a FIN.
  void resetClose() {
    if (fd_ < 0) return;
    linger lg{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close();
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

  // waitClosed: without a deadline, blocking recv bounded by SO_RCVTIMEO;
  // with one, poll until the deadline and non-blocking recv.
  Closed waitClosedUntil(std::optional<Clock::time_point> deadline) {
    Closed c;
    c.data = std::exchange(buffered_, {});
    const auto begin = Clock::now();
    auto end = [&](Close how, int error) {
      c.how = how;
      c.error = error;
      c.ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin).count();
      return std::move(c);
    };
    char buf[65536];
    for (;;) {
      int flags = 0;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
        if (left <= 0) return end(Close::Timeout, 0);
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return end(Close::Timeout, 0);
        flags = MSG_DONTWAIT;
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, flags);
      if (n > 0) {
        c.data.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return end(Close::Eof, 0);
      const int e = errno;
      if (e == EINTR || (deadline && (e == EAGAIN || e == EWOULDBLOCK))) continue;
      return end(e == EAGAIN || e == EWOULDBLOCK ? Close::Timeout
                 : e == ECONNRESET || e == EPIPE ? Close::Reset
                                                 : Close::Error,
                 e);
    }
  }

  int fd_ = -1;
  std::string buffered_;  // what readLine read past its line
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
