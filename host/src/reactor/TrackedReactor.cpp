#include "reactor/TrackedReactor.h"

#include <exception>
#include <memory>
#include <utility>

#include "reactor/WorkerPool.h"

namespace protohost::host {

TimerId TrackedReactor::callLater(std::chrono::milliseconds delay, Callback fn) {
  if (ended_) return 0;
  // The id is known only once scheduled; the guard keeps the erase from running after the owner.
  auto id = std::make_shared<TimerId>(0);
  const TimerId made = loop_.callLater(delay, guard_([this, id, fn = std::move(fn)] {
    timers_.erase(*id);  // ran: no longer this reactor's to cancel
    fn();
  }));
  *id = made;
  timers_.insert(made);
  return made;
}

TimerId TrackedReactor::callEvery(std::chrono::milliseconds interval, Callback fn) {
  if (ended_) return 0;
  const TimerId id = loop_.callEvery(interval, guard_(std::move(fn)));
  timers_.insert(id);
  return id;
}

bool TrackedReactor::cancel(TimerId id) {
  if (!timers_.erase(id)) return false;
  return loop_.cancel(id);
}

WatchId TrackedReactor::watchReadable(int fd, Callback fn) {
  if (ended_) return {};
  const WatchId id = loop_.watchReadable(fd, guard_(std::move(fn)));
  if (id) watches_.insert(id);
  return id;
}

WatchId TrackedReactor::watchFd(int fd, FdInterest interest, std::function<void(FdEvents)> fn) {
  if (ended_ || !fn) return {};
  // The guard takes a Callback: the events of each firing reach it through the slot.
  auto fired = std::make_shared<FdEvents>();
  Callback guarded = guard_([fired, fn = std::move(fn)] { fn(*fired); });
  const WatchId id = loop_.watchFd(fd, interest, [fired, guarded = std::move(guarded)](FdEvents events) {
    *fired = events;
    guarded();
  });
  if (id) watches_.insert(id);
  return id;
}

bool TrackedReactor::modifyWatch(WatchId id, FdInterest interest) {
  return watches_.count(id) != 0 && loop_.modifyWatch(id, interest);
}

bool TrackedReactor::unwatch(WatchId id) {
  if (!watches_.erase(id)) return false;
  return loop_.unwatch(id);
}

ConnectId TrackedReactor::connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                                  std::function<void(const ConnectError&)> onFailed) {
  if (ended_) return {};  // the owner ended: nothing is connected or called (protocol dropped)
  if (!outbound_ && provider_) outbound_ = provider_->outboundFor(loop_, *this);
  if (outbound_) return outbound_->connect(endpoint, std::move(protocol), std::move(onFailed));
  protocol.reset();  // never started: no hook
  if (!onFailed) return {};
  loop_.runSoon(guard_([onFailed = std::move(onFailed)] {
    onFailed(ConnectError{ConnectError::Kind::Shutdown, "this reactor cannot connect out"});
  }));
  return {};
}

WorkStatus TrackedReactor::deferToThread(std::function<void()> work, std::function<void(std::exception_ptr)> done) {
  WorkerPool* pool = loop_.workerPool();
  if (ended_ || !pool) return WorkStatus::ShuttingDown;
  // Shared by the worker and the completion. Members go in reverse order: the
  // plugin's functions and its exception before the reference that keeps its code mapped.
  struct Item {
    std::shared_ptr<const void> code;
    std::exception_ptr error;
    std::function<void()> work;
    std::function<void(std::exception_ptr)> done;
  };
  auto item = std::make_shared<Item>(Item{code_.lock(), nullptr, std::move(work), std::move(done)});
  auto run = [item] {
    try {
      item->work();
    } catch (...) {
      item->error = std::current_exception();  // for done; never thrown on the worker
    }
    item->work = nullptr;  // the work's captures go on the worker, where they were used
  };
  // Made here, on the loop thread: the guard adds the owner's exception boundary (and, for a
  // connection, skips a finished one); live_ covers owners whose guard does not check.
  Callback deliver = guard_([item] {
    if (item->done) item->done(item->error);
  });
  auto complete = [&loop = loop_, live = live_, item, deliver = std::move(deliver)]() mutable {
    loop.post([live, item, deliver = std::move(deliver)] {
      if (*live) deliver();
      item->done = nullptr;  // its captures go on the loop, where they were made and used
    });
  };
  return pool->submit(std::move(run), std::move(complete));
}

void TrackedReactor::cancelAll() {
  if (ended_) return;  // once: nothing was tracked or made since
  ended_ = true;
  *live_ = false;
  for (TimerId id : timers_) loop_.cancel(id);
  timers_.clear();
  for (WatchId id : watches_) loop_.unwatch(id);
  watches_.clear();
  // Closed, then dropped: its connectors and callbacks go now, not with this
  // reactor. Moved out first, so a cancelAll or connect reached from inside
  // closeAll (a protocol's connectionLost) finds no service.
  if (auto outbound = std::move(outbound_)) outbound->closeAll();
}

}  // namespace protohost::host
