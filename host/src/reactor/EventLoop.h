#pragma once
// One reactor thread: a direct epoll loop with timers that fire also while
// the loop is busy (a timerfd), cross-thread post() with a real wake-up (an
// eventfd), "soon" work run after the current dispatch, and per-loop services
// of the layers above (net/ConnectionSet), which it owns but does not know.
//
// Every fd the loop serves — connections, listeners, plugin fd watches, the
// wake eventfd and the timerfd — is in one level-triggered epoll set of the
// loop's own, dispatched with one direct call per event; its interest is
// changed with EPOLL_CTL_MOD/DEL. (The host once ran Poco 1.11's SocketReactor
// here: ~2,000 instructions per poll round, 25 times an epoll echo's cost per
// message; see docs/performance.md.)
//
// Threading: run() on the loop's own thread; post(), stopAndJoin() and wake()
// from any thread; everything else on the loop thread only.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "base/PluginCall.h"
#include "reactor/TimerQueue.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class WorkerPool;

/// Receives readiness of one fd registered in an EventLoop's epoll set.
class IoHandler {
 public:
  /// @p events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP bits. Loop thread.
  virtual void onIoEvent(std::uint32_t events) = 0;

 protected:
  ~IoHandler() = default;
};

/// An object of a layer above the reactor kept once per loop (Asio's
/// execution_context services): the loop makes it on first use, owns it and
/// destroys it before its own fds, and knows nothing else of it.
class LoopService {
 public:
  virtual ~LoopService() = default;
};

class EventLoop final : public protohost::Reactor {
 public:
  /// @param index position among the host's reactors (used in logs and thread names).
  /// @param name thread name, e.g. "reactor-0" or "acceptor".
  EventLoop(unsigned index, std::string name);
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  unsigned index() const { return index_; }

  /// Starts the loop thread, which runs run(). Thread: main.
  void startThread();
  /// The loop: waits on the epoll set (no longer than the next timer), calls
  /// the ready handlers, then runs posted work, due timers and soon work.
  /// Returns once stopAndJoin() was called. Thread: the loop's own.
  void run();
  /// Asks the loop to stop and joins its thread. Thread: any but the loop's.
  void stopAndJoin();
  /// True on this loop's thread.
  bool inLoopThread() const { return std::this_thread::get_id() == threadId_.load(); }

  // protohost::Reactor
  TimerId callLater(std::chrono::milliseconds delay, Callback fn) override;
  TimerId callEvery(std::chrono::milliseconds interval, Callback fn) override;
  bool cancel(TimerId id) override;
  Clock::time_point now() const override { return Clock::now(); }
  void post(Callback fn) override { tryPost(std::move(fn)); }
  /// post() that says whether @p fn was queued: false (and @p fn destroyed on
  /// return) once the loop has exited. Thread: any.
  bool tryPost(Callback fn);
  /// A reference to this loop that is safe to keep beyond its lifetime (for
  /// handles held by other threads): posts while the loop exists and runs.
  class Gate {
   public:
    /// tryPost on the loop, or false once it is destroyed. Thread: any.
    bool post(Callback fn);

