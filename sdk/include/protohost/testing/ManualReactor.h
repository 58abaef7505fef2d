#pragma once
/// @file testing/ManualReactor.h
/// A Reactor whose clock moves only when the test says so (Twisted's task.Clock).
/// Test-only: single-threaded; post() queues until runPending() or advance().
/// SDK 1.3: fd watches fire when the test calls fire(fd, events); deferred
/// work runs when it calls runWork(); an outbound connect waits until it calls
/// acceptConnect (a MemoryPair: include testing/MemoryPair.h) or failConnect.

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::testing {

class MemoryPair;

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
    // Several watchReadable of one fd are allowed (older tests use that); not beside a watchFd.
    for (const auto& [id, w] : watches_)
      if (w.fd == fd && w.exclusive) return {};
    WatchId id{++lastId_};
    watches_.emplace(id.value, Watch{fd, FdInterest::Read, false, [fn = std::move(fn)](FdEvents) { fn(); }});
    return id;
  }
  bool unwatch(WatchId id) override { return watches_.erase(id.value) != 0; }
  /// Fails (empty WatchId) for a negative fd or one watched already, as the host does.
  WatchId watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) override {
    if (fd < 0 || !fn) return {};
    for (const auto& [id, w] : watches_)
      if (w.fd == fd) return {};
    WatchId id{++lastId_};
    watches_.emplace(id.value, Watch{fd, interest, true, std::move(fn)});
    return id;
  }
  bool modifyWatch(WatchId id, FdInterest interest) override {
    auto it = watches_.find(id.value);
    if (it == watches_.end()) return false;
    it->second.interest = interest;
    return true;
  }

  /// Records the connect; the test answers it (acceptConnect, failConnect).
  /// The endpoint string is not parsed.
  ConnectId connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                    std::function<void(const ConnectError&)> onFailed) override {
    ConnectId id{++lastConnectId_};
    connects_.emplace(id.value, PendingConnect{std::string(endpoint), std::move(protocol), std::move(onFailed)});
    return id;
  }
  /// onFailed gets Cancelled from posted work (runPending), never from inside the call.
  bool cancelConnect(ConnectId id) override {
    auto it = connects_.find(id.value);
    if (it == connects_.end()) return false;
    auto onFailed = std::move(it->second.onFailed);
    connects_.erase(it);
    post([onFailed = std::move(onFailed)] {
      if (onFailed) onFailed(ConnectError{ConnectError::Kind::Cancelled, "cancelled"});
    });
    return true;
  }

  /// Queues @p work until the test calls runWork. QueueFull once
  /// setWorkQueueLimit items wait, ShuttingDown after stopWork.
  WorkStatus deferToThread(std::function<void()> work, std::function<void(std::exception_ptr)> done) override {
    if (workStopped_) return WorkStatus::ShuttingDown;
    if (work_.size() >= workLimit_) return WorkStatus::QueueFull;
    work_.push_back({std::move(work), std::move(done)});
    return WorkStatus::Queued;
  }

  // ---- test-only: fd watches ----

  /// Calls the watches of @p fd with what @p events has that each asks for (its
  /// interest; @c error always, as epoll reports it always), as the host does
  /// when the fd is ready; a watch with nothing to report is not called. A
  /// callback may unwatch or modify its own or another watch (one unwatched
  /// before its turn is not called) and may add watches (called next time).
  /// Then runs posted work.
  void fire(int fd, FdEvents events) {
    std::vector<std::uint64_t> due;
    for (const auto& [id, w] : watches_)
      if (w.fd == fd) due.push_back(id);
    for (std::uint64_t id : due) {
      auto it = watches_.find(id);
      if (it == watches_.end()) continue;  // unwatched by an earlier callback
      const auto wants = static_cast<std::uint8_t>(it->second.interest);
      FdEvents seen{events.readable && (wants & 1) != 0, events.writable && (wants & 2) != 0, events.error};
      if (!seen.readable && !seen.writable && !seen.error) continue;
      auto keep = it->second.fn;  // the callback may unwatch (destroy) its own watch
      keep(seen);
    }
    runPending();
  }
  /// fire(fd, readable).
  void fireReadable(int fd) { fire(fd, FdEvents{true, false, false}); }
  /// What watch @p id waits for; nullopt when it is not an active watch.
  std::optional<FdInterest> interestOf(WatchId id) const {
    auto it = watches_.find(id.value);
    if (it == watches_.end()) return std::nullopt;
    return it->second.interest;
  }

  // ---- test-only: deferred work (deterministic deferToThread) ----

  /// Runs up to @p most queued works in order, each followed by its done
  /// callback (with the exception the work threw, or null) and posted work.
  /// Work queued meanwhile waits for the next call. Returns how many ran.
  std::size_t runWork(std::size_t most = SIZE_MAX) {
    std::size_t ran = 0;
    for (std::size_t n = std::min(most, work_.size()); ran < n; ++ran) {
      Work item = std::move(work_.front());
      work_.pop_front();
      std::exception_ptr error;
      try {
        if (item.work) item.work();
      } catch (...) {
        error = std::current_exception();
      }
      if (item.done) post([done = std::move(item.done), error] { done(error); });
      runPending();
    }
    return ran;
  }
  /// Works queued and not yet run.
  std::size_t queuedWork() const { return work_.size(); }
  /// At most @p n works wait; deferToThread beyond that returns QueueFull.
  void setWorkQueueLimit(std::size_t n) { workLimit_ = n; }
  /// As on TERM, or when the owner ends: queued work is dropped (done is not
  /// called) and deferToThread returns ShuttingDown from now on.
  void stopWork() {
    workStopped_ = true;
    work_.clear();
  }

  // ---- test-only: outbound connects ----

  /// Connects not yet answered, oldest first.
  std::vector<ConnectId> pendingConnects() const {
    std::vector<ConnectId> ids;
    for (const auto& [id, c] : connects_) ids.push_back(ConnectId{id});
    return ids;
  }
  /// The endpoint a pending connect asked for ("" when @p id is not pending).
  std::string endpointOf(ConnectId id) const {
    auto it = connects_.find(id.value);
    return it == connects_.end() ? std::string() : it->second.endpoint;
  }
  /// The connect succeeds: its protocol is wired to @p server through a
  /// MemoryPair on this reactor (both connectionMade: server first). The pair
  /// and the client protocol live as long as this reactor; @p server is the
  /// test's and must outlive the pair's use. Defined in testing/MemoryPair.h.
  /// Throws std::invalid_argument when @p id is not pending.
  inline MemoryPair& acceptConnect(ConnectId id, Protocol& server);
  /// The connect fails: onFailed gets @p error (from posted work, run before
  /// this returns) and the protocol is destroyed without a hook. False when
  /// @p id is not pending.
  bool failConnect(ConnectId id, ConnectError error) {
    auto it = connects_.find(id.value);
    if (it == connects_.end()) return false;
    PendingConnect c = std::move(it->second);
    connects_.erase(it);
    c.protocol.reset();
    post([onFailed = std::move(c.onFailed), error = std::move(error)] {
      if (onFailed) onFailed(error);
    });
    runPending();
    return true;
  }

  /// Test-only: number of active fd watches.
  std::size_t watchCount() const { return watches_.size(); }

  /// Test-only: runs posted callbacks in order (also those they post); returns how many ran.
  std::size_t runPending() {
    std::size_t ran = 0;
    for (; !posted_.empty(); ++ran) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
    return ran;
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
    FdInterest interest;
    bool exclusive;  // a watchFd watch: the fd's only one
    std::function<void(FdEvents)> fn;
  };
  struct Work {
    std::function<void()> work;
    std::function<void(std::exception_ptr)> done;
  };
  struct PendingConnect {
    std::string endpoint;
    std::unique_ptr<Protocol> protocol;
    std::function<void(const ConnectError&)> onFailed;
  };
  struct Connected {  // what acceptConnect made; the pair goes first (it refers to the client)
    std::unique_ptr<Protocol> client;
    std::shared_ptr<MemoryPair> pair;
  };
  std::map<std::uint64_t, Watch> watches_;
  std::deque<Work> work_;
  std::size_t workLimit_ = SIZE_MAX;
  bool workStopped_ = false;
  std::map<std::uint64_t, PendingConnect> connects_;
  std::uint64_t lastConnectId_ = 0;
  std::vector<Connected> connected_;
  Clock::time_point now_{};
  TimerId lastId_ = 0;
  std::map<TimerId, Timer> timers_;
  std::deque<Callback> posted_;
};

}  // namespace protohost::testing
