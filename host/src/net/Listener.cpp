#include "net/Listener.h"

#include <sys/epoll.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "net/BindSocket.h"
#include "net/Connection.h"
#include "net/ConnectionSet.h"
#include "net/PlainSocket.h"
#include "net/TlsSocket.h"
#include "reactor/EventLoop.h"
#include "base/Log.h"

namespace protohost::host {
namespace {

constexpr int kMaxAcceptsPerEvent = 64;
// After EMFILE/ENFILE: stop accepting for a while instead of spinning. The pause
// starts short (fds often free up within milliseconds, e.g. when a burst of
// clients leaves) and doubles while the condition lasts, up to nginx's 500 ms.
constexpr auto kFirstBackOff = std::chrono::milliseconds(25);
constexpr auto kMaxBackOff = std::chrono::milliseconds(500);

// Closes the fd unless released: a connection posted to a reactor that stops
// before running it must not leak its socket.
struct OwnedFd {
  explicit OwnedFd(int f) : fd(f) {}
  OwnedFd(OwnedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  OwnedFd(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
  int fd;
};

// Called on the connection's own loop. @p tls: the ssl: listener's context (null: plain TCP).
void adoptConnection(ConnectionSet& set, const std::shared_ptr<ConnectionOwner>& runtime,
                     const std::shared_ptr<TlsServerContext>& tls, int fd, std::string ip, const sockaddr_storage& peer) {
  std::unique_ptr<SocketLayer> socket;
  if (tls) {
    SSL* ssl = tls->newSession();
    if (!ssl) {  // out of memory: refuse this one as the kernel would
      closeWithReset(fd);
      runtime->release(ip);
      return;
    }
    socket = std::make_unique<TlsSocket>(fd, ssl, tls->ktls());
  } else {
    socket = std::make_unique<PlainSocket>(fd);
  }
  auto connection = std::make_shared<Connection>(set, runtime, std::move(socket), std::move(ip), peer);
  set.add(connection);
  connection->open();
}

std::string ipOf(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  return buf;
}

}  // namespace

Listener::Listener(std::shared_ptr<ConnectionOwner> runtime, Endpoint endpoint, EventLoop& acceptLoop,
                   std::vector<EventLoop*> loops)
    : runtime_(std::move(runtime)),
      endpoint_(std::move(endpoint)),
      acceptLoop_(acceptLoop),
      loops_(std::move(loops)) {
  for (EventLoop* loop : loops_) sets_.push_back(&ConnectionSet::of(*loop));
}

Listener::~Listener() {
  if (accepting_) acceptLoop_.ioUpdate(fd_, this, EPOLLIN, 0);
  if (fd_ >= 0) ::close(fd_);
}

void Listener::bind(int retries) {
  for (int retry = 0;; ++retry) {
    const char* step = "";
    const int err = bindOnce(step);
    if (err == 0) return;
    std::string what = "cannot listen on " + endpoint_.toString() + ": " + step + ": " + std::strerror(err);
    if (err == EADDRINUSE && retry < retries) {
      Log::instance().write(LogLevel::Warning, "listener=" + runtime_->name,
                            what + "; retrying in " + std::to_string(kBindRetryInterval.count()) + " ms (retry " +
                                std::to_string(retry + 1) + " of " + std::to_string(retries) + ")");
      std::this_thread::sleep_for(kBindRetryInterval);  // nothing to wait on: the port's holder is another process
      continue;
    }
    if (err == EACCES && endpoint_.port < 1024)
      what += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; or use systemd socket activation)";
    throw std::runtime_error(what);
  }
}

int Listener::bindOnce(const char*& step) {
  int err = 0;
  const int fd = bindEndpoint(endpoint_, SOCK_STREAM, err, step);
  if (fd < 0) return err;
  if (::listen(fd, endpoint_.backlog) != 0) {
    err = errno;
    ::close(fd);
    step = "listen";
    return err;
  }
  useSocket(fd);
  return 0;
}

void Listener::adopt(int fd) {
  // A blocking listen socket would block the accept loop in accept4() once
  // the backlog is empty: refuse it rather than serve with it.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    throw std::runtime_error("socket from socket activation (fd " + std::to_string(fd) +
                             "): fcntl O_NONBLOCK: " + std::strerror(errno));
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  useSocket(fd);
}

void Listener::useSocket(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) endpoint_.port = ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
    if (ss.ss_family == AF_INET6) endpoint_.port = ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
  }
  fd_ = fd;
  bound_ = true;
}