   private:
    friend class EventLoop;
    std::mutex mutex_;
    EventLoop* loop_ = nullptr;
  };
  /// This loop's gate; the loop detaches it in its destructor. Thread: any.
  const std::shared_ptr<Gate>& gate() const { return gate_; }
  /// Calls @p fn on any event of @p fd (EPOLLIN interest; also on EPOLLERR/EPOLLHUP).
  WatchId watchReadable(int fd, Callback fn) override;
  bool unwatch(WatchId id) override;
  /// Level-triggered: while @p fd is ready for @p interest. FdInterest::None
  /// takes the fd out of the epoll set (EPOLLERR/EPOLLHUP would report it in
  /// every round) and keeps the watch. One watch per fd: a second fails.
  WatchId watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) override;
  /// EPOLL_CTL_MOD (ADD/DEL to and from None) in place; the callback stays.
  bool modifyWatch(WatchId id, FdInterest interest) override;
  // The loop itself connects nothing and runs no work: TrackedReactor does, for plugin code.
  ConnectId connect(std::string_view, std::unique_ptr<Protocol>, std::function<void(const ConnectError&)>) override {
    return {};
  }
  bool cancelConnect(ConnectId) override { return false; }
  WorkStatus deferToThread(std::function<void()>, std::function<void(std::exception_ptr)>) override {
    return WorkStatus::ShuttingDown;
  }

  /// Runs @p fn on this thread after the current dispatch round (loop thread only).
  void runSoon(Callback fn);

  /// Posts @p fn and waits until it ran. Returns false, without waiting
  /// longer, when the loop exited (or its callbacks were cleared) before
  /// running it. Thread: not the loop's (it would wait for itself).
  bool runAndWait(Callback fn);

  /// Drops all pending timers and posted work without running them, so that no
  /// callback made by a plugin outlives the plugin's library. Thread: main, after stopAndJoin.
  void clearCallbacks();

  /// Registers, changes or removes @p fd in the loop's epoll set, its events
  /// going to @p handler. Loop thread only. @p events is
  /// EPOLLIN and/or EPOLLOUT; 0 removes the fd (a registered fd always reports
  /// EPOLLERR/EPOLLHUP, which would spin while its owner does not want to read).
  void ioUpdate(int fd, IoHandler* handler, std::uint32_t oldEvents, std::uint32_t newEvents);

  /// This loop's @p T (a LoopService constructible from EventLoop&), made on
  /// the first call. Any thread (a mutex; callers keep the reference).
  template <class T>
  T& service() {
    std::lock_guard<std::mutex> lock(servicesMutex_);
    for (auto& [type, s] : services_)
      if (type == std::type_index(typeid(T))) return static_cast<T&>(*s);
    services_.emplace_back(std::type_index(typeid(T)), std::make_unique<T>(*this));
    return static_cast<T&>(*services_.back().second);
  }
  /// Set by the watchdog while this loop is blocked: new connections go elsewhere.
  bool stalled() const { return stalled_.load(std::memory_order_relaxed); }
  void setStalled(bool s) { stalled_.store(s, std::memory_order_relaxed); }

  /// Whose plugin code this loop's thread runs at this moment, or null
  /// (PluginCallScope marks every such call). Any thread: says which listener
  /// blocks a reactor when a stop does not finish in time (the layer that
  /// knows listeners casts it back). Only the pointer is read: its owner
  /// outlives the call.
  const PluginCodeTag* runningPlugin() const { return runningPlugin_.load(std::memory_order_acquire); }
  /// The thread name, e.g. "reactor-0" or "acceptor".
  const std::string& name() const { return name_; }

  /// The host's worker pool for deferToThread (TrackedReactor), or null when
  /// there is none. Set by the Server before any plugin code runs; the pool
  /// stops before the loop goes. Thread: set on main, read on any.
  void setWorkerPool(WorkerPool* pool) { workerPool_ = pool; }
  WorkerPool* workerPool() const { return workerPool_; }

  /// Scratch space for one recv(): shared by all sockets of this loop, so an
  /// idle connection owns no input buffer. Loop thread only.
  char* readBuffer() { return readBuffer_.get(); }
  static constexpr std::size_t kReadBufferSize = 64 * 1024;

 private:
  void runHousekeeping();
  void runGuarded(const char* what, Callback& fn);
  /// Programs the timerfd to fire at @p due (time_point::max(): disarmed); on
  /// failure logs an error and leaves it disarmed (timerFdFailed_).
  void armTimerFd(Clock::time_point due);
  /// Keeps the timerfd at the earliest deadline when a timer is added.
  void timerAdded(Clock::time_point due);
  void wake();

  unsigned index_;
  std::string name_;
  std::thread thread_;
  std::atomic<std::thread::id> threadId_{};
  int wakeFd_ = -1;
  int ioFd_ = -1;  // the loop's epoll set
  int timerFd_ = -1;  // fires at the earliest timer's deadline
  struct Waker;
  std::unique_ptr<Waker> waker_;       // wakeFd_'s handler in the set
  std::unique_ptr<Waker> timerWaker_;  // timerFd_'s handler: sets timersDue_
  bool timersDue_ = false;              // the timerfd fired in this round
  // runHousekeeping() has work after this round: soon work, a fired timerfd,
  // or a wake (posted work; every post() whose work is not yet taken is
  // followed by a wake, see post()). One flag, so a busy round tests one byte.
  bool housekeepingDue_ = false;
  bool rearmAfterHousekeeping_ = false;  // timers ran or were added during housekeeping
  Clock::time_point armedDue_ = Clock::time_point::max();  // what timerFd_ is set to
  bool timerFdFailed_ = false;  // the last timerfd_settime failed: the next added timer retries
  std::atomic<bool> stopping_{false};
  TimerQueue timers_;
  std::vector<Callback> soon_;
  std::mutex postedMutex_;
  std::vector<Callback> posted_;
  bool wakePending_ = false;  // guarded by postedMutex_
  bool exited_ = false;       // run() returned: post() drops work; guarded by postedMutex_
  std::atomic<bool> hasPosted_{false};  // posted_ is (probably) not empty: lets a round skip the mutex
  bool inHousekeeping_ = false;
  std::unique_ptr<char[]> readBuffer_{new char[kReadBufferSize]};
  std::atomic<bool> stalled_{false};
  std::atomic<const PluginCodeTag*> runningPlugin_{nullptr};
  WorkerPool* workerPool_ = nullptr;
  friend class PluginCallScope;
  struct FdWatch;
  std::unordered_map<WatchId, std::unique_ptr<FdWatch>, WatchId::Hash> watches_;
  std::unordered_map<int, WatchId> watchedFds_;  // one watch per fd (also while its interest is None)
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::uint64_t lastWatchId_ = 0;  // watches are numbered apart from timers (their own id type)
  std::mutex servicesMutex_;
  // Destroyed explicitly in ~EventLoop, in reverse order of making, while the epoll set is open.
  std::vector<std::pair<std::type_index, std::unique_ptr<LoopService>>> services_;
};

/// Marks a call into @p owner's plugin code on @p loop's thread for the
/// scope's lifetime (EventLoop::runningPlugin). Costs two stores and a load.
class PluginCallScope {
 public:
  PluginCallScope(EventLoop& loop, const PluginCodeTag* owner)
      : loop_(loop), outer_(loop.runningPlugin_.load(std::memory_order_relaxed)) {
    loop.runningPlugin_.store(owner, std::memory_order_release);
  }
  ~PluginCallScope() { loop_.runningPlugin_.store(outer_, std::memory_order_release); }
  PluginCallScope(const PluginCallScope&) = delete;
  PluginCallScope& operator=(const PluginCallScope&) = delete;

 private:
  EventLoop& loop_;
  const PluginCodeTag* outer_;
};

/// Runs @p fn (plugin code of @p owner) on @p loop's thread inside the
/// exception boundary, marked as that owner's code for the stop deadline.
/// The mark ends before this returns, so the caller handles a failure outside it.
template <class Fn>
std::optional<std::string> invokePluginCode(EventLoop& loop, const PluginCodeTag* owner, Fn&& fn) {
  PluginCallScope scope(loop, owner);
  return invokeGuarded(std::forward<Fn>(fn));
}

}  // namespace protohost::host
