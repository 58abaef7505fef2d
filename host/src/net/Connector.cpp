#include "net/Connector.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace protohost::host {

Connector::Connector(EventLoop& loop, ConnectEndpoint endpoint, Resolver::Defer defer, Connected connected,
                     Failed failed, Resolver::Function resolve)
    : loop_(loop),
      endpoint_(std::move(endpoint)),
      defer_(std::move(defer)),
      resolve_(std::move(resolve)),
      connected_(std::move(connected)),
      failed_(std::move(failed)) {}

Connector::~Connector() {
  if (deadline_) loop_.cancel(deadline_);
  closeAttempt();
}

void Connector::start() {
  const auto timeout = endpoint_.timeout;
  deadline_ = loop_.callLater(timeout, [weak = weak_from_this(), timeout] {
    auto self = weak.lock();
    if (!self || self->done_) return;
    self->deadline_ = 0;
    self->fail({ConnectError::Kind::Timeout,
                self->endpoint_.toString() + ": no connection within " + std::to_string(timeout.count()) + " ms"});
  });
  if (endpoint_.numericFamily) {
    resolved({{Resolver::numeric(endpoint_.host, endpoint_.numericFamily, endpoint_.port)}, {}});
    return;
  }
  resolve_(endpoint_.host, endpoint_.port, defer_, [weak = weak_from_this()](Resolver::Result result) {
    if (auto self = weak.lock(); self && !self->done_) self->resolved(std::move(result));
  });
}

void Connector::cancel() {
  done_ = true;
  if (deadline_) loop_.cancel(std::exchange(deadline_, 0));
  closeAttempt();
  connected_ = nullptr;
  failed_ = nullptr;
}

void Connector::resolved(Resolver::Result result) {
  if (result.addresses.empty()) {
    fail(std::move(result.error));
    return;
  }
  addresses_ = std::move(result.addresses);
  next_ = 0;
  tryNext();
}

void Connector::tryNext() {
  while (!done_ && next_ < addresses_.size()) {
    const SocketAddress& a = addresses_[next_];
    fd_ = ::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      attemptFailed(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc;
    do rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
    while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      succeed();
      return;
    }
    if (errno != EINPROGRESS) {
      attemptFailed(errno);
      continue;
    }
    try {
      loop_.ioUpdate(fd_, this, 0, EPOLLOUT);
      registered_ = true;
      return;  // onIoEvent goes on
    } catch (const std::system_error& e) {
      attemptFailed(e.code().value());
    }
  }
  if (!done_) fail(lastError_);
}

void Connector::onIoEvent(std::uint32_t) {
  if (done_ || fd_ < 0) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  auto keep = shared_from_this();  // a callback may drop the last other reference
  if (err == 0) {
    succeed();
    return;
  }
  attemptFailed(err);
  tryNext();
}

void Connector::attemptFailed(int err) {
  const SocketAddress& a = addresses_[next_];
  const std::string where = a.toString() + ": " + std::strerror(err);
  if (err == ECONNREFUSED) lastError_ = {ConnectError::Kind::Refused, where};
  else if (err == ETIMEDOUT) lastError_ = {ConnectError::Kind::Timeout, where};
  else lastError_ = {ConnectError::Kind::Error, where};
  closeAttempt();
  ++next_;
}

void Connector::closeAttempt() {
  if (fd_ < 0) return;
  if (registered_) loop_.ioUpdate(fd_, this, EPOLLOUT, 0);
  registered_ = false;
  ::close(std::exchange(fd_, -1));
}

void Connector::succeed() {
  done_ = true;
  if (deadline_) loop_.cancel(std::exchange(deadline_, 0));
  // The registration goes to the connection as it is (one MOD there, not a DEL here and an ADD there).
  const std::uint32_t registered = registered_ ? std::uint32_t{EPOLLOUT} : 0u;
  registered_ = false;
  const int fd = std::exchange(fd_, -1);
  const SocketAddress peer = addresses_[next_];
  auto fn = std::exchange(connected_, nullptr);
  failed_ = nullptr;
  fn(fd, peer, registered);
}

void Connector::fail(ConnectError error) {
  done_ = true;
  if (deadline_) loop_.cancel(std::exchange(deadline_, 0));
  closeAttempt();
  auto fn = std::exchange(failed_, nullptr);
  connected_ = nullptr;
  if (fn) fn(error);
}

}  // namespace protohost::host
