#include "ops/StopDeadline.h"

#include <unistd.h>

#include "base/Log.h"

namespace protohost::host {

StopDeadline::StopDeadline(std::chrono::milliseconds allowed, Describe describe, int exitCode) {
  const auto deadline = std::chrono::steady_clock::now() + allowed;
  thread_ = std::thread([this, deadline, allowed, describe = std::move(describe), exitCode] {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (cv_.wait_until(lock, deadline, [this] { return disarmed_; })) return;
    }
    // The stop may have finished since the wait timed out: describe() decides.
    const std::optional<std::string> waitingFor = describe();
    if (!waitingFor) return;
    Log::instance().write(LogLevel::Error, "",
                          *waitingFor + " within " + std::to_string(allowed.count()) +
                              " ms of the stop request; exiting with " + std::to_string(exitCode) +
                              " without further cleanup");
    Log::instance().flush(kLogFlush);
    ::_exit(exitCode);
  });
}

StopDeadline::~StopDeadline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    disarmed_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace protohost::host
