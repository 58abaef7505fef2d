#pragma once
// A Logger that forwards to the host's until detach(). The sequence and its
// store log into it: work that outlives the factory's stop (a PostgreSQL
// reservation still in flight when Sequence::close stopped waiting for it)
// then logs into nothing, never into a logger the host may have destroyed.
//
// Threads: log() from any thread; detach() once, from the factory's stop.

#include <mutex>
#include <string_view>

#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

class DetachableLogger : public Logger {
 public:
  explicit DetachableLogger(Logger& target) : target_(&target) {}

  void log(LogLevel level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (target_) target_->log(level, message);
  }

  /// From here on, log() drops every line. Waits for a log() in progress.
  void detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    target_ = nullptr;
  }

 private:
  std::mutex mutex_;
  Logger* target_;
};

}  // namespace protohost::plugins::fibonacci
