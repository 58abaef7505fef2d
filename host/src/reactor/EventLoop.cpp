#include "reactor/EventLoop.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <system_error>

#include "base/Log.h"
#include "base/PluginCall.h"

namespace protohost::host {
// The eventfd (post, stop) and the timerfd (the earliest timer) in the epoll
// set: reading them is all; the housekeeping after the round does the work.
struct EventLoop::Waker final : IoHandler {
  Waker(EventLoop& l, int f, bool* flag) : loop(l), fd(f), fired(flag) {}
  void onIoEvent(std::uint32_t) override {
    std::uint64_t value;
    while (::read(fd, &value, sizeof value) > 0) {
    }
    if (fired) *fired = true;
    loop.housekeepingDue_ = true;
  }
  EventLoop& loop;
  int fd;
  bool* fired;
};

EventLoop::EventLoop(unsigned index, std::string name) : index_(index), name_(std::move(name)) {
  gate_->loop_ = this;
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  timerFd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);  // steady_clock's clock
  ioFd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (timerFd_ < 0 || ioFd_ < 0) {
    const int err = errno;
    for (int fd : {wakeFd_, timerFd_, ioFd_})
      if (fd >= 0) ::close(fd);
    throw std::system_error(err, std::generic_category(), "timerfd_create/epoll_create1");
  }
  waker_ = std::make_unique<Waker>(*this, wakeFd_, nullptr);
  ioUpdate(wakeFd_, waker_.get(), 0, EPOLLIN);
  timerWaker_ = std::make_unique<Waker>(*this, timerFd_, &timersDue_);
  ioUpdate(timerFd_, timerWaker_.get(), 0, EPOLLIN);
}

EventLoop::~EventLoop() {
  {
    std::lock_guard<std::mutex> lock(gate_->mutex_);
    gate_->loop_ = nullptr;  // handles held elsewhere post nothing from now on
  }
  if (thread_.joinable()) stopAndJoin();
  // The services (the connection set) go first, while the epoll set and the timers are there.
  while (!services_.empty()) services_.pop_back();
  ::close(ioFd_);
  ::close(timerFd_);
  ::close(wakeFd_);
}

