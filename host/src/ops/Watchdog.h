#pragma once
// Notices a reactor thread that stopped turning (a plugin blocking in a hook):
// every interval it posts a no-op to each reactor and reports any reactor that
// has not run the previous one within the interval (log + counter, once per
// stall), optionally aborting the process so a supervisor restarts it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace protohost::host {

class EventLoop;

class Watchdog {
 public:
  Watchdog(std::vector<EventLoop*> loops, std::chrono::milliseconds interval, bool abortOnMiss,
           std::atomic<std::uint64_t>& misses);
  ~Watchdog();  // stops and joins
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void run();

  struct Probe {
    std::atomic<std::int64_t> sentNs{0};  // 0: none outstanding
    bool reported = false;
  };
  std::vector<EventLoop*> loops_;
  std::vector<std::shared_ptr<Probe>> probes_;  // shared: a blocked loop may run a probe late
  std::chrono::milliseconds interval_;
  bool abort_;
  std::atomic<std::uint64_t>& misses_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace protohost::host
