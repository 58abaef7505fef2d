#include "ops/Watchdog.h"

#include <cstdlib>
#include <string>

#include "reactor/EventLoop.h"
#include "base/Log.h"

namespace protohost::host {

namespace {
std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Watchdog::Watchdog(std::vector<EventLoop*> loops, std::chrono::milliseconds interval, bool abortOnMiss,
                   std::atomic<std::uint64_t>& misses)
    : loops_(std::move(loops)), interval_(interval), abort_(abortOnMiss), misses_(misses) {
  for (std::size_t i = 0; i < loops_.size(); ++i) probes_.push_back(std::make_shared<Probe>());
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::run() {
  // Check a few times per interval so a stall is reported within about one interval.
  const auto step = std::max(std::chrono::milliseconds(10), interval_ / 4);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!cv_.wait_for(lock, step, [this] { return stop_; })) {
    const std::int64_t now = nowNs();
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      Probe& p = *probes_[i];
      std::int64_t sent = p.sentNs.load();
      if (sent == 0) {
        if (p.reported) {
          loops_[i]->setStalled(false);
          Log::instance().write(LogLevel::Info, "reactor=" + std::to_string(i), "watchdog: reactor thread runs again");
        }
        p.reported = false;
        p.sentNs.store(now);
        loops_[i]->post([probe = probes_[i]] { probe->sentNs.store(0); });
        continue;
      }
      auto stalled = std::chrono::nanoseconds(now - sent);
      if (stalled >= interval_ && !p.reported) {
        p.reported = true;
        loops_[i]->setStalled(true);
        misses_.fetch_add(1);
        Log::instance().write(LogLevel::Error, "reactor=" + std::to_string(i),
                              "watchdog: reactor thread has not run for " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(stalled).count()) +
                                  " ms (a plugin is blocking it)" + (abort_ ? "; aborting" : ""));
        if (abort_) {
          Log::instance().flush(std::chrono::milliseconds(500));  // the line above, for the supervisor's logs
          std::abort();
        }
      }
    }
  }
}

}  // namespace protohost::host
