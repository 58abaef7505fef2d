#pragma once
// The Reactor lent to plugin code: by a Connection to its protocol, by the
// Server to a listener's factory. It forwards to one EventLoop, runs every
// callback it is given through its owner's exception boundary, and keeps the
// ids of the timers and fd watches made through it; connect() and
// cancelConnect() go to an OutboundService made by the owner's OutboundProvider. cancel() and unwatch()
// act only on those: an id it did not hand out (a connection's PROXY deadline,
// the idle sweep, another plugin's timer) is refused. cancelAll() drops what
// is left when the owner ends and closes its outbound connections; from then
// on nothing new is scheduled or connected. deferToThread hands work to the
// loop's WorkerPool; its done runs back on the loop, through the guard, only
// while the owner has not ended.
//
// Ownership: held by its owner, which calls cancelAll() before the plugin's
// code may go away. Threading: the loop's thread (cancelAll also from main
// once the loop has stopped).

#include <chrono>
#include <functional>
#include <memory>
#include <unordered_set>

#include "reactor/EventLoop.h"
#include "reactor/OutboundService.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class TrackedReactor final : public Reactor {
 public:
  /// Wraps a plugin callback for the loop: the result runs @p fn inside the
  /// owner's exception boundary, and not at all once the owner is gone (posted
  /// work is not tracked, so it may run after the owner ended).
  using Guard = std::function<Callback(Callback fn)>;

  /// @p code: what keeps the owner's plugin code mapped (for a connection or
  /// a factory, its ListenerRuntime); deferToThread's work holds it until
  /// its done has run or been dropped, so the library stays while it runs.
  TrackedReactor(EventLoop& loop, Guard guard, std::weak_ptr<const void> code = {})
      : loop_(loop), guard_(std::move(guard)), code_(std::move(code)) {}
  TrackedReactor(const TrackedReactor&) = delete;
  TrackedReactor& operator=(const TrackedReactor&) = delete;

  TimerId callLater(std::chrono::milliseconds delay, Callback fn) override;
  TimerId callEvery(std::chrono::milliseconds interval, Callback fn) override;
  /// False for an id this reactor did not hand out, or that already ran.
  bool cancel(TimerId id) override;
  Clock::time_point now() const override { return loop_.now(); }
  void post(Callback fn) override { loop_.post(guard_(std::move(fn))); }
  WatchId watchReadable(int fd, Callback fn) override;
  /// False for an id this reactor did not hand out.
  bool unwatch(WatchId id) override;
  /// The callback runs through the guard, with the events of its firing.
  WatchId watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) override;
  /// False for an id this reactor did not hand out.
  bool modifyWatch(WatchId id, FdInterest interest) override;
  /// Reactor::connect, through the OutboundService (made on the first call);
  /// cancelAll() closes what it made. Without a provider (an owner that
  /// cannot connect out) onFailed gets Shutdown, later.
  ConnectId connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                    std::function<void(const ConnectError&)> onFailed) override;
  bool cancelConnect(ConnectId id) override { return outbound_ && outbound_->cancel(id); }
  /// Through loop().workerPool(): ShuttingDown when the loop has none (worker_threads = 0),
  /// the pool is stopping, or this reactor's owner ended.
  WorkStatus deferToThread(std::function<void()> work, std::function<void(std::exception_ptr)> done) override;

  /// Cancels every timer and watch still tracked, drops the connects in
  /// progress (no onFailed), closes the outbound connections (Shutdown) and
  /// destroys the OutboundService, and drops the done of work still on a
  /// worker. Only the first call does anything; later calls schedule nothing
  /// (callLater/callEvery return 0, watchReadable/watchFd an empty WatchId, connect an
  /// empty ConnectId, deferToThread ShuttingDown).
  void cancelAll();

  /// Names what makes the service connect() forwards to; it must outlive this
  /// reactor. Before plugin code may connect.
  void setOutboundProvider(OutboundProvider* provider) { provider_ = provider; }
  /// The owner's exception boundary (what every callback of this reactor runs in).
  const Guard& guard() const { return guard_; }

 private:
  EventLoop& loop_;
  Guard guard_;
  std::weak_ptr<const void> code_;
  // False once the owner ended: read by deferToThread's completions, which may outlive this object.
  std::shared_ptr<bool> live_ = std::make_shared<bool>(true);
  std::unordered_set<TimerId> timers_;
  std::unordered_set<WatchId, WatchId::Hash> watches_;
  bool ended_ = false;
  OutboundProvider* provider_ = nullptr;
  std::unique_ptr<OutboundService> outbound_;  // last: closed before the rest goes
};

}  // namespace protohost::host
