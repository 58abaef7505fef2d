#pragma once
// One reactor thread: Poco's SocketReactor plus what it lacks in 1.11.0 —
// timers that fire also while the reactor is busy, cross-thread post() with a
// real wake-up (an eventfd in the poll set: SocketReactor::wakeUp() does not
// interrupt epoll_wait), "soon" work run after the current dispatch, and a
// connection set: connection sockets live in one level-triggered epoll set of
// the loop's own, registered with Poco's reactor as a single pollable fd.
// Poco 1.11 spends about 2,000 instructions (mutexes, a std::map per poll,
// NotificationCenter copies, dynamic_casts, allocations) on every event it
// dispatches; through the set, one Poco dispatch serves a whole batch of ready
// connections, each dispatched with a direct call. It also sidesteps bug #2966
// for connections: their interest is changed with EPOLL_CTL_MOD/DEL.
//
// Threading: run() on the loop's own thread; post(), stop() and wake() from
// any thread; everything else on the loop thread only.

#include <Poco/Net/SocketNotification.h>
#include <Poco/Net/SocketReactor.h>
#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "TimerQueue.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class Connection;
struct ListenerRuntime;

/// Receives readiness of one fd registered in an EventLoop's connection set.
class IoHandler {
 public:
  /// @p events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP bits. Loop thread.
  virtual void onIoEvent(std::uint32_t events) = 0;

 protected:
  ~IoHandler() = default;
};

class EventLoop final : public Poco::Net::SocketReactor, public protohost::Reactor {
 public:
  /// @param index position among the host's reactors (used in logs and thread names).
  /// @param name thread name, e.g. "reactor-0" or "acceptor".
  EventLoop(unsigned index, std::string name);
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  unsigned index() const { return index_; }

  /// Starts the loop thread. Thread: main.
  void startThread();
  /// Asks the loop to stop and joins its thread. Thread: any but the loop's.
  void stopAndJoin();
  /// True on this loop's thread.
  bool inLoopThread() const { return std::this_thread::get_id() == threadId_.load(); }

  // protohost::Reactor
  TimerId callLater(std::chrono::milliseconds delay, Callback fn) override;
  TimerId callEvery(std::chrono::milliseconds interval, Callback fn) override;
  bool cancel(TimerId id) override;
  Clock::time_point now() const override { return Clock::now(); }
  void post(Callback fn) override;
  TimerId watchReadable(int fd, Callback fn) override;
  bool unwatch(TimerId id) override;

  /// Runs @p fn on this thread after the current dispatch round (loop thread only).
  void runSoon(Callback fn);

  /// Posts @p fn and waits until it ran (or the loop is stopped). Thread: not the loop's.
  void runAndWait(Callback fn);

  /// Drops all pending timers and posted work without running them, so that no
  /// callback made by a plugin outlives the plugin's library. Thread: main, after stopAndJoin.
  void clearCallbacks();

  /// The connection set (see above). Loop thread only. @p events is
  /// EPOLLIN and/or EPOLLOUT; 0 removes the fd (a registered fd always reports
  /// EPOLLERR/EPOLLHUP, which would spin while its owner does not want to read).
  void ioUpdate(int fd, IoHandler* handler, std::uint32_t oldEvents, std::uint32_t newEvents);

  /// Closes a connection's socket gracefully (nginx's lingering close): sends
  /// FIN, then reads and discards what the peer still sends until its EOF or a
  /// deadline, and only then closes. Closing with unread input would make the
  /// kernel send RST and drop the output the peer has not received yet.
  /// Takes ownership of @p fd. Loop thread only.
  void lingerClose(int fd);
  /// Sockets in lingering close; any thread.
  std::size_t lingerCount() const { return lingerCount_.load(std::memory_order_relaxed); }

  /// Connections owned by this loop. Loop thread only.
  void addConnection(std::shared_ptr<Connection> connection);
  /// Releases the loop's reference after the current dispatch round.
  void removeConnectionSoon(Connection* connection);
  /// Asks the protocol of every connection whose listener runtime matches
  /// @p which to finish (drain, or its listener was removed). Loop thread only.
  void requestStopWhere(const std::function<bool(const ListenerRuntime&)>& which);
  /// Closes every connection with @p reason (host shutdown). Loop thread only.
  void closeAllConnections(const DisconnectReason& reason);
  /// Set by the watchdog while this loop is blocked: new connections go elsewhere.
  bool stalled() const { return stalled_.load(std::memory_order_relaxed); }
  void setStalled(bool s) { stalled_.store(s, std::memory_order_relaxed); }

  /// Connections currently owned by this loop; readable from any thread.
  std::size_t connectionCount() const { return connectionCount_.load(std::memory_order_relaxed); }

  /// Scratch space for one recv(): shared by all connections of this loop, so
  /// an idle connection owns no input buffer. Loop thread only.
  char* readBuffer() { return readBuffer_.get(); }
  static constexpr std::size_t kReadBufferSize = 64 * 1024;

 protected:
  void onTimeout() override;
  void onBusy() override;
  void onIdle() override;
  void onShutdown() override;

 private:
  void runHousekeeping();
  void sweepIdleConnections();
  void runGuarded(const char* what, Callback& fn);
  void armPollTimeout();
  void onWake(const Poco::AutoPtr<Poco::Net::ReadableNotification>& n);
  void onIoReady(const Poco::AutoPtr<Poco::Net::ReadableNotification>& n);
  void wake();

  unsigned index_;
  std::string name_;
  std::thread thread_;
  std::atomic<std::thread::id> threadId_{};
  int wakeFd_ = -1;
  Poco::Net::StreamSocket wakeSocket_;
  int ioFd_ = -1;  // the connection set's epoll fd
  Poco::Net::StreamSocket ioSocket_;
  TimerQueue timers_;
  std::vector<Callback> soon_;
  std::mutex postedMutex_;
  std::vector<Callback> posted_;
  bool wakePending_ = false;  // guarded by postedMutex_
  bool inHousekeeping_ = false;
  std::unique_ptr<char[]> readBuffer_{new char[kReadBufferSize]};
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  std::atomic<std::size_t> connectionCount_{0};
  TimerId idleSweepTimer_ = 0;
  std::atomic<bool> stalled_{false};
  struct FdWatch;
  struct Lingerer;
  void endLinger(Lingerer* l);
  std::unordered_map<Lingerer*, std::unique_ptr<Lingerer>> lingerers_;
  std::atomic<std::size_t> lingerCount_{0};
  std::unordered_map<TimerId, std::unique_ptr<FdWatch>> watches_;
  TimerId lastWatchId_ = 0;
};

}  // namespace protohost::host