void EventLoop::armTimerFd(Clock::time_point due) {
  if (due == armedDue_) return;
  armedDue_ = due;
  itimerspec spec{};
  if (due != Clock::time_point::max()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
    if (ns <= 0) ns = 1;  // 0 would disarm
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  if (::timerfd_settime(timerFd_, TFD_TIMER_ABSTIME, &spec, nullptr) == 0) {
    timerFdFailed_ = false;
    return;
  }
  // Not armed: this loop's timers (idle sweep, PROXY deadlines, plugins') would
  // silently never fire. Say so, and retry with the next timer that is added.
  const int err = errno;
  armedDue_ = Clock::time_point::max();
  timerFdFailed_ = true;
  Log::instance().write(LogLevel::Error, "thread=" + name_,
                        std::string("timerfd_settime: ") + std::strerror(err) +
                            "; this reactor's timers do not fire until a timer can be armed again");
}

void EventLoop::timerAdded(Clock::time_point due) {
  if (inHousekeeping_) rearmAfterHousekeeping_ = true;  // once the due timers ran
  else if (timerFdFailed_) armTimerFd(timers_.nextDue().value_or(due));  // the earliest, not just this one
  else if (due < armedDue_) armTimerFd(due);
}

void EventLoop::ioUpdate(int fd, IoHandler* handler, std::uint32_t oldEvents, std::uint32_t newEvents) {
  if (oldEvents == newEvents) return;
  epoll_event ev{};
  ev.events = newEvents;
  ev.data.ptr = handler;
  int op = newEvents == 0 ? EPOLL_CTL_DEL : oldEvents == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (::epoll_ctl(ioFd_, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
}

namespace {
std::uint32_t epollEventsFor(FdInterest interest) {
  const auto bits = static_cast<std::uint8_t>(interest);
  return ((bits & static_cast<std::uint8_t>(FdInterest::Read)) ? EPOLLIN : 0u) |
         ((bits & static_cast<std::uint8_t>(FdInterest::Write)) ? EPOLLOUT : 0u);
}
}  // namespace

struct EventLoop::FdWatch final : IoHandler {
  FdWatch(int f, std::function<void(FdEvents)> c) : fd(f), fn(std::move(c)) {}
  void onIoEvent(std::uint32_t events) override {
    if (!active) return;  // unwatched earlier in this dispatch batch
    // Only what is asked for now: a modifyWatch earlier in this batch may have
    // dropped an interest whose event is still in the batch.
    const FdEvents ready{(events & EPOLLIN & registered) != 0, (events & EPOLLOUT & registered) != 0,
                         (events & (EPOLLERR | EPOLLHUP)) != 0};
    if (!ready.readable && !ready.writable && !ready.error) return;
    auto keep = fn;  // the callback may unwatch (destroy) this watch
    keep(ready);
  }
  int fd;
  std::function<void(FdEvents)> fn;
  std::uint32_t registered = 0;  // EPOLLIN/EPOLLOUT in the set; 0: not in it
  bool active = true;
};

WatchId EventLoop::watchReadable(int fd, Callback fn) {
  return watchFd(fd, FdInterest::Read, [fn = std::move(fn)](FdEvents) { fn(); });
}

WatchId EventLoop::watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) {
  if (fd < 0 || !fn || watchedFds_.count(fd)) return {};
  auto watch = std::make_unique<FdWatch>(fd, std::move(fn));
  const std::uint32_t want = epollEventsFor(interest);
  if (want != 0) {
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = static_cast<IoHandler*>(watch.get());
    if (::epoll_ctl(ioFd_, EPOLL_CTL_ADD, fd, &ev) != 0) return {};  // EBADF, EPERM (a regular file), EEXIST
    watch->registered = want;
  } else if (::fcntl(fd, F_GETFD) < 0) {
    return {};  // nothing to register yet, but a closed fd is still refused
  }
  const WatchId id{++lastWatchId_};
  watches_.emplace(id, std::move(watch));
  watchedFds_.emplace(fd, id);
  return id;
}

bool EventLoop::modifyWatch(WatchId id, FdInterest interest) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return false;
  FdWatch& w = *it->second;
  const std::uint32_t want = epollEventsFor(interest);
  if (want == w.registered) return true;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = static_cast<IoHandler*>(&w);
  const int op = want == 0 ? EPOLL_CTL_DEL : w.registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (::epoll_ctl(ioFd_, op, w.fd, &ev) != 0 && op != EPOLL_CTL_DEL) return false;
  w.registered = want;
  return true;
}

bool EventLoop::unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return false;
  if (it->second->registered != 0) ::epoll_ctl(ioFd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
  it->second->active = false;
  watchedFds_.erase(it->second->fd);
  // Deferred: an event for it may still be in the batch being dispatched.
  runSoon([w = std::shared_ptr<FdWatch>(std::move(it->second))] {});
  watches_.erase(it);
  return true;
}

void EventLoop::run() {
  // Handlers are never destroyed inside a round (connections, watches and
  // lingering sockets are released through runSoon), so every pointer of the batch
  // stays valid; a handler that finished earlier in the batch ignores its
  // late event.
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stopping_.load(std::memory_order_acquire)) {
    // No timeout: timers come through the timerfd. Soon work left by the last
    // housekeeping (housekeepingDue_ at this point): do not wait.
    const int n = ::epoll_wait(ioFd_, events, kMaxEvents, housekeepingDue_ ? 0 : -1);
    for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->onIoEvent(events[i].events);
    if (housekeepingDue_) runHousekeeping();
  }
  // Work posted from now on would never run: drop it (and refuse more), so
  // that nobody waits for it (runAndWait).
  std::vector<Callback> dropped;
  {
    std::lock_guard<std::mutex> lock(postedMutex_);
    exited_ = true;
    dropped.swap(posted_);
  }
}

void EventLoop::startThread() {
  thread_ = std::thread([this] {
    threadId_.store(std::this_thread::get_id());
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    run();
  });
}

void EventLoop::stopAndJoin() {
  stopping_.store(true, std::memory_order_release);
  wake();
  if (thread_.joinable()) thread_.join();
}

void EventLoop::wake() {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] auto n = ::write(wakeFd_, &one, sizeof one);
}

// Last-resort boundary: plugin callbacks come wrapped by their connection's or
// factory's own boundary; this one keeps a host bug from killing the loop.
void EventLoop::runGuarded(const char* what, Callback& fn) {
  if (auto failure = invokeGuarded(fn))
    Log::instance().write(LogLevel::Error, "thread=" + name_, std::string(what) + " threw: " + *failure);
}

TimerId EventLoop::callLater(std::chrono::milliseconds delay, Callback fn) {
  const auto due = Clock::now() + std::max(delay, std::chrono::milliseconds(0));
  const auto id = timers_.add(due, std::chrono::milliseconds(0), std::move(fn));
  timerAdded(due);
  return id;
}