void Listener::startAccepting() {
  if (accepting_ || !bound_) return;
  acceptLoop_.ioUpdate(fd_, this, 0, EPOLLIN);
  accepting_ = true;
}

void Listener::close() {
  if (backOffTimer_) acceptLoop_.cancel(std::exchange(backOffTimer_, 0));
  if (accepting_) {
    acceptLoop_.ioUpdate(fd_, this, EPOLLIN, 0);
    accepting_ = false;
  }
  if (bound_) {
    ::close(fd_);
    fd_ = -1;
    bound_ = false;
  }
}

void Listener::onIoEvent(std::uint32_t) {
  const int listenFd = fd_;
  for (int i = 0; i < kMaxAcceptsPerEvent && accepting_; ++i) {
    sockaddr_storage peer{};
    socklen_t peerLen = sizeof peer;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&peer), &peerLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      backOff_ = kFirstBackOff;
      runtime_->stats.accepted.fetch_add(1, std::memory_order_relaxed);
      std::string ip = runtime_->limits.maxConnectionsPerIp ? ipOf(peer) : std::string();
      Refusal refusal = runtime_->admit(ip);
      if (refusal != Refusal::None) {
        refuse(fd, refusal, peer);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      dispatch(fd, std::move(ip), peer);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    runtime_->stats.acceptErrors.fetch_add(1, std::memory_order_relaxed);
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      backOff(err);
      return;
    }
    Log::instance().write(LogLevel::Error, "listener=" + runtime_->name, std::string("accept failed: ") + std::strerror(err));
    return;
  }
}

void Listener::backOff(int err) {
  auto now = std::chrono::steady_clock::now();
  if (now - lastBackOffLog_ >= std::chrono::seconds(1)) {
    lastBackOffLog_ = now;
    Log::instance().write(LogLevel::Error, "listener=" + runtime_->name,
                          std::string("accept failed: ") + std::strerror(err) + "; pausing accepts (" +
                              std::to_string(backOff_.count()) + " ms, doubling up to " +
                              std::to_string(kMaxBackOff.count()) + " ms while it lasts)");
  }
  acceptLoop_.ioUpdate(fd_, this, EPOLLIN, 0);
  accepting_ = false;
  auto pause = backOff_;
  backOff_ = std::min(backOff_ * 2, kMaxBackOff);
  backOffTimer_ = acceptLoop_.callLater(pause, [this] {
    backOffTimer_ = 0;
    startAccepting();
  });
}

void Listener::refuse(int fd, Refusal refusal, const sockaddr_storage& peer) {
  runtime_->stats.refused[static_cast<std::size_t>(refusal)].fetch_add(1, std::memory_order_relaxed);
  closeWithReset(fd);  // RST rather than FIN: the client learns at once
  auto now = std::chrono::steady_clock::now();
  ++refusedSinceLog_;
  if (now - lastRefusalLog_ >= std::chrono::seconds(1)) {
    Log::instance().write(LogLevel::Warning, "listener=" + runtime_->name + " peer=" + ipOf(peer),
                          std::string("connection refused: ") + refusalName(refusal) + " reached (" +
                              std::to_string(refusedSinceLog_) + " refused since last report)");
    lastRefusalLog_ = now;
    refusedSinceLog_ = 0;
  }
}

void Listener::dispatch(int fd, std::string ip, const sockaddr_storage& peer) {
  // Least-loaded reactor that is not stalled (watchdog); ties rotate so a burst spreads evenly.
  std::size_t best = nextLoop_ % loops_.size();
  auto better = [&](std::size_t i, std::size_t than) {
    bool si = loops_[i]->stalled(), st = loops_[than]->stalled();
    if (si != st) return !si;
    return sets_[i]->size() < sets_[than]->size();
  };
  for (std::size_t k = 1; k < loops_.size(); ++k) {
    std::size_t i = (nextLoop_ + k) % loops_.size();
    if (better(i, best)) best = i;
  }
  nextLoop_ = best + 1;
  EventLoop* target = loops_[best];
  ConnectionSet* set = sets_[best];
  if (target == &acceptLoop_) {
    adoptConnection(*set, runtime_, tls_, fd, std::move(ip), peer);
  } else {
    target->post([set, runtime = runtime_, tls = tls_, owned = std::make_shared<OwnedFd>(fd), ip = std::move(ip),
                  peer]() mutable { adoptConnection(*set, runtime, tls, owned->release(), std::move(ip), peer); });
  }
}

}  // namespace protohost::host
