#pragma once
// Timers of one reactor: a min-heap of deadlines with lazy cancellation.
// Not thread-safe: used only on its reactor's thread.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

namespace protohost::host {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;
  using Id = std::uint64_t;

  /// Schedules @p fn at @p due; repeats every @p interval when it is positive.
  Id add(Clock::time_point due, std::chrono::milliseconds interval, Callback fn);
  /// Returns false when @p id is unknown, already ran (one-shot) or was cancelled.
  bool cancel(Id id);
  /// Runs every timer due at or before @p now, in deadline order. A timer added
  /// while running fires in a later call at the earliest, so this always ends.
  /// An exception from a callback goes to @p onError and the round continues.
  void runDue(Clock::time_point now, const std::function<void(std::exception_ptr)>& onError = {});
  /// The earliest pending deadline, if any.
  std::optional<Clock::time_point> nextDue();
  std::size_t size() const { return timers_.size(); }
  /// Drops every timer without running it (destroys the callbacks).
  void clear();

 private:
  struct Timer {
    std::chrono::milliseconds interval;
    Callback fn;
  };
  struct Slot {
    Clock::time_point due;
    Id id;
    bool operator>(const Slot& o) const { return due != o.due ? due > o.due : id > o.id; }
  };
  void dropCancelledTop();

  Id lastId_ = 0;
  std::unordered_map<Id, Timer> timers_;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> heap_;
};

}  // namespace protohost::host