TimerId EventLoop::callEvery(std::chrono::milliseconds interval, Callback fn) {
  if (interval.count() <= 0) interval = std::chrono::milliseconds(1);
  const auto due = Clock::now() + interval;
  const auto id = timers_.add(due, interval, std::move(fn));
  timerAdded(due);
  return id;
}

bool EventLoop::cancel(TimerId id) { return timers_.cancel(id); }

bool EventLoop::Gate::post(Callback fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  return loop_ != nullptr && loop_->tryPost(std::move(fn));
}

bool EventLoop::tryPost(Callback fn) {
  bool needWake;
  {
    std::lock_guard<std::mutex> lock(postedMutex_);
    if (exited_) return false;  // would never run: dropped here (fn is destroyed on return)
    posted_.push_back(std::move(fn));
    needWake = !wakePending_;
    wakePending_ = true;
    hasPosted_.store(true, std::memory_order_release);
  }
  if (needWake) wake();
  return true;
}

void EventLoop::runSoon(Callback fn) {
  soon_.push_back(std::move(fn));
  housekeepingDue_ = true;  // after this round; the next poll does not wait
}

bool EventLoop::runAndWait(Callback fn) {
  // Ends the wait when the posted call is destroyed: after it ran (or threw),
  // or unrun, when the loop exited or its callbacks were cleared.
  struct Waiter {
    std::mutex mutex;
    std::condition_variable cv;
    bool released = false;
    bool ran = false;
  };
  struct Release {
    std::shared_ptr<Waiter> w;
    explicit Release(std::shared_ptr<Waiter> waiter) : w(std::move(waiter)) {}
    Release(const Release&) = delete;
    Release& operator=(const Release&) = delete;
    ~Release() {
      std::lock_guard<std::mutex> lock(w->mutex);
      w->released = true;
      w->cv.notify_all();
    }
  };
  auto waiter = std::make_shared<Waiter>();
  auto release = std::make_shared<Release>(waiter);
  post([release, &fn] {
    release->w->ran = true;  // before fn: set even when fn throws (it did run)
    fn();
  });
  release.reset();  // the posted call holds the only reference now (or none: dropped)
  std::unique_lock<std::mutex> lock(waiter->mutex);
  waiter->cv.wait(lock, [&] { return waiter->released; });
  return waiter->ran;
}

void EventLoop::clearCallbacks() {
  for (auto& [id, w] : watches_)
    if (w->registered != 0) ::epoll_ctl(ioFd_, EPOLL_CTL_DEL, w->fd, nullptr);
  watches_.clear();
  watchedFds_.clear();
  timers_.clear();
  soon_.clear();
  std::lock_guard<std::mutex> lock(postedMutex_);
  posted_.clear();
}

// After every poll round, so timers fire even while every round has traffic
// (unlike Poco's TimeoutNotification): the timerfd is in the same epoll set as
// the connections. Cheap when there is nothing to do: no mutex without posted
// work, no clock read unless the timerfd fired.
void EventLoop::runHousekeeping() {
  if (inHousekeeping_) return;
  inHousekeeping_ = true;
  housekeepingDue_ = false;  // set again by soon work queued from here on
  if (hasPosted_.load(std::memory_order_acquire)) {
    std::vector<Callback> work;
    {
      std::lock_guard<std::mutex> lock(postedMutex_);
      work.swap(posted_);
      wakePending_ = false;
      hasPosted_.store(false, std::memory_order_relaxed);
    }
    for (auto& fn : work) runGuarded("posted call", fn);
  }
  if (timersDue_) {
    timersDue_ = false;
    rearmAfterHousekeeping_ = true;
    armedDue_ = Clock::time_point::max();  // it fired: no longer armed
    timers_.runDue(Clock::now(), [this](std::exception_ptr e) {
      Callback rethrow = [e] { std::rethrow_exception(e); };
      runGuarded("timer", rethrow);
    });
  }
  if (!soon_.empty()) {
    // "soon" work may queue more soon work; run what is there now, the rest next round.
    std::vector<Callback> soon;
    soon.swap(soon_);
    for (auto& fn : soon) runGuarded("deferred call", fn);
  }
  if (rearmAfterHousekeeping_) {  // timers ran or were added: follow the earliest one
    rearmAfterHousekeeping_ = false;
    armTimerFd(timers_.nextDue().value_or(Clock::time_point::max()));
  }
  inHousekeeping_ = false;
}


}  // namespace protohost::host
