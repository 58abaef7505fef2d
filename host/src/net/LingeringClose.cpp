#include "net/LingeringClose.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace protohost::host {

struct LingeringClose::Lingerer final : IoHandler {
  Lingerer(LingeringClose& o, int f) : owner(o), fd(f) {}
  void onIoEvent(std::uint32_t) override {
    if (done) return;
    for (;;) {
      ssize_t n = ::recv(fd, owner.loop_.readBuffer(), EventLoop::kReadBufferSize, 0);
      if (n > 0) continue;  // discard
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      owner.end(this);  // EOF or error
      return;
    }
  }
  LingeringClose& owner;
  int fd;
  TimerId timer = 0;
  bool done = false;
};

LingeringClose::LingeringClose(EventLoop& loop, std::function<void()> onEnded)
    : loop_(loop), onEnded_(std::move(onEnded)) {}

LingeringClose::~LingeringClose() {
  for (auto& [raw, l] : lingerers_) {
    if (!l->done) {
      loop_.ioUpdate(l->fd, l.get(), EPOLLIN | EPOLLRDHUP, 0);
      ::close(l->fd);
    }
    if (l->timer) loop_.cancel(l->timer);
  }
}

void LingeringClose::close(int fd) {
  ::shutdown(fd, SHUT_WR);
  auto l = std::make_unique<Lingerer>(*this, fd);
  Lingerer* raw = l.get();
  loop_.ioUpdate(fd, raw, 0, EPOLLIN | EPOLLRDHUP);
  raw->timer = loop_.callLater(kTimeout, [this, raw] {
    raw->timer = 0;
    end(raw);
  });
  lingerers_.emplace(raw, std::move(l));
  count_.store(lingerers_.size(), std::memory_order_relaxed);
}

void LingeringClose::end(Lingerer* l) {
  if (l->done) return;
  l->done = true;
  loop_.ioUpdate(l->fd, l, EPOLLIN | EPOLLRDHUP, 0);
  ::close(l->fd);
  if (l->timer) loop_.cancel(std::exchange(l->timer, 0));
  auto it = lingerers_.find(l);
  if (it == lingerers_.end()) return;
  // Deferred: an event for it may still be in the batch being dispatched.
  loop_.runSoon([owned = std::shared_ptr<Lingerer>(std::move(it->second))] {});
  lingerers_.erase(it);
  count_.store(lingerers_.size(), std::memory_order_relaxed);
  if (onEnded_) onEnded_();
}

}  // namespace protohost::host
