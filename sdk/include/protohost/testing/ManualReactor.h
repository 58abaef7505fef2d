#pragma once
/// @file testing/ManualReactor.h
/// A Reactor whose clock moves only when the test says so (Twisted's task.Clock).
/// Test-only: single-threaded; post() queues until runPending() or advance().

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include "protohost/Reactor.h"

namespace protohost::testing {

class ManualReactor : public Reactor {
 public:
  TimerId callLater(std::chrono::milliseconds delay, Callback fn) override {
    return schedule(now_ + delay, std::chrono::milliseconds(0), std::move(fn));
  }
  TimerId callEvery(std::chrono::milliseconds interval, Callback fn) override {
    if (interval.count() <= 0) interval = std::chrono::milliseconds(1);
    return schedule(now_ + interval, interval, std::move(fn));
  }
  bool cancel(TimerId id) override { return timers_.erase(id) != 0; }
  Clock::time_point now() const override { return now_; }
  void post(Callback fn) override { posted_.push_back(std::move(fn)); }
  WatchId watchReadable(int fd, Callback fn) override {
    WatchId id{++lastId_};
    watches_.emplace(id.value, Watch{fd, std::move(fn)});
    return id;
  }
  bool unwatch(WatchId id) override { return watches_.erase(id.value) != 0; }
  // SDK 1.3 stubs (issue 10 replaces them): nothing is watched, connected or run.
  WatchId watchFd(int, FdInterest, std::function<void(FdEvents)>) override { return {}; }
  bool modifyWatch(WatchId, FdInterest) override { return false; }
  ConnectId connect(std::string_view, std::unique_ptr<Protocol>, std::function<void(const ConnectError&)>) override {
    return {};
  }
  bool cancelConnect(ConnectId) override { return false; }
  WorkStatus deferToThread(std::function<void()>, std::function<void(std::exception_ptr)>) override {
    return WorkStatus::ShuttingDown;
  }

  /// Test-only: calls the watch callbacks of @p fd, as the host does when it is
  /// readable. A callback may unwatch its own or another watch (one unwatched
  /// before its turn is not called) and may add watches (called next time).
  void fireReadable(int fd) {
    std::vector<std::uint64_t> due;
    for (const auto& [id, w] : watches_)
      if (w.fd == fd) due.push_back(id);
    for (std::uint64_t id : due) {
      auto it = watches_.find(id);
      if (it == watches_.end()) continue;  // unwatched by an earlier callback
      Callback keep = it->second.fn;       // the callback may unwatch (destroy) its own watch
      keep();
    }
    runPending();
  }
  /// Test-only: number of active fd watches.
  std::size_t watchCount() const { return watches_.size(); }

  /// Test-only: runs posted callbacks in order.
  void runPending() {
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }

  /// Test-only: moves the clock forward by @p by, firing due timers in time order.
  void advance(std::chrono::milliseconds by) {
    const Clock::time_point target = now_ + by;
    runPending();
    for (;;) {
      auto next = std::min_element(timers_.begin(), timers_.end(), [](auto& a, auto& b) {
        return a.second.due < b.second.due || (a.second.due == b.second.due && a.first < b.first);
      });
      if (next == timers_.end() || next->second.due > target) break;
      now_ = next->second.due;
      TimerId id = next->first;
      Timer t = next->second;
      if (t.interval.count() > 0)
        next->second.due += t.interval;
      else
        timers_.erase(next);
      t.fn();
      runPending();
      (void)id;
    }
    now_ = target;
  }

  /// Test-only: number of scheduled timers (to check that a protocol cancels its own).
  std::size_t pendingTimers() const { return timers_.size(); }

 private:
  struct Timer {
    Clock::time_point due;
    std::chrono::milliseconds interval;
    Callback fn;
  };
  TimerId schedule(Clock::time_point due, std::chrono::milliseconds interval, Callback fn) {
    TimerId id = ++lastId_;
    timers_.emplace(id, Timer{due, interval, std::move(fn)});
    return id;
  }

  struct Watch {
    int fd;
    Callback fn;
  };
  std::map<std::uint64_t, Watch> watches_;
  Clock::time_point now_{};
  TimerId lastId_ = 0;
  std::map<TimerId, Timer> timers_;
  std::deque<Callback> posted_;
};

}  // namespace protohost::testing
