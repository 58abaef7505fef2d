#include "reactor/TimerQueue.h"

namespace protohost::host {

TimerQueue::Id TimerQueue::add(Clock::time_point due, std::chrono::milliseconds interval, Callback fn) {
  Id id = ++lastId_;
  timers_.emplace(id, Timer{interval, std::move(fn)});
  heap_.push(Slot{due, id});
  return id;
}

bool TimerQueue::cancel(Id id) { return timers_.erase(id) != 0; }

void TimerQueue::dropCancelledTop() {
  while (!heap_.empty() && !timers_.count(heap_.top().id)) heap_.pop();
}

std::optional<TimerQueue::Clock::time_point> TimerQueue::nextDue() {
  dropCancelledTop();
  if (heap_.empty()) return std::nullopt;
  return heap_.top().due;
}

void TimerQueue::runDue(Clock::time_point now, const std::function<void(std::exception_ptr)>& onError) {
  auto invoke = [&](Callback& fn) {
    try {
      fn();
    } catch (...) {
      if (onError) onError(std::current_exception());
    }
  };
  const Id lastBefore = lastId_;
  std::vector<Slot> rearm;
  for (;;) {
    dropCancelledTop();
    if (heap_.empty() || heap_.top().due > now) break;
    Slot slot = heap_.top();
    heap_.pop();
    auto it = timers_.find(slot.id);
    if (slot.id > lastBefore) {  // added by a callback in this round: later
      rearm.push_back(slot);
      continue;
    }
    if (it->second.interval.count() > 0) {
      // Copy: the callback may cancel itself, which erases the map entry.
      Callback fn = it->second.fn;
      auto next = slot.due + it->second.interval;
      if (next <= now) next = now + it->second.interval;  // do not replay missed ticks
      rearm.push_back(Slot{next, slot.id});
      invoke(fn);
    } else {
      Callback fn = std::move(it->second.fn);
      timers_.erase(it);
      invoke(fn);
    }
  }
  for (const auto& s : rearm) heap_.push(s);
}

void TimerQueue::clear() {
  timers_.clear();
  heap_ = {};
}

}  // namespace protohost::host
