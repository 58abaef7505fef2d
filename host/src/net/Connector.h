#pragma once
// One outbound TCP connect in progress: resolves the endpoint's host (a
// literal address skips resolution), then tries each address in turn with a
// non-blocking connect(), waiting for EPOLLOUT and reading SO_ERROR, all
// within the endpoint's timeout. Reports exactly once, through Connected (with
// the connected socket, which the callee then owns) or Failed, unless
// cancel() came first; then it reports nothing.
//
// Ownership: held in a shared_ptr by whoever started it; its timer and the
// resolution hold only weak references. Its fd is in the loop's epoll set
// while it waits: release the last reference after the loop's dispatch round
// (EventLoop::runSoon), as connections are, so a readiness already fetched
// for it in this round finds it alive (and done). Threading: its loop's thread.

#include <functional>
#include <memory>
#include <vector>

#include "net/ConnectEndpoint.h"
#include "net/Resolver.h"
#include "reactor/EventLoop.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class Connector final : public IoHandler, public std::enable_shared_from_this<Connector> {
 public:
  /// @p fd: connected, non-blocking, close-on-exec, TCP_NODELAY; the callee owns it.
  /// @p registered: the epoll events @p fd is still registered with in the
  /// loop, with this connector as handler (0: none). The callee must take the
  /// registration over (EPOLL_CTL_MOD to its own handler) or close @p fd
  /// before the loop polls again.
  using Connected = std::function<void(int fd, const SocketAddress& peer, std::uint32_t registered)>;
  using Failed = std::function<void(const ConnectError& error)>;

  /// @p resolve: how a name is turned into addresses (Resolver::resolve's contract).
  Connector(EventLoop& loop, ConnectEndpoint endpoint, Resolver::Defer defer, Connected connected, Failed failed,
            Resolver::Function resolve = Resolver::resolve);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  /// Starts the deadline and the resolution (or the first connect). A callback
  /// may run before this returns: call it from a deferred context (runSoon),
  /// not from inside the plugin's Reactor::connect.
  void start();
  /// Stops whatever is in progress and closes the socket; no callback runs.
  void cancel();
  /// True once it reported or was cancelled.
  bool done() const { return done_; }
  const ConnectEndpoint& endpoint() const { return endpoint_; }

 private:
  void onIoEvent(std::uint32_t events) override;
  void resolved(Resolver::Result result);
  /// Tries addresses_[next_...] until one is in progress or connected.
  void tryNext();
  /// Closes the current attempt's socket (unregistered first).
  void closeAttempt();
  void succeed();
  void fail(ConnectError error);
  /// Records @p err for the address just tried (the reason reported when all fail).
  void attemptFailed(int err);

  EventLoop& loop_;
  ConnectEndpoint endpoint_;
  Resolver::Defer defer_;
  Resolver::Function resolve_;
  Connected connected_;
  Failed failed_;
  std::vector<SocketAddress> addresses_;
  std::size_t next_ = 0;
  int fd_ = -1;
  bool registered_ = false;
  TimerId deadline_ = 0;
  bool done_ = false;
  ConnectError lastError_{ConnectError::Kind::Error, "no address tried"};
};

}  // namespace protohost::host
